// Ablation sweeps: the effect on a metric of ablating each unit in turn (every attention head,
// MLP neuron, whole block or MoE expert), as TransformerLens-style zero / mean / resample
// ablation. Each ablation is an intervention list, so a method is a function from (site, layer,
// unit, dataset statistics) to interventions; `registerAblationMethod` adds more (e.g. CAMA).
//   zero:     the unit's activation set to 0
//   mean:     set to its mean over every token of the dataset (Wang et al. 2022, IOI: mean ablation)
//   resample: set to the activation of a random other token of the dataset (resampling ablation,
//             Chan et al. 2022, causal scrubbing), chosen by a hash of (seed, row, position)
// Sites and the hook points they act on:
//   heads    blocks.L.attn.hook_z            unit { heads: [h] }
//   neurons  blocks.L.mlp.hook_post          unit { neurons: [n] }
//   layers   blocks.L.hook_attn_out and blocks.L.hook_mlp_out (the block's whole contribution)
//   experts  blocks.L.mlp.experts.E.hook_post (the expert's output for its routed tokens)
// Metrics, on the last position of each prompt (or every position of a text, for loss):
//   logit-diff  logit(answer) − logit(wrong);  loss  cross-entropy;  accuracy  argmax == answer.
import type { HookFilter, HookFn } from '../models/hook-point.js';
import { runWithCache } from '../hooks/run.js';
import { tensor } from '../ops/creation.js';
import type { CausalLM } from '../models/model.js';
import type { Tokenizer } from '../tokenizer/tokenizer.js';
import { withInterventions } from './apply.js';
import { InterventionError, type Intervention } from './intervention.js';
import type { DenseVector } from './vector-ref.js';
import { camaAblation } from './cama.js';

export type AblationSite = 'heads' | 'neurons' | 'layers' | 'experts';
export const ABLATION_SITES: readonly AblationSite[] = ['heads', 'neurons', 'layers', 'experts'];
export type AblationMetric = 'logit-diff' | 'loss' | 'accuracy';
export const ABLATION_METRICS: readonly AblationMetric[] = ['logit-diff', 'loss', 'accuracy'];

/** One evaluation item: a prompt with its answer (and competing) token, or a text scored everywhere. */
export interface AblationItem {
  ids: number[];
  answer?: number;
  wrong?: number;
}

/** What a method may use: the dataset's mean and stored rows at each hook of the sweep. */
export interface AblationStats {
  mean: Map<string, DenseVector>;
  source: Map<string, DenseVector>;
}

export interface AblationUnit {
  site: AblationSite;
  layer: number;
  /** Head, neuron or expert index; 0 for a layer. */
  unit: number;
  /** The hook points the site acts on. */
  hooks: string[];
}

/**
 * An ablation method: interventions for a unit (zero, mean, resample), or, for methods that
 * depend on each input (context-aware ones), hooks made per evaluation batch from its token rows.
 */
export interface AblationMethod {
  /** Dataset statistics the method needs (computed once, before the sweep). */
  needs: ('mean' | 'source')[];
  /** Once before the sweep: the method's own state from the data (e.g. a table of context means). */
  prepare?(model: CausalLM, items: AblationItem[], hooks: string[]): unknown;
  interventions?(u: AblationUnit, stats: AblationStats, model: CausalLM): Intervention[];
  /** Hooks for one batch; `ids` are its rows, left-padded to one length with each row's first token. */
  hooks?(u: AblationUnit, c: { model: CausalLM; stats: AblationStats; state: unknown; ids: number[][] }): [HookFilter, HookFn][];
}

function unitSpec(u: AblationUnit): Intervention['unit'] {
  if (u.site === 'heads') return { heads: [u.unit] };
  if (u.site === 'neurons') return { neurons: [u.unit] };
  return undefined;
}

