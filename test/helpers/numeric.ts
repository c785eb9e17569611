// Numeric helpers shared by the kernel tests: seeded uniform data without a dependency on the
// engine's own generator, and the max absolute difference the tests print and bound.
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
