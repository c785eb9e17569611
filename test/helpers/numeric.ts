// Numeric helpers shared by the kernel tests: seeded uniform data without a dependency on the
// engine's own generator, the max absolute (and gradient-relative) difference the tests print and bound, and the
// q8-activation product the quantized wasm kernels compute.
import { expect } from 'vitest';

/** n values uniform in [-0.5, 0.5) from a 32-bit LCG (seed 0 counts as 1). */
export function rand(n: number, seed: number): Float32Array {
  const out = new Float32Array(n);
  let s = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = s / 2 ** 32 - 0.5;
  }
  return out;
}

/** Max |x - y| over the finite entries; a non-finite entry must be the same in both (masked scores are -inf), else Infinity. */
export function maxAbsDiffFinite(x: ArrayLike<number>, y: ArrayLike<number>): number {
  expect(x.length).toBe(y.length);
  let m = 0;
  for (let i = 0; i < x.length; i++) {
    if (Number.isFinite(x[i]!) && Number.isFinite(y[i]!)) m = Math.max(m, Math.abs(x[i]! - y[i]!));
    else if (!Object.is(x[i], y[i])) return Infinity;
  }
  return m;
}

/** Max |got - want| / max(1, |want|): the error of a gradient against central differences. */
export function maxRelErr(got: ArrayLike<number>, want: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < want.length; i++) m = Math.max(m, Math.abs(got[i]! - want[i]!) / Math.max(1, Math.abs(want[i]!)));
  return m;
}

/**
 * What the wasm quantized kernels compute for x [M, K] · wᵀ (w [N, K], dequantized): x rounded to
 * 8 bits per `block` values (32; 256 for the K-quants' decode, as llama.cpp's Q8_K; scale amax/127
 * in f32, ties to even as f32x4.nearest), integer dots, then the scales. `exact` gets the plain f64
 * product beside it (formats whose kernel keeps x in f32).
 */
export function q8ActivationMatmul(x: Float32Array, w: ArrayLike<number>, M: number, N: number, K: number, block = 32): { scheme: Float64Array; exact: Float64Array } {
  const scheme = new Float64Array(M * N);
  const exact = new Float64Array(M * N);
  for (let m = 0; m < M; m++) {
    for (let b = 0; b < K / block; b++) {
      let amax = 0;
      for (let k = 0; k < block; k++) amax = Math.max(amax, Math.abs(x[m * K + b * block + k]!));
      const d = Math.fround(amax / 127);
      const id = amax > 0 ? Math.fround(127 / amax) : 0;
      for (let k = 0; k < block; k++) {
        const xv = x[m * K + b * block + k]!;
        const v = Math.fround(xv * id);
        let q = Math.round(v);
        if (Math.abs(v % 1) === 0.5) q = 2 * Math.round(v / 2); // ties to even
        for (let n = 0; n < N; n++) {
          const wv = w[n * K + b * block + k]!;
          scheme[m * N + n]! += d * q * wv;
          exact[m * N + n]! += xv * wv;
        }
      }
    }
  }
  return { scheme, exact };
}
