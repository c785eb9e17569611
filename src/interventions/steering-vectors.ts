// Steering vectors from contrastive data, per layer, with a sweep of how well each layer's vector
// separates the two sets. Methods:
// - 'mean_diff': the difference of the means of positive and negative activations. Contrastive
//   Activation Addition (Rimsky et al. 2024, "Steering Llama 2 via Contrastive Activation
//   Addition", ACL): A/B answers, the activation at the answer letter (their code reads
//   position −2 of "...(A)", i.e. `read: -2`) of each decoder layer's output, mean over pairs of
//   (a+ − a−), added at every position after the prompt with multipliers around ±1 (their layer
//   13 of 32 for Llama 2 7B chat). The vector keeps its natural scale.
// - 'pca_diff' / 'pca_center': as repeng (Vogel 2024, `read_representations`, default
//   'pca_diff'): the activation at each text's last token; pca_diff takes the first principal
//   component of the paired differences h+ − h− (centred, as sklearn's PCA centres), pca_center
//   that of the activations with each pair's midpoint subtracted. The direction has unit norm and
//   its sign makes positives project above their negatives in most pairs. repeng reads
//   `hidden_states[layer + 1]`, the output of block `layer` (our blocks.{layer}.hook_resid_post),
//   and by default every layer but block 0 (range(-1, -n_layers, -1)).
// - `actAdd`: Activation Addition (Turner et al. 2023, "Steering Language Models With Activation
//   Engineering"): one prompt pair ("Love" − "Hate"), the per-position difference of the
//   residual streams before a layer (blocks.{l}.hook_resid_pre; the shorter prompt padded with
//   space tokens), added with a coefficient (their example: layer 6, c = 5, GPT-2-XL) at the
//   first positions of the prompt.
// Not for: reading JSONL (contrastive.ts) or applying vectors (apply.ts; vectors become plain
// 'add' interventions).
import { runWithCache } from '../hooks/run.js';
import { tensor } from '../ops/creation.js';
import { readAsync, readSync, type Reads } from '../tensor/read.js';
import type { CausalLM } from '../models/model.js';
import type { Tokenizer } from '../tokenizer/tokenizer.js';
import { checkContrastSet, encodeText, type ContrastSet, type EncodedText } from './contrastive.js';
import { InterventionError, type Intervention, type PositionSpec } from './intervention.js';

export type SteeringMethod = 'mean_diff' | 'pca_diff' | 'pca_center';
export const STEERING_METHODS: readonly SteeringMethod[] = ['mean_diff', 'pca_diff', 'pca_center'];
/** Which token's activation represents a text: its last token, the mean over its answer tokens, or an index (negative from the end). */
export type ReadPosition = 'last' | 'mean' | number;

export interface SteeringVectorOptions {
  /** Blocks to compute vectors for (default: every block). */
  layers?: number[];
  /** The hook point, with `{layer}` for the block number (default 'blocks.{layer}.hook_resid_post'). */
  hook?: string;
  method?: SteeringMethod;
  read?: ReadPosition;
  /** Texts per forward pass (left-padded; default 16). */
  batchSize?: number;
}

/** How well one layer's vector separates the two sets (projections onto the unit direction). */
export interface LayerSeparation {
  layer: number;
  hook: string;
  /** Paired: fraction of pairs whose positive projects above its negative; unpaired: the AUC. */
  accuracy: number;
  /** The same for vectors computed on one half of the data and scored on the other (2-fold); null with fewer than 4 items. */
  heldOutAccuracy: number | null;
  /** (mean+ − mean−) / pooled standard deviation of the projections. */
  cohenD: number;
  /** |mean(h+) − mean(h−)|, and the mean norm of the activations (for choosing strengths). */
  diffNorm: number;
  activationNorm: number;
  /** PCA methods: the share of variance the first component explains. */
  explainedVariance?: number;
}

export interface SteeringVectors {
  method: SteeringMethod;
  read: ReadPosition;
  /** The hook template ('blocks.{layer}.hook_resid_post'). */
  hook: string;
  dModel: number;
  vectors: Map<number, Float32Array>;
  sweep: LayerSeparation[];
}

export const DEFAULT_STEERING_HOOK = 'blocks.{layer}.hook_resid_post';

export function hookFor(template: string, layer: number): string {
  return template.replaceAll('{layer}', String(layer));
}

/**
 * The activation of each text at `hooks` (one row of d_model per text and hook), read at `read`.
 * Texts run in left-padded batches, so every text's last token sits at the last position.
 */
export function collectActivations(model: CausalLM, texts: EncodedText[], hooks: string[], read: ReadPosition, batchSize = 16): Map<string, Float32Array[]> {
  return readSync(collectActivationsReads(model, texts, hooks, read, batchSize));
}

