// WebGPU kernels on KVQuant's packed streams (src/models/kvquant): per-channel keys (calibrated
// scale and offset per channel) or per-token rows (an f16 scale and offset per row), uniform or nuq
// codebooks of 2..8 bits, keys stored before RoPE and rotated in the attention kernel at the
// position stored with each row, the first token kept exact, and outliers kept exact in a
// per-block side table. The cache never leaves the GPU: rows are encoded by the append kernel.
// Device side table (in the stream's `out` buffer; KVQuantSide): where the host codec keeps
// exact values in a CSR list of any length (codec.ts), the device keeps at most K per block (a kv
// head's slice of a row): K f32 values, then K channel bytes (channel within the block + 1; 0 =
// empty). When a block has more outliers than K, the K that lie farthest outside their range are
// kept (ties: the lower channel) and the rest are quantized (clamped) like any value; with K or
// fewer the entries, codes and scales are the host encoder's. The sink (each sequence's first
// token) is an f32 row per sequence with the row index it replaces.
//   kvqAppend      new rows [b, kv_head, t, d] f32 -> codes, per-token scale and offset, side table,
//                  sink rows; one workgroup per row (the row's median by a radix select for the
//                  per-token outlier rule |x − median| > tau)
//   kvqAttention   q [b, hq, tq, d] over every visible key: kv-flash.ts's skeleton (a workgroup
//                  per query row and run of keys, then the combine kernel) with this file's key
//                  score (rotated at the stored positions) and value fetch
//   kvqDequantize  the held keys (rotated) or values as f32 [b, kv_head, tk, d] (hooks)
// Not for: q8_0 / q4_0 streams (kv-cache.ts) or the host layout (codec.ts).
import type { KVAttentionArgs, KVQuantSide, PackedStreamViews, StreamLayout } from '../../../tensor/packed-kv.js';
import type { View } from '../../../tensor/backend.js';
import { BUILTINS, Params, WG_INDEX, numel, type OpContext } from './context.js';
import { PRELUDE, cdiv, outBinding, storers } from '../wgsl.js';
import { KV_MAX_D, flashDecodeBuffers, flashDecodeShader, packedCodeReader, runFlashDecode } from './kv-flash.js';

const WG = 64;
const AWG = 256;
/** Largest row (kv_head · d_head values) the append kernel encodes (its outlier bit mask). */
export const KVQ_MAX_R = 8192;
/** Most exact slots per block (their channel bytes fit two words). */
export const KVQ_MAX_SLOTS = 8;

/** Why the device cannot hold a KVQuant stream of this layout and side table ('' when it can). */
export function kvqStreamUnsupported(L: StreamLayout, side: KVQuantSide): string {
  if (L.params === 'group' && (L.G !== L.R || L.grpBytes !== 4)) return 'groups other than one per row';
  if (L.sparse) return 'a CSR list of exact entries (the device keeps a side table)';
  if (L.slices !== 1) return 'codes stored a kv head at a time';
  if (L.bits < 2 || L.bits > 8) return `${L.bits}-bit codes`;
  if ((L.R * L.bits) % 32) return `rows of ${L.R} ${L.bits}-bit codes that are not whole 32-bit words`;
  if (L.R > KVQ_MAX_R) return `rows of ${L.R} values (at most ${KVQ_MAX_R})`;
  if (side.K > KVQ_MAX_SLOTS) return `${side.K} exact slots per block (at most ${KVQ_MAX_SLOTS})`;
  if (side.block > 255 || L.R % side.block) return `blocks of ${side.block} values`;
  return '';
}

/** Parameter words of a stream (20; WGSL reads them at P[at + i]). */
function streamWords(s: PackedStreamViews): number[] {
  const L = s.layout, q = s.side!;
  return [
    s.main.offset, L.bits, L.rowBytes, L.oGrp, L.oLut, L.oChan, L.oPos, L.params === 'channel' ? 1 : 0, L.R,
    s.out.offset, q.K, q.K + Math.ceil(q.K / 4), q.hkv, q.block, q.oSlots, q.oSink, q.oSinkRow, q.batch, q.oLoHi, q.hasLoHi ? 1 : 0,
  ];
}

