// Random-weight models of any architecture, for tests and benchmarks: the architecture asks for
// each weight by name and shape, and gets a seeded random tensor (norm weights near 1), in f32 or
// rounded to f16/bf16 (the same values as the f32 model's, rounded).
import type { Backend } from '../tensor/backend.js';
import type { DType } from '../tensor/dtype.js';
import { randn } from '../ops/creation.js';
import { randomNormal } from '../ops/random.js';
import type { Tensor } from '../tensor/tensor.js';
import { fmtShape } from '../tensor/shape.js';
import { ARCHITECTURES, architectureOf } from './registry.js';
import type { CausalLM } from './model.js';
import { WeightMap } from './weights.js';

class RandomWeights extends WeightMap {
  private made = new Map<string, Tensor>();
  private seed: number;
  constructor(private readonly backend: Backend, seed: number, private readonly std: number, private readonly present: RegExp, private readonly dtype: DType, private readonly onBackend: boolean) {
    super(new Map(), 'random weights');
    this.seed = seed;
  }
  override has(name: string): boolean {
    return this.made.has(name) || this.present.test(name);
  }
  override get(name: string, shape?: readonly number[]): Tensor {
    const have = this.made.get(name);
    if (have) {
      if (shape && fmtShape(have.shape) !== fmtShape(shape)) throw new Error(`random weights: '${name}' asked as ${fmtShape(shape)} and ${fmtShape(have.shape)}`);
      return have;
    }
    if (!shape) throw new Error(`random weights: '${name}' was asked for without a shape`);
    const isNorm = /norm|ln_|layernorm/.test(name) && name.endsWith('weight');
    const isBias = name.endsWith('.bias');
    const o = { std: isNorm ? 0.1 : isBias ? 0.02 : this.std, mean: isNorm ? 1 : 0, backend: this.backend };
    let t = this.onBackend ? randomNormal(shape, this.seed++, o) : randn(shape, { ...o, seed: this.seed++ });
    if (this.dtype !== 'f32') {
      const r = t.cast(this.dtype);
      t.dispose();
      t = r;
    }
    this.made.set(name, t);
    return t;
  }
  override maybe(name: string, shape?: readonly number[]): Tensor | undefined {
    return this.has(name) ? this.get(name, shape) : undefined;
  }
  override names(): string[] {
    return [...this.made.keys()];
  }
  override dispose(): void {
    for (const t of this.made.values()) t.dispose();
    this.made.clear();
  }
}

/**
 * A model of `config`'s architecture with random weights (std `std`, seeded). Weights the
 * architecture treats as optional exist when their name matches `present` (default: biases,
 * the untied heads and the classic MoE layout). `dtype`: the weights' dtype (f32 default; f16 or
 * bf16 round the f32 model's values, so the model's activations run in that dtype too).
 * `draw: 'backend'` draws the numbers on the backend (`randomNormal`: other numbers than the
 * default host-drawn `randn`, but no JavaScript loop or upload: for large models on a GPU).
 */
export function randomModel(
  config: Record<string, unknown>, backend: Backend, o: { seed?: number; std?: number; present?: RegExp; dtype?: DType; draw?: 'host' | 'backend' } = {},
): CausalLM {
  const arch = architectureOf(config);
  const w = new RandomWeights(backend, o.seed ?? 0, o.std ?? 0.2, o.present ?? /\.bias$|^lm_head|^embed_out|block_sparse_moe|shared_expert/, o.dtype ?? 'f32', o.draw === 'backend');
  return new ARCHITECTURES[arch]!({ ...config, model_type: arch }, w, backend);
}
