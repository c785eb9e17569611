// The layout changes between an HF tensor and llama.cpp's copy of it (see `Layout` in
// gguf-arch.ts), both ways. Row permutations (RoPE order, NeoX's fused qkv) work on raw bytes of
// whole rows, so they apply to any stored type, quantized rows included; transposes and the Gemma
// norm offset work on f32 values.
import type { Layout } from './gguf-arch.js';
import { permuteHalfToInterleaved, permuteInterleavedToHalf } from './rope-permute.js';

/** Whether `layout` is a row permutation (applied to raw bytes, weights and biases alike). */
export const isRowLayout = (layout: Layout | undefined): boolean => layout === 'rope-q' || layout === 'rope-k' || layout === 'neox-qkv';

/**
 * Rows of `bytes` (`rowBytes` each) moved from HF's order to llama.cpp's (`toGguf`) or back.
 * `config` is the HF config (for the head counts).
 */
export function permuteLayoutRows(bytes: Uint8Array, layout: Layout, config: Record<string, unknown>, rowBytes: number, toGguf: boolean): Uint8Array {
  const heads = Number(config.num_attention_heads);
  if (layout === 'rope-q' || layout === 'rope-k') {
    const h = layout === 'rope-q' ? heads : Number(config.num_key_value_heads ?? heads);
    return (toGguf ? permuteHalfToInterleaved : permuteInterleavedToHalf)(bytes, h, rowBytes);
  }
  if (layout === 'neox-qkv') return neoxQkvRows(bytes, heads, rowBytes, toGguf);
  throw new Error(`gguf layout: '${layout}' is not a row permutation`);
}

/**
 * NeoX's fused query_key_value rows [head, (q|k|v), d_head] <-> llama.cpp's [(q|k|v), head, d_head]
 * (conversion/gpt_neox.py reshapes to (n_head, 3, d_head, n_embd) and concatenates q, k, v).
 */
function neoxQkvRows(bytes: Uint8Array, heads: number, rowBytes: number, toGguf: boolean): Uint8Array {
  const rows = bytes.byteLength / rowBytes;
  const dh = rows / 3 / heads;
  if (!Number.isInteger(rows) || !Number.isInteger(dh)) throw new Error(`gguf layout: ${rows} qkv rows do not split into 3 x ${heads} heads`);
  const out = new Uint8Array(bytes.byteLength);
  for (let h = 0; h < heads; h++) {
    for (let t = 0; t < 3; t++) {
      const hf = (h * 3 + t) * dh * rowBytes;
      const gg = (t * heads + h) * dh * rowBytes;
      const [src, dst] = toGguf ? [hf, gg] : [gg, hf];
      out.set(bytes.subarray(src, src + dh * rowBytes), dst);
    }
  }
  return out;
}

/** f32 values of shape `shape` moved between HF's and llama.cpp's layout; returns the new shape. */
export function transformValues(values: Float32Array, shape: readonly number[], layout: Layout, toGguf: boolean): { values: Float32Array; shape: number[] } {
  if (layout === 'transpose') {
    const [r, c] = shape as [number, number];
    const out = new Float32Array(values.length);
    for (let i = 0; i < r; i++) for (let j = 0; j < c; j++) out[j * r + i] = values[i * c + j]!;
    return { values: out, shape: [c, r] };
  }
  if (layout === 'norm+1') {
    // llama.cpp's GemmaModel.modify_tensors stores w + 1 (transformers' GemmaRMSNorm scales by 1 + w).
    return { values: values.map((v) => (toGguf ? v + 1 : v - 1)), shape: [...shape] };
  }
  if (layout === 'row') {
    const n = values.length;
    return { values, shape: toGguf ? [n] : [1, n] };
  }
  throw new Error(`gguf layout: '${layout}' is not a value transform`);
}
