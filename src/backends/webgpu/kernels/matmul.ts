// Batched matmul on strided views (transposes and broadcast batches need no copy):
//   tiled      128x128 (or 64x64) output tiles, 8x8 (4x4) per thread, k-steps of 8 staged in
//              workgroup memory with the next step prefetched into registers; any float dtype.
//   gemv       M <= 8 (decode): each workgroup streams a strip of B once for all rows of A.
//   sgmat      f16 x f16 on tensor cores through subgroup matrices (matmul-f16.ts) when offered.
// Weights shared by every batch (stride 0) fold the batch into M.
import type { OpDesc, View } from '../../backend.js';
import { collapse } from './elementwise.js';
import { BUILTINS, Params, WG_INDEX, type OpContext } from './context.js';
import { PRELUDE, cdiv, inBinding, loaders, outBinding, storers } from '../wgsl.js';
import { trySubgroupMatmul } from './matmul-f16.js';

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
export function planMatmul(ctx: OpContext<Op<'matmul'>>, a: View, b: View, yShape: readonly number[]): MatmulPlan {
  const { transA, transB } = ctx.op;
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

function planParams(p: MatmulPlan, yoff: number): Params {
  return new Params().u32(p.M, p.K, p.N, ...p.bshape).i32(...p.abs, ...p.bbs, p.sam, p.sak, p.sbk, p.sbn, p.aoff, p.boff, yoff);
}

/** WGSL lines reading the plan words (see planParams) and locating batch z. */
const PLAN_HEAD = `
  let M = P[0]; let K = P[1]; let N = P[2];
  let z = wid.z;
  let z0 = z % P[3]; let z1 = (z / P[3]) % P[4]; let z2 = z / (P[3] * P[4]);
  let abase = bitcast<i32>(P[16]) + i32(z0) * bitcast<i32>(P[6]) + i32(z1) * bitcast<i32>(P[7]) + i32(z2) * bitcast<i32>(P[8]);
  let bbase = bitcast<i32>(P[17]) + i32(z0) * bitcast<i32>(P[9]) + i32(z1) * bitcast<i32>(P[10]) + i32(z2) * bitcast<i32>(P[11]);
  let sam = bitcast<i32>(P[12]); let sak = bitcast<i32>(P[13]); let sbk = bitcast<i32>(P[14]); let sbn = bitcast<i32>(P[15]);
  let ybase = P[18] + z * M * N;`;

export function matmul(ctx: OpContext<Op<'matmul'>>): void {
  const [a, b] = ctx.inputs;
  if (!a || !b || ctx.inputs.length !== 2 || ctx.outputs.length !== 1) ctx.fail('matmul takes a, b and one output');
  const y = ctx.outputs[0]!;
  const plan = planMatmul(ctx, a, b, y.shape);
  const batches = plan.bshape[0] * plan.bshape[1] * plan.bshape[2];
  if (plan.M === 0 || plan.N === 0 || batches === 0) return;
  const yd = ctx.denseOut(0);
  if (plan.K === 0) {
    const k = ctx.kernel(`zero ${yd.dtype}`, () => `${PRELUDE}
@group(0) @binding(0) var<storage, read> P: array<u32>;
${outBinding(1, 'y', yd.dtype)}
${storers('y', yd.dtype)}
@compute @workgroup_size(256)
fn main(${BUILTINS}) { ${WG_INDEX} let i = wg * 256u + li; if (i < P[0]) { stb_y(P[1] + i, 0u); } }`);
    const n = plan.M * plan.N * batches;
    ctx.run(k, [yd.gpu], new Params().u32(n, yd.offset), [cdiv(n, 256)]);
    return;
  }
  const ab = ctx.buffer(a);
  const bb = ctx.buffer(b);
  if (trySubgroupMatmul(ctx, plan, a.dtype, b.dtype, ab, bb, yd)) return;
  if (plan.M <= 8) gemv(ctx, plan, a.dtype, b.dtype, ab, bb, yd.dtype, yd.gpu, yd.offset, batches);
  else tiled(ctx, plan, a.dtype, b.dtype, ab, bb, yd.dtype, yd.gpu, yd.offset, batches);
}

function tiled(
  ctx: OpContext, p: MatmulPlan, adt: string, bdt: string, ab: GPUBuffer, bb: GPUBuffer,
  ydt: string, yb: GPUBuffer, yoff: number, batches: number,
): void {
  const tiles128 = cdiv(p.M, 128) * cdiv(p.N, 128) * batches;
  const T = tiles128 >= 120 ? 8 : 4; // outputs per thread per dim
  const BM = 16 * T;
  const BK = 8;
  const aKFast = p.sak === 1;
  const bNFast = p.sbn === 1;
  const key = `mm tiled T${T} ${adt}x${bdt}>${ydt} ${aKFast ? 'aK' : 'aM'} ${bNFast ? 'bN' : 'bK'}`;
  const k = ctx.kernel(key, () => {
    const LA = (BM * BK) / 256;
    // Which (row, k) element the l-th load of this thread fetches.
    const aMap = aKFast ? ['idx / 8u', 'idx % 8u'] : ['idx % BM', 'idx / BM'];
    const bMap = bNFast ? ['idx / BM', 'idx % BM'] : ['idx % 8u', 'idx / 8u']; // (k, n)
    const G = T / 4;
    return `${PRELUDE}
@group(0) @binding(0) var<storage, read> P: array<u32>;
${inBinding(1, 'a')}
${inBinding(2, 'b')}
${outBinding(3, 'y', ydt as never)}
${loaders('a', adt as never)}
${loaders('b', bdt as never)}
${storers('y', ydt as never)}
const BM = ${BM}u;
var<workgroup> As: array<vec4<f32>, ${(BK * BM) / 4}>;
var<workgroup> Bs: array<vec4<f32>, ${(BK * BM) / 4}>;
@compute @workgroup_size(256)
fn main(${BUILTINS}) {
  ${PLAN_HEAD}
  let m0 = wid.y * BM; let n0 = wid.x * BM;
  let tx = li % 16u; let ty = li / 16u;
  var acc: array<array<f32, ${T}>, ${T}>;
  for (var i = 0u; i < ${T}u; i++) { for (var j = 0u; j < ${T}u; j++) { acc[i][j] = 0.0; } }
  var ra: array<f32, ${LA}>;
  var rb: array<f32, ${LA}>;
  let ntiles = (K + 7u) / 8u;
  for (var t = 0u; t <= ntiles; t++) {
    if (t > 0u) {
      workgroupBarrier();
      for (var l = 0u; l < ${LA}u; l++) {
        let idx = li + l * 256u;
        let am = ${aMap[0]}; let ak = ${aMap[1]};
        As[(ak * BM + am) / 4u][(ak * BM + am) % 4u] = ra[l];
        let bk = ${bMap[0]}; let bn = ${bMap[1]};
        Bs[(bk * BM + bn) / 4u][(bk * BM + bn) % 4u] = rb[l];
      }
      workgroupBarrier();
    }
    if (t < ntiles) {
      let k0 = t * 8u;
      for (var l = 0u; l < ${LA}u; l++) {
        let idx = li + l * 256u;
        let am = ${aMap[0]}; let ak = ${aMap[1]};
        let gm = m0 + am; let gk = k0 + ak;
        ra[l] = select(0.0, ldf_a(u32(abase + i32(gm) * sam + i32(gk) * sak)), gm < M && gk < K);
        let bk = ${bMap[0]}; let bn = ${bMap[1]};
        let gk2 = k0 + bk; let gn = n0 + bn;
        rb[l] = select(0.0, ldf_b(u32(bbase + i32(gk2) * sbk + i32(gn) * sbn)), gk2 < K && gn < N);
      }
    }
    if (t > 0u) {
      for (var kk = 0u; kk < 8u; kk++) {
        var av: array<f32, ${T}>;
        var bv: array<f32, ${T}>;
        for (var g = 0u; g < ${G}u; g++) {
          let a4 = As[(kk * BM + g * 64u + ty * 4u) / 4u];
          let b4 = Bs[(kk * BM + g * 64u + tx * 4u) / 4u];
          for (var c = 0u; c < 4u; c++) { av[g * 4u + c] = a4[c]; bv[g * 4u + c] = b4[c]; }
        }
        for (var i = 0u; i < ${T}u; i++) { for (var j = 0u; j < ${T}u; j++) { acc[i][j] = fma(av[i], bv[j], acc[i][j]); } }
      }
    }
  }
  for (var i = 0u; i < ${T}u; i++) {
    let m = m0 + (i / 4u) * 64u + ty * 4u + (i % 4u);
    if (m >= M) { continue; }
    for (var j = 0u; j < ${T}u; j++) {
      let n = n0 + (j / 4u) * 64u + tx * 4u + (j % 4u);
      if (n < N) { stf_y(ybase + m * N + n, acc[i][j]); }
    }
  }
}`;
  });
  ctx.run(k, [ab, bb, yb], planParams(p, yoff), [cdiv(p.N, BM), cdiv(p.M, BM), batches]);
}

function gemv(
  ctx: OpContext, p: MatmulPlan, adt: string, bdt: string, ab: GPUBuffer, bb: GPUBuffer,
  ydt: string, yb: GPUBuffer, yoff: number, batches: number,
): void {
  const bK = p.sbk === 1 && p.sbn !== 1;
  // bK: 8 columns per workgroup, 32 lanes along k each; else 32 columns x 8 k-slices.
  const COLS = bK ? 8 : 32;
  const LANES = bK ? 32 : 8;
  const key = `mm gemv ${bK ? 'bK' : 'bN'} ${adt}x${bdt}>${ydt}`;
  const k = ctx.kernel(key, () => `${PRELUDE}
@group(0) @binding(0) var<storage, read> P: array<u32>;
${inBinding(1, 'a')}
${inBinding(2, 'b')}
${outBinding(3, 'y', ydt as never)}
${loaders('a', adt as never)}
${loaders('b', bdt as never)}
${storers('y', ydt as never)}
var<workgroup> red: array<f32, ${8 * 256}>;
@compute @workgroup_size(256)
fn main(${BUILTINS}) {
  ${PLAN_HEAD}
  ${bK ? 'let col = li / 32u; let lane = li % 32u;' : 'let col = li % 32u; let lane = li / 32u;'}
  let n = (wid.x + wid.y * nwg.x) * ${COLS}u + col;
  var acc: array<f32, 8>;
  for (var m = 0u; m < 8u; m++) { acc[m] = 0.0; }
  if (n < N) {
    let bcol = bbase + i32(n) * sbn;
    for (var k = lane; k < K; k += ${LANES}u) {
      let bv = ldf_b(u32(bcol + i32(k) * sbk));
      let ak = abase + i32(k) * sak;
      for (var m = 0u; m < M; m++) { acc[m] = fma(ldf_a(u32(ak + i32(m) * sam)), bv, acc[m]); }
    }
  }
  for (var m = 0u; m < M; m++) { red[m * 256u + li] = acc[m]; }
  workgroupBarrier();
  for (var w = ${LANES / 2}u; w > 0u; w = w >> 1u) {
    if (lane < w) {
      for (var m = 0u; m < M; m++) {
        red[m * 256u + li] = red[m * 256u + li] + red[m * 256u + li + w * ${bK ? 1 : 32}u];
      }
    }
    workgroupBarrier();
  }
  if (lane == 0u && n < N) {
    for (var m = 0u; m < M; m++) { stf_y(ybase + m * N + n, red[m * 256u + li]); }
  }
}`);
  ctx.run(k, [ab, bb, yb], planParams(p, yoff), [cdiv(p.N, COLS), 1, batches]);
}
