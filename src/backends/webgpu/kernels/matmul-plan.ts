// The plan of a batched matmul on strided views, shared by every matmul kernel: shapes and
// strides with broadcast weights folded into M, the parameter words that carry them to the GPU
// (planParams), and the WGSL lines that read those words back (PLAN_HEAD).
import type { OpDesc, UnaryFn, View } from '../../../tensor/backend.js';
import { collapse, unaryExpr } from './elementwise.js';
import { BUILTINS, Params, WG_INDEX, type OpContext } from './context.js';
import { MATH, PRELUDE, cdiv } from '../wgsl.js';

type Op<K extends OpDesc['op']> = Extract<OpDesc, { op: K }>;

export interface MatmulPlan {
  M: number; K: number; N: number;
  /** Up to 3 batch dims (padded with 1) and their strides per operand (elements). */
  bshape: [number, number, number];
  abs: [number, number, number];
  bbs: [number, number, number];
  sam: number; sak: number; sbk: number; sbn: number;
  aoff: number; boff: number;
}

/** Shapes and strides of a matmul, with broadcast weights folded into M. */
export function planMatmul(ctx: OpContext, a: View, b: View, transA = (ctx.op as Op<'matmul'>).transA, transB = (ctx.op as Op<'matmul'>).transB): MatmulPlan {
  const r = a.shape.length;
  if (r < 2 || b.shape.length !== r) ctx.fail('a and b need the same rank >= 2 (batch dims already broadcast)');
  const [a0, a1] = [a.shape[r - 2]!, a.shape[r - 1]!];
  const [b0, b1] = [b.shape[r - 2]!, b.shape[r - 1]!];
  let [M, K] = transA ? [a1, a0] : [a0, a1];
  const [Kb, N] = transB ? [b1, b0] : [b0, b1];
  if (K !== Kb) ctx.fail(`inner dims differ: K=${K} from a, ${Kb} from b`);
  let sam = transA ? a.strides[r - 1]! : a.strides[r - 2]!;
  const sak = transA ? a.strides[r - 2]! : a.strides[r - 1]!;
  const sbk = transB ? b.strides[r - 1]! : b.strides[r - 2]!;
  const sbn = transB ? b.strides[r - 2]! : b.strides[r - 1]!;
  const batchShape = a.shape.slice(0, r - 2);
  const yStrides = contiguousBatchStrides(batchShape, M * N);
  const c = collapse(batchShape, [a.strides.slice(0, r - 2), b.strides.slice(0, r - 2), yStrides]);
  let bshape = c.shape;
  let [as, bs] = [c.strides[0]!, c.strides[1]!];
  // One batch dim where B is shared and A's rows run on: a taller A.
  if (bshape.length === 1 && bs[0] === 0 && (M === 1 || as[0] === M * sam) && M > 0) {
    if (M === 1) sam = as[0]!;
    M *= bshape[0]!;
    bshape = [];
    as = [];
    bs = [];
  }
  if (bshape.length > 3) ctx.fail(`at most 3 batch dims after merging, got [${bshape.join(',')}]`);
  // innermost batch dim first, as the kernel decomposes the batch index z
  const pad = (xs: number[], v: number) => [...[...xs].reverse(), ...new Array<number>(3 - xs.length).fill(v)] as [number, number, number];
  return {
    M, K, N, bshape: pad(bshape, 1), abs: pad(as, 0), bbs: pad(bs, 0), sam, sak, sbk, sbn, aoff: a.offset, boff: b.offset,
  };
}

function contiguousBatchStrides(batch: readonly number[], inner: number): number[] {
  const s = new Array<number>(batch.length);
  let acc = inner;
  for (let i = batch.length - 1; i >= 0; i--) { s[i] = acc; acc *= batch[i]!; }
  return s;
}

/** Axes a BM x BN tile with k-steps of BK divides: loads along them need no bounds test. */
export interface Aligned { m: boolean; n: boolean; k: boolean }

export function alignedAxes(p: MatmulPlan, BM: number, BN: number, BK: number): Aligned {
  return { m: p.M % BM === 0, n: p.N % BN === 0, k: p.K % BK === 0 };
}

