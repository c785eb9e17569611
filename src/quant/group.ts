// The one packed layout behind actlab's own weight formats: each row of a [rows, cols] matrix is
// split into groups that share a scale (and, asymmetric, an offset); each value is a code of a
// code book (src/quant/codebook.ts): value = scale · book[code] + offset. Block bytes:
//   [scale: f16 | f32 | u8 (double-quantised)] [offset: f16, asymmetric only] [codes]
// with 4-bit codes packed per 32 values as ggml's Q4_0 does (byte j: value j in the low nibble,
// value j + 16 in the high one), so the wasm kernels unpack them the same way. Per-channel formats
// (one scale per row) store the row's codes in blocks of 32 and its f32 scale after them; the
// double-quantised scales (NF4 with double quantisation) keep their f32 low end and step after the
// row. The range of each group is its absmax (min/max when asymmetric) or, with clip 'mse', the
// clipped range of least squared error (the whitepaper's MSE range setting: Nagel et al. 2021,
// "A White Paper on Neural Network Quantization", §3.4), searched on the rounded scale.
// Not for: which format a tensor gets (src/quant/formats.ts) or searches across formats (llm-fp4.ts).
import { f16BitsToF32, f32ToF16Bits } from '../tensor/dtype.js';
import { nearestCode, type Codebook } from './codebook.js';

export interface GroupLayout {
  book: Codebook;
  /** Values per scale; 0: one scale per row (per-channel), an f32 after the row's codes. */
  group: number;
  /** How each group's scale is stored ('row' with group 0). */
  scale: 'f16' | 'f32' | 'u8' | 'row';
  /** Asymmetric: an f16 offset after the scale. */
  offset: boolean;
  /** Largest |code value| a symmetric absmax scale maps onto (int4: 7 keeps [-7, 7]); default book.maxAbs. */
  qmax?: number;
  /** Default range setting: absmax, least squared error, or a fixed ratio of the absmax. */
  clip: Clip;
}

export type Clip = 'absmax' | 'mse' | number;

/** Byte layout of a row: blocks of `values` values of `bytes` bytes, then `tail` bytes. */
export function layoutBlock(l: GroupLayout): { values: number; bytes: number; tail: number } {
  const values = l.group || 32;
  const codeBytes = (values * l.book.bits) / 8;
  const head = l.scale === 'f16' ? 2 : l.scale === 'f32' ? 4 : l.scale === 'u8' ? 1 : 0;
  return { values, bytes: head + (l.offset ? 2 : 0) + codeBytes, tail: l.scale === 'row' ? 4 : l.scale === 'u8' ? 8 : 0 };
}

/** Clip ratios tried by the MSE range search (1 = the group's absmax). */
export const MSE_RATIOS = Array.from({ length: 21 }, (_, i) => 1 - i * 0.025);

const roundScale = (s: number, how: GroupLayout['scale']): number =>
  how === 'f16' ? f16BitsToF32(f32ToF16Bits(s)) : how === 'f32' || how === 'row' ? Math.fround(s) : s;

/** Scale and offset of one group over values[at, at + n) for clip ratio `a`. */
function groupRange(l: GroupLayout, v: Float32Array, at: number, n: number, a: number): [number, number] {
  let lo = 0;
  let hi = 0;
  for (let i = at; i < at + n; i++) { const x = v[i]!; if (x < lo) lo = x; if (x > hi) hi = x; }
  if (l.offset) {
    const s = roundScale((a * (hi - lo)) / (l.book.max - l.book.min), l.scale);
    return [s, f16BitsToF32(f32ToF16Bits(a * lo - s * l.book.min))];
  }
  const absmax = Math.max(-lo, hi);
  return [roundScale((a * absmax) / (l.qmax ?? l.book.maxAbs), l.scale), 0];
}

/** Squared error of the group coded with scale s and offset o. */
function groupError(l: GroupLayout, v: Float32Array, at: number, n: number, s: number, o: number): number {
  let e = 0;
  const lut = l.book.lut;
  for (let i = at; i < at + n; i++) {
    const x = v[i]!;
    const c = s > 0 ? nearestCode(l.book, (x - o) / s) : nearestCode(l.book, 0);
    const d = x - (s * lut[c]! + o);
    e += d * d;
  }
  return e;
}

/** The chosen (scale, offset) of a group: absmax, or the clip ratio of least squared error. */
export function chooseRange(l: GroupLayout, v: Float32Array, at: number, n: number, clip: Clip = l.clip): [number, number] {
  if (typeof clip === 'number') return groupRange(l, v, at, n, clip);
  let best = groupRange(l, v, at, n, 1);
  if (clip === 'absmax' || best[0] === 0) return best;
  let bestErr = groupError(l, v, at, n, best[0], best[1]);
  for (const a of MSE_RATIOS.slice(1)) {
    const r = groupRange(l, v, at, n, a);
    const e = groupError(l, v, at, n, r[0], r[1]);
    if (e < bestErr) { bestErr = e; best = r; }
  }
  return best;
}

