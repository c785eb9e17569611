// GGML block quantisation in plain TypeScript: the block sizes of the GGML types actlab knows, the
// dequantisation of the K-quants Q4_K and Q6_K (256 values per super-block) as ggml-quants.c's
// dequantize_row_q4_K / dequantize_row_q6_K do, and the reference quantisers of Q8_0 and Q4_0
// (quantize_row_q8_0_ref / quantize_row_q4_0_ref) that the GGUF writer uses.
// Q8_0 and Q4_0 dequantise on the backends (src/ops/quant.ts); the K-quants are dequantised here,
// on load, because no backend kernel exists for them yet.
import { f16BitsToF32, f32ToF16Bits } from '../tensor/dtype.js';

/** GGML type ids (ggml.h `enum ggml_type`), the ones GGUF files commonly hold. */
export const GGML_TYPE = {
  F32: 0, F16: 1, Q4_0: 2, Q4_1: 3, Q5_0: 6, Q5_1: 7, Q8_0: 8, Q8_1: 9,
  Q2_K: 10, Q3_K: 11, Q4_K: 12, Q5_K: 13, Q6_K: 14, Q8_K: 15,
  I8: 24, I16: 25, I32: 26, I64: 27, F64: 28, BF16: 30,
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

function checkBlocks(raw: Uint8Array, n: number, blockBytes: number, type: string): number {
  if (n % QK_K || raw.byteLength !== (n / QK_K) * blockBytes) {
    throw new Error(`${type}: ${raw.byteLength} bytes do not hold ${n} values (${n / QK_K} blocks of ${blockBytes} bytes)`);
  }
  return n / QK_K;
}

const f16At = (b: Uint8Array, o: number): number => f16BitsToF32(b[o]! | (b[o + 1]! << 8));

/** The 6-bit scale and min of sub-block j (0..7) from Q4_K's 12 packed bytes (ggml's get_scale_min_k4). */
function scaleMinK4(j: number, q: Uint8Array, o: number): [number, number] {
  if (j < 4) return [q[o + j]! & 63, q[o + j + 4]! & 63];
  return [
    (q[o + j + 4]! & 0xf) | ((q[o + j - 4]! >> 6) << 4),
    (q[o + j + 4]! >> 4) | ((q[o + j]! >> 6) << 4),
  ];
}

/** Q4_K block (144 bytes): f16 d, f16 dmin, 12 bytes of 6-bit scales/mins, 128 bytes of nibbles. */
export function dequantizeQ4K(raw: Uint8Array, n: number): Float32Array {
  const nb = checkBlocks(raw, n, 144, 'Q4_K');
  const y = new Float32Array(n);
  let k = 0;
  for (let i = 0; i < nb; i++) {
    const o = i * 144;
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
  }
  return y;
}

/** Q6_K block (210 bytes): 128 bytes low nibbles, 64 bytes high 2-bit pairs, 16 int8 scales, f16 d. */
export function dequantizeQ6K(raw: Uint8Array, n: number): Float32Array {
  const nb = checkBlocks(raw, n, 210, 'Q6_K');
  const y = new Float32Array(n);
  for (let i = 0; i < nb; i++) {
    const o = i * 210;
    const d = f16At(raw, o + 208);
    const sc = (s: number): number => (raw[o + 192 + s]! << 24) >> 24;
    for (let half = 0; half < 2; half++) {
      const ql = o + half * 64;
      const qh = o + 128 + half * 32;
      const s0 = half * 8;
      const y0 = i * QK_K + half * 128;
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
  }
  return y;
}

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
