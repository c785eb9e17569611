// Few-row products (M <= 8, decode) on 16-byte loads of B: each lane reads B in chunks of 4 f32 or
// 8 f16 (one vec4<u32>), so a workgroup streams B at close to the memory bandwidth.
//   bK  B's k axis is the fast one (weights as [N, K], nn.Linear): 256/T rows per workgroup,
//       T lanes along each row, A read in matching 16-byte chunks; lanes summed in workgroup memory.
//   bN  B's n axis is the fast one (weights as [K, N], GPT-2's Conv1D): each lane owns one chunk
//       of columns, 256/CH lanes along k; k-slices summed in workgroup memory.
// Where the columns alone leave the GPU short of workgroups and the weights are large, K is split
// over grid.y: partial sums go to a temporary and `splitSum` adds them. Used when the dtypes and alignment fit (see
// `vecGemvFits`); the scalar `gemv` of matmul.ts takes the rest.
import type { DType } from '../../../tensor/dtype.js';
import { BUILTINS, Params, WG_INDEX, type OpContext } from './context.js';
import type { Kernel } from '../runtime.js';
import { envVar } from '../../../io/env.js';
import { MATH, PRELUDE, cdiv, inBinding, lines, loaders, outBinding, storers } from '../wgsl.js';
import { PLAN_HEAD, applyEpilogue, epiCode, epiKey, planParams, type Epilogue, type MatmulPlan } from './matmul-plan.js';

/** Elements of B per 16-byte chunk. */
const chunkOf = (d: string) => (d === 'f32' ? 4 : d === 'f16' ? 8 : 0);

let on = true;
/**
 * 'shape' (the default): products of at most GEMV_UNSPLIT_MAX weights in one dispatch, larger ones
 * as 'auto'. 'auto' splits K where the columns alone leave the GPU short of workgroups (two
 * dispatches per product: the partial sums, then their sum with the epilogue); 'off' never splits
 * and narrows the bN kernel's column strips instead (one dispatch per linear layer: fewer
 * dispatches for a decode step whose time goes to the host). ACTLAB_WEBGPU_GEMV_SPLIT sets it too.
 */
export type GemvSplit = 'shape' | 'auto' | 'off';
const splitEnv = envVar('ACTLAB_WEBGPU_GEMV_SPLIT');
let gemvSplit: GemvSplit = splitEnv === 'off' || splitEnv === 'auto' ? splitEnv : 'shape';
export function setGemvSplit(s: GemvSplit): void {
  gemvSplit = s;
}
/**
 * Weights (K x N x batches) up to which 'shape' keeps a product unsplit: GPT-2 small's and medium's
 * linear layers (up to 1024 x 4096). On the H200 the unsplit GPT-2-small decode step was as fast
 * or faster in every interleaved run (2.92 against 3.13 ms/token, hooked 3.04 against 3.10; on a
 * slower host 3.48 against 4.15 hooked) and medium's was level (5.50 / 5.57); larger weights
 * (llama shapes) stream faster split (bench/RESULTS.md).
 */
export const GEMV_UNSPLIT_MAX = 1 << 22;
const unsplit = (p: MatmulPlan, batches: number) => gemvSplit === 'off' || (gemvSplit === 'shape' && p.K * p.N * batches <= GEMV_UNSPLIT_MAX);

/** Turns the vec4 GEMV off (the scalar one runs instead), for comparisons. */
export function enableVecGemv(v: boolean): void {
  on = v;
}

