// The lab's views as plain functions: a loaded model and a JSON request in, a JSON-ready answer
// out, each made by the library's own analyses (collect, attentionSinks, inductionScores,
// logitLens, massiveActivations, activationSparsity, layerVoids, steeringVectors,
// withInterventions, activationPatching, generate, featureViews). The Web Worker of the page and the local
// server both call these, so the two modes give the same numbers by construction. Every read of a
// device tensor is asynchronous (the analyses' Async forms), so the views run on WebGPU too.
// Not for: drawing (src/web) or transport (src/web/worker.ts, src/cli/lab-server.ts).
import { collectAsync, tokenLabel } from '../analysis/acts.js';
import { inductionScoresAsync } from '../analysis/induction.js';
import { logitLensHookNames, logitLensReads } from '../analysis/logit-lens.js';
import { massiveFromActs } from '../analysis/massive.js';
import { sinksFromActs, sinkHookNames } from '../analysis/sinks.js';
import { sparsityFromActs, sparsityHookNames } from '../analysis/sparsity.js';
import { l2, softmax, topIndices } from '../analysis/stats.js';
import { layerVoidsAsync } from '../analysis/voids.js';
import { withInterventions } from '../interventions/apply.js';
import type { Intervention } from '../interventions/intervention.js';
import { logitDiff } from '../interventions/metrics.js';
import { activationPatchingAsync, attributionPatchingAsync, type PatchSite } from '../interventions/patching.js';
import { steeringIntervention, steeringVectorsAsync } from '../interventions/steering-vectors.js';
import { generateAsync } from '../models/generate.js';
import { readAsync } from '../tensor/read.js';
import type { CausalLM } from '../models/model.js';
import { tensor } from '../ops/creation.js';
import type { Tokenizer } from '../tokenizer/tokenizer.js';
import { neuronsView } from './neurons.js';
import { featuresView } from './features.js';
import { LabRequestError, LIMITS, int, num, oneOf, str, strList } from './request.js';

export interface LabModel {
  model: CausalLM;
  tokenizer: Tokenizer;
  /** False when `tokenizer` is the IdTokenizer (prompts are token ids). */
  textTokenizer: boolean;
  name: string;
}

/** What a running view may use: cancellation, progress, and streamed events (generation). */
export interface LabContext {
  signal?: { readonly aborted: boolean };
  progress?: (done: number, total: number, what: string) => void;
  emit?: (event: Record<string, unknown>) => void;
}

export class LabCancelledError extends Error {
  constructor() {
    super('cancelled');
    this.name = 'LabCancelledError';
  }
}

export const VIEWS = ['info', 'tokens', 'attention', 'lens', 'activations', 'neurons', 'features', 'steer', 'ablate', 'patch'] as const;
export type ViewName = (typeof VIEWS)[number];

/** Lets queued events (cancel messages, a closed socket) arrive between steps of long work. */
const pause = (): Promise<void> => new Promise((ok) => setTimeout(ok, 0));

async function step(ctx: LabContext): Promise<void> {
  await pause();
  if (ctx.signal?.aborted) throw new LabCancelledError();
}

function encode(m: LabModel, text: string, what = 'prompt'): number[] {
  let ids: number[];
  try {
    ids = m.tokenizer.encode(text);
  } catch (e) {
    throw new LabRequestError(`${what}: ${(e as Error).message}`);
  }
  if (ids.length === 0) throw new LabRequestError(`${what}: encodes to no tokens`);
  if (ids.length > m.model.dims.nCtx) throw new LabRequestError(`${what}: ${ids.length} tokens, but the model's context is ${m.model.dims.nCtx}`);
  if (ids.length > LIMITS.promptTokens) throw new LabRequestError(`${what}: ${ids.length} tokens; the lab takes at most ${LIMITS.promptTokens}`);
  return ids;
}

const label = (m: LabModel, id: number): string => tokenLabel(id, m.tokenizer);

function tokenArg(m: LabModel, v: unknown, what: string): number {
  if (typeof v === 'number') return int(v, what, 0, m.model.dims.vocabSize - 1);
  const s = str(v, what);
  if (/^\d+$/.test(s)) return int(Number(s), what, 0, m.model.dims.vocabSize - 1);
  const ids = m.textTokenizer ? m.tokenizer.encode(s, { addSpecialTokens: false }) : m.tokenizer.encode(s);
  if (ids.length !== 1) throw new LabRequestError(`${what}: '${s}' is ${ids.length} tokens, not one; give a token id`);
  return ids[0]!;
}

export function infoView(m: LabModel): Record<string, unknown> {
  return { name: m.name, dims: m.model.dims, backend: m.model.backend.name, text_tokenizer: m.textTokenizer, bos: m.tokenizer.bosId, hook_points: m.model.hookPoints().length };
}

