// The reference implementation of every op in OpDesc: the executable specification that faster
// backends are tested against. Computes in float64 on dense copies of the inputs and writes
// results back with dtype conversion. Touches memory only through `bytesOf`, so the wasm backend
// reuses it on its own linear memory. Not for: speed.
import type { BackendBuffer, OpDesc, OpName, View } from '../../tensor/backend.js';
import { attention } from './kernels/attention.js';
import { KernelContext } from './kernels/context.js';
import { adamw, binary, copy, dropout, fill, geluBackward, random, unary, where } from './kernels/elementwise.js';
import { linear, matmul } from './kernels/linalg.js';
import { layernormBackward } from './kernels/norm-backward.js';
import { addNorm, gather, layernorm, rmsnorm, rope, scatterAdd, softmax, softmaxBackward } from './kernels/nn.js';
import { dequantize, qlinear, qmatmul } from './kernels/quant.js';
import { cumsum, reduce, topk } from './kernels/reduce.js';
import { maskedMatmul, sparseMatmul } from './kernels/sparse.js';

type Kernel<K extends OpName> = (ctx: KernelContext<Extract<OpDesc, { op: K }>>) => void;

const KERNELS: { [K in OpName]: Kernel<K> } = {
  copy, fill, random, unary, binary, where, reduce, cumsum, topk, matmul, linear, softmax,
  layernorm, rmsnorm, rope, gather, scatterAdd, attention, dequantize, qmatmul, adamw,
  sparseMatmul, maskedMatmul, qlinear, addNorm, geluBackward, layernormBackward, dropout,
  softmaxBackward,
};

/** Whether the reference implements this op name (all of OpDesc). */
export function hasReferenceKernel(op: OpDesc): boolean {
  return Object.prototype.hasOwnProperty.call(KERNELS, op.op);
}

/** Runs `op` on the given views. Throws an Error naming op, shapes and dtypes on invalid input. */
export function runReference(
  op: OpDesc,
  inputs: readonly View[],
  outputs: readonly View[],
  bytesOf: (b: BackendBuffer) => Uint8Array,
): void {
  const ctx = new KernelContext(op, inputs, outputs, bytesOf);
  if (!hasReferenceKernel(op)) ctx.fail('unknown op');
  (KERNELS[op.op] as Kernel<OpName>)(ctx as KernelContext<never>);
}
