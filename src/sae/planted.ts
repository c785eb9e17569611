// Planted ground truth for dictionary learning: activations made as sparse non-negative
// combinations of known unit directions plus Gaussian noise, and the measure of how many of those
// directions a trained SAE's decoder recovers (best cosine per true direction).
// Not for: anything trained on real models.
import { Rng } from '../ops/creation.js';
import type { Sae } from './sae.js';

export interface PlantedData {
  x: Float32Array; // [rows, d]
  directions: Float32Array; // [features, d], unit rows
  rows: number;
  d: number;
  features: number;
}

export interface PlantedOptions {
  d: number;
  features: number;
  rows: number;
  /** Probability a feature is on in a row (default 4 / features). */
  density?: number;
  /** Gaussian noise per coordinate (default 0.01). */
  noise?: number;
  seed?: number;
}

/** Rows x = Σ_i a_i f_i + ε, with a_i ~ U(0.5, 1.5) when feature i fires. */
export function plantedActivations(o: PlantedOptions): PlantedData {
  const rng = new Rng(o.seed ?? 0);
  const { d, features, rows } = o;
  const dirs = new Float32Array(features * d);
  for (let i = 0; i < features; i++) {
    let s = 0;
    for (let j = 0; j < d; j++) { const v = rng.normal(); dirs[i * d + j] = v; s += v * v; }
    const f = 1 / Math.sqrt(s);
    for (let j = 0; j < d; j++) dirs[i * d + j] *= f;
  }
  const p = o.density ?? 4 / features;
  const noise = o.noise ?? 0.01;
  const x = new Float32Array(rows * d);
  for (let r = 0; r < rows; r++) {
    for (let i = 0; i < features; i++) {
      if (rng.uniform() >= p) continue;
      const a = 0.5 + rng.uniform();
      for (let j = 0; j < d; j++) x[r * d + j] += a * dirs[i * d + j]!;
    }
    for (let j = 0; j < d; j++) x[r * d + j] += noise * rng.normal();
  }
  return { x, directions: dirs, rows, d, features };
}

/** For each true direction, the best cosine with any decoder row; and the fraction at or above `threshold`. */
export function recoveredDirections(sae: Sae, directions: Float32Array, d: number, threshold = 0.9): { best: Float32Array; fraction: number } {
  const W = sae.param('W_dec');
  const n = sae.dSae;
  const m = directions.length / d;
  const norms = new Float32Array(n);
  for (let i = 0; i < n; i++) { let s = 0; for (let j = 0; j < d; j++) s += W[i * d + j]! ** 2; norms[i] = Math.sqrt(s) || 1; }
  const best = new Float32Array(m).fill(-1);
  for (let t = 0; t < m; t++) {
    let tn = 0;
    for (let j = 0; j < d; j++) tn += directions[t * d + j]! ** 2;
    tn = Math.sqrt(tn);
    for (let i = 0; i < n; i++) {
      let dot = 0;
      for (let j = 0; j < d; j++) dot += directions[t * d + j]! * W[i * d + j]!;
      const c = dot / (tn * norms[i]!);
      if (c > best[t]!) best[t] = c;
    }
  }
  let hit = 0;
  for (const b of best) if (b >= threshold) hit++;
  return { best, fraction: hit / m };
}