function putCodes(l: GroupLayout, out: Uint8Array, at: number, v: Float32Array, from: number, n: number, s: number, o: number): void {
  const zero = nearestCode(l.book, 0);
  const code = (x: number): number => (s > 0 ? nearestCode(l.book, (x - o) / s) : zero);
  if (l.book.bits === 8) {
    for (let i = 0; i < n; i++) out[at + i] = code(v[from + i]!);
    return;
  }
  for (let u = 0; u < n; u += 32) {
    for (let j = 0; j < 16; j++) out[at + u / 2 + j] = code(v[from + u + j]!) | (code(v[from + u + j + 16]!) << 4);
  }
}

function getCodes(l: GroupLayout, raw: Uint8Array, at: number, y: Float32Array, to: number, n: number, s: number, o: number): void {
  const lut = l.book.lut;
  if (l.book.bits === 8) {
    for (let i = 0; i < n; i++) y[to + i] = s * lut[raw[at + i]!]! + o;
    return;
  }
  for (let u = 0; u < n; u += 32) {
    for (let j = 0; j < 16; j++) {
      const b = raw[at + u / 2 + j]!;
      y[to + u + j] = s * lut[b & 15]! + o;
      y[to + u + j + 16] = s * lut[b >> 4]! + o;
    }
  }
}

/** Bytes of one row of `cols` values. */
export function groupRowBytes(l: GroupLayout, cols: number): number {
  const b = layoutBlock(l);
  return (cols / b.values) * b.bytes + b.tail;
}

/** values [rows, cols] (cols a multiple of the block) -> packed bytes [rows, rowBytes]. */
export function encodeGroups(l: GroupLayout, values: Float32Array, rows: number, cols: number, clip: Clip = l.clip): Uint8Array {
  const b = layoutBlock(l);
  const rb = groupRowBytes(l, cols);
  const out = new Uint8Array(rows * rb);
  const dv = new DataView(out.buffer);
  const nb = cols / b.values;
  const codeAt = b.bytes - (b.values * l.book.bits) / 8;
  const scales = new Float32Array(nb);
  for (let r = 0; r < rows; r++) {
    const row = r * cols;
    const base = r * rb;
    if (l.scale === 'row') {
      const [s] = chooseRange(l, values, row, cols, clip);
      for (let k = 0; k < nb; k++) putCodes(l, out, base + k * b.bytes, values, row + k * b.values, b.values, s, 0);
      dv.setFloat32(base + nb * b.bytes, s, true);
      continue;
    }
    const offsets = new Float32Array(nb);
    for (let k = 0; k < nb; k++) [scales[k], offsets[k]] = chooseRange(l, values, row + k * b.values, b.values, clip);
    if (l.scale === 'u8') {
      // Double quantisation: the row's block scales to 8 bits between their min and max.
      let lo = Infinity;
      let hi = -Infinity;
      for (const s of scales) { lo = Math.min(lo, s); hi = Math.max(hi, s); }
      lo = Math.fround(lo);
      const step = Math.fround((hi - lo) / 255);
      for (let k = 0; k < nb; k++) {
        const c = step > 0 ? Math.min(255, Math.max(0, Math.round((scales[k]! - lo) / step))) : 0;
        out[base + k * b.bytes] = c;
        scales[k] = Math.fround(lo + step * c);
      }
      dv.setFloat32(base + nb * b.bytes, lo, true);
      dv.setFloat32(base + nb * b.bytes + 4, step, true);
    }
    for (let k = 0; k < nb; k++) {
      const at = base + k * b.bytes;
      if (l.scale === 'f16') dv.setUint16(at, f32ToF16Bits(scales[k]!), true);
      else if (l.scale === 'f32') dv.setFloat32(at, scales[k]!, true);
      if (l.offset) dv.setUint16(at + 2, f32ToF16Bits(offsets[k]!), true);
      putCodes(l, out, at + codeAt, values, row + k * b.values, b.values, scales[k]!, offsets[k]!);
    }
  }
  return out;
}

/** Packed bytes of `rows` rows of `cols` values -> f32 [rows * cols]. */
export function decodeGroups(l: GroupLayout, raw: Uint8Array, rows: number, cols: number): Float32Array {
  const b = layoutBlock(l);
  const rb = groupRowBytes(l, cols);
  const y = new Float32Array(rows * cols);
  const dv = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  const nb = cols / b.values;
  const codeAt = b.bytes - (b.values * l.book.bits) / 8;
  for (let r = 0; r < rows; r++) {
    const base = r * rb;
    const tail = base + nb * b.bytes;
    const rowScale = l.scale === 'row' ? dv.getFloat32(tail, true) : 0;
    const lo = l.scale === 'u8' ? dv.getFloat32(tail, true) : 0;
    const step = l.scale === 'u8' ? dv.getFloat32(tail + 4, true) : 0;
    for (let k = 0; k < nb; k++) {
      const at = base + k * b.bytes;
      const s = l.scale === 'row' ? rowScale : l.scale === 'f16' ? f16BitsToF32(dv.getUint16(at, true))
        : l.scale === 'f32' ? dv.getFloat32(at, true) : Math.fround(lo + step * raw[at]!);
      const o = l.offset ? f16BitsToF32(dv.getUint16(at + 2, true)) : 0;
      getCodes(l, raw, at + codeAt, y, r * cols + k * b.values, b.values, s, o);
    }
  }
  return y;
}
