// Batched matmul on strided views (transposes and broadcast batches need no copy):
//   tiled      128x128 (or 64x64) output tiles, 8x8 (4x4) per thread, k-steps of 8 staged in
//              workgroup memory with the next step prefetched into registers; any float dtype.
//   f32v4      f32 with 16-byte aligned operands: the same scheme on vec4 loads (matmul-f32.ts).
//   gemv4      M <= 8 (decode), f32/f16 B: 16-byte loads of B (matmul-gemv.ts).
//   gemv       M <= 8 otherwise: each workgroup streams a strip of B once for all rows of A.
//   sgmat      f16 x f16 on tensor cores through subgroup matrices (matmul-f16.ts) when offered.
// Weights shared by every batch (stride 0) fold the batch into M (matmul-plan.ts). A product with
// few output tiles and a long K is split along K ('few': counted in 64x64 tiles, up to 4 ranges;
// on the H200 GPT-2-medium's down-projection at T=512 ran 37% faster): the k-ranges become a
// batch of partial products, which a second pass adds (with the bias and activation).
import type { OpDesc, View } from '../../../tensor/backend.js';
import { BUILTINS, Params, WG_INDEX, type OpContext } from './context.js';
import { PRELUDE, cdiv, inBinding, lines, loaders, outBinding, storers } from '../wgsl.js';
import { trySubgroupMatmul } from './matmul-f16.js';
import { f32Vec4Fits, tiledF32 } from './matmul-f32.js';
import { runSplitK, splitSum, vecGemv, vecGemvFits } from './matmul-gemv.js';
import { envVar } from '../../../io/env.js';
import type { GpuBuffer } from '../runtime.js';
import { PLAN_HEAD_I32 as PLAN_HEAD, applyEpilogue, planMatmul, planParams, type Epilogue, type MatmulPlan } from './matmul-plan.js';

type Op<K extends OpDesc['op']> = Extract<OpDesc, { op: K }>;

export function matmul(ctx: OpContext<Op<'matmul'>>): void {
  const [a, b] = ctx.inputs;
  if (!a || !b || ctx.inputs.length !== 2 || ctx.outputs.length !== 1) ctx.fail('matmul takes a, b and one output');
  product(ctx, planMatmul(ctx, a, b), a, b, null);
}

/**
 * y = act(x · w + bias), x [M, K]: the GEMV and vec4 f32 kernels (and the sum of a split product)
 * apply the bias and activation as they store; other paths run the product, then the epilogue.
 */
export function linear(ctx: OpContext<Op<'linear'>>): void {
  const [x, w, bias] = ctx.inputs;
  if (!x || !w || !bias || ctx.inputs.length !== 3 || ctx.outputs.length !== 1) ctx.fail('linear takes x, w, bias and one output');
  if (bias.dtype !== 'f32' || bias.shape.length !== 1) ctx.fail('bias must be f32 [N]');
  const plan = planMatmul(ctx, x, w, false, ctx.op.transB);
  const bd = ctx.dense(2);
  product(ctx, plan, x, w, { bias: bd.gpu, boff: bd.offset, act: ctx.op.act });
}

