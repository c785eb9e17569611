// Which class runs which checkpoint: transformers' `model_type` (or `architectures`) -> the
// architecture file, and `buildModel`, which reads the weights one tensor at a time onto a backend.
import type { Backend } from '../tensor/backend.js';
import type { DType } from '../tensor/dtype.js';
import type { Tensor } from '../tensor/tensor.js';
import { isQuantType } from '../tensor/quantized.js';
import type { WeightSource } from '../formats/weight-source.js';
import { ConfigError } from './config.js';
import { Gemma } from './gemma.js';
import { Gpt2 } from './gpt2.js';
import { Llama } from './llama.js';
import { Mixtral } from './mixtral.js';
import type { CausalLM } from './model.js';
import { GptNeox } from './neox.js';
import { Qwen2Moe } from './qwen2-moe.js';
import { ToyTransformer } from './toy.js';
import { WeightMap, type HeldWeight } from './weights.js';

type Ctor = new (config: Record<string, unknown>, w: WeightMap, b: Backend) => CausalLM;

export const ARCHITECTURES: Record<string, Ctor> = {
  gpt2: Gpt2,
  llama: Llama,
  mistral: Llama,
  qwen2: Llama,
  gpt_neox: GptNeox,
  gemma: Gemma,
  mixtral: Mixtral,
  qwen2_moe: Qwen2Moe,
  actlab_toy: ToyTransformer,
};

const BY_CLASS: Record<string, string> = {
  GPT2LMHeadModel: 'gpt2', LlamaForCausalLM: 'llama', MistralForCausalLM: 'mistral', Qwen2ForCausalLM: 'qwen2',
  GPTNeoXForCausalLM: 'gpt_neox', GemmaForCausalLM: 'gemma', MixtralForCausalLM: 'mixtral', Qwen2MoeForCausalLM: 'qwen2_moe',
};

export function architectureOf(config: Record<string, unknown>): string {
  const t = config.model_type as string | undefined;
  if (t && ARCHITECTURES[t]) return t;
  for (const a of (config.architectures as string[] | undefined) ?? []) if (BY_CLASS[a]) return BY_CLASS[a]!;
  throw new ConfigError(`model_type '${t ?? '(none)'}' is not supported; actlab runs ${Object.keys(ARCHITECTURES).join(', ')}`);
}

export interface BuildOptions {
  /** Load floating-point weights as this dtype (default: f32, the engine's compute dtype). */
  dtype?: DType;
  /** Called after each tensor is read. */
  onTensor?: (name: string, done: number, total: number) => void;
  /**
   * Block-quantized matrices (GGUF Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q5_K, Q6_K, IQ4_NL): 'keep' (default) holds them in their
   * blocks (memory = the file's bytes) and multiplies them where they lie; 'dequantize' expands
   * them to f32 at load (for training, or exact f32 products).
   */
  quantized?: 'keep' | 'dequantize';
}

/** Reads every weight (one tensor in memory at a time besides the loaded ones) and builds the model. */
export async function buildModel(config: Record<string, unknown>, weights: WeightSource, backend: Backend, o: BuildOptions = {}): Promise<CausalLM> {
  const arch = architectureOf(config);
  const names = weights.names();
  const map = new Map<string, HeldWeight>();
  const keep = (o.quantized ?? 'keep') === 'keep';
  try {
    for (let i = 0; i < names.length; i++) {
      const n = names[i]!;
      const info = weights.info(n);
      const quantized = isQuantType(info.storedAs.toLowerCase());
      if (quantized && o.dtype && o.dtype !== 'f32') {
        // block-quantized products take and give f32 activations (the wasm and WebGPU kernels quantize them to 8 bits per block themselves)
        throw new ConfigError(`dtype ${o.dtype}: '${n}' is stored as ${info.storedAs}; models with block-quantized weights run with f32 activations (use dtype f32)`);
      }
      const q = keep && weights.loadQuantized && quantized ? await weights.loadQuantized(n, backend) : null;
      if (q) {
        map.set(n, { q: q.weight, transposed: q.transposed });
      } else {
        const float = info.dtype === 'f32' || info.dtype === 'f16' || info.dtype === 'bf16';
        map.set(n, await weights.load(n, backend, float ? { dtype: o.dtype ?? 'f32' } : {}));
      }
      o.onTensor?.(n, i + 1, names.length);
    }
    return new ARCHITECTURES[arch]!({ ...config, model_type: arch }, new WeightMap(map, `${arch} checkpoint`), backend);
  } catch (e) {
    for (const t of map.values()) ('q' in t ? t.q : t).dispose();
    throw e;
  }
}
