// Calibration of activation sparsity: one pass over calibration tokens records, per block, the
// magnitudes the thresholds are quantiles of, then turns them into a plan (thresholds per layer or
// per channel) for a method:
//   cats     t_l = Quantile(|a|, F) over all tokens and channels of layer l (a = act(gate) for gated MLPs)
//   chess    CHESS (He et al. 2024, §3.2, and its thresholds.py): importance s_ij = |a_ij| · E|u_j|
//            (u the up projection), τ_l = Quantile(s, F), channel threshold t_j = τ_l / E|u_j|:
//            channels whose up projection is small are cut more. A plain (ungated) MLP has no u:
//            E|u_j| = 1 and chess equals cats.
//   chess+   chess, plus one threshold per layer for the query projection's input (the normalized
//            residual) and one for the output projection's input (hook_z), each the F-quantile of
//            its |x| (keys and values stay dense: CHESS's selective sparsification).
//   teal     every projection's input at its own F-quantile of |x| (teal.ts)
//   threshold T  checked against the calibration tokens: a T that zeroes every activation of a
//            layer is refused.
// The quantile is the k-th smallest value with k = floor(n · F), as torch.kthvalue in CHESS.
// Not for: installing the plan on a model (apply.ts).
import { unary } from '../ops/elementwise.js';
import { blockHook } from '../models/hook-point.js';
import type { CausalLM } from '../models/model.js';
import type { Tensor } from '../tensor/tensor.js';
import { checkSpec, formatSpec, needsCalibration, type SparsitySpec } from './spec.js';
import { blockLinears, calibrateTeal, forwardChunks } from './teal.js';

/** Fewest calibration tokens a calibrated method accepts (per-channel quantiles need a sample per channel). */
export const MIN_CALIBRATION_TOKENS = 64;

export interface LayerPlan {
  layer: number;
  /** One threshold on |a| for the whole MLP activation (threshold, cats). */
  threshold?: number;
  /** One threshold per MLP channel (chess). */
  channelThresholds?: Float32Array;
  /** chess+: thresholds on the query projection's input and the output projection's input. */
  qThreshold?: number;
  oThreshold?: number;
  /** teal: the threshold on each projection's input, by role (teal.ts `blockLinears`). */
  inputThresholds?: Record<string, number>;
  /** Share of MLP activations zeroed on the calibration tokens (null for top-k, which is exact by construction). */
  calibrationSparsity: number | null;
}

export interface SparsityPlan {
  spec: SparsitySpec;
  layers: LayerPlan[];
  calibrationTokens: number;
}

interface LayerSamples {
  act: Float32Array[]; // |a| per call, [tokens * d_mlp]
  upSum?: Float64Array; // Σ|u_j|
  qIn: Float32Array[];
  oIn: Float32Array[];
  tokens: number;
}

function absOf(t: Tensor): Float32Array {
  const d = Float32Array.from(t.dataSync() as Float32Array);
  for (let i = 0; i < d.length; i++) d[i] = Math.abs(d[i]!);
  return d;
}

function concat(parts: Float32Array[]): Float32Array {
  const out = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) { out.set(p, o); o += p.length; }
  return out;
}

/** The k-th smallest of `v` (k = floor(n · q), at least 1), as torch.kthvalue. Sorts a copy. */
export function quantile(v: Float32Array, q: number): number {
  if (v.length === 0) throw new Error('quantile of no values');
  const s = Float32Array.from(v).sort();
  const k = Math.max(1, Math.min(s.length, Math.floor(s.length * q)));
  return s[k - 1]!;
}

/** The layers whose MLP (and, for chess+, attention) the method reaches; throws when there are none. */
export function sparseLayers(model: CausalLM, spec: SparsitySpec): number[] {
  const layers: number[] = [];
  for (let l = 0; l < model.dims.nLayers; l++) {
    const p = model.sparsityParts(l);
    if (p.mlp || (spec.method === 'teal' && blockLinears(p).length)) layers.push(l);
  }
  if (!layers.length) {
    throw new Error(`${formatSpec(spec)}: ${model.dims.arch} has no dense MLP blocks that activation sparsity can reach (attention-only or mixture-of-experts blocks)`);
  }
  return layers;
}

