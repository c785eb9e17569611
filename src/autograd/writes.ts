// Backward of writes into views (concat, pad, stack, assign into a fresh tensor): the gradient of a
// tensor that views written memory is laid out over the memory, then each write, latest first,
// takes its region and zeroes it (an earlier write that a later one covered gets nothing).
import { dispatchInto } from '../tensor/engine.js';
import { zeros } from '../ops/creation.js';
import type { Tensor } from '../tensor/tensor.js';

/** One write into a storage: where it landed, and the tensor written (null: a write that carries no gradient). */
export interface Write {
  src: Tensor | null;
  shape: readonly number[];
  strides: readonly number[];
  offset: number;
}

function extent(shape: readonly number[], strides: readonly number[], offset: number): number {
  let e = offset + 1;
  for (let i = 0; i < shape.length; i++) {
    if (shape[i] === 0) return 0;
    e += (shape[i]! - 1) * Math.abs(strides[i]!);
  }
  return e;
}

/** Gradients for the written sources (in write order, those with a source), from `g` = d/d `reader`. */
export function writesBackward(reader: Tensor, list: readonly Write[], g: Tensor | null, nSrc: number): (Tensor | null)[] {
  if (!g) return new Array<Tensor | null>(nSrc).fill(null);
  if (reader.strides.some((s, i) => s === 0 && reader.shape[i]! > 1)) {
    throw new Error('autograd: a broadcast view of memory written by concat/pad/assign cannot be differentiated; make it contiguous first');
  }
  let n = extent(reader.shape, reader.strides, reader.offset);
  for (const w of list) n = Math.max(n, extent(w.shape, w.strides, w.offset));
  const mem = zeros([n], g.dtype, { backend: g.backend });
  if (g.size > 0) {
    const at = mem.asStrided(reader.shape, reader.strides, reader.offset);
    dispatchInto({ op: 'copy' }, [g], [at]);
    at.dispose();
  }
  const out: (Tensor | null)[] = [];
  for (let k = list.length - 1; k >= 0; k--) {
    const w = list[k]!;
    const size = w.shape.reduce((a, b) => a * b, 1);
    const region = mem.asStrided(w.shape, w.strides, w.offset);
    if (w.src) out.unshift(size > 0 ? region.contiguous() : zeros(w.shape, g.dtype, { backend: g.backend }));
    if (k > 0 && size > 0) dispatchInto({ op: 'fill', value: 0 }, [], [region]);
    region.dispose();
  }
  return out;
}