/** `collectActivations` as a read step (src/tensor/read.ts): runs on every backend through readAsync. */
function* collectActivationsReads(model: CausalLM, texts: EncodedText[], hooks: string[], read: ReadPosition, batchSize = 16): Reads<Map<string, Float32Array[]>> {
  const out = new Map<string, Float32Array[]>(hooks.map((h) => [h, []]));
  for (let s = 0; s < texts.length; s += batchSize) {
    const batch = texts.slice(s, s + batchSize);
    const P = Math.max(...batch.map((t) => t.ids.length));
    const ids = batch.flatMap((t) => [...new Array<number>(P - t.ids.length).fill(t.ids[0]!), ...t.ids]);
    const mask = batch.map((t) => [...new Array<number>(P - t.ids.length).fill(0), ...t.ids.map(() => 1)]);
    const input = tensor(ids, [batch.length, P], 'i32', { backend: model.backend });
    const { logits, cache } = runWithCache(model, input, { names: hooks, attentionMask: batch.length > 1 ? mask : undefined });
    logits.dispose();
    input.dispose();
    try {
      for (const h of hooks) {
        const t = cache.get(h);
        if (t.rank !== 3) throw new InterventionError(`steering vectors read [batch, pos, d] hook points; '${h}' is ${t.rank}-D`);
        const D = t.shape[2]!;
        const all = (yield t) as Float32Array;
        batch.forEach((tx, b) => {
          const off = P - tx.ids.length;
          const row = (j: number) => all.subarray((b * P + off + j) * D, (b * P + off + j + 1) * D);
          const n = tx.ids.length;
          if (read === 'last') out.get(h)!.push(Float32Array.from(row(n - 1)));
          else if (read === 'mean') {
            const acc = new Float32Array(D);
            for (let j = tx.answerStart; j < n; j++) { const r = row(j); for (let i = 0; i < D; i++) acc[i]! += r[i]!; }
            for (let i = 0; i < D; i++) acc[i]! /= n - tx.answerStart;
            out.get(h)!.push(acc);
          } else {
            const j = read < 0 ? n + read : read;
            if (j < 0 || j >= n) throw new InterventionError(`read position ${read} is outside a text of ${n} tokens`);
            out.get(h)!.push(Float32Array.from(row(j)));
          }
        });
      }
    } finally {
      cache.dispose();
    }
  }
  return out;
}

const dot = (a: ArrayLike<number>, b: ArrayLike<number>) => { let s = 0; for (let i = 0; i < a.length; i++) s += a[i]! * b[i]!; return s; };
const norm = (a: ArrayLike<number>) => Math.sqrt(dot(a, a));

function meanRows(rows: Float32Array[]): Float64Array {
  const m = new Float64Array(rows[0]!.length);
  for (const r of rows) for (let i = 0; i < m.length; i++) m[i]! += r[i]!;
  for (let i = 0; i < m.length; i++) m[i]! /= rows.length;
  return m;
}

/**
 * The first principal component of `rows` (centred first, as sklearn's PCA does) by power
 * iteration, with the share of variance it explains. Hand-written: no maintained JS linear algebra
 * package does a plain PCA on Float32 rows without pulling a large dependency, and one
 * component needs only repeated products with the data matrix.
 */
export function firstPrincipalComponent(rows: Float32Array[]): { direction: Float32Array; explained: number } {
  const n = rows.length;
  const d = rows[0]!.length;
  const mu = meanRows(rows);
  const X = rows.map((r) => Float64Array.from(r, (x, i) => x - mu[i]!));
  const total = X.reduce((s, r) => s + dot(r, r), 0);
  if (n < 2 || total === 0) throw new InterventionError(`PCA needs at least 2 distinct rows (got ${n}${n >= 2 ? ', all equal' : ''})`);
  // Start from the row of largest norm (deterministic, never orthogonal to the data).
  let v = Float64Array.from(X.reduce((a, b) => (dot(a, a) >= dot(b, b) ? a : b)));
  let lambda = 0;
  for (let it = 0; it < 1000; it++) {
    const w = new Float64Array(d);
    for (const r of X) { const c = dot(r, v); for (let i = 0; i < d; i++) w[i]! += c * r[i]!; }
    const nw = norm(w);
    if (nw === 0) break;
    for (let i = 0; i < d; i++) w[i]! /= nw;
    const change = Math.abs(1 - Math.abs(dot(w, v) / (norm(v) || 1)));
    v = w;
    lambda = nw;
    if (change < 1e-13) break;
  }
  return { direction: Float32Array.from(v), explained: lambda / total };
}

