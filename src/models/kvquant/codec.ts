// The packed rows of a quantized KV cache and their codec in plain TypeScript (the reference the
// wasm kernel is tested against). One stream (the keys or the values of one layer) holds rows of
// R = kv_head · d_head values, one row per (position, sequence), position-major (row = t · batch + b)
// so that appending a step appends rows. Each value is a `bits`-bit code (little-endian bit order,
// value c at bit c · bits of its row) that indexes a lookup table, then meets an affine map:
//   x = lut[code] · scale + offset
// with (scale, offset) either per channel (f32 [R] each, from calibration: KVQuant's keys) or per
// group of G values of the row (f16 scale, and an f16 offset where the scheme has one):
//   q8_0  lut[i] = int8(i),  groups of 32, scale d  (ggml's quantize_row_q8_0_ref: same d, same codes)
//   q4_0  lut[i] = i − 8,    groups of 32, scale d  (ggml's quantize_row_q4_0_ref)
//   kvquant uniform  lut[i] = i, min-max range;  nuq  lut = the calibrated codebook in [−1, 1],
//          scale = half the range, offset = its midpoint
// Exact values (outliers, and every value of a sequence's first token when the sink is kept) go to
// a sparse list in CSR form: rowptr i32 [rows + 1] into (channel u16, value f32) entries, a row's
// entries in increasing channel order (kernels binary-search them); they replace the dense value
// on decode. Streams that keep nothing exact (q8_0, q4_0) store no rowptr.
// Main buffer of a stream, byte offsets in StreamLayout: codes [cap · rowBytes] (row-major, or a kv
// head slice at a time: StreamLayout.slices, codeBase) (+4 bytes so a
// kernel may read a 32-bit word at any code), group params, rowptr, segment index, positions i32 [cap] (pre-RoPE
// keys only: the position RoPE is applied with on read), lut f32 [2^bits], channel scale and offset.
// Outlier buffer: channel u16 [outCap], then value f32 [outCap] at oVal.
// Not for: choosing the scheme (spec.ts) or calibration (calibrate.ts).
import { quantizeQ4_0, quantizeQ8_0 } from '../../formats/gguf-quants.js';
import { f16BitsToF32, f32ToF16Bits } from '../../tensor/dtype.js';
import type { StreamLayout } from '../../tensor/packed-kv.js';

export type { StreamLayout };

const align4 = (n: number): number => (n + 3) & ~3;

export function streamLayout(bits: number, R: number, params: 'channel' | 'group', G: number, grpBytes: number, cap: number, outCap: number, positions = false, sparse = true, segs = 1, slices = 1): StreamLayout {
  const rowBytes = Math.ceil((R * bits) / 8);
  if (!(Number.isInteger(slices) && slices >= 1 && R % slices === 0 && ((R / slices) * bits) % 8 === 0)) throw new RangeError(`streamLayout: ${slices} code slices do not split rows of ${R} ${bits}-bit codes into whole bytes`);
  const sliceBytes = slices > 1 ? ((R / slices) * bits) / 8 : rowBytes;
  const nGroups = params === 'group' ? R / G : 0;
  if (!(Number.isInteger(segs) && segs >= 1 && R % segs === 0)) throw new RangeError(`streamLayout: ${segs} segments do not split rows of ${R} values`);
  if (!sparse) segs = 1;
  const oGrp = align4(cap * rowBytes + 4);
  const oRowptr = align4(oGrp + cap * nGroups * grpBytes);
  const oSeg = oRowptr + (sparse ? (cap + 1) * 4 : 0);
  const oPos = align4(oSeg + (segs > 1 ? cap * segs * 2 : 0));
  const oLut = oPos + (positions ? cap * 4 : 0);
  const oChan = oLut + (1 << bits) * 4;
  const bytes = oChan + (params === 'channel' ? 8 * R : 0);
  const oVal = align4(outCap * 2);
  return { bits, R, rowBytes, params, G, grpBytes: params === 'group' ? grpBytes : 0, cap, oGrp, oRowptr, oPos, oLut, oChan, bytes, outCap, oVal, outBytes: oVal + outCap * 4, sparse, segs, oSeg, slices, sliceBytes };
}

/** Byte offset in the main buffer from which code c of `row` lies at bit c · bits (StreamLayout.slices). */
export function codeBase(L: StreamLayout, row: number, c: number): number {
  const h = L.slices > 1 ? Math.floor(c / (L.R / L.slices)) : 0;
  return (h * (L.cap - 1) + row) * L.sliceBytes;
}

