// GGUF <-> HF for the rotary RMSNorm decoders, as llama.cpp's converter writes them
// (conversion/llama.py, qwen.py, gemma.py; gguf-py/gguf/tensor_mapping.py):
// - `llama`: Llama 2/3, Mistral, Mixtral. q/k rows permuted to interleaved RoPE order
//   (LlamaModel.permute); Mixtral's experts stacked per kind into ffn_{gate,up,down}_exps [E, out, in]
//   with `llama.expert_count` / `expert_used_count`; Llama 3 rope scaling as a `rope_freqs` tensor.
// - `qwen2`: q/k/v bias, rotate-half RoPE kept as is.
// - `qwen2moe`: qwen2 attention, stacked experts, shared expert ffn_*_shexp and its 1-D gate
//   ffn_gate_inp_shexp; llama.cpp's qwen2moe graph does not renormalise the top-k weights.
// - `gemma`: RMSNorm weights stored as w + 1 (GemmaModel.modify_tensors), tied head (lm_head dropped).
import { f32, u32, type GgufWriteValue } from './gguf-write.js';
import { GgufMeta, HfConfig, shapeOf, type GgufArchSpec, type TensorRule, type TensorShapes } from './gguf-arch.js';

const blockPrefix = 'model.layers.{i}.';

const top = (normLayout?: 'norm+1'): TensorRule[] => [
  { gguf: 'token_embd', hf: 'model.embed_tokens', required: true },
  { gguf: 'output_norm', hf: 'model.norm', layout: normLayout, required: true },
  { gguf: 'output', hf: 'lm_head' },
];

const attention = (rope: boolean, normLayout?: 'norm+1'): TensorRule[] => [
  { gguf: 'attn_norm', hf: 'input_layernorm', layout: normLayout, required: true },
  { gguf: 'ffn_norm', hf: 'post_attention_layernorm', layout: normLayout, required: true },
  { gguf: 'attn_q', hf: 'self_attn.q_proj', layout: rope ? 'rope-q' : undefined, required: true },
  { gguf: 'attn_k', hf: 'self_attn.k_proj', layout: rope ? 'rope-k' : undefined, required: true },
  { gguf: 'attn_v', hf: 'self_attn.v_proj', required: true },
  { gguf: 'attn_output', hf: 'self_attn.o_proj', required: true },
];

const denseMlp: TensorRule[] = [
  { gguf: 'ffn_gate', hf: 'mlp.gate_proj' },
  { gguf: 'ffn_up', hf: 'mlp.up_proj' },
  { gguf: 'ffn_down', hf: 'mlp.down_proj' },
];

const mixtralExperts: TensorRule[] = [
  { gguf: 'ffn_gate_inp', hf: 'block_sparse_moe.gate' },
  { gguf: 'ffn_gate_exps', hf: 'block_sparse_moe.experts.{e}.w1' },
  { gguf: 'ffn_down_exps', hf: 'block_sparse_moe.experts.{e}.w2' },
  { gguf: 'ffn_up_exps', hf: 'block_sparse_moe.experts.{e}.w3' },
];

const qwenExperts: TensorRule[] = [
  { gguf: 'ffn_gate_inp', hf: 'mlp.gate' },
  { gguf: 'ffn_gate_exps', hf: 'mlp.experts.{e}.gate_proj' },
  { gguf: 'ffn_up_exps', hf: 'mlp.experts.{e}.up_proj' },
  { gguf: 'ffn_down_exps', hf: 'mlp.experts.{e}.down_proj' },
  { gguf: 'ffn_gate_shexp', hf: 'mlp.shared_expert.gate_proj' },
  { gguf: 'ffn_up_shexp', hf: 'mlp.shared_expert.up_proj' },
  { gguf: 'ffn_down_shexp', hf: 'mlp.shared_expert.down_proj' },
  { gguf: 'ffn_gate_inp_shexp', hf: 'mlp.shared_expert_gate', layout: 'row' },
];

