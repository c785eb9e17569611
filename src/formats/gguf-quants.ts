// GGML block quantisation in plain TypeScript: the block sizes of the GGML types actlab knows, one
// small decoder per block type (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K,
// IQ4_NL) written after ggml-quants.c's dequantize_row_* so that each gives ggml's f32 values bit
// for bit (the reference for quantized kernels), and the reference quantisers of Q8_0 and Q4_0
// (quantize_row_q8_0_ref / quantize_row_q4_0_ref) that the GGUF writer uses.
// Q8_0 and Q4_0 also dequantise on the backends (src/ops/quant.ts); the other types are
// dequantised here, on load.
// Exactness: every product below (an f16 scale times small integers) is exact in f32, and a
// single + or − computed in float64 then stored to a Float32Array rounds as f32 arithmetic does
// (53 >= 2·24 + 2), so the values equal ggml's whether or not its compiler fused the multiply-add.
import { f16BitsToF32, f32ToF16Bits } from '../tensor/dtype.js';

/** GGML type ids (ggml.h `enum ggml_type`), the ones GGUF files commonly hold. */
export const GGML_TYPE = {
  F32: 0, F16: 1, Q4_0: 2, Q4_1: 3, Q5_0: 6, Q5_1: 7, Q8_0: 8, Q8_1: 9,
  Q2_K: 10, Q3_K: 11, Q4_K: 12, Q5_K: 13, Q6_K: 14, Q8_K: 15,
  IQ4_NL: 20, I8: 24, I16: 25, I32: 26, I64: 27, F64: 28, BF16: 30,
} as const;

export type GgmlTypeName = keyof typeof GGML_TYPE;

/** Values per block and bytes per block (ggml's type traits). */
export const GGML_BLOCK: Record<GgmlTypeName, { values: number; bytes: number }> = {
  F32: { values: 1, bytes: 4 }, F16: { values: 1, bytes: 2 }, BF16: { values: 1, bytes: 2 }, F64: { values: 1, bytes: 8 },
  I8: { values: 1, bytes: 1 }, I16: { values: 1, bytes: 2 }, I32: { values: 1, bytes: 4 }, I64: { values: 1, bytes: 8 },
  Q4_0: { values: 32, bytes: 18 }, Q4_1: { values: 32, bytes: 20 }, Q5_0: { values: 32, bytes: 22 }, Q5_1: { values: 32, bytes: 24 },
  Q8_0: { values: 32, bytes: 34 }, Q8_1: { values: 32, bytes: 36 },
  Q2_K: { values: 256, bytes: 84 }, Q3_K: { values: 256, bytes: 110 }, Q4_K: { values: 256, bytes: 144 },
  Q5_K: { values: 256, bytes: 176 }, Q6_K: { values: 256, bytes: 210 }, Q8_K: { values: 256, bytes: 292 },
  IQ4_NL: { values: 32, bytes: 18 },
};

export function ggmlTypeName(type: number): GgmlTypeName | null {
  for (const [k, v] of Object.entries(GGML_TYPE)) if (v === type) return k as GgmlTypeName;
  return null;
}

/** Bytes of `n` values of `type` (n a whole number of blocks). */
export function ggmlBytes(type: GgmlTypeName, n: number): number {
  const b = GGML_BLOCK[type];
  if (n % b.values) throw new Error(`${type}: ${n} values are not a whole number of ${b.values}-value blocks`);
  return (n / b.values) * b.bytes;
}

const QK_K = 256;

const f16At = (b: Uint8Array, o: number): number => f16BitsToF32(b[o]! | (b[o + 1]! << 8));

/**
 * Decodes the block of `raw` at byte `o` into `y` from index `k` (GGML_BLOCK[type].values values).
 * Byte layouts are ggml's `block_*` structs (ggml-common.h), little-endian.
 */
export type BlockDecoder = (raw: Uint8Array, o: number, y: Float32Array, k: number) => void;

/** Q4_0 (18 bytes): f16 d, 16 bytes of nibbles; x = d·(q − 8), low nibbles first. */
export const decodeBlockQ4_0: BlockDecoder = (raw, o, y, k) => {
  const d = f16At(raw, o);
  for (let j = 0; j < 16; j++) {
    const q = raw[o + 2 + j]!;
    y[k + j] = ((q & 0xf) - 8) * d;
    y[k + j + 16] = ((q >> 4) - 8) * d;
  }
};

/** Q4_1 (20 bytes): f16 d, f16 m, 16 bytes of nibbles; x = d·q + m. */
export const decodeBlockQ4_1: BlockDecoder = (raw, o, y, k) => {
  const d = f16At(raw, o);
  const m = f16At(raw, o + 2);
  for (let j = 0; j < 16; j++) {
    const q = raw[o + 4 + j]!;
    y[k + j] = (q & 0xf) * d + m;
    y[k + j + 16] = (q >> 4) * d + m;
  }
};

