// Concept (language) neurons after Neural FOXP2 (Saha et al. 2026, arXiv:2602.00945), on a model
// and two labelled sets of token contexts (target label vs source, e.g. Shakespeare vs Wikipedia):
//   (i) localize: for each unit (raw neurons of one hook per layer, or the features of an SAE) its
//       activation selectivity (Cohen's d of target vs source over every position) and its
//       logit-mass lift: the change of the probability mass the model puts on the label's token set
//       (tokens far more frequent in the target contexts) when the unit is moved by its target−source
//       mean difference on source contexts. Score = |d| × lift: a unit counts when it is selective
//       AND moving it toward the target level moves the output toward the label. SAE features are
//       traced back to the hook's units with the largest decoder weights.
//  (ii) directions: per layer the SVD of the target−source activation-difference matrix (context-
//       pooled rows): singular values, eigengap, effective rank, split-half stability; the
//       intervention window is the run of layers where the top direction is strongest and stable.
// (iii) shift: a signed sparse shift on the selected units: the mean difference projected on the
//       layer's dominant difference subspace, kept only on the target-selective (positive) and
//       source-selective (negative) units, times a strength; with a control of the same recipe and
//       norm on random units. The paper's abstract gives the recipe, not its constants: the
//       formulas above are this file's reading of it (docs/neurons.md says what was measured).
// Not for: the statistics themselves (unit-stats.ts).
import { runWithCache } from '../hooks/run.js';
import { withInterventions } from '../interventions/apply.js';
import type { Intervention } from '../interventions/intervention.js';
import type { CausalLM } from '../models/model.js';
import { Rng, tensor } from '../ops/creation.js';
import { isTranscoder } from '../sae/config.js';
import type { Sae } from '../sae/sae.js';
import { saeSite } from '../sae/splice.js';
import { tidy } from '../tensor/engine.js';
import { differenceSpectrum, labelTokens, projectOnto, selectivity, UnitMoments, type DifferenceSpectrum, type LabelTokens } from './unit-stats.js';

export interface ConceptOptions {
  /** Hooks of raw units, one vector per position (e.g. blocks.*.mlp.hook_post); ignored with `sae`. */
  hooks?: string[];
  /** Units are this SAE's features at its site instead. */
  sae?: Sae;
  /** Contexts per forward pass (default 8). */
  batch?: number;
  /** Units per hook and sign whose lift is measured (default 16, by |d|). */
  candidates?: number;
  /** Units kept per hook and sign (default 8). */
  top?: number;
  /** Source contexts the lift is measured on (default 8). */
  liftContexts?: number;
  /** The label's token set (default: top 32 by log-odds, seen >= 5 times). */
  tokens?: { ids?: number[]; top?: number; minCount?: number; exclude?: number[] };
  /** Directions kept per layer (default 4). */
  k?: number;
  /** Window: layers whose quality (explained × stability) is at least this share of the best (default 0.5). */
  windowShare?: number;
  onProgress?: (what: string, done: number, total: number) => void;
}

export interface ConceptUnit {
  hook: string;
  layer: number;
  unit: number;
  d: number;
  meanTarget: number;
  meanSource: number;
  /** Change of the label's token mass (mean over source positions) when the unit moves by meanTarget − meanSource. */
  lift: number;
  score: number;
  /** SAE features: the site's units with the largest |decoder weight|. */
  trace?: { unit: number; weight: number }[];
}

export interface ConceptLayer {
  hook: string;
  layer: number;
  units: number;
  spectrum: Omit<DifferenceSpectrum, 'directions' | 'meanDiff'> & { directions: number[][] };
  /** Mean target − mean source per unit of the hook (per feature with an SAE). */
  meanDiff: number[];
  /** Mean difference in the hook's own space (the site's with an SAE). */
  siteMeanDiff: number[];
  quality: number;
}

export interface ConceptResult {
  mode: 'neurons' | 'sae';
  tokens: LabelTokens;
  baselineMass: number;
  layers: ConceptLayer[];
  /** Every measured unit, best score first. */
  units: ConceptUnit[];
  /** The selected units: target-selective (d > 0) and source-selective (d < 0), best first. */
  targetUnits: ConceptUnit[];
  sourceUnits: ConceptUnit[];
  /** Hooks of the intervention window. */
  window: string[];
  contexts: { target: number; source: number; length: number };
}

