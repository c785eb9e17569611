// Row permutation of q/k projection weights between Meta's interleaved RoPE layout (each head's
// channels paired as (2i, 2i+1)) and Hugging Face's rotate-half layout (pairs (i, i + d/2)).
// llama2.c checkpoints and llama.cpp's GGUF files of llama models store Meta's layout; actlab's llama
// uses one RoPE mode (rotate-half), so their q/k rows are permuted on load, as transformers'
// convert_llama_weights_to_hf.py `permute` does:
//   w.view(n_heads, dim1 // n_heads // 2, 2, dim2).transpose(1, 2).reshape(dim1, dim2)
// Works on raw bytes of whole rows, so any dtype (and quantized rows, which are whole blocks) permutes.

/**
 * Meta (interleaved) rows -> HF (rotate-half) rows. `bytes` holds `rows` rows of `rowBytes` each;
 * `rows` = nHeads * headDim. Output row h*hd + j*hd/2 + i = input row h*hd + 2i + j.
 */
export function permuteInterleavedToHalf(bytes: Uint8Array, nHeads: number, rowBytes: number): Uint8Array {
  return permuteRows(bytes, nHeads, rowBytes, false);
}

/** The inverse: HF (rotate-half) rows -> Meta (interleaved) rows, as llama.cpp's converter does. */
export function permuteHalfToInterleaved(bytes: Uint8Array, nHeads: number, rowBytes: number): Uint8Array {
  return permuteRows(bytes, nHeads, rowBytes, true);
}

function permuteRows(bytes: Uint8Array, nHeads: number, rowBytes: number, inverse: boolean): Uint8Array {
  const rows = bytes.byteLength / rowBytes;
  const hd = rows / nHeads;
  if (!Number.isInteger(rows) || !Number.isInteger(hd) || hd % 2) {
    throw new Error(`rope permute: ${bytes.byteLength} bytes of rows of ${rowBytes} bytes do not split into ${nHeads} heads of an even size`);
  }
  const half = hd / 2;
  const out = new Uint8Array(bytes.byteLength);
  for (let h = 0; h < nHeads; h++) {
    for (let i = 0; i < half; i++) {
      for (let j = 0; j < 2; j++) {
        const meta = (h * hd + 2 * i + j) * rowBytes;
        const hf = (h * hd + j * half + i) * rowBytes;
        const [src, dst] = inverse ? [hf, meta] : [meta, hf];
        out.set(bytes.subarray(src, src + rowBytes), dst);
      }
    }
  }
  return out;
}
