// WebGPU kernels on the packed KV cache (layout and decode rule: src/models/kvquant/codec.ts), for
// streams with per-group parameters and nothing kept exact (q8_0, q4_0): the cache never leaves
// the GPU. The split attention's combine kernel is shared with kv-quant.ts.
//   kvAppend      new rows [b, kv_head, t, d] f32 -> codes and f16 scales, one thread per word of
//                 scales (two 32-value groups), ggml's q8_0 / q4_0 rounding (quantize_row_*_ref)
//   kvAttention   q [b, hq, tq, d] over every visible key: a workgroup per query row and run of 64
//                 keys (flash-decoding; a combine kernel joins the runs' max, sum and partial
//                 outputs); scores of the keys decoded from their codes (a thread per key, kept in
//                 a temporary: query rows go in chunks whose scores fit 256 MiB), softmax over the
//                 run, then each output channel summed over the values decoded where they lie
//   kvDequantize  the held keys or values as f32 [b, kv_head, tk, d] (hooks on scores / patterns)
// Not for: KVQuant's streams (per-channel, exact values, pre-RoPE keys: kv-quant.ts).
import type { KVAttentionArgs, PackedStreamViews, StreamLayout } from '../../../tensor/packed-kv.js';
import type { View } from '../../../tensor/backend.js';
import { BUILTINS, Params, WG_INDEX, numel, type OpContext } from './context.js';
import { PRELUDE, cdiv, outBinding, storers } from '../wgsl.js';

/** Largest head size of the attention kernel (q is staged in workgroup memory). */
export const KV_MAX_D = 512;
const WG = 64;
/**
 * Bytes of scores one dispatch may hold, and keys one workgroup scores (a query row's keys split
 * over workgroups: flash-decoding); tests lower them to exercise the chunking and the split.
 */
export const KV_TUNING = { scoreBytes: 2 ** 28, split: 64 };

/** The combine step of the split attention: y rows [r0, r0 + n) from PART f32 [n, nsplit, DV + 2] (partial output, max, sum). */
export function kvCombine(ctx: OpContext, part: GPUBuffer, y: View, DV: number, nsplit: number, n: number, r0: number): void {
  const kc = ctx.kernel('kv attention combine', () => `${PRELUDE}
@group(0) @binding(0) var<storage, read> P: array<u32>;
@group(0) @binding(1) var<storage, read> PART: array<f32>;
${outBinding(2, 'y', 'f32')}
${storers('y', 'f32')}
@compute @workgroup_size(256)
fn main(${BUILTINS}) {
  ${WG_INDEX}
  let DV = P[0]; let nsplit = P[1]; let n = P[2];
  let x = wg * 256u + li;
  if (x >= n * DV) { return; }
  let local = x / DV; let e = x % DV;
  let base = local * nsplit * (DV + 2u);
  var M = -inf_f32();
  for (var s = 0u; s < nsplit; s++) { M = max(M, PART[base + s * (DV + 2u) + DV]); }
  var z = 0.0; var acc = 0.0;
  for (var s = 0u; s < nsplit; s++) {
    let o = base + s * (DV + 2u);
    let ms = PART[o + DV];
    if (!is_inf(ms)) {
      let w = exp(ms - M);
      z = z + w * PART[o + DV + 1u];
      acc = acc + w * PART[o + e];
    }
  }
  stf_y(P[3] + (P[4] + local) * DV + e, select(acc / z, 0.0, z == 0.0));
}`);
  ctx.run(kc, [part, ctx.buffer(y)], new Params().u32(DV, nsplit, n, y.offset, r0), [cdiv(n * DV, 256)]);
}

/** Why the GPU kernels cannot read a stream ('' when they can). */
export function kvStreamUnsupported(L: StreamLayout): string {
  if (L.params !== 'group') return 'per-channel parameters';
  if (L.sparse) return 'exact (sparse) entries';
  if (L.bits > 8) return `${L.bits}-bit codes`;
  return '';
}

/** Parameter words of a stream: main's byte offset, bits, rowBytes, groups per row, G, grpBytes, oGrp, oLut. */
function streamWords(s: PackedStreamViews): number[] {
  const L = s.layout;
  return [s.main.offset, L.bits, L.rowBytes, L.R / L.G, L.G, L.grpBytes, L.oGrp, L.oLut];
}