/** Whether the vec4 GEMV applies: f32/f16 B with 16-byte aligned chunks (and A's, for bK). */
export function vecGemvFits(p: MatmulPlan, adt: string, bdt: string): boolean {
  const V = chunkOf(bdt);
  if (!on || !V || (adt !== 'f32' && adt !== 'f16')) return false;
  // (checked on every decode step: no rest arguments or closures)
  const bOk = (x: number) => p.boff % V === 0 && p.bbs[0] % V === 0 && p.bbs[1] % V === 0 && p.bbs[2] % V === 0 && x % V === 0;
  if (p.sbk === 1 && p.sbn !== 1) {
    // A in chunks of V along k too: f32 A (V*4 bytes) or f16 A with V = 8 (16 bytes)
    if (adt === 'f16' && V !== 8) return false;
    const VA = adt === 'f32' ? 4 : 8;
    const aOk = p.sam % VA === 0 && p.aoff % VA === 0 && p.abs[0] % VA === 0 && p.abs[1] % VA === 0 && p.abs[2] % VA === 0;
    return p.sak === 1 && p.K % V === 0 && bOk(p.sbn) && aOk;
  }
  return p.sbn === 1 && p.N % V === 0 && bOk(p.sbk);
}

/** WGSL: the chunk q (vec4<u32>) of dtype d as vec4<f32> values `${out}0` (and `${out}1` for f16). */
function decode(d: string, q: string, out: string): string {
  return d === 'f32'
    ? `let ${out}0 = bitcast<vec4<f32>>(${q});`
    : `let ${out}0 = vec4<f32>(unpack2x16float(${q}.x), unpack2x16float(${q}.y)); let ${out}1 = vec4<f32>(unpack2x16float(${q}.z), unpack2x16float(${q}.w));`;
}

/** Where the output of (m, column n) goes: y itself, or the split's partial sums (f32). */
const OUT = (split: boolean) => (split ? '((wid.z * nwg.y + wid.y) * M + m) * N + n' : 'ybase + m * N + n');

/** WGSL of y's value v at column n: with the linear layer's epilogue (unsplit products) or as it is. */
const EPI = (epi: Epilogue | null, v: string, n: string) => (epi ? `epi(${v}, ${n})` : v);
/** The epilogue's bias binding (4, after y) and its offset (word 20, after the k-range length). */
const epiDecl = (epi: Epilogue | null) => (epi ? `${MATH}\n${epiCode(epi, 4, 20)}` : '');

function bKCode(M: number, T: number, adt: string, bdt: string, ydt: string, split: boolean, epi: Epilogue | null = null): string {
  const V = chunkOf(bdt);
  // A's chunk of V elements at element e, as vec4<f32> a0 (and a1 when V = 8)
  const loadA = (e: string) => adt === 'f16'
    ? decode('f16', `a[(${e}) >> 3u]`, 'a')
    : V === 4 ? `let a0 = bitcast<vec4<f32>>(a[(${e}) >> 2u]);`
      : `let a0 = bitcast<vec4<f32>>(a[(${e}) >> 2u]); let a1 = bitcast<vec4<f32>>(a[((${e}) >> 2u) + 1u]);`;
  const dotm = (m: number) => `      { ${loadA(`ak + ${m}u * sam`)} acc${m} = acc${m} + dot(a0, b0)${V === 8 ? ' + dot(a1, b1)' : ''}; }`;
  return `${PRELUDE}
@group(0) @binding(0) var<storage, read> P: array<u32>;
@group(0) @binding(1) var<storage, read> a: array<vec4<u32>>;
@group(0) @binding(2) var<storage, read> b: array<vec4<u32>>;
${outBinding(3, 'y', (split ? 'f32' : ydt) as DType)}
${storers('y', (split ? 'f32' : ydt) as DType)}
${epiDecl(epi)}
var<workgroup> red: array<f32, ${M * 256}>;
@compute @workgroup_size(256)
fn main(${BUILTINS}) {
  ${PLAN_HEAD}
  let kbeg = wid.y * P[19]; let kend = min(K, kbeg + P[19]);
  let r = li / ${T}u; let t = li % ${T}u;
  let n = wid.x * ${256 / T}u + r;
${lines(M, (m) => `  var acc${m} = 0.0;`)}
  if (n < N) {
    let brow = bbase + n * sbn;
    for (var k = kbeg + t * ${V}u; k < kend; k += ${T * V}u) {
      let q = b[(brow + k) >> ${Math.log2(V)}u];
      ${decode(bdt, 'q', 'b')}
      let ak = abase + k;
${lines(M, dotm)}
    }
  }
${lines(M, (m) => `  red[${m * 256}u + li] = acc${m};`)}
  workgroupBarrier();
  for (var w = ${T / 2}u; w > 0u; w = w >> 1u) {
    if (t < w) {
${lines(M, (m) => `      red[${m * 256}u + li] = red[${m * 256}u + li] + red[${m * 256}u + li + w];`)}
    }
    workgroupBarrier();
  }
  if (t == 0u && n < N) {
    for (var m = 0u; m < M; m++) { stf_y(${OUT(split)}, ${EPI(epi, 'red[m * 256u + li]', 'n')}); }
  }
}`;
}

