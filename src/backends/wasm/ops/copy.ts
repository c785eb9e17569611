// Runtime glue of the copy/cast kernels (kernels/copy.wat.mjs), of `gather`, which is a row copy,
// and of `dequantize` (q8_0 / q4_0 blocks from contiguous raw bytes to a contiguous f32 output).
// copy: any strides on either side (transposed and permuted views included), same dtype of 1, 2 or
// 4 bytes, or a cast f32 <-> f16 / bf16 / i32. gather: embedding rows of a table whose rows are
// contiguous, i32 ids checked on the JS side (a bad id runs the reference, which throws its error).
// Not for: packed 4-bit types or casts between two integer or two 16-bit float types (reference).
import type { OpDesc } from '../../../tensor/backend.js';
import type { DType } from '../../../tensor/dtype.js';
import type { NativeKernel } from '../runtime.js';
import { addr, dtypeBytes, elemBytes, inside, isContiguous, numel, planRows, runRows, sameShape, threadsFor } from './rows.js';

type Op<K extends OpDesc['op']> = Extract<OpDesc, { op: K }>;

const CASTS = new Set(['f32>f16', 'f16>f32', 'f32>bf16', 'bf16>f32', 'f32>i32', 'i32>f32']);

function copyKernelName(from: DType, to: DType): string | null {
  if (from === to) {
    const size = dtypeBytes(from);
    return size ? `cp_copy${size * 8}` : null;
  }
  return CASTS.has(`${from}>${to}`) ? `cp_${from}_${to}` : null;
}

export const copyKernel: NativeKernel<Op<'copy'>> = {
  wasmKernels: ['cp_*'],
  handles(_op, [x], [y]) {
    return !!x && !!y && sameShape(x.shape, y.shape) && copyKernelName(x.dtype, y.dtype) !== null && inside(x) && inside(y);
  },
  run(rt, _op, [x], [y]) {
    const cost = x!.dtype === y!.dtype ? 0.25 : 1;
    runRows(rt, copyKernelName(x!.dtype, y!.dtype)!, planRows(rt, y!.shape, [y!, x!]), [], cost);
  },
};

export const gatherKernel: NativeKernel<Op<'gather'>> = {
  wasmKernels: ['cp_copy8'],
  handles(_op, [table, ids], [y]) {
    if (!table || !ids || !y || table.shape.length === 0) return false;
    const row = { ...table, shape: table.shape.slice(1), strides: table.strides.slice(1) };
    return elemBytes(table) > 0 && table.dtype === y.dtype && ids.dtype === 'i32' && isContiguous(ids) &&
      isContiguous(row) && isContiguous(y) && sameShape(y.shape, [...ids.shape, ...row.shape]) &&
      inside(table) && inside(ids) && inside(y);
  },
  run(rt, op, inputs, outputs) {
    const [table, ids] = inputs as [typeof inputs[0] & object, typeof inputs[0] & object];
    const y = outputs[0]!;
    const n = table.shape[0]!;
    const m = numel(ids.shape);
    const size = elemBytes(table);
    const rowBytes = numel(table.shape.slice(1)) * size;
    if (m === 0 || rowBytes === 0) {
      if (m > 0 && !idsValid(new Int32Array(rt.memory.bytes().buffer, addr(rt, ids), m), n)) rt.runReference(op, inputs, outputs);
      return;
    }
    const id = new Int32Array(rt.memory.bytes().buffer, addr(rt, ids), m);
    if (!idsValid(id, n)) return rt.runReference(op, inputs, outputs); // throws the reference's error
    const tab = rt.scratch('gather.table', m * 12);
    const t = new Int32Array(rt.memory.bytes().buffer, tab, m * 3);
    const src = addr(rt, table);
    const dst = addr(rt, y);
    const s0 = table.strides[0]! * size;
    for (let i = 0; i < m; i++) {
      t[i * 3] = rowBytes;
      t[i * 3 + 1] = dst + i * rowBytes;
      t[i * 3 + 2] = src + id[i]! * s0;
    }
    rt.pool.run('cp_copy8', [tab, m, 1, 1], threadsFor(rt, (m * rowBytes) / 16, m));
  },
};

function idsValid(id: Int32Array, n: number): boolean {
  for (let i = 0; i < id.length; i++) if (id[i]! < 0 || id[i]! >= n) return false;
  return true;
}

const QUANT_BLOCK_BYTES: Record<string, number | undefined> = { q8_0: 34, q4_0: 18 };

export const dequantizeKernel: NativeKernel<Op<'dequantize'>> = {
  wasmKernels: ['cp_dequant_q8_0', 'cp_dequant_q4_0'],
  handles(op, [raw], [y]) {
    const bytes = QUANT_BLOCK_BYTES[op.type];
    if (!raw || !y || !bytes || raw.dtype !== 'u8' || y.dtype !== 'f32') return false;
    const n = numel(y.shape);
    return n % 32 === 0 && numel(raw.shape) === (n / 32) * bytes && isContiguous(raw) && isContiguous(y) && inside(raw) && inside(y);
  },
  run(rt, op, [raw], [y]) {
    const nBlocks = numel(y!.shape) / 32;
    if (nBlocks === 0) return;
    rt.pool.run(`cp_dequant_${op.type}`, [addr(rt, raw!), addr(rt, y!), nBlocks], threadsFor(rt, nBlocks * 32, nBlocks));
  },
};
