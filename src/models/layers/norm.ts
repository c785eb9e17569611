// LayerNorm and RMSNorm with their hook points `<prefix>.hook_scale` ([batch, pos, 1], the
// divisor sqrt(var + eps) or sqrt(mean x² + eps)) and `<prefix>.hook_normalized` ([batch, pos,
// d_model], after weight and bias). The fused op runs unless someone listens at hook_scale.
// On backends that fuse a residual add with the norm of its result (`prefersFusedAddNorm`),
// `addThenNorm` computes both at once and `normOf` hands the norm out only if the hooks between
// them left the sum as it was; otherwise the norm is computed again from what the hooks returned.
import { add, div, mul, sqrt, sub } from '../../ops/elementwise.js';
import { addNorm, layerNorm, rmsNorm } from '../../ops/nn.js';
import { mean } from '../../ops/reduce.js';
import { tidy } from '../../tensor/engine.js';
import type { Tensor } from '../../tensor/tensor.js';
import { SHAPE, type Hooks } from '../hook-point.js';

export interface Norm {
  kind: 'layernorm' | 'rmsnorm';
  eps: number;
  weight?: Tensor;
  bias?: Tensor;
  /** RMSNorm multiplies by (offset + weight); Gemma uses 1. */
  offset?: number;
}

export function applyNorm(x: Tensor, n: Norm, hooks: Hooks, prefix: string): Tensor {
  let y: Tensor;
  if (!hooks.wants(`${prefix}.hook_scale`)) {
    y = n.kind === 'layernorm' ? layerNorm(x, n.weight, n.bias, n.eps) : rmsNorm(x, n.weight, { eps: n.eps, offset: n.offset ?? 0 });
  } else {
    y = tidy(() => {
      const centered = n.kind === 'layernorm' ? sub(x, mean(x, -1, { keepDims: true })) : x;
      let scale = sqrt(add(mean(mul(centered, centered), -1, { keepDims: true }), n.eps)); // [batch, pos, 1]
      scale = hooks.at(`${prefix}.hook_scale`, scale, SHAPE.scale); // [batch, pos, 1]
      let out = div(centered, scale);
      if (n.weight) out = mul(out, n.kind === 'rmsnorm' && n.offset ? add(n.weight, n.offset) : n.weight);
      if (n.bias) out = add(out, n.bias);
      return out;
    });
  }
  return hooks.at(`${prefix}.hook_normalized`, y, SHAPE.resid); // [batch, pos, d_model]
}

/** A residual sum and, when the backend fused it, the norm `norm` of that sum (not yet through its hooks). */
export interface SumAndNorm {
  sum: Tensor; // [batch, pos, d_model]
  /** norm(sum) [batch, pos, d_model]; undefined where the add ran alone. */
  y?: Tensor;
  norm?: Norm;
}

/**
 * a + b, with the norm n of the sum computed in the same op where the backend prefers it and no
 * one listens at `${prefix}.hook_scale` (or records the hook points). The caller passes `sum`
 * through its hook points, then gets the norm with `normOf`.
 */
export function addThenNorm(a: Tensor, b: Tensor, n: Norm, hooks: Hooks, prefix: string): SumAndNorm {
  const fuse = a.backend.prefersFusedAddNorm === true && !hooks.recording && !hooks.wants(`${prefix}.hook_scale`);
  if (!fuse) return { sum: add(a, b) };
  const kind = n.kind === 'layernorm' ? 'layer' : 'rms';
  const r = addNorm(a, b, { kind, weight: n.weight, bias: n.bias, eps: n.eps, offset: n.offset ?? 0 });
  return { sum: r.sum, y: r.y, norm: n };
}

/**
 * The norm n of x with its hooks at `prefix` (as `applyNorm`): the one `ahead` computed when x is
 * still its sum and the norm is the same, else computed here (an unused `ahead.y` is disposed).
 */
export function normOf(x: Tensor, n: Norm, hooks: Hooks, prefix: string, ahead: SumAndNorm | undefined): Tensor {
  if (ahead?.y && ahead.norm === n && sameView(x, ahead.sum)) return hooks.at(`${prefix}.hook_normalized`, ahead.y, SHAPE.resid); // [batch, pos, d_model]
  ahead?.y?.dispose();
  return applyNorm(x, n, hooks, prefix);
}

/** x is `sum` or another handle on the same elements (a hook point's own handle: layers/block.ts). */
function sameView(x: Tensor, sum: Tensor): boolean {
  if (x === sum) return true;
  if (x.isDisposed || sum.isDisposed || x.storageKey !== sum.storageKey || x.offset !== sum.offset) return false;
  return x.shape.every((d, i) => d === sum.shape[i]) && x.strides.every((d, i) => d === sum.strides[i]) && x.rank === sum.rank;
}