/** The 32 fifth bits of a Q5 block, as ggml reads them: one little-endian u32. */
const u32At = (b: Uint8Array, o: number): number => (b[o]! | (b[o + 1]! << 8) | (b[o + 2]! << 16) | (b[o + 3]! << 24)) >>> 0;

/** Q5_0 (22 bytes): f16 d, u32 qh (fifth bits), 16 bytes of nibbles; x = d·(q − 16). */
export const decodeBlockQ5_0: BlockDecoder = (raw, o, y, k) => {
  const d = f16At(raw, o);
  const qh = u32At(raw, o + 2);
  for (let j = 0; j < 16; j++) {
    const q = raw[o + 6 + j]!;
    const h0 = ((qh >>> j) << 4) & 0x10;
    const h1 = (qh >>> (j + 12)) & 0x10;
    y[k + j] = (((q & 0xf) | h0) - 16) * d;
    y[k + j + 16] = (((q >> 4) | h1) - 16) * d;
  }
};

/** Q5_1 (24 bytes): f16 d, f16 m, u32 qh, 16 bytes of nibbles; x = d·q + m. */
export const decodeBlockQ5_1: BlockDecoder = (raw, o, y, k) => {
  const d = f16At(raw, o);
  const m = f16At(raw, o + 2);
  const qh = u32At(raw, o + 4);
  for (let j = 0; j < 16; j++) {
    const q = raw[o + 8 + j]!;
    const h0 = ((qh >>> j) << 4) & 0x10;
    const h1 = (qh >>> (j + 12)) & 0x10;
    y[k + j] = ((q & 0xf) | h0) * d + m;
    y[k + j + 16] = ((q >> 4) | h1) * d + m;
  }
};

/** Q8_0 (34 bytes): f16 d, 32 int8; x = d·q. */
export const decodeBlockQ8_0: BlockDecoder = (raw, o, y, k) => {
  const d = f16At(raw, o);
  for (let j = 0; j < 32; j++) y[k + j] = ((raw[o + 2 + j]! << 24) >> 24) * d;
};

/** Q2_K (84 bytes): 16 scale bytes (4-bit scale, 4-bit min), 64 bytes of 2-bit quants, f16 d, f16 dmin. */
export const decodeBlockQ2_K: BlockDecoder = (raw, o, y, k) => {
  const d = f16At(raw, o + 80);
  const min = f16At(raw, o + 82);
  let q = o + 16;
  let is = 0;
  for (let n = 0; n < QK_K; n += 128, q += 32) {
    for (let shift = 0; shift < 8; shift += 2) {
      for (let half = 0; half < 2; half++) {
        const sc = raw[o + is++]!;
        const dl = d * (sc & 0xf);
        const ml = min * (sc >> 4);
        for (let l = 0; l < 16; l++) y[k++] = dl * ((raw[q + half * 16 + l]! >> shift) & 3) - ml;
      }
    }
  }
};

/** Q3_K's sixteen 6-bit scales from its 12 packed bytes (the kmask1/kmask2 shuffle of dequantize_row_q3_K), minus 32. */
function scalesQ3K(raw: Uint8Array, o: number): Int8Array {
  const a0 = u32At(raw, o), a1 = u32At(raw, o + 4), tmp = u32At(raw, o + 8);
  const km1 = 0x03030303, km2 = 0x0f0f0f0f;
  const aux = new Uint32Array([
    (a0 & km2) | (((tmp >>> 0) & km1) << 4),
    (a1 & km2) | (((tmp >>> 2) & km1) << 4),
    ((a0 >>> 4) & km2) | (((tmp >>> 4) & km1) << 4),
    ((a1 >>> 4) & km2) | (((tmp >>> 6) & km1) << 4),
  ]);
  return new Int8Array(aux.buffer).map((s) => s - 32);
}

/** Q3_K (110 bytes): 32 bytes hmask (third bits), 64 bytes of 2-bit quants, 12 bytes of 6-bit scales, f16 d. */
export const decodeBlockQ3_K: BlockDecoder = (raw, o, y, k) => {
  const dAll = f16At(raw, o + 108);
  const scales = scalesQ3K(raw, o + 96);
  let q = o + 32;
  let is = 0;
  let m = 1;
  for (let n = 0; n < QK_K; n += 128, q += 32) {
    for (let shift = 0; shift < 8; shift += 2, m <<= 1) {
      for (let half = 0; half < 2; half++) {
        const dl = dAll * scales[is++]!;
        for (let l = 0; l < 16; l++) {
          const i = half * 16 + l;
          y[k++] = dl * (((raw[q + i]! >> shift) & 3) - (raw[o + i]! & m ? 0 : 4));
        }
      }
    }
  }
};

