// Mixture-of-experts routing, as Sigma-MoE-Tiny, DynaMoE and MoTE monitor it: per layer, the load
// of each expert (its share of the token→expert assignments), the mean entropy of the router's
// distribution (nats, and divided by log n_experts), load imbalance (max load / mean load, and
// the coefficient of variation of the loads), and which experts each token went to.
import type { CausalLM } from '../models/model.js';
import type { Tokenizer } from '../tokenizer/tokenizer.js';
import { blockNames, collect, collectAsync, tokenLabel, type HostActs } from './acts.js';
import type { Analysis } from './registry.js';
import { entropy, mean, softmax } from './stats.js';
import { blockHook } from '../models/hook-point.js';

export interface ExpertLayer {
  layer: number;
  load: number[];
  entropy: number;
  normalized_entropy: number;
  imbalance: number;
  cv: number;
}

export interface ExpertResult {
  n_experts: number;
  experts_per_token: number;
  layers: ExpertLayer[];
  /** Per token: its experts in each layer. */
  tokens: { pos: number; token: string; experts: number[][] }[];
}

export function expertHookNames(model: CausalLM): string[] {
  return [...blockNames(model, 'mlp.hook_router_logits'), ...blockNames(model, 'mlp.hook_expert_indices')];
}

/** Null for dense models. */
export function expertRouting(model: CausalLM, ids: readonly number[], o: { tokenizer?: Tokenizer } = {}): ExpertResult | null {
  if (!model.dims.nExperts) return null;
  return expertsFromActs(collect(model, ids, expertHookNames(model)), model.dims.nLayers, o);
}

export function expertsFromActs(acts: HostActs, nLayers: number, o: { tokenizer?: Tokenizer } = {}): ExpertResult | null {
  if (!acts.has('blocks.0.mlp.hook_router_logits')) return null;
  const T = acts.ids.length;
  const layers: ExpertLayer[] = [];
  const tokens = acts.ids.map((id, pos) => ({ pos, token: tokenLabel(id, o.tokenizer), experts: [] as number[][] }));
  let E = 0;
  let K = 0;
  for (let l = 0; l < nLayers; l++) {
    const logits = acts.get(blockHook(l, 'mlp.hook_router_logits')); // [1, pos, n_experts]
    const idx = acts.get(blockHook(l, 'mlp.hook_expert_indices')); // [1, pos, k]
    E = logits.shape[2]!;
    K = idx.shape[2]!;
    const counts = new Array<number>(E).fill(0);
    const ent: number[] = [];
    for (let t = 0; t < T; t++) {
      ent.push(entropy(softmax(logits.data.subarray(t * E, (t + 1) * E))));
      const chosen = Array.from(idx.data.subarray(t * K, (t + 1) * K));
      for (const e of chosen) counts[e]!++;
      tokens[t]!.experts.push(chosen);
    }
    const load = counts.map((c) => c / (T * K));
    const m = 1 / E;
    const cv = Math.sqrt(load.reduce((s, x) => s + (x - m) ** 2, 0) / E) / m;
    layers.push({ layer: l, load, entropy: mean(ent), normalized_entropy: mean(ent) / Math.log(E), imbalance: Math.max(...load) / m, cv });
  }
  return { n_experts: E, experts_per_token: K, layers, tokens };
}

export const expertsAnalysis: Analysis = {
  name: 'experts',
  input: 'prompt',
  run: async ({ m, ids }) => {
    if (!m.model.dims.nExperts) throw new Error(`experts: ${m.source} is not a mixture-of-experts model`);
    return expertsFromActs(await collectAsync(m.model, ids, expertHookNames(m.model)), m.model.dims.nLayers, { tokenizer: m.tokenizer });
  },
};
