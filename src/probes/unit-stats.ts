// The statistics the neuron methods share, on host arrays: per-unit moments over two labelled sets
// of rows and the selectivity of each unit (Cohen's d of target vs source), the label's token set
// (tokens far more frequent in the target corpus, by smoothed log-odds), and the spectrum of a
// target−source activation-difference matrix (layerwise SVD: singular values and directions,
// eigengap, effective rank, split-half stability of the top direction).
// Not for: running models (concept-neurons.ts) or clustering (bricks.ts).
import { symmetricEigen } from '../analysis/stats.js';

/** Running sums of one hook's units over rows (positions). */
export class UnitMoments {
  count = 0;
  readonly sum: Float64Array;
  readonly sumSq: Float64Array;
  constructor(readonly units: number) {
    this.sum = new Float64Array(units);
    this.sumSq = new Float64Array(units);
  }

  /** Adds `rows` rows of `data` ([rows, units], row-major). */
  add(data: ArrayLike<number>, rows: number): void {
    const u = this.units;
    if (data.length < rows * u) throw new RangeError(`UnitMoments: ${data.length} values cannot hold ${rows} rows of ${u} units`);
    for (let r = 0; r < rows; r++) {
      const o = r * u;
      for (let j = 0; j < u; j++) { const v = data[o + j]!; this.sum[j] += v; this.sumSq[j] += v * v; }
    }
    this.count += rows;
  }

  mean(): Float64Array {
    return this.sum.map((s) => s / Math.max(1, this.count));
  }

  variance(): Float64Array {
    const n = Math.max(1, this.count);
    return this.sumSq.map((s, j) => Math.max(0, s / n - (this.sum[j]! / n) ** 2));
  }
}

export interface UnitSelectivity {
  unit: number;
  meanTarget: number;
  meanSource: number;
  sdTarget: number;
  sdSource: number;
  /** (meanTarget − meanSource) / pooled sd: > 0 for target-selective units, < 0 for source-selective ones. */
  d: number;
}

/** Selectivity of every unit: Cohen's d with the pooled standard deviation (ε keeps constant units finite). */
export function selectivity(target: UnitMoments, source: UnitMoments, eps = 1e-6): UnitSelectivity[] {
  if (target.units !== source.units) throw new Error(`selectivity: target has ${target.units} units, source ${source.units}`);
  if (target.count === 0 || source.count === 0) throw new Error(`selectivity: no rows (target ${target.count}, source ${source.count})`);
  const mt = target.mean();
  const ms = source.mean();
  const vt = target.variance();
  const vs = source.variance();
  return Array.from({ length: target.units }, (_, j) => {
    const pooled = Math.sqrt((vt[j]! + vs[j]!) / 2);
    return { unit: j, meanTarget: mt[j]!, meanSource: ms[j]!, sdTarget: Math.sqrt(vt[j]!), sdSource: Math.sqrt(vs[j]!), d: (mt[j]! - ms[j]!) / (pooled + eps) };
  });
}

export interface LabelTokens {
  /** Token ids, most target-specific first. */
  ids: number[];
  /** Smoothed log-odds log((c_T+1)/(N_T+V)) − log((c_S+1)/(N_S+V)) of each. */
  logOdds: number[];
  targetCount: number[];
  sourceCount: number[];
}

/**
 * The label's token set: tokens seen at least `minCount` times in the target contexts, ranked by
 * add-one smoothed log-odds of target vs source frequency; the `top` first with log-odds > 0.
 */
export function labelTokens(target: readonly ArrayLike<number>[], source: readonly ArrayLike<number>[], vocab: number, o: { top?: number; minCount?: number; exclude?: readonly number[] } = {}): LabelTokens {
  const ct = new Float64Array(vocab);
  const cs = new Float64Array(vocab);
  let nt = 0;
  let ns = 0;
  for (const c of target) for (let i = 0; i < c.length; i++) { const t = c[i]!; if (t >= 0 && t < vocab) { ct[t]++; nt++; } }
  for (const c of source) for (let i = 0; i < c.length; i++) { const t = c[i]!; if (t >= 0 && t < vocab) { cs[t]++; ns++; } }
  const skip = new Set(o.exclude ?? []);
  const min = o.minCount ?? 5;
  const lo = (t: number) => Math.log((ct[t]! + 1) / (nt + vocab)) - Math.log((cs[t]! + 1) / (ns + vocab));
  const ids = [...Array(vocab).keys()].filter((t) => !skip.has(t) && ct[t]! >= min && lo(t) > 0).sort((a, b) => lo(b) - lo(a) || a - b).slice(0, o.top ?? 32);
  return { ids, logOdds: ids.map(lo), targetCount: ids.map((t) => ct[t]!), sourceCount: ids.map((t) => cs[t]!) };
}

export interface DifferenceSpectrum {
  /** Rows of the difference matrix (target row i − source row i). */
  rows: number;
  /** Singular values, largest first (at most `k`). */
  singular: number[];
  /** Right singular vectors (directions in the hook's space), signed to agree with meanDiff. */
  directions: Float32Array[];
  /** (σ1 − σ2) / σ1. */
  eigengap: number;
  /** Rank at the largest gap σ_i − σ_{i+1} among the first k. */
  gapRank: number;
  /** Effective rank exp(H(p)), p_i = σ_i / Σσ over every singular value (Roy & Vetterli 2007). */
  effectiveRank: number;
  /** σ1² / Σσ²: the share of the difference energy on the top direction. */
  explained: number;
  /** |cos| between the top directions of the even and the odd rows (1 = the same direction on both halves). */
  stability: number;
  /** Mean target row − mean source row. */
  meanDiff: Float32Array;
}

