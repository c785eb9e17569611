// Starting an SAE: the decoder (Kaiming-uniform rows, as torch.nn.init.kaiming_uniform_ on
// [d_sae, d_in], then scaled to a norm), the tied encoder (W_enc = W_decᵀ), the decoder bias at
// the geometric median or the mean of a sample, and SAELens' input scaling factor.
// Not for: the training loop (train.ts).
import { Rng } from '../ops/creation.js';
import { isTranscoder, type SaeConfig } from './config.js';
import { Sae } from './sae.js';

export interface InitOptions {
  seed?: number;
  /** Norm of every decoder row (default 1: unit norm). */
  decoderNorm?: number;
  /** JumpReLU: starting threshold (default 0.01, SAELens jumprelu_init_threshold). */
  initThreshold?: number;
}

/** A fresh SAE: Kaiming-uniform decoder rows scaled to `decoderNorm`, W_enc = W_decᵀ, zero biases. */
export function initSae(cfg: SaeConfig, o: InitOptions = {}): Sae {
  const sae = Sae.zeros(cfg);
  const rng = new Rng(o.seed ?? 0);
  const n = sae.dSae;
  const dOut = sae.dOut;
  const dIn = sae.dIn;
  const Wdec = sae.param('W_dec');
  // kaiming_uniform_(a=√5) on [d_sae, d_out]: U(−1/√fan_in, 1/√fan_in) with fan_in = d_out.
  const bound = 1 / Math.sqrt(dOut);
  for (let i = 0; i < Wdec.length; i++) Wdec[i] = (2 * rng.uniform() - 1) * bound;
  const norm = o.decoderNorm ?? 1;
  for (let i = 0; i < n; i++) {
    let s = 0;
    for (let j = 0; j < dOut; j++) s += Wdec[i * dOut + j]! ** 2;
    const f = norm / Math.sqrt(s);
    for (let j = 0; j < dOut; j++) Wdec[i * dOut + j] *= f;
  }
  const Wenc = sae.param('W_enc');
  if (!isTranscoder(cfg)) {
    for (let i = 0; i < n; i++) for (let j = 0; j < dIn; j++) Wenc[j * n + i] = Wdec[i * dOut + j]!;
  } else {
    // A transcoder's encoder reads another space than its decoder writes: its own Kaiming rows,
    // scaled by 0.1 (SAELens' decoder_init_norm heuristic, moved to the encoder because the
    // decoder rows are held at unit norm), so the first reconstructions are small, not ~√(active) large.
    const b = 0.1 / Math.sqrt(dIn);
    for (let i = 0; i < Wenc.length; i++) Wenc[i] = (2 * rng.uniform() - 1) * b;
  }
  if (sae.params.has('threshold')) sae.param('threshold').fill(o.initThreshold ?? 0.01);
  sae.changed();
  return sae;
}

/** The mean of `rows` points of dimension d. */
export function meanOf(x: Float32Array, rows: number, d: number): Float32Array {
  const m = new Float64Array(d);
  for (let r = 0; r < rows; r++) for (let j = 0; j < d; j++) m[j] += x[r * d + j]!;
  return Float32Array.from(m, (v) => v / rows);
}

/**
 * The geometric median of `rows` points (Weiszfeld's iterations from the mean, denominators
 * clamped at eps, stopping when the objective improves by less than ftol of itself), as SAELens'
 * compute_geometric_median.
 */
export function geometricMedian(x: Float32Array, rows: number, d: number, o: { maxIter?: number; eps?: number; ftol?: number } = {}): Float32Array {
  const eps = o.eps ?? 1e-6;
  const ftol = o.ftol ?? 1e-20;
  const w = new Float64Array(rows).fill(1);
  let med = Float64Array.from(meanOf(x, rows, d));
  const objective = (m: Float64Array): number => {
    let s = 0;
    for (let r = 0; r < rows; r++) {
      let q = 0;
      for (let j = 0; j < d; j++) q += (x[r * d + j]! - m[j]!) ** 2;
      s += Math.sqrt(q);
    }
    return s;
  };
  let obj = objective(med);
  for (let it = 0; it < (o.maxIter ?? 100); it++) {
    for (let r = 0; r < rows; r++) {
      let q = 0;
      for (let j = 0; j < d; j++) q += (x[r * d + j]! - med[j]!) ** 2;
      w[r] = 1 / Math.max(Math.sqrt(q), eps);
    }
    const next = new Float64Array(d);
    let ws = 0;
    for (let r = 0; r < rows; r++) {
      ws += w[r]!;
      for (let j = 0; j < d; j++) next[j] += w[r]! * x[r * d + j]!;
    }
    for (let j = 0; j < d; j++) next[j] /= ws;
    med = next;
    const prev = obj;
    obj = objective(med);
    if (Math.abs(prev - obj) <= ftol * obj) break;
  }
  return Float32Array.from(med);
}

/** SAELens' expected_average_only_in factor: √d_in / mean ‖x‖ over the sample. */
export function scalingFactor(x: Float32Array, rows: number, d: number): number {
  let s = 0;
  for (let r = 0; r < rows; r++) {
    let q = 0;
    for (let j = 0; j < d; j++) q += x[r * d + j]! ** 2;
    s += Math.sqrt(q);
  }
  return Math.sqrt(d) / (s / rows);
}
