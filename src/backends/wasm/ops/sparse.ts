// Runtime glue of the activation-sparsity products (kernels/sparse.wat.mjs): checks the views the
// kernels can take (f32, contiguous, N or K a multiple of 4; sparseMatmul's optional thresholds
// f32 [K]), fills the parameter block and runs
// the kernel on the pool (columns of y, or rows of w, split over the threads). Each task gets its
// own scratch list of the non-zero entries. Other shapes run on the reference kernels.
import type { OpDesc, View } from '../../../tensor/backend.js';
import { KERNEL_CONSTANTS } from '../generated/kernels.js';
import type { NativeKernel, WasmRuntime } from '../runtime.js';
import { addr, inside, isContiguous } from './rows.js';

const P = KERNEL_CONSTANTS.sparse.P;
const LONG_ROW_BYTES = KERNEL_CONSTANTS.sparse.LONG_ROW_BYTES;
/** Below this many weights a product runs on the calling thread only. */
const MIN_THREADED_WEIGHTS = 1 << 15;

const f32Matrix = (v: View | undefined): v is View =>
  !!v && v.dtype === 'f32' && v.shape.length === 2 && isContiguous(v) && inside(v);

function params(rt: WasmRuntime, fields: Partial<Record<keyof typeof P, number>>): number {
  const ptr = rt.scratch('sparse.params', 64);
  const p = new Int32Array(rt.memory.bytes().buffer, ptr, 16);
  for (const [k, v] of Object.entries(fields)) p[P[k as keyof typeof P] / 4] = v!;
  return ptr;
}

export const sparseMatmulKernel: NativeKernel<Extract<OpDesc, { op: 'sparseMatmul' }>> = {
  wasmKernels: ['sp_rows', 'sp_rows_long'],
  handles(op, [x, w, t], [y]) {
    if (!f32Matrix(x) || !f32Matrix(w) || !f32Matrix(y)) return false;
    const [M, K] = x.shape as [number, number];
    const N = w.shape[1]!;
    if (op.thresholded && !(t && t.dtype === 'f32' && t.shape.length === 1 && t.shape[0] === K && isContiguous(t) && inside(t))) return false;
    return w.shape[0] === K && y.shape[0] === M && y.shape[1] === N && N % 4 === 0;
  },
  run(rt, op, [x, w, t], [y]) {
    const [M, K] = x!.shape as [number, number];
    const N = w!.shape[1]!;
    if (M === 0 || N === 0) return;
    // rows of w split over the threads, each into its own partial of y (task 0 into y itself)
    const threads = K * N < MIN_THREADED_WEIGHTS ? 1 : Math.max(1, Math.min(rt.threads, K));
    const listStride = Math.max(8, Math.ceil(K / threads + 1) * 8);
    const list = rt.scratch('sparse.list', listStride * threads);
    const part = threads > 1 ? rt.scratch('sparse.part', (threads - 1) * M * N * 4) : 0;
    // without thresholds every row compares against one zero
    let thr: number;
    if (op.thresholded) thr = addr(rt, t!);
    else {
      thr = rt.scratch('sparse.zero', 16);
      new Float32Array(rt.memory.bytes().buffer, thr, 1)[0] = 0;
    }
    // the last task to finish sums the partials (sync counts the finished tasks)
    const p = params(rt, { M, N, K, x: addr(rt, x!), w: addr(rt, w!), y: addr(rt, y!), list, listStride, part, nParts: threads - 1, t: thr, tStep: op.thresholded ? 4 : 0, sync: 0 });
    rt.pool.run(N * 4 >= LONG_ROW_BYTES ? 'sp_rows_long' : 'sp_rows', [p], threads);
  },
};

export const maskedMatmulKernel: NativeKernel<Extract<OpDesc, { op: 'maskedMatmul' }>> = {
  wasmKernels: ['sp_masked'],
  handles(_op, [x, w, mask], [y]) {
    if (!f32Matrix(x) || !f32Matrix(w) || !f32Matrix(mask) || !f32Matrix(y)) return false;
    const [M, K] = x.shape as [number, number];
    const N = w.shape[0]!;
    return w.shape[1] === K && K % 4 === 0 && mask.shape[0] === M && mask.shape[1] === N && y.shape[0] === M && y.shape[1] === N;
  },
  run(rt, _op, [x, w, mask], [y]) {
    const [M, K] = x!.shape as [number, number];
    const N = w!.shape[0]!;
    if (M === 0 || N === 0) return;
    const threads = K * N < MIN_THREADED_WEIGHTS ? 1 : Math.max(1, Math.min(rt.threads, N));
    const listStride = Math.max(4, N * 4);
    const list = rt.scratch('sparse.list', listStride * threads);
    const p = params(rt, { M, N, K, x: addr(rt, x!), w: addr(rt, w!), mask: addr(rt, mask!), y: addr(rt, y!), list, listStride });
    rt.pool.run('sp_masked', [p], threads);
  },
};