const METHODS = new Map<string, AblationMethod>([
  ['zero', { needs: [], interventions: (u) => u.hooks.map((hook) => ({ hook, op: 'zero', ...(unitSpec(u) ? { unit: unitSpec(u) } : {}) }) as Intervention) }],
  ['mean', {
    needs: ['mean'],
    interventions: (u, s) => u.hooks.map((hook) => ({ hook, op: 'mean', value: s.mean.get(hook)!, ...(unitSpec(u) ? { unit: unitSpec(u) } : {}) }) as Intervention),
  }],
  ['resample', {
    needs: ['source'],
    interventions: (u, s) => u.hooks.map((hook) => ({ hook, op: 'resample', source: s.source.get(hook)!, seed: u.layer * 65536 + u.unit, ...(unitSpec(u) ? { unit: unitSpec(u) } : {}) }) as Intervention),
  }],
]);

// Context-aware mean ablation ("All for One", src/interventions/cama.ts): per-token means, made per batch.
METHODS.set('cama', camaAblation);

/** Adds an ablation method (by name) for `ablationSweep` and `actlab ablate --method NAME`. */
export function registerAblationMethod(name: string, m: AblationMethod): void {
  METHODS.set(name, m);
}

export function ablationMethods(): string[] {
  return [...METHODS.keys()];
}

/** The hook points of a site at one layer, and how many units it has. */
export function siteHooks(model: CausalLM, site: AblationSite, layer: number): { hooks: (unit: number) => string[]; units: number } {
  const d = model.dims;
  const b = `blocks.${layer}`;
  switch (site) {
    case 'heads': return { hooks: () => [`${b}.attn.hook_z`], units: d.nHeads };
    case 'neurons':
      if (d.nExperts) throw new InterventionError(`site 'neurons' needs dense MLP blocks; this ${d.arch} model has experts (use --site experts)`);
      if (!d.dMlp) throw new InterventionError(`this ${d.arch} model has no MLP neurons`);
      return { hooks: () => [`${b}.mlp.hook_post`], units: d.dMlp };
    case 'layers': return { hooks: () => [`${b}.hook_attn_out`, `${b}.hook_mlp_out`], units: 1 };
    case 'experts':
      if (!d.nExperts) throw new InterventionError(`site 'experts' needs a mixture-of-experts model; this ${d.arch} model has none`);
      return { hooks: (e) => [`${b}.mlp.experts.${e}.hook_post`], units: d.nExperts };
  }
}

/**
 * Parses ablation data: JSONL of {prompt, answer, wrong?} or {text}, or plain text (one item per
 * line); or, without a tokenizer, {ids: [...], answer: id, wrong: id} with token ids.
 */
