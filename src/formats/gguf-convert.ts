// HF weights -> a GGUF file, as llama.cpp's convert_hf_to_gguf.py does for llama/qwen2: names and
// metadata from gguf-hf.ts, llama q/k rows permuted to interleaved RoPE order, 2-D weights encoded
// in the chosen type (1-D norms stay F32; rows that are not whole blocks fall back to F32, as
// llama.cpp does). For tests and small conversions: each tensor is read, encoded, and kept until
// the file is written.
import type { Backend } from '../backends/backend.js';
import type { FileStore } from '../io/file-store.js';
import { GGML_BLOCK, type GgmlTypeName } from './gguf-quants.js';
import { GGUF_ARCHITECTURES, hfConfigToGgufMetadata, hfToGgufName } from './gguf-hf.js';
import { encodeGgml, u32, f32, writeGguf, type GgufWriteTensor, type GgufWriteValue } from './gguf-write.js';
import { permuteHalfToInterleaved } from './rope-permute.js';
import type { WeightSource } from './weight-source.js';

export interface ConvertOptions {
  /** Type of 2-D weights: F32, F16, BF16, Q8_0 or Q4_0. */
  type: GgmlTypeName;
  /** Extra metadata (tokenizer.ggml.*, general.name, ...). */
  metadata?: Record<string, GgufWriteValue>;
}

export async function convertToGguf(
  store: FileStore, path: string, weights: WeightSource, config: Record<string, unknown>, backend: Backend, opts: ConvertOptions,
): Promise<void> {
  const { arch, kv } = hfConfigToGgufMetadata(config);
  const meta: Record<string, GgufWriteValue> = {};
  for (const [k, v] of Object.entries(kv)) {
    meta[k] = typeof v !== 'number' ? v : Number.isInteger(v) && !k.endsWith('epsilon') && !k.endsWith('freq_base') ? u32(v) : f32(v);
  }
  Object.assign(meta, opts.metadata ?? {});
  const heads = config.num_attention_heads as number;
  const kvHeads = (config.num_key_value_heads as number | undefined) ?? heads;
  const tensors: GgufWriteTensor[] = [];
  for (const name of weights.names()) {
    const x = await weights.load(name, backend, { dtype: 'f32' });
    let values = (await x.data()) as Float32Array;
    const shape = [...x.shape];
    x.dispose();
    const rowLen = shape[shape.length - 1]!;
    const type: GgmlTypeName = shape.length >= 2 && rowLen % GGML_BLOCK[opts.type].values === 0 ? opts.type : 'F32';
    if (GGUF_ARCHITECTURES[arch]!.ropeInterleaved) {
      const h = /\.self_attn\.q_proj\./.test(name) ? heads : /\.self_attn\.k_proj\./.test(name) ? kvHeads : 0;
      if (h) values = new Float32Array(permuteHalfToInterleaved(new Uint8Array(values.buffer), h, (values.length / shape[0]!) * 4).buffer);
    }
    tensors.push({ name: hfToGgufName(name), type, shape, data: encodeGgml(values, type) });
  }
  await writeGguf(store, path, meta, tensors);
}