function product(ctx: OpContext, plan: MatmulPlan, a: View, b: View, epi: Epilogue | null): void {
  const batches = plan.bshape[0] * plan.bshape[1] * plan.bshape[2];
  if (plan.M === 0 || plan.N === 0 || batches === 0) return;
  const yd = ctx.denseOut(0);
  const later = () => { if (epi) applyEpilogue(ctx, yd.gpu, yd.offset, batches * plan.M * plan.N, plan.N, epi); };
  if (plan.K === 0) {
    const k = ctx.kernel(`zero ${yd.dtype}`, () => `${PRELUDE}
@group(0) @binding(0) var<storage, read> P: array<u32>;
${outBinding(1, 'y', yd.dtype)}
${storers('y', yd.dtype)}
@compute @workgroup_size(256)
fn main(${BUILTINS}) { ${WG_INDEX} let i = wg * 256u + li; if (i < P[0]) { stb_y(P[1] + i, 0u); } }`);
    const n = plan.M * plan.N * batches;
    ctx.run(k, [yd.gpu], new Params().u32(n, yd.offset), [cdiv(n, 256)]);
    later();
    return;
  }
  const ab = ctx.buffer(a);
  const bb = ctx.buffer(b);
  if (trySubgroupMatmul(ctx as OpContext<Op<'matmul'>>, plan, a.dtype, b.dtype, ab, bb, yd)) { later(); return; }
  if (plan.M <= 8 && vecGemvFits(plan, a.dtype, b.dtype)) vecGemv(ctx, plan, a.dtype, b.dtype, ab, bb, yd.dtype, yd.gpu, yd.offset, batches, epi);
  else if (plan.M <= 8) gemv(ctx, plan, a.dtype, b.dtype, ab, bb, yd.dtype, yd.gpu, yd.offset, batches, epi);
  else if (f32Vec4Fits(plan, a.dtype, b.dtype, yd.dtype)) {
    // the sum may wait for the output's next use (an addNorm adds the partials itself) where the
    // backend allows it: no activation, the bias a buffer of its own (not a temporary)
    const bias = epi ? ctx.inputs[2]!.buffer as GpuBuffer : null;
    const defer = !!ctx.canDefer?.() && !epi?.act && (!bias || bias.gpu === epi!.bias);
    const S = batches === 1 ? splitKOf(plan, defer) : 1;
    if (S === 1) tiledF32(ctx, plan, ab, bb, yd.gpu, yd.offset, batches, epi);
    else {
      // k-range i of the split is batch i: A and B step by a chunk of K, partial products at i·M·N
      const chunk = plan.K / S;
      const MN = plan.M * plan.N;
      const part = defer ? ctx.rt.alloc(S * MN * 4) : ctx.temp(S * MN * 4);
      const split: MatmulPlan = { ...plan, K: chunk, bshape: [S, 1, 1], abs: [chunk * plan.sak, 0, 0], bbs: [chunk * plan.sbk, 0, 0] };
      tiledF32(ctx, split, ab, bb, part.gpu, 0, S);
      if (defer) ctx.defer!({ part, S, MN, N: plan.N, bias, boff: epi?.boff ?? 0 });
      else splitSum(ctx, part.gpu, S, MN, 1, yd.dtype, yd.gpu, yd.offset, epi ? { ...epi, N: plan.N } : null);
    }
  } else {
    tiled(ctx, plan, a.dtype, b.dtype, ab, bb, yd.dtype, yd.gpu, yd.offset, batches);
    later();
  }
}

type SplitK = number | 'auto' | 'few';
const splitEnv = envVar('ACTLAB_WEBGPU_SPLITK');
/**
 * The default: 'few'. On the H200 it took GPT-2-medium's MLP down-projection at T=512
 * (512x4096x1024) from 26.8 to 36.6 TFLOP/s and the model's prefill from 28316 to 30497 tok/s
 * (bench/RESULTS.md, eighth pass).
 */
export const DEFAULT_SPLITK = 'few';
const FEW_MIN_K = 2048;
/**
 * With the sum deferred: GPT-2-medium's attention output at T=512 (512x1024x1024) in 2 ranges took
 * 45.7 us against 53 (H200; prefill GPU time 13.85 -> 13.70 ms, bench/RESULTS.md).
 */
let FEW_MIN_K_DEFERRED = Number(envVar('ACTLAB_WEBGPU_FEW_MINK_DEFERRED') ?? '') || 1024;
/** The shortest K that 'few' splits when the sum may be deferred (benchmarks). */
export function setFewMinKDeferred(k: number): void {
  FEW_MIN_K_DEFERRED = k;
}
let splitK: SplitK = splitEnv === 'auto' || splitEnv === 'few' ? splitEnv : splitEnv ? Number(splitEnv) || 1 : DEFAULT_SPLITK;
/** K-split of single f32 products: S ranges, 'auto' / 'few' (the heuristics below; 'few' is the default), or 1 (off); ACTLAB_WEBGPU_SPLITK sets it too. */
export function setMatmulSplitK(s: SplitK): void {
  splitK = s;
}

