// What the model organisms share: building a fresh toy transformer with TransformerLens' default
// initialisation, and evaluating next-token accuracy/loss at chosen positions.
import type { Backend } from '../tensor/backend.js';
import { randn, tensor } from '../ops/creation.js';
import { logSoftmax } from '../ops/nn.js';
import { noGrad } from '../autograd/tape.js';
import { tidy } from '../tensor/engine.js';
import type { Tensor } from '../tensor/tensor.js';
import type { CausalLM } from '../models/model.js';
import { ToyTransformer, toyWeightShapes } from '../models/toy.js';
import { WeightMap } from '../models/weights.js';

/** A toy transformer with weights ~ N(0, initRange²) (TransformerLens: 0.8 / sqrt(d_model)), LayerNorm weights 1, biases 0. */
export function initToy(config: Record<string, unknown>, backend: Backend, seed: number): CausalLM {
  const std = (config.initializer_range as number | undefined) ?? 0.8 / Math.sqrt(Number(config.d_model));
  const map = new Map<string, Tensor>();
  toyWeightShapes(config).forEach(([name, shape], i) => {
    if (name.endsWith('.w')) map.set(name, tensor(new Float32Array(shape[0]!).fill(1), shape, 'f32', { backend }));
    else if (name.endsWith('.b')) map.set(name, tensor(new Float32Array(shape[0]!), shape, 'f32', { backend }));
    else map.set(name, randn(shape, { seed: seed * 1000 + i, std, backend }));
  });
  return new ToyTransformer(config, new WeightMap(map, 'actlab_toy (fresh)'), backend);
}

/**
 * Accuracy and mean loss of predicting `seq[p + 1]` from `seq[..p]` at each position p in
 * `positions`, over `data` (sequences of one length), in batches.
 */
export function evaluate(model: CausalLM, data: readonly ArrayLike<number>[], positions: readonly number[], batch = 1024): { accuracy: number; loss: number } {
  let correct = 0;
  let loss = 0;
  let n = 0;
  const T = data[0]!.length - 1;
  noGrad(() => {
    for (let s = 0; s < data.length; s += batch) {
      const part = data.slice(s, s + batch);
      const ids = new Int32Array(part.length * T);
      part.forEach((d, i) => { for (let j = 0; j < T; j++) ids[i * T + j] = d[j]!; });
      const lp = tidy(() => logSoftmax(model.forward(tensor(ids, [part.length, T], 'i32', { backend: model.backend }))).dataSync());
      const V = lp.length / (part.length * T);
      part.forEach((d, i) => {
        for (const p of positions) {
          const row = lp.subarray((i * T + p) * V, (i * T + p + 1) * V);
          let best = 0;
          for (let v = 1; v < V; v++) if (row[v]! > row[best]!) best = v;
          if (best === d[p + 1]) correct++;
          loss -= row[d[p + 1]!]!;
          n++;
        }
      });
    }
  });
  return { accuracy: correct / n, loss: loss / n };
}