/** WGSL finding channel cin among a block's channel bytes (once per shader). */
const SLOT_OF = /* wgsl */ `
/** Slot holding channel cin of a block (its channel bytes), or 99. */
fn slot_of(ch: vec2<u32>, cin: u32) -> u32 {
  for (var s = 0u; s < 8u; s++) {
    let w = select(ch.y, ch.x, s < 4u);
    if (((w >> ((s & 3u) * 8u)) & 0xffu) == cin + 1u) { return s; }
  }
  return 99u;
}`;

/** WGSL reading stream NAME (main binding NAME, side table binding NAME_O), parameters at P[at..]. */
function reader(name: string): string {
  const o = `${name}_O`;
  return /* wgsl */ `${packedCodeReader(name)}
fn dense_${name}(at: u32, row: u32, c: u32) -> f32 {
  let base = P[at];
  let code = code_${name}(base + row * P[at + 2u], P[at + 1u], c);
  let l = bitcast<f32>(${name}[(base + P[at + 4u]) / 4u + code]);
  if (P[at + 7u] == 1u) {
    let ch = (base + P[at + 5u]) / 4u;
    return l * bitcast<f32>(${name}[ch + c]) + bitcast<f32>(${name}[ch + P[at + 8u] + c]);
  }
  let gw = ${name}[(base + P[at + 3u]) / 4u + row];
  return l * f16_to_f32(gw & 0xffffu) + f16_to_f32(gw >> 16u);
}
fn sinkrow_${name}(at: u32, b: u32) -> u32 { return ${o}[(P[at + 9u] + P[at + 16u]) / 4u + b]; }
fn sink_${name}(at: u32, b: u32, c: u32) -> f32 { return bitcast<f32>(${o}[(P[at + 9u] + P[at + 15u]) / 4u + b * P[at + 8u] + c]); }
/** Word index of block (row, h) of the side table. */
fn blk_${name}(at: u32, row: u32, h: u32) -> u32 { return (P[at + 9u] + P[at + 14u]) / 4u + (row * P[at + 12u] + h) * P[at + 11u]; }
/** Channel bytes of a block (two words; zero where K is smaller). */
fn chans_${name}(at: u32, blk: u32) -> vec2<u32> {
  let K = P[at + 10u];
  if (K == 0u) { return vec2<u32>(0u, 0u); }
  return vec2<u32>(${o}[blk + K], select(0u, ${o}[blk + K + 1u], K > 4u));
}
/** Value c of row (sequence b): the sink row, an exact slot, or the dense decode. */
fn val_${name}(at: u32, row: u32, b: u32, c: u32) -> f32 {
  if (sinkrow_${name}(at, b) == row) { return sink_${name}(at, b, c); }
  let d = P[at + 13u];
  let blk = blk_${name}(at, row, c / d);
  let ch = chans_${name}(at, blk);
  if (ch.x != 0u) {
    let s = slot_of(ch, c % d);
    if (s != 99u) { return bitcast<f32>(${o}[blk + s]); }
  }
  return dense_${name}(at, row, c);
}`;
}

/** WGSL of key c0 + i's rotated value (kv head slice from c0), RoPE at P[rp..] (rot, mode, table offset). */
const ROTATED = /* wgsl */ `
fn key_rot(at: u32, rp: u32, row: u32, b: u32, c0: u32, i: u32) -> f32 {
  let rot = P[rp];
  let x = val_KM(at, row, b, c0 + i);
  if (i >= rot) { return x; }
  let half = rot / 2u;
  let interleaved = P[rp + 1u] == 1u;
  var pair: u32; var k: u32; var first: bool;
  if (interleaved) { k = i / 2u; first = (i & 1u) == 0u; pair = select(i - 1u, i + 1u, first); }
  else { first = i < half; k = select(i - half, i, first); pair = select(i - half, i + half, first); }
  let y = val_KM(at, row, b, c0 + pair);
  let pos = bitcast<u32>(KM[(P[at] + P[at + 6u]) / 4u + row]);
  let t = P[rp + 2u] + pos * 2u * half;
  let co = ROPE[t + k]; let si = ROPE[t + half + k];
  if (first) { return x * co - y * si; }
  return x * co + y * si;
}`;

