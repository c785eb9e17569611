// Representational similarity between two activation matrices X [stimuli, units_x] and
// Y [stimuli, units_y] (same stimuli, in the same order):
//   linear CKA (Kornblith et al. 2019, "Similarity of Neural Network Representations Revisited"):
//     ‖YᵀX‖²_F / (‖XᵀX‖_F ‖YᵀY‖_F) on column-centred X, Y;
//   RSA (Kriegeskorte et al. 2008, "Representational similarity analysis"): Spearman correlation of
//     the upper triangles of the two dissimilarity matrices (1 − Pearson r between stimuli);
//   SVCCA (Raghu et al. 2017): SVD of each keeping 99% of the variance, then CCA; the mean
//     canonical correlation.
// With subsampling of units and stimuli, repeated with a seed, as the mouse visual cortex paper
// (Shi, Shea-Brown & Buice 2019, "Comparison against task driven artificial neural networks
// reveals functional properties in mouse visual cortex") compares networks with recordings.
// Also: every layer against every layer, two models layer by layer, a model against a recording.
import type { CausalLM } from '../models/model.js';
import { blockNames, collect, collectAsync, type HostActs } from './acts.js';
import { mean, sd, SeededRandom, spearman, symmetricEigen } from './stats.js';
import { parseMatrixFile } from './matrix-file.js';
import type { Analysis } from './registry.js';
import type { LoadedModel } from '../models/load.js';

/** A row-major [rows, cols] matrix (rows = stimuli). */
export interface Matrix {
  data: Float64Array | Float32Array;
  rows: number;
  cols: number;
}

export type SimilarityMethod = 'cka' | 'rsa' | 'svcca';
export const SIMILARITY_METHODS: SimilarityMethod[] = ['cka', 'rsa', 'svcca'];

function centred(m: Matrix): Float64Array {
  const { rows: n, cols: p } = m;
  const out = Float64Array.from(m.data);
  for (let j = 0; j < p; j++) {
    let s = 0;
    for (let i = 0; i < n; i++) s += out[i * p + j]!;
    s /= n;
    for (let i = 0; i < n; i++) out[i * p + j]! -= s;
  }
  return out;
}

/** AᵀB for A [n, p], B [n, q] -> [p, q]. */
function crossProduct(a: Float64Array, p: number, b: Float64Array, q: number, n: number): Float64Array {
  const out = new Float64Array(p * q);
  for (let i = 0; i < n; i++) {
    for (let x = 0; x < p; x++) {
      const ax = a[i * p + x]!;
      if (ax === 0) continue;
      for (let y = 0; y < q; y++) out[x * q + y]! += ax * b[i * q + y]!;
    }
  }
  return out;
}

function frob2(m: Float64Array): number {
  let s = 0;
  for (const v of m) s += v * v;
  return s;
}

function checkPair(x: Matrix, y: Matrix): void {
  if (x.rows !== y.rows) throw new Error(`similarity: the two matrices have ${x.rows} and ${y.rows} stimuli (rows); they must be the same stimuli`);
  if (x.rows < 3) throw new Error(`similarity: need at least 3 stimuli, got ${x.rows}`);
}

export function linearCka(x: Matrix, y: Matrix): number {
  checkPair(x, y);
  const X = centred(x);
  const Y = centred(y);
  const n = x.rows;
  const xy = frob2(crossProduct(Y, y.cols, X, x.cols, n));
  const xx = Math.sqrt(frob2(crossProduct(X, x.cols, X, x.cols, n)));
  const yy = Math.sqrt(frob2(crossProduct(Y, y.cols, Y, y.cols, n)));
  return xx === 0 || yy === 0 ? 0 : xy / (xx * yy);
}

