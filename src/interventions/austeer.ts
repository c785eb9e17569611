// AUSteer (Feng et al., ICLR 2026, "Fine-Grained Activation Steering: Steering Less, Achieving
// More", arXiv 2602.04428; reference code github.com/zijian678/AUSteer): steer single dimensions
// ("atomic units") of a block's activation instead of the whole block.
//   Activation momentum of dimension i: over contrastive pairs, the differences
//   g = a_i(positive) − a_i(negative) at the last token; β_i = max(#g>0, #g<0) / N, negative
//   when more differences are negative (the share of pairs that agree on the direction, signed).
//   Selection: the k dimensions with the largest |β| over every layer searched (their default
//   k = 100).
//   Steering: x_i ← x_i + α · β_i · x_i on the selected dimensions — a strength proportional to the
//   input's own activation (input-adaptive), α the global strength (their example: α = 15).
// The steering is a list of plain 'scale' interventions (factor 1 + α β_i on unit {dims}),
// grouped by hook point and factor.
import type { CausalLM } from '../models/model.js';
import type { EncodedText } from './contrastive.js';
import { InterventionError, type Intervention } from './intervention.js';
import { collectActivations, type ReadPosition } from './steering-vectors.js';

export interface AtomicUnit {
  hook: string;
  dim: number;
  /** Signed activation momentum in [−1, 1] (|β| ≥ 0.5 by construction). */
  beta: number;
}

/** β of every dimension of every hook ([batch, pos, d] points) over the contrastive pairs. */
export function activationMomenta(
  model: CausalLM, pairs: readonly { positive: EncodedText; negative: EncodedText }[], hooks: string[], read: ReadPosition = 'last',
): AtomicUnit[] {
  if (pairs.length === 0) throw new InterventionError('AUSteer: the contrastive set is empty');
  const pos = collectActivations(model, pairs.map((p) => p.positive), hooks, read);
  const neg = collectActivations(model, pairs.map((p) => p.negative), hooks, read);
  const out: AtomicUnit[] = [];
  for (const hook of hooks) {
    const P = pos.get(hook)!;
    const N = neg.get(hook)!;
    const D = P[0]!.length;
    for (let dim = 0; dim < D; dim++) {
      let up = 0;
      let down = 0;
      for (let i = 0; i < P.length; i++) {
        const g = P[i]![dim]! - N[i]![dim]!;
        if (g > 0) up++; else if (g < 0) down++;
      }
      const beta = Math.max(up, down) / P.length;
      out.push({ hook, dim, beta: up < down ? -beta : beta });
    }
  }
  return out;
}

/** The k units with the largest |β| (ties: the order of the hooks, then dimensions). */
export function selectAtomicUnits(units: readonly AtomicUnit[], k = 100): AtomicUnit[] {
  if (!Number.isInteger(k) || k < 1) throw new InterventionError(`AUSteer: k must be a positive integer, got ${k}`);
  return units.map((u, i) => ({ u, i })).sort((a, b) => Math.abs(b.u.beta) - Math.abs(a.u.beta) || a.i - b.i).slice(0, k).map((x) => x.u);
}

/** 'scale' interventions x_i ← (1 + α β_i) x_i on the selected units, one per (hook, factor). */
export function auSteerInterventions(units: readonly AtomicUnit[], alpha: number): Intervention[] {
  if (!Number.isFinite(alpha)) throw new InterventionError(`AUSteer: alpha must be finite, got ${alpha}`);
  const groups = new Map<string, { hook: string; factor: number; dims: number[] }>();
  for (const u of units) {
    const factor = 1 + alpha * u.beta;
    const key = `${u.hook}|${factor}`;
    const g = groups.get(key) ?? { hook: u.hook, factor, dims: [] };
    g.dims.push(u.dim);
    groups.set(key, g);
  }
  return [...groups.values()].map((g) => ({ hook: g.hook, unit: { dims: g.dims.sort((a, b) => a - b) }, op: 'scale', factor: g.factor, name: `AUSteer ×${g.factor.toFixed(3)}` }));
}