/** The 6-bit scale and min of sub-block j (0..7) from the 12 packed bytes of Q4_K / Q5_K (ggml's get_scale_min_k4). */
function scaleMinK4(j: number, q: Uint8Array, o: number): [number, number] {
  if (j < 4) return [q[o + j]! & 63, q[o + j + 4]! & 63];
  return [
    (q[o + j + 4]! & 0xf) | ((q[o + j - 4]! >> 6) << 4),
    (q[o + j + 4]! >> 4) | ((q[o + j]! >> 6) << 4),
  ];
}

/** Q4_K (144 bytes): f16 d, f16 dmin, 12 bytes of 6-bit scales/mins, 128 bytes of nibbles. */
export const decodeBlockQ4_K: BlockDecoder = (raw, o, y, k) => {
  const d = f16At(raw, o);
  const dmin = f16At(raw, o + 2);
  let q = o + 16;
  for (let j = 0, is = 0; j < QK_K; j += 64, is += 2, q += 32) {
    const [sc1, m1] = scaleMinK4(is, raw, o + 4);
    const [sc2, m2] = scaleMinK4(is + 1, raw, o + 4);
    const d1 = d * sc1, mm1 = dmin * m1, d2 = d * sc2, mm2 = dmin * m2;
    for (let l = 0; l < 32; l++) y[k++] = d1 * (raw[q + l]! & 0xf) - mm1;
    for (let l = 0; l < 32; l++) y[k++] = d2 * (raw[q + l]! >> 4) - mm2;
  }
};

/** Q5_K (176 bytes): f16 d, f16 dmin, 12 bytes of 6-bit scales/mins, 32 bytes qh (fifth bits), 128 bytes of nibbles. */
export const decodeBlockQ5_K: BlockDecoder = (raw, o, y, k) => {
  const d = f16At(raw, o);
  const dmin = f16At(raw, o + 2);
  const qh = o + 16;
  let ql = o + 48;
  let u1 = 1, u2 = 2;
  for (let j = 0, is = 0; j < QK_K; j += 64, is += 2, ql += 32, u1 <<= 2, u2 <<= 2) {
    const [sc1, m1] = scaleMinK4(is, raw, o + 4);
    const [sc2, m2] = scaleMinK4(is + 1, raw, o + 4);
    const d1 = d * sc1, mm1 = dmin * m1, d2 = d * sc2, mm2 = dmin * m2;
    for (let l = 0; l < 32; l++) y[k++] = d1 * ((raw[ql + l]! & 0xf) + (raw[qh + l]! & u1 ? 16 : 0)) - mm1;
    for (let l = 0; l < 32; l++) y[k++] = d2 * ((raw[ql + l]! >> 4) + (raw[qh + l]! & u2 ? 16 : 0)) - mm2;
  }
};

/** Q6_K (210 bytes): 128 bytes low nibbles, 64 bytes high 2-bit pairs, 16 int8 scales, f16 d. */
export const decodeBlockQ6_K: BlockDecoder = (raw, o, y, k) => {
  const d = f16At(raw, o + 208);
  const sc = (s: number): number => (raw[o + 192 + s]! << 24) >> 24;
  for (let half = 0; half < 2; half++) {
    const ql = o + half * 64;
    const qh = o + 128 + half * 32;
    const s0 = half * 8;
    const y0 = k + half * 128;
    for (let l = 0; l < 32; l++) {
      const is = s0 + (l >> 4);
      const h = raw[qh + l]!;
      const q1 = ((raw[ql + l]! & 0xf) | ((h & 3) << 4)) - 32;
      const q2 = ((raw[ql + l + 32]! & 0xf) | (((h >> 2) & 3) << 4)) - 32;
      const q3 = ((raw[ql + l]! >> 4) | (((h >> 4) & 3) << 4)) - 32;
      const q4 = ((raw[ql + l + 32]! >> 4) | (((h >> 6) & 3) << 4)) - 32;
      y[y0 + l] = d * sc(is) * q1;
      y[y0 + l + 32] = d * sc(is + 2) * q2;
      y[y0 + l + 64] = d * sc(is + 4) * q3;
      y[y0 + l + 96] = d * sc(is + 6) * q4;
    }
  }
};

/** IQ4_NL's sixteen levels (ggml-common.h kvalues_iq4nl): a non-linear 4-bit grid. */
export const IQ4_NL_VALUES: readonly number[] = [-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113];

