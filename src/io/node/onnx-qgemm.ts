// GGML blocks repacked for ONNX Runtime's MatMulNBits (com.microsoft), which runs quantized
// products on MLAS's int8 kernels (AVX2 / AVX-512 VNNI): Q4_0 is MatMulNBits at 4 bits in blocks of
// 32 with the default zero point 8, Q8_0 at 8 bits with the default zero point 128, both exactly
// (the f16 block scale becomes an f32 scale, each code is moved, none is rounded).
// Layouts: Q4_0 [f16 d, 16 bytes: element j the low nibble of byte j, element j + 16 the high
// one]; Q8_0 [f16 d, 32 × i8]; MatMulNBits codes run along K, two 4-bit codes per byte, the even
// element in the low nibble.
// Not for: formats whose minimums or sub-block scales MatMulNBits cannot hold exactly (Q4_1,
// Q4_K, Q6_K, ...): they stay on the wasm kernels.
import { f16BitsToF32 } from '../../tensor/dtype.js';

/** The GGML formats that map exactly onto MatMulNBits. */
export const NBITS_TYPES: ReadonlySet<string> = new Set(['q4_0', 'q8_0']);

export interface NBitsWeight {
  bits: 4 | 8;
  /** [N, K/32, 32·bits/8] */
  codes: Uint8Array;
  /** [N, K/32] */
  scales: Float32Array;
}

/** W [N, K] in `type`'s blocks (row after row) as MatMulNBits' codes and scales. */
export function ggmlToNBits(type: string, raw: Uint8Array, N: number, K: number): NBitsWeight {
  if (!NBITS_TYPES.has(type)) throw new Error(`MatMulNBits: no exact mapping for ${type} (only ${[...NBITS_TYPES].join(', ')})`);
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
  return { bits: q4 ? 4 : 8, codes, scales };
}
