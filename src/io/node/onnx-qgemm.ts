// GGML blocks repacked for ONNX Runtime's MatMulNBits (com.microsoft), which runs quantized
// products on MLAS's int8 kernels (AVX2 / AVX-512 VNNI): Q4_0 is MatMulNBits at 4 bits in blocks of
// 32 with the default zero point 8, Q8_0 at 8 bits with the default zero point 128, Q6_K at 8 bits
// in blocks of 16 (its sub-blocks) with codes q + 96 (so that code − 128 = q − 32) and the scale
// d·sc (an f16 times an int8: exact in f32), all exactly (each scale is an f32 equal to ggml's,
// each code is moved, none is rounded).
// Layouts: Q4_0 [f16 d, 16 bytes: element j the low nibble of byte j, element j + 16 the high
// one]; Q8_0 [f16 d, 32 × i8]; Q6_K [128 bytes ql, 64 bytes qh, 16 × i8 sc, f16 d] per 256 values
// (ggml-quants.c dequantize_row_q6_K); MatMulNBits codes run along K, two 4-bit codes per byte,
// the even element in the low nibble.
// Q4_K and Q5_K (value d·sc·q − dmin·m per sub-block of 32) are the product of codes and scales
// plus a per-block offset: MatMulNBits on q − z with the scale d·sc (Q4_K at 4 bits, z = 8; Q5_K at
// 8 bits, codes q + 112 so that z = 16; d·sc exact in f32) plus `offsets` o = z·d·sc − dmin·m
// times each block's sum of x (a [M, K/32] · [K/32, N] product, 1/32 of the work, done in f32 by
// the model: onnx-gemm.ts). The weight is then (q − z)·d·sc + o, ggml's value up to the rounding
// of o to f32 (a float zero point would say the same exactly, but it takes MatMulNBits off MLAS's
// int8 path: it dequantizes and runs an f32 GEMM).
// Not for: Q4_1, Q5_0, Q5_1 (not kept for native products), non-uniform levels (IQ4_NL, actlab's
// own): they stay on the wasm kernels.
import { scaleMinK4 } from '../../tensor/quantized.js';
import { f16BitsToF32 } from '../../tensor/dtype.js';

/** The GGML formats that map exactly onto MatMulNBits. */
export const NBITS_TYPES: ReadonlySet<string> = new Set(['q4_0', 'q8_0', 'q6_k', 'q4_k', 'q5_k']);

export interface NBitsWeight {
  bits: 4 | 8;
  /** Values per scale (MatMulNBits' block_size). */
  block: 16 | 32;
  /** [N, K/block, block·bits/8] */
  codes: Uint8Array;
  /** [N, K/block] */
  scales: Float32Array;
  /** [K/block, N]: added to y as Σ over the block's x times this (Q4_K, Q5_K's minimums); absent: none. */
  offsets?: Float32Array;
}

/** W [N, K] in `type`'s blocks (row after row) as MatMulNBits' codes and scales. */
export function ggmlToNBits(type: string, raw: Uint8Array, N: number, K: number): NBitsWeight {
  if (!NBITS_TYPES.has(type)) throw new Error(`MatMulNBits: no exact mapping for ${type} (only ${[...NBITS_TYPES].join(', ')})`);
  if (type === 'q6_k') return q6kToNBits(raw, N, K);
  if (type === 'q4_k' || type === 'q5_k') return k45ToNBits(type, raw, N, K);
  if (K % 32 !== 0) throw new Error(`MatMulNBits: K = ${K} is not a multiple of the block size 32 (${type} [${N}, ${K}])`);
  const blocks = (N * K) / 32;
  const q4 = type === 'q4_0';
  const bb = q4 ? 18 : 34;
  if (raw.length !== blocks * bb) throw new Error(`MatMulNBits: ${type} [${N}, ${K}] needs ${blocks * bb} bytes, got ${raw.length}`);
  const cb = q4 ? 16 : 32;
  const codes = new Uint8Array(blocks * cb);
  const scales = new Float32Array(blocks);
  for (let b = 0; b < blocks; b++) {
    const o = b * bb;
    scales[b] = f16BitsToF32(raw[o]! | (raw[o + 1]! << 8));
    const c = b * cb;
    if (q4) {
      // elements 2i, 2i + 1: low nibbles of bytes 2i, 2i + 1 (i < 8), high nibbles of 2i − 16, 2i − 15
      for (let i = 0; i < 8; i++) codes[c + i] = (raw[o + 2 + 2 * i]! & 15) | ((raw[o + 3 + 2 * i]! & 15) << 4);
      for (let i = 8; i < 16; i++) codes[c + i] = (raw[o + 2 + 2 * i - 16]! >> 4) | (raw[o + 3 + 2 * i - 16]! & 0xf0);
    } else {
      for (let i = 0; i < 32; i++) codes[c + i] = raw[o + 2 + i]! ^ 0x80; // i8 q -> u8 q + 128
    }
  }
  return { bits: q4 ? 4 : 8, block: 32, codes, scales };
}