/** Rows [row0, row0 + b·t) of a KVQuant stream from x [b, kv_head, t, d] (contiguous f32). */
export function kvqAppend(ctx: OpContext, x: View, s: PackedStreamViews, row0: number, o: { tau: number; positions?: Int32Array; sinkT?: Int32Array }): void {
  const L = s.layout, q = s.side;
  if (!q) ctx.fail('the stream has no device side table');
  const why = kvqStreamUnsupported(L, q);
  if (why) ctx.fail(`the webgpu kernel does not hold streams with ${why}`);
  const [B, hkv, T, d] = x.shape as [number, number, number, number];
  if (hkv * d !== L.R || d !== q.block || hkv !== q.hkv) ctx.fail(`rows of ${hkv} x ${d} values, stream rows of ${q.hkv} x ${q.block}`);
  if (B !== q.batch) ctx.fail(`a batch of ${B}, the stream holds ${q.batch}`);
  if (s.main.offset % 4 || s.out.offset % 4) ctx.fail('the stream must start at a multiple of 4 bytes');
  if (row0 + B * T > L.cap) ctx.fail(`rows ${row0}..${row0 + B * T} past the capacity ${L.cap}`);
  if (o.positions && o.positions.length !== B * T) ctx.fail(`${o.positions.length} positions for ${B * T} rows`);
  const rows = B * T;
  if (rows === 0) return;
  const channel = L.params === 'channel';
  const k = ctx.kernel(`kvq append ${channel ? 'channel' : 'token'}`, () => `${PRELUDE}
@group(0) @binding(0) var<storage, read> P: array<u32>;
@group(0) @binding(1) var<storage, read> X: array<f32>;
@group(0) @binding(2) var<storage, read_write> M: array<u32>;
@group(0) @binding(3) var<storage, read_write> O: array<u32>;
var<workgroup> hist: array<atomic<u32>, 256>;
var<workgroup> selw: array<u32, 2>;
var<workgroup> kept: array<atomic<u32>, ${KVQ_MAX_R / 32}>;
var<workgroup> red: array<f32, ${AWG}>;
var<workgroup> red2: array<f32, ${AWG}>;
var<workgroup> sc: array<f32, 3>;
fn xv(i: u32, c: u32) -> f32 {
  let B = P[20]; let hkv = P[21]; let T = P[22]; let d = P[23];
  let t = i / B; let b = i % B;
  return X[P[25] + ((b * hkv + c / d) * T + t) * d + c % d];
}
fn okey(x: f32) -> u32 { let u = bitcast<u32>(x); return select(u | 0x80000000u, ~u, (u >> 31u) == 1u); }
/** The k-th smallest value of row i (radix select on order-preserving keys, 8 bits a pass). */
fn kth(i: u32, k0: u32, li: u32) -> f32 {
  let R = P[8];
  var prefix = 0u; var k = k0;
  for (var p = 0u; p < 4u; p++) {
    let shift = 24u - 8u * p;
    atomicStore(&hist[li], 0u);
    workgroupBarrier();
    for (var c = li; c < R; c += ${AWG}u) {
      let key = okey(xv(i, c));
      if (p == 0u || (key >> (shift + 8u)) == (prefix >> (shift + 8u))) { atomicAdd(&hist[(key >> shift) & 255u], 1u); }
    }
    workgroupBarrier();
    if (li == 0u) {
      var cum = 0u; var bin = 0u;
      loop {
        let h = atomicLoad(&hist[bin]);
        if (cum + h > k || bin == 255u) { break; }
        cum += h; bin++;
      }
      selw[0] = prefix | (bin << shift); selw[1] = k - cum;
    }
    workgroupBarrier();
    prefix = selw[0]; k = selw[1];
    workgroupBarrier();
  }
  return bitcast<f32>(select(~prefix, prefix & 0x7fffffffu, (prefix >> 31u) == 1u));
}
/** How far value c lies outside its range (> 0: an outlier). */
fn dev(i: u32, c: u32, med: f32) -> f32 {
  let x = xv(i, c);
${channel ? `  if (P[19] == 0u) { return 0.0; }
  let lh = (P[9] + P[18]) / 4u;
  return max(bitcast<f32>(O[lh + c]) - x, x - bitcast<f32>(O[lh + P[8] + c]));` : `  if (P[27] == 0u) { return 0.0; }
  return abs(x - med) - bitcast<f32>(P[26]);`}
}
fn is_kept(c: u32) -> bool { return ((atomicLoad(&kept[c >> 5u]) >> (c & 31u)) & 1u) == 1u; }
/** Nearest code of t (uniform levels or the sorted codebook; ties to the lower). */
fn code_of(t: f32, nuq: bool) -> u32 {
  let top = (1u << P[1]) - 1u;
  if (!nuq) { return u32(clamp(floor(t + 0.5), 0.0, f32(top))); }
  let lut = (P[0] + P[4]) / 4u;
  var lo = 0u; var hi = top;
  while (lo < hi) {
    let mid = (lo + hi) >> 1u;
    if (t > (bitcast<f32>(M[lut + mid]) + bitcast<f32>(M[lut + mid + 1u])) * 0.5) { lo = mid + 1u; } else { hi = mid; }
  }
  return lo;
}
@compute @workgroup_size(${AWG})
fn main(${BUILTINS}) {
  ${WG_INDEX}
  let B = P[20]; let hkv = P[21]; let T = P[22]; let d = P[23]; let row0 = P[24];
  if (wg >= B * T) { return; }
  let i = wg; let row = row0 + i; let t = i / B; let b = i % B;
  let R = P[8]; let K = P[10]; let W = P[11]; let nuq = P[28] == 1u;
  for (var w = li; w < ${KVQ_MAX_R / 32}u; w += ${AWG}u) { atomicStore(&kept[w], 0u); }
  var med = 0.0;
${channel ? '' : `  if (P[27] == 1u) {
    let m = R / 2u;
    let hi = kth(i, m, li);
    med = select((kth(i, m - 1u, li) + hi) * 0.5, hi, (R & 1u) == 1u);
  }`}
  workgroupBarrier();
  // the block's outliers: all when they fit its K slots, else the K farthest out
  if (K > 0u && li < hkv) {
    let h = li; let c0 = h * d;
    var n = 0u;
    for (var j = 0u; j < d; j++) { if (dev(i, c0 + j, med) > 0.0) { n++; } }
    if (n <= K) {
      for (var j = 0u; j < d; j++) { if (dev(i, c0 + j, med) > 0.0) { atomicOr(&kept[(c0 + j) >> 5u], 1u << ((c0 + j) & 31u)); } }
    } else {
      var lastDev = inf_f32(); var lastCh = -1;
      for (var k = 0u; k < K; k++) {
        var bd = -1.0; var bc = -1;
        for (var j = 0u; j < d; j++) {
          let dv = dev(i, c0 + j, med);
          if (dv > 0.0 && (dv < lastDev || (dv == lastDev && i32(j) > lastCh)) && dv > bd) { bd = dv; bc = i32(j); }
        }
        if (bc < 0) { break; }
        atomicOr(&kept[(c0 + u32(bc)) >> 5u], 1u << ((c0 + u32(bc)) & 31u));
        lastDev = bd; lastCh = bc;
      }
    }
    let blk = (P[9] + P[14]) / 4u + (row * hkv + h) * W;
    var s = 0u; var cw0 = 0u; var cw1 = 0u;
    for (var j = 0u; j < d; j++) {
      if (is_kept(c0 + j)) {
        O[blk + s] = bitcast<u32>(xv(i, c0 + j));
        if (s < 4u) { cw0 = cw0 | ((j + 1u) << (8u * s)); } else { cw1 = cw1 | ((j + 1u) << (8u * (s - 4u))); }
        s++;
      }
    }
    for (var e = s; e < K; e++) { O[blk + e] = 0u; }
    O[blk + K] = cw0;
    if (K > 4u) { O[blk + K + 1u] = cw1; }
  }
  workgroupBarrier();
${channel ? '' : `  // the row's range over the values not kept exact (f16 scale and offset)
  var mn = inf_f32(); var mx = -inf_f32();
  for (var c = li; c < R; c += ${AWG}u) {
    if (!is_kept(c)) { let x = xv(i, c); mn = min(mn, x); mx = max(mx, x); }
  }
  red[li] = mn; red2[li] = mx;
  workgroupBarrier();
  for (var st = ${AWG / 2}u; st > 0u; st = st >> 1u) {
    if (li < st) { red[li] = min(red[li], red[li + st]); red2[li] = max(red2[li], red2[li + st]); }
    workgroupBarrier();
  }
  if (li == 0u) {
    var lo = red[0]; var hi = red2[0];
    if (lo > hi) { lo = med; hi = med; }
    let top = f32((1u << P[1]) - 1u);
    var sb: u32; var ob: u32;
    if (nuq) { sb = f32_to_f16((hi - lo) / 2.0); ob = f32_to_f16((hi + lo) / 2.0); }
    else { sb = f32_to_f16((hi - lo) / top); ob = f32_to_f16(lo); }
    M[(P[0] + P[3]) / 4u + row] = sb | (ob << 16u);
    sc[0] = f16_to_f32(sb); sc[1] = f16_to_f32(ob);
  }
  workgroupBarrier();
  let scale = sc[0]; let offset = sc[1];`}
  // codes: a thread per 32-bit word of the row
  let bits = P[1];
  let words = P[2] / 4u;
  for (var w = li; w < words; w += ${AWG}u) {
    var word = 0u;
    let c1 = min(R, (32u * w + 32u + bits - 1u) / bits);
    for (var c = (32u * w) / bits; c < c1; c++) {
      let x = xv(i, c);
${channel ? `      let ch = (P[0] + P[5]) / 4u;
      let s = bitcast<f32>(M[ch + c]);
      let q = select(code_of((x - bitcast<f32>(M[ch + R + c])) / s, nuq), 0u, s == 0.0);` : `      let q = code_of(select(0.0, (x - offset) / scale, scale != 0.0), nuq);`}
      let at = i32(c * bits) - i32(32u * w);
      if (at >= 0) { word = word | (q << u32(at)); } else { word = word | (q >> u32(-at)); }
    }
    M[(P[0] + row * P[2]) / 4u + w] = word;
  }
  if (li == 0u && P[6] != 0xffffffffu) { M[(P[0] + P[6]) / 4u + row] = P[32u + B + i]; }
  // the sink: the whole row kept exact
  if (P[32u + b] == t) {
    let sk = (P[9] + P[15]) / 4u + b * R;
    for (var c = li; c < R; c += ${AWG}u) { O[sk + c] = bitcast<u32>(xv(i, c)); }
    if (li == 0u) { O[(P[9] + P[16]) / 4u + b] = row; }
  }
}`);
  const sinkT = Array.from({ length: B }, (_, b) => (o.sinkT && o.sinkT[b]! >= 0 ? o.sinkT[b]! : 0xffffffff));
  // positions arrive batch-major [b · t]; the kernel reads them by new row (t · B + b)
  const pos = o.positions;
  const byRow = pos ? Array.from({ length: rows }, (_, i) => pos[(i % B) * T + Math.floor(i / B)]!) : [];
  const hasTau = Number.isFinite(o.tau) && q.K > 0 ? 1 : 0;
  const words = streamWords(s);
  if (!pos) words[6] = 0xffffffff; // no positions kept
  const params = new Params().u32(...words)
    .u32(B, hkv, T, d, row0, x.offset).f32(hasTau ? o.tau : 0).u32(hasTau, q.nuq ? 1 : 0, 0, 0, 0)
    .u32(...sinkT).u32(...byRow);
  ctx.run(k, [ctx.buffer(x), ctx.buffer(s.main), ctx.buffer(s.out)], params, [rows]);
}

