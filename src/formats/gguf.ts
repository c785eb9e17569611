// GGUF files (llama.cpp): metadata and tensor infos parsed by @huggingface/gguf (the maintained
// parser), fed through a `fetch` that answers its range requests from our ByteSource, so local
// files, Blobs and URLs all work; tensor data is then read one tensor at a time.
// Shapes are given row-major (GGUF lists ne[0], the row length, first). Tensors load as:
// F32/F16/BF16 -> a tensor of that dtype; Q8_0/Q4_0/Q4_1/Q5_0/Q5_1/Q4_K/Q5_K/Q6_K/IQ4_NL -> raw u8
// blocks, kept as such in a QuantizedTensor (`loadQuantized`) or expanded by `dequantize`
// (src/ops/quant); Q2_K, Q3_K -> f32, dequantised on the host by gguf-quants.ts's block decoders.
// HF names and config: gguf-hf.ts.
import { gguf, type GGUFParseOutput, type MetadataValue } from '@huggingface/gguf';
import type { Backend, QuantType } from '../tensor/backend.js';
import type { ByteSource } from '../io/byte-source.js';
import { dequantize } from '../ops/quant.js';
import type { DType } from '../tensor/dtype.js';
import { QuantizedTensor, isQuantType } from '../tensor/quantized.js';
import { Tensor } from '../tensor/tensor.js';
import { dequantizeGgml, ggmlBytes, ggmlTypeName, type GgmlTypeName } from './gguf-quants.js';

export interface GgufTensorInfo {
  name: string;
  type: GgmlTypeName;
  /** Row-major shape (GGUF's dims reversed). */
  shape: number[];
  /** Absolute byte offset in the file. */
  offset: number;
  bytes: number;
}

/** What `loadTensor` gives for each stored type. */
const LOADS_AS: Partial<Record<GgmlTypeName, DType | QuantType>> = {
  F32: 'f32', F16: 'f16', BF16: 'bf16', I8: 'i8', I32: 'i32', Q8_0: 'q8_0', Q4_0: 'q4_0', Q4_K: 'q4_k', Q6_K: 'q6_k',
  Q4_1: 'q4_1', Q5_0: 'q5_0', Q5_1: 'q5_1', Q5_K: 'q5_k', IQ4_NL: 'iq4_nl', Q2_K: 'f32', Q3_K: 'f32',
};

/** The block format a stored type stays in, or null for plain dtypes. */
export function quantTypeOf(type: GgmlTypeName): QuantType | null {
  const as = LOADS_AS[type];
  return as !== undefined && isQuantType(as) ? as : null;
}

export const GGUF_SUPPORTED_TYPES = Object.keys(LOADS_AS) as GgmlTypeName[];

/**
 * The metadata keys of a GGUF file that start with `prefix`, with their stored value types, as the
 * writer takes them (to carry a tokenizer over into a re-encoded file exactly).
 */
export async function ggufMetadataTyped(source: ByteSource, prefix = ''): Promise<Record<string, { type: number; value: never }>> {
  const parsed = await gguf(`https://actlab.invalid/${encodeURIComponent(source.name)}`, { fetch: sourceFetch(source), typedMetadata: true });
  const out: Record<string, { type: number; value: never }> = {};
  for (const [k, v] of Object.entries(parsed.typedMetadata)) {
    if (!k.startsWith(prefix) || !v || typeof v !== 'object' || !('type' in v)) continue;
    const t = v as { type: number; subType?: number; value: unknown };
    out[k] = { type: t.subType ?? t.type, value: t.value as never };
  }
  return out;
}

/** A fetch over a ByteSource, for the parser's `Range: bytes=a-b` requests. */
function sourceFetch(src: ByteSource): typeof fetch {
  return (async (_url: unknown, init?: RequestInit) => {
    const range = new Headers(init?.headers).get('range') ?? `bytes=0-${src.size - 1}`;
    const m = /bytes=(\d+)-(\d+)?/.exec(range);
    const a = Math.min(Number(m?.[1] ?? 0), src.size);
    const b = Math.min(m?.[2] !== undefined ? Number(m[2]) + 1 : src.size, src.size);
    const bytes = await src.read(a, b - a);
    return new Response(bytes as BlobPart, {
      status: 206,
      headers: { 'content-range': `bytes ${a}-${Math.max(a, b - 1)}/${src.size}`, 'content-length': String(b - a) },
    });
  }) as typeof fetch;
}

export class GgufFile {
  private byName: Map<string, GgufTensorInfo>;

  private constructor(
    readonly source: ByteSource,
    readonly metadata: Record<string, MetadataValue>,
    readonly tensors: GgufTensorInfo[],
  ) {
    this.byName = new Map(tensors.map((t) => [t.name, t]));
  }

