// Runtime glue of the row-wise kernels (kernels/norm.wat.mjs): softmax, layernorm, rmsnorm, rope
// and last-axis reductions on f32. Rows (the last axis) must be contiguous in the input; the
// leading dims may have any strides (permuted or sliced views), outputs are contiguous. The row
// table (one entry per row: addresses and, for softmax, the visible prefix) is built here.
// rope: cos/sin of (position · invFreq) are computed once in f64 into a table indexed by position
// and kept between calls while invFreq stays the same. Everything else is declined.
import type { OpDesc, View } from '../../../tensor/backend.js';
import type { NativeKernel, WasmRuntime } from '../runtime.js';
import { addr, inside, isContiguous, numel, sameShape, threadsFor } from './rows.js';

type Op<K extends OpDesc['op']> = Extract<OpDesc, { op: K }>;

const bitsF = new Float32Array(1);
const bitsI = new Int32Array(bitsF.buffer);
/** The bits of x as an f32, for kernels that take an f32 through an i32 argument. */
export function f32Bits(x: number): number {
  bitsF[0] = x;
  return bitsI[0]!;
}
const lastUnit = (v: View) => v.shape.length === 0 || v.shape.at(-1)! <= 1 || v.strides.at(-1) === 1;
const isF32 = (...vs: (View | undefined)[]) => vs.every((v) => !!v && v.dtype === 'f32');

/**
 * Writes a table of `ints` i32 per row for the rows (last axis) of `shape`: `entry(e, row, off)`
 * gets the entry start, the flat row index and, per view, the element offset of the row start.
 */
export function rowTable(
  rt: WasmRuntime, shape: readonly number[], views: readonly View[], ints: number, name: string,
  entry: (tab: Int32Array, e: number, row: number, off: readonly number[]) => void,
): { table: number; nRows: number } {
  const outer = shape.slice(0, -1);
  const nRows = numel(outer);
  const table = rt.scratch(name, Math.max(1, nRows) * ints * 4);
  const tab = new Int32Array(rt.memory.bytes().buffer, table, nRows * ints);
  const off = views.map((v) => v.offset);
  const idx = new Array<number>(outer.length).fill(0);
  for (let r = 0; r < nRows; r++) {
    entry(tab, r * ints, r, off);
    for (let d = outer.length - 1; d >= 0; d--) {
      idx[d]!++;
      for (let i = 0; i < views.length; i++) off[i]! += views[i]!.strides[d]!;
      if (idx[d]! < outer[d]!) break;
      for (let i = 0; i < views.length; i++) off[i]! -= views[i]!.strides[d]! * outer[d]!;
      idx[d] = 0;
    }
  }
  return { table, nRows };
}

/** Element offset -> byte address, per view. */
function bases(rt: WasmRuntime, views: readonly View[]): ((elem: number) => number)[] {
  return views.map((v) => {
    const p = rt.ptrOf(v.buffer);
    const size = v.dtype === 'u8' ? 1 : 4;
    return (elem: number) => p + elem * size;
  });
}

// ---- softmax --------------------------------------------------------------------------------

export const softmaxKernel: NativeKernel<Op<'softmax'>> = {
  wasmKernels: ['nm_softmax'],
  handles(op, inputs, [y]) {
    const [x, m] = inputs;
    if (!x || !y || !isF32(x, y) || inputs.length !== (op.masked ? 2 : 1) || x.shape.length < (op.causal ? 2 : 1)) return false;
    if (!sameShape(x.shape, y.shape) || !lastUnit(x) || !isContiguous(y) || !inside(x) || !inside(y)) return false;
    return !op.masked || (!!m && m.dtype === 'u8' && sameShape(m.shape, x.shape) && inside(m) && (lastUnit(m) || m.strides.at(-1) === 0));
  },
  run(rt, op, inputs, [y]) {
    runSoftmax(rt, op, inputs[0]!, op.masked ? inputs[1]! : null, y!, 1);
  },
};

/**
 * Softmax of `scale · x` over the last axis into contiguous `y`, with the causal prefix and the
 * optional u8 mask of the op (also used by attention on its score buffer).
 */
