// Products that skip the weights of zero activations: `sparseMatmul` (x · W with W stored
// [in, out]: a zero x[k] never reads row k of W) and `maskedMatmul` (x · Wᵀ with W stored
// [out, in], computed only where a mask is non-zero). What activation sparsity saves at decode
// time is the weight reads these skip. A backend without the ops gets the dense product (and a
// zeroing `where` for the mask): the same values for finite weights.
import { runsNatively, type Backend } from '../tensor/backend.js';
import { DTypeError, ShapeError } from '../tensor/errors.js';
import { dispatch } from '../tensor/engine.js';
import { fmtShape, numel } from '../tensor/shape.js';
import type { Tensor } from '../tensor/tensor.js';
import { abs, lt, ne, where } from './elementwise.js';
import { matmul } from './linalg.js';

/** Whether `b` runs the sparse products natively (else they fall back to dense ones). */
export function hasSparseKernels(b: Backend): boolean {
  return runsNatively(b, 'sparseMatmul', 'maskedMatmul');
}

function asRows(x: Tensor, K: number, what: string): Tensor {
  if (x.dtype !== 'f32') throw new DTypeError(`${what}: x must be f32, got ${x.dtype}${fmtShape(x.shape)}`);
  if (x.rank < 1 || x.shape.at(-1) !== K) throw new ShapeError(`${what}: x ${fmtShape(x.shape)} must end in ${K} features`);
  const x2 = x.reshape([numel(x.shape.slice(0, -1)), K]);
  if (x2.isContiguous) return x2;
  const c = x2.contiguous();
  x2.dispose();
  return c;
}

function f32Weight(w: Tensor, what: string): Tensor {
  if (w.dtype !== 'f32' || w.rank !== 2) throw new DTypeError(`${what}: w must be f32 [rows, cols], got ${w.dtype}${fmtShape(w.shape)}`);
  return w.isContiguous ? w.share() : w.contiguous();
}

/**
 * x [..., K] · w [K, N] -> [..., N]; rows of w whose activation is 0 are not read. With
 * `thresholds` f32 [K], also the rows whose |activation| is below its channel's threshold: the
 * product of the thresholded input (`where(|x| >= t, x, 0)`) without making it.
 */
export function sparseMatmul(x: Tensor, w: Tensor, thresholds?: Tensor): Tensor {
  const [K, N] = w.shape as [number, number];
  if (thresholds && (thresholds.dtype !== 'f32' || thresholds.rank !== 1 || thresholds.shape[0] !== K)) {
    throw new ShapeError(`sparseMatmul: thresholds must be f32 [${K}] (one per row of w), got ${thresholds.dtype}${fmtShape(thresholds.shape)}`);
  }
  const wc = f32Weight(w, 'sparseMatmul');
  const xr = asRows(x, K, 'sparseMatmul');
  const tc = thresholds && (thresholds.isContiguous ? thresholds.share() : thresholds.contiguous());
  try {
    const lead = x.shape.slice(0, -1);
    let y: Tensor;
    if (hasSparseKernels(x.backend)) {
      y = dispatch({ op: 'sparseMatmul', ...(tc ? { thresholded: true } : {}) }, tc ? [xr, wc, tc] : [xr, wc], [{ shape: [xr.shape[0]!, N], dtype: 'f32' }])[0]!;
    } else if (tc) {
      const mag = abs(xr);
      const below = lt(mag, tc);
      mag.dispose();
      const xs = where(below, 0, xr);
      below.dispose();
      y = matmul(xs, wc);
      xs.dispose();
    } else {
      y = matmul(xr, wc);
    }
    const r = y.reshape([...lead, N]);
    y.dispose();
    return r;
  } finally {
    xr.dispose();
    wc.dispose();
    tc?.dispose();
  }
}

/** x [..., K] · w [N, K]ᵀ -> [..., N], computed where mask [..., N] ≠ 0 and 0 elsewhere. */
export function maskedMatmul(x: Tensor, w: Tensor, mask: Tensor): Tensor {
  const [N, K] = w.shape as [number, number];
  const lead = x.shape.slice(0, -1);
  if (mask.shape.length !== lead.length + 1 || mask.shape.at(-1) !== N || lead.some((d, i) => mask.shape[i] !== d)) {
    throw new ShapeError(`maskedMatmul: mask ${fmtShape(mask.shape)} must be [${[...lead, N].join(', ')}]`);
  }
  const wc = f32Weight(w, 'maskedMatmul');
  const xr = asRows(x, K, 'maskedMatmul');
  const mr = asRows(mask.dtype === 'f32' ? mask : mask.cast('f32'), N, 'maskedMatmul (mask)');
  try {
    if (!hasSparseKernels(x.backend)) {
      const dense = matmul(xr, wc, { transB: true });
      const keep = ne(mr, 0);
      const y = where(keep, dense, 0);
      dense.dispose();
      keep.dispose();
      const r = y.reshape([...lead, N]);
      y.dispose();
      return r;
    }
    const y = dispatch({ op: 'maskedMatmul' }, [xr, wc, mr], [{ shape: [xr.shape[0]!, N], dtype: 'f32' }])[0]!;
    const r = y.reshape([...lead, N]);
    y.dispose();
    return r;
  } finally {
    xr.dispose();
    wc.dispose();
    mr.dispose();
  }
}