/** How one stream turns a row of f32 into codes (fixed for the cache's life). */
export interface RowEncoder {
  kind: 'q8_0' | 'q4_0' | 'uniform' | 'nuq';
  bits: number;
  R: number;
  params: 'channel' | 'group';
  G: number;
  grpBytes: number;
  lut: Float32Array;
  /** 'channel': per-channel scale and offset (x = lut · scale + offset). */
  chanScale?: Float32Array;
  chanOffset?: Float32Array;
  /** 'channel' outliers: values outside [lo, hi] are kept exact. */
  lo?: Float32Array;
  hi?: Float32Array;
  /** 'group' outliers: |x − median(row)| > tau is kept exact (Infinity: none). */
  tau: number;
}

export interface EncodedRow {
  codes: Uint8Array; // [rowBytes]
  grp: Uint8Array; // [nGroups · grpBytes]
  outIdx: number[];
  outVal: number[];
}

function putCode(codes: Uint8Array, c: number, bits: number, q: number): void {
  if (bits === 4) { codes[c >> 1] = codes[c >> 1]! | ((q & 15) << ((c & 1) << 2)); return; }
  if (bits === 8) { codes[c] = q & 255; return; }
  let bit = c * bits;
  for (let left = bits; left > 0;) {
    const byte = bit >> 3, sh = bit & 7, take = Math.min(left, 8 - sh);
    codes[byte] = codes[byte]! | ((q & ((1 << take) - 1)) << sh);
    q >>= take; bit += take; left -= take;
  }
}

export function getCode(codes: Uint8Array, at: number, c: number, bits: number): number {
  const bit = c * bits;
  const o = at + (bit >> 3);
  const word = codes[o]! | (codes[o + 1]! << 8) | (codes[o + 2]! << 16);
  return (word >>> (bit & 7)) & ((1 << bits) - 1);
}

/** Index of the entry of a sorted table nearest to x (ties to the lower). */
function nearest(lut: Float32Array, x: number): number {
  let lo = 0, hi = lut.length - 1;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (x > (lut[mid]! + lut[mid + 1]!) / 2) lo = mid + 1; else hi = mid;
  }
  return lo;
}

const f16 = (x: number): number => f16BitsToF32(f32ToF16Bits(x));

/**
 * The k-th smallest of a[0, end) (Hoare's selection, in place: afterwards a[0, k) ≤ a[k] ≤ a[k, end)).
 * A row's median without sorting it (hand-written: no library selects in a typed array).
 */
function select(a: Float32Array, k: number, end = a.length): number {
  let lo = 0, hi = end - 1;
  while (lo < hi) {
    const pivot = a[(lo + hi) >> 1]!;
    let i = lo, j = hi;
    while (i <= j) {
      while (a[i]! < pivot) i++;
      while (a[j]! > pivot) j--;
      if (i <= j) { const t = a[i]!; a[i] = a[j]!; a[j] = t; i++; j--; }
    }
    if (k <= j) hi = j; else if (k >= i) lo = i; else break;
  }
  return a[k]!;
}