/** A unit direction or a raw vector for one layer from positive and negative rows. */
function direction(method: SteeringMethod, pos: Float32Array[], neg: Float32Array[], paired: boolean): { v: Float32Array; explained?: number } {
  if (method === 'mean_diff') {
    const a = meanRows(pos);
    const b = meanRows(neg);
    return { v: Float32Array.from(a, (x, i) => x - b[i]!) };
  }
  if (!paired) throw new InterventionError(`${method} needs paired items ({positive, negative} per line); unpaired texts take mean_diff`);
  if (pos.length < 2) throw new InterventionError(`${method} needs at least 2 pairs, got ${pos.length}`);
  let train: Float32Array[];
  if (method === 'pca_diff') train = pos.map((p, i) => Float32Array.from(p, (x, j) => x - neg[i]![j]!));
  else {
    train = [];
    pos.forEach((p, i) => {
      const c = Float32Array.from(p, (x, j) => (x + neg[i]![j]!) / 2);
      train.push(Float32Array.from(p, (x, j) => x - c[j]!), Float32Array.from(neg[i]!, (x, j) => x - c[j]!));
    });
  }
  const { direction: v, explained } = firstPrincipalComponent(train);
  // repeng's sign: positives should project above their negatives in most pairs.
  let above = 0;
  let below = 0;
  pos.forEach((p, i) => { const d = dot(p, v) - dot(neg[i]!, v); if (d > 0) above++; else if (d < 0) below++; });
  if (below > above) for (let i = 0; i < v.length; i++) v[i] = -v[i]!;
  return { v, explained };
}

/** Fraction of pairs (paired) or of all positive × negative pairs (AUC) ordered correctly; ties count half. */
function separation(pp: number[], pn: number[], paired: boolean): number {
  let good = 0;
  let n = 0;
  const cmp = (a: number, b: number) => (a > b ? 1 : a === b ? 0.5 : 0);
  if (paired) pp.forEach((a, i) => { good += cmp(a, pn[i]!); n++; });
  else for (const a of pp) for (const b of pn) { good += cmp(a, b); n++; }
  return good / n;
}

function cohenD(a: number[], b: number[]): number {
  const m = (x: number[]) => x.reduce((s, y) => s + y, 0) / x.length;
  const v = (x: number[], mu: number) => x.reduce((s, y) => s + (y - mu) ** 2, 0) / Math.max(1, x.length - 1);
  const ma = m(a);
  const mb = m(b);
  const sd = Math.sqrt((v(a, ma) * (a.length - 1) + v(b, mb) * (b.length - 1)) / Math.max(1, a.length + b.length - 2));
  return sd === 0 ? (ma === mb ? 0 : Math.sign(ma - mb) * Infinity) : (ma - mb) / sd;
}

/** Steering vectors for each layer from a contrastive set, with the layer sweep. */
export function steeringVectors(model: CausalLM, tok: Tokenizer, set: ContrastSet, o: SteeringVectorOptions = {}): SteeringVectors {
  return readSync(steeringVectorsReads(model, tok, set, o));
}

/** `steeringVectors` on any backend (WebGPU included): the activations are read asynchronously. */
export function steeringVectorsAsync(model: CausalLM, tok: Tokenizer, set: ContrastSet, o: SteeringVectorOptions = {}): Promise<SteeringVectors> {
  return readAsync(steeringVectorsReads(model, tok, set, o));
}

