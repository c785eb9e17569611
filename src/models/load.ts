// loadModel: from a path or hub id to a ready model on a backend, with its tokenizer and
// generation config. The memory check runs before any weight is read; weights are read one
// tensor at a time and the file is closed afterwards.
import type { Backend } from '../tensor/backend.js';
import type { ByteSource } from '../io/byte-source.js';
import { initBackend } from '../tensor/engine.js';
import type { DType } from '../tensor/dtype.js';
import type { Tokenizer } from '../tokenizer/tokenizer.js';
import { openCheckpoint, type CheckpointFormat, type OpenCheckpointOptions } from './checkpoint.js';
import type { CausalLM } from './model.js';
import { buildModel } from './registry.js';

export interface LoadModelOptions extends Omit<OpenCheckpointOptions, 'dtype'> {
  /** A backend or its name (default 'js'). */
  backend?: Backend | string;
  /** Floating-point weights are loaded as this dtype (default f32). */
  dtype?: DType;
  onTensor?: (name: string, done: number, total: number) => void;
  /** Block-quantized GGUF matrices: kept in their blocks ('keep', default) or expanded to f32 at load. */
  quantized?: 'keep' | 'dequantize';
}

export interface LoadedModel {
  model: CausalLM;
  tokenizer?: Tokenizer;
  generationConfig?: Record<string, unknown>;
  config: Record<string, unknown>;
  format: CheckpointFormat;
  source: string;
  /** Bytes of the checkpoint's tensors in the file(s), beside `model.weightMemory()`. */
  fileBytes: number;
}

/** `pathOrId`: a path or hub id, or an open GGUF / llama2.c file (a File picked in the browser, say). */
export async function loadModel(pathOrId: string | ByteSource, o: LoadModelOptions = {}): Promise<LoadedModel> {
  const backend = typeof o.backend === 'object' ? o.backend : await initBackend(o.backend ?? 'js');
  const dtype = o.dtype ?? 'f32';
  const ck = await openCheckpoint(pathOrId, { ...o, dtype });
  try {
    const model = await buildModel(ck.config, ck.weights, backend, { dtype, onTensor: o.onTensor, quantized: o.quantized });
    const tok = ck.tokenizer;
    if (tok && tok.vocabSize > model.dims.vocabSize) {
      model.dispose();
      throw new Error(`${ck.source}: the tokenizer has ${tok.vocabSize} tokens but the model's vocabulary is ${model.dims.vocabSize}; they do not belong together`);
    }
    return { model, tokenizer: tok, generationConfig: ck.generationConfig, config: ck.config, format: ck.format, source: ck.source, fileBytes: ck.weights.totalBytes() };
  } finally {
    await ck.weights.close();
  }
}
