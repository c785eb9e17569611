// Runtime glue of the quantized matrix product (kernels/qmatmul.wat.mjs): rounds x to 8 bits per
// 32 values into scratch (qm_quant_x: i16 and i8 copies, scales, sums, 32·pair sums, 8·sums of
// four; for the K-quants also per 256 values, qm_quant_xk; once for consecutive products of the
// same unchanged x), then runs the format's
// kernel with the rows of W split over the pool's threads; `qlinear` adds the bias and activation.
// The f16 -> f32 table the kernels read scales through is built once per backend. Weights in the
// memory are read where they lie: nothing of W is copied or expanded; a weight kept in host memory
// (backend.ts, heapWeightBytes) is copied in panels of rows of up to weightPanelBytes (8 MiB) into
// one scratch area, each panel multiplied before the next is copied.
import type { OpDesc, View } from '../../../tensor/backend.js';
import { f16BitsToF32 } from '../../../tensor/dtype.js';
import { QUANT_BLOCK, quantRowBytes } from '../../../tensor/quantized.js';
import { KERNEL_CONSTANTS } from '../generated/kernels.js';
import type { NativeKernel, WasmRuntime } from '../runtime.js';
import type { WasmBuffer } from '../backend.js';
import { addr, inside, isContiguous, numel } from './rows.js';
import { binaryKernel, unaryKernel } from './elementwise.js';

type Op = Extract<OpDesc, { op: 'qmatmul' }>;
type LinearOp = Extract<OpDesc, { op: 'qlinear' }>;

const P = KERNEL_CONSTANTS.qmatmul.P;
const NATIVE = new Set<string>(KERNEL_CONSTANTS.qmatmul.TYPES);
/** Formats with a blocked GEMM over tiles of 4 activation rows (kernels/qtile.mjs), taken from M = 4 rows. */
const TILED = new Set<string>(KERNEL_CONSTANTS.qmatmul.TILE_TYPES);
/** K-quant formats whose kernels run on the activation rounded per 256 values (kernels/qdecode.mjs, qktile.mjs), with or without relaxed SIMD. */
const Q8K = new Set(['q4_k', 'q5_k', 'q6_k']);
/** Below this many weight bytes a product runs on the calling thread only. */
const MIN_THREADED_BYTES = 1 << 14;

const tables = new WeakMap<object, number>();
/** Per memory: what the qmatmul scratch holds, x rounded to 8 bits (x's buffer, its version, offset, M, K and the scratch addresses). */
const quantized = new WeakMap<object, readonly unknown[]>();
/** Per memory: the same for x rounded per 256 values (qm_quant_xk). */
const quantizedK = new WeakMap<object, readonly unknown[]>();

/** Address of the 65536-entry f16 -> f32 table in this runtime's memory (built on first use). */
export function f16Table(rt: WasmRuntime): number {
  const have = tables.get(rt.memory);
  if (have !== undefined) return have;
  const ptr = rt.scratch('qmatmul.f16', 65536 * 4);
  const t = new Float32Array(rt.memory.bytes().buffer, ptr, 65536);
  for (let h = 0; h < 65536; h++) t[h] = f16BitsToF32(h);
  tables.set(rt.memory, ptr);
  return ptr;
}

