// Layer voids ("Void in Language Models", 2025: L2 Adaptive Computation, LAC):
// per token, the change of the residual norm a block makes, Δℓ = ‖hℓ‖ − ‖hℓ₋₁‖; block ℓ is a
// void (not activated) for that token when Δℓ < α·(max Δ − min Δ over the earlier blocks), with
// α = 0.8. The first block has no earlier ones and is never a void. Reported separately for
// prompt processing (one forward pass) and generation (one token per step, with the KV cache).
import { generate, generateAsync } from '../models/generate.js';
import { mul } from '../ops/elementwise.js';
import { keep } from '../tensor/engine.js';
import type { Tensor } from '../tensor/tensor.js';
import type { CausalLM } from '../models/model.js';
import type { Tokenizer } from '../tokenizer/tokenizer.js';
import type { HookFn } from '../models/hook-point.js';
import { blockNames, collect, collectAsync, tokenLabel, type HostActs } from './acts.js';
import { l2 } from './stats.js';
import type { Analysis } from './registry.js';

export interface VoidOptions {
  /** Default 0.8 (LAC). */
  alpha?: number;
  /** Greedy new tokens processed in the generation phase (default 16; 0 skips it). */
  generateTokens?: number;
  tokenizer?: Tokenizer;
}

export interface VoidPhase {
  /** Per token: its id, label, per-block Δ and whether each block is a void for it. */
  tokens: { pos: number; id: number; token: string; delta: number[]; void: boolean[] }[];
  /** Per block: the share of tokens for which it is a void. */
  void_rate: number[];
  /** Blocks that are voids for at least half of the tokens. */
  void_layers: number[];
}

export interface VoidResult {
  alpha: number;
  prompt: VoidPhase;
  generation: VoidPhase | null;
}

/** LAC on one token: norms ‖h0‖..‖hL‖ -> Δ per block and the void flags. */
export function lacVoids(norms: readonly number[], alpha = 0.8): { delta: number[]; void: boolean[] } {
  const delta = norms.slice(1).map((n, i) => n - norms[i]!);
  const flags = delta.map((d, l) => {
    if (l === 0) return false;
    const earlier = delta.slice(0, l);
    return d < alpha * (Math.max(...earlier) - Math.min(...earlier));
  });
  return { delta, void: flags };
}

function phase(tokens: VoidPhase['tokens'], nLayers: number): VoidPhase {
  const rate = Array.from({ length: nLayers }, (_, l) => (tokens.length ? tokens.filter((t) => t.void[l]).length / tokens.length : 0));
  return { tokens, void_rate: rate, void_layers: rate.flatMap((r, l) => (r >= 0.5 ? [l] : [])) };
}

export function voidHookNames(model: CausalLM): string[] {
  return ['blocks.0.hook_resid_pre', ...blockNames(model, 'hook_resid_post')];
}

/** Norms ‖h0‖..‖hL‖ per position, from one call's residuals. */
function normsOf(states: { data: ArrayLike<number>; shape: number[] }[]): number[][] {
  const [, T, d] = states[0]!.shape as [number, number, number];
  return Array.from({ length: T }, (_, t) => states.map((s) => l2(Array.prototype.slice.call(s.data, t * d, (t + 1) * d))));
}

type Residuals = Map<string, { data: Float32Array; shape: number[] }>;

function promptPhase(model: CausalLM, ids: readonly number[], acts: HostActs, o: VoidOptions): VoidPhase {
  const names = voidHookNames(model);
  const promptNorms = normsOf(names.map((n) => acts.get(n)));
  return phase(promptNorms.map((n, t) => ({ pos: t, id: ids[t]!, token: tokenLabel(ids[t]!, o.tokenizer), ...lacVoids(n, o.alpha ?? 0.8) })), model.dims.nLayers);
}

