// Losses for training language models.
import { arange, tensor } from '../ops/creation.js';
import { eq, mul, where } from '../ops/elementwise.js';
import { logSoftmax } from '../ops/nn.js';
import { sum } from '../ops/reduce.js';
import { ShapeError } from '../tensor/errors.js';
import { fmtShape } from '../tensor/shape.js';
import type { Tensor } from '../tensor/tensor.js';

export interface CrossEntropyOptions {
  /** Targets equal to this are not counted (PyTorch's default -100). */
  ignoreIndex?: number;
}

/**
 * Mean negative log-likelihood of `targets` i32 [b, t] under `logits` [b, t, V] (PyTorch's
 * cross_entropy with mean reduction): log-softmax, then each row's target entry selected by a
 * one-hot mask (class index == target) and summed over the row, so forward and backward are
 * elementwise passes and row sums over [b·t, V] (no scatter: every gradient entry is written once).
 */
export function crossEntropy(logits: Tensor, targets: Tensor, o: CrossEntropyOptions = {}): Tensor {
  const V = logits.shape.at(-1)!;
  const n = logits.size / (V || 1);
  if (targets.dtype !== 'i32' || targets.size !== n || targets.rank !== logits.rank - 1) {
    throw new ShapeError(`crossEntropy: targets must be i32${fmtShape(logits.shape.slice(0, -1))} for logits ${fmtShape(logits.shape)}, got ${targets.dtype}${fmtShape(targets.shape)}`);
  }
  const ignore = o.ignoreIndex ?? -100;
  const host = targets.dataSync() as Int32Array;
  const cls = new Int32Array(n).fill(-1);
  const w = new Float32Array(n);
  let count = 0;
  for (let i = 0; i < n; i++) {
    const t = host[i]!;
    if (t === ignore) continue;
    if (t < 0 || t >= V) throw new RangeError(`crossEntropy: target ${t} at ${i} is out of range for ${V} classes`);
    cls[i] = t;
    w[i] = 1;
    count++;
  }
  const b = logits.backend;
  const logp = logSoftmax(logits).reshape([n, V]);
  const hit = eq(arange(0, V, 1, 'i32', { backend: b }).reshape([1, V]), tensor(cls, [n, 1], 'i32', { backend: b })); // u8 [n, V]
  const picked = sum(where(hit, logp, 0), -1); // [n]
  const weights = tensor(w.map((x) => (count ? -x / count : 0)), [n], logits.dtype, { backend: b });
  return sum(mul(picked, weights), 0);
}
