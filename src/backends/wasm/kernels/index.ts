// The wasm backend's dispatch table: which ops have a native (WebAssembly SIMD) kernel. Every op
// not listed here, or declined by its kernel's `handles`, runs the reference implementation on
// views of the wasm memory. To add a native op, write its generator next to gemm.wat.mjs, its
// runtime glue in ../ops/ (or ../matmul.ts), and register it here.
import type { OpDesc, OpName } from '../../../tensor/backend.js';
import { matmulKernel } from '../matmul.js';
import { attentionKernel } from '../ops/attention.js';
import { copyKernel, dequantizeKernel, gatherKernel } from '../ops/copy.js';
import { qlinearKernel, qmatmulKernel } from '../ops/qmatmul.js';
import { binaryKernel, fillKernel, unaryKernel, whereKernel } from '../ops/elementwise.js';
import { layernormKernel, rmsnormKernel, ropeKernel, softmaxKernel } from '../ops/norm.js';
import { reduceAnyAxisKernel, scatterAddKernel } from '../ops/scatter.js';
import { maskedMatmulKernel, sparseMatmulKernel } from '../ops/sparse.js';
import type { NativeKernel } from '../runtime.js';

export type NativeKernels = { [K in OpName]?: NativeKernel<Extract<OpDesc, { op: K }>> };

export const NATIVE_KERNELS: NativeKernels = {
  matmul: matmulKernel,
  copy: copyKernel,
  fill: fillKernel,
  gather: gatherKernel,
  unary: unaryKernel,
  binary: binaryKernel,
  where: whereKernel,
  reduce: reduceAnyAxisKernel,
  scatterAdd: scatterAddKernel,
  softmax: softmaxKernel,
  layernorm: layernormKernel,
  rmsnorm: rmsnormKernel,
  rope: ropeKernel,
  attention: attentionKernel,
  dequantize: dequantizeKernel,
  qmatmul: qmatmulKernel,
  qlinear: qlinearKernel,
  sparseMatmul: sparseMatmulKernel,
  maskedMatmul: maskedMatmulKernel,
};

/** Ops with a native kernel (for some of their dtypes / layouts). */
export function nativeOpNames(): OpName[] {
  return Object.keys(NATIVE_KERNELS) as OpName[];
}
