// Ops that move data without arithmetic: concat, split, pad, cast, contiguous copies.
import type { DType } from '../tensor/dtype.js';
import { DTypeError, ShapeError } from '../tensor/errors.js';
import { dispatchInto } from '../tensor/engine.js';
import { fmtShape, normAxis } from '../tensor/shape.js';
import { Tensor } from '../tensor/tensor.js';
import { full } from './creation.js';

/** Joins tensors of one dtype along `axis`; all other dims must match. */
export function concat(ts: readonly Tensor[], axis = 0): Tensor {
  if (ts.length === 0) throw new ShapeError('concat: no tensors given');
  const first = ts[0]!;
  const a = normAxis(axis, first.rank, 'concat');
  for (const t of ts) {
    if (t.dtype !== first.dtype) throw new DTypeError(`concat: dtypes differ (${ts.map((x) => x.dtype).join(', ')})`);
    if (t.rank !== first.rank || t.shape.some((d, i) => i !== a && d !== first.shape[i])) {
      throw new ShapeError(`concat: shapes ${ts.map((x) => fmtShape(x.shape)).join(', ')} differ outside axis ${axis}`);
    }
  }
  const shape = [...first.shape];
  shape[a] = ts.reduce((s, t) => s + t.shape[a]!, 0);
  const out = Tensor.empty(shape, first.dtype, first.backend, 'concat');
  let at = 0;
  for (const t of ts) {
    const n = t.shape[a]!;
    if (n > 0 && t.size > 0) {
      const dst = out.narrow(a, at, n);
      dispatchInto({ op: 'copy' }, [t], [dst]);
      dst.dispose();
    }
    at += n;
  }
  return out;
}

/** Views of consecutive pieces along `axis` (no copy): sizes given, or a count of equal parts. */
export function split(t: Tensor, sizes: number | readonly number[], axis = 0): Tensor[] {
  const a = normAxis(axis, t.rank, 'split');
  const n = t.shape[a]!;
  let parts: number[];
  if (typeof sizes === 'number') {
    if (sizes <= 0 || n % sizes) throw new ShapeError(`split: dim ${axis} of ${fmtShape(t.shape)} (size ${n}) is not divisible into ${sizes} parts`);
    parts = new Array<number>(sizes).fill(n / sizes);
  } else parts = [...sizes];
  if (parts.reduce((s, x) => s + x, 0) !== n || parts.some((x) => x < 0 || !Number.isInteger(x))) {
    throw new ShapeError(`split: sizes ${JSON.stringify(parts)} do not add up to dim ${axis} of ${fmtShape(t.shape)} (size ${n})`);
  }
  let at = 0;
  return parts.map((p) => {
    const v = t.narrow(a, at, p);
    at += p;
    return v;
  });
}

/** Pads with `value`; `widths[i] = [before, after]` for dim i (missing trailing dims are not padded). */
export function pad(t: Tensor, widths: readonly (readonly [number, number])[], value = 0): Tensor {
  if (widths.length > t.rank) throw new ShapeError(`pad: ${widths.length} widths for a tensor of rank ${t.rank}`);
  for (const [b, e] of widths) {
    if (!Number.isInteger(b) || !Number.isInteger(e) || b < 0 || e < 0) throw new ShapeError(`pad: widths must be integers >= 0, got ${JSON.stringify(widths)}`);
  }
  const shape = t.shape.map((d, i) => d + (widths[i]?.[0] ?? 0) + (widths[i]?.[1] ?? 0));
  const out = full(shape, value, t.dtype, { backend: t.backend });
  if (t.size > 0) {
    const inner = out.slice(t.shape.map((_, i) => widths[i]?.[0] ?? 0), t.shape.map((d, i) => (widths[i]?.[0] ?? 0) + d));
    dispatchInto({ op: 'copy' }, [t], [inner]);
    inner.dispose();
  }
  return out;
}

/** A converted copy (float -> int truncates toward zero and saturates; NaN -> 0). */
export function cast(t: Tensor, dtype: DType): Tensor {
  return t.cast(dtype);
}

/** Copies `src` into the view `dst` (broadcasting src), converting dtype. */
export function assign(dst: Tensor, src: Tensor): void {
  const s = src.shape.length === dst.shape.length && src.shape.every((d, i) => d === dst.shape[i]) ? src : src.broadcastTo(dst.shape);
  try {
    dispatchInto({ op: 'copy' }, [s], [dst]);
  } finally {
    if (s !== src) s.dispose();
  }
}

/** Tensors of one shape joined along a new first axis (a copy). */
export function stack(ts: readonly Tensor[]): Tensor {
  if (ts.length === 0) throw new ShapeError('stack: no tensors given');
  const views = ts.map((t) => t.unsqueeze(0));
  try {
    return concat(views, 0);
  } finally {
    for (const v of views) v.dispose();
  }
}
