// The op conformance matrix: every case on every non-reference backend against 'js'.
// Filters: ACTLAB_OPS=matmul,softmax  ACTLAB_BACKENDS=wasm
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import '../src/backends/index.js';
import type { Backend, OpDesc, View } from '../src/tensor/backend.js';
import { createJsBackend } from '../src/backends/js/backend.js';
import { createWasmBackend } from '../src/backends/wasm/backend.js';
import { disposeBackends, initBackend } from '../src/tensor/engine.js';
import { runConformance, selectVariants, summarize, type CaseResult } from '../src/conformance/runner.js';

const ops = process.env.ACTLAB_OPS?.split(',').filter(Boolean);
const backends = (process.env.ACTLAB_BACKENDS ?? 'wasm').split(',').filter(Boolean);

describe('conformance matrix', () => {
  let ref: Backend;
  beforeAll(async () => { ref = await initBackend('js'); });
  afterAll(() => disposeBackends());

  for (const name of backends) {
    it(`${name} matches the reference on every case`, async () => {
      // wasm: fresh buffers hold NaN, so an output element a kernel forgets to write fails
      const test = name === 'wasm' ? await createWasmBackend({ poison: true }) : await initBackend(name);
      const results = await runConformance(ref, test, { ops });
      console.log(summarize(results));
      const bad = results.filter((r) => r.status === 'fail' || r.status === 'error');
      for (const r of bad) console.log(`${r.status} ${r.label}: nmse ${r.nmse} > ${r.budget} ${r.detail ?? ''}`);
      expect(results.length).toBeGreaterThan(ops ? 0 : 400);
      expect(bad.map((r) => `${r.label} (nmse ${r.nmse})`)).toEqual([]);
      if (name === 'wasm') test.dispose();
    }, 600_000);
  }

  it('wasm with an odd thread count (3) matches on the kernels that split work', async () => {
    // this machine's default is 2 threads; the GEMV split over K and the row splits must not
    // depend on it
    const test = await createWasmBackend({ threads: 3, poison: true });
    try {
      const results = await runConformance(ref, test, { ops: ['matmul', 'attention', 'softmax'] });
      const bad = results.filter((r) => r.status === 'fail' || r.status === 'error');
      for (const r of bad) console.log(`${r.status} ${r.label}: nmse ${r.nmse} > ${r.budget} ${r.detail ?? ''}`);
      expect(results.length).toBeGreaterThan(100);
      expect(bad.map((r) => r.label)).toEqual([]);
    } finally {
      test.dispose();
    }
  }, 600_000);

  it('covers every op of the backend contract', async () => {
    const { OP_NAMES } = await import('../src/tensor/backend.js');
    const covered = new Set(selectVariants().map((v) => v.op));
    expect(OP_NAMES.filter((o) => !covered.has(o))).toEqual([]);
  });

  it('catches a backend that is slightly wrong, and one that mishandles NaN', async () => {
    // A reference backend whose matmul is off by 1e-3 relative, and whose exp turns NaN into 0.
    const broken = createJsBackend();
    const exec = broken.exec.bind(broken);
    const bytesOf = (v: View) => (v.buffer as unknown as { bytes: Uint8Array }).bytes;
    (broken as { exec: Backend['exec'] }).exec = (op: OpDesc, ins: readonly View[], outs: readonly View[]) => {
      exec(op, ins, outs);
      if (op.op === 'matmul' || (op.op === 'unary' && op.fn === 'exp')) {
        const o = outs[0]!;
        const f = new Float32Array(bytesOf(o).buffer, bytesOf(o).byteOffset, o.shape.reduce((a, b) => a * b, 1));
        for (let i = 0; i < f.length; i++) f[i] = op.op === 'matmul' ? f[i]! * 1.001 : Number.isNaN(f[i]) ? 0 : f[i]!;
      }
    };
    const results: CaseResult[] = await runConformance(ref, broken, { ops: ['matmul f32 17x33x65', 'exp f32 NaN/Inf'] });
    expect(results.length).toBeGreaterThan(1);
    for (const r of results) expect(r.status, r.label).toBe('fail');
    broken.dispose();
  });
});