/** Upper triangle of the correlation-distance RDM (1 − Pearson r between rows). */
export function rdm(m: Matrix): Float64Array {
  const { rows: n, cols: p } = m;
  const z = new Float64Array(n * p);
  for (let i = 0; i < n; i++) {
    let mu = 0;
    for (let j = 0; j < p; j++) mu += m.data[i * p + j]!;
    mu /= p;
    let ss = 0;
    for (let j = 0; j < p; j++) ss += (m.data[i * p + j]! - mu) ** 2;
    const s = Math.sqrt(ss) || 1;
    for (let j = 0; j < p; j++) z[i * p + j] = (m.data[i * p + j]! - mu) / s;
  }
  const out = new Float64Array((n * (n - 1)) / 2);
  let k = 0;
  for (let i = 0; i < n; i++) for (let j = i + 1; j < n; j++) {
    let r = 0;
    for (let c = 0; c < p; c++) r += z[i * p + c]! * z[j * p + c]!;
    out[k++] = 1 - r;
  }
  return out;
}

export function rsa(x: Matrix, y: Matrix): number {
  checkPair(x, y);
  return spearman(rdm(x), rdm(y));
}

/** Whitened coordinates [n, k] of the top principal directions holding `keep` of the variance. */
function svdReduce(m: Matrix, keep: number): { z: Float64Array; k: number } {
  const X = centred(m);
  const { rows: n, cols: p } = m;
  const { values, vectors } = symmetricEigen(crossProduct(X, p, X, p, n), p);
  const total = values.reduce((s, v) => s + Math.max(v, 0), 0);
  let k = 0;
  let acc = 0;
  while (k < p && values[k]! > 1e-10 * (values[0]! || 1) && (acc < keep * total || k === 0)) acc += values[k++]!;
  k = Math.min(k, n - 1);
  const z = new Float64Array(n * k);
  for (let i = 0; i < n; i++) for (let c = 0; c < k; c++) {
    let s = 0;
    for (let j = 0; j < p; j++) s += X[i * p + j]! * vectors[j * p + c]!;
    z[i * k + c] = s / Math.sqrt(values[c]!);
  }
  return { z, k };
}

/** Canonical correlations after SVD reduction (descending), and their mean. */
export function svcca(x: Matrix, y: Matrix, o: { keep?: number } = {}): { mean: number; correlations: number[] } {
  checkPair(x, y);
  const keep = o.keep ?? 0.99;
  const a = svdReduce(x, keep);
  const b = svdReduce(y, keep);
  if (a.k === 0 || b.k === 0) return { mean: 0, correlations: [] };
  // Both are whitened (ZᵀZ = I), so the canonical correlations are the singular values of ZaᵀZb.
  const c = crossProduct(a.z, a.k, b.z, b.k, x.rows); // [ka, kb]
  const small = Math.min(a.k, b.k);
  const cct = a.k <= b.k ? crossProduct(transpose(c, a.k, b.k), a.k, transpose(c, a.k, b.k), a.k, b.k) : crossProduct(c, b.k, c, b.k, a.k);
  const { values } = symmetricEigen(cct, small);
  const corr = Array.from(values, (v) => Math.min(1, Math.sqrt(Math.max(0, v))));
  return { mean: mean(corr), correlations: corr };
}

function transpose(m: Float64Array, r: number, c: number): Float64Array {
  const out = new Float64Array(r * c);
  for (let i = 0; i < r; i++) for (let j = 0; j < c; j++) out[j * r + i] = m[i * c + j]!;
  return out;
}

export function similarity(x: Matrix, y: Matrix, method: SimilarityMethod): number {
  if (method === 'cka') return linearCka(x, y);
  if (method === 'rsa') return rsa(x, y);
  return svcca(x, y).mean;
}

export interface SubsampleOptions {
  /** Units kept from each matrix per repeat (default: all). */
  units?: number;
  /** Stimuli kept per repeat (default: all). */
  stimuli?: number;
  /** Default 1 without subsampling, else 10. */
  repeats?: number;
  seed?: number;
}

function pick(m: Matrix, rows: number[], cols: number[]): Matrix {
  const out = new Float64Array(rows.length * cols.length);
  rows.forEach((r, i) => cols.forEach((c, j) => { out[i * cols.length + j] = m.data[r * m.cols + c]!; }));
  return { data: out, rows: rows.length, cols: cols.length };
}

