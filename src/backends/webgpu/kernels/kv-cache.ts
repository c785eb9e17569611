// WebGPU kernels on the packed KV cache (layout and decode rule: src/models/kvquant/codec.ts), for
// streams with per-group parameters and nothing kept exact (q8_0, q4_0): the cache never leaves
// the GPU. The attention kernel is the flash-decoding skeleton of kv-flash.ts with this type's decoder.
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
import { KV_MAX_D, flashDecodeShader, packedCodeReader, runFlashDecode } from './kv-flash.js';

export { KV_MAX_D, KV_TUNING, kvCombine } from './kv-flash.js';
const WG = 64;

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
  return /* wgsl */ `${packedCodeReader(name)}
fn val_${name}(at: u32, row: u32, c: u32) -> f32 {
  let base = P[at];
  let code = code_${name}(base + row * P[at + 2u], P[at + 1u], c);
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
  const k = ctx.kernel('kv attention', () => flashDecodeShader({
    bindings: ['KM: array<u32>', 'VM: array<u32>'],
    helpers: `${decoder('KM')}
${decoder('VM')}
fn score(row: u32, b: u32, kh: u32, D: u32) -> f32 {
  var t = 0.0;
  for (var c = 0u; c < D; c++) { t = t + qs[c] * val_KM(13u, row, kh * D + c); }
  return t;
}
fn value(row: u32, b: u32, c: u32) -> f32 { return val_VM(21u, row, c); }`,
    at: { qStrides: 29, rows: 32, split: 34 },
  }));
  const mask = a.mask;
  const maskBuf = mask ? ctx.buffer(mask) : ctx.temp(4).gpu;
  runFlashDecode(ctx, a, k, (S, PART) => [ctx.buffer(a.q), ctx.buffer(a.k.main), ctx.buffer(a.v.main), maskBuf, S, PART], (r0, chunk, nsplit, split) =>
    new Params().u32(B, HQ, TQ, D, DV, a.hkv, a.tk).f32(a.scale).u32(a.causal ? 1 : 0, mask ? 1 : 0, a.q.offset, a.y.offset, mask?.offset ?? 0)
      .u32(...streamWords(a.k), ...streamWords(a.v), a.q.strides[0]!, a.q.strides[1]!, a.q.strides[2]!, r0, chunk, nsplit, split));
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