const layerOf = (hook: string): number => { const m = /^blocks\.(\d+)\./.exec(hook); return m ? Number(m[1]) : -1; };

function checkContexts(xs: readonly (readonly number[])[], what: string): number {
  if (xs.length < 2) throw new Error(`concept neurons: the ${what} set needs at least 2 contexts, got ${xs.length}`);
  const P = xs[0]!.length;
  xs.forEach((c, i) => { if (c.length !== P) throw new Error(`concept neurons: ${what} context ${i} has ${c.length} tokens; every context must have ${P}`); });
  return P;
}

/** Batches of contexts as [b, P] id tensors on the model's backend. */
function* batches(model: CausalLM, xs: readonly (readonly number[])[], b: number): Generator<{ ids: ReturnType<typeof tensor>; n: number }> {
  const P = xs[0]!.length;
  for (let i = 0; i < xs.length; i += b) {
    const part = xs.slice(i, i + b);
    yield { ids: tensor(part.flat(), [part.length, P], 'i32', { backend: model.backend }), n: part.length };
  }
}

/** Mean over positions of the softmax mass on `tokens`, and the mean next-token NLL, under `interventions`. */
export function labelMassAndLoss(model: CausalLM, xs: readonly (readonly number[])[], tokens: readonly number[], interventions: readonly Intervention[] = [], batch = 8): { mass: number; nll: number } {
  const V = model.dims.vocabSize;
  let mass = 0, nll = 0, rows = 0, scored = 0;
  const run = () => {
    for (const { ids, n } of batches(model, xs, batch)) {
      const logits = tidy(() => model.forward(ids).dataSync() as Float32Array); // [n, P, V]
      const host = ids.dataSync() as Int32Array;
      ids.dispose();
      const P = host.length / n;
      for (let r = 0; r < n * P; r++) {
        const o = r * V;
        let max = -Infinity;
        for (let v = 0; v < V; v++) if (logits[o + v]! > max) max = logits[o + v]!;
        let z = 0;
        for (let v = 0; v < V; v++) z += Math.exp(logits[o + v]! - max);
        let m = 0;
        for (const t of tokens) m += Math.exp(logits[o + t]! - max);
        mass += m / z;
        rows++;
        if ((r + 1) % P !== 0) { nll += Math.log(z) + max - logits[o + host[r + 1]!]!; scored++; }
      }
    }
  };
  if (interventions.length) withInterventions(model, interventions, run); else run();
  return { mass: mass / Math.max(1, rows), nll: nll / Math.max(1, scored) };
}

