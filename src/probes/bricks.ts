// Functional partitions ("emergent bricks", Xiao et al. 2024, Configurable Foundation Models §3,
// after MoEfication's co-activation split, Zhang et al. 2022): the neurons of one MLP layer
// clustered by how often they fire together over a corpus, and the effect of ablating each
// partition on the model's loss and next-token distribution.
//   firing:      a neuron is active at a position when its activation is positive and in its own
//                top `activeRate` fraction over the corpus (default 0.1; 'positive' = any a > 0, for ReLU)
//   co-activation: S_ij = P(i and j active) / sqrt(P(i) P(j)) (the cosine of the binary firing vectors)
//   clustering:  spectral: the top-k eigenvectors of D^-1/2 S D^-1/2, rows normalised, k-means
//                (Ng, Jordan & Weiss 2001); above `spectralLimit` neurons, k-means on the rows of S
//   ablation:    zero or corpus-mean ablation of a brick's neurons at the hook: Δ mean NLL and mean
//                KL(clean ‖ ablated) per position on each evaluation set, beside the mean over
//                random sets of as many neurons from outside the brick (the control)
// Not for: choosing neurons by a label (concept-neurons.ts).
import { kmeans, symmetricEigen } from '../analysis/stats.js';
import { runWithCache } from '../hooks/run.js';
import { withInterventions } from '../interventions/apply.js';
import type { Intervention } from '../interventions/intervention.js';
import type { CausalLM } from '../models/model.js';
import { Rng, tensor } from '../ops/creation.js';
import { tidy } from '../tensor/engine.js';

export interface BrickOptions {
  /** Partitions (default 8). */
  bricks?: number;
  /** Fraction of positions at which each neuron counts as active (default 0.1), or 'positive'. */
  activeRate?: number | 'positive';
  seed?: number;
  /** Above this many neurons, k-means on co-activation rows replaces the eigen-decomposition (default 512). */
  spectralLimit?: number;
}

export interface Brick {
  index: number;
  units: number[];
  /** Mean co-activation S_ij between members, and between members and the other neurons. */
  cohesion: number;
  coupling: number;
}

export interface BrickPartition {
  units: number;
  rows: number;
  /** Brick of each neuron. */
  assign: number[];
  bricks: Brick[];
  /** Mean within-brick over mean between-brick co-activation (> 1: the partition follows co-activation). */
  contrast: number;
  method: 'spectral' | 'kmeans';
}

/** Binary firing of `data` [rows, units]: each unit's own top `rate` fraction, or a > 0. */
export function firing(data: ArrayLike<number>, rows: number, units: number, rate: number | 'positive' = 0.1): Uint8Array {
  const B = new Uint8Array(rows * units);
  for (let j = 0; j < units; j++) {
    let cut = 0;
    if (rate !== 'positive') {
      if (!(rate > 0 && rate < 1)) throw new RangeError(`bricks: activeRate must be in (0, 1) or 'positive', got ${rate}`);
      const col = Float32Array.from({ length: rows }, (_, r) => data[r * units + j]!).sort();
      cut = col[Math.min(rows - 1, Math.floor((1 - rate) * rows))]!;
    }
    for (let r = 0; r < rows; r++) { const v = data[r * units + j]!; if (v > 0 && v >= cut) B[r * units + j] = 1; }
  }
  return B;
}

/** S_ij = P(i, j active) / sqrt(P(i) P(j)) [units, units] (0 for never-active units). */
export function coactivation(B: Uint8Array, rows: number, units: number): Float64Array {
  const C = new Float64Array(units * units);
  const active: number[] = [];
  for (let r = 0; r < rows; r++) {
    active.length = 0;
    const o = r * units;
    for (let j = 0; j < units; j++) if (B[o + j]) active.push(j);
    for (let a = 0; a < active.length; a++) { const i = active[a]!; for (let b = a; b < active.length; b++) C[i * units + active[b]!]++; }
  }
  const S = new Float64Array(units * units);
  for (let i = 0; i < units; i++) for (let j = i; j < units; j++) {
    const p = C[i * units + i]! * C[j * units + j]!;
    const v = p > 0 ? C[i * units + j]! / Math.sqrt(p) : 0;
    S[i * units + j] = v;
    S[j * units + i] = v;
  }
  return S;
}

