// The shape of one GGUF architecture mapping (what gguf-arch-<family>.ts files declare) and the
// helpers they share: tensor rules (llama.cpp name <-> HF name, and the layout change between
// them), typed metadata reads, and HF config reads that accept transformers 4 and 5 names.
// Not for: applying the rules (gguf-hf.ts plans them; gguf-weights.ts and gguf-convert.ts move bytes).
import type { MetadataValue } from '@huggingface/gguf';
import type { GgufWriteValue } from './gguf-write.js';

/**
 * How an HF tensor's layout differs from llama.cpp's:
 * - 'rope-q' / 'rope-k': q/k rows in Meta's interleaved-RoPE order (llama.cpp's LlamaModel.permute),
 *   over the attention heads (q) or the key/value heads (k);
 * - 'neox-qkv': NeoX's fused rows [head, (q|k|v), d_head] stored as [(q|k|v), head, d_head];
 * - 'transpose': GPT-2 Conv1D weights [in, out] stored as [out, in];
 * - 'norm+1': Gemma's RMSNorm weight w stored as w + 1;
 * - 'row': HF's [1, n] matrix that llama.cpp may store 1-D as [n].
 * Row permutations apply to weights and biases; the rest to weights only.
 */
export type Layout = 'rope-q' | 'rope-k' | 'neox-qkv' | 'transpose' | 'norm+1' | 'row';

export interface TensorRule {
  /** llama.cpp's name without `blk.N.` and without `.weight` / `.bias`. */
  gguf: string;
  /** HF's name under the block (or model) prefix, without `.weight` / `.bias`; `{e}` is an expert index. */
  hf: string;
  layout?: Layout;
  /** Every block (or the model) must have it. */
  required?: boolean;
}

/** A GGUF file's metadata under one architecture, read with errors that name the key. */
export class GgufMeta {
  constructor(readonly meta: Record<string, MetadataValue>, readonly arch: string, readonly source: string) {}

  raw(key: string): MetadataValue | undefined {
    return this.meta[`${this.arch}.${key}`];
  }

  num(key: string): number | undefined {
    const v = this.raw(key);
    return typeof v === 'number' ? v : typeof v === 'bigint' ? Number(v) : undefined;
  }

  need(key: string): number {
    const v = this.num(key);
    if (v === undefined) throw new Error(`${this.source}: GGUF metadata has no '${this.arch}.${key}'`);
    return v;
  }

  str(key: string): string | undefined {
    const v = this.raw(key);
    return typeof v === 'string' ? v : undefined;
  }

  bool(key: string): boolean | undefined {
    const v = this.raw(key);
    return typeof v === 'boolean' ? v : undefined;
  }
}

/** GGUF tensor names -> row-major shapes. */
export type TensorShapes = ReadonlyMap<string, readonly number[]>;

export interface GgufArchSpec {
  /** HF `model_type`s that llama.cpp's converter writes as this architecture. */
  modelTypes: string[];
  /** HF prefix of the block tensors, `{i}` standing for the block index ('model.layers.{i}.'). */
  blockPrefix: string;
  /** Tensors outside the blocks (HF names are whole). */
  top: TensorRule[];
  block: TensorRule[];
  /** GGUF metadata (+ tensor shapes, for what metadata leaves out) -> an HF config.json object. */
  toConfig(m: GgufMeta, t: TensorShapes): Record<string, unknown>;
  /** HF config -> GGUF metadata keys, without the `<arch>.` prefix. */
  toMetadata(cfg: HfConfig): Record<string, GgufWriteValue>;
  /** HF tensors llama.cpp's converter drops (buffers, tied heads). */
  skip?: (hfName: string, cfg: HfConfig) => boolean;
  /** Tensors the converter adds that have no HF counterpart (llama.cpp's rope_freqs). */
  extraTensors?: (cfg: HfConfig) => { name: string; values: Float32Array }[];
}

/** An HF config.json, read by the first of several names (transformers 4 and 5 spell fields differently). */
export class HfConfig {
  constructor(readonly cfg: Record<string, unknown>) {}

  get(...keys: string[]): unknown {
    const rp = (this.cfg.rope_parameters ?? this.cfg.rope_scaling ?? {}) as Record<string, unknown>;
    for (const k of keys) {
      const v = this.cfg[k] ?? (k.startsWith('rope.') ? rp[k.slice(5)] : undefined);
      if (v !== undefined && v !== null) return v;
    }
    return undefined;
  }

  num(keys: string | string[], dflt?: number): number {
    const ks = typeof keys === 'string' ? [keys] : keys;
    const v = this.get(...ks) ?? dflt;
    if (typeof v !== 'number') throw new Error(`GGUF conversion: config has no number ${ks.join(' / ')}`);
    return v;
  }

  opt(...keys: string[]): number | undefined {
    const v = this.get(...keys);
    return typeof v === 'number' ? v : undefined;
  }

  get modelType(): string {
    return String(this.cfg.model_type ?? '');
  }
}

/** The shape of a GGUF tensor, or an error naming it. */
export function shapeOf(t: TensorShapes, name: string, source: string): readonly number[] {
  const s = t.get(name);
  if (!s) throw new Error(`${source}: GGUF tensor '${name}' is missing`);
  return s;
}