/** The methods' scores, each the mean (and sd) over repeats of subsampled units and stimuli. */
export function compareRepresentations(x: Matrix, y: Matrix, o: SubsampleOptions & { methods?: SimilarityMethod[] } = {}): Record<SimilarityMethod, { mean: number; sd: number }> {
  checkPair(x, y);
  const methods = o.methods ?? SIMILARITY_METHODS;
  const sub = o.units !== undefined || o.stimuli !== undefined;
  const repeats = o.repeats ?? (sub ? 10 : 1);
  const rng = new SeededRandom(o.seed ?? 0);
  const scores = Object.fromEntries(methods.map((m) => [m, [] as number[]])) as Record<SimilarityMethod, number[]>;
  for (let r = 0; r < repeats; r++) {
    const rows = o.stimuli !== undefined ? rng.sample(x.rows, o.stimuli).sort((a, b) => a - b) : Array.from({ length: x.rows }, (_, i) => i);
    const cx = o.units !== undefined ? rng.sample(x.cols, o.units) : Array.from({ length: x.cols }, (_, i) => i);
    const cy = o.units !== undefined ? rng.sample(y.cols, o.units) : Array.from({ length: y.cols }, (_, i) => i);
    const a = sub ? pick(x, rows, cx) : x;
    const b = sub ? pick(y, rows, cy) : y;
    for (const m of methods) scores[m].push(similarity(a, b, m));
  }
  return Object.fromEntries(methods.map((m) => [m, { mean: mean(scores[m]), sd: sd(scores[m]) }])) as Record<SimilarityMethod, { mean: number; sd: number }>;
}

/** The residual stream after each block (and the embedding, layer 'embed'), stimuli = token positions. */
export function layerRepresentations(model: CausalLM, ids: readonly number[]): { labels: string[]; matrices: Matrix[] } {
  return representationsFromActs(model, collect(model, ids, representationHookNames(model)));
}

/** `layerRepresentations` on any backend (WebGPU included): activations read asynchronously. */
export async function layerRepresentationsAsync(model: CausalLM, ids: readonly number[]): Promise<{ labels: string[]; matrices: Matrix[] }> {
  return representationsFromActs(model, await collectAsync(model, ids, representationHookNames(model)));
}

export function representationHookNames(model: CausalLM): string[] {
  return ['blocks.0.hook_resid_pre', ...blockNames(model, 'hook_resid_post')];
}

export function representationsFromActs(model: CausalLM, acts: HostActs): { labels: string[]; matrices: Matrix[] } {
  const names = representationHookNames(model);
  return {
    labels: ['embed', ...blockNames(model, 'hook_resid_post').map((_, i) => String(i))],
    matrices: names.map((n) => { const t = acts.get(n); return { data: t.data, rows: t.shape[1]!, cols: t.shape[2]! }; }),
  };
}

/** Every pair of two lists of representations: [a][b] scores. */
export function similarityGrid(a: readonly Matrix[], b: readonly Matrix[], method: SimilarityMethod, o: SubsampleOptions = {}): number[][] {
  return a.map((x) => b.map((y) => compareRepresentations(x, y, { ...o, methods: [method] })[method].mean));
}

/**
 * Refuses to compare two models on one list of ids unless those ids mean the same text to both:
 * the second model's tokenizer must encode the prompt to the same ids (or, without tokenizers,
 * the vocabularies must have one size).
 */
