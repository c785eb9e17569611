// Reading device tensors from analysis code that runs on every backend: an analysis step is
// written once as a generator that yields each tensor it needs on the host and receives its data;
// `readSync` drives it with synchronous reads (CPU backends), `readAsync` with `await data()`
// (every backend, WebGPU included). The generator owns what it yields (it disposes after reading).
import type { Tensor, TensorData } from './tensor.js';

/** An analysis step that reads tensors: yields a tensor, gets its data back, returns R. */
export type Reads<R> = Generator<Tensor, R, TensorData>;

export function readSync<R>(g: Reads<R>): R {
  let r = g.next();
  while (!r.done) r = g.next(r.value.dataSync());
  return r.value;
}

export async function readAsync<R>(g: Reads<R>): Promise<R> {
  let r = g.next();
  while (!r.done) r = g.next(await r.value.data());
  return r.value;
}
