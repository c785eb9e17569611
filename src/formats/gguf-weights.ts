// A GGUF file as a WeightSource under HF names and in HF layouts, for every architecture
// gguf-hf.ts maps: tensors renamed, experts sliced out of stacked tensors, rows un-permuted
// (RoPE order, NeoX qkv), GPT-2 weights transposed back, Gemma norms shifted back, quantized
// matrices kept in their blocks (`loadQuantized`) or dequantised to f32 on load (one tensor at a time). llama.cpp's `rope_freqs` (Llama 3 rope
// scaling) is not a weight: `open` reads it into the config's rope_parameters.freq_factors.
import type { Backend } from '../tensor/backend.js';
import { Tensor } from '../tensor/tensor.js';
import { checkRequiredTensors, ggufToHfConfig, planHfTensors, type ServedTensor } from './gguf-hf.js';
import { isRowLayout, permuteLayoutRows, transformValues } from './gguf-layout.js';
import { quantTypeOf, type GgufFile } from './gguf.js';
import { missingTensor, type LoadOptions, type QuantizedWeight, type WeightInfo, type WeightSource } from './weight-source.js';

/** Transposed GPT-2 weights and shifted Gemma norms are remade on the host as f32. */
const valueLayout = (s: ServedTensor): boolean => !s.isBias && (s.layout === 'transpose' || s.layout === 'norm+1');

export class GgufWeights implements WeightSource {
  /** HF name -> where the GGUF file holds it. */
  private plan: Map<string, ServedTensor>;
  readonly config: Record<string, unknown>;

  /** Prefer `GgufWeights.open`, which also reads `rope_freqs`; `ropeFreqFactors` are its values. */
  constructor(readonly file: GgufFile, ropeFreqFactors?: readonly number[]) {
    const shapes = new Map(file.tensors.map((t) => [t.name, t.shape]));
    const src = file.source.name;
    this.config = ggufToHfConfig(file.metadata, shapes, src);
    this.plan = planHfTensors(file.architecture, shapes);
    if (ropeFreqFactors) {
      const rp = (this.config.rope_parameters ?? {}) as Record<string, unknown>;
      this.config.rope_parameters = { ...rp, freq_factors: [...ropeFreqFactors] };
    }
  }

  static async open(file: GgufFile): Promise<GgufWeights> {
    if (!file.has('rope_freqs.weight')) return new GgufWeights(file);
    const t = file.info('rope_freqs.weight');
    if (t.type !== 'F32') throw new Error(`${file.source.name}: rope_freqs.weight is ${t.type}; llama.cpp writes it as F32`);
    const raw = await file.readRaw(t.name);
    return new GgufWeights(file, Array.from(new Float32Array(raw.slice().buffer)));
  }

  /** Throws naming the first tensor the architecture needs that the file lacks (the loader calls it). */
  checkComplete(): void {
    const shapes = new Map(this.file.tensors.map((t) => [t.name, t.shape]));
    checkRequiredTensors(this.file.architecture, shapes, Number(this.config.num_hidden_layers ?? this.config.n_layer), this.file.source.name);
  }

  names(): string[] {
    return [...this.plan.keys()];
  }

  has(name: string): boolean {
    return this.plan.has(name);
  }

  private served(name: string): ServedTensor {
    return this.plan.get(name) ?? missingTensor(this.file.source.name, name, this.names());
  }

  /** The GGUF name of an HF name. */
  ggufName(name: string): string {
    return this.served(name).gguf;
  }

  info(name: string): WeightInfo {
    const s = this.served(name);
    const t = this.file.info(s.gguf);
    const as = this.file.loadsAs(t.name);
    const dtype = quantTypeOf(t.type) || valueLayout(s) ? 'f32' : as;
    let shape = s.expert !== undefined ? t.shape.slice(1) : [...t.shape];
    if (s.layout === 'transpose' && !s.isBias) shape = [shape[1]!, shape[0]!];
    if (s.layout === 'row' && shape.length === 1) shape = [1, shape[0]!];
    return { dtype: dtype as WeightInfo['dtype'], storedAs: t.type, shape, bytes: s.expert !== undefined ? t.bytes / t.shape[0]! : t.bytes };
  }

  async load(name: string, backend: Backend, opts: LoadOptions = {}): Promise<Tensor> {
    const s = this.served(name);
    const t = this.file.info(s.gguf);
    const info = this.info(name);
    let raw = s.expert !== undefined ? await this.file.readSlice(s.gguf, s.expert) : undefined;
    let shape = s.expert !== undefined ? t.shape.slice(1) : t.shape;
    if (isRowLayout(s.layout)) {
      raw ??= await this.file.readRaw(s.gguf);
      raw = permuteLayoutRows(raw, s.layout!, this.config, raw.byteLength / shape[0]!, false);
    }
    if (s.layout === 'row') shape = info.shape;
    let x = await this.file.loadFloat(s.gguf, backend, raw, shape);
    if (valueLayout(s)) {
      const f = x.dtype === 'f32' ? x : x.cast('f32');
      const v = transformValues(await f.data() as Float32Array, shape, s.layout!, false);
      if (f !== x) f.dispose();
      x.dispose();
      x = Tensor.fromBytes(new Uint8Array(v.values.buffer), v.shape, 'f32', backend);
    }
    if (!opts.dtype || opts.dtype === x.dtype) return x;
    try {
      return x.cast(opts.dtype);
    } finally {
      x.dispose();
    }
  }

  /**
   * The tensor kept in its blocks, when it is a quantized matrix that reaches the model unchanged
   * but for a permutation of whole rows: `transposed` says that the HF tensor is its transpose
   * (GPT-2's Conv1D weights, which llama.cpp stores as [out, in]). Null for anything else.
   */
  async loadQuantized(name: string, backend: Backend): Promise<QuantizedWeight | null> {
    const s = this.served(name);
    const t = this.file.info(s.gguf);
    if (!quantTypeOf(t.type) || s.isBias || (s.layout && !isRowLayout(s.layout) && s.layout !== 'transpose')) return null;
    const shape = s.expert !== undefined ? t.shape.slice(1) : t.shape;
    if (shape.length !== 2) return null;
    let raw = s.expert !== undefined ? await this.file.readSlice(s.gguf, s.expert) : await this.file.readRaw(s.gguf);
    if (isRowLayout(s.layout)) raw = permuteLayoutRows(raw, s.layout!, this.config, raw.byteLength / shape[0]!, false);
    const weight = await this.file.loadQuantized(s.gguf, backend, raw, shape);
    return weight && { weight, transposed: s.layout === 'transpose' };
  }

  totalBytes(): number {
    return this.file.tensors.reduce((s, t) => s + t.bytes, 0);
  }

  async close(): Promise<void> {
    await this.file.close();
  }
}