/** The config fields every rotary decoder shares, from `<arch>.*` metadata. */
function rotaryConfig(m: GgufMeta, t: TensorShapes, modelType: string, hfClass: string): Record<string, unknown> {
  const hidden = m.need('embedding_length');
  const heads = m.need('attention.head_count');
  const headDim = m.num('attention.key_length') ?? hidden / heads;
  const theta = m.num('rope.freq_base') ?? 10000;
  const rope: Record<string, unknown> = { rope_type: 'default', rope_theta: theta };
  const scaling = m.str('rope.scaling.type');
  if (scaling === 'linear' || scaling === 'yarn') {
    Object.assign(rope, { rope_type: scaling, factor: m.need('rope.scaling.factor') });
    const orig = m.num('rope.scaling.original_context_length');
    if (orig !== undefined) rope.original_max_position_embeddings = orig;
  } else if (scaling && scaling !== 'none') {
    throw new Error(`${m.source}: GGUF rope scaling '${scaling}' is not supported (have linear, yarn, and llama3 as rope_freqs)`);
  }
  const ropeDim = m.num('rope.dimension_count');
  if (ropeDim !== undefined && ropeDim !== headDim) rope.partial_rotary_factor = ropeDim / headDim;
  return {
    architectures: [hfClass], model_type: modelType,
    hidden_size: hidden, num_hidden_layers: m.need('block_count'), num_attention_heads: heads,
    num_key_value_heads: m.num('attention.head_count_kv') ?? heads, head_dim: headDim,
    intermediate_size: m.need('feed_forward_length'),
    max_position_embeddings: m.num('context_length') ?? 2048,
    rms_norm_eps: m.num('attention.layer_norm_rms_epsilon') ?? 1e-6,
    rope_theta: theta, rope_parameters: rope, hidden_act: 'silu',
    vocab_size: m.num('vocab_size') ?? shapeOf(t, 'token_embd.weight', m.source)[0],
    tie_word_embeddings: !t.has('output.weight'),
  };
}

/** The metadata every rotary decoder shares (TextModel.set_gguf_parameters). */
function rotaryMetadata(c: HfConfig): Record<string, GgufWriteValue> {
  const heads = c.num(['num_attention_heads']);
  const kv: Record<string, GgufWriteValue> = {
    context_length: u32(c.num('max_position_embeddings', 2048)),
    embedding_length: u32(c.num('hidden_size')),
    block_count: u32(c.num('num_hidden_layers')),
    feed_forward_length: u32(c.num('intermediate_size')),
    'attention.head_count': u32(heads),
    'attention.head_count_kv': u32(c.num('num_key_value_heads', heads)),
    'rope.freq_base': f32(c.num(['rope_theta', 'rope.rope_theta'], 10000)),
    'attention.layer_norm_rms_epsilon': f32(c.num('rms_norm_eps', 1e-6)),
    vocab_size: u32(c.num('vocab_size')),
  };
  const headDim = c.opt('head_dim');
  if (headDim !== undefined) Object.assign(kv, { 'attention.key_length': u32(headDim), 'attention.value_length': u32(headDim) });
  const type = String(c.get('rope.rope_type', 'rope.type') ?? 'default');
  if (type === 'linear') Object.assign(kv, { 'rope.scaling.type': 'linear', 'rope.scaling.factor': f32(c.num('rope.factor')) });
  if (type === 'yarn') {
    Object.assign(kv, {
      'rope.scaling.type': 'yarn', 'rope.scaling.factor': f32(c.num('rope.factor')),
      'rope.scaling.original_context_length': u32(c.num(['rope.original_max_position_embeddings', 'max_position_embeddings'])),
    });
  }
  if (!['default', 'linear', 'yarn', 'llama3'].includes(type)) throw new Error(`GGUF conversion: rope type '${type}' has no GGUF form`);
  return kv;
}

/**
 * Llama 3 rope scaling as llama.cpp writes it (LlamaModel.generate_extra_tensors): one factor per
 * frequency, the model dividing its default inverse frequencies by them.
 */
function llama3RopeFreqs(c: HfConfig): { name: string; values: Float32Array }[] {
  if (String(c.get('rope.rope_type', 'rope.type')) !== 'llama3') return [];
  const theta = c.num(['rope_theta', 'rope.rope_theta'], 10000);
  const dim = c.opt('head_dim') ?? c.num('hidden_size') / c.num('num_attention_heads');
  const factor = c.num('rope.factor', 8);
  const low = c.num('rope.low_freq_factor', 1);
  const high = c.num('rope.high_freq_factor', 4);
  const old = c.num(['rope.original_max_position_embeddings', 'original_max_position_embeddings'], 8192);
  const values = Float32Array.from({ length: dim / 2 }, (_, i) => {
    const wave = (2 * Math.PI) / (1 / theta ** ((2 * i) / dim));
    if (wave < old / high) return 1;
    if (wave > old / low) return factor;
    const smooth = (old / wave - low) / (high - low);
    return 1 / ((1 - smooth) / factor + smooth);
  });
  return [{ name: 'rope_freqs.weight', values }];
}