/** IQ4_NL (18 bytes): f16 d, 16 bytes of nibbles indexing IQ4_NL_VALUES; x = d·v[q]. */
export const decodeBlockIQ4_NL: BlockDecoder = (raw, o, y, k) => {
  const d = f16At(raw, o);
  for (let j = 0; j < 16; j++) {
    const q = raw[o + 2 + j]!;
    y[k + j] = d * IQ4_NL_VALUES[q & 0xf]!;
    y[k + j + 16] = d * IQ4_NL_VALUES[q >> 4]!;
  }
};

/** The block decoder of each quantized type actlab reads. */
export const BLOCK_DECODERS: Partial<Record<GgmlTypeName, BlockDecoder>> = {
  Q4_0: decodeBlockQ4_0, Q4_1: decodeBlockQ4_1, Q5_0: decodeBlockQ5_0, Q5_1: decodeBlockQ5_1, Q8_0: decodeBlockQ8_0,
  Q2_K: decodeBlockQ2_K, Q3_K: decodeBlockQ3_K, Q4_K: decodeBlockQ4_K, Q5_K: decodeBlockQ5_K, Q6_K: decodeBlockQ6_K,
  IQ4_NL: decodeBlockIQ4_NL,
};

/** `n` values of `type` from `raw` (whole blocks) to f32, as ggml's dequantize_row_* gives them. */
export function dequantizeGgml(type: GgmlTypeName, raw: Uint8Array, n: number): Float32Array {
  const decode = BLOCK_DECODERS[type];
  if (!decode) throw new Error(`${type}: no block decoder (have ${Object.keys(BLOCK_DECODERS).join(', ')})`);
  const { values, bytes } = GGML_BLOCK[type];
  if (n % values || raw.byteLength !== (n / values) * bytes) {
    throw new Error(`${type}: ${raw.byteLength} bytes do not hold ${n} values (${n / values} blocks of ${bytes} bytes)`);
  }
  const y = new Float32Array(n);
  for (let b = 0; b < n / values; b++) decode(raw, b * bytes, y, b * values);
  return y;
}

/** Q4_K rows to f32 (dequantize_row_q4_K). */
export const dequantizeQ4K = (raw: Uint8Array, n: number): Float32Array => dequantizeGgml('Q4_K', raw, n);
/** Q6_K rows to f32 (dequantize_row_q6_K). */
export const dequantizeQ6K = (raw: Uint8Array, n: number): Float32Array => dequantizeGgml('Q6_K', raw, n);

/** C's roundf: halves away from zero (Math.round rounds -2.5 to -2). */
const roundf = (v: number): number => Math.sign(v) * Math.floor(Math.abs(v) + 0.5);

/** quantize_row_q8_0_ref: per 32 values, d = max|x| / 127 (f16), q = round(x / d). */
export function quantizeQ8_0(x: ArrayLike<number>): Uint8Array {
  if (x.length % 32) throw new Error(`Q8_0: ${x.length} values are not a whole number of 32-value blocks`);
  const out = new Uint8Array((x.length / 32) * 34);
  for (let b = 0; b < x.length / 32; b++) {
    let amax = 0;
    for (let j = 0; j < 32; j++) amax = Math.max(amax, Math.abs(x[b * 32 + j]!));
    const d = amax / 127;
    const id = d ? 1 / d : 0;
    const h = f32ToF16Bits(d);
    out[b * 34] = h & 0xff;
    out[b * 34 + 1] = h >> 8;
    for (let j = 0; j < 32; j++) out[b * 34 + 2 + j] = roundf(x[b * 32 + j]! * id) & 0xff;
  }
  return out;
}

/** quantize_row_q4_0_ref: per 32 values, d = (the value of largest magnitude) / -8, q = min(15, trunc(x / d + 8.5)). */
export function quantizeQ4_0(x: ArrayLike<number>): Uint8Array {
  if (x.length % 32) throw new Error(`Q4_0: ${x.length} values are not a whole number of 32-value blocks`);
  const out = new Uint8Array((x.length / 32) * 18);
  for (let b = 0; b < x.length / 32; b++) {
    let amax = 0;
    let max = 0;
    for (let j = 0; j < 32; j++) {
      const v = x[b * 32 + j]!;
      if (Math.abs(v) > amax) { amax = Math.abs(v); max = v; }
    }
    const d = max / -8;
    const id = d ? 1 / d : 0;
    const h = f32ToF16Bits(d);
    out[b * 18] = h & 0xff;
    out[b * 18 + 1] = h >> 8;
    for (let j = 0; j < 16; j++) {
      const q0 = Math.min(15, Math.trunc(x[b * 32 + j]! * id + 8.5));
      const q1 = Math.min(15, Math.trunc(x[b * 32 + 16 + j]! * id + 8.5));
      out[b * 18 + 2 + j] = q0 | (q1 << 4);
    }
  }
  return out;
}