/** Q6_K super-blocks (256 values, 16 sub-blocks of 16) as 8-bit codes in blocks of 16. */
function q6kToNBits(raw: Uint8Array, N: number, K: number): NBitsWeight {
  if (K % 256 !== 0) throw new Error(`MatMulNBits: K = ${K} is not a multiple of the block size 256 (q6_k [${N}, ${K}])`);
  const blocks = (N * K) / 256;
  if (raw.length !== blocks * 210) throw new Error(`MatMulNBits: q6_k [${N}, ${K}] needs ${blocks * 210} bytes, got ${raw.length}`);
  const codes = new Uint8Array(N * K);
  const scales = new Float32Array((N * K) / 16);
  const sc = new Int8Array(raw.buffer, raw.byteOffset, raw.byteLength);
  for (let b = 0; b < blocks; b++) {
    const o = b * 210;
    const d = f16BitsToF32(raw[o + 208]! | (raw[o + 209]! << 8));
    for (let j = 0; j < 16; j++) scales[b * 16 + j] = Math.fround(d * sc[o + 192 + j]!);
    const c = b * 256;
    // two halves of 128 values: ql 64 bytes, qh 32 bytes each; value l + 32·i takes nibble and bit pair i
    for (let h = 0; h < 2; h++) {
      const ql = o + 64 * h;
      const qh = o + 128 + 32 * h;
      const y = c + 128 * h;
      for (let l = 0; l < 32; l++) {
        const hi = raw[qh + l]!;
        const lo = raw[ql + l]!;
        const lo2 = raw[ql + l + 32]!;
        codes[y + l] = ((lo & 15) | ((hi & 3) << 4)) + 96;
        codes[y + l + 32] = ((lo2 & 15) | (((hi >> 2) & 3) << 4)) + 96;
        codes[y + l + 64] = ((lo >> 4) | (((hi >> 4) & 3) << 4)) + 96;
        codes[y + l + 96] = ((lo2 >> 4) | (((hi >> 6) & 3) << 4)) + 96;
      }
    }
  }
  return { bits: 8, block: 16, codes, scales };
}

/** Q4_K / Q5_K super-blocks (256 values: 8 sub-blocks of 32 with 6-bit scale and min) as codes, scales and offsets. */
function k45ToNBits(type: 'q4_k' | 'q5_k', raw: Uint8Array, N: number, K: number): NBitsWeight {
  if (K % 256 !== 0) throw new Error(`MatMulNBits: K = ${K} is not a multiple of the block size 256 (${type} [${N}, ${K}])`);
  const q5 = type === 'q5_k';
  const bb = q5 ? 176 : 144;
  const blocks = (N * K) / 256;
  if (raw.length !== blocks * bb) throw new Error(`MatMulNBits: ${type} [${N}, ${K}] needs ${blocks * bb} bytes, got ${raw.length}`);
  const nb = K / 32;
  const codes = new Uint8Array(q5 ? N * K : (N * K) / 2);
  const scales = new Float32Array(N * nb);
  const offsets = new Float32Array(nb * N);
  const z = q5 ? 16 : 8;
  const level = new Uint8Array(256);
  for (let b = 0; b < blocks; b++) {
    const o = b * bb;
    const n = Math.floor((b * 256) / K);
    const sub0 = ((b * 256) % K) / 32; // first sub-block of this super-block within row n
    const d = f16BitsToF32(raw[o]! | (raw[o + 1]! << 8));
    const dmin = f16BitsToF32(raw[o + 2]! | (raw[o + 3]! << 8));
    for (let j = 0; j < 8; j++) {
      const [sc, m] = scaleMinK4(raw.subarray(o + 4, o + 16), j);
      const d1 = Math.fround(d * sc);
      scales[n * nb + sub0 + j] = d1;
      offsets[(sub0 + j) * N + n] = Math.fround(z * d1 - Math.fround(dmin * m));
    }
    // levels in value order: group g of 64 takes the low nibbles of 32 bytes, then their high nibbles
    const ql = o + (q5 ? 48 : 16);
    for (let g = 0; g < 4; g++) {
      for (let l = 0; l < 32; l++) {
        const byte = raw[ql + 32 * g + l]!;
        level[64 * g + l] = byte & 15;
        level[64 * g + 32 + l] = byte >> 4;
        if (q5) {
          const hi = raw[o + 16 + l]!;
          level[64 * g + l]! += ((hi >> (2 * g)) & 1) << 4;
          level[64 * g + 32 + l]! += ((hi >> (2 * g + 1)) & 1) << 4;
        }
      }
    }
    if (q5) {
      for (let e = 0; e < 256; e++) codes[b * 256 + e] = level[e]! + 112; // code − 128 = q − 16
    } else {
      for (let e = 0; e < 128; e++) codes[b * 128 + e] = level[2 * e]! | (level[2 * e + 1]! << 4);
    }
  }
  return { bits: q5 ? 8 : 4, block: 32, codes, scales, offsets };
}