/** Partitions the neurons of `data` [rows, units] by co-activation. */
export function coactivationBricks(data: ArrayLike<number>, rows: number, units: number, o: BrickOptions = {}): BrickPartition {
  if (data.length !== rows * units) throw new Error(`bricks: ${data.length} values are not ${rows} rows of ${units} units`);
  const k = o.bricks ?? 8;
  if (!Number.isInteger(k) || k < 2 || k > units) throw new RangeError(`bricks: the number of bricks must be an integer from 2 to ${units} (the neurons), got ${k}`);
  const S = coactivation(firing(data, rows, units, o.activeRate ?? 0.1), rows, units);
  let embed: Float64Array[];
  let method: BrickPartition['method'];
  if (units <= (o.spectralLimit ?? 512)) {
    method = 'spectral';
    const deg = Float64Array.from({ length: units }, (_, i) => { let s = 0; for (let j = 0; j < units; j++) s += S[i * units + j]!; return s; });
    const N = new Float64Array(units * units);
    for (let i = 0; i < units; i++) for (let j = 0; j < units; j++) { const dd = deg[i]! * deg[j]!; N[i * units + j] = dd > 0 ? S[i * units + j]! / Math.sqrt(dd) : 0; }
    const { vectors } = symmetricEigen(N, units);
    embed = Array.from({ length: units }, (_, i) => Float64Array.from({ length: k }, (_, c) => vectors[i * units + c]!));
  } else {
    method = 'kmeans';
    embed = Array.from({ length: units }, (_, i) => S.slice(i * units, (i + 1) * units));
  }
  const { assign } = kmeans(embed, k, o.seed ?? 0);
  const bricks: Brick[] = [];
  let within = 0, nw = 0, between = 0, nb = 0;
  for (let i = 0; i < units; i++) for (let j = i + 1; j < units; j++) {
    if (assign[i] === assign[j]) { within += S[i * units + j]!; nw++; } else { between += S[i * units + j]!; nb++; }
  }
  for (let b = 0; b < k; b++) {
    const members = assign.flatMap((a, i) => (a === b ? [i] : []));
    if (members.length === 0) continue;
    let c = 0, nc = 0, x = 0, nx = 0;
    for (const i of members) for (let j = 0; j < units; j++) {
      if (j === i) continue;
      if (assign[j] === b) { c += S[i * units + j]!; nc++; } else { x += S[i * units + j]!; nx++; }
    }
    bricks.push({ index: bricks.length, units: members, cohesion: nc ? c / nc : 1, coupling: nx ? x / nx : 0 });
  }
  const relabel = new Map(bricks.map((b) => [assign[b.units[0]!]!, b.index]));
  return {
    units, rows, assign: assign.map((a) => relabel.get(a)!), bricks,
    contrast: nw && nb && between > 0 ? within / nw / (between / nb) : Infinity, method,
  };
}

/** The activations of `hook` [rows = contexts × positions, units] over `contexts` (equal lengths). */
export function hookRows(model: CausalLM, contexts: readonly (readonly number[])[], hook: string, batch = 8): { data: Float32Array; rows: number; units: number } {
  if (contexts.length === 0) throw new Error('bricks: no contexts');
  const P = contexts[0]!.length;
  const parts: Float32Array[] = [];
  let units = 0;
  for (let i = 0; i < contexts.length; i += batch) {
    const part = contexts.slice(i, i + batch);
    part.forEach((c, j) => { if (c.length !== P) throw new Error(`bricks: context ${i + j} has ${c.length} tokens; every context must have ${P}`); });
    const ids = tensor(part.flat(), [part.length, P], 'i32', { backend: model.backend });
    const { logits, cache } = runWithCache(model, ids, { names: [hook] });
    logits.dispose();
    ids.dispose();
    const x = cache.get(hook); // [b, P, units]
    if (x.rank !== 3) { cache.dispose(); throw new Error(`bricks: '${hook}' is [${x.shape.join(', ')}]; pick a hook with one vector per position (e.g. blocks.L.mlp.hook_post)`); }
    units = x.shape[2]!;
    parts.push(x.dataSync() as Float32Array);
    cache.dispose();
  }
  const data = new Float32Array(parts.reduce((s, p) => s + p.length, 0));
  let off = 0;
  for (const p of parts) { data.set(p, off); off += p.length; }
  return { data, rows: data.length / units, units };
}

export interface AblationEffect {
  /** Mean NLL with the neurons ablated minus without. */
  dLoss: number;
  /** Mean KL(clean ‖ ablated) of the next-token distributions, nats per position. */
  kl: number;
}

export interface BrickEffects {
  brick: number;
  size: number;
  /** One per evaluation set, in order. */
  effects: AblationEffect[];
  /** The mean over `controls` random sets of as many neurons from outside the brick. */
  control: AblationEffect[];
}