export function runSoftmax(
  rt: WasmRuntime, op: { log: boolean; causal: boolean }, x: View, mask: View | null, y: View, scale: number,
): void {
  const rank = x.shape.length;
  const k = x.shape[rank - 1]!;
  const q = op.causal ? x.shape[rank - 2]! : 1;
  if (numel(x.shape) === 0) return;
  const views = mask ? [x, y, mask] : [x, y];
  const at = bases(rt, views);
  const maskUnit = !!mask && (k <= 1 || mask.strides[rank - 1] === 1);
  const bytes = rt.memory.bytes();
  const { table, nRows } = rowTable(rt, x.shape, views, 4, 'norm.table', (tab, e, r, off) => {
    let nv = op.causal ? Math.min(k, Math.max(0, (r % q) + (k - q) + 1)) : k;
    let m = 0;
    if (mask && maskUnit) m = at[2]!(off[2]!);
    else if (mask && bytes[at[2]!(off[2]!)] === 0) nv = 0; // one mask value for the whole row
    tab[e] = at[0]!(off[0]!);
    tab[e + 1] = at[1]!(off[1]!);
    tab[e + 2] = m;
    tab[e + 3] = nv;
  });
  rt.pool.run('nm_softmax', [table, nRows, k, op.log ? 1 : 0, f32Bits(scale)], threadsFor(rt, nRows * k * 8, nRows));
}

// ---- layernorm / rmsnorm --------------------------------------------------------------------

function normHandles(inputs: readonly View[], y: View | undefined, nParams: number): boolean {
  const x = inputs[0];
  if (!x || !y || inputs.length !== 1 + nParams || x.shape.length === 0 || !isF32(x, y, ...inputs)) return false;
  const d = x.shape.at(-1)!;
  return sameShape(x.shape, y.shape) && lastUnit(x) && isContiguous(y) && inputs.every(inside) && inside(y) &&
    inputs.slice(1).every((p) => numel(p.shape) === d && isContiguous(p));
}

function normRows(rt: WasmRuntime, x: View, y: View): { table: number; nRows: number } {
  const at = bases(rt, [x, y]);
  return rowTable(rt, x.shape, [x, y], 2, 'norm.table', (tab, e, _r, off) => {
    tab[e] = at[0]!(off[0]!);
    tab[e + 1] = at[1]!(off[1]!);
  });
}

export const layernormKernel: NativeKernel<Op<'layernorm'>> = {
  wasmKernels: ['nm_layernorm'],
  handles(op, inputs, [y]) {
    return normHandles(inputs, y, Number(op.hasWeight) + Number(op.hasBias));
  },
  run(rt, op, inputs, [y]) {
    const x = inputs[0]!;
    const d = x.shape.at(-1)!;
    if (numel(x.shape) === 0) return;
    const w = op.hasWeight ? addr(rt, inputs[1]!) : 0;
    const b = op.hasBias ? addr(rt, inputs[op.hasWeight ? 2 : 1]!) : 0;
    const { table, nRows } = normRows(rt, x, y!);
    rt.pool.run('nm_layernorm', [table, nRows, d, f32Bits(op.eps), w, b], threadsFor(rt, nRows * d * 4, nRows));
  },
};

export const rmsnormKernel: NativeKernel<Op<'rmsnorm'>> = {
  wasmKernels: ['nm_rmsnorm'],
  handles(op, inputs, [y]) {
    return normHandles(inputs, y, op.hasWeight ? 1 : 0);
  },
  run(rt, op, inputs, [y]) {
    const x = inputs[0]!;
    const d = x.shape.at(-1)!;
    if (numel(x.shape) === 0) return;
    const w = op.hasWeight ? addr(rt, inputs[1]!) : 0;
    const { table, nRows } = normRows(rt, x, y!);
    rt.pool.run('nm_rmsnorm', [table, nRows, d, f32Bits(op.eps), f32Bits(op.offset), w], threadsFor(rt, nRows * d * 3, nRows));
  },
};

// ---- reduce over the last axis ----------------------------------------------------------------

