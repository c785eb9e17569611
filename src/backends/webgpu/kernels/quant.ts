// WebGPU kernels on GGML blocks (q8_0, q4_0, q4_1, q5_0, q5_1, q4_k, q5_k, q6_k, iq4_nl) read
// where they lie, from a storage buffer of u32 words (decoders: quant-wgsl.ts):
//   dequantize  one thread per 8 values, bit for bit the reference's values
//   qmatmul     y [M, N] = x [M, K] · Wᵀ, f32 accumulation, x used as it is (not rounded to 8 bits):
//     gemv  M <= 8 (decode): q4_0, q4_k and q8_0 with x rounded to 8 bits per 32 values and
//           integer dot products (quant-gemv.ts; where the adapter has packed_4x8_integer_dot_product);
//           the other types on x as it is: T lanes per group of weight rows (4 rows when M = 1, else 2), each
//           lane takes every T-th 32-value unit of them, decodes it once for all M rows of x
//           (scale and min applied once per unit), lanes summed in workgroup memory; the weight
//           streams through once.
//     gemm  otherwise (prefill): 64 x 64 output tiles, 4 x 4 per thread; per step of 32 values
//           along k the x tile and the dequantized weight tile are staged in workgroup memory.
// Not for: block types outside WGSL_BLOCK (declined in supportsOp).
import type { OpDesc, QuantType } from '../../../tensor/backend.js';
import { BUILTINS, Params, WG_INDEX, numel, type Dense, type OpContext } from './context.js';
import { PRELUDE, cdiv, lines, outBinding, storers } from '../wgsl.js';
import { WGSL_BLOCK, quantDecoders } from './quant-wgsl.js';
import { A8_GEMV_TYPES, QGEMV_TUNING, gemvA8, hasPackedDot } from './quant-gemv.js';

type Op<K extends OpDesc['op']> = Extract<OpDesc, { op: K }>;

/** The formats these kernels decode (others are declined in supportsOp). */
export const WEBGPU_QUANT_TYPES = new Set<string>(Object.keys(WGSL_BLOCK));

/** Largest M that takes the GEMV. */
const GEMV_MAX_M = 8;

const W_BINDING = (i: number) => `@group(0) @binding(${i}) var<storage, read> W: array<u32>;`;

/** The raw blocks of input i with a byte offset that is a multiple of 4 (copied when it is not). */
function rawBlocks(ctx: OpContext, i: number): Dense {
  const v = ctx.inputs[i]!;
  if (v.dtype !== 'u8') ctx.fail(`raw input ${i} must be u8`);
  const d = ctx.dense(i);
  if (d.offset % 4 === 0) return d;
  return ctx.denseCopy(v);
}

function blocksOf(ctx: OpContext, type: QuantType): { bytes: number; units: number } {
  const b = (WGSL_BLOCK as Partial<Record<QuantType, { bytes: number; units: number }>>)[type];
  if (!b) ctx.fail(`unknown quant type '${type}'`);
  return b;
}

export function dequantize(ctx: OpContext<Op<'dequantize'>>): void {
  const { type } = ctx.op;
  const { bytes, units } = blocksOf(ctx, type);
  const nOut = numel(ctx.outputs[0]!.shape);
  const values = 32 * units;
  if (nOut % values !== 0) ctx.fail(`output size ${nOut} is not a multiple of ${values}`);
  if (numel(ctx.inputs[0]!.shape) !== (nOut / values) * bytes) ctx.fail(`expected ${(nOut / values) * bytes} raw bytes for ${nOut / values} blocks`);
  if (nOut === 0) return;
  const rd = rawBlocks(ctx, 0);
  const yd = ctx.denseOut(0);
  const k = ctx.kernel(`dequantize ${type}>${yd.dtype}`, () => `${PRELUDE}
@group(0) @binding(0) var<storage, read> P: array<u32>;
${W_BINDING(1)}
${outBinding(2, 'y', yd.dtype)}
${quantDecoders(type)}
${storers('y', yd.dtype)}
@compute @workgroup_size(256)
fn main(${BUILTINS}) {
  ${WG_INDEX}
  let e = wg * 256u + li;
  if (e >= P[0]) { return; }
  let v = deq8(P[1], e >> 2u, e & 3u);
  let o = P[2] + e * 8u;
  for (var i = 0u; i < 4u; i++) { stf_y(o + i, v[0][i]); stf_y(o + 4u + i, v[1][i]); }
}`);
  const n8 = nOut / 8;
  ctx.run(k, [rd.gpu, yd.gpu], new Params().u32(n8, rd.offset, yd.offset), [cdiv(n8, 256)]);
}

