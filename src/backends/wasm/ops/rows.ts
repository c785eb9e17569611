// Shared glue of the native wasm kernels: turns strided views of one logical shape into a row
// table (per row: its length and the byte address of each operand's row, plus one byte stride per
// operand along rows), checks views against their buffers, and picks how many threads a job gets.
// Dims that are contiguous for every operand are merged first, so a contiguous tensor is one long
// row (split into pieces for the threads) and [n, d] ⊕ [d] is n rows with a stride-0 outer dim.
// Not for: the arithmetic (kernels/*.wat.mjs) or op semantics (ops/*.ts).
import { numel } from '../../../tensor/shape.js';
import { viewIsContiguous } from '../../../tensor/backend.js';
import type { View } from '../../../tensor/backend.js';
import type { DType } from '../../../tensor/dtype.js';
import type { WasmRuntime } from '../runtime.js';

/** A job this small (elements × per-element cost) runs on the calling thread only. */
export const MIN_THREADED_WORK = 1 << 15;

export interface RowPlan {
  /** Address of the table: nRows entries of [len, addr of operand 0, addr of operand 1, ...]. */
  table: number;
  nRows: number;
  /** Byte stride along the row, per operand. */
  strides: number[];
  /** Elements in all rows together. */
  total: number;
}

/** Bytes per element for the dtypes kernels address directly (packed 4-bit types are never native). */
export function elemBytes(v: View): number {
  return dtypeBytes(v.dtype);
}

export function dtypeBytes(d: DType): number {
  switch (d) {
    case 'f32': case 'i32': return 4;
    case 'f16': case 'bf16': return 2;
    case 'u8': case 'i8': return 1;
    default: return 0;
  }
}

export function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((s, i) => s === b[i]);
}

export { numel };

/** Row-major contiguous from its offset (the contract's definition). */
export const isContiguous = viewIsContiguous;

/** Whether every element of `v` lies inside its buffer (kernels do not check addresses). */
export function inside(v: View): boolean {
  const size = elemBytes(v);
  if (!size || v.shape.length !== v.strides.length) return false;
  if (v.shape.some((d) => d === 0)) return true;
  let lo = v.offset;
  let hi = v.offset;
  for (let d = 0; d < v.shape.length; d++) {
    const span = (v.shape[d]! - 1) * v.strides[d]!;
    if (span < 0) lo += span; else hi += span;
  }
  return lo >= 0 && (hi + 1) * size <= v.buffer.byteLength;
}

/** Byte address of element `elemOffset` of view `v`. */
export function addr(rt: WasmRuntime, v: View, elemOffset = 0): number {
  return rt.ptrOf(v.buffer) + (v.offset + elemOffset) * elemBytes(v);
}

/** Threads for a job of `work` units over `items` independent pieces. */
export function threadsFor(rt: WasmRuntime, work: number, items: number): number {
  return work < MIN_THREADED_WORK ? 1 : Math.max(1, Math.min(rt.threads, items));
}

/**
 * Row table for operands that all have logical shape `shape` (element strides from their views).
 * Rows longer than needed to keep every thread busy are cut into pieces.
 */
export function planRows(rt: WasmRuntime, shape: readonly number[], views: readonly View[], scratchName = 'rows.table'): RowPlan {
  const k = views.length;
  const sizes = views.map(elemBytes);
  // merged dims, outermost first: [size, stride per operand]
  const dims: { n: number; s: number[] }[] = [];
  // every operand contiguous (the usual case in decode: one row, no merging to do)
  const flat = views.every(isContiguous);
  if (flat && shape.length > 0) dims.push({ n: numel(shape), s: views.map(() => 1) });
  else for (let d = shape.length - 1; d >= 0; d--) {
    const n = shape[d]!;
    if (n === 1) continue;
    const s = views.map((v) => v.strides[d]!);
    const inner = dims[0];
    if (inner && s.every((x, i) => x === inner.s[i]! * inner.n)) inner.n *= n;
    else dims.unshift({ n, s });
  }
  const total = numel(shape);
  if (total === 0) return { table: 0, nRows: 0, strides: sizes, total: 0 };
  const innerDim = dims.pop() ?? { n: 1, s: views.map(() => 1) };
  let len = innerDim.n;
  let pieces = 1;
  const outerRows = total / len;
  const want = rt.threads * 4;
  if (outerRows < want && len >= 8192) {
    const piece = Math.max(4096, Math.ceil(len / Math.ceil(want / outerRows) / 64) * 64);
    pieces = Math.ceil(len / piece);
    len = piece;
  }
  const nRows = outerRows * pieces;
  const ints = 1 + k;
  const table = rt.scratch(scratchName, nRows * ints * 4);
  const tab = new Int32Array(rt.memory.bytes().buffer, table, nRows * ints);
  const base = views.map((v) => rt.ptrOf(v.buffer) + v.offset * elemBytes(v));
  const off = new Array<number>(k).fill(0);
  const idx = new Array<number>(dims.length).fill(0);
  const full = innerDim.n;
  let e = 0;
  for (let r = 0; r < outerRows; r++) {
    for (let p = 0; p < pieces; p++) {
      const start = p * len;
      tab[e++] = Math.min(len, full - start);
      for (let i = 0; i < k; i++) tab[e++] = base[i]! + (off[i]! + start * innerDim.s[i]!) * sizes[i]!;
    }
    for (let d = dims.length - 1; d >= 0; d--) { // odometer over the outer dims
      const dim = dims[d]!;
      idx[d]!++;
      for (let i = 0; i < k; i++) off[i]! += dim.s[i]!;
      if (idx[d]! < dim.n) break;
      for (let i = 0; i < k; i++) off[i]! -= dim.s[i]! * dim.n;
      idx[d] = 0;
    }
  }
  return { table, nRows, strides: innerDim.s.map((s, i) => s * sizes[i]!), total };
}

/** Runs `kernel(table, nRows, ...strides, ...extra)` over the plan's rows on enough threads. */
export function runRows(rt: WasmRuntime, kernel: string, plan: RowPlan, extra: readonly number[], costPerElem = 1): void {
  if (plan.nRows === 0) return;
  const threads = threadsFor(rt, plan.total * costPerElem, plan.nRows);
  rt.pool.run(kernel, [plan.table, plan.nRows, ...plan.strides, ...extra], threads);
}