/** Tokens, per-token loss (−log p of the next token) and the next-token distribution at the last position. */
export async function tokensView(m: LabModel, a: Record<string, unknown>): Promise<Record<string, unknown>> {
  const ids = encode(m, str(a.prompt, 'prompt'));
  const k = int(a.k ?? 10, 'k', 1, 50);
  const acts = await collectAsync(m.model, ids, []);
  const lg = acts.logits!; // [1, pos, vocab]
  const V = lg.shape[2]!;
  const row = (t: number) => lg.data.subarray(t * V, (t + 1) * V);
  const loss = ids.map((_, t) => (t + 1 < ids.length ? -Math.log(softmax(row(t))[ids[t + 1]!]!) : null));
  const last = row(ids.length - 1);
  const p = softmax(last);
  const next = topIndices(last, k).map((id) => ({ id, token: label(m, id), prob: p[id]!, logit: last[id]! }));
  const valid = loss.filter((x): x is number => x !== null);
  return { ids, tokens: ids.map((i) => label(m, i)), loss, mean_loss: valid.length ? valid.reduce((s, x) => s + x, 0) / valid.length : null, next };
}

/** Every layer's and head's attention pattern, with sink scores (this prompt) and induction scores (repeated random tokens). */
export async function attentionView(m: LabModel, a: Record<string, unknown>, ctx: LabContext = {}): Promise<Record<string, unknown>> {
  const ids = encode(m, str(a.prompt, 'prompt'));
  const { nLayers: L, nHeads: H } = m.model.dims;
  const T = ids.length;
  if (L * H * T * T > LIMITS.attentionValues) {
    throw new LabRequestError(`prompt: ${T} tokens make ${L} layers × ${H} heads × ${T}² = ${L * H * T * T} attention values; the view sends at most ${LIMITS.attentionValues} (use a shorter prompt)`);
  }
  const acts = await collectAsync(m.model, ids, sinkHookNames(m.model));
  // [layer][head][query][key]
  const patterns = Array.from({ length: L }, (_, l) => {
    const p = acts.get(`blocks.${l}.attn.hook_pattern`).data; // [1, head, query, key]
    return Array.from({ length: H }, (_, h) => Array.from({ length: T }, (_, q) => Array.from(p.subarray((h * T + q) * T, (h * T + q + 1) * T))));
  });
  const sinks = sinksFromActs(acts, L, { tokenizer: m.tokenizer });
  await step(ctx);
  ctx.progress?.(1, 2, 'induction scores');
  const induction = await inductionScoresAsync(m.model, { sequences: int(a.sequences ?? 2, 'sequences', 1, 8), seed: 0, copying: false });
  ctx.progress?.(2, 2, 'induction scores');
  return {
    tokens: ids.map((i) => label(m, i)), ids, layers: L, heads: H, patterns,
    sink: sinks.heads.map((s) => s.score), sink_epsilon: sinks.epsilon,
    induction: induction.heads.map((s) => s.score), prev_token: induction.heads.map((s) => s.prev_token), induction_threshold: induction.threshold,
  };
}

/** Logit lens at one position with the final token's rank at every layer and position, and residual norms. */
export async function lensView(m: LabModel, a: Record<string, unknown>): Promise<Record<string, unknown>> {
  const ids = encode(m, str(a.prompt, 'prompt'));
  const position = a.position === undefined ? undefined : int(a.position, 'position', -ids.length, ids.length - 1);
  const acts = await collectAsync(m.model, ids, logitLensHookNames(m.model));
  const lens = await readAsync(logitLensReads(m.model, acts, { position, k: int(a.k ?? 5, 'k', 1, 20), tokenizer: m.tokenizer }));
  const names = logitLensHookNames(m.model);
  // ‖resid‖ per [state][pos]: before each block, and after the last.
  const norms = names.map((n) => {
    const s = acts.get(n);
    const d = s.shape[2]!;
    return ids.map((_, t) => l2(s.data.subarray(t * d, (t + 1) * d)));
  });
  return { tokens: ids.map((i) => label(m, i)), ...lens, norm_states: names, norms };
}

/** Massive activations (layer × dimension heatmap), MLP sparsity and layer voids on the prompt. */
export async function activationsView(m: LabModel, a: Record<string, unknown>): Promise<Record<string, unknown>> {
  const ids = encode(m, str(a.prompt, 'prompt'));
  const L = m.model.dims.nLayers;
  const massive = massiveFromActs(await collectAsync(m.model, ids, Array.from({ length: L }, (_, l) => `blocks.${l}.hook_resid_post`)), L, { tokenizer: m.tokenizer });
  const sparsity = m.model.dims.dMlp > 0 ? sparsityFromActs(await collectAsync(m.model, ids, sparsityHookNames(m.model)), L) : null;
  const voids = await layerVoidsAsync(m.model, ids, { generateTokens: 0, tokenizer: m.tokenizer });
  return { tokens: ids.map((i) => label(m, i)), massive, sparsity, voids };
}