export function parseAblationData(text: string, tok: Tokenizer | undefined, where = 'data'): AblationItem[] {
  const items: AblationItem[] = [];
  // The answer's first token as the model reads it after the prompt (tokenizers such as
  // SentencePiece merge across the boundary, so the answer is not encoded on its own).
  const encode = (s: string, at: string) => {
    if (!tok) throw new InterventionError(`${at}: text needs a tokenizer (give {"ids": [...], "answer": id, "wrong": id} or a model with a tokenizer)`);
    return tok.encode(s);
  };
  const next = (prompt: number[], text: string, s: string, field: string, at: string) => {
    const ids = encode(text + s, at);
    let k = 0;
    while (k < prompt.length && k < ids.length && ids[k] === prompt[k]) k++;
    if (k >= ids.length) throw new InterventionError(`${at}: '${field}' ${JSON.stringify(s)} adds no token to the prompt`);
    return ids[k]!;
  };
  text.split(/\r?\n/).forEach((line, i) => {
    const s = line.trim();
    if (s === '' || s.startsWith('#')) return;
    const at = `${where}:${i + 1}`;
    if (!s.startsWith('{')) {
      items.push({ ids: encode(s, at) });
      return;
    }
    let o: Record<string, unknown>;
    try {
      o = JSON.parse(s);
    } catch (e) {
      throw new InterventionError(`${at}: not valid JSON (${(e as Error).message})`);
    }
    if (typeof o.text === 'string' && o.text !== '') { items.push({ ids: encode(o.text, at) }); return; }
    if (Array.isArray(o.ids)) {
      const id = (v: unknown, f: string) => {
        if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) throw new InterventionError(`${at}: '${f}' must be a token id, got ${JSON.stringify(v)}`);
        return v;
      };
      const item: AblationItem = { ids: o.ids.map((v, k) => id(v, `ids[${k}]`)) };
      if (o.answer !== undefined) item.answer = id(o.answer, 'answer');
      if (o.wrong !== undefined) item.wrong = id(o.wrong, 'wrong');
      items.push(item);
      return;
    }
    if (typeof o.prompt !== 'string' || o.prompt === '') throw new InterventionError(`${at}: expected {"prompt", "answer", "wrong"}, {"text"} or {"ids", "answer", "wrong"}, got keys ${Object.keys(o).join(', ')}`);
    if (typeof o.answer !== 'string' || o.answer === '') throw new InterventionError(`${at}: 'answer' must be a non-empty string`);
    const ids = encode(o.prompt, at);
    const item: AblationItem = { ids, answer: next(ids, o.prompt, o.answer, 'answer', at) };
    if (o.wrong !== undefined) {
      if (typeof o.wrong !== 'string' || o.wrong === '') throw new InterventionError(`${at}: 'wrong' must be a non-empty string`);
      item.wrong = next(ids, o.prompt, o.wrong, 'wrong', at);
      if (item.wrong === item.answer) throw new InterventionError(`${at}: 'answer' and 'wrong' start with the same token (${item.answer}), so their logit difference is 0`);
    }
    items.push(item);
  });
  if (items.length === 0) throw new InterventionError(`${where}: no items`);
  return items;
}

function checkItems(items: AblationItem[], metric: AblationMetric, model: CausalLM): void {
  if (items.length === 0) throw new InterventionError('ablation: no data items');
  const V = model.dims.vocabSize;
  items.forEach((it, i) => {
    if (it.ids.length === 0) throw new InterventionError(`item ${i + 1}: no tokens`);
    for (const t of [...it.ids, it.answer ?? 0, it.wrong ?? 0]) if (t >= V) throw new InterventionError(`item ${i + 1}: token id ${t} is past the vocabulary (${V})`);
    if (it.ids.length > model.dims.nCtx) throw new InterventionError(`item ${i + 1}: ${it.ids.length} tokens, past the model's context of ${model.dims.nCtx}`);
    if (metric === 'logit-diff' && (it.answer === undefined || it.wrong === undefined)) throw new InterventionError(`item ${i + 1}: metric logit-diff needs {"prompt", "answer", "wrong"}`);
    if (metric === 'accuracy' && it.answer === undefined) throw new InterventionError(`item ${i + 1}: metric accuracy needs {"prompt", "answer"}`);
    if (metric === 'loss' && it.answer === undefined && it.ids.length < 2) throw new InterventionError(`item ${i + 1}: a text needs 2 tokens or more for the loss`);
  });
}

/** Left-padded batches of items (each item's last token at the last position). */
function batches(items: AblationItem[], size: number): { items: AblationItem[]; ids: number[]; mask: number[][]; P: number }[] {
  const out = [];
  for (let s = 0; s < items.length; s += size) {
    const part = items.slice(s, s + size);
    const P = Math.max(...part.map((it) => it.ids.length));
    out.push({
      items: part, P,
      ids: part.flatMap((it) => [...new Array<number>(P - it.ids.length).fill(it.ids[0]!), ...it.ids]),
      mask: part.map((it) => [...new Array<number>(P - it.ids.length).fill(0), ...it.ids.map(() => 1)]),
    });
  }
  return out;
}

/**
 * The metric over every item (averaged over items; a text's loss averages its tokens first).
 * `hooksFor` gives hooks for each batch from its (left-padded) token rows.
 */
