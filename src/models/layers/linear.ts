// A linear projection as checkpoints store it: PyTorch Linear ([out, in], y = x Wᵀ + b) or
// GPT-2's Conv1D ([in, out], y = x W + b). Keeping the stored layout avoids a transpose copy at load.
import { add } from '../../ops/elementwise.js';
import { matmul } from '../../ops/linalg.js';
import type { Tensor } from '../../tensor/tensor.js';

export interface Linear {
  weight: Tensor;
  bias?: Tensor;
  /** 'out_in' for torch.nn.Linear, 'in_out' for GPT-2's Conv1D. */
  layout: 'out_in' | 'in_out';
}

export function project(x: Tensor, l: Linear): Tensor {
  const y = matmul(x, l.weight, { transB: l.layout === 'out_in' });
  if (!l.bias) return y;
  const z = add(y, l.bias);
  y.dispose();
  return z;
}

/** The weight as [in, out] (a view when stored out_in). */
export function weightInOut(l: Linear): Tensor {
  return l.layout === 'in_out' ? l.weight.share() : l.weight.transpose();
}

export function outFeatures(l: Linear): number {
  return l.layout === 'out_in' ? l.weight.shape[0]! : l.weight.shape[1]!;
}