/**
 * How many k-ranges a single f32 product is split into. 'auto': where its 128x128 tiles fill less
 * than half of a large GPU's 132 SMs and K is long, up to 8 ranges of at least 512 (each a
 * multiple of 16), keeping the tiles of all ranges within two waves.
 */
function splitKOf(p: MatmulPlan, deferrable: boolean): number {
  const fits = (S: number) => p.K % (16 * S) === 0;
  if (splitK === 'few') {
    // 'few': counted in 64x64 tiles, up to 4 ranges of at least 512 while all ranges' tiles fit in
    // four waves; K from FEW_MIN_K on, or from FEW_MIN_K_DEFERRED where the sum may wait for its
    // reader (an addNorm adds it with no dispatch of its own; any other reader pays the sum's pass)
    const t64 = Math.ceil(p.M / 64) * Math.ceil(p.N / 64);
    if (p.M < 64 || t64 >= 264 || p.K < (deferrable ? FEW_MIN_K_DEFERRED : FEW_MIN_K)) return 1;
    for (const S of [4, 2]) if (p.K / S >= 512 && fits(S) && t64 * S <= 528) return S;
    return 1;
  }
  if (splitK !== 'auto') return splitK > 1 && fits(splitK) ? splitK : 1;
  const tiles = Math.ceil(p.M / 128) * Math.ceil(p.N / 128);
  if (p.M < 64 || tiles >= 66 || p.K < 2048) return 1;
  for (const S of [8, 4, 2]) if (p.K / S >= 512 && fits(S) && tiles * S <= 264) return S;
  return 1;
}

