// Shape arithmetic: element counts, row-major strides, broadcasting and axis normalisation.
// Pure functions over number arrays; every error names the op and the shapes.
import { ShapeError } from './errors.js';

export type Shape = readonly number[];

export function numel(shape: Shape): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

export function contiguousStrides(shape: Shape): number[] {
  const s = new Array<number>(shape.length);
  let acc = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    s[i] = acc;
    acc *= shape[i]!;
  }
  return s;
}

export function isContiguous(shape: Shape, strides: readonly number[]): boolean {
  let acc = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    if (shape[i] !== 1 && strides[i] !== acc) return false;
    acc *= shape[i]!;
  }
  return true;
}

/**
 * Strides that show memory of `shape`/`strides` as `to` (same element count) without a copy, or
 * null when no view can (dims merged across a gap in memory). Runs of dims that are contiguous with
 * each other may be split and merged freely, as PyTorch's view: a slice [b, t, d] of a fused
 * [b, t, 3d] product reshapes to heads [b, t, h, d/h] in place.
 */
export function viewStrides(shape: Shape, strides: readonly number[], to: Shape): number[] | null {
  const out = new Array<number>(to.length);
  if (shape.length === 0 || numel(shape) === 0) return contiguousStrides(to);
  let v = to.length - 1;
  let base = strides[shape.length - 1]!;
  let n = 1;
  let m = 1;
  for (let d = shape.length - 1; d >= 0; d--) {
    n *= shape[d]!;
    // a run of dims ends where the next outer dim is not laid out right after this run
    if (d === 0 || (shape[d - 1] !== 1 && strides[d - 1] !== n * base)) {
      while (v >= 0 && (m < n || to[v] === 1)) {
        out[v] = m * base;
        m *= to[v]!;
        v--;
      }
      if (m !== n) return null;
      if (d > 0) { base = strides[d - 1]!; n = 1; m = 1; }
    }
  }
  return v === -1 ? out : null;
}

export function fmtShape(shape: Shape): string {
  return `[${shape.join(', ')}]`;
}

export function assertShape(shape: readonly unknown[], where: string): number[] {
  for (const d of shape) {
    if (typeof d !== 'number' || !Number.isInteger(d) || d < 0) {
      throw new ShapeError(`${where}: invalid shape ${JSON.stringify(shape)} (dims must be integers >= 0)`);
    }
  }
  return shape as number[];
}

/** Normalises a possibly negative axis for a tensor of rank `rank`. */
export function normAxis(axis: number, rank: number, where: string): number {
  const a = axis < 0 ? axis + rank : axis;
  if (!Number.isInteger(axis) || a < 0 || a >= rank) {
    throw new ShapeError(`${where}: axis ${axis} out of range for a tensor of rank ${rank}`);
  }
  return a;
}

/** NumPy broadcasting of several shapes. */
export function broadcastShapes(where: string, ...shapes: Shape[]): number[] {
  const rank = Math.max(0, ...shapes.map((s) => s.length));
  const out = new Array<number>(rank).fill(1);
  for (const s of shapes) {
    for (let i = 0; i < s.length; i++) {
      const j = rank - s.length + i;
      const d = s[i]!;
      if (d === out[j]) continue;
      if (out[j] === 1) out[j] = d;
      else if (d !== 1) {
        throw new ShapeError(`${where}: shapes ${shapes.map(fmtShape).join(' and ')} cannot be broadcast together (dim ${j - rank}: ${out[j]} vs ${d})`);
      }
    }
  }
  return out;
}

/** Strides that view (shape, strides) as `target` without copying: 0 where a dim is repeated. */
export function broadcastStrides(shape: Shape, strides: readonly number[], target: Shape): number[] {
  const out = new Array<number>(target.length).fill(0);
  for (let i = 0; i < shape.length; i++) {
    const j = target.length - shape.length + i;
    out[j] = shape[i] === 1 && target[j] !== 1 ? 0 : strides[i]!;
  }
  return out;
}

export function shapesEqual(a: Shape, b: Shape): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

/** Splits a row-major shape around `axis` into (outer, n, inner) element counts. */
export function splitAt(shape: Shape, axis: number): [number, number, number] {
  let outer = 1;
  let inner = 1;
  for (let i = 0; i < axis; i++) outer *= shape[i]!;
  for (let i = axis + 1; i < shape.length; i++) inner *= shape[i]!;
  return [outer, shape[axis]!, inner];
}
