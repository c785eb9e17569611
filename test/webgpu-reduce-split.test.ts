// The WebGPU sums and means that split a long axis over many workgroups (few outputs: a bias
// gradient [b·t, n] -> [n], the sum of a whole tensor) against the js reference, with the largest
// error printed; the cases also cover a middle axis, a non-contiguous input and f16. Runs wherever
// an adapter exists (SwiftShader here).
import { afterAll, describe, expect, it } from 'vitest';
import '../src/backends/index.js';
import { createJsBackend } from '../src/backends/js/backend.js';
import { mean, sum } from '../src/ops/reduce.js';
import { Rng } from '../src/ops/creation.js';
import { Tensor } from '../src/tensor/tensor.js';
import { openWebGpu } from './webgpu-helpers.js';

const { backend, reason } = await openWebGpu();
if (!backend) console.log(`webgpu split-reduction tests skipped: ${reason}`);
afterAll(() => backend?.dispose());
const js = createJsBackend();

describe.skipIf(!backend)('webgpu split reductions', () => {
  it('equal the reference within f32 rounding', async () => {
    // [name, shape, axis, mean, f16, transposed input]
    const cases: [string, number[], number, boolean, boolean, boolean][] = [
      ['whole tensor', [70001], 0, false, false, false],
      ['rows of 9000', [3, 9000], 1, true, false, false],
      ['bias gradient', [1000, 37], 0, false, false, false],
      ['middle axis', [2, 700, 130], 1, true, false, false],
      ['f16 columns', [600, 65], 0, false, true, false],
      ['transposed', [300, 500], 0, false, false, true],
    ];
    for (const [name, shape, axis, isMean, f16, tr] of cases) {
      const rng = new Rng(shape.reduce((a, b) => a * b, 1));
      const x = Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => rng.normal() + 0.5);
      const make = (be: typeof js) => {
        let t = Tensor.from(x, tr ? [shape[1]!, shape[0]!] : shape, 'f32', be);
        if (tr) t = t.transpose(0, 1);
        return f16 ? t.cast('f16') : t;
      };
      const f = isMean ? mean : sum;
      const want = f(make(js), axis).cast('f32').dataSync() as Float32Array;
      const got = (await f(make(backend!), axis).cast('f32').data()) as Float32Array;
      const n = shape[axis]!;
      let err = 0;
      for (let i = 0; i < want.length; i++) err = Math.max(err, Math.abs(got[i]! - want[i]!) / (isMean ? 1 : n));
      console.log(`${isMean ? 'mean' : 'sum'} ${name} [${shape}] axis ${axis}${f16 ? ' f16' : ''}: ${want.length} outputs, max error per element ${err.toExponential(2)}`);
      expect(got.length).toBe(want.length);
      expect(err).toBeLessThan(f16 ? 1e-3 : 1e-5);
    }
  }, 240_000);
});
