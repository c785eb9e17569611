// The loaded weights of a model: tensors by checkpoint name, with errors that name what is missing.
import type { Tensor } from '../tensor/tensor.js';
import { fmtShape, shapesEqual } from '../tensor/shape.js';

export class WeightMap {
  constructor(private readonly tensors: Map<string, Tensor>, readonly source = 'checkpoint') {}

  names(): string[] {
    return [...this.tensors.keys()];
  }

  has(name: string): boolean {
    return this.tensors.has(name);
  }

  /** The tensor `name`; checks its shape when `shape` is given. */
  get(name: string, shape?: readonly number[]): Tensor {
    const t = this.tensors.get(name);
    if (!t) {
      const near = this.names().filter((n) => n.split('.').slice(-2).join('.') === name.split('.').slice(-2).join('.')).slice(0, 3);
      throw new Error(`${this.source}: weight '${name}' is missing${near.length ? ` (similar: ${near.join(', ')})` : ''}`);
    }
    if (shape && !shapesEqual(t.shape, shape)) {
      throw new Error(`${this.source}: weight '${name}' has shape ${fmtShape(t.shape)}, the config implies ${fmtShape(shape)}`);
    }
    return t;
  }

  maybe(name: string, shape?: readonly number[]): Tensor | undefined {
    return this.tensors.has(name) ? this.get(name, shape) : undefined;
  }

  /** Every tensor by checkpoint name (the model's parameters, for training). */
  entries(): Map<string, Tensor> {
    return new Map(this.names().map((n) => [n, this.get(n)]));
  }

  /** Total bytes of the loaded tensors. */
  bytes(): number {
    let n = 0;
    for (const t of this.tensors.values()) n += t.size * (t.dtype === 'f32' ? 4 : 2);
    return n;
  }

  dispose(): void {
    for (const t of this.tensors.values()) t.dispose();
    this.tensors.clear();
  }
}