/** WGSL decoding value c of row `row` of stream binding NAME, parameters at P[at..at + 8). */
function decoder(name: string): string {
  return /* wgsl */ `
fn val_${name}(at: u32, row: u32, c: u32) -> f32 {
  let base = P[at]; let bits = P[at + 1u];
  let bit = c * bits;
  let o = base + row * P[at + 2u] + (bit >> 3u);
  let sh = (o & 3u) * 8u;
  let lo = ${name}[o >> 2u]; let hi = ${name}[(o >> 2u) + 1u];
  let w = select((lo >> sh) | (hi << (32u - sh)), lo, sh == 0u);
  let code = (w >> (bit & 7u)) & ((1u << bits) - 1u);
  let l = bitcast<f32>(${name}[(base + P[at + 7u]) / 4u + code]);
  let g = base + P[at + 6u] + (row * P[at + 3u] + c / P[at + 4u]) * P[at + 5u];
  let gw = ${name}[g >> 2u] >> ((g & 2u) * 8u);
  var v = l * f16_to_f32(gw & 0xffffu);
  if (P[at + 5u] == 4u) { v = v + f16_to_f32(gw >> 16u); }
  return v;
}`;
}

/** The rows [row0, row0 + b·t) of a q8_0 / q4_0 stream from x [b, kv_head, t, d] (contiguous f32). */
export function kvAppend(ctx: OpContext, x: View, s: PackedStreamViews, kind: 'q8_0' | 'q4_0', row0: number): void {
  const L = s.layout;
  const [B, hkv, T, d] = x.shape as [number, number, number, number];
  if (L.params !== 'group' || L.G !== 32 || L.grpBytes !== 2 || L.bits !== (kind === 'q8_0' ? 8 : 4)) ctx.fail(`stream is not a ${kind} stream`);
  if (hkv * d !== L.R) ctx.fail(`rows of ${hkv} x ${d} values, stream rows of ${L.R}`);
  if (s.main.offset % 4) ctx.fail('the stream must start at a multiple of 4 bytes');
  if (row0 + B * T > L.cap) ctx.fail(`rows ${row0}..${row0 + B * T} past the capacity ${L.cap}`);
  const nG = L.R / 32;
  const g0 = row0 * nG, g1 = (row0 + B * T) * nG;
  const w0 = g0 >> 1, w1 = (g1 + 1) >> 1;
  if (w1 === w0) return;
  const k = ctx.kernel(`kv append ${kind}`, () => `${PRELUDE}
@group(0) @binding(0) var<storage, read> P: array<u32>;
@group(0) @binding(1) var<storage, read> X: array<f32>;
@group(0) @binding(2) var<storage, read_write> M: array<u32>;
/** Group gi (row · groups + g) of the new rows: codes written, its f16 scale returned. */
fn group(gi: u32) -> u32 {
  let B = P[0]; let hkv = P[1]; let T = P[2]; let d = P[3]; let row0 = P[4]; let nG = P[5];
  let row = gi / nG; let g = gi % nG;
  let local = row - row0; let t = local / B; let b = local % B;
  var v: array<f32, 32>;
  var amax = 0.0; var mx = 0.0;
  for (var j = 0u; j < 32u; j++) {
    let c = g * 32u + j; let h = c / d;
    let x = X[P[8] + ((b * hkv + h) * T + t) * d + c % d];
    v[j] = x;
    if (abs(x) > amax) { amax = abs(x); mx = x; }
  }
  let at = (P[7] + row * P[6]) / 4u + g * ${kind === 'q8_0' ? 8 : 4}u;
${kind === 'q8_0' ? `  let dd = amax / 127.0;
  let id = select(0.0, 1.0 / dd, dd != 0.0);
  for (var k = 0u; k < 8u; k++) {
    var w = 0u;
    for (var i = 0u; i < 4u; i++) {
      let t = v[4u * k + i] * id;
      let q = i32(sign(t) * floor(abs(t) + 0.5));   // roundf
      w = w | ((bitcast<u32>(q) & 0xffu) << (8u * i));
    }
    M[at + k] = w;
  }` : `  let dd = mx / -8.0;
  let id = select(0.0, 1.0 / dd, dd != 0.0);
  for (var k = 0u; k < 4u; k++) {
    var w = 0u;
    for (var i = 0u; i < 8u; i++) {
      let q = min(15u, u32(max(0.0, trunc(v[8u * k + i] * id + 8.5))));
      w = w | (q << (4u * i));
    }
    M[at + k] = w;
  }`}
  return f32_to_f16(dd);
}
@compute @workgroup_size(${WG})
fn main(${BUILTINS}) {
  ${WG_INDEX}
  let w = P[9] + wg * ${WG}u + li;
  if (w >= P[10]) { return; }
  let g0 = P[4] * P[5]; let g1 = g0 + P[0] * P[2] * P[5];
  let sw = (P[7] + P[11]) / 4u + w;
  var word = M[sw];
  if (2u * w >= g0 && 2u * w < g1) { word = (word & 0xffff0000u) | group(2u * w); }
  if (2u * w + 1u >= g0 && 2u * w + 1u < g1) { word = (word & 0xffffu) | (group(2u * w + 1u) << 16u); }
  M[sw] = word;
}`);
  const xo = x.offset;
  const params = new Params().u32(B, hkv, T, d, row0, nG, L.rowBytes, s.main.offset, xo, w0, w1, L.oGrp);
  ctx.run(k, [ctx.buffer(x), ctx.buffer(s.main)], params, [cdiv(w1 - w0, WG)]);
}

