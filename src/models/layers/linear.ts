// A linear projection as checkpoints store it: PyTorch Linear ([out, in], y = x Wᵀ + b) or
// GPT-2's Conv1D ([in, out], y = x W + b). Keeping the stored layout avoids a transpose copy at load.
// A weight held quantized (GGUF blocks) is always [out, in] and runs through `qmatmul`; embedding
// tables may be quantized too (`embedRows`, `unembedWith`).
// Two runtime modes can take over a projection (both off unless set, by src/sparsity): input
// sparsity (`sparse`: small inputs zeroed, their weight rows skipped at decode) and delta
// inference (`delta`: a stateful product over input changes).
import { add, unary } from '../../ops/elementwise.js';
import { fusedLinear, matmul } from '../../ops/linalg.js';
import type { UnaryFn } from '../../tensor/backend.js';
import { gather } from '../../ops/nn.js';
import { qdequantize, qembedding, qlinear, qmatmul } from '../../ops/quant.js';
import { sparseMatmul } from '../../ops/sparse.js';
import { QuantizedTensor } from '../../tensor/quantized.js';
import type { Tensor } from '../../tensor/tensor.js';

export interface Linear {
  weight: Tensor | QuantizedTensor;
  bias?: Tensor;
  /** 'out_in' for torch.nn.Linear (and every quantized weight), 'in_out' for GPT-2's Conv1D. */
  layout: 'out_in' | 'in_out';
  /** Input sparsity (src/sparsity): inputs with |x| below a threshold are zeroed before the product. */
  sparse?: LinearSparsity;
  /** Delta inference (src/sparsity/delta.ts): a stateful replacement of the product; undefined = not handled. */
  delta?: { project(x: Tensor, l: Linear): Tensor | undefined };
}

/** Zeroes small inputs of a projection (CHESS's attention sparsification) and skips their weight rows. */
export interface LinearSparsity {
  /** x [..., in] -> the same with zeros (owned by the caller). */
  sparsify(x: Tensor): Tensor;
  /** The weight as f32 [in, out], contiguous: `sparseMatmul` reads only the rows of non-zero inputs. */
  rows?: Tensor;
  /** Products of at most this many rows (decode) use `rows`; larger ones the dense weight. */
  maxKernelRows: number;
  /**
   * The threshold of each input as f32 [in]: the decode product then thresholds inside the kernel
   * (`sparseMatmul(x, rows, thresholds)`) instead of calling `sparsify`; the same values.
   */
  thresholds?: Tensor;
  /**
   * With `thresholds`: the decode product computed together with other projections of the same
   * input (src/sparsity/teal.ts `SharedInputProduct`), in place of `sparseMatmul(x, rows, thresholds)`.
   */
  shared?: (x: Tensor) => Tensor;
}

/** x [..., in] · W -> [..., out] (+ bias). */
export function matmulWeight(x: Tensor, w: Tensor | QuantizedTensor, layout: Linear['layout']): Tensor {
  return w instanceof QuantizedTensor ? qmatmul(x, w) : matmul(x, w, { transB: layout === 'out_in' });
}

/**
 * x [..., in] -> [..., out]: the product, the bias, and `act` when given (the caller then gets
 * the activation only: a backend that prefers it runs all three as one 'linear' op).
 */
export function project(x: Tensor, l: Linear, act?: UnaryFn): Tensor {
  if (!l.delta && !l.sparse && l.bias && !(l.weight instanceof QuantizedTensor) && x.backend.prefersFusedLinear) {
    return fusedLinear(x, l.weight, l.bias, { transB: l.layout === 'out_in', act });
  }
  // quantized weights: product, bias and activation as one op (decode's products are small, so
  // the two ops saved per projection are a large part of their cost)
  if (!l.delta && !l.sparse && l.bias && l.weight instanceof QuantizedTensor) return qlinear(x, l.weight, l.bias, act);
  const y = projectPlain(x, l);
  if (!act) return y;
  const a = unary(act, y);
  y.dispose();
  return a;
}

function projectPlain(x: Tensor, l: Linear): Tensor {
  const d = l.delta?.project(x, l);
  if (d) return d;
  if (l.sparse) return projectSparse(x, l, l.sparse);
  const y = matmulWeight(x, l.weight, l.layout);
  if (!l.bias) return y;
  const z = add(y, l.bias);
  y.dispose();
  return z;
}

function projectSparse(x: Tensor, l: Linear, s: LinearSparsity): Tensor {
  const rows = x.size / x.shape.at(-1)!;
  const kernel = (!!s.rows || !!s.shared) && rows <= s.maxKernelRows;
  if (kernel && s.thresholds) {
    const y = s.shared ? s.shared(x) : sparseMatmul(x, s.rows!, s.thresholds); // [..., out]
    if (!l.bias) return y;
    const z = add(y, l.bias);
    y.dispose();
    return z;
  }
  const xs = s.sparsify(x); // [..., in]
  try {
    const y = kernel && s.rows ? sparseMatmul(xs, s.rows) : matmulWeight(xs, l.weight, l.layout);
    if (!l.bias) return y;
    const z = add(y, l.bias);
    y.dispose();
    return z;
  } finally {
    xs.dispose();
  }
}

/** The weight as [in, out] (a view when stored out_in; a dequantized copy when quantized). The caller disposes it. */
export function weightInOut(l: Linear): Tensor {
  if (l.weight instanceof QuantizedTensor) {
    const f = qdequantize(l.weight);
    const t = f.transpose();
    f.dispose();
    return t;
  }
  return l.layout === 'in_out' ? l.weight.share() : l.weight.transpose();
}

export function outFeatures(l: Linear): number {
  return l.layout === 'out_in' ? l.weight.shape[0]! : l.weight.shape[1]!;
}

/** Rows `ids` of an embedding table [vocab, d] -> [...ids, d] (only those rows of a quantized table are expanded). */
export function embedRows(table: Tensor | QuantizedTensor, ids: Tensor): Tensor {
  return table instanceof QuantizedTensor ? qembedding(table, ids) : gather(table, ids);
}

/** x [..., d] · tableᵀ -> logits [..., vocab], for an unembedding stored [vocab, d]. */
export function unembedWith(x: Tensor, table: Tensor | QuantizedTensor): Tensor {
  return matmulWeight(x, table, 'out_in');
}
