// Two kernels that training needs and that are plain memory movement, written as typed-array
// loops over the wasm memory (no SIMD module needed; V8 compiles these loops well):
//   scatterAdd (the gradient of an embedding gather): copy the target, add each src row at its id;
//   reduce sum/mean over a leading axis (bias gradients), on contiguous f32.
// Last-axis reductions stay with the SIMD kernel of ops/norm.ts; everything else is declined.
import type { OpDesc, View } from '../../../tensor/backend.js';
import type { NativeKernel } from '../runtime.js';
import { reduceKernel } from './norm.js';
import { splitAt } from '../../../tensor/shape.js';
import { addr, inside, isContiguous, numel } from './rows.js';

type Op<K extends OpDesc['op']> = Extract<OpDesc, { op: K }>;

function f32s(rt: Parameters<NativeKernel['run']>[0], v: View): Float32Array {
  return new Float32Array(rt.memory.bytes().buffer, addr(rt, v), numel(v.shape));
}

export const scatterAddKernel: NativeKernel<Op<'scatterAdd'>> = {
  wasmKernels: [],
  handles(_op, [target, ids, src], [y]) {
    return !!target && !!ids && !!src && !!y && target.dtype === 'f32' && src.dtype === 'f32' && y.dtype === 'f32' && ids.dtype === 'i32' &&
      target.shape.length >= 1 && [target, ids, src, y].every((v) => isContiguous(v) && inside(v));
  },
  run(rt, op, inputs, outputs) {
    const [target, idsV, src] = inputs as [View, View, View];
    const y = outputs[0]!;
    const n = target.shape[0]!;
    const ids = new Int32Array(rt.memory.bytes().buffer, addr(rt, idsV), numel(idsV.shape));
    // A bad id: let the reference raise its own error (naming the op, the id and the table size).
    if (ids.some((id) => id < 0 || id >= n)) return rt.runReference(op, inputs, outputs);
    const out = f32s(rt, y);
    out.set(f32s(rt, target));
    const rows = f32s(rt, src);
    const len = n === 0 ? 0 : numel(target.shape) / n;
    for (let i = 0; i < ids.length; i++) {
      const to = ids[i]! * len;
      const from = i * len;
      for (let j = 0; j < len; j++) out[to + j]! += rows[from + j]!;
    }
  },
};

/** sum / mean over any axis of contiguous f32; the last axis goes to the SIMD kernel. */
export const reduceAnyAxisKernel: NativeKernel<Op<'reduce'>> = {
  wasmKernels: reduceKernel.wasmKernels,
  handles(op, inputs, outputs) {
    if (reduceKernel.handles(op, inputs, outputs)) return true;
    const [x] = inputs;
    const [y] = outputs;
    return !!x && !!y && (op.fn === 'sum' || op.fn === 'mean') && x.dtype === 'f32' && y.dtype === 'f32' &&
      op.axis >= 0 && op.axis < x.shape.length - 1 && isContiguous(x) && isContiguous(y) && inside(x) && inside(y);
  },
  run(rt, op, inputs, outputs) {
    if (reduceKernel.handles(op, inputs, outputs)) return reduceKernel.run(rt, op, inputs, outputs);
    const x = inputs[0]!;
    const [outer, r, inner] = splitAt(x.shape, op.axis);
    const src = f32s(rt, x);
    const dst = f32s(rt, outputs[0]!);
    // Accumulate in f64 rows, as the reference does, then store.
    const acc = new Float64Array(inner);
    for (let o = 0; o < outer; o++) {
      acc.fill(0);
      for (let k = 0; k < r; k++) {
        const base = (o * r + k) * inner;
        for (let i = 0; i < inner; i++) acc[i]! += src[base + i]!;
      }
      const scale = op.fn === 'mean' ? 1 / r : 1;
      for (let i = 0; i < inner; i++) dst[o * inner + i] = r === 0 && op.fn === 'mean' ? NaN : acc[i]! * scale;
    }
  },
};
