// The WebGPU decode GEMV on GGML blocks with 8-bit activations (src/backends/webgpu/kernels/
// quant-gemv.ts), every tuning the benchmark can pick (lanes, rows per lane, 16-byte loads,
// subgroup sums), against x rounded to 8 bits per 32 values exactly as ggml rounds it times the
// weight's reference values (a tight budget: only the order of f32 sums differs), and against
// the unrounded f32 product within the conformance budget. Skips where no WebGPU adapter exists.
import { afterAll, describe, expect, it } from 'vitest';
import '../src/backends/index.js';
import { quantizeQ4_0, quantizeQ8_0, dequantizeGgml } from '../src/formats/gguf-quants.js';
import { quantizeQ4K } from '../src/formats/gguf-kquants.js';
import { qmatmul } from '../src/ops/quant.js';
import { QuantizedTensor } from '../src/tensor/quantized.js';
import { Tensor } from '../src/tensor/tensor.js';
import type { QuantType } from '../src/tensor/backend.js';
import { QGEMV_TUNING } from '../src/backends/webgpu/kernels/quant-gemv.js';
import { QMATMUL_BUDGET } from '../src/conformance/cases.js';
import { openWebGpu } from './webgpu-helpers.js';

const { backend, reason } = await openWebGpu();
if (!backend) console.log(`webgpu GEMV tests skipped: ${reason}`);
afterAll(() => backend?.dispose());

const f = Math.fround;
const roundf = (v: number) => Math.sign(v) * Math.floor(Math.abs(v) + 0.5);

/** x rounded as the kernel rounds it: d = max|x| / 127 per 32 values (f32), q = roundf(x · (1/d)). */
function roundX(x: Float32Array): Float32Array {
  const out = new Float32Array(x.length);
  for (let b = 0; b < x.length; b += 32) {
    let amax = 0;
    for (let j = 0; j < 32; j++) amax = Math.max(amax, Math.abs(x[b + j]!));
    const d = f(amax / 127);
    const id = d > 0 ? f(1 / d) : 0;
    for (let j = 0; j < 32; j++) out[b + j] = d * roundf(f(x[b + j]! * id));
  }
  return out;
}

function normals(n: number, seed: number): Float32Array {
  const out = new Float32Array(n);
  let s = seed >>> 0;
  const u = () => ((s = (s * 1664525 + 1013904223) >>> 0) + 0.5) / 2 ** 32;
  for (let i = 0; i < n; i++) out[i] = Math.sqrt(-2 * Math.log(u())) * Math.cos(2 * Math.PI * u());
  return out;
}

const ENC: Record<string, [(x: Float32Array) => Uint8Array, 'Q4_0' | 'Q4_K' | 'Q8_0']> = {
  q4_0: [quantizeQ4_0, 'Q4_0'], q4_k: [quantizeQ4K, 'Q4_K'], q8_0: [quantizeQ8_0, 'Q8_0'],
};

/** NMSE of y against the reference product of xr [M, K] and w [N, K]. */
function nmse(y: Float32Array, xr: Float32Array, w: Float32Array, M: number, N: number, K: number): number {
  let err = 0, ref = 0;
  for (let m = 0; m < M; m++) for (let n = 0; n < N; n++) {
    let s = 0;
    for (let k = 0; k < K; k++) s += xr[m * K + k]! * w[n * K + k]!;
    err += (y[m * N + n]! - s) ** 2; ref += s * s;
  }
  return err / ref;
}

const TUNINGS = [
  { lanes: 32, rows: 2, vec4: true, subgroups: true },
  { lanes: 32, rows: 1, vec4: false, subgroups: false },
  { lanes: 8, rows: 4, vec4: true, subgroups: true },
  { lanes: 16, rows: 2, vec4: false, subgroups: true },
];

describe.skipIf(!backend)('webgpu GEMV with 8-bit activations', () => {
  const saved = { ...QGEMV_TUNING };
  afterAll(() => Object.assign(QGEMV_TUNING, saved));
  for (const type of ['q4_0', 'q4_k', 'q8_0'] as QuantType[]) {
    it(`${type}: every tuning, M = 1 and 3, odd N, weight at a byte offset`, async () => {
      const be = backend!;
      const [enc, ggml] = ENC[type]!;
      for (const [M, N, K, pad] of [[1, 37, 2048, 0], [3, 19, 512, 16], [1, 5, 256, 4]] as const) {
        const raw = enc(normals(N * K, 7 + N));
        const w = dequantizeGgml(ggml, raw, N * K);
        const x = normals(M * K, 3 + M);
        const xt = Tensor.from(x, [M, K], 'f32', be);
        // the blocks `pad` bytes into a buffer (pad 4: a word offset that is not 16-byte aligned)
        const buf = new Uint8Array(pad + raw.length);
        buf.set(raw, pad);
        const all = Tensor.fromBytes(buf, [buf.length], 'u8', be);
        const wt = new QuantizedTensor(all.slice([pad], [pad + raw.length]), type, [N, K]);
        const xr = roundX(x);
        for (const tune of TUNINGS) {
          Object.assign(QGEMV_TUNING, tune, { path: 'a8' });
          const y = qmatmul(xt, wt);
          const got = (await y.data()) as Float32Array;
          y.dispose();
          const eRound = nmse(got, xr, w, M, N, K);
          const eExact = nmse(got, x, w, M, N, K);
          console.log(`${type} M=${M} N=${N} K=${K} pad ${pad} ${JSON.stringify(tune)}: NMSE vs rounded x ${eRound.toExponential(2)}, vs f32 x ${eExact.toExponential(2)}`);
          expect(eRound).toBeLessThan(1e-11);
          expect(eExact).toBeLessThan(QMATMUL_BUDGET);
        }
        Object.assign(QGEMV_TUNING, { path: 'f32' });
        const y = qmatmul(xt, wt);
        const eF32 = nmse((await y.data()) as Float32Array, x, w, M, N, K);
        console.log(`${type} M=${M} N=${N} K=${K} f32 path: NMSE ${eF32.toExponential(2)}`);
        expect(eF32).toBeLessThan(1e-11);
        for (const t of [y, wt, all, xt]) t.dispose();
      }
    }, 120_000);
  }
});
