// A GGUF file as a WeightSource under HF names: tensors renamed by gguf-hf.ts, llama q/k rows
// permuted back from llama.cpp's interleaved-RoPE order to HF's rotate-half order, quantized
// tensors dequantised to f32 on load (one tensor at a time).
import type { Backend } from '../backends/backend.js';
import type { Tensor } from '../tensor/tensor.js';
import { ggufToHfConfig, ggufToHfName, GGUF_ARCHITECTURES } from './gguf-hf.js';
import type { GgufFile } from './gguf.js';
import { permuteInterleavedToHalf } from './rope-permute.js';
import { missingTensor, type LoadOptions, type WeightInfo, type WeightSource } from './weight-source.js';

export class GgufWeights implements WeightSource {
  /** HF name -> GGUF name. */
  private map = new Map<string, string>();
  readonly config: Record<string, unknown>;

  constructor(readonly file: GgufFile) {
    for (const t of file.tensors) this.map.set(ggufToHfName(t.name), t.name);
    this.config = ggufToHfConfig(file.metadata, file.tensors.map((t) => t.name), file.source.name);
  }

  names(): string[] {
    return [...this.map.keys()];
  }

  has(name: string): boolean {
    return this.map.has(name);
  }

  /** The GGUF name of an HF name. */
  ggufName(name: string): string {
    return this.map.get(name) ?? missingTensor(this.file.source.name, name, this.names());
  }

  info(name: string): WeightInfo {
    const t = this.file.info(this.ggufName(name));
    const as = this.file.loadsAs(t.name);
    const dtype = as === 'q8_0' || as === 'q4_0' ? 'f32' : as;
    return { dtype, storedAs: t.type, shape: [...t.shape], bytes: t.bytes };
  }

  /** Heads whose q/k rows must be un-interleaved, or 0. */
  private ropeHeads(name: string): number {
    if (!GGUF_ARCHITECTURES[this.file.architecture]?.ropeInterleaved) return 0;
    if (/\.self_attn\.q_proj\.(weight|bias)$/.test(name)) return this.config.num_attention_heads as number;
    if (/\.self_attn\.k_proj\.(weight|bias)$/.test(name)) return this.config.num_key_value_heads as number;
    return 0;
  }

  async load(name: string, backend: Backend, opts: LoadOptions = {}): Promise<Tensor> {
    const g = this.ggufName(name);
    const t = this.file.info(g);
    const heads = this.ropeHeads(name);
    let raw: Uint8Array | undefined;
    if (heads) {
      raw = await this.file.readRaw(g);
      raw = permuteInterleavedToHalf(raw, heads, raw.byteLength / t.shape[0]!);
    }
    const x = await this.file.loadFloat(g, backend, raw);
    if (!opts.dtype || opts.dtype === x.dtype) return x;
    try {
      return x.cast(opts.dtype);
    } finally {
      x.dispose();
    }
  }

  totalBytes(): number {
    return this.file.tensors.reduce((s, t) => s + t.bytes, 0);
  }

  async close(): Promise<void> {
    await this.file.close();
  }
}