/** Stage (i) and (ii): selective units, their lifts, and the layerwise difference spectra. */
export function conceptNeurons(model: CausalLM, target: readonly (readonly number[])[], source: readonly (readonly number[])[], o: ConceptOptions = {}): ConceptResult {
  const P = checkContexts(target, 'target');
  if (checkContexts(source, 'source') !== P) throw new Error(`concept neurons: target contexts have ${P} tokens, source contexts ${source[0]!.length}; give both the same length`);
  const sae = o.sae;
  if (sae && isTranscoder(sae.cfg)) throw new Error('concept neurons: transcoders are not supported (their decoder writes to another hook); use an SAE');
  const hooks = sae ? [saeSite(sae)] : (o.hooks ?? []);
  if (hooks.length === 0) throw new Error('concept neurons: give hooks (e.g. blocks.*.mlp.hook_post) or an SAE');
  const shapes = new Map(model.hookPointShapes().map((h) => [h.name, h.shape]));
  for (const h of hooks) {
    const s = shapes.get(h);
    if (!s) throw new Error(`concept neurons: the model has no hook '${h}'`);
    if (s.length !== 3) throw new Error(`concept neurons: '${h}' is [${s.join(', ')}]; pick a hook with one vector per position (residual or MLP)`);
    if (sae && s[2] !== sae.dIn) throw new Error(`concept neurons: the SAE reads ${sae.dIn} values but '${h}' has ${s[2]}`);
  }
  const width = (h: string) => (sae ? sae.dSae : shapes.get(h)![2] as number);
  const moments = { target: hooks.map((h) => new UnitMoments(width(h))), source: hooks.map((h) => new UnitMoments(width(h))) };
  const pooled = { target: hooks.map(() => [] as Float32Array[]), source: hooks.map(() => [] as Float32Array[]) };
  const batch = o.batch ?? 8;
  const total = target.length + source.length;
  let done = 0;
  for (const side of ['target', 'source'] as const) {
    for (const { ids, n } of batches(model, side === 'target' ? target : source, batch)) {
      const { logits, cache } = runWithCache(model, ids, { names: hooks });
      logits.dispose();
      ids.dispose();
      hooks.forEach((h, i) => {
        const x = cache.get(h); // [n, P, d]
        const raw = x.dataSync() as Float32Array;
        const d = x.shape[2]!;
        let units = raw;
        if (sae) { const a = sae.encode(x); units = a.dataSync() as Float32Array; a.dispose(); }
        moments[side][i]!.add(units, n * P);
        for (let c = 0; c < n; c++) {
          const row = new Float32Array(d);
          for (let p = 0; p < P; p++) for (let j = 0; j < d; j++) row[j] += raw[(c * P + p) * d + j]! / P;
          pooled[side][i]!.push(row);
        }
      });
      cache.dispose();
      done += n;
      o.onProgress?.('activations', done, total);
    }
  }
  const vocab = model.dims.vocabSize;
  const tokens = o.tokens?.ids
    ? { ids: o.tokens.ids, logOdds: [], targetCount: [], sourceCount: [] }
    : labelTokens(target, source, vocab, { top: o.tokens?.top, minCount: o.tokens?.minCount, exclude: o.tokens?.exclude });
  if (tokens.ids.length === 0) throw new Error('concept neurons: no token is more frequent in the target contexts than in the source ones; give more text or a lower minimum count');
  for (const t of tokens.ids) if (!Number.isInteger(t) || t < 0 || t >= vocab) throw new RangeError(`concept neurons: token ${t} is outside the vocabulary (${vocab})`);
  const liftSet = source.slice(0, o.liftContexts ?? 8);
  const base = labelMassAndLoss(model, liftSet, tokens.ids, [], batch);
  const units: ConceptUnit[] = [];
  const layers: ConceptLayer[] = [];
  const nc = o.candidates ?? 16;
  hooks.forEach((h, i) => {
    const sel = selectivity(moments.target[i]!, moments.source[i]!);
    const byD = [...sel].sort((a, b) => b.d - a.d);
    const cands = [...byD.filter((s) => s.d > 0).slice(0, nc), ...byD.filter((s) => s.d < 0).reverse().slice(0, nc)];
    cands.forEach((s, q) => {
      const delta = s.meanTarget - s.meanSource;
      const vec = sae ? decoderRow(sae, s.unit).map((w) => w * delta) : oneHot(width(h), s.unit, delta);
      const lift = labelMassAndLoss(model, liftSet, tokens.ids, [{ hook: h, op: 'add', vector: vec }], batch).mass - base.mass;
      units.push({
        hook: h, layer: layerOf(h), unit: s.unit, d: s.d, meanTarget: s.meanTarget, meanSource: s.meanSource, lift, score: Math.abs(s.d) * lift,
        ...(sae ? { trace: topWeights(decoderRow(sae, s.unit), 5) } : {}),
      });
      o.onProgress?.(`lift ${h}`, q + 1, cands.length);
    });
    const spec = differenceSpectrum(pooled.target[i]!, pooled.source[i]!, o.k ?? 4);
    const { directions, meanDiff, ...rest } = spec;
    layers.push({
      hook: h, layer: layerOf(h), units: width(h),
      spectrum: { ...rest, directions: directions.map((v) => Array.from(v)) },
      meanDiff: sel.map((s) => s.meanTarget - s.meanSource),
      siteMeanDiff: Array.from(meanDiff),
      quality: spec.explained * spec.stability,
    });
  });
  units.sort((a, b) => b.score - a.score);
  const top = o.top ?? 8;
  const pick = (sign: 1 | -1) => hooks.flatMap((h) => units.filter((u) => u.hook === h && Math.sign(u.d) === sign && u.score > 0).slice(0, top)).sort((a, b) => b.score - a.score);
  return {
    mode: sae ? 'sae' : 'neurons', tokens, baselineMass: base.mass, layers, units,
    targetUnits: pick(1), sourceUnits: pick(-1), window: interventionWindow(layers, o.windowShare ?? 0.5),
    contexts: { target: target.length, source: source.length, length: P },
  };
}

