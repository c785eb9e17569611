// Model organism: modular addition, as in Nanda et al. 2023 ("Progress measures for grokking via
// mechanistic interpretability") and "On the Mechanism and Dynamics of Modular Addition": a
// one-layer transformer reads "a b =" (tokens 0..p-1, then p for "=") and predicts (a + b) mod p
// at the last position. 30% of the p² pairs train it, full batch, AdamW with weight decay 1.0;
// it memorises first and generalises (groks) much later. The Fourier analysis finds the few key
// frequencies its embedding and MLP neurons use.
import type { Backend } from '../tensor/backend.js';
import { Rng, tensor } from '../ops/creation.js';
import { noGrad } from '../autograd/tape.js';
import { tidy } from '../tensor/engine.js';
import { runWithCache } from '../hooks/run.js';
import type { CausalLM } from '../models/model.js';

export const P = 113;

/** Nanda et al.'s configuration: d_model 128, 4 heads of 32, d_mlp 512, ReLU, no LayerNorm, no biases. */
export function modularAdditionConfig(p = P): Record<string, unknown> {
  return { model_type: 'actlab_toy', architectures: ['ActlabToyTransformer'], d_model: 128, n_heads: 4, d_head: 32, n_layers: 1, d_mlp: 512, act_fn: 'relu', d_vocab: p + 1, n_ctx: 3, normalization: null, organism: 'modular-addition', p };
}

/** All pairs as [a, b, =, c], split by a seeded shuffle into train (`frac`) and test. */
export function modularAdditionData(p = P, frac = 0.3, seed = 598): { train: number[][]; test: number[][] } {
  const all: number[][] = [];
  for (let a = 0; a < p; a++) for (let b = 0; b < p; b++) all.push([a, b, p, (a + b) % p]);
  const rng = new Rng(seed);
  for (let i = all.length - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    [all[i], all[j]] = [all[j]!, all[i]!];
  }
  const n = Math.round(frac * all.length);
  return { train: all.slice(0, n), test: all.slice(n) };
}

export interface FourierReport {
  /** Frequencies k (1..(p-1)/2) by the share of the embedding's norm² they hold, largest first. */
  embedding: { k: number; share: number }[];
  /** Frequencies holding more than 3× a uniform share (3 / ((p-1)/2)) of the embedding's non-constant norm². */
  keyFrequencies: number[];
  keyShare: number;
  /** Per key frequency: neurons whose activation over all (a, b) it explains best, and their mean share explained. */
  neurons: { k: number; count: number; meanExplained: number }[];
  /** Share of MLP neurons whose best single frequency explains ≥ 50% of their variance. */
  neuronsExplained: number;
}

function fourierBasis(p: number): Float64Array[] {
  const rows: Float64Array[] = [];
  for (let k = 1; k <= (p - 1) / 2; k++) {
    rows.push(Float64Array.from({ length: p }, (_, x) => Math.cos((2 * Math.PI * k * x) / p) * Math.sqrt(2 / p)));
    rows.push(Float64Array.from({ length: p }, (_, x) => Math.sin((2 * Math.PI * k * x) / p) * Math.sqrt(2 / p)));
  }
  return rows;
}

/** The Fourier analysis of a trained modular-addition model. */
export function fourierAnalysis(model: CausalLM, p = P): FourierReport {
  const d = model.dims.dModel;
  const WE = tidy(() => model.parameters().get('embed.W_E')!.dataSync());
  const basis = fourierBasis(p);
  const power = new Float64Array((p - 1) / 2);
  basis.forEach((row, r) => {
    for (let j = 0; j < d; j++) {
      let s = 0;
      for (let x = 0; x < p; x++) s += row[x]! * WE[x * d + j]!;
      power[r >> 1]! += s * s;
    }
  });
  const total = power.reduce((a, b) => a + b, 0);
  const embedding = Array.from(power, (v, i) => ({ k: i + 1, share: v / total })).sort((a, b) => b.share - a.share);
  const uniform = 1 / power.length;
  const key = embedding.filter((e) => e.share > 3 * uniform);
  const keyFrequencies = key.map((e) => e.k);
  const keyShare = key.reduce((a, e) => a + e.share, 0);
  // Neurons: activation at "=" over the whole (a, b) grid, projected on the 2-D Fourier basis.
  const ids: number[] = [];
  for (let a = 0; a < p; a++) for (let b = 0; b < p; b++) ids.push(a, b, p);
  const acts = noGrad(() => {
    const x = tensor(ids, [p * p, 3], 'i32', { backend: model.backend });
    const { logits, cache } = runWithCache(model, x, { names: ['blocks.0.mlp.hook_post'], positions: [2] });
    const a = cache.get('blocks.0.mlp.hook_post').dataSync();
    logits.dispose(); cache.dispose(); x.dispose();
    return a;
  });
  const m = model.dims.dMlp;
  const half = (p - 1) / 2;
  const byK = new Map<number, { count: number; sum: number }>();
  let explained = 0;
  const cosT = Array.from({ length: half + 1 }, (_, k) => Float64Array.from({ length: p }, (_, x) => Math.cos((2 * Math.PI * k * x) / p)));
  const sinT = Array.from({ length: half + 1 }, (_, k) => Float64Array.from({ length: p }, (_, x) => Math.sin((2 * Math.PI * k * x) / p)));
  for (let n = 0; n < m; n++) {
    let mean = 0;
    for (let i = 0; i < p * p; i++) mean += acts[i * m + n]!;
    mean /= p * p;
    let varTotal = 0;
    for (let i = 0; i < p * p; i++) varTotal += (acts[i * m + n]! - mean) ** 2;
    if (varTotal < 1e-12) continue;
    // Power of the components of frequency k in a, in b, and jointly (kx, ky ∈ {0, k}, not both 0).
    const powerK = (k: number): number => {
      let pw = 0;
      const terms: [Float64Array | null, Float64Array | null][] = [];
      for (const fa of [null, cosT[k]!, sinT[k]!]) for (const fb of [null, cosT[k]!, sinT[k]!]) if (fa || fb) terms.push([fa, fb]);
      for (const [fa, fb] of terms) {
        let dot = 0;
        let norm = 0;
        for (let a = 0; a < p; a++) for (let b = 0; b < p; b++) {
          const basisV = (fa ? fa[a]! : 1) * (fb ? fb[b]! : 1);
          dot += basisV * (acts[(a * p + b) * m + n]! - mean);
          norm += basisV * basisV;
        }
        pw += (dot * dot) / norm;
      }
      return pw;
    };
    let bestK = 1;
    let best = -1;
    for (const k of keyFrequencies.length ? keyFrequencies : [1]) {
      const v = powerK(k);
      if (v > best) { best = v; bestK = k; }
    }
    const share = best / varTotal;
    if (share >= 0.5) explained++;
    const e = byK.get(bestK) ?? { count: 0, sum: 0 };
    e.count++;
    e.sum += share;
    byK.set(bestK, e);
  }
  return {
    embedding: embedding.slice(0, 12), keyFrequencies, keyShare,
    neurons: [...byK].map(([k, e]) => ({ k, count: e.count, meanExplained: e.sum / e.count })).sort((a, b) => b.count - a.count),
    neuronsExplained: explained / m,
  };
}

export type { Backend };