export function qmatmul(ctx: OpContext<Op<'qmatmul'>>): void {
  const { type } = ctx.op;
  const { bytes, units } = blocksOf(ctx, type);
  const x = ctx.inputs[0]!;
  const y = ctx.outputs[0]!;
  if (x.dtype !== 'f32' || x.shape.length !== 2) ctx.fail('x must be f32 [M, K]');
  const [M, K] = x.shape as [number, number];
  if (y.shape.length !== 2 || y.shape[0] !== M) ctx.fail('output must be [M, N]');
  const N = y.shape[1]!;
  const values = 32 * units;
  if (K % values) ctx.fail(`K = ${K} is not a multiple of the ${type} block of ${values}`);
  const rowBytes = (K / values) * bytes;
  if (numel(ctx.inputs[1]!.shape) !== N * rowBytes) ctx.fail(`expected ${N * rowBytes} raw bytes for a [${N}, ${K}] weight`);
  if (M === 0 || N === 0) return;
  const yd = ctx.denseOut(0);
  if (K === 0) ctx.fail('K = 0');
  const wd = rawBlocks(ctx, 1);
  let xd = ctx.dense(0);
  if (xd.offset % 4) xd = ctx.denseCopy(x);
  if (M <= GEMV_MAX_M && A8_GEMV_TYPES.has(type) && QGEMV_TUNING.path === 'a8' && hasPackedDot(ctx)) gemvA8(ctx, type, M, N, K, rowBytes, xd, wd, yd);
  else if (M <= GEMV_MAX_M) gemv(ctx, type, M, N, K, rowBytes, xd, wd, yd);
  else gemm(ctx, type, M, N, K, rowBytes, xd, wd, yd);
}

function gemv(ctx: OpContext, type: QuantType, M: number, N: number, K: number, rowBytes: number, xd: Dense, wd: Dense, yd: Dense): void {
  const unitsPerRow = K / 32;
  // lanes per row: a warp for long rows, fewer for short ones (at least 2 units per lane); each
  // lane takes RR neighbouring rows (x read once for all of them when M = 1)
  const T = Math.max(4, Math.min(32, 2 ** Math.ceil(Math.log2(Math.max(1, unitsPerRow / 2)))));
  const RR = M === 1 ? 4 : 2;
  const R = (256 / T) * RR;
  const key = `qmatmul gemv ${type} m${M} t${T}`;
  const xAt = (m: number) => lines(8, (k) => `let x${k} = X[xb + ${m}u * K4 + ${k}u];`);
  const dots = (m: number, i: number) => `{
          let s = (dot(w.q[0], x0) + dot(w.q[1], x1)) + (dot(w.q[2], x2) + dot(w.q[3], x3))
                + (dot(w.q[4], x4) + dot(w.q[5], x5)) + (dot(w.q[6], x6) + dot(w.q[7], x7));
          var sx = 0.0;
          if (w.b != 0.0) { sx = dot((x0 + x1) + (x2 + x3) + (x4 + x5) + (x6 + x7), vec4<f32>(1.0)); }
          acc${m}_${i} = acc${m}_${i} + w.a * s + w.b * sx;
        }`;
  const k = ctx.kernel(key, () => `${PRELUDE}
@group(0) @binding(0) var<storage, read> P: array<u32>;
@group(0) @binding(1) var<storage, read> X: array<vec4<f32>>;
${W_BINDING(2)}
${outBinding(3, 'y', 'f32')}
${quantDecoders(type)}
${storers('y', 'f32')}
var<workgroup> red: array<f32, ${M * RR * 256}>;
@compute @workgroup_size(256)
fn main(${BUILTINS}) {
  ${WG_INDEX}
  let N = P[0]; let K4 = P[1] / 4u; let units = P[1] / 32u; let rowBytes = P[2];
  let r = li / ${T}u; let t = li % ${T}u;
  let n0 = (wg * ${256 / T}u + r) * ${RR}u;
${lines(M * RR, (q) => `  var acc${Math.floor(q / RR)}_${q % RR} = 0.0;`)}
  if (n0 < N) {
    // rows past the end repeat the last one (their sums are not stored)
${lines(RR, (i) => `    let rb${i} = P[3] + min(n0 + ${i}u, N - 1u) * rowBytes;`)}
    for (var u = t; u < units; u += ${T}u) {
      let xb = P[4] + u * 8u;
${M === 1 ? `      ${xAt(0).replace(/\n/g, ' ')}` : ''}
${lines(RR, (i) => `      {
        let w = unit(rb${i}, u);
${lines(M, (m) => `        {
${M === 1 ? '' : `          ${xAt(m).replace(/\n/g, ' ')}`}
          ${dots(m, i)}
        }`)}
      }`)}
    }
  }
${lines(M * RR, (q) => `  red[${q * 256}u + li] = acc${Math.floor(q / RR)}_${q % RR};`)}
  workgroupBarrier();
  for (var s = ${T / 2}u; s > 0u; s = s >> 1u) {
    if (t < s) {
${lines(M * RR, (q) => `      red[${q * 256}u + li] = red[${q * 256}u + li] + red[${q * 256}u + li + s];`)}
    }
    workgroupBarrier();
  }
  if (t == 0u) {
${lines(M * RR, (q) => `    if (n0 + ${q % RR}u < N) { stf_y(P[5] + ${Math.floor(q / RR)}u * N + n0 + ${q % RR}u, red[${q * 256}u + li]); }`)}
  }
}`);
  const params = new Params().u32(N, K, rowBytes, wd.offset, xd.offset / 4, yd.offset);
  ctx.run(k, [xd.gpu, wd.gpu, yd.gpu], params, [cdiv(N, R)]);
}

