// Reductions along an axis (sum, mean, max, min, argmax, argmin), cumulative sum and top-k.
import type { ReduceFn } from '../tensor/backend.js';
import { DTypeError, ShapeError } from '../tensor/errors.js';
import { dispatch } from '../tensor/engine.js';
import { fmtShape, normAxis } from '../tensor/shape.js';
import { Tensor } from '../tensor/tensor.js';

export interface ReduceOptions {
  keepDims?: boolean;
}

export function reduce(fn: ReduceFn, x: Tensor, axis: number, opts: ReduceOptions = {}): Tensor {
  if (x.dtype !== 'f32' && x.dtype !== 'f16' && x.dtype !== 'bf16' && x.dtype !== 'i32') {
    throw new DTypeError(`${fn}: needs a float or i32 tensor, got ${x.dtype}${fmtShape(x.shape)}`);
  }
  const a = normAxis(axis, x.rank, fn);
  if (x.shape[a] === 0 && fn !== 'sum' && fn !== 'mean') {
    throw new ShapeError(`${fn}: axis ${axis} of ${fmtShape(x.shape)} is empty`);
  }
  const shape = x.shape.map((d, i) => (i === a ? 1 : d));
  const dtype = fn === 'argmax' || fn === 'argmin' ? 'i32' : x.dtype;
  const y = dispatch({ op: 'reduce', fn, axis: a }, [x], [{ shape, dtype }])[0]!;
  if (opts.keepDims) return y;
  const s = y.squeeze(a);
  y.dispose();
  return s;
}

export const sum = (x: Tensor, axis = -1, o?: ReduceOptions) => reduce('sum', x, axis, o);
export const mean = (x: Tensor, axis = -1, o?: ReduceOptions) => reduce('mean', x, axis, o);
export const max = (x: Tensor, axis = -1, o?: ReduceOptions) => reduce('max', x, axis, o);
export const min = (x: Tensor, axis = -1, o?: ReduceOptions) => reduce('min', x, axis, o);
export const argmax = (x: Tensor, axis = -1, o?: ReduceOptions) => reduce('argmax', x, axis, o);
export const argmin = (x: Tensor, axis = -1, o?: ReduceOptions) => reduce('argmin', x, axis, o);

export function cumsum(x: Tensor, axis = -1): Tensor {
  if (x.dtype !== 'f32' && x.dtype !== 'f16' && x.dtype !== 'bf16' && x.dtype !== 'i32') {
    throw new DTypeError(`cumsum: needs a float or i32 tensor, got ${x.dtype}${fmtShape(x.shape)}`);
  }
  const a = normAxis(axis, x.rank, 'cumsum');
  return dispatch({ op: 'cumsum', axis: a }, [x], [{ shape: x.shape, dtype: x.dtype }])[0]!;
}

/** The k largest values along `axis` (descending; ties keep the lower index) and their i32 indices. */
export function topk(x: Tensor, k: number, axis = -1): { values: Tensor; indices: Tensor } {
  const a = normAxis(axis, x.rank, 'topk');
  const n = x.shape[a]!;
  if (!Number.isInteger(k) || k < 0 || k > n) throw new ShapeError(`topk: k=${k} out of range for axis ${axis} of size ${n} in ${fmtShape(x.shape)}`);
  const last = a === x.rank - 1;
  const src = last ? x : x.transpose(a, -1);
  const shape = [...src.shape.slice(0, -1), k];
  const [values, indices] = dispatch({ op: 'topk', k }, [src], [{ shape, dtype: x.dtype }, { shape, dtype: 'i32' }]);
  if (last) return { values: values!, indices: indices! };
  src.dispose();
  const v = values!.transpose(a, -1);
  const i = indices!.transpose(a, -1);
  values!.dispose();
  indices!.dispose();
  return { values: v, indices: i };
}