/** The generation phase from each call's residuals: call 0 is the prompt, call k (k >= 1) processes new token k-1 at position ids.length + k - 1. */
function generationPhase(model: CausalLM, ids: readonly number[], calls: Residuals[], newIds: readonly number[], o: VoidOptions): VoidPhase {
  const names = voidHookNames(model);
  const tokens: VoidPhase['tokens'] = [];
  for (let k = 1; k < calls.length; k++) {
    const id = newIds[k - 1]!;
    const n = normsOf(names.map((x) => calls[k]!.get(x)!))[0]!;
    tokens.push({ pos: ids.length + k - 1, id, token: tokenLabel(id, o.tokenizer), ...lacVoids(n, o.alpha ?? 0.8) });
  }
  return phase(tokens, model.dims.nLayers);
}

export function layerVoids(model: CausalLM, ids: readonly number[], o: VoidOptions = {}): VoidResult {
  const alpha = o.alpha ?? 0.8;
  const names = voidHookNames(model);
  const prompt = promptPhase(model, ids, collect(model, ids, names), o);
  const steps = o.generateTokens ?? 16;
  let generation: VoidPhase | null = null;
  if (steps > 0) {
    // Capture each call's residuals; steps + 1 tokens are generated so that `steps` of them go through the model.
    const calls: Residuals[] = [];
    const want = new Set(names);
    const fn: HookFn = (t, h) => {
      if (h.name === names[0]) calls.push(new Map());
      calls.at(-1)!.set(h.name, { data: Float32Array.from(t.dataSync()), shape: [...t.shape] });
    };
    const r = model.withHooks([[(n: string) => want.has(n), fn]], () => generate(model, [ids], { maxNewTokens: steps + 1, eosTokenIds: [] }));
    generation = generationPhase(model, ids, calls, r.newIds[0]!, o);
  }
  return { alpha, prompt, generation };
}

/** `layerVoids` on any backend (WebGPU included): residuals are copied on the device during generation and read afterwards. */
export async function layerVoidsAsync(model: CausalLM, ids: readonly number[], o: VoidOptions = {}): Promise<VoidResult> {
  const alpha = o.alpha ?? 0.8;
  const names = voidHookNames(model);
  const prompt = promptPhase(model, ids, await collectAsync(model, ids, names), o);
  const steps = o.generateTokens ?? 16;
  let generation: VoidPhase | null = null;
  if (steps > 0) {
    const kept: Map<string, Tensor>[] = [];
    const want = new Set(names);
    const fn: HookFn = (t, h) => {
      if (h.name === names[0]) kept.push(new Map());
      kept.at(-1)!.set(h.name, keep(mul(t, 1))); // a copy that outlives the step
    };
    try {
      const r = await model.withHooks([[(n: string) => want.has(n), fn]], () => generateAsync(model, [ids], { maxNewTokens: steps + 1, eosTokenIds: [] }));
      const calls: Residuals[] = [];
      for (const m of kept) {
        const c: Residuals = new Map();
        for (const [n, t] of m) c.set(n, { data: Float32Array.from(await t.data()), shape: [...t.shape] });
        calls.push(c);
      }
      generation = generationPhase(model, ids, calls, r.newIds[0]!, o);
    } finally {
      for (const m of kept) for (const t of m.values()) t.dispose();
    }
  }
  return { alpha, prompt, generation };
}

export const voidsAnalysis: Analysis = {
  name: 'voids',
  options: [
    { flags: '--alpha <x>', help: 'LAC alpha (0.8)', type: 'number', above: 0, max: 1 },
    { flags: '--generate <n>', help: 'greedy tokens of the generation phase (16)', type: 'int', min: 0 },
  ],
  input: 'prompt',
  run: async ({ m, ids }, env) => {
    const a = env.args as { alpha?: number; generate?: number };
    return layerVoidsAsync(m.model, ids, { alpha: a.alpha, generateTokens: a.generate, tokenizer: m.tokenizer });
  },
};