/** Top-k singular values and right singular vectors of D [n, d] (row-major), via the smaller Gram matrix. */
export function topSingular(D: Float64Array, n: number, d: number, k: number): { values: number[]; vectors: Float64Array[]; all: number[] } {
  if (n === 0 || d === 0) return { values: [], vectors: [], all: [] };
  if (d <= n) {
    const G = new Float64Array(d * d);
    for (let r = 0; r < n; r++) {
      const o = r * d;
      for (let i = 0; i < d; i++) { const a = D[o + i]!; if (a === 0) continue; for (let j = i; j < d; j++) G[i * d + j] += a * D[o + j]!; }
    }
    for (let i = 0; i < d; i++) for (let j = 0; j < i; j++) G[i * d + j] = G[j * d + i]!;
    const { values, vectors } = symmetricEigen(G, d);
    const all = Array.from(values, (v) => Math.sqrt(Math.max(0, v)));
    const m = Math.min(k, d);
    return { values: all.slice(0, m), vectors: Array.from({ length: m }, (_, c) => Float64Array.from({ length: d }, (_, i) => vectors[i * d + c]!)), all };
  }
  // n < d: eigenvectors u of D Dᵀ give v = Dᵀu / σ.
  const G = new Float64Array(n * n);
  for (let a = 0; a < n; a++) for (let b = a; b < n; b++) {
    let s = 0;
    for (let i = 0; i < d; i++) s += D[a * d + i]! * D[b * d + i]!;
    G[a * n + b] = s;
    G[b * n + a] = s;
  }
  const { values, vectors } = symmetricEigen(G, n);
  const all = Array.from(values, (v) => Math.sqrt(Math.max(0, v)));
  const m = Math.min(k, n);
  const out: Float64Array[] = [];
  for (let c = 0; c < m; c++) {
    const v = new Float64Array(d);
    for (let r = 0; r < n; r++) { const u = vectors[r * n + c]!; if (u !== 0) for (let i = 0; i < d; i++) v[i] += u * D[r * d + i]!; }
    const norm = Math.hypot(...v) || 1;
    for (let i = 0; i < d; i++) v[i]! /= norm;
    out.push(v);
  }
  return { values: all.slice(0, m), vectors: out, all };
}

const cosAbs = (a: ArrayLike<number>, b: ArrayLike<number>): number => {
  let s = 0, na = 0, nb = 0;
  for (let i = 0; i < a.length; i++) { s += a[i]! * b[i]!; na += a[i]! ** 2; nb += b[i]! ** 2; }
  return na && nb ? Math.abs(s) / Math.sqrt(na * nb) : 0;
};

/**
 * The spectrum of the target→source difference matrix D, row i = target[i] − source[i] (pairs up
 * to the shorter list): the layerwise SVD of Neural FOXP2's stage (ii).
 */
export function differenceSpectrum(target: readonly ArrayLike<number>[], source: readonly ArrayLike<number>[], k = 4): DifferenceSpectrum {
  const n = Math.min(target.length, source.length);
  if (n < 2) throw new Error(`differenceSpectrum: needs at least 2 pairs of rows, got ${n}`);
  const d = target[0]!.length;
  const D = new Float64Array(n * d);
  const meanDiff = new Float32Array(d);
  for (let r = 0; r < n; r++) {
    const t = target[r]!;
    const s = source[r]!;
    if (t.length !== d || s.length !== d) throw new Error(`differenceSpectrum: row ${r} has ${t.length}/${s.length} values, expected ${d}`);
    for (let i = 0; i < d; i++) { const v = t[i]! - s[i]!; D[r * d + i] = v; meanDiff[i] += v / n; }
  }
  const { values, vectors, all } = topSingular(D, n, d, Math.max(2, k));
  const directions = vectors.slice(0, k).map((v) => {
    let dot = 0;
    for (let i = 0; i < d; i++) dot += v[i]! * meanDiff[i]!;
    return Float32Array.from(v, (x) => (dot < 0 ? -x : x));
  });
  const total = all.reduce((a, b) => a + b, 0);
  const energy = all.reduce((a, b) => a + b * b, 0);
  let h = 0;
  for (const s of all) if (s > 0 && total > 0) { const p = s / total; h -= p * Math.log(p); }
  let gapRank = 1;
  let best = -Infinity;
  for (let i = 0; i + 1 < Math.min(values.length, k + 1); i++) { const g = values[i]! - values[i + 1]!; if (g > best) { best = g; gapRank = i + 1; } }
  const half = (parity: number) => {
    const idx = [...Array(n).keys()].filter((r) => r % 2 === parity);
    const H = new Float64Array(idx.length * d);
    idx.forEach((r, j) => H.set(D.subarray(r * d, (r + 1) * d), j * d));
    return topSingular(H, idx.length, d, 1).vectors[0] ?? new Float64Array(d);
  };
  return {
    rows: n,
    singular: values.slice(0, k),
    directions,
    eigengap: values[0] ? (values[0] - (values[1] ?? 0)) / values[0] : 0,
    gapRank,
    effectiveRank: total > 0 ? Math.exp(h) : 0,
    explained: energy > 0 ? (values[0] ?? 0) ** 2 / energy : 0,
    stability: cosAbs(half(0), half(1)),
    meanDiff,
  };
}

/** x projected on the span of the orthonormal `basis` vectors. */
export function projectOnto(x: ArrayLike<number>, basis: readonly ArrayLike<number>[]): Float32Array {
  const out = new Float32Array(x.length);
  for (const b of basis) {
    let dot = 0;
    for (let i = 0; i < x.length; i++) dot += x[i]! * b[i]!;
    for (let i = 0; i < x.length; i++) out[i] += dot * b[i]!;
  }
  return out;
}
