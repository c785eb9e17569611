// GGUF <-> HF for the LayerNorm decoders with a fused qkv, as llama.cpp's converter writes them:
// - `gpt2` (conversion/gpt2.py): Conv1D weights c_attn / c_proj / c_fc stored transposed
//   ([out, in], as every other linear), the causal-mask buffers attn.bias / attn.masked_bias dropped,
//   the head tied to token_embd (an `output` tensor, written by older converters, is used when there);
//   feed_forward_length is 4 * n_embd.
// - `gptneox` (conversion/gpt_neox.py): query_key_value rows reordered from NeoX's per-head
//   [head, (q|k|v), d_head] to [(q|k|v), head, d_head]; `use_parallel_residual`; partial rotary as
//   `rope.dimension_count` = rotary_pct * head_dim.
import { f32, u32 } from './gguf-write.js';
import { shapeOf, type GgufArchSpec } from './gguf-arch.js';

export const GPT2: GgufArchSpec = {
  modelTypes: ['gpt2'],
  blockPrefix: 'transformer.h.{i}.',
  top: [
    { gguf: 'token_embd', hf: 'transformer.wte', required: true },
    { gguf: 'position_embd', hf: 'transformer.wpe', required: true },
    { gguf: 'output_norm', hf: 'transformer.ln_f', required: true },
    { gguf: 'output', hf: 'lm_head' },
  ],
  block: [
    { gguf: 'attn_norm', hf: 'ln_1', required: true },
    { gguf: 'attn_qkv', hf: 'attn.c_attn', layout: 'transpose', required: true },
    { gguf: 'attn_output', hf: 'attn.c_proj', layout: 'transpose', required: true },
    { gguf: 'ffn_norm', hf: 'ln_2', required: true },
    { gguf: 'ffn_up', hf: 'mlp.c_fc', layout: 'transpose', required: true },
    { gguf: 'ffn_down', hf: 'mlp.c_proj', layout: 'transpose', required: true },
  ],
  toConfig(m, t) {
    const d = m.need('embedding_length');
    return {
      architectures: ['GPT2LMHeadModel'], model_type: 'gpt2',
      n_embd: d, n_head: m.need('attention.head_count'), n_layer: m.need('block_count'),
      n_positions: m.num('context_length') ?? shapeOf(t, 'position_embd.weight', m.source)[0],
      n_inner: m.num('feed_forward_length') ?? 4 * d,
      layer_norm_epsilon: m.num('attention.layer_norm_epsilon') ?? 1e-5,
      vocab_size: m.num('vocab_size') ?? shapeOf(t, 'token_embd.weight', m.source)[0],
      activation_function: 'gelu_new', tie_word_embeddings: true,
    };
  },
  toMetadata(c) {
    const d = c.num(['n_embd', 'hidden_size']);
    return {
      block_count: u32(c.num(['n_layer', 'num_hidden_layers'])),
      context_length: u32(c.num(['n_ctx', 'n_positions', 'max_position_embeddings'])),
      embedding_length: u32(d),
      feed_forward_length: u32(c.opt('n_inner') ?? 4 * d),
      'attention.head_count': u32(c.num(['n_head', 'num_attention_heads'])),
      'attention.layer_norm_epsilon': f32(c.num('layer_norm_epsilon', 1e-5)),
    };
  },
  skip: (name) => /\.attn\.(masked_)?bias$/.test(name),
};

export const GPTNEOX: GgufArchSpec = {
  modelTypes: ['gpt_neox'],
  blockPrefix: 'gpt_neox.layers.{i}.',
  top: [
    { gguf: 'token_embd', hf: 'gpt_neox.embed_in', required: true },
    { gguf: 'output_norm', hf: 'gpt_neox.final_layer_norm', required: true },
    { gguf: 'output', hf: 'embed_out' },
  ],
  block: [
    { gguf: 'attn_norm', hf: 'input_layernorm', required: true },
    { gguf: 'attn_qkv', hf: 'attention.query_key_value', layout: 'neox-qkv', required: true },
    { gguf: 'attn_output', hf: 'attention.dense', required: true },
    { gguf: 'ffn_norm', hf: 'post_attention_layernorm', required: true },
    { gguf: 'ffn_up', hf: 'mlp.dense_h_to_4h', required: true },
    { gguf: 'ffn_down', hf: 'mlp.dense_4h_to_h', required: true },
  ],
  toConfig(m, t) {
    const d = m.need('embedding_length');
    const heads = m.need('attention.head_count');
    const theta = m.num('rope.freq_base') ?? 10000;
    const partial = (m.num('rope.dimension_count') ?? (d / heads) * 0.25) / (d / heads);
    return {
      architectures: ['GPTNeoXForCausalLM'], model_type: 'gpt_neox',
      hidden_size: d, num_attention_heads: heads, num_hidden_layers: m.need('block_count'),
      intermediate_size: m.need('feed_forward_length'), max_position_embeddings: m.num('context_length') ?? 2048,
      rotary_pct: partial, rotary_emb_base: theta,
      rope_parameters: { rope_type: 'default', rope_theta: theta, partial_rotary_factor: partial },
      use_parallel_residual: m.bool('use_parallel_residual') ?? true,
      layer_norm_eps: m.num('attention.layer_norm_epsilon') ?? 1e-5,
      hidden_act: 'gelu', vocab_size: m.num('vocab_size') ?? shapeOf(t, 'token_embd.weight', m.source)[0],
      tie_word_embeddings: !t.has('output.weight'),
    };
  },
  toMetadata(c) {
    const d = c.num('hidden_size');
    const heads = c.num('num_attention_heads');
    const partial = c.num(['rotary_pct', 'partial_rotary_factor', 'rope.partial_rotary_factor'], 0.25);
    return {
      context_length: u32(c.num('max_position_embeddings')),
      embedding_length: u32(d),
      block_count: u32(c.num('num_hidden_layers')),
      feed_forward_length: u32(c.num('intermediate_size')),
      'rope.dimension_count': u32(Math.floor(partial * Math.floor(d / heads))),
      'rope.freq_base': f32(c.num(['rotary_emb_base', 'rope_theta', 'rope.rope_theta'], 10000)),
      'attention.head_count': u32(heads),
      use_parallel_residual: c.get('use_parallel_residual') !== false,
      'attention.layer_norm_epsilon': f32(c.num('layer_norm_eps', 1e-5)),
      vocab_size: u32(c.num('vocab_size')),
    };
  },
  skip: (name) => /\.attention\.(masked_bias|bias|rotary_emb\.inv_freq)$/.test(name),
};