function gemm(ctx: OpContext, type: QuantType, M: number, N: number, K: number, rowBytes: number, xd: Dense, wd: Dense, yd: Dense): void {
  // rows of the staged tiles padded by 4 against bank conflicts where the device's workgroup
  // memory holds them (17 KiB), else unpadded (16 KiB: WebGPU's default limit)
  const S = 2 * 32 * 68 * 4 <= ctx.rt.device.limits.maxComputeWorkgroupStorageSize ? 68 : 64;
  const k = ctx.kernel(`qmatmul gemm ${type} s${S}`, () => `${PRELUDE}
@group(0) @binding(0) var<storage, read> P: array<u32>;
@group(0) @binding(1) var<storage, read> X: array<vec4<f32>>;
${W_BINDING(2)}
${outBinding(3, 'y', 'f32')}
${quantDecoders(type)}
${storers('y', 'f32')}
// [k][m] and [k][n] tiles of 32 x 64, rows of S
var<workgroup> Xs: array<f32, ${32 * S}>;
var<workgroup> Ws: array<f32, ${32 * S}>;
@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  let M = P[0]; let N = P[1]; let K = P[2]; let rowBytes = P[3];
  let m0 = wid.y * 64u; let n0 = wid.x * 64u;
  let tx = li % 16u; let ty = li / 16u;
  let lr = li / 4u; let lp = li % 4u;   // the row (of x and of W) and the 8 values this thread stages
  let xm = m0 + lr; let wn = n0 + lr;
  let rb = P[4] + wn * rowBytes;
${lines(4, (i) => `  var c${i} = vec4<f32>(0.0);`)}
  for (var u = 0u; u < K / 32u; u++) {
    var xa = vec4<f32>(0.0); var xb = vec4<f32>(0.0);
    if (xm < M) { let xo = P[5] + (xm * K + u * 32u + lp * 8u) / 4u; xa = X[xo]; xb = X[xo + 1u]; }
    var wv = array<vec4<f32>, 2>(vec4<f32>(0.0), vec4<f32>(0.0));
    if (wn < N) { wv = deq8(rb, u, lp); }
    workgroupBarrier();
    for (var i = 0u; i < 4u; i++) {
      Xs[(lp * 8u + i) * ${S}u + lr] = xa[i]; Xs[(lp * 8u + 4u + i) * ${S}u + lr] = xb[i];
      Ws[(lp * 8u + i) * ${S}u + lr] = wv[0][i]; Ws[(lp * 8u + 4u + i) * ${S}u + lr] = wv[1][i];
    }
    workgroupBarrier();
    for (var kk = 0u; kk < 32u; kk++) {
      let a = vec4<f32>(Xs[kk * ${S}u + ty * 4u], Xs[kk * ${S}u + ty * 4u + 1u], Xs[kk * ${S}u + ty * 4u + 2u], Xs[kk * ${S}u + ty * 4u + 3u]);
      let b = vec4<f32>(Ws[kk * ${S}u + tx * 4u], Ws[kk * ${S}u + tx * 4u + 1u], Ws[kk * ${S}u + tx * 4u + 2u], Ws[kk * ${S}u + tx * 4u + 3u]);
${lines(4, (i) => `      c${i} = fma(vec4<f32>(a[${i}]), b, c${i});`)}
    }
  }
${lines(4, (i) => `  {
    let m = m0 + ty * 4u + ${i}u;
    if (m < M) { for (var j = 0u; j < 4u; j++) { let n = n0 + tx * 4u + j; if (n < N) { stf_y(P[6] + m * N + n, c${i}[j]); } } }
  }`)}
}`);
  const lim = ctx.rt.device.limits.maxComputeWorkgroupsPerDimension;
  if (cdiv(N, 64) > lim || cdiv(M, 64) > lim) ctx.fail(`[${M}, ${N}] needs more than ${lim} workgroups along one axis`);
  const params = new Params().u32(M, N, K, rowBytes, wd.offset, xd.offset / 4, yd.offset);
  ctx.run(k, [xd.gpu, wd.gpu, yd.gpu], params, [cdiv(N, 64), cdiv(M, 64)]);
}