function bNCode(M: number, CH: number, adt: string, bdt: string, ydt: string, split: boolean, epi: Epilogue | null = null): string {
  const V = chunkOf(bdt);
  const KS = 256 / CH;
  const G = V / 4; // vec4 accumulators per row of A
  return `${PRELUDE}
@group(0) @binding(0) var<storage, read> P: array<u32>;
${inBinding(1, 'a')}
@group(0) @binding(2) var<storage, read> b: array<vec4<u32>>;
${outBinding(3, 'y', (split ? 'f32' : ydt) as DType)}
${loaders('a', adt as DType)}
${storers('y', (split ? 'f32' : ydt) as DType)}
${epiDecl(epi)}
var<workgroup> red: array<vec4<f32>, ${256 * G}>;
@compute @workgroup_size(256)
fn main(${BUILTINS}) {
  ${PLAN_HEAD}
  let kbeg = wid.y * P[19]; let kend = min(K, kbeg + P[19]);
  let c = li % ${CH}u; let s = li / ${CH}u;
  let n0 = (wid.x * ${CH}u + c) * ${V}u;
${lines(M * G, (i) => `  var acc${i} = vec4<f32>(0.0);`)}
  if (n0 < N) {
    for (var k = kbeg + s; k < kend; k += ${KS}u) {
      let q = b[(bbase + k * sbk + n0) >> ${Math.log2(V)}u];
      ${decode(bdt, 'q', 'b')}
      let ak = abase + k * sak;
${lines(M, (m) => `      { let x = vec4<f32>(ldf_a(ak + ${m}u * sam)); ${lines(G, (g) => `acc${m * G + g} = fma(x, b${g}, acc${m * G + g});`)} }`)}
    }
  }
${lines(M, (m) => `  {
${lines(G, (g) => `    red[li * ${G}u + ${g}u] = acc${m * G + g};`)}
    workgroupBarrier();
    for (var w = ${KS / 2}u; w > 0u; w = w >> 1u) {
      if (s < w) {
${lines(G, (g) => `        red[li * ${G}u + ${g}u] = red[li * ${G}u + ${g}u] + red[(li + w * ${CH}u) * ${G}u + ${g}u];`)}
      }
      workgroupBarrier();
    }
    if (s == 0u && n0 < N) {
      let m = ${m}u;
${lines(V, (e) => `      { let n = n0 + ${e}u; stf_y(${OUT(split)}, ${EPI(epi, `red[li * ${G}u + ${e >> 2}u][${e & 3}]`, 'n')}); }`)}
    }
    workgroupBarrier();
  }`)}
}`;
}

