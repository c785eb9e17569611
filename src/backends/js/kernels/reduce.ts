// Reference reductions along one axis: reduce (sum/mean/max/min/argmax/argmin), cumsum, topk.
// NaN policy follows PyTorch: max/min propagate NaN, argmax/argmin and topk treat NaN as the
// extreme value (first occurrence wins).
import type { OpDesc } from '../../../tensor/backend.js';
import type { KernelContext } from './context.js';
import { normAxis, splitAt } from './context.js';

type Op<K extends OpDesc['op']> = Extract<OpDesc, { op: K }>;

export function reduce(ctx: KernelContext<Op<'reduce'>>): void {
  ctx.expectArity(1, 1);
  const x = ctx.input(0);
  const { fn } = ctx.op;
  const axis = normAxis(ctx, ctx.op.axis, x.shape.length);
  const outShape = x.shape.map((s, i) => (i === axis ? 1 : s));
  ctx.expectShape(ctx.output(0), outShape, 'output');
  if ((fn === 'argmax' || fn === 'argmin') && ctx.output(0).dtype !== 'i32') ctx.fail(`${fn} writes i32`);
  const [outer, n, inner] = splitAt(x.shape, axis);
  if (n === 0 && fn !== 'sum' && fn !== 'mean') {
    ctx.fail(`cannot take ${fn} over axis ${axis} of size 0 (shape [${x.shape.join(',')}])`);
  }
  const data = ctx.read(0);
  const y = new Float64Array(outer * inner);
  for (let o = 0; o < outer; o++) {
    for (let i = 0; i < inner; i++) {
      const base = o * n * inner + i;
      y[o * inner + i] = reduceLine(fn, data, base, n, inner);
    }
  }
  ctx.write(0, y);
}

function reduceLine(fn: Op<'reduce'>['fn'], x: Float64Array, base: number, n: number, step: number): number {
  switch (fn) {
    case 'sum':
    case 'mean': {
      let s = 0;
      for (let j = 0; j < n; j++) s += x[base + j * step]!;
      return fn === 'sum' ? s : s / n; // mean of nothing is 0/0 = NaN
    }
    case 'max':
    case 'min': {
      let best = x[base]!;
      for (let j = 1; j < n && !Number.isNaN(best); j++) {
        const v = x[base + j * step]!;
        if (Number.isNaN(v) || (fn === 'max' ? v > best : v < best)) best = v;
      }
      return best;
    }
    case 'argmax':
    case 'argmin': {
      let best = x[base]!;
      let at = 0;
      for (let j = 1; j < n && !Number.isNaN(best); j++) {
        const v = x[base + j * step]!;
        if (Number.isNaN(v) || (fn === 'argmax' ? v > best : v < best)) { best = v; at = j; }
      }
      return at;
    }
  }
}

export function cumsum(ctx: KernelContext<Op<'cumsum'>>): void {
  ctx.expectArity(1, 1);
  const x = ctx.input(0);
  ctx.expectShape(ctx.output(0), x.shape, 'output');
  const axis = normAxis(ctx, ctx.op.axis, x.shape.length);
  const [outer, n, inner] = splitAt(x.shape, axis);
  const data = ctx.read(0);
  for (let o = 0; o < outer; o++) {
    for (let i = 0; i < inner; i++) {
      let s = 0;
      for (let j = 0; j < n; j++) {
        const at = (o * n + j) * inner + i;
        s += data[at]!;
        data[at] = s;
      }
    }
  }
  ctx.write(0, data);
}

export function topk(ctx: KernelContext<Op<'topk'>>): void {
  ctx.expectArity(1, 2);
  const x = ctx.input(0);
  const { k } = ctx.op;
  if (x.shape.length === 0) ctx.fail('topk needs at least one dim');
  const n = x.shape[x.shape.length - 1]!;
  if (!Number.isInteger(k) || k < 0 || k > n) ctx.fail(`k=${k} must be an integer in [0, ${n}]`);
  const outShape = [...x.shape.slice(0, -1), k];
  ctx.expectShape(ctx.output(0), outShape, 'values');
  ctx.expectShape(ctx.output(1), outShape, 'indices');
  if (ctx.output(1).dtype !== 'i32') ctx.fail('indices must be i32');
  const data = ctx.read(0);
  const rows = n === 0 ? 0 : data.length / n;
  const values = new Float64Array(rows * k);
  const indices = new Float64Array(rows * k);
  const order = new Array<number>(n);
  for (let r = 0; r < rows; r++) {
    const row = data.subarray(r * n, (r + 1) * n);
    for (let j = 0; j < n; j++) order[j] = j;
    order.sort((i, j) => {
      const a = row[i]!;
      const b = row[j]!;
      const an = Number.isNaN(a);
      const bn = Number.isNaN(b);
      if (an !== bn) return an ? -1 : 1; // NaN ranks above everything
      if (!an && a !== b) return a > b ? -1 : 1;
      return i - j;
    });
    for (let j = 0; j < k; j++) {
      values[r * k + j] = row[order[j]!]!;
      indices[r * k + j] = order[j]!;
    }
  }
  ctx.write(0, values);
  ctx.write(1, indices);
}
