// GGUF <-> Hugging Face: tensor names (llama.cpp's `blk.N.attn_q` <-> HF's
// `model.layers.N.self_attn.q_proj`) and the llama/qwen2 hyper-parameters (GGUF metadata
// <-> config.json keys), so a GGUF file loads into the same architectures as an HF folder.
// Not for: reading tensor data (gguf.ts, gguf-weights.ts).
import type { MetadataValue } from '@huggingface/gguf';

/** GGUF architectures this mapping knows, and their HF class names. */
export const GGUF_ARCHITECTURES: Record<string, { modelType: string; hfClass: string; ropeInterleaved: boolean; attentionBias: boolean }> = {
  // llama.cpp's converter stores llama q/k rows in Meta's interleaved-RoPE order; qwen2 it leaves as is.
  llama: { modelType: 'llama', hfClass: 'LlamaForCausalLM', ropeInterleaved: true, attentionBias: false },
  qwen2: { modelType: 'qwen2', hfClass: 'Qwen2ForCausalLM', ropeInterleaved: false, attentionBias: true },
};

const TOP: [string, string][] = [
  ['token_embd.weight', 'model.embed_tokens.weight'],
  ['output_norm.weight', 'model.norm.weight'],
  ['output.weight', 'lm_head.weight'],
];

const BLOCK: [string, string][] = [
  ['attn_q', 'self_attn.q_proj'],
  ['attn_k', 'self_attn.k_proj'],
  ['attn_v', 'self_attn.v_proj'],
  ['attn_output', 'self_attn.o_proj'],
  ['ffn_gate', 'mlp.gate_proj'],
  ['ffn_up', 'mlp.up_proj'],
  ['ffn_down', 'mlp.down_proj'],
  ['attn_norm', 'input_layernorm'],
  ['ffn_norm', 'post_attention_layernorm'],
];

/** llama.cpp tensor name -> HF name; names with no HF equivalent (rope_freqs) come back unchanged. */
export function ggufToHfName(name: string): string {
  for (const [g, h] of TOP) if (name === g) return h;
  const m = /^blk\.(\d+)\.([a-z_]+)\.(weight|bias)$/.exec(name);
  if (m) {
    const hit = BLOCK.find(([g]) => g === m[2]);
    if (hit) return `model.layers.${m[1]}.${hit[1]}.${m[3]}`;
  }
  return name;
}

/** HF name -> llama.cpp tensor name (the inverse of `ggufToHfName`). */
export function hfToGgufName(name: string): string {
  for (const [g, h] of TOP) if (name === h) return g;
  const m = /^model\.layers\.(\d+)\.(.+)\.(weight|bias)$/.exec(name);
  if (m) {
    const hit = BLOCK.find(([, h]) => h === m[2]);
    if (hit) return `blk.${m[1]}.${hit[0]}.${m[3]}`;
  }
  return name;
}

const num = (v: MetadataValue | undefined): number | undefined =>
  typeof v === 'number' ? v : typeof v === 'bigint' ? Number(v) : undefined;

/** GGUF metadata -> an HF-style config.json object. `tensorNames` (GGUF names) say whether lm_head is tied. */
export function ggufToHfConfig(meta: Record<string, MetadataValue>, tensorNames: readonly string[], source = 'GGUF'): Record<string, unknown> {
  const arch = String(meta['general.architecture'] ?? '');
  const spec = GGUF_ARCHITECTURES[arch];
  if (!spec) throw new Error(`${source}: GGUF architecture '${arch}' is not supported (supported: ${Object.keys(GGUF_ARCHITECTURES).join(', ')})`);
  const k = (key: string): number | undefined => num(meta[`${arch}.${key}`]);
  const need = (key: string): number => {
    const v = k(key);
    if (v === undefined) throw new Error(`${source}: GGUF metadata has no '${arch}.${key}'`);
    return v;
  };
  const hidden = need('embedding_length');
  const heads = need('attention.head_count');
  const tokens = meta['tokenizer.ggml.tokens'];
  const cfg: Record<string, unknown> = {
    architectures: [spec.hfClass],
    model_type: spec.modelType,
    hidden_size: hidden,
    intermediate_size: need('feed_forward_length'),
    num_hidden_layers: need('block_count'),
    num_attention_heads: heads,
    num_key_value_heads: k('attention.head_count_kv') ?? heads,
    head_dim: k('attention.key_length') ?? hidden / heads,
    max_position_embeddings: k('context_length') ?? 2048,
    rms_norm_eps: k('attention.layer_norm_rms_epsilon') ?? 1e-6,
    rope_theta: k('rope.freq_base') ?? 10000,
    rope_parameters: { rope_type: 'default', rope_theta: k('rope.freq_base') ?? 10000 },
    hidden_act: 'silu',
    vocab_size: k('vocab_size') ?? (Array.isArray(tokens) ? tokens.length : undefined),
    tie_word_embeddings: !tensorNames.includes('output.weight'),
    attention_bias: spec.attentionBias,
  };
  const bos = num(meta['tokenizer.ggml.bos_token_id']);
  const eos = num(meta['tokenizer.ggml.eos_token_id']);
  const pad = num(meta['tokenizer.ggml.padding_token_id']);
  if (bos !== undefined) cfg.bos_token_id = bos;
  if (eos !== undefined) cfg.eos_token_id = eos;
  if (pad !== undefined) cfg.pad_token_id = pad;
  if (meta['general.name'] !== undefined) cfg._name_or_path = String(meta['general.name']);
  return cfg;
}

/** An HF llama/qwen2 config -> GGUF metadata (what llama.cpp's converter writes), for the GGUF writer. */
export function hfConfigToGgufMetadata(cfg: Record<string, unknown>): { arch: string; kv: Record<string, number | string | boolean> } {
  const arch = String(cfg.model_type);
  if (!GGUF_ARCHITECTURES[arch]) throw new Error(`GGUF conversion: model_type '${arch}' is not supported (supported: ${Object.keys(GGUF_ARCHITECTURES).join(', ')})`);
  const n = (key: string, d?: number): number => {
    const v = cfg[key] ?? d;
    if (typeof v !== 'number') throw new Error(`GGUF conversion: config has no number '${key}'`);
    return v;
  };
  const kv: Record<string, number | string | boolean> = {
    'general.architecture': arch,
    [`${arch}.embedding_length`]: n('hidden_size'),
    [`${arch}.feed_forward_length`]: n('intermediate_size'),
    [`${arch}.block_count`]: n('num_hidden_layers'),
    [`${arch}.attention.head_count`]: n('num_attention_heads'),
    [`${arch}.attention.head_count_kv`]: n('num_key_value_heads', n('num_attention_heads')),
    [`${arch}.context_length`]: n('max_position_embeddings', 2048),
    [`${arch}.attention.layer_norm_rms_epsilon`]: n('rms_norm_eps', 1e-6),
    [`${arch}.rope.freq_base`]: ropeTheta(cfg),
    [`${arch}.vocab_size`]: n('vocab_size'),
  };
  if (typeof cfg.head_dim === 'number') kv[`${arch}.attention.key_length`] = cfg.head_dim;
  return { arch, kv };
}

/** rope_theta from a config of transformers 4 (`rope_theta`) or 5 (`rope_parameters.rope_theta`). */
export function ropeTheta(cfg: Record<string, unknown>): number {
  const p = cfg.rope_parameters as { rope_theta?: unknown } | undefined;
  const v = cfg.rope_theta ?? p?.rope_theta ?? 10000;
  if (typeof v !== 'number') throw new Error(`config: rope_theta is ${JSON.stringify(v)}, not a number`);
  return v;
}