/** Runs the vec4 GEMV (the caller checked `vecGemvFits`). */
export function vecGemv(
  ctx: OpContext, p: MatmulPlan, adt: string, bdt: string, ab: GPUBuffer, bb: GPUBuffer,
  ydt: string, yb: GPUBuffer, yoff: number, batches: number, epi: Epilogue | null = null,
): void {
  const V = chunkOf(bdt);
  const bK = p.sbk === 1 && p.sbn !== 1;
  const chunks = cdiv(p.K, V); // per row of B (bK)
  // bK: lanes per row, from 32 (8 rows per workgroup) up to 256 for short and few rows
  const T = bK ? Math.min(256, Math.max(32, 2 ** Math.ceil(Math.log2(Math.max(1, chunks / 16))))) : 0;
  let CH = bK ? 0 : Math.min(32, 2 ** Math.ceil(Math.log2(cdiv(p.N, V))));
  // unsplit: narrower column strips (down to 4 chunks) until about one workgroup per SM (132)
  const one = unsplit(p, batches);
  if (!bK && one) while (CH > 4 && cdiv(p.N, CH * V) * batches < 132) CH >>= 1;
  const wgs = (bK ? cdiv(p.N, 256 / T) : cdiv(p.N, CH * V)) * batches;
  // split K until about 4 workgroups per SM of a large GPU (132 SMs), each k-range >= 4 steps
  const step = bK ? T * V : 256 / CH;
  const S = wgs >= 256 || one ? 1 : Math.max(1, Math.min(cdiv(528, wgs), Math.floor(p.K / (4 * step)), 64));
  const chunk = bK ? cdiv(cdiv(p.K, S), V) * V : cdiv(p.K, S);
  const split = S > 1;
  // unsplit: the bias and activation are applied as the kernel stores (one dispatch per linear layer)
  const inKernel = split ? null : epi;
  const key = `mm gemv4 ${bK ? `bK${T}` : `bN${CH}`} m${p.M} ${adt}x${bdt}>${split ? 'f32 split' : ydt}${epiKey(inKernel)}`;
  const k = ctx.kernel(key, () => (bK ? bKCode(p.M, T, adt, bdt, ydt, split, inKernel) : bNCode(p.M, CH, adt, bdt, ydt, split, inKernel)));
  const params = planParams(p, yoff).u32(chunk);
  if (inKernel) params.u32(inKernel.boff);
  runSplitK(ctx, k, p, params, bK ? cdiv(p.N, 256 / T) : cdiv(p.N, CH * V), S, batches, [ab, bb], ydt, yb, yoff, epi, !!inKernel);
}

/**
 * Runs a GEMV kernel on a grid of (column groups, S k-ranges, batches): straight into y when S = 1,
 * else into f32 partial sums that `splitSum` then adds into y.
 */
export function runSplitK(
  ctx: OpContext, k: Kernel, p: MatmulPlan, params: Params, cols: number, S: number, batches: number,
  inputs: [GPUBuffer, GPUBuffer], ydt: string, yb: GPUBuffer, yoff: number, epi: Epilogue | null = null, epiInKernel = false,
): void {
  // the kernels index columns by wid.x alone (wid.y is the k-split), so x cannot be folded
  if (cols > ctx.rt.device.limits.maxComputeWorkgroupsPerDimension) ctx.fail(`N = ${p.N} needs ${cols} workgroups along x, over the device's limit`);
  if (S === 1) {
    ctx.run(k, epi && epiInKernel ? [...inputs, yb, epi.bias] : [...inputs, yb], params, [cols, 1, batches]);
    if (epi && !epiInKernel) applyEpilogue(ctx, yb, yoff, batches * p.M * p.N, p.N, epi);
    return;
  }
  const part = ctx.temp(batches * S * p.M * p.N * 4);
  ctx.run(k, [...inputs, part.gpu], params, [cols, S, batches]);
  splitSum(ctx, part.gpu, S, p.M * p.N, batches, ydt, yb, yoff, epi ? { ...epi, N: p.N } : null);
}

let sumVec4 = envVar('ACTLAB_WEBGPU_SPLITSUM_V4') !== '0';
/** Turns the four-wide sum of the k-ranges on or off (one element a thread instead); ACTLAB_WEBGPU_SPLITSUM_V4=0 starts it off. */
export function setSplitSumVec4(on: boolean): void {
  sumVec4 = on;
}