function* steeringVectorsReads(model: CausalLM, tok: Tokenizer, set: ContrastSet, o: SteeringVectorOptions): Reads<SteeringVectors> {
  checkContrastSet(set);
  const L = model.dims.nLayers;
  const layers = o.layers ?? [...Array(L).keys()];
  for (const l of layers) if (!Number.isInteger(l) || l < 0 || l >= L) throw new InterventionError(`layer ${l} is out of range; this ${model.dims.arch} model has ${L} blocks (0–${L - 1})`);
  const method = o.method ?? 'mean_diff';
  if (!STEERING_METHODS.includes(method)) throw new InterventionError(`unknown steering method '${method}' (one of ${STEERING_METHODS.join(', ')})`);
  const read = o.read ?? 'last';
  const template = o.hook ?? DEFAULT_STEERING_HOOK;
  const hooks = layers.map((l) => hookFor(template, l));
  const known = new Set(model.hookPoints().map((h) => h.name));
  for (const h of hooks) if (!known.has(h)) throw new InterventionError(`no hook point '${h}' in this ${model.dims.arch} model (hook template '${template}')`);
  const paired = set.positives.length === 0 && set.negatives.length === 0;
  if (!paired && set.pairs.length > 0 && method !== 'mean_diff') throw new InterventionError(`${method} needs every item paired; this set mixes pairs and unpaired texts`);
  const posTexts = [...set.pairs.map((p) => encodeText(tok, p.positive, p.prompt)), ...set.positives.map((t) => encodeText(tok, t))];
  const negTexts = [...set.pairs.map((p) => encodeText(tok, p.negative, p.prompt)), ...set.negatives.map((t) => encodeText(tok, t))];
  const acts = yield* collectActivationsReads(model, [...posTexts, ...negTexts], hooks, read, o.batchSize);
  const vectors = new Map<number, Float32Array>();
  const sweep: LayerSeparation[] = [];
  layers.forEach((l, k) => {
    const rows = acts.get(hooks[k]!)!;
    const pos = rows.slice(0, posTexts.length);
    const neg = rows.slice(posTexts.length);
    const { v, explained } = direction(method, pos, neg, paired);
    vectors.set(l, v);
    const u = v.map((x) => x / (norm(v) || 1));
    const pp = pos.map((r) => dot(r, u));
    const pn = neg.map((r) => dot(r, u));
    let heldOut: number | null = null;
    if (Math.min(pos.length, neg.length) >= 4 && (method === 'mean_diff' || pos.length >= 4)) {
      const half = (xs: Float32Array[], f: number) => xs.filter((_, i) => i % 2 === f);
      let sum = 0;
      for (const f of [0, 1]) {
        const d = direction(method, half(pos, f), half(neg, f), paired).v;
        sum += separation(half(pos, 1 - f).map((r) => dot(r, d)), half(neg, 1 - f).map((r) => dot(r, d)), paired);
      }
      heldOut = sum / 2;
    }
    const mn = meanRows(neg);
    const md = meanRows(pos).map((x, i) => x - mn[i]!);
    sweep.push({
      layer: l, hook: hooks[k]!, accuracy: separation(pp, pn, paired), heldOutAccuracy: heldOut, cohenD: cohenD(pp, pn),
      diffNorm: norm(md), activationNorm: rows.reduce((s, r) => s + norm(r), 0) / rows.length,
      ...(explained !== undefined ? { explainedVariance: explained } : {}),
    });
  });
  return { method, read, hook: template, dModel: model.dims.dModel, vectors, sweep };
}

/** The 'add' intervention of one layer's vector at `strength` (default: every position). */
export function steeringIntervention(sv: { hook: string; vectors: Map<number, Float32Array> }, layer: number, strength: number, positions: PositionSpec = 'all'): Intervention {
  const v = sv.vectors.get(layer);
  if (!v) throw new InterventionError(`no steering vector for layer ${layer} (have ${[...sv.vectors.keys()].join(', ') || 'none'})`);
  if (!Number.isFinite(strength)) throw new InterventionError(`strength must be a finite number, got ${strength}`);
  return { hook: hookFor(sv.hook, layer), op: 'add', vector: v, strength, ...(positions === 'all' ? {} : { positions }) };
}

/**
 * ActAdd: the per-position difference of the residual before `layer` between two prompts, as one
 * 'add' intervention per position (coefficient × difference at positions 0..n−1).
 */
export function actAdd(model: CausalLM, tok: Tokenizer, positive: string, negative: string, o: { layer: number; coefficient: number; hook?: string }): Intervention[] {
  const L = model.dims.nLayers;
  if (!Number.isInteger(o.layer) || o.layer < 0 || o.layer >= L) throw new InterventionError(`layer ${o.layer} is out of range; this ${model.dims.arch} model has ${L} blocks (0–${L - 1})`);
  if (!Number.isFinite(o.coefficient)) throw new InterventionError(`coefficient must be a finite number, got ${o.coefficient}`);
  if (positive === '' || negative === '') throw new InterventionError('ActAdd needs a non-empty positive and negative prompt');
  const hook = hookFor(o.hook ?? 'blocks.{layer}.hook_resid_pre', o.layer);
  const a = tok.encode(positive);
  const b = tok.encode(negative);
  const space = tok.encode(' ', { addSpecialTokens: false }).at(-1) ?? tok.eosId ?? 0;
  const n = Math.max(a.length, b.length);
  const padded = [a, b].map((x) => [...x, ...new Array<number>(n - x.length).fill(space)]);
  const ids = tensor(padded.flat(), [2, n], 'i32', { backend: model.backend });
  const { logits, cache } = runWithCache(model, ids, { names: [hook] });
  logits.dispose();
  ids.dispose();
  const h = cache.get(hook).dataSync() as Float32Array;
  cache.dispose();
  const D = model.dims.dModel;
  return Array.from({ length: n }, (_, p) => ({
    hook, op: 'add' as const, positions: [p], strength: o.coefficient,
    vector: Array.from({ length: D }, (_, i) => h[p * D + i]! - h[(n + p) * D + i]!),
  }));
}