/** Host log-probabilities [rows, V] of every position of `contexts` under `interventions`. */
function logProbs(model: CausalLM, contexts: readonly (readonly number[])[], interventions: readonly Intervention[], batch: number): Float32Array[] {
  const P = contexts[0]!.length;
  const run = () => {
    const out: Float32Array[] = [];
    for (let i = 0; i < contexts.length; i += batch) {
      const part = contexts.slice(i, i + batch);
      out.push(tidy(() => {
        const ids = tensor(part.flat(), [part.length, P], 'i32', { backend: model.backend });
        return model.forward(ids).dataSync() as Float32Array; // [b, P, V]
      }));
    }
    const V = model.dims.vocabSize;
    for (const l of out) for (let r = 0; r < l.length / V; r++) {
      const o = r * V;
      let m = -Infinity;
      for (let v = 0; v < V; v++) if (l[o + v]! > m) m = l[o + v]!;
      let z = 0;
      for (let v = 0; v < V; v++) z += Math.exp(l[o + v]! - m);
      const lz = Math.log(z) + m;
      for (let v = 0; v < V; v++) l[o + v]! -= lz;
    }
    return out;
  };
  return interventions.length ? withInterventions(model, interventions, run) : run();
}

function effect(clean: Float32Array[], ablated: Float32Array[], contexts: readonly (readonly number[])[], V: number, batch: number): AblationEffect {
  const P = contexts[0]!.length;
  let dl = 0, kl = 0, n = 0, rows = 0;
  clean.forEach((c, bi) => {
    const a = ablated[bi]!;
    const R = c.length / V;
    for (let r = 0; r < R; r++) {
      const o = r * V;
      let k = 0;
      for (let v = 0; v < V; v++) { const p = c[o + v]!; if (p > -80) k += Math.exp(p) * (p - a[o + v]!); }
      kl += k;
      rows++;
      const ctx = contexts[bi * batch + Math.floor(r / P)]!;
      const pos = r % P;
      if (pos + 1 < P) { const t = ctx[pos + 1]!; dl += c[o + t]! - a[o + t]!; n++; }
    }
  });
  return { dLoss: dl / Math.max(1, n), kl: kl / Math.max(1, rows) };
}

/**
 * Ablates each brick's neurons at `hook` and measures Δloss and KL on each evaluation set, with a
 * control: as many random neurons from outside the brick (`controls` draws, default 3). `mean` (the hook's mean
 * activation) switches zero ablation to mean ablation.
 */
export function brickAblation(
  model: CausalLM, hook: string, partition: BrickPartition, sets: readonly (readonly (readonly number[])[])[],
  o: { mean?: Float32Array; controls?: number; seed?: number; batch?: number; onProgress?: (done: number, total: number) => void } = {},
): BrickEffects[] {
  const batch = o.batch ?? 8;
  const V = model.dims.vocabSize;
  const ablate = (units: number[]): Intervention[] => [o.mean
    ? { hook, op: 'mean', value: o.mean, unit: { neurons: units } }
    : { hook, op: 'zero', unit: { neurons: units } }];
  const clean = sets.map((s) => logProbs(model, s, [], batch));
  const measure = (units: number[]) => sets.map((s, i) => effect(clean[i]!, logProbs(model, s, ablate(units), batch), s, V, batch));
  const rng = new Rng(o.seed ?? 0);
  const controls = o.controls ?? 3;
  const out: BrickEffects[] = [];
  partition.bricks.forEach((b, bi) => {
    const effects = measure(b.units);
    const draws = Array.from({ length: controls }, () => {
      const inside = new Set(b.units);
      const pool = [...Array(partition.units).keys()].filter((u) => !inside.has(u));
      const pick: number[] = [];
      while (pick.length < b.units.length && pool.length) pick.push(pool.splice(rng.int(pool.length), 1)[0]!);
      return measure(pick);
    });
    const control = sets.map((_, i) => ({
      dLoss: draws.reduce((s, d) => s + d[i]!.dLoss, 0) / Math.max(1, controls),
      kl: draws.reduce((s, d) => s + d[i]!.kl, 0) / Math.max(1, controls),
    }));
    out.push({ brick: b.index, size: b.units.length, effects, control });
    o.onProgress?.(bi + 1, partition.bricks.length);
  });
  return out;
}

/** The tokens at which each brick is most active: mean fraction of its neurons firing, per token id seen >= minCount times. */
export function brickTokens(B: Uint8Array, units: number, partition: BrickPartition, ids: ArrayLike<number>, o: { top?: number; minCount?: number } = {}): { token: number; rate: number; count: number }[][] {
  const rows = ids.length;
  const per = partition.bricks.map(() => new Map<number, { s: number; n: number }>());
  for (let r = 0; r < rows; r++) {
    const t = ids[r]!;
    partition.bricks.forEach((b, bi) => {
      let f = 0;
      for (const u of b.units) f += B[r * units + u]!;
      const e = per[bi]!.get(t) ?? { s: 0, n: 0 };
      e.s += f / b.units.length;
      e.n++;
      per[bi]!.set(t, e);
    });
  }
  return per.map((m) => [...m.entries()].filter(([, e]) => e.n >= (o.minCount ?? 3)).map(([token, e]) => ({ token, rate: e.s / e.n, count: e.n }))
    .sort((a, b) => b.rate - a.rate || a.token - b.token).slice(0, o.top ?? 5));
}