/** Attention over two packed streams (KVAttentionArgs; no rope). */
export function kvAttention(ctx: OpContext, a: KVAttentionArgs): void {
  const [B, HQ, TQ, D] = a.q.shape as [number, number, number, number];
  const DV = a.y.shape[3]!;
  for (const s of [a.k, a.v]) {
    const why = kvStreamUnsupported(s.layout);
    if (why) ctx.fail(`the webgpu kernel does not read streams with ${why}`);
    if (s.main.offset % 4) ctx.fail('streams must start at a multiple of 4 bytes');
  }
  if (a.rope) ctx.fail('pre-RoPE keys are not read by the webgpu kernel');
  if (D > KV_MAX_D) ctx.fail(`head size ${D} > ${KV_MAX_D}`);
  if (HQ % a.hkv) ctx.fail(`${HQ} query heads over ${a.hkv} kv heads`);
  if (a.q.strides[3] !== 1 || a.q.strides.some((x) => x < 0)) ctx.fail('q must have a contiguous last axis and no negative strides');
  const rows = B * HQ * TQ;
  if (rows === 0) return;
  const split = Math.max(1, KV_TUNING.split);
  const nsplit = Math.max(1, Math.ceil(a.tk / split));
  // query rows in chunks whose scores (f32 [chunk, tk]) and partial outputs fit a binding of at most 256 MiB
  const perRow = Math.max(4 * a.tk, 4 * nsplit * (DV + 2));
  const chunk = Math.max(1, Math.min(rows, Math.floor(Math.min(ctx.rt.maxBinding, KV_TUNING.scoreBytes) / perRow)));
  const S = ctx.temp(Math.max(4, chunk * a.tk * 4)).gpu;
  const PART = ctx.temp(chunk * nsplit * (DV + 2) * 4).gpu;
  const mask = a.mask;
  const k = ctx.kernel('kv attention', () => `${PRELUDE}
@group(0) @binding(0) var<storage, read> P: array<u32>;
@group(0) @binding(1) var<storage, read> Q: array<f32>;
@group(0) @binding(2) var<storage, read> KM: array<u32>;
@group(0) @binding(3) var<storage, read> VM: array<u32>;
@group(0) @binding(4) var<storage, read> MASK: array<u32>;
@group(0) @binding(5) var<storage, read_write> S: array<f32>;
@group(0) @binding(6) var<storage, read_write> PART: array<f32>;
${decoder('KM')}
${decoder('VM')}
var<workgroup> qs: array<f32, ${KV_MAX_D}>;
var<workgroup> red: array<f32, ${WG}>;
fn reduce(v: f32, li: u32, isMax: bool) -> f32 {
  red[li] = v;
  workgroupBarrier();
  for (var s = ${WG / 2}u; s > 0u; s = s >> 1u) {
    if (li < s) { red[li] = select(red[li] + red[li + s], max(red[li], red[li + s]), isMax); }
    workgroupBarrier();
  }
  let r = red[0];
  workgroupBarrier();
  return r;
}
@compute @workgroup_size(${WG})
fn main(${BUILTINS}) {
  ${WG_INDEX}
  let B = P[0]; let HQ = P[1]; let TQ = P[2]; let D = P[3]; let DV = P[4]; let hkv = P[5]; let tk = P[6];
  let scale = bitcast<f32>(P[7]); let causal = P[8] != 0u; let hasMask = P[9] != 0u;
  // a workgroup per query row (b, h, i) and run of L keys; a folded grid may hold more
  let nsplit = P[34]; let L = P[35];
  let local = wg / nsplit; let sp = wg % nsplit;
  if (P[32] + local >= min(B * HQ * TQ, P[32] + P[33])) { return; }
  let qr = P[32] + local;
  let i = qr % TQ; let h = (qr / TQ) % HQ; let b = qr / (TQ * HQ);
  let kh = h / (HQ / hkv);
  let qo = P[10] + b * P[29] + h * P[30] + i * P[31];
  for (var c = li; c < D; c += ${WG}u) { qs[c] = Q[qo + c]; }
  workgroupBarrier();
  var nv = tk;
  if (causal) { nv = u32(clamp(i32(i + tk) - i32(TQ) + 1, 0, i32(tk))); }
  let j0 = sp * L; let j1 = min(nv, j0 + L);
  let sb = local * tk;
  var m = -inf_f32();
  for (var j = j0 + li; j < j1; j += ${WG}u) {
    var s = -inf_f32();
    let mo = P[12] + b * tk + j;
    if (!hasMask || ((MASK[mo >> 2u] >> ((mo & 3u) * 8u)) & 0xffu) != 0u) {
      let row = j * B + b;
      var t = 0.0;
      for (var c = 0u; c < D; c++) { t = t + qs[c] * val_KM(13u, row, kh * D + c); }
      s = t * scale;
      m = max(m, s);
    }
    S[sb + j] = s;
  }
  let mx = reduce(m, li, true);
  var z = 0.0;
  for (var j = j0 + li; j < j1; j += ${WG}u) {
    let s = S[sb + j];
    let p = select(exp(s - mx), 0.0, is_inf(s));
    S[sb + j] = p;
    z = z + p;
  }
  let zs = reduce(z, li, false);
  storageBarrier();
  workgroupBarrier();
  let po = (local * nsplit + sp) * (DV + 2u);
  for (var e = li; e < DV; e += ${WG}u) {
    var acc = 0.0;
    for (var j = j0; j < j1; j++) {
      let p = S[sb + j];
      if (p != 0.0) { acc = acc + p * val_VM(21u, j * B + b, kh * DV + e); }
    }
    PART[po + e] = acc;
  }
  if (li == 0u) { PART[po + DV] = mx; PART[po + DV + 1u] = zs; }
}`);
  const maskBuf = mask ? ctx.buffer(mask) : ctx.temp(4).gpu;
  for (let r0 = 0; r0 < rows; r0 += chunk) {
    const n = Math.min(chunk, rows - r0);
    const params = new Params().u32(B, HQ, TQ, D, DV, a.hkv, a.tk).f32(a.scale).u32(a.causal ? 1 : 0, mask ? 1 : 0, a.q.offset, a.y.offset, mask?.offset ?? 0)
      .u32(...streamWords(a.k), ...streamWords(a.v), a.q.strides[0]!, a.q.strides[1]!, a.q.strides[2]!, r0, chunk, nsplit, split);
    ctx.run(k, [ctx.buffer(a.q), ctx.buffer(a.k.main), ctx.buffer(a.v.main), maskBuf, S, PART], params, [n * nsplit]);
    kvCombine(ctx, PART, a.y, DV, nsplit, n, r0);
  }
}

