// Losses for training language models.
import { tensor } from '../ops/creation.js';
import { mul } from '../ops/elementwise.js';
import { gather, logSoftmax } from '../ops/nn.js';
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
 * cross_entropy with mean reduction): log-softmax, then the target entries picked by a gather on
 * the flattened [b·t·V] log-probabilities, so the backward is one scatter-add.
 */
export function crossEntropy(logits: Tensor, targets: Tensor, o: CrossEntropyOptions = {}): Tensor {
  const V = logits.shape.at(-1)!;
  const n = logits.size / (V || 1);
  if (targets.dtype !== 'i32' || targets.size !== n || targets.rank !== logits.rank - 1) {
    throw new ShapeError(`crossEntropy: targets must be i32${fmtShape(logits.shape.slice(0, -1))} for logits ${fmtShape(logits.shape)}, got ${targets.dtype}${fmtShape(targets.shape)}`);
  }
  const ignore = o.ignoreIndex ?? -100;
  const host = targets.dataSync() as Int32Array;
  const ids = new Int32Array(n);
  const w = new Float32Array(n);
  let count = 0;
  for (let i = 0; i < n; i++) {
    const t = host[i]!;
    if (t === ignore) continue;
    if (t < 0 || t >= V) throw new RangeError(`crossEntropy: target ${t} at ${i} is out of range for ${V} classes`);
    ids[i] = i * V + t;
    w[i] = 1;
    count++;
  }
  const b = logits.backend;
  const logp = logSoftmax(logits).reshape([n * V]);
  const picked = gather(logp, tensor(ids, [n], 'i32', { backend: b })); // [n]
  const weights = tensor(w.map((x) => (count ? -x / count : 0)), [n], logits.dtype, { backend: b });
  return sum(mul(picked, weights), 0);
}