  static async open(source: ByteSource): Promise<GgufFile> {
    const name = source.name;
    const magic = await source.read(0, Math.min(4, source.size));
    if (new TextDecoder().decode(magic) !== 'GGUF') throw new Error(`${name}: not a GGUF file (it does not start with 'GGUF')`);
    let parsed: GGUFParseOutput<{ strict: false }>;
    try {
      parsed = await gguf(`https://actlab.invalid/${encodeURIComponent(name)}` /* never fetched: sourceFetch answers */, { fetch: sourceFetch(source) }) as GGUFParseOutput<{ strict: false }>;
    } catch (e) {
      throw new Error(`${name}: GGUF header does not parse: ${(e as Error).message}`);
    }
    const dataStart = Number(parsed.tensorDataOffset);
    const tensors: GgufTensorInfo[] = parsed.tensorInfos.map((t) => {
      const type = ggmlTypeName(t.dtype);
      const shape = t.shape.map(Number).reverse();
      const n = shape.reduce((a, b) => a * b, 1);
      const offset = dataStart + Number(t.offset);
      const where = `${name}: tensor '${t.name}'`;
      if (!type) return { name: t.name, type: `type ${t.dtype}` as GgmlTypeName, shape, offset, bytes: 0 };
      let bytes: number;
      try {
        bytes = ggmlBytes(type, n);
      } catch (e) {
        throw new Error(`${where}: ${(e as Error).message}`);
      }
      if (offset + bytes > source.size) throw new Error(`${where} (${type}[${shape.join(', ')}]) ends at byte ${offset + bytes}, past the end of the file (${source.size} bytes)`);
      return { name: t.name, type, shape, offset, bytes };
    });
    return new GgufFile(source, parsed.metadata as Record<string, MetadataValue>, tensors);
  }

  get architecture(): string {
    return String(this.metadata['general.architecture'] ?? 'unknown');
  }

  info(name: string): GgufTensorInfo {
    const t = this.byName.get(name);
    if (!t) throw new Error(`${this.source.name}: no tensor named '${name}' in the GGUF file (${this.tensors.length} tensors)`);
    return t;
  }

  has(name: string): boolean {
    return this.byName.has(name);
  }

  /** The dtype (or raw quant type) `loadTensor` returns; throws naming the type when unsupported. */
  loadsAs(name: string): DType | QuantType {
    const t = this.info(name);
    const as = LOADS_AS[t.type];
    if (!as) throw new Error(`${this.source.name}: tensor '${name}' is ${t.type}, which actlab cannot read yet (supported: ${GGUF_SUPPORTED_TYPES.join(', ')})`);
    return as;
  }

  /** The tensor's bytes exactly as stored. */
  async readRaw(name: string): Promise<Uint8Array> {
    const t = this.info(name);
    this.loadsAs(name);
    return this.source.read(t.offset, t.bytes);
  }

  /**
   * The bytes of slice `index` along the leading axis (one expert of a stacked [E, rows, cols]
   * tensor); each slice holds whole rows, so whole quant blocks.
   */
  async readSlice(name: string, index: number): Promise<Uint8Array> {
    const t = this.info(name);
    this.loadsAs(name);
    const n = t.shape[0]!;
    if (t.shape.length < 2 || !(index >= 0 && index < n)) throw new Error(`${this.source.name}: tensor '${name}' [${t.shape.join(', ')}] has no slice ${index}`);
    const per = t.bytes / n;
    return this.source.read(t.offset + index * per, per);
  }

  /**
   * One tensor as stored: F32/F16/BF16/I8/I32 in that dtype with its shape; the block types kept
   * quantized (LOADS_AS) as raw u8 [bytes] (see `dequantize`); Q2_K/Q3_K dequantised to f32. `raw` (when
   * given) replaces the bytes read from the file (the caller permuted or sliced them), with `shape`
   * (default: the tensor's).
   */
  async loadTensor(name: string, backend: Backend, raw?: Uint8Array, shape?: readonly number[]): Promise<Tensor> {
    const t = this.info(name);
    const as = this.loadsAs(name);
    const bytes = raw ?? await this.source.read(t.offset, t.bytes);
    const s = [...(shape ?? t.shape)];
    if (quantTypeOf(t.type)) return Tensor.fromBytes(bytes, [bytes.byteLength], 'u8', backend);
    if (as === 'f32' && t.type !== 'F32') {
      const n = s.reduce((a, b) => a * b, 1);
      return Tensor.fromBytes(new Uint8Array(dequantizeGgml(t.type, bytes, n).buffer), s, 'f32', backend);
    }
    return Tensor.fromBytes(bytes, s, as as DType, backend);
  }

  /**
   * A quantized matrix kept in its blocks (memory = its bytes in the file), or null when the tensor
   * is not in a block format or not 2-D. `raw`/`shape` as in `loadTensor`.
   */
  async loadQuantized(name: string, backend: Backend, raw?: Uint8Array, shape?: readonly number[]): Promise<QuantizedTensor | null> {
    const t = this.info(name);
    const q = quantTypeOf(t.type);
    const s = shape ?? t.shape;
    if (!q || s.length !== 2) return null;
    const bytes = raw ?? await this.source.read(t.offset, t.bytes);
    return QuantizedTensor.fromBytes(bytes, q, s, backend, `${this.source.name}: tensor '${name}'`);
  }

  /** One tensor as f32 (or its float dtype), dequantising block formats on the backend; `raw`/`shape` as in `loadTensor`. */
  async loadFloat(name: string, backend: Backend, raw?: Uint8Array, shape?: readonly number[]): Promise<Tensor> {
    const t = this.info(name);
    const x = await this.loadTensor(name, backend, raw, shape);
    const q = quantTypeOf(t.type);
    if (!q) return x;
    try {
      return dequantize(x, q, shape ?? t.shape);
    } finally {
      x.dispose();
    }
  }

  async close(): Promise<void> {
    await this.source.close();
  }
}
