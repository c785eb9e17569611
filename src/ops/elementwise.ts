// Elementwise ops with NumPy broadcasting: unary math and activations, binary arithmetic,
// comparisons (u8 0/1 results) and `where`. Numbers are accepted as operands and take the
// tensor's dtype.
import type { BinaryFn, UnaryFn } from '../tensor/backend.js';
import { isFloat, type DType } from '../tensor/dtype.js';
import { DTypeError } from '../tensor/errors.js';
import { dispatch } from '../tensor/engine.js';
import { broadcastShapes, fmtShape } from '../tensor/shape.js';
import { Tensor } from '../tensor/tensor.js';

export type Operand = Tensor | number;

export function unary(fn: UnaryFn, x: Tensor): Tensor {
  if (!isFloat(x.dtype) && !(x.dtype === 'i32' && (fn === 'neg' || fn === 'abs' || fn === 'sign' || fn === 'relu' || fn === 'square'))) {
    throw new DTypeError(`${fn}: needs a float tensor (or i32 for neg/abs/sign/relu/square), got ${x.dtype}${fmtShape(x.shape)}`);
  }
  return dispatch({ op: 'unary', fn }, [x], [{ shape: x.shape, dtype: x.dtype }])[0]!;
}

/** gelu'(x) · dy in one op (`geluBackward`); x and dy of one float dtype and shape. */
export function geluBackward(fn: 'gelu_tanh' | 'gelu_erf', x: Tensor, dy: Tensor): Tensor {
  if (!isFloat(x.dtype) || dy.dtype !== x.dtype || fmtShape(dy.shape) !== fmtShape(x.shape)) {
    throw new DTypeError(`geluBackward: x is ${x.dtype}${fmtShape(x.shape)}, dy is ${dy.dtype}${fmtShape(dy.shape)}; both must be one float dtype and shape`);
  }
  return dispatch({ op: 'geluBackward', fn }, [x, dy], [{ shape: x.shape, dtype: x.dtype }])[0]!;
}

export const neg = (x: Tensor) => unary('neg', x);
export const exp = (x: Tensor) => unary('exp', x);
export const log = (x: Tensor) => unary('log', x);
export const sqrt = (x: Tensor) => unary('sqrt', x);
export const rsqrt = (x: Tensor) => unary('rsqrt', x);
export const tanh = (x: Tensor) => unary('tanh', x);
export const abs = (x: Tensor) => unary('abs', x);
export const sign = (x: Tensor) => unary('sign', x);
export const relu = (x: Tensor) => unary('relu', x);
export const sigmoid = (x: Tensor) => unary('sigmoid', x);
export const silu = (x: Tensor) => unary('silu', x);
export const square = (x: Tensor) => unary('square', x);
export const reciprocal = (x: Tensor) => unary('recip', x);
export const sin = (x: Tensor) => unary('sin', x);
export const cos = (x: Tensor) => unary('cos', x);
/** GELU, exact (erf) by default; `tanh` is GPT-2's approximation ("gelu_new"). */
export const gelu = (x: Tensor, approximate: 'none' | 'tanh' = 'none') => unary(approximate === 'tanh' ? 'gelu_tanh' : 'gelu_erf', x);

const COMPARE = new Set<BinaryFn>(['eq', 'ne', 'lt', 'le', 'gt', 'ge']);

/** Broadcasts the operands to one shape (views, no copy); numbers become scalars of `dtype`. */
function operands(where: string, xs: Operand[], dtype: DType): { ts: Tensor[]; shape: number[]; made: Tensor[] } {
  const anchor = xs.find((x): x is Tensor => x instanceof Tensor);
  if (!anchor) throw new TypeError(`${where}: at least one operand must be a tensor`);
  const made: Tensor[] = [];
  const ts = xs.map((x) => {
    if (x instanceof Tensor) return x;
    const s = Tensor.from([x], [], dtype, anchor.backend);
    made.push(s);
    return s;
  });
  const shape = broadcastShapes(where, ...ts.map((t) => t.shape));
  const views = ts.map((t) => {
    if (t.shape.length === shape.length && t.shape.every((d, i) => d === shape[i])) return t;
    const v = t.broadcastTo(shape);
    made.push(v);
    return v;
  });
  return { ts: views, shape, made };
}

export function binary(fn: BinaryFn, a: Operand, b: Operand): Tensor {
  const dtype = (a instanceof Tensor ? a : (b as Tensor)).dtype;
  if (a instanceof Tensor && b instanceof Tensor && a.dtype !== b.dtype) {
    throw new DTypeError(`${fn}: dtypes differ: ${a.dtype}${fmtShape(a.shape)} and ${b.dtype}${fmtShape(b.shape)}; cast one first`);
  }
  if (!isFloat(dtype) && dtype !== 'i32') {
    throw new DTypeError(`${fn}: needs float or i32 tensors, got ${dtype}`);
  }
  const { ts, shape, made } = operands(fn, [a, b], dtype);
  try {
    return dispatch({ op: 'binary', fn }, ts, [{ shape, dtype: COMPARE.has(fn) ? 'u8' : dtype }])[0]!;
  } finally {
    for (const t of made) t.dispose();
  }
}

export const add = (a: Operand, b: Operand) => binary('add', a, b);
export const sub = (a: Operand, b: Operand) => binary('sub', a, b);
export const mul = (a: Operand, b: Operand) => binary('mul', a, b);
export const div = (a: Operand, b: Operand) => binary('div', a, b);
export const pow = (a: Operand, b: Operand) => binary('pow', a, b);
export const maximum = (a: Operand, b: Operand) => binary('maximum', a, b);
export const minimum = (a: Operand, b: Operand) => binary('minimum', a, b);
export const eq = (a: Operand, b: Operand) => binary('eq', a, b);
export const ne = (a: Operand, b: Operand) => binary('ne', a, b);
export const lt = (a: Operand, b: Operand) => binary('lt', a, b);
export const le = (a: Operand, b: Operand) => binary('le', a, b);
export const gt = (a: Operand, b: Operand) => binary('gt', a, b);
export const ge = (a: Operand, b: Operand) => binary('ge', a, b);

/** cond ? a : b, broadcast; `cond` is u8 (0 = false). */
export function where(cond: Tensor, a: Operand, b: Operand): Tensor {
  if (cond.dtype !== 'u8') throw new DTypeError(`where: condition must be u8 (as comparisons give), got ${cond.dtype}${fmtShape(cond.shape)}`);
  const ta = a instanceof Tensor ? a : b instanceof Tensor ? b : null;
  if (!ta) throw new TypeError('where: a or b must be a tensor');
  if (a instanceof Tensor && b instanceof Tensor && a.dtype !== b.dtype) {
    throw new DTypeError(`where: dtypes differ: ${a.dtype}${fmtShape(a.shape)} and ${b.dtype}${fmtShape(b.shape)}`);
  }
  const { ts: [tc, x, y], shape, made } = operands('where', [cond, a, b], ta.dtype);
  // `operands` turned numbers into ta.dtype scalars; the condition is a tensor already.
  try {
    return dispatch({ op: 'where' }, [tc!, x!, y!], [{ shape, dtype: ta.dtype }])[0]!;
  } finally {
    for (const t of made) t.dispose();
  }
}
