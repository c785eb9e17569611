// The flash-decoding skeleton shared by the packed KV-cache attention kernels (q8_0 / q4_0 in
// kv-cache.ts, KVQuant in kv-quant.ts): a workgroup per query row and run of keys, scores of the
// run (kept in a temporary), its max, the softmax numerators and their sum, then each output
// channel summed over the run's values; a combine kernel joins the runs. What a cache type changes
// is injected: its bindings, the WGSL that decodes its streams, a `score` function (q staged in
// `qs` against one key) and a `value` function (one value channel of one row), and where its
// parameter block keeps the q strides, the row chunk and the split.
// Not for: encoding (the append kernels) or dequantized views.
import type { KVAttentionArgs } from '../../../tensor/packed-kv.js';
import type { View } from '../../../tensor/backend.js';
import { BUILTINS, Params, WG_INDEX, type OpContext } from './context.js';
import { PRELUDE, outBinding, storers, cdiv } from '../wgsl.js';

/** Largest head size of the attention kernels (q is staged in workgroup memory). */
export const KV_MAX_D = 512;
/**
 * Bytes of scores one dispatch may hold, and keys one workgroup scores (a query row's keys split
 * over workgroups: flash-decoding); tests lower them to exercise the chunking and the split.
 */
export const KV_TUNING = { scoreBytes: 2 ** 28, split: 64 };
const WG = 64;

/** What one cache type puts into the skeleton. */
export interface FlashDecodeSource {
  /**
   * Bindings after P (0) and Q (1), up to MASK; S and PART follow MASK. Names used by the skeleton:
   * MASK (u8 key mask words), S, PART.
   */
  bindings: string[];
  /** WGSL before the skeleton: the stream decoders, `fn score(row, b, kh, D) -> f32` (q · key, unscaled; q in `qs`) and `fn value(row, b, c) -> f32`. */
  helpers: string;
  /** Statements run once per workgroup before the value loop (may set `var<private>` of the helpers). */
  valuePrelude?: string;
  /** Parameter words: P[0..13) are the skeleton's (B, HQ, TQ, D, DV, hkv, tk, scale, causal, hasMask, q offset, y offset, mask offset); these give where the q strides (3), the row chunk (r0, chunk) and the split (nsplit, run length) lie. */
  at: { qStrides: number; rows: number; split: number };
}

/**
 * WGSL unpacking codes from the packed rows of storage binding NAME (u32 words):
 * `code_NAME(o0, bits, c)` is the `bits`-wide code c of the row starting at byte o0 (codes are
 * packed little-endian, low bits first, and may straddle a word). Both packed caches' decoders use it.
 */
export function packedCodeReader(name: string): string {
  return /* wgsl */ `
fn code_${name}(o0: u32, bits: u32, c: u32) -> u32 {
  let bit = c * bits;
  let o = o0 + (bit >> 3u);
  let sh = (o & 3u) * 8u;
  let lo = ${name}[o >> 2u]; let hi = ${name}[(o >> 2u) + 1u];
  let w = select((lo >> sh) | (hi << (32u - sh)), lo, sh == 0u);
  return (w >> (bit & 7u)) & ((1u << bits) - 1u);
}`;
}

/** Storage buffers a flash-decoding kernel binds: P, Q, its streams' `bindings`, MASK, S and PART. */
export const flashDecodeBuffers = (bindings: number) => bindings + 5;

/** WGSL of a flash-decoding attention kernel. */
export function flashDecodeShader(o: FlashDecodeSource): string {
  const binds = ['P: array<u32>', 'Q: array<f32>', ...o.bindings, 'MASK: array<u32>'];
  const lines = binds.map((b, i) => `@group(0) @binding(${i}) var<storage, read> ${b};`);
  lines.push(`@group(0) @binding(${binds.length}) var<storage, read_write> S: array<f32>;`);
  lines.push(`@group(0) @binding(${binds.length + 1}) var<storage, read_write> PART: array<f32>;`);
  const { qStrides: qs, rows, split } = o.at;
  return `${PRELUDE}
${lines.join('\n')}
var<workgroup> qs: array<f32, ${KV_MAX_D}>;
var<workgroup> red: array<f32, ${WG}>;
${o.helpers}
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
  let nsplit = P[${split}]; let L = P[${split + 1}];
  let local = wg / nsplit; let sp = wg % nsplit;
  if (P[${rows}] + local >= min(B * HQ * TQ, P[${rows}] + P[${rows + 1}])) { return; }
  let qr = P[${rows}] + local;
  let i = qr % TQ; let h = (qr / TQ) % HQ; let b = qr / (TQ * HQ);
  let kh = h / (HQ / hkv);
  let qo = P[10] + b * P[${qs}] + h * P[${qs + 1}] + i * P[${qs + 2}];
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
      s = score(j * B + b, b, kh, D) * scale;
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
  ${o.valuePrelude ?? ''}
  let po = (local * nsplit + sp) * (DV + 2u);
  for (var e = li; e < DV; e += ${WG}u) {
    var acc = 0.0;
    let c = kh * DV + e;
    for (var j = j0; j < j1; j++) {
      let p = S[sb + j];
      if (p != 0.0) { acc = acc + p * value(j * B + b, b, c); }
    }
    PART[po + e] = acc;
  }
  if (li == 0u) { PART[po + DV] = mx; PART[po + DV + 1u] = zs; }
}`;
}

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

/**
 * Runs a flash-decoding kernel over every query row of `a`: rows in chunks whose scores (f32
 * [chunk, tk]) and partial outputs fit a binding, each chunk's runs then combined into y.
 * `bind(S, PART)` gives the bindings in shader order; `params(r0, chunk, nsplit, split)` the block.
 */
export function runFlashDecode(ctx: OpContext, a: KVAttentionArgs, kernel: ReturnType<OpContext['kernel']>, bind: (S: GPUBuffer, PART: GPUBuffer) => GPUBuffer[], params: (r0: number, chunk: number, nsplit: number, split: number) => Params): void {
  const [B, HQ, TQ] = a.q.shape as [number, number, number, number];
  const DV = a.y.shape[3]!;
  const rows = B * HQ * TQ;
  if (rows === 0) return;
  const split = Math.max(1, KV_TUNING.split);
  const nsplit = Math.max(1, Math.ceil(a.tk / split));
  const perRow = Math.max(4 * a.tk, 4 * nsplit * (DV + 2));
  const chunk = Math.max(1, Math.min(rows, Math.floor(Math.min(ctx.rt.maxBinding, KV_TUNING.scoreBytes) / perRow)));
  const S = ctx.temp(Math.max(4, chunk * a.tk * 4)).gpu;
  const PART = ctx.temp(chunk * nsplit * (DV + 2) * 4).gpu;
  for (let r0 = 0; r0 < rows; r0 += chunk) {
    const n = Math.min(chunk, rows - r0);
    ctx.run(kernel, bind(S, PART), params(r0, chunk, nsplit, split), [n * nsplit]);
    kvCombine(ctx, PART, a.y, DV, nsplit, n, r0);
  }
}