export const reduceKernel: NativeKernel<Op<'reduce'>> = {
  wasmKernels: ['nm_reduce_*'],
  handles(op, [x], [y]) {
    if (!x || !y || x.dtype !== 'f32' || x.shape.length === 0) return false;
    const rank = x.shape.length;
    const axis = op.axis < 0 ? op.axis + rank : op.axis;
    const arg = op.fn === 'argmax' || op.fn === 'argmin';
    const n = x.shape[rank - 1]!;
    return axis === rank - 1 && y.dtype === (arg ? 'i32' : 'f32') && sameShape(y.shape, [...x.shape.slice(0, -1), 1]) &&
      (n > 0 || op.fn === 'sum' || op.fn === 'mean') && lastUnit(x) && isContiguous(y) && inside(x) && inside(y);
  },
  run(rt, op, [x], [y]) {
    if (numel(y!.shape) === 0) return;
    const n = x!.shape.at(-1)!;
    const { table, nRows } = normRows(rt, x!, { ...y!, shape: y!.shape.slice(0, -1).concat(1) });
    rt.pool.run(`nm_reduce_${op.fn}`, [table, nRows, n], threadsFor(rt, nRows * n, nRows));
  },
};

// ---- rope ---------------------------------------------------------------------------------------

interface RopeTable { inv: Float32Array; ptr: number; nPos: number }
const ropeTables = new WeakMap<WasmRuntime, RopeTable>();
const MAX_POSITION = 1 << 20;

/** Address of the [nPos, cos(half) | sin(half)] table covering positions 0..maxPos. */
function ropeTable(rt: WasmRuntime, inv: Float32Array, maxPos: number): number {
  const half = inv.length;
  const have = ropeTables.get(rt);
  const same = !!have && have.inv.length === half && have.inv.every((f, i) => f === inv[i]);
  if (same && have.nPos > maxPos && rt.scratch('rope.cos_sin', have.nPos * half * 8) === have.ptr) return have.ptr;
  const nPos = Math.max(maxPos + 1, 64, same ? have.nPos * 2 : 0);
  const ptr = rt.scratch('rope.cos_sin', nPos * half * 8);
  const t = new Float32Array(rt.memory.bytes().buffer, ptr, nPos * half * 2);
  for (let p = 0; p < nPos; p++) {
    for (let i = 0; i < half; i++) {
      const angle = p * inv[i]!;
      t[p * 2 * half + i] = Math.cos(angle);
      t[p * 2 * half + half + i] = Math.sin(angle);
    }
  }
  ropeTables.set(rt, { inv: Float32Array.from(inv), ptr, nPos });
  return ptr;
}

export const ropeKernel: NativeKernel<Op<'rope'>> = {
  wasmKernels: ['nm_rope_half', 'nm_rope_inter'],
  handles(op, [x, pos, inv], [y]) {
    if (!x || !pos || !inv || !y || x.shape.length !== 4 || !isF32(x, inv, y) || pos.dtype !== 'i32') return false;
    const [B, T, , D] = x.shape as [number, number, number, number];
    const r = op.rotaryDim;
    return (op.mode === 'half' || op.mode === 'interleaved') && Number.isInteger(r) && r >= 0 && r % 2 === 0 && r <= D &&
      sameShape(y.shape, x.shape) && sameShape(pos.shape, [B, T]) && numel(inv.shape) === r / 2 &&
      lastUnit(x) && isContiguous(y) && isContiguous(pos) && isContiguous(inv) && [x, pos, inv, y].every(inside);
  },
  run(rt, op, inputs, outputs) {
    const [x, pos, invV] = inputs as [View, View, View];
    const y = outputs[0]!;
    const [B, T, H, D] = x.shape as [number, number, number, number];
    if (B * T * H * D === 0) return;
    const half = op.rotaryDim / 2;
    const mem = rt.memory.bytes().buffer;
    const positions = new Int32Array(mem, addr(rt, pos), B * T).slice();
    let maxPos = 0;
    for (const p of positions) {
      if (p < 0 || p > MAX_POSITION) return rt.runReference(op, inputs, outputs);
      if (p > maxPos) maxPos = p;
    }
    const cs = half > 0 ? ropeTable(rt, new Float32Array(mem, addr(rt, invV), half).slice(), maxPos) : 0;
    const at = bases(rt, [x, y]);
    const { table, nRows } = rowTable(rt, x.shape, [x, y], 3, 'norm.table', (tab, e, r, off) => {
      tab[e] = at[0]!(off[0]!);
      tab[e + 1] = at[1]!(off[1]!);
      tab[e + 2] = cs + positions[Math.floor(r / H)]! * half * 8;
    });
    const kernel = op.mode === 'half' ? 'nm_rope_half' : 'nm_rope_inter';
    rt.pool.run(kernel, [table, nRows, D, op.rotaryDim], threadsFor(rt, nRows * D * 2, nRows));
  },
};
