// Runtime glue of the elementwise kernels (kernels/elementwise.wat.mjs): unary and binary f32
// functions, a 32-bit `where`, and `fill` (a typed-array fill of the output's bit pattern).
// Views of any strides are accepted (rows.ts makes the row table); dtypes other than f32 (u8 for
// comparison outputs, i32 for where) are declined and run on the reference kernels, as is `pow`.
// sin/cos run natively only while every |x| < 1e7 (their argument reduction is exact up to there).
import type { BinaryFn, OpDesc, UnaryFn, View } from '../../../tensor/backend.js';
import { f32ToBf16Bits, f32ToF16Bits, toIntDType } from '../../../tensor/dtype.js';
import type { NativeKernel, WasmRuntime } from '../runtime.js';
import { addr, elemBytes, inside, isContiguous, numel, planRows, runRows, sameShape } from './rows.js';

type Op<K extends OpDesc['op']> = Extract<OpDesc, { op: K }>;

const NATIVE_BINARY: ReadonlySet<BinaryFn> = new Set(['add', 'sub', 'mul', 'div', 'maximum', 'minimum', 'eq', 'ne', 'lt', 'le', 'gt', 'ge']);
const COMPARISONS: ReadonlySet<BinaryFn> = new Set(['eq', 'ne', 'lt', 'le', 'gt', 'ge']);
/** Rough cost per element relative to an add (decides when a job is worth the threads). */
const UNARY_COST: Partial<Record<UnaryFn, number>> = {
  exp: 8, log: 8, tanh: 10, sigmoid: 10, silu: 10, gelu_tanh: 12, gelu_erf: 16, sin: 16, cos: 16, sqrt: 2, rsqrt: 3, recip: 2,
};
const SIN_COS_LIMIT = 1e7;

const allInside = (views: readonly View[]) => views.every(inside);

export const unaryKernel: NativeKernel<Op<'unary'>> = {
  wasmKernels: ['ew_unary_*'],
  handles(_op, [x], [y]) {
    return !!x && !!y && x.dtype === 'f32' && y.dtype === 'f32' && sameShape(x.shape, y.shape) && allInside([x, y]);
  },
  run(rt, op, inputs, outputs) {
    const [x, y] = [inputs[0]!, outputs[0]!];
    const plan = planRows(rt, y.shape, [y, x]);
    if ((op.fn === 'sin' || op.fn === 'cos') && !argumentsSmall(rt, plan)) return rt.runReference(op, inputs, outputs);
    runRows(rt, `ew_unary_${op.fn}`, plan, [], UNARY_COST[op.fn] ?? 1);
  },
};

/** Whether every input element (operand 1 of the plan) has |x| < SIN_COS_LIMIT or is not finite. */
function argumentsSmall(rt: WasmRuntime, plan: ReturnType<typeof planRows>): boolean {
  const mem = rt.memory.bytes().buffer;
  const tab = new Int32Array(mem, plan.table, plan.nRows * 3);
  const f = new Float32Array(mem);
  const step = plan.strides[1]! / 4;
  for (let r = 0; r < plan.nRows; r++) {
    const n = tab[r * 3]!;
    let at = tab[r * 3 + 2]! / 4;
    for (let i = 0; i < n; i++, at += step) {
      const a = Math.abs(f[at]!);
      if (a >= SIN_COS_LIMIT && a !== Infinity) return false;
    }
  }
  return true;
}

export const binaryKernel: NativeKernel<Op<'binary'>> = {
  wasmKernels: ['ew_binary_*'],
  handles(op, [a, b], [y]) {
    if (!a || !b || !y || !NATIVE_BINARY.has(op.fn)) return false;
    const outType = COMPARISONS.has(op.fn) ? 'u8' : 'f32';
    return a.dtype === 'f32' && b.dtype === 'f32' && y.dtype === outType &&
      sameShape(a.shape, y.shape) && sameShape(b.shape, y.shape) && allInside([a, b, y]);
  },
  run(rt, op, [a, b], [y]) {
    runRows(rt, `ew_binary_${op.fn}`, planRows(rt, y!.shape, [y!, a!, b!]), []);
  },
};

export const whereKernel: NativeKernel<Op<'where'>> = {
  wasmKernels: ['ew_where32'],
  handles(_op, [c, a, b], [y]) {
    if (!c || !a || !b || !y || c.dtype !== 'u8') return false;
    const t = y.dtype;
    return (t === 'f32' || t === 'i32') && a.dtype === t && b.dtype === t &&
      [c, a, b].every((v) => sameShape(v.shape, y.shape)) && allInside([c, a, b, y]);
  },
  run(rt, _op, [c, a, b], [y]) {
    runRows(rt, 'ew_where32', planRows(rt, y!.shape, [y!, c!, a!, b!]), []);
  },
};

export const fillKernel: NativeKernel<Op<'fill'>> = {
  wasmKernels: [],
  handles(_op, inputs, [y]) {
    return inputs.length === 0 && !!y && elemBytes(y) > 0 && isContiguous(y) && inside(y);
  },
  run(rt, op, _inputs, [y]) {
    const n = numel(y!.shape);
    if (n === 0) return;
    const mem = rt.memory.bytes().buffer;
    const at = addr(rt, y!);
    const v = op.value;
    switch (y!.dtype) {
      case 'f32': new Float32Array(mem, at, n).fill(v); break;
      case 'i32': new Int32Array(mem, at, n).fill(toIntDType(v, 'i32')); break;
      case 'f16': new Uint16Array(mem, at, n).fill(f32ToF16Bits(v)); break;
      case 'bf16': new Uint16Array(mem, at, n).fill(f32ToBf16Bits(v)); break;
      case 'u8': new Uint8Array(mem, at, n).fill(toIntDType(v, 'u8')); break;
      case 'i8': new Int8Array(mem, at, n).fill(toIntDType(v, 'i8')); break;
      default: throw new Error(`wasm fill: dtype ${y!.dtype} is not native`);
    }
  },
};
