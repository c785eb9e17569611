// HF weights -> a GGUF file, as llama.cpp's convert_hf_to_gguf.py writes it for every
// architecture gguf-hf.ts maps: names and metadata from the architecture's rules, layouts changed
// (RoPE row order, NeoX qkv order, GPT-2 transposes, Gemma norm + 1), experts stacked into one
// [E, out, in] tensor per kind, extra tensors added (Llama 3 rope_freqs). Types follow the
// converter's rules (conversion/base.py prepare_tensors): 1-D tensors, `*_norm.weight`, biases, the
// MoE router `ffn_gate_inp` and `position_embd` stay F32; other 2-D+ weights take the chosen type,
// falling back to F16 when rows are not whole blocks. For tests and small conversions: each tensor
// is read, encoded, and kept until the file is written.
import type { Backend } from '../tensor/backend.js';
import type { FileStore } from '../io/file-store.js';
import { GGML_BLOCK, type GgmlTypeName } from './gguf-quants.js';
import { GGUF_ARCHITECTURES, hfConfigToGgufMetadata, planGgufTensors, type ConvertedTensor } from './gguf-hf.js';
import { HfConfig } from './gguf-arch.js';
import { isRowLayout, permuteLayoutRows, transformValues } from './gguf-layout.js';
import { encodeGgml, writeGguf, type GgufWriteTensor, type GgufWriteValue } from './gguf-write.js';
import type { WeightSource } from './weight-source.js';

export interface ConvertOptions {
  /** Type of 2-D weights: F32, F16, BF16, Q8_0, Q4_0, Q4_K or Q6_K. */
  type: GgmlTypeName;
  /** Per-tensor types (mixed files): the type for a GGUF tensor name, or undefined for the rule's. */
  typeFor?: (ggufName: string, shape: readonly number[]) => GgmlTypeName | undefined;
  /**
   * Rows no block of the type divides: 'fallback' (default) writes F16 as llama.cpp's converter
   * does and reports the tensor through `onFallback`; 'error' stops, naming the tensor.
   */
  onIndivisible?: 'fallback' | 'error';
  onFallback?: (ggufName: string, shape: readonly number[], wanted: GgmlTypeName) => void;
  /** Called after each tensor is encoded (for a progress bar). */
  onTensor?: (ggufName: string, done: number, total: number) => void;
  /** Called with each tensor's written type. */
  onEncoded?: (ggufName: string, type: GgmlTypeName) => void;
  /** Extra metadata (tokenizer.ggml.*, general.name, ...). */
  metadata?: Record<string, GgufWriteValue>;
  /** Writes a tensor's bytes itself (a calibrated quantiser), or undefined for the reference encoding of its type. */
  encode?: (t: EncodeRequest) => Uint8Array | undefined;
}

/** A tensor about to be encoded: its GGUF name, HF sources, GGUF shape ([rows, cols]: cols are the inputs), type and values. */
export interface EncodeRequest {
  name: string;
  sources: readonly string[];
  shape: readonly number[];
  type: GgmlTypeName;
  values: Float32Array;
}

/** The type llama.cpp's converter gives a tensor of `shape` named `name` when asked for `want`. */
export function ggufTensorType(name: string, shape: readonly number[], want: GgmlTypeName): GgmlTypeName {
  const stem = name.replace(/^blk\.\d+\./, '').replace(/\.(weight|bias)$/, '');
  if (shape.length <= 1 || name.endsWith('_norm.weight') || !name.endsWith('.weight') || stem === 'ffn_gate_inp' || stem === 'position_embd') return 'F32';
  return shape[shape.length - 1]! % GGML_BLOCK[want].values === 0 ? want : 'F16';
}

export async function convertToGguf(
  store: FileStore, path: string, weights: WeightSource, config: Record<string, unknown>, backend: Backend, opts: ConvertOptions,
): Promise<void> {
  const { arch, kv } = hfConfigToGgufMetadata(config);
  const meta: Record<string, GgufWriteValue> = { ...kv, ...(opts.metadata ?? {}) };
  const tensors: GgufWriteTensor[] = [];
  const plan = planGgufTensors(arch, weights.names(), config);
  for (const [i, t] of plan.entries()) {
    const { values, shape } = await convertTensor(t, weights, config, backend);
    const wanted = opts.typeFor?.(t.gguf, shape) ?? opts.type;
    const type = ggufTensorType(t.gguf, shape, wanted);
    if (type === 'F16' && wanted !== 'F16' && shape.length > 1) {
      const msg = `tensor '${t.gguf}' [${shape.join(', ')}]: rows of ${shape.at(-1)} values are not a whole number of ${wanted} blocks of ${GGML_BLOCK[wanted].values}`;
      if (opts.onIndivisible === 'error') throw new Error(`GGUF conversion: ${msg}`);
      opts.onFallback?.(t.gguf, shape, wanted);
    }
    let data: Uint8Array;
    try {
      data = opts.encode?.({ name: t.gguf, sources: t.sources, shape, type, values }) ?? encodeGgml(values, type);
    } catch (e) {
      throw new Error(`GGUF conversion: tensor '${t.gguf}' (from ${t.sources.join(', ')}): ${(e as Error).message}`);
    }
    tensors.push({ name: t.gguf, type, shape, data });
    opts.onEncoded?.(t.gguf, type);
    opts.onTensor?.(t.gguf, i + 1, plan.length);
  }
  for (const x of GGUF_ARCHITECTURES[arch]!.extraTensors?.(new HfConfig(config)) ?? []) {
    tensors.push({ name: x.name, type: 'F32', shape: [x.values.length], data: encodeGgml(x.values, 'F32') });
  }
  await writeGguf(store, path, meta, tensors);
}

/** One GGUF tensor's f32 values: its HF source(s) read, re-laid-out, and stacked when experts. */
async function convertTensor(t: ConvertedTensor, weights: WeightSource, config: Record<string, unknown>, backend: Backend): Promise<{ values: Float32Array; shape: number[] }> {
  const parts: { values: Float32Array; shape: number[] }[] = [];
  for (const name of t.sources) {
    const x = await weights.load(name, backend, { dtype: 'f32' });
    let values = (await x.data()) as Float32Array;
    let shape = [...x.shape];
    x.dispose();
    if (t.layout && isRowLayout(t.layout)) {
      const bytes = permuteLayoutRows(new Uint8Array(values.buffer, values.byteOffset, values.byteLength), t.layout, config, values.byteLength / shape[0]!, true);
      values = new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
    } else if (t.layout && !(t.isBias && t.layout === 'transpose')) {
      ({ values, shape } = transformValues(values, shape, t.layout, true));
    }
    parts.push({ values, shape });
  }
  if (parts.length === 1 && !/_exps\./.test(t.gguf)) return parts[0]!;
  const per = parts[0]!.values.length;
  const all = new Float32Array(per * parts.length);
  parts.forEach((p, e) => all.set(p.values, e * per));
  return { values: all, shape: [parts.length, ...parts[0]!.shape] };
}
