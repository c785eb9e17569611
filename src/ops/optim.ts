// Fused optimizer steps as single ops, for backends that run them natively (one kernel instead of
// a dozen elementwise passes per parameter; the WebGPU backend and the reference have them).
import { dispatch } from '../tensor/engine.js';
import { ShapeError } from '../tensor/errors.js';
import { fmtShape } from '../tensor/shape.js';
import type { Tensor } from '../tensor/tensor.js';

export interface AdamWStep {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
  /** Updates taken including this one (for the bias corrections). */
  step: number;
  /** The gradient is multiplied by this first (clipping); default 1. */
  gradScale?: number;
}

/** One AdamW update of parameter `p` (the `adamw` op): returns [p', m', v'] as new tensors. */
export function adamwStep(p: Tensor, g: Tensor, m: Tensor, v: Tensor, o: AdamWStep): [Tensor, Tensor, Tensor] {
  for (const [n, t] of [['g', g], ['m', m], ['v', v]] as const) {
    if (t.dtype !== 'f32' || fmtShape(t.shape) !== fmtShape(p.shape)) throw new ShapeError(`adamwStep: ${n} is ${t.dtype}${fmtShape(t.shape)}, p is ${p.dtype}${fmtShape(p.shape)}; all must be f32 of one shape`);
  }
  if (p.dtype !== 'f32') throw new ShapeError(`adamwStep: p must be f32, got ${p.dtype}`);
  const out = { shape: p.shape, dtype: 'f32' as const };
  const [a, b, c] = dispatch({ op: 'adamw', lr: o.lr, beta1: o.beta1, beta2: o.beta2, eps: o.eps, weightDecay: o.weightDecay, step: o.step, gradScale: o.gradScale ?? 1 }, [p, g, m, v], [out, out, out]);
  return [a!, b!, c!];
}