export const qmatmulKernel: NativeKernel<Op> = {
  wasmKernels: ['qm_*'],
  handles(op, [x, w], [y]) {
    if (!x || !w || !y || !NATIVE.has(op.type)) return false;
    if (x.dtype !== 'f32' || w.dtype !== 'u8' || y.dtype !== 'f32' || x.shape.length !== 2 || y.shape.length !== 2) return false;
    const [M, K] = x.shape as [number, number];
    const N = y.shape[1]!;
    const b = QUANT_BLOCK[op.type];
    return y.shape[0] === M && K % b.values === 0 && numel(w.shape) === N * quantRowBytes(op.type, K) &&
      isContiguous(x) && isContiguous(w) && isContiguous(y) && inside(x) && inside(w) && inside(y);
  },
  run(rt, op, inputs, outputs) {
    const [x, w] = inputs as [View, View];
    const y = outputs[0]!;
    const [M, K] = x.shape as [number, number];
    const N = y.shape[1]!;
    if (M === 0 || N === 0) return;
    const rowBytes = quantRowBytes(op.type, K);
    const nBlocks = (M * K) / 32;
    const host = rt.hostBytes(w.buffer);
    const panelRows = host ? Math.max(1, Math.min(N, Math.floor(rt.weightPanelBytes / rowBytes))) : N;
    // every scratch area first: growing the memory moves nothing, but views made before see only the old length
    const tab = f16Table(rt);
    const xq = rt.scratch('qmatmul.xq', M * K * 2);
    const xq8 = rt.scratch('qmatmul.xq8', M * K);
    const xp = rt.scratch('qmatmul.xp', M * K);
    const xm = rt.scratch('qmatmul.xm', (M * K) / 2);
    const xd = rt.scratch('qmatmul.xd', nBlocks * 4);
    const xs = rt.scratch('qmatmul.xs', nBlocks * 4);
    // prefill: the activation also in tiles of 4 rows for the blocked GEMM (kernels/qtile.mjs)
    const tiled = M >= 4 && TILED.has(op.type);
    const units = tiled ? ((M >> 2) * K) / 32 : 0;
    const xt = tiled ? rt.scratch('qmatmul.xt', units * KERNEL_CONSTANTS.qmatmul.UNIT_BYTES) : 0;
    const xt16 = tiled && op.type === 'q8_0' ? rt.scratch('qmatmul.xt16', units * KERNEL_CONSTANTS.qmatmul.UNIT16_BYTES) : 0;
    // a K-quant: x also rounded per 256 values (Q8_K: i8, f32 scale, sums of 16 and 32; with
    // tiled, also in tiles of 4 rows for the blocked GEMM of kernels/qktile.mjs)
    const q8k = Q8K.has(op.type);
    const xk8 = q8k ? rt.scratch('qmatmul.xk8', M * K) : 0;
    const xkd = q8k ? rt.scratch('qmatmul.xkd', (M * K) / 64) : 0;
    const xkg = q8k ? rt.scratch('qmatmul.xkg', (M * K) / 8) : 0;
    const xk32 = q8k ? rt.scratch('qmatmul.xk32', (M * K) / 16) : 0;
    const xkt = q8k && tiled ? rt.scratch('qmatmul.xkt', (M >> 2) * (K / 256) * KERNEL_CONSTANTS.qmatmul.KTILE_BYTES) : 0;
    const kernel = tiled ? `qm_${op.type}_gemm` : `qm_${op.type}`;
    const panel = host ? rt.scratch('qmatmul.panel', panelRows * rowBytes) : 0;
    const params = rt.scratch('qmatmul.params', KERNEL_CONSTANTS.qmatmul.P_BYTES);
    const p = new Int32Array(rt.memory.bytes().buffer, params, KERNEL_CONSTANTS.qmatmul.P_BYTES / 4);
    p[P.M / 4] = M;
    p[P.N / 4] = N;
    p[P.K / 4] = K;
    p[P.x / 4] = addr(rt, x);
    p[P.xq / 4] = xq;
    p[P.xq8 / 4] = xq8;
    p[P.xp / 4] = xp;
    p[P.xm / 4] = xm;
    p[P.xd / 4] = xd;
    p[P.xs / 4] = xs;
    p[P.y / 4] = addr(rt, y);
    p[P.tab / 4] = tab;
    p[P.rowBytes / 4] = rowBytes;
    p[P.xt / 4] = xt;
    p[P.xt16 / 4] = xt16;
    p[P.tiled / 4] = tiled ? 1 : 0;
    p[P.xk8 / 4] = xk8;
    p[P.xkd / 4] = xkd;
    p[P.xkg / 4] = xkg;
    p[P.xk32 / 4] = xk32;
    p[P.xkt / 4] = xkt;
    // x rounded to 8 bits once for every product that reads it (q, k and v; gate and up): the
    // scratch still holds it when the same unchanged x and the same scratch areas (and layout) come again
    const key = [x.buffer, (x.buffer as WasmBuffer).version, x.offset, M, K, xq, xq8, xp, xm, xd, xs, xt, xt16, tiled] as const;
    const last = quantized.get(rt.memory);
    if (!last || key.some((k, i) => k !== last[i])) {
      rt.pool.run('qm_quant_x', [params], Math.max(1, Math.min(rt.threads, Math.floor(nBlocks / 64))));
      // an output written over x (same buffer) leaves the scratch stale at the same version
      if (y.buffer !== x.buffer) quantized.set(rt.memory, key);
      else quantized.delete(rt.memory);
    }
    if (q8k) {
      const keyK = [x.buffer, (x.buffer as WasmBuffer).version, x.offset, M, K, xk8, xkd, xkg, xk32, xkt] as const;
      const lastK = quantizedK.get(rt.memory);
      if (!lastK || keyK.some((k, i) => k !== lastK[i])) {
        rt.pool.run('qm_quant_xk', [params], Math.max(1, Math.min(rt.threads, Math.floor((M * K) / 4096))));
        if (y.buffer !== x.buffer) quantizedK.set(rt.memory, keyK);
        else quantizedK.delete(rt.memory);
      }
    }
    const threads = (rows: number) => (rows * rowBytes < MIN_THREADED_BYTES ? 1 : Math.min(rt.threads, rows));
    if (!host) {
      p[P.w / 4] = addr(rt, w);
      p[P.rowBeg / 4] = 0;
      p[P.rowEnd / 4] = N;
      rt.pool.run(kernel, [params], threads(N));
      return;
    }
    // a weight in host memory: copied into the memory one panel of rows at a time
    const mem = rt.memory.bytes();
    for (let n0 = 0; n0 < N; n0 += panelRows) {
      const n1 = Math.min(N, n0 + panelRows);
      mem.set(host.subarray(w.offset + n0 * rowBytes, w.offset + n1 * rowBytes), panel);
      p[P.w / 4] = panel;
      p[P.rowBeg / 4] = n0;
      p[P.rowEnd / 4] = n1;
      rt.pool.run(kernel, [params], threads(n1 - n0));
    }
  },
};