export const LLAMA: GgufArchSpec = {
  modelTypes: ['llama', 'mistral', 'mixtral'],
  blockPrefix,
  top: top(),
  block: [...attention(true), ...denseMlp, ...mixtralExperts],
  toConfig(m, t) {
    const experts = m.num('expert_count') ?? 0;
    const window = m.num('attention.sliding_window');
    const type = experts > 0 ? 'mixtral' : window !== undefined ? 'mistral' : 'llama';
    const cls = { llama: 'LlamaForCausalLM', mistral: 'MistralForCausalLM', mixtral: 'MixtralForCausalLM' }[type];
    const cfg = rotaryConfig(m, t, type, cls);
    if (experts > 0) Object.assign(cfg, { num_local_experts: experts, num_experts_per_tok: m.need('expert_used_count') });
    if (window !== undefined) cfg.sliding_window = window;
    return cfg;
  },
  toMetadata(c) {
    const kv = rotaryMetadata(c);
    kv['rope.dimension_count'] = u32(c.opt('head_dim') ?? c.num('hidden_size') / c.num('num_attention_heads'));
    const experts = c.opt('num_local_experts');
    if (experts) Object.assign(kv, { expert_count: u32(experts), expert_used_count: u32(c.num('num_experts_per_tok')) });
    // llama.cpp's LlamaModel writes no window (its llama graph attends to everything); actlab writes
    // it so that a windowed Mistral converted here runs as transformers runs it.
    const window = c.opt('sliding_window');
    if (window !== undefined && window < c.num('max_position_embeddings', 2048)) kv['attention.sliding_window'] = u32(window);
    return kv;
  },
  extraTensors: llama3RopeFreqs,
};

export const QWEN2: GgufArchSpec = {
  modelTypes: ['qwen2'],
  blockPrefix,
  top: top(),
  block: [...attention(false), ...denseMlp],
  toConfig: (m, t) => ({ ...rotaryConfig(m, t, 'qwen2', 'Qwen2ForCausalLM'), attention_bias: true }),
  toMetadata: rotaryMetadata,
};

export const QWEN2MOE: GgufArchSpec = {
  modelTypes: ['qwen2_moe'],
  blockPrefix,
  top: top(),
  block: [...attention(false), ...denseMlp, ...qwenExperts],
  toConfig(m, t) {
    const cfg = rotaryConfig(m, t, 'qwen2_moe', 'Qwen2MoeForCausalLM');
    const layers = cfg.num_hidden_layers as number;
    const sparse = (i: number) => t.has(`blk.${i}.ffn_gate_inp.weight`);
    const first = Array.from({ length: layers }, (_, i) => i).find(sparse) ?? 0;
    const shexp = t.get(`blk.${first}.ffn_gate_shexp.weight`);
    return {
      ...cfg, num_experts: m.need('expert_count'), num_experts_per_tok: m.need('expert_used_count'),
      moe_intermediate_size: m.num('expert_feed_forward_length') ?? shapeOf(t, `blk.${first}.ffn_gate_exps.weight`, m.source)[1],
      shared_expert_intermediate_size: m.num('expert_shared_feed_forward_length') ?? shexp?.[0] ?? 0,
      // llama.cpp's qwen2moe graph (src/models/qwen2moe.cpp) calls build_moe_ffn with norm_w = false;
      // `expert_weights_norm` (which that graph ignores) is written by actlab for norm_topk_prob = true.
      norm_topk_prob: m.bool('expert_weights_norm') ?? false,
      decoder_sparse_step: 1,
      mlp_only_layers: Array.from({ length: layers }, (_, i) => i).filter((i) => !sparse(i)),
    };
  },
  toMetadata(c) {
    const kv = rotaryMetadata(c);
    Object.assign(kv, {
      expert_count: u32(c.num('num_experts')), expert_used_count: u32(c.num('num_experts_per_tok')),
      expert_feed_forward_length: u32(c.num('moe_intermediate_size')),
    });
    const shared = c.opt('shared_expert_intermediate_size');
    if (shared) kv.expert_shared_feed_forward_length = u32(shared);
    if (c.get('norm_topk_prob') === true) kv.expert_weights_norm = true;
    return kv;
  },
};

export const GEMMA: GgufArchSpec = {
  modelTypes: ['gemma'],
  blockPrefix,
  top: top('norm+1'),
  block: [...attention(false, 'norm+1'), ...denseMlp],
  toConfig: (m, t) => ({ ...rotaryConfig(m, t, 'gemma', 'GemmaForCausalLM'), hidden_act: 'gelu_pytorch_tanh', hidden_activation: 'gelu_pytorch_tanh' }),
  toMetadata(c) {
    const kv = rotaryMetadata(c);
    const headDim = c.opt('head_dim') ?? c.num('hidden_size') / c.num('num_attention_heads');
    return { ...kv, 'attention.key_length': u32(headDim), 'attention.value_length': u32(headDim) };
  },
  // GemmaModel.filter_tensors drops lm_head.weight: llama.cpp's gemma always ties the head.
  skip: (name) => name === 'lm_head.weight',
};