function generationArgs(a: Record<string, unknown>): { maxNewTokens: number; temperature: number; seed: number } {
  return {
    maxNewTokens: int(a.max_new_tokens ?? 16, 'max_new_tokens', 1, LIMITS.maxNewTokens),
    temperature: num(a.temperature ?? 0, 'temperature', 0, 5),
    seed: int(a.seed ?? 0, 'seed', 0, 2 ** 31),
  };
}

/**
 * Steering playground: a vector from two prompt sets (steeringVectors, mean difference), added at
 * `layer` with `strength`; the unsteered and steered continuations are generated a token at a time,
 * alternating, each token emitted as it is chosen ({ side, step, id, token }).
 */
export async function steerView(m: LabModel, a: Record<string, unknown>, ctx: LabContext = {}): Promise<Record<string, unknown>> {
  const prompt = encode(m, str(a.prompt, 'prompt'));
  const positives = strList(a.positives, 'positives', LIMITS.setItems);
  const negatives = strList(a.negatives, 'negatives', LIMITS.setItems);
  for (const [i, t] of [...positives, ...negatives].entries()) encode(m, t, `${i < positives.length ? 'positives' : 'negatives'}[${i < positives.length ? i : i - positives.length}]`);
  const layer = int(a.layer, 'layer', 0, m.model.dims.nLayers - 1);
  const strength = num(a.strength, 'strength', -1000, 1000);
  const g = generationArgs(a);
  const paired = positives.length === negatives.length;
  const set = paired
    ? { pairs: positives.map((p, i) => ({ positive: p, negative: negatives[i]! })), positives: [], negatives: [] }
    : { pairs: [], positives, negatives };
  let sv;
  try {
    sv = await steeringVectorsAsync(m.model, m.tokenizer, set, { layers: [layer], method: 'mean_diff' });
  } catch (e) {
    throw new LabRequestError((e as Error).message);
  }
  const steer: Intervention[] = [steeringIntervention(sv, layer, strength)];
  const sides = { base: [...prompt], steered: [...prompt] };
  const eos = new Set(m.tokenizer.eosIds);
  const done = { base: false, steered: false };
  for (let s = 0; s < g.maxNewTokens && !(done.base && done.steered); s++) {
    for (const side of ['base', 'steered'] as const) {
      if (done[side]) continue;
      await step(ctx);
      const seq = sides[side];
      if (seq.length >= m.model.dims.nCtx) { done[side] = true; continue; }
      // One token of the library's generation (the whole sequence re-run, so that a cancel can land between tokens).
      const run = () => generateAsync(m.model, [seq], { maxNewTokens: 1, temperature: g.temperature, seed: g.seed + s, eosTokenIds: [...eos] });
      const r = await (side === 'steered' ? withInterventions(m.model, steer, run) : run());
      const id = r.newIds[0]![0]!;
      seq.push(id);
      if (eos.has(id)) done[side] = true;
      ctx.emit?.({ type: 'token', side, step: s, id, token: label(m, id) });
    }
    ctx.progress?.(s + 1, g.maxNewTokens, 'generating');
  }
  const out = (seq: number[]) => {
    const ids = seq.slice(prompt.length);
    return { ids, text: m.tokenizer.decode(ids), tokens: ids.map((i) => label(m, i)) };
  };
  const sep = sv.sweep[0]!;
  return { layer, strength, hook: steer[0]!.hook, vector_norm: l2(sv.vectors.get(layer)!), separation: sep.accuracy, base: out(sides.base), steered: out(sides.steered) };
}