/**
 * qlinear: the product above, then the bias and the activation in place on y with the elementwise
 * kernels (the same arithmetic as separate qmatmul, add and unary ops), without a dispatch, an
 * output tensor or a row plan of the engine's for each.
 */
export const qlinearKernel: NativeKernel<LinearOp> = {
  wasmKernels: ['qm_*', 'ew_binary_add', 'ew_unary_*'],
  handles(op, [x, w, bias], [y]) {
    if (!x || !w || !bias || !y || bias.dtype !== 'f32' || bias.shape.length !== 1 || bias.shape[0] !== y.shape[1] || !inside(bias)) return false;
    if (!qmatmulKernel.handles({ op: 'qmatmul', type: op.type }, [x, w], [y])) return false;
    return !op.act || unaryKernel.handles({ op: 'unary', fn: op.act }, [y], [y]);
  },
  run(rt, op, inputs, outputs) {
    const [x, w, bias] = inputs as [View, View, View];
    const y = outputs[0]!;
    qmatmulKernel.run(rt, { op: 'qmatmul', type: op.type }, [x, w], [y]);
    const rows: View = { ...bias, shape: y.shape, strides: [0, bias.strides[0]!] }; // bias broadcast over the rows
    binaryKernel.run(rt, { op: 'binary', fn: 'add' }, [y, rows], [y]);
    if (op.act) unaryKernel.run(rt, { op: 'unary', fn: op.act }, [y], [y]);
  },
};
