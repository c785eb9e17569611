// Attention sinks.
// Sink score per head (Gu et al. 2025, "When Attention Sink Emerges in Language Models: An
// Empirical View", §3.1): the mean attention every query pays to the first token,
//   α(l,h) = (1/T) Σ_{i=1..T} A(l,h)[i, 1],
// and the sink rate: the share of heads with α > ε, ε = 0.3.
// Secondary sinks ("On the Existence and Behaviour of Secondary Attention Sinks"): tokens other
// than the first whose hidden state aligns with the first token's (|cos| > 0.9) inside the layer
// window where the first token is a sink, i.e. between the largest rise and the largest fall of
// the first token's residual norm; each with its lifetime (layers in the window where it holds)
// and the attention it receives there.
import type { CausalLM } from '../models/model.js';
import type { Tokenizer } from '../tokenizer/tokenizer.js';
import { blockNames, collect, collectAsync, row, tokenLabel, type HostActs } from './acts.js';
import type { Analysis } from './registry.js';
import { cosine, l2 } from './stats.js';
import { blockHook } from '../models/hook-point.js';

export interface SinkOptions {
  /** Heads with sink score above this count as sink heads (default 0.3, Gu et al.). */
  epsilon?: number;
  /** |cos| with the first token's hidden state for a secondary sink (default 0.9). */
  cosThreshold?: number;
  tokenizer?: Tokenizer;
}

export interface SecondarySink {
  pos: number;
  token: string;
  /** Layers (index of the hidden state: 0 = embedding, l = after block l-1) where |cos| > threshold. */
  layers: number[];
  lifetime: number;
  /** Mean attention it receives from later queries, over all heads of the blocks reading those states. */
  attention: number;
}

export interface SinkResult {
  epsilon: number;
  heads: { layer: number; head: number; score: number }[];
  /** Share of heads with score > epsilon. */
  rate: number;
  sink_heads: { layer: number; head: number; score: number }[];
  /** Norm of the first token's hidden state per layer (0 = embedding). */
  first_token_norm: number[];
  /** The layer window [start, end] of hidden-state indices searched for secondary sinks. */
  window: [number, number];
  secondary: SecondarySink[];
}

export function sinkHookNames(model: CausalLM): string[] {
  return [...blockNames(model, 'attn.hook_pattern'), 'blocks.0.hook_resid_pre', ...blockNames(model, 'hook_resid_post')];
}

export function attentionSinks(model: CausalLM, ids: readonly number[], o: SinkOptions = {}): SinkResult {
  return sinksFromActs(collect(model, ids, sinkHookNames(model)), model.dims.nLayers, o);
}

/** The hidden states h_0 (embedding, as the first block sees it) .. h_L (after each block). */
export function hiddenStates(acts: HostActs, nLayers: number): ReturnType<HostActs['get']>[] {
  return [acts.get('blocks.0.hook_resid_pre'), ...Array.from({ length: nLayers }, (_, l) => acts.get(blockHook(l, 'hook_resid_post')))];
}

export function sinksFromActs(acts: HostActs, nLayers: number, o: SinkOptions = {}): SinkResult {
  const eps = o.epsilon ?? 0.3;
  const cosT = o.cosThreshold ?? 0.9;
  const heads: SinkResult['heads'] = [];
  const received: Float64Array[] = []; // per layer: mean attention each key receives from later queries, over heads
  for (let l = 0; l < nLayers; l++) {
    const p = acts.get(blockHook(l, 'attn.hook_pattern')); // [1, head, query, key]
    const [, H, T, K] = p.shape as [number, number, number, number];
    const recv = new Float64Array(K);
    for (let h = 0; h < H; h++) {
      let s = 0;
      for (let i = 0; i < T; i++) s += p.data[(h * T + i) * K]!;
      heads.push({ layer: l, head: h, score: s / T });
      for (let j = 0; j < K; j++) {
        let r = 0;
        for (let i = j + 1; i < T; i++) r += p.data[(h * T + i) * K + j]!;
        recv[j]! += T - j - 1 > 0 ? r / (T - j - 1) / H : 0;
      }
    }
    received.push(recv);
  }
  const states = hiddenStates(acts, nLayers);
  const norms = states.map((s) => l2(row(s, 0)));
  // The window: from the largest rise of the first token's norm to its largest fall after that.
  let rise = 1;
  for (let l = 1; l < norms.length; l++) if (norms[l]! - norms[l - 1]! > norms[rise]! - norms[rise - 1]!) rise = l;
  let fall = norms.length;
  let worst = 0;
  for (let l = rise + 1; l < norms.length; l++) {
    const d = norms[l]! - norms[l - 1]!;
    if (d < worst) { worst = d; fall = l; }
  }
  const window: [number, number] = [rise, fall - 1];
  const T = states[0]!.shape[1]!;
  const secondary: SecondarySink[] = [];
  for (let t = 1; t < T; t++) {
    const layers: number[] = [];
    // Hidden state l is what block l reads. The last state (after the final block) is read by no
    // attention, so nothing in it can be a sink: only states blocks read are searched.
    for (let l = window[0]; l <= Math.min(window[1], nLayers - 1); l++) if (Math.abs(cosine(row(states[l]!, t), row(states[l]!, 0))) > cosT) layers.push(l);
    if (!layers.length) continue;
    const attention = layers.reduce((s, l) => s + received[l]![t]!, 0) / layers.length;
    secondary.push({ pos: t, token: tokenLabel(acts.ids[t]!, o.tokenizer), layers, lifetime: layers.length, attention });
  }
  const sinkHeads = heads.filter((h) => h.score > eps);
  return { epsilon: eps, heads, rate: heads.length ? sinkHeads.length / heads.length : 0, sink_heads: sinkHeads, first_token_norm: norms, window, secondary };
}

export const sinksAnalysis: Analysis = {
  name: 'sinks',
  options: [
    { flags: '--epsilon <x>', help: 'sink-head threshold (0.3)', type: 'number', min: 0 },
    { flags: '--cos <x>', help: '|cos| for secondary sinks (0.9)', type: 'number', min: 0, max: 1 },
  ],
  input: 'prompt',
  run: async ({ m, ids }, env) => {
    const a = env.args as { epsilon?: number; cos?: number };
    return sinksFromActs(await collectAsync(m.model, ids, sinkHookNames(m.model)), m.model.dims.nLayers, { epsilon: a.epsilon, cosThreshold: a.cos, tokenizer: m.tokenizer });
  },
};
