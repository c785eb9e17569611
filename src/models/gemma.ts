// Gemma (transformers' GemmaForCausalLM): the Llama layout with RMSNorm scaled by (1 + weight),
// token embeddings multiplied by sqrt(hidden_size), a GeGLU MLP (gelu tanh), tied unembedding.
import type { Backend } from '../tensor/backend.js';
import { Llama } from './llama.js';
import type { WeightMap } from './weights.js';

export class Gemma extends Llama {
  constructor(config: Record<string, unknown>, weights: WeightMap, backend: Backend) {
    super(config, weights, backend, { normOffset: 1, actKey: 'hidden_activation', defaultAct: 'gelu_pytorch_tanh' });
    this.embedScale = Math.sqrt(this.dims.dModel);
  }
}