/** Encodes one row; `exact` keeps every value in the sparse list (a sink row). */
export function encodeRow(e: RowEncoder, x: Float32Array, exact = false): EncodedRow {
  const { R, bits } = e;
  const codes = new Uint8Array(Math.ceil((R * bits) / 8));
  const nGroups = e.params === 'group' ? R / e.G : 0;
  const grp = new Uint8Array(nGroups * e.grpBytes);
  const outIdx: number[] = [], outVal: number[] = [];
  const keep = (c: number) => { outIdx.push(c); outVal.push(x[c]!); };
  if (e.kind === 'q8_0' || e.kind === 'q4_0') {
    const blocks = e.kind === 'q8_0' ? quantizeQ8_0(x) : quantizeQ4_0(x);
    const bb = e.kind === 'q8_0' ? 34 : 18;
    for (let b = 0; b < R / 32; b++) {
      grp[2 * b] = blocks[b * bb]!; grp[2 * b + 1] = blocks[b * bb + 1]!;
      for (let j = 0; j < 32; j++) {
        const q = e.kind === 'q8_0' ? blocks[b * bb + 2 + j]! : (blocks[b * bb + 2 + (j & 15)]! >> (j < 16 ? 0 : 4)) & 15;
        putCode(codes, b * 32 + j, bits, q);
      }
    }
  } else if (e.params === 'channel') {
    const out = new Uint8Array(R);
    for (let c = 0; c < R; c++) if (e.lo && (x[c]! < e.lo[c]! || x[c]! > e.hi![c]!)) { out[c] = 1; keep(c); }
    for (let c = 0; c < R; c++) {
      const t = (x[c]! - e.chanOffset![c]!) / e.chanScale![c]!;
      const q = e.kind === 'uniform' ? Math.min((1 << bits) - 1, Math.max(0, Math.round(t))) : nearest(e.lut, t);
      putCode(codes, c, bits, Number.isFinite(t) ? q : 0);
    }
  } else {
    const hasTau = Number.isFinite(e.tau);
    const sorted = hasTau ? new Float32Array(e.G) : undefined;
    const top = (1 << bits) - 1;
    for (let g = 0; g < nGroups; g++) {
      const c0 = g * e.G;
      const row = x.subarray(c0, c0 + e.G);
      let med = 0;
      if (sorted) {
        sorted.set(row);
        const m = e.G >> 1;
        const hi = select(sorted, m);
        med = e.G % 2 ? hi : (select(sorted, m - 1, m) + hi) / 2;
      }
      let mn = Infinity, mx = -Infinity;
      for (let j = 0; j < e.G; j++) {
        const v = row[j]!;
        if (hasTau && Math.abs(v - med) > e.tau) keep(c0 + j);
        else { mn = Math.min(mn, v); mx = Math.max(mx, v); }
      }
      if (mn > mx) mn = mx = med;
      const [scale, offset] = e.kind === 'uniform'
        ? [f16((mx - mn) / top), f16(mn)]
        : [f16((mx - mn) / 2), f16((mx + mn) / 2)];
      const sb = f32ToF16Bits(scale), ob = f32ToF16Bits(offset);
      grp[4 * g] = sb & 0xff; grp[4 * g + 1] = sb >> 8; grp[4 * g + 2] = ob & 0xff; grp[4 * g + 3] = ob >> 8;
      for (let j = 0; j < e.G; j++) {
        const t = scale ? (row[j]! - offset) / scale : 0;
        const q = e.kind === 'uniform' ? Math.min(top, Math.max(0, Math.round(t))) : nearest(e.lut, t);
        putCode(codes, c0 + j, bits, q);
      }
    }
  }
  if (exact) {
    outIdx.length = 0; outVal.length = 0;
    for (let c = 0; c < R; c++) keep(c);
  }
  return { codes, grp, outIdx, outVal };
}

/** Views of a stream's buffers for decoding. */
export interface StreamBytes {
  main: Uint8Array;
  out: Uint8Array;
}

/**
 * Values [c0, c0 + n) of row `row` into `y` (from index `yAt`): the dense decode, then the row's
 * sparse entries in that range. The definition the kernels follow.
 */
export function decodeRow(L: StreamLayout, s: StreamBytes, row: number, c0: number, n: number, y: Float32Array, yAt = 0): void {
  const dv = new DataView(s.main.buffer, s.main.byteOffset, s.main.byteLength);
  const ov = new DataView(s.out.buffer, s.out.byteOffset, s.out.byteLength);
  for (let c = c0; c < c0 + n; c++) {
    const l = dv.getFloat32(L.oLut + 4 * getCode(s.main, codeBase(L, row, c), c, L.bits), true);
    let v: number;
    if (L.params === 'channel') {
      v = Math.fround(Math.fround(l * dv.getFloat32(L.oChan + 4 * c, true)) + dv.getFloat32(L.oChan + 4 * (L.R + c), true));
    } else {
      const g = L.oGrp + (row * (L.R / L.G) + Math.floor(c / L.G)) * L.grpBytes;
      const scale = f16BitsToF32(dv.getUint16(g, true));
      v = Math.fround(l * scale);
      if (L.grpBytes === 4) v = Math.fround(v + f16BitsToF32(dv.getUint16(g + 2, true)));
    }
    y[yAt + c - c0] = v;
  }
  if (!L.sparse) return;
  const e0 = dv.getInt32(L.oRowptr + 4 * row, true), e1 = dv.getInt32(L.oRowptr + 4 * row + 4, true);
  for (let e = e0; e < e1; e++) {
    const c = ov.getUint16(2 * e, true);
    if (c >= c0 && c < c0 + n) y[yAt + c - c0] = ov.getFloat32(L.oVal + 4 * e, true);
  }
}

/** Lookup tables of the fixed kinds. */
export function fixedLut(kind: 'q8_0' | 'q4_0' | 'uniform', bits: number): Float32Array {
  const n = 1 << bits;
  return Float32Array.from({ length: n }, (_, i) => (kind === 'q8_0' ? (i << 24) >> 24 : kind === 'q4_0' ? i - 8 : i));
}
