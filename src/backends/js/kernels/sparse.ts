// Reference kernels of the activation-sparsity products: `sparseMatmul` (a zero input, or one below
// its channel's threshold, skips its weight row) and `maskedMatmul` (only the outputs a mask keeps
// are computed). Accumulated in f64.
// They define what "skip" means: a skipped row contributes nothing, not 0 · w (which is NaN for an
// infinite weight).
import type { OpDesc } from '../../../tensor/backend.js';
import type { KernelContext } from './context.js';

type Op<K extends OpDesc['op']> = Extract<OpDesc, { op: K }>;

function rank2(ctx: KernelContext, i: number, what: string): [number, number] {
  const v = ctx.input(i);
  if (v.shape.length !== 2 || v.dtype !== 'f32') ctx.fail(`${what} must be f32 [rows, cols]`);
  return v.shape as [number, number];
}

/**
 * y [M, N] = x [M, K] · w [K, N], skipping row k of w where x[m, k] = 0 or, with thresholds t [K],
 * where |x[m, k]| < t[k] (a NaN activation is never skipped).
 */
export function sparseMatmul(ctx: KernelContext<Op<'sparseMatmul'>>): void {
  const withT = !!ctx.op.thresholded;
  ctx.expectArity(withT ? 3 : 2, 1);
  const [M, K] = rank2(ctx, 0, 'x');
  const [Kw, N] = rank2(ctx, 1, 'w');
  if (Kw !== K) ctx.fail(`w has ${Kw} rows; x has ${K} columns`);
  if (withT) ctx.expectShape(ctx.input(2), [K], 'thresholds');
  ctx.expectShape(ctx.output(0), [M, N], 'output');
  const X = ctx.read(0);
  const W = ctx.read(1);
  const T = withT ? ctx.read(2) : undefined;
  const Y = new Float64Array(M * N);
  for (let m = 0; m < M; m++) {
    for (let k = 0; k < K; k++) {
      const a = X[m * K + k]!;
      if (a === 0 || (T && Math.abs(a) < T[k]!)) continue;
      for (let n = 0; n < N; n++) Y[m * N + n] += a * W[k * N + n]!;
    }
  }
  ctx.write(0, Y);
}

/** y [M, N] = mask ≠ 0 ? x [M, K] · w[n] : 0, w [N, K]. */
export function maskedMatmul(ctx: KernelContext<Op<'maskedMatmul'>>): void {
  ctx.expectArity(3, 1);
  const [M, K] = rank2(ctx, 0, 'x');
  const [N, Kw] = rank2(ctx, 1, 'w');
  if (Kw !== K) ctx.fail(`w has ${Kw} columns; x has ${K}`);
  ctx.expectShape(ctx.input(2), [M, N], 'mask');
  ctx.expectShape(ctx.output(0), [M, N], 'output');
  const X = ctx.read(0);
  const W = ctx.read(1);
  const G = ctx.read(2);
  const Y = new Float64Array(M * N);
  for (let m = 0; m < M; m++) {
    for (let n = 0; n < N; n++) {
      if (G[m * N + n] === 0) continue;
      let s = 0;
      for (let k = 0; k < K; k++) s += X[m * K + k]! * W[n * K + k]!;
      Y[m * N + n] = s;
    }
  }
  ctx.write(0, Y);
}
