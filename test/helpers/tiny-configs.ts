// Tiny configs of every architecture, for tests on random weights.

const base = { vocab_size: 61, max_position_embeddings: 64 };
export const TINY: Record<string, Record<string, unknown>> = {
  gpt2: { model_type: 'gpt2', n_embd: 24, n_head: 3, n_layer: 2, n_positions: 64, vocab_size: 61 },
  llama: { ...base, model_type: 'llama', hidden_size: 32, num_attention_heads: 4, num_key_value_heads: 2, num_hidden_layers: 2, intermediate_size: 40, rope_theta: 10000 },
  'llama (llama3 rope, transformers 5 names)': { ...base, model_type: 'llama', hidden_size: 32, num_attention_heads: 4, num_key_value_heads: 1, num_hidden_layers: 2, intermediate_size: 40, rope_parameters: { rope_type: 'llama3', rope_theta: 500000, factor: 8, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 16 } },
  qwen2: { ...base, model_type: 'qwen2', hidden_size: 32, num_attention_heads: 4, num_key_value_heads: 2, num_hidden_layers: 2, intermediate_size: 40, rope_scaling: { type: 'yarn', factor: 2, original_max_position_embeddings: 32 } },
  gpt_neox: { ...base, model_type: 'gpt_neox', hidden_size: 32, num_attention_heads: 4, num_hidden_layers: 2, intermediate_size: 64, rotary_pct: 0.5, rotary_emb_base: 10000, hidden_act: 'gelu' },
  'gpt_neox (sequential)': { ...base, model_type: 'gpt_neox', hidden_size: 32, num_attention_heads: 4, num_hidden_layers: 2, intermediate_size: 64, rotary_pct: 0.25, use_parallel_residual: false },
  gemma: { ...base, model_type: 'gemma', hidden_size: 32, num_attention_heads: 2, num_key_value_heads: 1, head_dim: 24, num_hidden_layers: 2, intermediate_size: 40 },
  mixtral: { ...base, model_type: 'mixtral', hidden_size: 32, num_attention_heads: 4, num_key_value_heads: 2, num_hidden_layers: 2, intermediate_size: 24, num_local_experts: 4, num_experts_per_tok: 2 },
  qwen2_moe: { ...base, model_type: 'qwen2_moe', hidden_size: 32, num_attention_heads: 4, num_key_value_heads: 2, num_hidden_layers: 2, intermediate_size: 48, moe_intermediate_size: 16, shared_expert_intermediate_size: 24, num_experts: 4, num_experts_per_tok: 2, norm_topk_prob: false },
  'actlab_toy (attention-only)': { model_type: 'actlab_toy', d_model: 32, n_heads: 4, n_layers: 2, d_mlp: 0, d_vocab: 61, n_ctx: 64 },
  'actlab_toy (MLP, LayerNorm)': { model_type: 'actlab_toy', d_model: 32, n_heads: 2, d_head: 8, n_layers: 2, d_mlp: 64, d_vocab: 61, n_ctx: 64, normalization: 'LN', act_fn: 'gelu' },
};
