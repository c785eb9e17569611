// A small Llama whose weights are made on demand, seeded, with planted structure: the neuron and
// concept tests give it embedding rows of chosen tokens large values in chosen dimensions, so that
// the units that read those dimensions fire on those tokens and nowhere else.
import * as al from '../../src/index.js';
import { WeightMap } from '../../src/models/weights.js';
import { Rng } from '../../src/ops/creation.js';

/** The Llama config of the planted models (2 layers, d_model 32, d_mlp 40, grouped-query attention). */
export function plantedLlamaConfig(vocabSize: number) {
  return { model_type: 'llama', vocab_size: vocabSize, max_position_embeddings: 64, hidden_size: 32, num_attention_heads: 4, num_key_value_heads: 2, num_hidden_layers: 2, intermediate_size: 40, rope_theta: 10000 };
}

export interface PlantOptions {
  /** Std of the noise around 1 of the norm weights. */
  normStd: number;
  /** Changes the data of a weight before it is made (row-major, `shape`), e.g. plants embedding values. */
  plant?: (name: string, data: Float32Array, shape: readonly number[]) => void;
}

/** Weights N(0, 0.2²) (norms 1 + N(0, normStd²)), one seed per weight in the order asked for. */
export class PlantedWeights extends WeightMap {
  private made = new Map<string, al.Tensor>();
  private seed = 1;
  constructor(private backend: al.Backend, private o: PlantOptions) { super(new Map(), 'planted'); }
  override has(name: string): boolean { return this.made.has(name); }
  override get(name: string, shape?: readonly number[]): al.Tensor {
    const have = this.made.get(name);
    if (have) return have;
    const rng = new Rng(this.seed++);
    const isNorm = /norm/.test(name);
    const data = Float32Array.from({ length: shape!.reduce((a, b) => a * b, 1) }, () => (isNorm ? 1 : 0) + rng.normal() * (isNorm ? this.o.normStd : 0.2));
    this.o.plant?.(name, data, shape!);
    const t = al.tensor(data, shape!, 'f32', { backend: this.backend });
    this.made.set(name, t);
    return t;
  }
  override maybe(): al.Tensor | undefined { return undefined; }
  override dispose(): void { for (const t of this.made.values()) t.dispose(); }
}
