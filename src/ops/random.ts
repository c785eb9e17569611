// Random numbers drawn on the tensor's own backend (the `random` op: a counter-based hash, the
// same numbers on every backend, no transfer from the host) and dropout built on them.
import { runsNatively } from '../tensor/backend.js';
import { isFloat } from '../tensor/dtype.js';
import { dispatch, dispatchInto, getBackend, tidy } from '../tensor/engine.js';
import { assertShape, numel } from '../tensor/shape.js';
import { Tensor } from '../tensor/tensor.js';
import { add, cos, ge, log, mul, sqrt, sub, where } from './elementwise.js';
import type { Placement } from './creation.js';

/** f32 numbers uniform in [0, 1), element i a pure function of (seed, i); computed on the backend. */
export function randomUniform(shape: readonly number[], seed: number, at: Placement = {}): Tensor {
  if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) throw new RangeError(`randomUniform: seed must be an integer in [0, 2^32), got ${seed}`);
  const t = Tensor.empty(assertShape(shape, 'randomUniform'), 'f32', at.backend ?? getBackend(), 'random');
  if (numel(shape) > 0) dispatchInto({ op: 'random', seed }, [], [t]);
  return t;
}

/**
 * f32 normal numbers (mean + std · Box-Muller of two `randomUniform` draws, seeds 2·seed and
 * 2·seed + 1), computed on the backend: random weights for large models without drawing them in
 * JavaScript and uploading them. Not the same numbers as `randn` (which draws on the host).
 */
export function randomNormal(shape: readonly number[], seed: number, o: { mean?: number; std?: number } & Placement = {}): Tensor {
  if (!Number.isInteger(seed) || seed < 0 || seed >= 0x80000000) throw new RangeError(`randomNormal: seed must be an integer in [0, 2^31), got ${seed}`);
  const at = { backend: o.backend ?? getBackend() };
  return tidy(() => {
    const r = sqrt(mul(log(sub(1, randomUniform(shape, 2 * seed, at))), -2)); // 1 - u lies in (0, 1]
    const z = mul(r, cos(mul(randomUniform(shape, 2 * seed + 1, at), 2 * Math.PI)));
    return add(mul(z, o.std ?? 1), o.mean ?? 0);
  });
}

/**
 * Inverted dropout (PyTorch's F.dropout in training): each element is zeroed with probability `p`
 * and the rest scaled by 1 / (1 - p); the mask comes from `randomUniform(x.shape, seed)`, so the
 * same seed drops the same elements. Differentiable in x (the gradient passes through the mask).
 * One `dropout` op where the backend runs it natively (the same elements and values), else the
 * draw, a comparison, a product and a `where`.
 */
export function dropout(x: Tensor, p: number, seed: number): Tensor {
  if (!(p >= 0 && p < 1)) throw new RangeError(`dropout: p must lie in [0, 1), got ${p}`);
  if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) throw new RangeError(`dropout: seed must be an integer in [0, 2^32), got ${seed}`);
  if (p === 0) return x.share();
  if (isFloat(x.dtype) && runsNatively(x.backend, 'dropout')) return dispatch({ op: 'dropout', p, seed }, [x], [{ shape: x.shape, dtype: x.dtype }])[0]!;
  return tidy(() => where(ge(randomUniform(x.shape, seed, { backend: x.backend }), p), mul(x, 1 / (1 - p)), 0));
}
