// Reference matrix product: batched matmul with transposition flags, accumulated in f64.
import type { OpDesc } from '../../../tensor/backend.js';
import type { KernelContext } from './context.js';
import { unaryFn } from './elementwise.js';

type Op<K extends OpDesc['op']> = Extract<OpDesc, { op: K }>;

export function matmul(ctx: KernelContext<Op<'matmul'>>): void {
  ctx.expectArity(2, 1);
  const { transA, transB } = ctx.op;
  const a = ctx.input(0);
  const b = ctx.input(1);
  const rank = a.shape.length;
  if (rank < 2 || b.shape.length !== rank) ctx.fail('a and b need the same rank >= 2 (batch dims already broadcast)');
  const batchShape = a.shape.slice(0, -2);
  ctx.expectShape(b, [...batchShape, ...b.shape.slice(-2)], 'b (batch dims)');
  const [a0, a1] = a.shape.slice(-2) as [number, number];
  const [b0, b1] = b.shape.slice(-2) as [number, number];
  const [M, K] = transA ? [a1, a0] : [a0, a1];
  const [Kb, N] = transB ? [b1, b0] : [b0, b1];
  if (K !== Kb) ctx.fail(`inner dims differ: K=${K} from a, ${Kb} from b`);
  ctx.expectShape(ctx.output(0), [...batchShape, M, N], 'output');

  const A = ctx.read(0);
  const B = ctx.read(1);
  const batches = batchShape.reduce((p, s) => p * s, 1);
  const Y = new Float64Array(batches * M * N);
  const rowA = new Float64Array(K); // a[m, :]
  const colB = new Float64Array(K); // b[:, n]
  for (let p = 0; p < batches; p++) {
    const aBase = p * M * K;
    const bBase = p * K * N;
    // B transposed to [N, K] so both operands of the dot product are contiguous
    const Bt = new Float64Array(N * K);
    for (let n = 0; n < N; n++) {
      for (let k = 0; k < K; k++) colB[k] = transB ? B[bBase + n * K + k]! : B[bBase + k * N + n]!;
      Bt.set(colB, n * K);
    }
    for (let m = 0; m < M; m++) {
      for (let k = 0; k < K; k++) rowA[k] = transA ? A[aBase + k * M + m]! : A[aBase + m * K + k]!;
      for (let n = 0; n < N; n++) {
        let s = 0;
        const off = n * K;
        for (let k = 0; k < K; k++) s += rowA[k]! * Bt[off + k]!;
        Y[(p * M + m) * N + n] = s;
      }
    }
  }
  ctx.write(0, Y);
}

/** y = act(x · w + bias): the product in f64, then the bias, then the activation. */
export function linear(ctx: KernelContext<Op<'linear'>>): void {
  ctx.expectArity(3, 1);
  const { transB, act } = ctx.op;
  const x = ctx.input(0);
  const w = ctx.input(1);
  if (x.shape.length !== 2 || w.shape.length !== 2) ctx.fail('x and w must be 2-d');
  const [M, K] = x.shape as [number, number];
  const [Kw, N] = transB ? [w.shape[1]!, w.shape[0]!] : [w.shape[0]!, w.shape[1]!];
  if (K !== Kw) ctx.fail(`inner dims differ: K=${K} from x, ${Kw} from w`);
  ctx.expectShape(ctx.input(2), [N], 'bias');
  ctx.expectShape(ctx.output(0), [M, N], 'output');
  const X = ctx.read(0);
  const W = ctx.read(1);
  const bias = ctx.read(2);
  const f = act ? unaryFn(act) : null;
  const Y = new Float64Array(M * N);
  for (let m = 0; m < M; m++) {
    for (let n = 0; n < N; n++) {
      let s = 0;
      for (let k = 0; k < K; k++) s += X[m * K + k]! * (transB ? W[n * K + k]! : W[k * N + n]!);
      s += bias[n]!;
      Y[m * N + n] = f ? f(s) : s;
    }
  }
  ctx.write(0, Y);
}