/** y f32 [b, kv_head, tk, d] (contiguous) = the stream's rows decoded. */
export function kvDequantize(ctx: OpContext, s: PackedStreamViews, y: View): void {
  const why = kvStreamUnsupported(s.layout);
  if (why) ctx.fail(`the webgpu kernel does not read streams with ${why}`);
  const [B, hkv, tk, d] = y.shape as [number, number, number, number];
  const n = numel(y.shape);
  if (n === 0) return;
  const k = ctx.kernel('kv dequantize', () => `${PRELUDE}
@group(0) @binding(0) var<storage, read> P: array<u32>;
@group(0) @binding(1) var<storage, read> KM: array<u32>;
${outBinding(2, 'y', 'f32')}
${storers('y', 'f32')}
${decoder('KM')}
@compute @workgroup_size(256)
fn main(${BUILTINS}) {
  ${WG_INDEX}
  let e = wg * 256u + li;
  if (e >= P[0]) { return; }
  let B = P[1]; let hkv = P[2]; let tk = P[3]; let d = P[4];
  let c = e % d; let j = (e / d) % tk; let h = (e / (d * tk)) % hkv; let b = e / (d * tk * hkv);
  stf_y(P[5] + e, val_KM(6u, j * B + b, h * d + c));
}`);
  ctx.run(k, [ctx.buffer(s.main), ctx.buffer(y)], new Params().u32(n, B, hkv, tk, d, y.offset, ...streamWords(s)), [cdiv(n, 256)]);
}