/** The contiguous run of layers around the best quality whose quality is at least `share` of it. */
export function interventionWindow(layers: readonly { hook: string; quality: number }[], share = 0.5): string[] {
  if (layers.length === 0) return [];
  let best = 0;
  layers.forEach((l, i) => { if (l.quality > layers[best]!.quality) best = i; });
  const cut = share * layers[best]!.quality;
  let lo = best, hi = best;
  while (lo > 0 && layers[lo - 1]!.quality >= cut) lo--;
  while (hi + 1 < layers.length && layers[hi + 1]!.quality >= cut) hi++;
  return layers.slice(lo, hi + 1).map((l) => l.hook);
}

function oneHot(n: number, i: number, v: number): Float32Array {
  const x = new Float32Array(n);
  x[i] = v;
  return x;
}

function decoderRow(sae: Sae, f: number): Float32Array {
  const d = sae.dOut;
  return sae.param('W_dec').slice(f * d, (f + 1) * d);
}

function topWeights(w: Float32Array, k: number): { unit: number; weight: number }[] {
  return [...w.keys()].sort((a, b) => Math.abs(w[b]!) - Math.abs(w[a]!)).slice(0, k).map((unit) => ({ unit, weight: w[unit]! }));
}

export interface ShiftOptions {
  /** Multiple of the projected mean difference added (default 1). */
  strength?: number;
  /** Hooks the shift acts on (default the result's window). */
  hooks?: string[];
  /** Dominant directions the mean difference is projected on (default each layer's gap rank; 0 = no projection). */
  rank?: number;
  /** 'selected' (the language units) or 'random' (as many random units, same norm per layer: the control). */
  support?: 'selected' | 'random';
  seed?: number;
  /** With an SAE result: the SAE (its decoder turns feature shifts into site vectors). */
  sae?: Sae;
}

/**
 * Stage (iii): the signed sparse shift as interventions. Neurons: on each window layer,
 * strength × (P_r Δμ) kept on the selected units (positive on target units, negative on source
 * units, from Δμ's sign). SAE features: strength × Σ Δμ_f · W_dec[f] over the selected features.
 */
export function conceptShift(r: ConceptResult, o: ShiftOptions = {}): Intervention[] {
  const strength = o.strength ?? 1;
  const hooks = o.hooks ?? r.window;
  const rng = new Rng(o.seed ?? 0);
  const out: Intervention[] = [];
  for (const h of hooks) {
    const layer = r.layers.find((l) => l.hook === h);
    if (!layer) throw new Error(`concept shift: '${h}' is not one of the analysed hooks (${r.layers.map((l) => l.hook).join(', ')})`);
    const chosen = [...r.targetUnits, ...r.sourceUnits].filter((u) => u.hook === h).map((u) => u.unit);
    if (chosen.length === 0) continue;
    let support = chosen;
    if (o.support === 'random') {
      const taken = new Set(chosen);
      const pool = [...Array(layer.units).keys()].filter((u) => !taken.has(u));
      support = [];
      while (support.length < chosen.length && pool.length) support.push(pool.splice(rng.int(pool.length), 1)[0]!);
    }
    let vec: Float32Array;
    let ref: Float32Array;
    if (r.mode === 'sae') {
      if (!o.sae) throw new Error('concept shift: an SAE result needs the SAE (options.sae)');
      const sum = (fs: number[]) => {
        const v = new Float32Array(o.sae!.dOut);
        for (const f of fs) { const row = decoderRow(o.sae!, f); const dm = layer.meanDiff[f]!; for (let i = 0; i < v.length; i++) v[i] += strength * dm * row[i]!; }
        return v;
      };
      ref = sum(chosen);
      vec = sum(support);
    } else {
      const rank = o.rank ?? layer.spectrum.gapRank;
      const dirs = layer.spectrum.directions.slice(0, rank);
      const proj = rank > 0 ? projectOnto(layer.meanDiff, dirs) : Float32Array.from(layer.meanDiff);
      const sparse = (us: number[]) => { const v = new Float32Array(layer.units); for (const u of us) v[u] = strength * proj[u]!; return v; };
      ref = sparse(chosen);
      vec = sparse(support);
    }
    if (o.support === 'random') {
      const a = Math.hypot(...ref), b = Math.hypot(...vec);
      if (b > 0) for (let i = 0; i < vec.length; i++) vec[i]! *= a / b;
    }
    out.push({ hook: h, op: 'add', vector: vec, name: `concept-shift ${o.support ?? 'selected'} ${h}` });
  }
  return out;
}