/** Kernel-cache key suffix naming the aligned axes. */
export const alignedKey = (al: Aligned) => `${al.m ? ' am' : ''}${al.n ? ' an' : ''}${al.k ? ' ak' : ''}`;

export function planParams(p: MatmulPlan, yoff: number): Params {
  return new Params().u32(p.M, p.K, p.N, ...p.bshape).i32(...p.abs, ...p.bbs, p.sam, p.sak, p.sbk, p.sbn, p.aoff, p.boff, yoff);
}

/** WGSL lines reading the plan words (see planParams) and locating batch z; bases and strides as i32. */
export const PLAN_HEAD_I32 = `
  let M = P[0]; let K = P[1]; let N = P[2];
  let z = wid.z;
  let z0 = z % P[3]; let z1 = (z / P[3]) % P[4]; let z2 = z / (P[3] * P[4]);
  let abase = bitcast<i32>(P[16]) + i32(z0) * bitcast<i32>(P[6]) + i32(z1) * bitcast<i32>(P[7]) + i32(z2) * bitcast<i32>(P[8]);
  let bbase = bitcast<i32>(P[17]) + i32(z0) * bitcast<i32>(P[9]) + i32(z1) * bitcast<i32>(P[10]) + i32(z2) * bitcast<i32>(P[11]);
  let sam = bitcast<i32>(P[12]); let sak = bitcast<i32>(P[13]); let sbk = bitcast<i32>(P[14]); let sbn = bitcast<i32>(P[15]);
  let ybase = P[18] + z * M * N;`;

/**
 * The same with bases and strides as u32 (index arithmetic wraps, so negative strides still land
 * right), for the kernels that index 16-byte words.
 */
export const PLAN_HEAD = `
  let M = P[0]; let K = P[1]; let N = P[2];
  let z = wid.z;
  let z0 = z % P[3]; let z1 = (z / P[3]) % P[4]; let z2 = z / (P[3] * P[4]);
  let abase = u32(bitcast<i32>(P[16]) + i32(z0) * bitcast<i32>(P[6]) + i32(z1) * bitcast<i32>(P[7]) + i32(z2) * bitcast<i32>(P[8]));
  let bbase = u32(bitcast<i32>(P[17]) + i32(z0) * bitcast<i32>(P[9]) + i32(z1) * bitcast<i32>(P[10]) + i32(z2) * bitcast<i32>(P[11]));
  let sam = P[12]; let sak = P[13]; let sbk = P[14]; let sbn = P[15];
  let ybase = P[18] + z * M * N;`;

/** A linear layer's epilogue applied where the product is stored: y = act(y + bias[n]) (bias f32). */
export interface Epilogue { bias: GPUBuffer; boff: number; act: UnaryFn | null }

/** Kernel-cache key suffix of an epilogue. */
export const epiKey = (e: Epilogue | null | undefined) => (e ? ` +b${e.act ? ` ${e.act}` : ''}` : '');

/** WGSL: the bias binding and `fn epi(v, n)`, the bias offset read from word P[word]. */
export function epiCode(e: Epilogue, binding: number, word: number): string {
  return `@group(0) @binding(${binding}) var<storage, read> bias: array<f32>;
fn epi(v: f32, n: u32) -> f32 { let x = v + bias[P[${word}] + n]; return ${e.act ? unaryExpr(e.act) : 'x'}; }`;
}

/** y[i] = epi(y[i], i % N) over `count` elements from `yoff`, in place (products whose kernel has no epilogue). */
export function applyEpilogue(ctx: OpContext, yb: GPUBuffer, yoff: number, count: number, N: number, e: Epilogue): void {
  const k = ctx.kernel(`epilogue${epiKey(e)}`, () => `${PRELUDE}${MATH}
@group(0) @binding(0) var<storage, read> P: array<u32>;
@group(0) @binding(1) var<storage, read_write> y: array<f32>;
${epiCode(e, 2, 3)}
@compute @workgroup_size(256)
fn main(${BUILTINS}) {
  ${WG_INDEX}
  let i = wg * 256u + li;
  if (i >= P[0]) { return; }
  y[P[2] + i] = epi(y[P[2] + i], i % P[1]);
}`);
  ctx.run(k, [yb, e.bias], new Params().u32(count, N, yoff, e.boff), [cdiv(count, 256)]);
}
