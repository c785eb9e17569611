// The rules that make an activation sparse, as tensor functions (any backend, no host reads):
// top-k per row by magnitude (Lazy Neuron's enforced top-k), a threshold on |a| (one value, or one
// per channel as CHESS calibrates them). Each returns a new tensor the caller owns; the input is
// left alone. Also hook functions, so the same rules run at any hook point of any model
// (`model.withHooks([['blocks.3.mlp.hook_post', topkHook(64)]], ...)`).
import { abs, ge, where } from '../ops/elementwise.js';
import { topk } from '../ops/reduce.js';
import { tidy } from '../tensor/engine.js';
import type { Tensor } from '../tensor/tensor.js';
import type { HookFn } from '../models/hook-point.js';
import { topkKeep } from './spec.js';

/** Keeps the `k` entries of largest magnitude in each row of x [..., d] (ties at the k-th value are kept too). */
export function topkSparsify(x: Tensor, k: number): Tensor {
  const d = x.shape.at(-1)!;
  if (!Number.isInteger(k) || k < 1) throw new RangeError(`topk sparsity: k must be a whole number >= 1, got ${k}`);
  if (k >= d) return x.share();
  return tidy(() => {
    const mag = abs(x); // [..., d]
    const kth = topk(mag, k).values.narrow(-1, k - 1, 1); // [..., 1]
    return where(ge(mag, kth), x, 0);
  });
}

/** Zeroes entries with |x| < t; `t` is one number or a tensor that broadcasts against x (per channel: [d]). */
export function thresholdSparsify(x: Tensor, t: number | Tensor): Tensor {
  return tidy(() => where(ge(abs(x), t), x, 0));
}

/** A hook that keeps the top `keep` entries per row (a count >= 1, or the share to zero in (0, 1)). */
export function topkHook(keep: number): HookFn {
  return (a) => topkSparsify(a, topkKeep({ method: 'topk', value: keep }, a.shape.at(-1)!));
}

/** A hook that zeroes |a| < t at the hook point it is registered on. */
export function thresholdHook(t: number | Tensor): HookFn {
  return (a) => thresholdSparsify(a, t);
}
