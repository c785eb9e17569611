// The logit lens (nostalgebraist 2020, "interpreting GPT: the logit lens"): the residual stream
// entering each block, and the final one, read through the final norm and the unembedding.
// Per layer: the top tokens at a position and the rank there of the model's final prediction;
// and the rank of the final prediction at every position (the heatmap).
import { tensor } from '../ops/creation.js';
import type { CausalLM } from '../models/model.js';
import type { Tokenizer } from '../tokenizer/tokenizer.js';
import { blockNames, collect, collectAsync, tokenLabel, type HostActs } from './acts.js';
import { readAsync, readSync, type Reads } from '../tensor/read.js';
import { argmax, rankOf, softmax, topIndices } from './stats.js';
import { blockHook } from '../models/hook-point.js';
import type { Analysis } from './registry.js';

export interface LogitLensOptions {
  /** The position whose top tokens are listed (default: the last). */
  position?: number;
  /** Top tokens per layer (default 5). */
  k?: number;
  tokenizer?: Tokenizer;
}

export interface LogitLensResult {
  position: number;
  /** The model's own prediction at `position`. */
  final: { id: number; token: string };
  layers: { layer: string; top: { id: number; token: string; prob: number }[]; rank_of_final: number }[];
  /** [layer][pos]: rank of the final prediction at each position (0 = top). */
  ranks: number[][];
}

export function logitLensHookNames(model: CausalLM): string[] {
  return [...blockNames(model, 'hook_resid_pre'), blockHook(model.dims.nLayers - 1, 'hook_resid_post')];
}

export function logitLens(model: CausalLM, ids: readonly number[], o: LogitLensOptions = {}): LogitLensResult {
  return logitLensFromActs(model, collect(model, ids, logitLensHookNames(model)), o);
}

export function logitLensFromActs(model: CausalLM, acts: HostActs, o: LogitLensOptions = {}): LogitLensResult {
  return readSync(logitLensReads(model, acts, o));
}

/** The logit lens on any backend (WebGPU included): activations and lens logits read asynchronously. */
export async function logitLensAsync(model: CausalLM, ids: readonly number[], o: LogitLensOptions = {}): Promise<LogitLensResult> {
  return readAsync(logitLensReads(model, await collectAsync(model, ids, logitLensHookNames(model)), o));
}

/** `logitLensFromActs` as a read step (src/tensor/read.ts). */
export function* logitLensReads(model: CausalLM, acts: HostActs, o: LogitLensOptions = {}): Reads<LogitLensResult> {
  const L = model.dims.nLayers;
  const names = logitLensHookNames(model);
  const labels = [...Array.from({ length: L }, (_, i) => `${i}_pre`), 'final'];
  const T = acts.ids.length;
  const pos = o.position === undefined ? T - 1 : o.position < 0 ? T + o.position : o.position;
  if (pos < 0 || pos >= T) throw new RangeError(`logit lens: position ${o.position} out of range for ${T} tokens`);
  const k = o.k ?? 5;
  const perLayer: Float32Array[] = [];
  for (const n of names) {
    const s = acts.get(n);
    const x = tensor(s.data, s.shape, 'f32', { backend: model.backend });
    const lg = model.logitsFromResidual(x);
    x.dispose();
    try {
      perLayer.push(Float32Array.from(yield lg));
    } finally {
      lg.dispose();
    }
  }
  const V = perLayer[0]!.length / T;
  const at = (l: number, t: number) => perLayer[l]!.subarray(t * V, (t + 1) * V);
  const finalIds = Array.from({ length: T }, (_, t) => argmax(at(L, t)));
  const finalId = finalIds[pos]!;
  const layers = labels.map((layer, l) => {
    const v = at(l, pos);
    const p = softmax(v);
    return {
      layer, rank_of_final: rankOf(v, finalId),
      top: topIndices(v, k).map((id) => ({ id, token: tokenLabel(id, o.tokenizer), prob: p[id]! })),
    };
  });
  const ranks = labels.map((_, l) => finalIds.map((f, t) => rankOf(at(l, t), f)));
  return { position: pos, final: { id: finalId, token: tokenLabel(finalId, o.tokenizer) }, layers, ranks };
}

export const logitLensAnalysis: Analysis = {
  name: 'logit-lens',
  options: [
    { flags: '--position <i>', help: 'position (-1)', type: 'int' },
    { flags: '--top-k <k>', help: 'top tokens', type: 'int', min: 1 },
  ],
  input: 'prompt',
  run: async ({ m, ids }, env) => {
    const a = env.args as { position?: number; topK?: number };
    return logitLensAsync(m.model, ids, { position: a.position, k: a.topK, tokenizer: m.tokenizer });
  },
};
