// Metrics on logits for interventions (patching, steering evaluations): scalar tensors, so that
// they can be differentiated for attribution.
import { sub } from '../ops/elementwise.js';
import type { Tensor } from '../tensor/tensor.js';

/** logit(answer) − logit(wrong) at position `pos` (default: the last) of the first sequence. */
export function logitDiff(answer: number, wrong: number, pos = -1): (logits: Tensor) => Tensor {
  return (logits) => {
    const p = pos < 0 ? logits.shape[1]! + pos : pos;
    const row = logits.narrow(0, 0, 1).narrow(1, p, 1);
    return sub(row.narrow(2, answer, 1), row.narrow(2, wrong, 1)).reshape([]);
  };
}
