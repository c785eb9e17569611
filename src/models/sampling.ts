// Choosing the next token from logits, in the order of transformers' logits processors:
// repetition penalty, temperature, top-k, top-p, then a seeded draw (or argmax when greedy).
import { Rng } from '../ops/creation.js';

export interface SamplingOptions {
  /** 0 (or undefined) is greedy. */
  temperature?: number;
  topK?: number;
  topP?: number;
  /** > 1 discourages tokens already present (transformers' RepetitionPenaltyLogitsProcessor). */
  repetitionPenalty?: number;
}

/** Picks one token from `logits` (one row of the vocabulary); `seen` are the ids so far. */
export function pickToken(logits: Float32Array, seen: readonly number[], o: SamplingOptions, rng: Rng): number {
  const x = Float64Array.from(logits);
  const rp = o.repetitionPenalty ?? 1;
  if (rp !== 1) {
    for (const id of new Set(seen)) x[id] = x[id]! < 0 ? x[id]! * rp : x[id]! / rp;
  }
  const t = o.temperature ?? 0;
  if (!(t > 0)) return argmax(x);
  for (let i = 0; i < x.length; i++) x[i] = x[i]! / t;
  let order = Array.from(x.keys()).sort((a, b) => x[b]! - x[a]! || a - b);
  if (o.topK && o.topK > 0 && o.topK < order.length) order = order.slice(0, o.topK);
  const max = x[order[0]!]!;
  let probs = order.map((i) => Math.exp(x[i]! - max));
  let z = probs.reduce((a, b) => a + b, 0);
  probs = probs.map((p) => p / z);
  if (o.topP !== undefined && o.topP < 1) {
    // Keep the smallest prefix whose mass reaches top_p (at least one token).
    let cum = 0;
    let keep = 0;
    while (keep < probs.length && (keep === 0 || cum < o.topP)) cum += probs[keep++]!;
    order = order.slice(0, keep);
    probs = probs.slice(0, keep);
    z = probs.reduce((a, b) => a + b, 0);
    probs = probs.map((p) => p / z);
  }
  let u = rng.uniform();
  for (let i = 0; i < probs.length; i++) {
    u -= probs[i]!;
    if (u < 0) return order[i]!;
  }
  return order[order.length - 1]!;
}

export function argmax(x: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < x.length; i++) if (x[i]! > x[best]! || Number.isNaN(x[i]!)) { best = i; if (Number.isNaN(x[i]!)) break; }
  return best;
}