/** Records the magnitudes every method's thresholds need, over `ids` cut into chunks of `ctx`. */
function sample(model: CausalLM, ids: readonly number[], layers: number[], attention: boolean, ctx: number): Map<number, LayerSamples> {
  const stats = new Map<number, LayerSamples>();
  const hooks: [string, (t: Tensor) => void][] = [];
  for (const l of layers) {
    const parts = model.sparsityParts(l);
    if (parts.mlp?.sparse || parts.q?.sparse || parts.o?.sparse) throw new Error(`sparsity calibration: block ${l} already has sparsity applied; remove it first`);
    const s: LayerSamples = { act: [], qIn: [], oIn: [], tokens: 0 };
    stats.set(l, s);
    const mlp = parts.mlp!;
    hooks.push([blockHook(l, 'mlp.hook_pre'), (t) => {
      const a = unary(mlp.act, t);
      s.act.push(absOf(a));
      a.dispose();
      s.tokens += t.size / t.shape.at(-1)!;
    }]);
    if (mlp.up) {
      hooks.push([blockHook(l, 'mlp.hook_pre_linear'), (t) => {
        const u = absOf(t);
        const d = t.shape.at(-1)!;
        s.upSum ??= new Float64Array(d);
        for (let i = 0; i < u.length; i++) s.upSum[i % d] += u[i]!;
      }]);
    }
    if (attention) {
      if (parts.q) hooks.push([blockHook(l, 'ln1.hook_normalized'), (t) => { s.qIn.push(absOf(t)); }]);
      if (parts.o) hooks.push([blockHook(l, 'attn.hook_z'), (t) => { s.oIn.push(absOf(t)); }]);
    }
  }
  model.withHooks(hooks, () => forwardChunks(model, ids, ctx));
  return stats;
}

/**
 * The thresholds of `spec` for `model`, from calibration token ids (not needed for top-k). Throws
 * when the calibration is too short or a threshold would zero a whole layer.
 */
export function planSparsity(model: CausalLM, spec: SparsitySpec, calibration: readonly number[] = [], o: { ctx?: number } = {}): SparsityPlan {
  const name = formatSpec(spec);
  checkSpec(spec, name);
  const layers = sparseLayers(model, spec);
  if (spec.method === 'topk') return { spec, layers: layers.map((layer) => ({ layer, calibrationSparsity: null })), calibrationTokens: 0 };
  if (needsCalibration(spec) && calibration.length < MIN_CALIBRATION_TOKENS) {
    throw new Error(`${name}: calibration needs at least ${MIN_CALIBRATION_TOKENS} tokens to estimate its thresholds, got ${calibration.length} (give a longer calibration text)`);
  }
  if (spec.method === 'threshold' && calibration.length === 0) {
    throw new Error(`${name}: give calibration tokens, so a threshold that would zero a whole layer can be caught`);
  }
  const ctx = Math.min(o.ctx ?? 256, model.dims.nCtx);
  if (spec.method === 'teal') {
    const teal = calibrateTeal(model, calibration, layers, (site) => (spec.sites ? spec.sites[site] ?? 0 : spec.value), ctx);
    return {
      spec, calibrationTokens: calibration.length,
      layers: layers.map((layer) => ({ layer, inputThresholds: teal.get(layer)!.inputThresholds, calibrationSparsity: teal.get(layer)!.calibrationSparsity })),
    };
  }
  const attention = spec.method === 'chess+';
  const stats = sample(model, calibration, layers, attention, ctx);
  const F = spec.value;
  const out: LayerPlan[] = [];
  for (const l of layers) {
    const s = stats.get(l)!;
    const act = concat(s.act); // [tokens * d_mlp]
    const d = act.length / s.tokens;
    const p: LayerPlan = { layer: l, calibrationSparsity: null };
    if (spec.method === 'threshold' || spec.method === 'cats') {
      const t = spec.method === 'cats' ? quantile(act, F) : F;
      p.threshold = t;
      p.calibrationSparsity = shareBelow(act, () => t);
    } else {
      const mean = new Float32Array(d).fill(1); // E|u_j| (1 without an up projection)
      if (s.upSum) for (let j = 0; j < d; j++) mean[j] = s.upSum[j]! / s.tokens;
      const imp = new Float32Array(act.length);
      for (let i = 0; i < act.length; i++) imp[i] = act[i]! * mean[i % d]!;
      const tau = quantile(imp, F);
      p.channelThresholds = mean.map((m) => (m > 0 ? tau / m : Infinity));
      p.calibrationSparsity = shareBelow(act, (i) => p.channelThresholds![i % d]!);
      if (attention) {
        if (s.qIn.length) p.qThreshold = quantile(concat(s.qIn), F);
        if (s.oIn.length) p.oThreshold = quantile(concat(s.oIn), F);
      }
    }
    if (p.calibrationSparsity === 1) {
      let max = 0;
      for (const v of act) max = Math.max(max, v);
      throw new Error(`${name} would zero every MLP activation of block ${l} (blocks.${l}.mlp): the largest |activation| on the ${s.tokens} calibration tokens is ${max.toPrecision(4)}; use a smaller threshold`);
    }
    out.push(p);
  }
  return { spec, layers: out, calibrationTokens: calibration.length };
}

function shareBelow(act: Float32Array, t: (i: number) => number): number {
  let n = 0;
  for (let i = 0; i < act.length; i++) if (act[i]! < t(i)) n++;
  return n / act.length;
}