/** Unrolled WGSL of the tiled kernel: T x T outputs per thread (T = 8 or 4), BK = 16. */
function tiledCode(T: number, aKFast: boolean, bNFast: boolean, adt: string, bdt: string, ydt: string): string {
  const BM = 16 * T;
  const BK = 16;
  const S = BM + 4; // padded row of the staged tiles (bank conflicts)
  const LA = (BM * BK) / 256;
  // Per load l: (row, k) of A and (k, col) of B relative to the tile, as thread base + constant.
  const aAt = (l: number) => (aKFast ? [`am0 + ${l * (256 / BK)}u`, 'ak0'] : ['am0', `ak0 + ${l * (256 / BM)}u`]);
  const bAt = (l: number) => (bNFast ? [`bk0 + ${l * (256 / BM)}u`, 'bn0'] : ['bk0', `bn0 + ${l * (256 / BK)}u`]);
  const rows = (i: number) => `${Math.floor(i / 4) * 64 + (i % 4)}u`;
  const G = T / 4;
  return `${PRELUDE}
@group(0) @binding(0) var<storage, read> P: array<u32>;
${inBinding(1, 'a')}
${inBinding(2, 'b')}
${outBinding(3, 'y', ydt as never)}
${loaders('a', adt as never)}
${loaders('b', bdt as never)}
${storers('y', ydt as never)}
var<workgroup> As: array<vec4<f32>, ${(BK * S) / 4}>;
var<workgroup> Bs: array<vec4<f32>, ${(BK * S) / 4}>;
@compute @workgroup_size(256)
fn main(${BUILTINS}) {
  ${PLAN_HEAD}
  let m0 = wid.y * ${BM}u; let n0 = wid.x * ${BM}u;
  let tx = li % 16u; let ty = li / 16u;
  ${aKFast ? `let am0 = li / ${BK}u; let ak0 = li % ${BK}u;` : `let am0 = li % ${BM}u; let ak0 = li / ${BM}u;`}
  ${bNFast ? `let bk0 = li / ${BM}u; let bn0 = li % ${BM}u;` : `let bk0 = li % ${BK}u; let bn0 = li / ${BK}u;`}
${lines(T * T, (q) => `  var c${q} = 0.0;`)}
${lines(LA, (l) => `  var ra${l} = 0.0; var rb${l} = 0.0;`)}
  let ntiles = (K + ${BK - 1}u) / ${BK}u;
  for (var t = 0u; t <= ntiles; t++) {
    if (t > 0u) {
      workgroupBarrier();
${lines(LA, (l) => {
    const [am, ak] = aAt(l);
    const [bk, bn] = bAt(l);
    return `      { let ia = (${ak}) * ${S}u + ${am}; As[ia >> 2u][ia & 3u] = ra${l}; let ib = (${bk}) * ${S}u + ${bn}; Bs[ib >> 2u][ib & 3u] = rb${l}; }`;
  })}
      workgroupBarrier();
    }
    if (t < ntiles) {
      let k0 = t * ${BK}u;
${lines(LA, (l) => {
    const [am, ak] = aAt(l);
    const [bk, bn] = bAt(l);
    return `      { let gm = m0 + ${am}; let gk = k0 + ${ak}; ra${l} = select(0.0, ldf_a(u32(abase + i32(gm) * sam + i32(gk) * sak)), gm < M && gk < K);
        let hk = k0 + ${bk}; let gn = n0 + ${bn}; rb${l} = select(0.0, ldf_b(u32(bbase + i32(hk) * sbk + i32(gn) * sbn)), hk < K && gn < N); }`;
  })}
    }
    if (t > 0u) {
      for (var kk = 0u; kk < ${BK}u; kk++) {
${lines(G, (g) => `        let a${g} = As[(kk * ${S}u + ${g * 64}u + ty * 4u) >> 2u]; let b${g} = Bs[(kk * ${S}u + ${g * 64}u + tx * 4u) >> 2u];`)}
${lines(T * T, (q) => {
    const i = Math.floor(q / T);
    const j = q % T;
    return `        c${q} = fma(a${Math.floor(i / 4)}[${i % 4}], b${Math.floor(j / 4)}[${j % 4}], c${q});`;
  })}
      }
    }
  }
${lines(T, (i) => `  { let m = m0 + ${rows(i)} + ty * 4u; if (m < M) {
${lines(T / 2, (jj) => {
    const j = jj * 2;
    return `    { let n = n0 + ${rows(j)} + tx * 4u; if (n + 1u < N) { stf2_y(ybase + m * N + n, c${i * T + j}, c${i * T + j + 1}); } else if (n < N) { stf_y(ybase + m * N + n, c${i * T + j}); } }`;
  })}
  } }`)}
}`;
}

function tiled(
  ctx: OpContext, p: MatmulPlan, adt: string, bdt: string, ab: GPUBuffer, bb: GPUBuffer,
  ydt: string, yb: GPUBuffer, yoff: number, batches: number,
): void {
  const tiles128 = cdiv(p.M, 128) * cdiv(p.N, 128) * batches;
  // outputs per thread per dim; 8 stages 16.5 KiB, over WebGPU's default 16 KiB of workgroup memory
  const T = tiles128 >= 120 && 2 * 16 * (128 + 4) * 4 <= ctx.rt.device.limits.maxComputeWorkgroupStorageSize ? 8 : 4;
  const BM = 16 * T;
  const aKFast = p.sak === 1;
  const bNFast = p.sbn === 1;
  const key = `mm tiled T${T} ${adt}x${bdt}>${ydt} ${aKFast ? 'aK' : 'aM'} ${bNFast ? 'bN' : 'bK'}`;
  const k = ctx.kernel(key, () => tiledCode(T, aKFast, bNFast, adt, bdt, ydt));
  ctx.run(k, [ab, bb, yb], planParams(p, yoff), [cdiv(p.N, BM), cdiv(p.M, BM), batches]);
}

/**
 * M <= 8 rows against a wide B, split along K over grid.y so that enough workgroups stream B:
 * partial sums go to a temporary and a second pass adds them (one pass when K is not split).
 */
