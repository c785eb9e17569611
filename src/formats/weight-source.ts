// WeightSource: the one interface every checkpoint format (safetensors, GGUF, llama2.c) offers to
// the models, so an architecture loads its weights by HF name without knowing the file format.
// Tensors are read one at a time: nothing here holds a whole checkpoint in memory.
import type { Backend } from '../tensor/backend.js';
import { byteSize, type DType } from '../tensor/dtype.js';
import { numel } from '../tensor/shape.js';
import { isQuantType, type QuantizedTensor } from '../tensor/quantized.js';
import { Tensor } from '../tensor/tensor.js';

export interface WeightInfo {
  /** The dtype `load` gives by default (quantized GGUF tensors dequantize to f32). */
  dtype: DType;
  /** The dtype as the file stores it ('F32', 'BF16', 'Q4_K', ...). */
  storedAs: string;
  /** Row-major shape, as in the HF checkpoint. */
  shape: number[];
  /** Bytes the tensor takes in the file. */
  bytes: number;
}

export interface LoadOptions {
  /** Convert to this dtype after reading (default: `info(name).dtype`). */
  dtype?: DType;
}

/** A matrix kept in its quantized blocks; `transposed`: the HF tensor is its transpose. */
export interface QuantizedWeight {
  weight: QuantizedTensor;
  transposed: boolean;
}

export interface WeightSource {
  names(): string[];
  has(name: string): boolean;
  info(name: string): WeightInfo;
  load(name: string, backend: Backend, opts?: LoadOptions): Promise<Tensor>;
  /** Formats with block-quantized tensors: the tensor kept quantized, or null when it cannot be. */
  loadQuantized?(name: string, backend: Backend): Promise<QuantizedWeight | null>;
  /** Bytes of all tensors in the file(s). */
  totalBytes(): number;
  close(): Promise<void>;
}

/**
 * Bytes `load` will allocate for every tensor when each is converted to `dtype` (or kept as is);
 * block-quantized tensors count at their stored size (the loader keeps them so by default).
 */
export function estimateLoadBytes(weights: WeightSource, dtype?: DType): number {
  let total = 0;
  for (const n of weights.names()) {
    const i = weights.info(n);
    if (weights.loadQuantized && isQuantType(i.storedAs.toLowerCase())) { total += i.bytes; continue; }
    total += byteSize(dtype ?? i.dtype, numel(i.shape));
  }
  return total;
}

/** Raw bytes of `dtype` -> a tensor on `backend`, cast to `want` when it differs (the uncast copy is freed). */
export function bytesToTensor(bytes: Uint8Array, shape: readonly number[], dtype: DType, backend: Backend, want?: DType): Tensor {
  const t = Tensor.fromBytes(bytes, shape, dtype, backend);
  if (!want || want === dtype) return t;
  try {
    return t.cast(want);
  } finally {
    t.dispose();
  }
}

/** Throws the error a missing tensor should give, listing a few names that do exist. */
export function missingTensor(source: string, name: string, names: readonly string[]): never {
  const close = names.filter((n) => n.includes(name.split('.').pop() ?? name)).slice(0, 5);
  throw new Error(`${source}: no tensor named '${name}' (${names.length} tensors${close.length ? `; similar: ${close.join(', ')}` : ''})`);
}

/**
 * Tensors held in memory (a model's `parameters()`, by HF name) as a WeightSource, so that the
 * writers that take a checkpoint (`convertToGguf`, the quantizers) take a model made or trained
 * in actlab too. `load` gives another handle on the tensor (or a copy, on another backend or in
 * another dtype); the caller keeps owning `params`, which must outlive the source.
 */
export function tensorWeights(params: ReadonlyMap<string, Tensor>, source = 'in-memory tensors'): WeightSource {
  const get = (n: string): Tensor => params.get(n) ?? missingTensor(source, n, [...params.keys()]);
  return {
    names: () => [...params.keys()],
    has: (n) => params.has(n),
    info: (n) => {
      const t = get(n);
      return { dtype: t.dtype, storedAs: t.dtype.toUpperCase(), shape: [...t.shape], bytes: byteSize(t.dtype, t.size) };
    },
    load: async (n, backend, opts = {}) => {
      const t = get(n);
      const want = opts.dtype ?? t.dtype;
      if (t.backend === backend) return want === t.dtype ? t.share() : t.cast(want);
      return bytesToTensor(await t.bytes(), t.shape, t.dtype, backend, want);
    },
    totalBytes: () => [...params.values()].reduce((s, t) => s + byteSize(t.dtype, t.size), 0),
    close: async () => {},
  };
}
