// llama2.c checkpoints (https://github.com/karpathy/llama2.c, the legacy "v0" export): a header of
// 7 int32 (dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size — negative when the classifier
// is not shared with the embedding — and seq_len), then f32 weights in run.c's order. Mapped to
// HF llama names and an HF-style llama config; q/k rows are permuted from Meta's interleaved RoPE
// layout to HF's rotate-half layout. Hand-written: no library reads this format.
// The tokenizer .bin is src/tokenizer/llama2c.ts.
import type { Backend } from '../tensor/backend.js';
import type { ByteSource } from '../io/byte-source.js';
import type { Tensor } from '../tensor/tensor.js';
import { permuteInterleavedToHalf } from './rope-permute.js';
import { bytesToTensor, missingTensor, type LoadOptions, type WeightInfo, type WeightSource } from './weight-source.js';

export interface Llama2cHeader {
  dim: number;
  hiddenDim: number;
  nLayers: number;
  nHeads: number;
  nKvHeads: number;
  vocabSize: number;
  seqLen: number;
  sharedClassifier: boolean;
}

interface Entry {
  offset: number;
  shape: number[];
  /** Heads to un-interleave (q and k only). */
  ropeHeads?: number;
}

/** Reads and checks the 28-byte header; null when the bytes do not look like a llama2.c checkpoint. */
export function parseLlama2cHeader(b: Uint8Array): Llama2cHeader | null {
  if (b.byteLength < 28) return null;
  const dv = new DataView(b.buffer, b.byteOffset, 28);
  const v = Array.from({ length: 7 }, (_, i) => dv.getInt32(i * 4, true));
  const [dim, hiddenDim, nLayers, nHeads, nKvHeads, vocab, seqLen] = v as [number, number, number, number, number, number, number];
  const ok = dim > 0 && hiddenDim > 0 && nLayers > 0 && nHeads > 0 && nKvHeads > 0 && vocab !== 0 && seqLen > 0
    && dim % nHeads === 0 && nHeads % nKvHeads === 0 && (dim / nHeads) % 2 === 0 && dim < 1 << 16 && nLayers < 1024;
  if (!ok) return null;
  return { dim, hiddenDim, nLayers, nHeads, nKvHeads, vocabSize: Math.abs(vocab), seqLen, sharedClassifier: vocab > 0 };
}

/** Byte offset and shape of every tensor, under HF llama names; and the file size this implies. */
function layout(h: Llama2cHeader): { entries: Map<string, Entry>; end: number } {
  const entries = new Map<string, Entry>();
  const hd = h.dim / h.nHeads;
  const kvDim = h.nKvHeads * hd;
  let off = 28;
  const take = (n: number): number => { const o = off; off += n * 4; return o; };
  const perLayer = (suffix: string, shape: number[], ropeHeads?: number): void => {
    const n = shape.reduce((a, b) => a * b, 1);
    for (let l = 0; l < h.nLayers; l++) entries.set(`model.layers.${l}.${suffix}`, { offset: take(n), shape, ropeHeads });
  };
  entries.set('model.embed_tokens.weight', { offset: take(h.vocabSize * h.dim), shape: [h.vocabSize, h.dim] });
  perLayer('input_layernorm.weight', [h.dim]);
  perLayer('self_attn.q_proj.weight', [h.dim, h.dim], h.nHeads);
  perLayer('self_attn.k_proj.weight', [kvDim, h.dim], h.nKvHeads);
  perLayer('self_attn.v_proj.weight', [kvDim, h.dim]);
  perLayer('self_attn.o_proj.weight', [h.dim, h.dim]);
  perLayer('post_attention_layernorm.weight', [h.dim]);
  perLayer('mlp.gate_proj.weight', [h.hiddenDim, h.dim]); // w1
  perLayer('mlp.down_proj.weight', [h.dim, h.hiddenDim]); // w2
  perLayer('mlp.up_proj.weight', [h.hiddenDim, h.dim]); // w3
  entries.set('model.norm.weight', { offset: take(h.dim), shape: [h.dim] });
  take(h.seqLen * hd); // freq_cis_real and freq_cis_imag (seq_len * hd / 2 each): unused, RoPE is computed
  if (!h.sharedClassifier) entries.set('lm_head.weight', { offset: take(h.vocabSize * h.dim), shape: [h.vocabSize, h.dim] });
  return { entries, end: off };
}

/** The HF config.json a transformers conversion of this checkpoint would have. */
export function llama2cConfig(h: Llama2cHeader): Record<string, unknown> {
  return {
    architectures: ['LlamaForCausalLM'],
    model_type: 'llama',
    hidden_size: h.dim,
    intermediate_size: h.hiddenDim,
    num_hidden_layers: h.nLayers,
    num_attention_heads: h.nHeads,
    num_key_value_heads: h.nKvHeads,
    head_dim: h.dim / h.nHeads,
    vocab_size: h.vocabSize,
    max_position_embeddings: h.seqLen,
    hidden_act: 'silu',
    rms_norm_eps: 1e-5,
    rope_theta: 10000,
    rope_parameters: { rope_type: 'default', rope_theta: 10000 },
    tie_word_embeddings: h.sharedClassifier,
    attention_bias: false,
    mlp_bias: false,
    bos_token_id: 1,
    eos_token_id: 2,
    torch_dtype: 'float32',
  };
}

export class Llama2cCheckpoint implements WeightSource {
  private constructor(
    readonly source: ByteSource,
    readonly header: Llama2cHeader,
    private entries: Map<string, Entry>,
  ) {}

  static async open(source: ByteSource): Promise<Llama2cCheckpoint> {
    const h = parseLlama2cHeader(await source.read(0, Math.min(28, source.size)));
    if (!h) throw new Error(`${source.name}: not a llama2.c checkpoint (the 7-int32 header is not a plausible model shape)`);
    const { entries, end } = layout(h);
    if (end !== source.size) {
      const shared = { ...h, sharedClassifier: !h.sharedClassifier };
      const hint = layout(shared).end === source.size ? ' (the sign of vocab_size, which says whether the classifier is shared, looks wrong)' : '';
      throw new Error(`${source.name}: llama2.c header (dim ${h.dim}, ${h.nLayers} layers, vocab ${h.vocabSize}) implies ${end} bytes, but the file has ${source.size}${hint}`);
    }
    return new Llama2cCheckpoint(source, h, entries);
  }

  config(): Record<string, unknown> {
    return llama2cConfig(this.header);
  }

  names(): string[] {
    return [...this.entries.keys()];
  }

  has(name: string): boolean {
    return this.entries.has(name);
  }

  private entry(name: string): Entry {
    return this.entries.get(name) ?? missingTensor(this.source.name, name, this.names());
  }

  info(name: string): WeightInfo {
    const e = this.entry(name);
    const n = e.shape.reduce((a, b) => a * b, 1);
    return { dtype: 'f32', storedAs: 'F32', shape: [...e.shape], bytes: n * 4 };
  }

  async load(name: string, backend: Backend, opts: LoadOptions = {}): Promise<Tensor> {
    const e = this.entry(name);
    const i = this.info(name);
    let bytes = await this.source.read(e.offset, i.bytes);
    if (e.ropeHeads) bytes = permuteInterleavedToHalf(bytes, e.ropeHeads, e.shape[1]! * 4);
    return bytesToTensor(bytes, i.shape, 'f32', backend, opts.dtype);
  }

  totalBytes(): number {
    return this.names().reduce((s, n) => s + this.info(n).bytes, 0);
  }

  async close(): Promise<void> {
    await this.source.close();
  }
}