/**
 * y[z, r] = Σ_i x[(z * S + i) * MN + r]: the partial sums of a k-split product (then the
 * epilogue, for a linear layer: act(sum + bias[r % N])). Where MN is a multiple of 4 and S at
 * most 8, each thread sums four neighbours from 16-byte loads of the S ranges, all issued before
 * the first add (S a constant): one element a thread left the prefill's sum of 512x1024 outputs
 * at a quarter of the memory bandwidth.
 */
export function splitSum(
  ctx: OpContext, x: GPUBuffer, S: number, MN: number, batches: number, ydt: string, yb: GPUBuffer, yoff: number,
  epi: (Epilogue & { N: number }) | null = null,
): void {
  if (sumVec4 && MN % 4 === 0 && S <= 8) return splitSum4(ctx, x, S, MN, batches, ydt, yb, yoff, epi);
  const sum = ctx.kernel(`mm gemv sum >${ydt}${epiKey(epi)}`, () => `${PRELUDE}${epi ? MATH : ''}
@group(0) @binding(0) var<storage, read> P: array<u32>;
${inBinding(1, 'x')}
${outBinding(2, 'y', ydt as DType)}
${storers('y', ydt as DType)}
${epi ? epiCode(epi, 3, 4) : ''}
@compute @workgroup_size(256)
fn main(${BUILTINS}) {
  ${WG_INDEX}
  let e = wg * 256u + li;
  let MN = P[0]; let S = P[1];
  if (e >= MN * P[2]) { return; }
  let z = e / MN; let r = e % MN;
  var s = 0.0;
  for (var i = 0u; i < S; i++) { s = s + bitcast<f32>(x[(z * S + i) * MN + r]); }
  stf_y(P[3] + e, ${epi ? 'epi(s, r % P[5])' : 's'});
}`);
  const n = MN * batches;
  const params = new Params().u32(MN, S, batches, yoff);
  if (epi) params.u32(epi.boff, epi.N);
  ctx.run(sum, epi ? [x, yb, epi.bias] : [x, yb], params, [cdiv(n, 256)]);
}

/** `splitSum` four elements a thread: x as vec4 (the temporary starts at 0 and MN % 4 == 0), S unrolled. */
function splitSum4(
  ctx: OpContext, x: GPUBuffer, S: number, MN: number, batches: number, ydt: string, yb: GPUBuffer, yoff: number,
  epi: (Epilogue & { N: number }) | null,
): void {
  const sum = ctx.kernel(`mm gemv sum4 s${S} >${ydt}${epiKey(epi)}`, () => `${PRELUDE}${epi ? MATH : ''}
@group(0) @binding(0) var<storage, read> P: array<u32>;
@group(0) @binding(1) var<storage, read> x: array<vec4<f32>>;
${outBinding(2, 'y', ydt as DType)}
${storers('y', ydt as DType)}
${epi ? epiCode(epi, 3, 4) : ''}
@compute @workgroup_size(256)
fn main(${BUILTINS}) {
  ${WG_INDEX}
  // MN4: vec4s per batch
  let e = wg * 256u + li;
  let MN4 = P[0] / 4u;
  if (e >= MN4 * P[2]) { return; }
  let z = e / MN4; let r = e % MN4;
  let base = z * ${S}u * MN4 + r;
${lines(S, (i) => `  let p${i} = x[base + ${i}u * MN4];`)}
  let s = ${Array.from({ length: S }, (_, i) => `p${i}`).join(' + ')};
  let o = P[3] + e * 4u;
${lines(4, (c) => `  stf_y(o + ${c}u, ${epi ? `epi(s[${c}], (r * 4u + ${c}u) % P[5])` : `s[${c}]`});`)}
}`);
  const n4 = (MN / 4) * batches;
  const params = new Params().u32(MN, S, batches, yoff);
  if (epi) params.u32(epi.boff, epi.N);
  ctx.run(sum, epi ? [x, yb, epi.bias] : [x, yb], params, [cdiv(n4, 256)]);
}
