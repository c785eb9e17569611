// Calibration inputs of linear layers: which hook point carries the input of each HF weight
// (TransformerLens' names: a norm's `hook_normalized` feeds q/k/v and gate/up, `attn.hook_z` the
// output projection, `mlp.hook_post` the down projection, `ln_final.hook_normalized` the
// unembedding) and a forward pass over calibration tokens that keeps those activations as
// [tokens, in] rows. Architectures whose names are not mapped here get no calibration inputs
// (the searches then fall back to the weights' own error, said by the caller).
import { runWithCache } from '../hooks/run.js';
import type { CausalLM } from '../models/model.js';
import { tensor } from '../ops/creation.js';

const RULES: [RegExp, string][] = [
  // Llama, Mistral, Qwen2, Gemma, Mixtral (HF names)
  [/^model\.layers\.(\d+)\.self_attn\.[qkv]_proj\.weight$/, 'blocks.$1.ln1.hook_normalized'],
  [/^model\.layers\.(\d+)\.self_attn\.o_proj\.weight$/, 'blocks.$1.attn.hook_z'],
  [/^model\.layers\.(\d+)\.mlp\.(gate|up)_proj\.weight$/, 'blocks.$1.ln2.hook_normalized'],
  [/^model\.layers\.(\d+)\.mlp\.down_proj\.weight$/, 'blocks.$1.mlp.hook_post'],
  [/^lm_head\.weight$/, 'ln_final.hook_normalized'],
  // GPT-2 (Conv1D)
  [/^(?:transformer\.)?h\.(\d+)\.attn\.c_attn\.weight$/, 'blocks.$1.ln1.hook_normalized'],
  [/^(?:transformer\.)?h\.(\d+)\.attn\.c_proj\.weight$/, 'blocks.$1.attn.hook_z'],
  [/^(?:transformer\.)?h\.(\d+)\.mlp\.c_fc\.weight$/, 'blocks.$1.ln2.hook_normalized'],
  [/^(?:transformer\.)?h\.(\d+)\.mlp\.c_proj\.weight$/, 'blocks.$1.mlp.hook_post'],
];

/**
 * The hook point whose activation is the input of weight `name`, or null when not known; a tied
 * embedding (`tie_word_embeddings` in `config`) counts as the unembedding it also is.
 */
export function linearInputHook(name: string, config: Record<string, unknown> = {}): string | null {
  for (const [re, hook] of RULES) if (re.test(name)) return name.replace(re, hook);
  if (config.tie_word_embeddings && /^(model\.embed_tokens|(transformer\.)?wte)\.weight$/.test(name)) return 'ln_final.hook_normalized';
  return null;
}

/** Tokens a calibration needs at least, and what it is for (for the error when there are fewer). */
export function checkCalibration(ids: readonly number[], need: number, what: string): void {
  if (ids.length < need) throw new Error(`${what}: calibration data gives ${ids.length} tokens; it needs at least ${need} (pass a longer --calib text)`);
}

/**
 * Runs `model` on `ids` in chunks of at most `ctx` tokens and keeps, for every hook in `hooks`, its
 * activation as f32 [tokens, width] (heads flattened).
 */
export function collectInputs(model: CausalLM, ids: readonly number[], hooks: readonly string[], ctx = Math.min(model.dims.nCtx, 256)): Map<string, Float32Array> {
  const want = [...new Set(hooks)];
  const parts = new Map<string, Float32Array[]>(want.map((h) => [h, []]));
  for (let at = 0; at < ids.length; at += ctx) {
    const chunk = ids.slice(at, at + ctx);
    const input = tensor(Int32Array.from(chunk), [1, chunk.length], 'i32', { backend: model.backend });
    const { logits, cache } = runWithCache(model, input, { names: want });
    for (const h of want) parts.get(h)!.push(cache.get(h).dataSync() as Float32Array);
    logits.dispose();
    cache.dispose();
    input.dispose();
  }
  const out = new Map<string, Float32Array>();
  for (const [h, ps] of parts) {
    const all = new Float32Array(ps.reduce((s, p) => s + p.length, 0));
    let o = 0;
    for (const p of ps) { all.set(p, o); o += p.length; }
    out.set(h, all);
  }
  return out;
}
