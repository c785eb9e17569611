// The op conformance matrix in grad mode: every differentiable f32 case's gradient against central
// finite differences on the reference backend, and each backend's gradient against the reference's.
// Filters: ACTLAB_OPS=matmul,softmax  ACTLAB_BACKENDS=wasm
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import '../src/backends/index.js';
import type { Backend } from '../src/tensor/backend.js';
import { disposeBackends, initBackend } from '../src/tensor/engine.js';
import { NO_GRADIENT, runGradConformance, summarizeGrad } from '../src/conformance/grad.js';
import { OP_NAMES } from '../src/tensor/backend.js';

const ops = process.env.ACTLAB_OPS?.split(',').filter(Boolean);
const backends = (process.env.ACTLAB_BACKENDS ?? 'wasm').split(',').filter(Boolean);

describe('grad matrix', () => {
  let ref: Backend;
  beforeAll(async () => { ref = await initBackend('js'); });
  afterAll(() => disposeBackends());

  it('js: every gradient matches finite differences', async () => {
    const results = await runGradConformance(ref, null, { ops });
    console.log(summarizeGrad(results));
    const bad = results.filter((r) => r.status !== 'pass');
    for (const r of bad) console.log(`${r.status} ${r.label}: FD err ${r.fdErr} (tol ${r.fdTol}) ${r.detail ?? ''}`);
    expect(bad.map((r) => `${r.label}: ${r.detail}`)).toEqual([]);
    if (!ops) {
      // Every op of the contract with a gradient has at least one checked case.
      const covered = new Set(results.map((r) => r.op));
      expect(OP_NAMES.filter((o) => !NO_GRADIENT.has(o) && !covered.has(o))).toEqual([]);
    }
  }, 600_000);

  for (const name of backends) {
    it(`${name}: gradients match the reference backend`, async () => {
      const test = await initBackend(name);
      const results = await runGradConformance(ref, test, { ops });
      console.log(summarizeGrad(results));
      const bad = results.filter((r) => r.status === 'fail' || r.status === 'error');
      for (const r of bad) console.log(`${r.status} ${r.label}: nmse ${r.nmse} (budget ${r.budget}) FD ${r.fdErr} ${r.detail ?? ''}`);
      expect(bad.map((r) => `${r.label}: ${r.detail}`)).toEqual([]);
    }, 600_000);
  }
});
