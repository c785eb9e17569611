// Mixture-of-experts: which experts a behaviour uses, and switching them off or on
// (MoTE, "Mixture of Tunable Experts — Behavior Modification of DeepSeek-R1 at Inference Time",
// Dahlke et al. 2025, arXiv 2502.11096).
//   fTRI ("functional Token Resonance Imaging"): run two prompt sets, one eliciting the behaviour
//   and one not; per layer and expert, the share of tokens routed to the expert (top-k chosen) in
//   each set; experts ranked by the difference of those activation rates (the paper switches off
//   the top 10 of its ranking).
//   Deactivation: the expert's router logit is set to −inf, so top-k never picks it and the other
//   experts share the weight. Forcing: the router logit is set to a large value (default 1e4), so
//   every token picks it first (with normalised top-k it takes nearly all the weight).
// Both are plain interventions (unit `experts` at `blocks.{l}.mlp.hook_router_logits`), so they
// compose with the rest, serialise to JSON and apply in forward, runWithCache and generate.
import { noGrad } from '../autograd/tape.js';
import { runWithCache } from '../hooks/run.js';
import { tensor } from '../ops/creation.js';
import type { CausalLM } from '../models/model.js';
import type { Intervention } from './intervention.js';

export interface ExpertRef {
  layer: number;
  expert: number;
}

export interface FtriExpert extends ExpertRef {
  /** Share of the positive set's tokens routed to this expert, and of the negative set's. */
  positive: number;
  negative: number;
  /** positive − negative. */
  diff: number;
}

export interface FtriResult {
  /** [layer][expert]: activation rate on each set. */
  positive: number[][];
  negative: number[][];
  /** Every (layer, expert), by diff, largest first. */
  ranking: FtriExpert[];
}

function needMoe(model: CausalLM, where: string): { E: number; L: number } {
  const E = model.dims.nExperts;
  if (!E) throw new Error(`${where}: this ${model.dims.arch} model has no mixture-of-experts layers`);
  return { E, L: model.dims.nLayers };
}

/** Per layer and expert, the share of the prompts' tokens routed to the expert (each token counts once per chosen expert). */
export function expertActivationRates(model: CausalLM, prompts: readonly (readonly number[])[]): number[][] {
  const { E, L } = needMoe(model, 'expertActivationRates');
  if (prompts.length === 0) throw new Error('expertActivationRates: the prompt set is empty');
  const counts = Array.from({ length: L }, () => new Array<number>(E).fill(0));
  let tokens = 0;
  const names = Array.from({ length: L }, (_, l) => `blocks.${l}.mlp.hook_expert_indices`);
  noGrad(() => {
    for (const p of prompts) {
      if (p.length === 0) throw new Error('expertActivationRates: a prompt has no tokens');
      const x = tensor(p, [1, p.length], 'i32', { backend: model.backend });
      const r = runWithCache(model, x, { names });
      names.forEach((n, l) => { for (const e of r.cache.get(n).dataSync()) counts[l]![e]!++; });
      r.logits.dispose(); r.cache.dispose(); x.dispose();
      tokens += p.length;
    }
  });
  return counts.map((row) => row.map((c) => c / tokens));
}

/** fTRI: experts ranked by how much more often the positive prompts route to them than the negative ones. */
export function ftri(model: CausalLM, positive: readonly (readonly number[])[], negative: readonly (readonly number[])[]): FtriResult {
  const pos = expertActivationRates(model, positive);
  const neg = expertActivationRates(model, negative);
  const ranking: FtriExpert[] = [];
  pos.forEach((row, layer) => row.forEach((p, expert) => ranking.push({ layer, expert, positive: p, negative: neg[layer]![expert]!, diff: p - neg[layer]![expert]! })));
  ranking.sort((a, b) => b.diff - a.diff || a.layer - b.layer || a.expert - b.expert);
  return { positive: pos, negative: neg, ranking };
}

function byLayer(model: CausalLM, experts: readonly ExpertRef[], where: string): Map<number, number[]> {
  const { E, L } = needMoe(model, where);
  const m = new Map<number, number[]>();
  for (const { layer, expert } of experts) {
    if (!Number.isInteger(layer) || layer < 0 || layer >= L) throw new RangeError(`${where}: layer ${layer} is out of range; this model has ${L} blocks (0–${L - 1})`);
    if (!Number.isInteger(expert) || expert < 0 || expert >= E) throw new RangeError(`${where}: expert ${expert} is out of range; this model has ${E} experts (0–${E - 1})`);
    const list = m.get(layer) ?? [];
    if (!list.includes(expert)) list.push(expert);
    m.set(layer, list);
  }
  return m;
}

/** Interventions that switch the experts off (router logit −inf). */
export function deactivateExperts(model: CausalLM, experts: readonly ExpertRef[]): Intervention[] {
  return [...byLayer(model, experts, 'deactivateExperts')].map(([l, es]) => ({
    hook: `blocks.${l}.mlp.hook_router_logits`, unit: { experts: es }, op: 'set', value: -Infinity, name: `deactivate L${l} experts ${es.join(',')}`,
  }));
}

/** Interventions that make every token pick the experts (router logit set to `logit`, default 1e4). */
export function forceExperts(model: CausalLM, experts: readonly ExpertRef[], logit = 1e4): Intervention[] {
  if (!Number.isFinite(logit)) throw new RangeError(`forceExperts: the forced router logit must be finite, got ${logit}`);
  const m = byLayer(model, experts, 'forceExperts');
  for (const [l, es] of m) {
    if (es.length > (model.dims.expertsPerToken ?? 1)) throw new RangeError(`forceExperts: ${es.length} experts forced in layer ${l}, more than the ${model.dims.expertsPerToken} each token uses`);
  }
  return [...m].map(([l, es]) => ({ hook: `blocks.${l}.mlp.hook_router_logits`, unit: { experts: es }, op: 'set', value: logit, name: `force L${l} experts ${es.join(',')}` }));
}
