// Activation sparsity (Li et al. 2023, "The Lazy Neuron Phenomenon: On Emergence of Activation
// Sparsity in Transformers", §2): the fraction of MLP activations (the input of the down
// projection, hook_post) that are non-zero. For ReLU models that is exact; for smooth activations
// (GELU, SiLU, SwiGLU) an entry counts as active when |a| >= ε (default 0.01, as the magnitude
// cut-off is a choice, not a definition of the paper). Per layer and per token.
// Mixture-of-experts layers: the routed experts' activations, per layer only (their rows are tokens
// routed to each expert, not positions).
import type { CausalLM } from '../models/model.js';
import { collect, collectAsync, type HostActs } from './acts.js';
import type { Analysis } from './registry.js';
import { blockHook } from '../models/hook-point.js';

export interface SparsityOptions {
  /** 'zero': active = non-zero; 'eps': active = |a| >= epsilon; 'auto' (default): 'zero' when at least 1% of entries are exactly 0. */
  mode?: 'auto' | 'zero' | 'eps';
  epsilon?: number;
}

export interface SparsityResult {
  mode: 'zero' | 'eps';
  epsilon: number;
  /** Per layer: the share of active entries and its complement. */
  layers: { layer: number; active: number; sparsity: number }[];
  /** [layer][pos] share of active entries (empty rows for MoE layers). */
  per_token: number[][];
}

export function sparsityHookNames(model: CausalLM): string[] {
  const names = model.hookPoints().map((h) => h.name);
  return names.filter((n) => /^blocks\.\d+\.mlp\.(hook_post|experts\.\d+\.hook_post)$/.test(n));
}

export function activationSparsity(model: CausalLM, ids: readonly number[], o: SparsityOptions = {}): SparsityResult {
  return sparsityFromActs(collect(model, ids, sparsityHookNames(model)), model.dims.nLayers, o);
}

export function sparsityFromActs(acts: HostActs, nLayers: number, o: SparsityOptions = {}): SparsityResult {
  const eps = o.epsilon ?? 0.01;
  const perLayer: { data: Float32Array; cols: number; perToken: boolean }[][] = [];
  let zeros = 0;
  let total = 0;
  for (let l = 0; l < nLayers; l++) {
    const parts: { data: Float32Array; cols: number; perToken: boolean }[] = [];
    const dense = blockHook(l, 'mlp.hook_post');
    if (acts.has(dense)) {
      const t = acts.get(dense);
      parts.push({ data: t.data, cols: t.shape.at(-1)!, perToken: true });
    } else {
      for (const [name, t] of acts.entries) if (name.startsWith(blockHook(l, 'mlp.experts.')) && name.endsWith('.hook_post')) parts.push({ data: t.data, cols: t.shape.at(-1)!, perToken: false });
    }
    for (const p of parts) for (const v of p.data) { zeros += v === 0 ? 1 : 0; total++; }
    perLayer.push(parts);
  }
  const mode = o.mode && o.mode !== 'auto' ? o.mode : total && zeros / total >= 0.01 ? 'zero' : 'eps';
  const active = (v: number) => (mode === 'zero' ? v !== 0 : Math.abs(v) >= eps);
  const layers: SparsityResult['layers'] = [];
  const perToken: number[][] = [];
  perLayer.forEach((parts, l) => {
    let a = 0;
    let n = 0;
    const rows: number[] = [];
    for (const p of parts) {
      for (let r = 0; r < p.data.length / p.cols; r++) {
        let ra = 0;
        for (let j = 0; j < p.cols; j++) ra += active(p.data[r * p.cols + j]!) ? 1 : 0;
        a += ra;
        n += p.cols;
        if (p.perToken) rows.push(ra / p.cols);
      }
    }
    layers.push({ layer: l, active: n ? a / n : NaN, sparsity: n ? 1 - a / n : NaN });
    perToken.push(rows);
  });
  return { mode, epsilon: eps, layers, per_token: perToken };
}

export const sparsityAnalysis: Analysis = {
  name: 'sparsity',
  options: [
    { flags: '--mode <m>', help: 'auto, zero or eps', type: 'choice', choices: ['auto', 'zero', 'eps'] },
    { flags: '--epsilon <x>', help: '|a| cut-off (0.01)', type: 'number', min: 0 },
  ],
  input: 'prompt',
  run: async ({ m, ids }, env) => {
    const a = env.args as { mode?: SparsityOptions['mode']; epsilon?: number };
    return sparsityFromActs(await collectAsync(m.model, ids, sparsityHookNames(m.model)), m.model.dims.nLayers, { mode: a.mode, epsilon: a.epsilon });
  },
};