export function evaluateMetric(
  model: CausalLM, items: AblationItem[], metric: AblationMetric, batchSize = 32, hooksFor?: (ids: number[][]) => [HookFilter, HookFn][],
): number {
  let total = 0;
  for (const b of batches(items, batchSize)) {
    const input = tensor(b.ids, [b.items.length, b.P], 'i32', { backend: model.backend });
    const rows = Array.from({ length: b.items.length }, (_, r) => b.ids.slice(r * b.P, (r + 1) * b.P));
    const fwd = () => model.forward(input, { attentionMask: b.items.length > 1 ? b.mask : undefined });
    const logits = hooksFor ? model.withHooks(hooksFor(rows), fwd) : fwd();
    input.dispose();
    const l = logits.dataSync() as Float32Array;
    logits.dispose();
    const V = model.dims.vocabSize;
    b.items.forEach((it, r) => {
      const row = (p: number) => l.subarray((r * b.P + p) * V, (r * b.P + p + 1) * V);
      const last = row(b.P - 1);
      if (metric === 'logit-diff') total += last[it.answer!]! - last[it.wrong!]!;
      else if (metric === 'accuracy') total += argmax(last) === it.answer ? 1 : 0;
      else if (it.answer !== undefined) total += nll(last, it.answer);
      else {
        const off = b.P - it.ids.length;
        let s = 0;
        for (let j = 0; j + 1 < it.ids.length; j++) s += nll(row(off + j), it.ids[j + 1]!);
        total += s / (it.ids.length - 1);
      }
    });
  }
  return total / items.length;
}

function argmax(x: Float32Array): number {
  let best = 0;
  for (let i = 1; i < x.length; i++) if (x[i]! > x[best]!) best = i;
  return best;
}

function nll(x: Float32Array, target: number): number {
  let m = -Infinity;
  for (const v of x) m = Math.max(m, v);
  let s = 0;
  for (const v of x) s += Math.exp(v - m);
  return Math.log(s) + m - x[target]!;
}

/**
 * The mean over every real token of the data at each hook (feature-shaped), and up to `maxRows`
 * stored rows (evenly spaced; default 2048, 0 for none) for resampling.
 */
export function datasetStats(model: CausalLM, items: AblationItem[], hooks: string[], o: { maxRows?: number; batchSize?: number } = {}): AblationStats {
  const maxRows = o.maxRows ?? 2048;
  const sums = new Map<string, { sum: Float64Array; n: number; rows: Float32Array[]; feat: number[] }>();
  for (const b of batches(items, o.batchSize ?? 32)) {
    const input = tensor(b.ids, [b.items.length, b.P], 'i32', { backend: model.backend });
    const { logits, cache } = runWithCache(model, input, { names: hooks, attentionMask: b.items.length > 1 ? b.mask : undefined });
    logits.dispose();
    input.dispose();
    for (const h of hooks) {
      if (!cache.has(h)) continue; // an expert that no token was routed to
      const t = cache.get(h);
      const expert = /\.experts\.\d+\./.test(h);
      const feat = expert ? t.shape.slice(1) : t.shape.slice(2);
      const F = feat.reduce((a, c) => a * c, 1);
      const d = t.dataSync() as Float32Array;
      let e = sums.get(h);
      if (!e) { e = { sum: new Float64Array(F), n: 0, rows: [], feat }; sums.set(h, e); }
      const take = (off: number) => {
        const r = d.subarray(off * F, (off + 1) * F);
        for (let i = 0; i < F; i++) e!.sum[i]! += r[i]!;
        e!.n++;
        if (maxRows > 0) e!.rows.push(Float32Array.from(r));
      };
      if (expert) for (let i = 0; i < t.shape[0]!; i++) take(i);
      else b.items.forEach((it, r) => { for (let j = b.P - it.ids.length; j < b.P; j++) take(r * b.P + j); });
    }
    cache.dispose();
  }
  const stats: AblationStats = { mean: new Map(), source: new Map() };
  for (const h of hooks) {
    const e = sums.get(h);
    if (!e || e.n === 0) continue;
    stats.mean.set(h, { shape: e.feat, data: Float32Array.from(e.sum, (x) => x / e.n) });
    if (maxRows === 0) continue;
    const step = Math.max(1, Math.ceil(e.rows.length / maxRows));
    const kept = e.rows.filter((_, i) => i % step === 0);
    const F = e.sum.length;
    const data = new Float32Array(kept.length * F);
    kept.forEach((r, i) => data.set(r, i * F));
    stats.source.set(h, { shape: [kept.length, ...e.feat], data });
  }
  return stats;
}

