// LayerNorm and RMSNorm with their hook points `<prefix>.hook_scale` ([batch, pos, 1], the
// divisor sqrt(var + eps) or sqrt(mean x² + eps)) and `<prefix>.hook_normalized` ([batch, pos,
// d_model], after weight and bias). The fused op runs unless someone listens at hook_scale.
import { add, div, mul, sqrt, sub } from '../../ops/elementwise.js';
import { layerNorm, rmsNorm } from '../../ops/nn.js';
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