const KVQ_ATTENTION_BINDINGS = ['KM: array<u32>', 'KM_O: array<u32>', 'VM: array<u32>', 'VM_O: array<u32>', 'ROPE: array<f32>'];
/** Storage buffers the attention kernel over KVQuant streams binds (10: more than WebGPU's default 8). */
export const KVQ_ATTENTION_BUFFERS = flashDecodeBuffers(KVQ_ATTENTION_BINDINGS.length);

/**
 * Attention over two KVQuant streams (KVAttentionArgs; keys rotated when `rope`). Flash-decoding:
 * a query row's keys are split in runs of KV_TUNING.split over workgroups, each writing its
 * max, sum and partial output; a second kernel combines them. Decode (one query row per head)
 * thus spreads over tk / split workgroups per head instead of one.
 */
export function kvqAttention(ctx: OpContext, a: KVAttentionArgs): void {
  const [B, HQ, TQ, D] = a.q.shape as [number, number, number, number];
  const DV = a.y.shape[3]!;
  for (const s of [a.k, a.v]) {
    if (!s.side) ctx.fail('a stream without its device side table');
    const why = kvqStreamUnsupported(s.layout, s.side);
    if (why) ctx.fail(`the webgpu kernel does not read streams with ${why}`);
    if (s.main.offset % 4 || s.out.offset % 4) ctx.fail('streams must start at a multiple of 4 bytes');
  }
  if (D > KV_MAX_D) ctx.fail(`head size ${D} > ${KV_MAX_D}`);
  if (HQ % a.hkv) ctx.fail(`${HQ} query heads over ${a.hkv} kv heads`);
  if (a.q.strides[3] !== 1 || a.q.strides.some((x) => x < 0)) ctx.fail('q must have a contiguous last axis and no negative strides');
  if (a.rope && (a.rope.rotaryDim > D || a.rope.rotaryDim % 2)) ctx.fail(`rotary size ${a.rope.rotaryDim} for heads of ${D}`);
  const k = ctx.kernel('kvq attention', () => flashDecodeShader({
    bindings: KVQ_ATTENTION_BINDINGS,
    helpers: `${SLOT_OF}
${reader('KM')}
${reader('VM')}
/** Key channel c0 + cin of row: its sink row, exact slot or dense value (the block's words read once per key). */
fn kval(row: u32, b: u32, c0: u32, cin: u32, sink: bool, blk: u32, ch: vec2<u32>) -> f32 {
  if (sink) { return sink_KM(16u, b, c0 + cin); }
  if (ch.x != 0u) {
    let s = slot_of(ch, cin);
    if (s != 99u) { return bitcast<f32>(KM_O[blk + s]); }
  }
  return dense_KM(16u, row, c0 + cin);
}
/** q · (key of row, rotated at its stored position when P[60] > 0), kv head kh's slice (one block). */
fn score(row: u32, b: u32, kh: u32, D: u32) -> f32 {
  let c0 = kh * D;
  let sink = sinkrow_KM(16u, b) == row;
  let blk = blk_KM(16u, row, kh);
  let ch = chans_KM(16u, blk);
  let rot = P[60]; let half = rot / 2u; let il = P[61] == 1u;
  var t = 0.0;
  if (rot > 0u) {
    let pos = bitcast<u32>(KM[(P[16] + P[22]) / 4u + row]);
    let tb = P[62] + pos * 2u * half;
    for (var k = 0u; k < half; k++) {
      let ia = select(k, 2u * k, il); let ib = select(k + half, 2u * k + 1u, il);
      let xa = kval(row, b, c0, ia, sink, blk, ch); let xb = kval(row, b, c0, ib, sink, blk, ch);
      let co = ROPE[tb + k]; let si = ROPE[tb + half + k];
      t = t + qs[ia] * (xa * co - xb * si) + qs[ib] * (xb * co + xa * si);
    }
  }
  for (var c = rot; c < D; c++) { t = t + qs[c] * kval(row, b, c0, c, sink, blk, ch); }
  return t;
}
/** The sequence's sink row and the value blocks' width (set once per workgroup). */
var<private> sinkRow: u32;
var<private> dblk: u32;
/** Value channel c of row: the sink row, an exact slot or the dense value. */
fn value(row: u32, b: u32, c: u32) -> f32 {
  if (row == sinkRow) { return sink_VM(36u, b, c); }
  let blk = blk_VM(36u, row, c / dblk);
  let ch = chans_VM(36u, blk);
  var s = 99u;
  if (ch.x != 0u) { s = slot_of(ch, c % dblk); }
  if (s != 99u) { return bitcast<f32>(VM_O[blk + s]); }
  return dense_VM(36u, row, c);
}`,
    valuePrelude: 'sinkRow = sinkrow_VM(36u, b); dblk = P[36u + 13u];',
    at: { qStrides: 13, rows: 56, split: 58 },
  }));
  const maskBuf = a.mask ? ctx.buffer(a.mask) : ctx.temp(4).gpu;
  const ropeBuf = a.rope ? ctx.buffer(a.rope.table) : ctx.temp(4).gpu;
  runFlashDecode(ctx, a, k, (S, PART) => [ctx.buffer(a.q), ctx.buffer(a.k.main), ctx.buffer(a.k.out), ctx.buffer(a.v.main), ctx.buffer(a.v.out), ropeBuf, maskBuf, S, PART], (r0, chunk, nsplit, split) =>
    new Params().u32(B, HQ, TQ, D, DV, a.hkv, a.tk).f32(a.scale).u32(a.causal ? 1 : 0, a.mask ? 1 : 0, a.q.offset, a.y.offset, a.mask?.offset ?? 0)
      .u32(a.q.strides[0]!, a.q.strides[1]!, a.q.strides[2]!)
      .u32(...streamWords(a.k), ...streamWords(a.v), r0, chunk, nsplit, split)
      .u32(a.rope ? a.rope.rotaryDim : 0, a.rope?.mode === 'interleaved' ? 1 : 0, a.rope?.table.offset ?? 0));
}

