// The loaded weights of a model: tensors by checkpoint name, with errors that name what is missing.
// A weight may be kept quantized (a QuantizedTensor in llama.cpp's [out, in] orientation): the
// linear layers and embeddings that know how ask for it with `linear` / `matrix`; any other use
// (`get`) dequantizes it once to f32 in the HF layout and keeps that instead.
import { qdequantize } from '../ops/quant.js';
import { byteSize } from '../tensor/dtype.js';
import { QuantizedTensor } from '../tensor/quantized.js';
import type { Tensor } from '../tensor/tensor.js';
import { fmtShape, shapesEqual } from '../tensor/shape.js';
import type { Linear } from './layers/linear.js';

/** A weight kept quantized; `transposed`: the HF tensor is the transpose of `q`. */
export interface HeldQuantized {
  q: QuantizedTensor;
  transposed: boolean;
  /** Set once `matrix`/`linear` handed `q` to the model: a later `get` must leave it alive. */
  inUse?: boolean;
  /** The f32 copy a `get` made while `q` was in use. */
  expanded?: Tensor;
}

export type HeldWeight = Tensor | HeldQuantized;

const isQuantized = (w: HeldWeight | undefined): w is HeldQuantized => !!w && (w as HeldQuantized).q instanceof QuantizedTensor;

export class WeightMap {
  constructor(private readonly tensors: Map<string, HeldWeight>, readonly source = 'checkpoint') {}

  names(): string[] {
    return [...this.tensors.keys()];
  }

  has(name: string): boolean {
    return this.tensors.has(name);
  }

  private held(name: string): HeldWeight {
    const t = this.tensors.get(name);
    if (!t) {
      const near = this.names().filter((n) => n.split('.').slice(-2).join('.') === name.split('.').slice(-2).join('.')).slice(0, 3);
      throw new Error(`${this.source}: weight '${name}' is missing${near.length ? ` (similar: ${near.join(', ')})` : ''}`);
    }
    return t;
  }

  /** The HF-layout shape of a held weight. */
  private shapeOf(w: HeldWeight): readonly number[] {
    if (!isQuantized(w)) return w.shape;
    return w.transposed ? [w.q.shape[1], w.q.shape[0]] : w.q.shape;
  }

  private checkShape(name: string, w: HeldWeight, shape?: readonly number[]): void {
    const have = this.shapeOf(w);
    if (shape && !shapesEqual(have, shape)) {
      throw new Error(`${this.source}: weight '${name}' has shape ${fmtShape(have)}, the config implies ${fmtShape(shape)}`);
    }
  }

  /** The tensor `name` as f32/float (a quantized weight is dequantized once, for good); checks its shape when `shape` is given. */
  get(name: string, shape?: readonly number[]): Tensor {
    const w = this.held(name);
    this.checkShape(name, w, shape);
    if (!isQuantized(w)) return w;
    if (w.expanded) return w.expanded;
    const f = qdequantize(w.q);
    let t = f;
    if (w.transposed) {
      const v = f.transpose();
      t = v.contiguous();
      v.dispose();
      f.dispose();
    }
    if (w.inUse) {
      w.expanded = t;
    } else {
      w.q.dispose();
      this.tensors.set(name, t);
    }
    return t;
  }

  maybe(name: string, shape?: readonly number[]): Tensor | undefined {
    return this.tensors.has(name) ? this.get(name, shape) : undefined;
  }

  /**
   * A matrix of HF shape `shape` for a product or a row lookup: the quantized tensor itself when
   * it is held quantized in [rows = shape[0], cols = shape[1]] orientation, else the f32 tensor.
   */
  matrix(name: string, shape: readonly [number, number]): Tensor | QuantizedTensor {
    const w = this.tensors.get(name);
    if (!isQuantized(w) || w.transposed) return this.get(name, shape);
    this.checkShape(name, w, shape);
    w.inUse = true;
    return w.q;
  }

  maybeMatrix(name: string, shape: readonly [number, number]): Tensor | QuantizedTensor | undefined {
    return this.has(name) ? this.matrix(name, shape) : undefined;
  }

  /**
   * A linear layer from weight `name` stored in HF layout `layout` with HF shape `shape`
   * ([out, in] for 'out_in', [in, out] for GPT-2's 'in_out'); a quantized weight stays quantized.
   * `bias` is asked for after the weight (random-weight models seed each weight in request order).
   */
  linear(name: string, shape: readonly [number, number], layout: Linear['layout'], bias?: () => Tensor | undefined): Linear {
    const w = this.tensors.get(name);
    if (isQuantized(w) && w.transposed === (layout === 'in_out')) {
      this.checkShape(name, w, shape);
      w.inUse = true;
      return { layout: 'out_in', weight: w.q, bias: bias?.() };
    }
    const weight = this.get(name, shape);
    return { layout, weight, bias: bias?.() };
  }

  /** How many weights are held quantized. */
  quantizedCount(): number {
    return [...this.tensors.values()].filter(isQuantized).length;
  }

  /** Every tensor by checkpoint name (the model's parameters, for training). Quantized weights cannot be trained. */
  entries(): Map<string, Tensor> {
    const q = this.names().filter((n) => isQuantized(this.tensors.get(n)));
    if (q.length) {
      throw new Error(`${this.source}: ${q.length} weights are held quantized (${q.slice(0, 3).join(', ')}${q.length > 3 ? ', ...' : ''}); `
        + "load the model with quantized: 'dequantize' for parameters to train");
    }
    return new Map(this.names().map((n) => [n, this.get(n)]));
  }

  /** Total bytes of the loaded tensors as they sit in memory (quantized blocks at their size). */
  bytes(): number {
    let n = 0;
    for (const t of this.tensors.values()) {
      n += isQuantized(t) ? t.q.bytes + (t.expanded ? byteSize(t.expanded.dtype, t.expanded.size) : 0) : byteSize(t.dtype, t.size);
    }
    return n;
  }

  dispose(): void {
    for (const t of this.tensors.values()) {
      if (isQuantized(t)) { t.q.dispose(); t.expanded?.dispose(); } else t.dispose();
    }
    this.tensors.clear();
  }
}