function gemv(
  ctx: OpContext, p: MatmulPlan, adt: string, bdt: string, ab: GPUBuffer, bb: GPUBuffer,
  ydt: string, yb: GPUBuffer, yoff: number, batches: number, epi: Epilogue | null,
): void {
  const bK = p.sbk === 1 && p.sbn !== 1;
  // bK: 8 columns per workgroup, 32 lanes along k each; else 64 columns x 4 k-slices.
  const COLS = bK ? 8 : 64;
  const LANES = bK ? 32 : 4;
  const wgs = cdiv(p.N, COLS) * batches;
  const S = Math.max(1, Math.min(cdiv(528, wgs), Math.floor(p.K / 64), 64));
  const chunk = cdiv(p.K, S);
  const split = S > 1;
  const key = `mm gemv ${bK ? 'bK' : 'bN'} ${adt}x${bdt}>${split ? 'f32' : ydt} ${split ? 'split' : ''}`;
  const k = ctx.kernel(key, () => `${PRELUDE}
@group(0) @binding(0) var<storage, read> P: array<u32>;
${inBinding(1, 'a')}
${inBinding(2, 'b')}
${outBinding(3, 'y', (split ? 'f32' : ydt) as never)}
${loaders('a', adt as never)}
${loaders('b', bdt as never)}
${storers('y', (split ? 'f32' : ydt) as never)}
var<workgroup> red: array<f32, ${8 * 256}>;
@compute @workgroup_size(256)
fn main(${BUILTINS}) {
  ${PLAN_HEAD}
  ${bK ? 'let col = li / 32u; let lane = li % 32u;' : `let col = li % ${COLS}u; let lane = li / ${COLS}u;`}
  let n = wid.x * ${COLS}u + col;
  let kbeg = wid.y * P[19];
  let kend = min(K, kbeg + P[19]);
  var acc: array<f32, 8>;
  for (var m = 0u; m < 8u; m++) { acc[m] = 0.0; }
  if (n < N) {
    let bcol = bbase + i32(n) * sbn;
    var k = kbeg + lane;
    for (; k + ${LANES}u < kend; k += ${2 * LANES}u) {
      let b0 = ldf_b(u32(bcol + i32(k) * sbk));
      let b1 = ldf_b(u32(bcol + i32(k + ${LANES}u) * sbk));
      let ak = abase + i32(k) * sak;
      for (var m = 0u; m < M; m++) {
        let am = ak + i32(m) * sam;
        acc[m] = fma(ldf_a(u32(am)), b0, fma(ldf_a(u32(am + ${LANES} * sak)), b1, acc[m]));
      }
    }
    if (k < kend) {
      let b0 = ldf_b(u32(bcol + i32(k) * sbk));
      let ak = abase + i32(k) * sak;
      for (var m = 0u; m < M; m++) { acc[m] = fma(ldf_a(u32(ak + i32(m) * sam)), b0, acc[m]); }
    }
  }
  for (var m = 0u; m < M; m++) { red[m * 256u + li] = acc[m]; }
  workgroupBarrier();
  for (var w = ${LANES / 2}u; w > 0u; w = w >> 1u) {
    if (lane < w) {
      for (var m = 0u; m < M; m++) {
        red[m * 256u + li] = red[m * 256u + li] + red[m * 256u + li + w * ${bK ? 1 : COLS}u];
      }
    }
    workgroupBarrier();
  }
  if (lane == 0u && n < N) {
    // split: partial sums at [(z * S + split) * M + m] * N + n of a temporary
    let out = ${split ? '((wid.z * nwg.y + wid.y) * M) * N' : 'ybase'};
    for (var m = 0u; m < M; m++) { stf_y(out + m * N + n, red[m * 256u + li]); }
  }
}`);
  runSplitK(ctx, k, p, planParams(p, yoff).u32(chunk), cdiv(p.N, COLS), S, batches, [ab, bb], ydt, yb, yoff, epi);
}
