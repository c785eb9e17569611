// Runtime glue of the f32 GEMM kernel (kernels/gemm.wat.mjs): turns matmul views into the
// kernel's parameter block (element strides of A(i, k) and B(k, n), one address triple per batch
// entry) and runs it on the thread pool. Any strides work (the kernel packs through them); an
// output whose columns are not unit-stride is computed into a contiguous temporary and copied.
// Not for: other dtypes (the reference path handles them).
import type { OpDesc, View } from '../../tensor/backend.js';
import { KERNEL_CONSTANTS } from './generated/kernels.js';
import type { NativeKernel, WasmRuntime } from './runtime.js';

type MatmulOp = Extract<OpDesc, { op: 'matmul' }>;

const G = KERNEL_CONSTANTS.gemm;
const P = G.P;
/** Below this many multiply-adds a product runs on the calling thread only. */
const MIN_THREADED_MACS = 1 << 15;

export const matmulKernel: NativeKernel<MatmulOp> = {
  wasmKernels: ['gemm_f32'],
  handles(_op, inputs, outputs) {
    if (inputs.length !== 2 || outputs.length !== 1) return false;
    const [a, b] = inputs as [View, View];
    const y = outputs[0]!;
    const r = y.shape.length;
    return a.dtype === 'f32' && b.dtype === 'f32' && y.dtype === 'f32' && r >= 2 &&
      a.shape.length === r && b.shape.length === r;
  },
  run: runMatmul,
};

function runMatmul(rt: WasmRuntime, op: MatmulOp, inputs: readonly View[], outputs: readonly View[]): void {
  const [a, b] = inputs as [View, View];
  const y = outputs[0]!;
  const r = y.shape.length;
  const [a0, a1] = [a.shape[r - 2]!, a.shape[r - 1]!];
  const [b0, b1] = [b.shape[r - 2]!, b.shape[r - 1]!];
  const [M, K] = op.transA ? [a1, a0] : [a0, a1];
  const [Kb, N] = op.transB ? [b1, b0] : [b0, b1];
  const batchShape = y.shape.slice(0, -2);
  const shapesOk = K === Kb && y.shape[r - 2] === M && y.shape[r - 1] === N &&
    batchShape.every((s, i) => a.shape[i] === s && b.shape[i] === s);
  // the reference throws the descriptive error for inconsistent shapes
  if (!shapesOk) return rt.runReference(op, inputs, outputs);
  const nBatch = batchShape.reduce((p, s) => p * s, 1);
  if (nBatch === 0 || M === 0 || N === 0) return;
  for (const [v, what] of [[a, 'a'], [b, 'b'], [y, 'y']] as const) checkInside(v, what);

  // A(i, k) and B(k, n) element strides; strides of size-1 dims do not matter, make them tidy
  let sam = op.transA ? a.strides[r - 1]! : a.strides[r - 2]!;
  let sak = op.transA ? a.strides[r - 2]! : a.strides[r - 1]!;
  let sbk = op.transB ? b.strides[r - 1]! : b.strides[r - 2]!;
  let sbn = op.transB ? b.strides[r - 2]! : b.strides[r - 1]!;
  if (M === 1) sam = 0;
  if (K === 1) { sak = 0; sbk = 0; }
  if (N === 1) sbn = 1;

  // the output must have unit column stride and non-overlapping rows, else use a temporary
  const ycol = N === 1 ? 1 : y.strides[r - 1]!;
  const ldcY = M === 1 ? N : y.strides[r - 2]!;
  const direct = ycol === 1 && ldcY >= N;
  const out: View = direct ? y : {
    buffer: rt.temp(nBatch * M * N * 4), dtype: 'f32', shape: y.shape, offset: 0,
    strides: contiguousStrides(y.shape),
  };
  const ldc = direct ? ldcY : N;
  try {
    const table = rt.scratch('gemm.table', nBatch * 12);
    const tab = new Int32Array(rt.memory.bytes().buffer, table, nBatch * 3);
    const aBase = rt.ptrOf(a.buffer) + a.offset * 4;
    const bBase = rt.ptrOf(b.buffer) + b.offset * 4;
    const cBase = rt.ptrOf(out.buffer) + out.offset * 4;
    const idx = new Array<number>(batchShape.length).fill(0);
    let ao = 0;
    let bo = 0;
    let co = 0;
    for (let e = 0; e < nBatch; e++) {
      tab[e * 3] = aBase + ao * 4;
      tab[e * 3 + 1] = bBase + bo * 4;
      tab[e * 3 + 2] = cBase + co * 4;
      for (let d = batchShape.length - 1; d >= 0; d--) { // odometer over the batch dims
        idx[d]!++;
        ao += a.strides[d]!;
        bo += b.strides[d]!;
        co += out.strides[d]!;
        if (idx[d]! < batchShape[d]!) break;
        ao -= a.strides[d]! * batchShape[d]!;
        bo -= b.strides[d]! * batchShape[d]!;
        co -= out.strides[d]! * batchShape[d]!;
        idx[d] = 0;
      }
    }
    const threads = M * N * K * nBatch < MIN_THREADED_MACS ? 1 : rt.threads;
    const scratch = rt.scratch('gemm.pack', G.SCRATCH_BYTES * threads);
    const params = rt.scratch('gemm.params', 64);
    const p = new Int32Array(rt.memory.bytes().buffer, params, 16);
    p[P.M / 4] = M;
    p[P.N / 4] = N;
    p[P.K / 4] = K;
    p[P.nBatch / 4] = nBatch;
    p[P.table / 4] = table;
    p[P.sam / 4] = sam;
    p[P.sak / 4] = sak;
    p[P.sbk / 4] = sbk;
    p[P.sbn / 4] = sbn;
    p[P.ldc / 4] = ldc;
    p[P.scratch / 4] = scratch;
    p[P.scratchBytes / 4] = G.SCRATCH_BYTES;
    p[P.sync / 4] = 0;
    rt.pool.run('gemm_f32', [params], threads);
    if (!direct) rt.runReference({ op: 'copy' }, [out], [y]);
  } finally {
    if (!direct) rt.release(out.buffer);
  }
}

function contiguousStrides(shape: readonly number[]): number[] {
  const s = new Array<number>(shape.length);
  let acc = 1;
  for (let i = shape.length - 1; i >= 0; i--) { s[i] = acc; acc *= shape[i]!; }
  return s;
}

/** Throws unless every element of `v` lies inside its buffer (the kernel does not check). */
function checkInside(v: View, what: string): void {
  if (v.shape.some((d) => d === 0)) return;
  let lo = v.offset;
  let hi = v.offset;
  for (let d = 0; d < v.shape.length; d++) {
    const span = (v.shape[d]! - 1) * v.strides[d]!;
    if (span < 0) lo += span; else hi += span;
  }
  if (lo < 0 || (hi + 1) * 4 > v.buffer.byteLength) {
    throw new Error(`wasm matmul: ${what} f32[${v.shape.join(',')}] reaches elements ${lo}..${hi}, outside its ${v.buffer.byteLength}-byte buffer`);
  }
}