export function checkSameInput(m: LoadedModel, m2: LoadedModel, ids: readonly number[], text: string | undefined, warn: (message: string) => void): void {
  const t1 = m.tokenizer;
  const t2 = m2.tokenizer;
  if (t1 && t2) {
    const prompt = text ?? t1.decode(ids, { skipSpecialTokens: true });
    const a = t1.encode(prompt);
    const b = t2.encode(prompt);
    if (a.length !== b.length || a.some((x, i) => x !== b[i])) {
      throw new Error(`similarity --against: ${m2.source} has another tokenizer than ${m.source} (the prompt is ${b.length} tokens [${b.slice(0, 6).join(', ')}${b.length > 6 ? ', …' : ''}] for it, `
        + `${a.length} tokens [${a.slice(0, 6).join(', ')}${a.length > 6 ? ', …' : ''}] for the first); the two would read different texts, so their layers cannot be compared token by token`);
    }
    return;
  }
  if (t1 || t2) warn(`similarity --against: ${(t1 ? m2 : m).source} has no tokenizer, so the ids are assumed to mean the same text to both models`);
  if (m.model.dims.vocabSize !== m2.model.dims.vocabSize) {
    throw new Error(`similarity --against: ${m2.source} has a vocabulary of ${m2.model.dims.vocabSize} tokens and ${m.source} of ${m.model.dims.vocabSize}; the same ids would be different texts to them`);
  }
}

interface SimilarityArgs { method?: SimilarityMethod; units?: number; stimuli?: number; repeats?: number; seed?: number; recording?: string; tensor?: string; against?: string }

export const similarityAnalysis: Analysis = {
  name: 'similarity',
  options: [
    { flags: '--seed <n>', help: 'random seed', type: 'int', min: 0, shared: true },
    { flags: '--against <M>', help: 'a second model with the same tokenizer, compared layer by layer' },
    { flags: '--recording <file>', help: 'a recorded [stimuli, units] matrix (.npy, .csv, .safetensors)' },
    { flags: '--tensor <name>', help: 'the tensor of a .safetensors recording' },
    { flags: '--method <m>', help: 'cka, rsa or svcca (default all)', type: 'choice', choices: SIMILARITY_METHODS },
    { flags: '--units <n>', help: 'units subsampled per repeat', type: 'int', min: 1 },
    { flags: '--stimuli <n>', help: 'stimuli subsampled per repeat', type: 'int', min: 1 },
    { flags: '--repeats <n>', help: 'subsampling repeats', type: 'int', min: 1 },
  ],
  input: 'prompt',
  run: async ({ m, ids, text }, env) => {
    const o = env.args as SimilarityArgs;
    const methods = o.method ? [o.method] : SIMILARITY_METHODS;
    for (const x of methods) if (!SIMILARITY_METHODS.includes(x)) throw new Error(`--method: '${x}' (have ${SIMILARITY_METHODS.join(', ')})`);
    const sub = { units: o.units, stimuli: o.stimuli, repeats: o.repeats, seed: o.seed };
    const a = await layerRepresentationsAsync(m.model, ids);
    if (o.recording) {
      const name = o.recording.split(/[\\/]/).pop()!;
      const rec = await parseMatrixFile(name, await env.readFile(o.recording), o.tensor);
      if (rec.rows !== ids.length) throw new Error(`similarity: ${o.recording} has ${rec.rows} stimuli (rows) but the prompt has ${ids.length} tokens; one row per token is needed`);
      return { stimuli: ids.length, recording: { file: o.recording, rows: rec.rows, cols: rec.cols }, layers: a.labels.map((label, i) => ({ layer: label, ...compareRepresentations(a.matrices[i]!, rec, { ...sub, methods }) })) };
    }
    if (o.against) {
      const m2 = await env.load(o.against);
      try {
        checkSameInput(m, m2, ids, text, env.warn);
        env.checkContext(m2, ids.length, `--against ${o.against}`);
        const b = await layerRepresentationsAsync(m2.model, ids);
        return { stimuli: ids.length, rows: a.labels, cols: b.labels, grids: Object.fromEntries(methods.map((x) => [x, similarityGrid(a.matrices, b.matrices, x, sub)])) };
      } finally {
        m2.model.dispose();
      }
    }
    return { stimuli: ids.length, layers: a.labels, grids: Object.fromEntries(methods.map((x) => [x, similarityGrid(a.matrices, a.matrices, x, sub)])) };
  },
};