/** y f32 [b, kv_head, tk, d] (contiguous) = the stream's rows decoded (rotated at their positions when `rope`). */
export function kvqDequantize(ctx: OpContext, s: PackedStreamViews, y: View, rope?: KVAttentionArgs['rope']): void {
  if (!s.side) ctx.fail('a stream without its device side table');
  const why = kvqStreamUnsupported(s.layout, s.side);
  if (why) ctx.fail(`the webgpu kernel does not read streams with ${why}`);
  const [B, hkv, tk, d] = y.shape as [number, number, number, number];
  const n = numel(y.shape);
  if (n === 0) return;
  const k = ctx.kernel('kvq dequantize', () => `${PRELUDE}
@group(0) @binding(0) var<storage, read> P: array<u32>;
@group(0) @binding(1) var<storage, read> KM: array<u32>;
@group(0) @binding(2) var<storage, read> KM_O: array<u32>;
@group(0) @binding(3) var<storage, read> ROPE: array<f32>;
${outBinding(4, 'y', 'f32')}
${storers('y', 'f32')}
${SLOT_OF}
${reader('KM')}
${ROTATED}
@compute @workgroup_size(256)
fn main(${BUILTINS}) {
  ${WG_INDEX}
  let e = wg * 256u + li;
  if (e >= P[0]) { return; }
  let B = P[1]; let hkv = P[2]; let tk = P[3]; let d = P[4];
  let c = e % d; let j = (e / d) % tk; let h = (e / (d * tk)) % hkv; let b = e / (d * tk * hkv);
  let row = j * B + b;
  if (P[28] != 0u) { stf_y(P[5] + e, key_rot(8u, 28u, row, b, h * d, c)); }
  else { stf_y(P[5] + e, val_KM(8u, row, b, h * d + c)); }
}`);
  const ropeBuf = rope ? ctx.buffer(rope.table) : ctx.temp(4).gpu;
  const params = new Params().u32(n, B, hkv, tk, d, y.offset, 0, 0, ...streamWords(s))
    .u32(rope ? rope.rotaryDim : 0, rope?.mode === 'interleaved' ? 1 : 0, rope?.table.offset ?? 0);
  ctx.run(k, [ctx.buffer(s.main), ctx.buffer(s.out), ropeBuf, ctx.buffer(y)], params, [cdiv(n, 256)]);
}