/** Zero one head (hook_z) or one MLP neuron (hook_post) and report the change in the last position's logits. */
export async function ablateView(m: LabModel, a: Record<string, unknown>): Promise<Record<string, unknown>> {
  const ids = encode(m, str(a.prompt, 'prompt'));
  const { nLayers: L, nHeads: H, dMlp } = m.model.dims;
  const site = oneOf(a.site ?? 'heads', 'site', ['heads', 'neurons'] as const);
  const layer = int(a.layer, 'layer', 0, L - 1);
  if (site === 'neurons' && dMlp === 0) throw new LabRequestError('site: this model has no MLP neurons');
  const unit = int(a.unit, 'unit', 0, (site === 'heads' ? H : dMlp) - 1);
  const iv: Intervention = site === 'heads'
    ? { hook: `blocks.${layer}.attn.hook_z`, op: 'zero', unit: { heads: [unit] } }
    : { hook: `blocks.${layer}.mlp.hook_post`, op: 'zero', unit: { neurons: [unit] } };
  const lastRow = async () => {
    const lg = (await collectAsync(m.model, ids, [])).logits!;
    const V = lg.shape[2]!;
    return lg.data.slice((ids.length - 1) * V, ids.length * V);
  };
  const before = await lastRow();
  const after = await withInterventions(m.model, [iv], lastRow);
  const target = a.target === undefined ? topIndices(before, 1)[0]! : tokenArg(m, a.target, 'target');
  const pb = softmax(before);
  const pa = softmax(after);
  const top = (v: Float32Array, p: Float64Array) => topIndices(v, 5).map((id) => ({ id, token: label(m, id), prob: p[id]!, logit: v[id]! }));
  return {
    site, layer, unit, hook: iv.hook, target: { id: target, token: label(m, target) },
    logit_before: before[target]!, logit_after: after[target]!, logit_change: after[target]! - before[target]!,
    prob_before: pb[target]!, prob_after: pa[target]!, top_before: top(before, pb), top_after: top(after, pa),
  };
}

/** Activation (or attribution) patching from a corrupted into a clean prompt, metric logit(answer) − logit(wrong), a layer at a time. */
export async function patchView(m: LabModel, a: Record<string, unknown>, ctx: LabContext = {}): Promise<Record<string, unknown>> {
  const clean = encode(m, str(a.clean, 'clean'), 'clean');
  const corrupt = encode(m, str(a.corrupt, 'corrupt'), 'corrupt');
  if (clean.length !== corrupt.length) throw new LabRequestError(`clean (${clean.length} tokens) and corrupt (${corrupt.length} tokens) must have the same length`);
  const answer = tokenArg(m, a.answer, 'answer');
  const wrong = tokenArg(m, a.wrong, 'wrong');
  const site = oneOf(a.site ?? 'resid', 'site', ['resid', 'heads'] as const) as PatchSite;
  const method = oneOf(a.method ?? 'activation', 'method', ['activation', 'attribution'] as const);
  const b = m.model.backend;
  const x = tensor(clean, [1, clean.length], 'i32', { backend: b });
  const y = tensor(corrupt, [1, corrupt.length], 'i32', { backend: b });
  const metric = logitDiff(answer, wrong);
  try {
    const L = m.model.dims.nLayers;
    const rows: number[][] = [];
    let cols: string[] = [];
    let cleanMetric = 0;
    let corruptMetric = 0;
    const layers = method === 'activation' ? [...Array(L).keys()].map((l) => [l]) : [[...Array(L).keys()]];
    for (const [i, ls] of layers.entries()) {
      await step(ctx);
      const r = await (method === 'activation' ? activationPatchingAsync : attributionPatchingAsync)(m.model, x, y, metric, site, { layers: ls });
      rows.push(...r.effects.map((e) => Array.from(e)));
      cols = r.labels.cols;
      cleanMetric = r.cleanMetric;
      corruptMetric = r.corruptMetric;
      ctx.progress?.(i + 1, layers.length, 'patching');
    }
    return {
      site, method, answer: { id: answer, token: label(m, answer) }, wrong: { id: wrong, token: label(m, wrong) },
      rows: Array.from({ length: L }, (_, l) => `${l}`), cols, effects: rows, clean_metric: cleanMetric, corrupt_metric: corruptMetric,
      tokens: clean.map((i) => label(m, i)),
    };
  } finally {
    x.dispose();
    y.dispose();
  }
}

/** Runs view `name` on `m` with the request body `args`. */
export async function runView(m: LabModel, name: string, args: unknown, ctx: LabContext = {}): Promise<Record<string, unknown>> {
  const view = oneOf(name, 'view', VIEWS);
  if (args === null || typeof args !== 'object' || Array.isArray(args)) throw new LabRequestError('the request body must be a JSON object');
  const a = args as Record<string, unknown>;
  if (ctx.signal?.aborted) throw new LabCancelledError();
  switch (view) {
    case 'info': return infoView(m);
    case 'tokens': return tokensView(m, a);
    case 'attention': return attentionView(m, a, ctx);
    case 'lens': return lensView(m, a);
    case 'activations': return activationsView(m, a);
    case 'neurons': return neuronsView(m, a, ctx);
    case 'features': return featuresView(m, a, ctx);
    case 'steer': return steerView(m, a, ctx);
    case 'ablate': return ablateView(m, a);
    case 'patch': return patchView(m, a, ctx);
  }
}
