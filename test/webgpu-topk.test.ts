// The WebGPU top-k on long rows (the radix-select kernel, rows of 512 or more) against the js
// reference: random rows, rows full of ties, NaN, -0 and +0, k from 1 to 1024, f32 and f16.
// Runs wherever an adapter exists (SwiftShader here); elsewhere it is skipped with the reason.
import { afterAll, describe, expect, it } from 'vitest';
import '../src/backends/index.js';
import { createJsBackend } from '../src/backends/js/backend.js';
import { topk } from '../src/ops/reduce.js';
import { Tensor } from '../src/tensor/tensor.js';
import { Rng } from '../src/ops/creation.js';
import { openWebGpu } from './webgpu-helpers.js';

const { backend, reason } = await openWebGpu();
if (!backend) console.log(`webgpu top-k tests skipped: ${reason}`);
afterAll(() => backend?.dispose());
const js = createJsBackend();

function rows(kind: 'random' | 'ties' | 'special', r: number, n: number, seed: number): Float32Array {
  const rng = new Rng(seed);
  const x = new Float32Array(r * n);
  for (let i = 0; i < x.length; i++) {
    const u = rng.normal();
    x[i] = kind === 'random' ? u : kind === 'ties' ? Math.round(u * 2) / 2 : [NaN, -0, 0, Infinity, -Infinity, u][rng.int(6)]!;
  }
  return x;
}

describe.skipIf(!backend)('webgpu top-k of long rows', () => {
  it('equals the reference (values bit for bit, indices exactly)', async () => {
    const cases: [string, 'random' | 'ties' | 'special', number, number, number, 'f32' | 'f16'][] = [
      ['random', 'random', 3, 3000, 1, 'f32'], ['random k 37', 'random', 5, 2048, 37, 'f32'], ['ties', 'ties', 4, 1500, 300, 'f32'],
      ['special', 'special', 3, 700, 200, 'f32'], ['k 1024', 'random', 2, 1100, 1024, 'f32'], ['f16 ties', 'ties', 3, 900, 64, 'f16'],
      ['k = n', 'ties', 2, 600, 600, 'f32'],
    ];
    for (const [name, kind, r, n, k, dtype] of cases) {
      const x = rows(kind, r, n, n + k);
      const a = topk(Tensor.from(x, [r, n], 'f32', js).cast(dtype), k);
      const g = topk(Tensor.from(x, [r, n], 'f32', backend!).cast(dtype), k);
      const [av, ai, gv, gi] = [a.values.dataSync(), a.indices.dataSync(), await g.values.data(), await g.indices.data()];
      let bad = 0;
      for (let i = 0; i < ai.length; i++) if (ai[i] !== gi[i] || !Object.is(av[i], gv[i])) bad++;
      console.log(`top-k ${name} [${r}, ${n}] k ${k} ${dtype}: ${bad} of ${ai.length} differ`);
      expect(bad).toBe(0);
    }
  }, 240_000);
});