export interface AblationResult {
  site: AblationSite;
  method: string;
  metric: AblationMetric;
  /** The metric without ablation. */
  clean: number;
  layers: number[];
  /** Per layer (in `layers` order), per unit: metric with the unit ablated, and its effect (ablated − clean). */
  effects: { layer: number; unit: number; metric: number; effect: number }[];
}

export interface AblationOptions {
  site: AblationSite;
  method: string;
  metric: AblationMetric;
  layers?: number[];
  /** Restrict the units of each layer (default: every one). */
  units?: number[];
  batchSize?: number;
  onProgress?: (done: number, total: number) => void;
}

/** Ablates each unit in turn and measures the metric over the data. */
export function ablationSweep(model: CausalLM, items: AblationItem[], o: AblationOptions): AblationResult {
  if (!ABLATION_SITES.includes(o.site)) throw new InterventionError(`unknown site '${o.site}' (one of ${ABLATION_SITES.join(', ')})`);
  if (!ABLATION_METRICS.includes(o.metric)) throw new InterventionError(`unknown metric '${o.metric}' (one of ${ABLATION_METRICS.join(', ')})`);
  const method = METHODS.get(o.method);
  if (!method) throw new InterventionError(`unknown ablation method '${o.method}' (one of ${ablationMethods().join(', ')})`);
  checkItems(items, o.metric, model);
  const L = model.dims.nLayers;
  const layers = o.layers ?? [...Array(L).keys()];
  for (const l of layers) if (!Number.isInteger(l) || l < 0 || l >= L) throw new InterventionError(`layer ${l} is out of range; this ${model.dims.arch} model has ${L} blocks (0–${L - 1})`);
  const plan: AblationUnit[] = [];
  for (const layer of layers) {
    const s = siteHooks(model, o.site, layer);
    const units = o.units ?? [...Array(s.units).keys()];
    for (const u of units) {
      if (!Number.isInteger(u) || u < 0 || u >= s.units) throw new InterventionError(`unit ${u} is out of range for site '${o.site}' (${s.units} per layer: 0–${s.units - 1})`);
      plan.push({ site: o.site, layer, unit: u, hooks: s.hooks(u) });
    }
  }
  const allHooks = [...new Set(plan.flatMap((p) => p.hooks))];
  const stats: AblationStats = method.needs.length
    ? datasetStats(model, items, allHooks, { batchSize: o.batchSize, maxRows: method.needs.includes('source') ? undefined : 0 })
    : { mean: new Map(), source: new Map() };
  if (!method.interventions && !method.hooks) throw new InterventionError(`ablation method '${o.method}' gives neither interventions nor hooks`);
  const state = method.prepare?.(model, items, allHooks);
  const clean = evaluateMetric(model, items, o.metric, o.batchSize);
  const effects: AblationResult['effects'] = [];
  plan.forEach((u, i) => {
    const present = u.hooks.filter((h) => !method.needs.length || stats.mean.has(h));
    let m = clean;
    if (present.length && method.interventions) {
      const ivs = method.interventions({ ...u, hooks: present }, stats, model);
      m = withInterventions(model, ivs, () => evaluateMetric(model, items, o.metric, o.batchSize));
    } else if (present.length) {
      m = evaluateMetric(model, items, o.metric, o.batchSize, (ids) => method.hooks!({ ...u, hooks: present }, { model, stats, state, ids }));
    }
    effects.push({ layer: u.layer, unit: u.unit, metric: m, effect: m - clean });
    o.onProgress?.(i + 1, plan.length);
  });
  return { site: o.site, method: o.method, metric: o.metric, clean, layers, effects };
}
