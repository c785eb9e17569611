// actlab's quantized checkpoints: a safetensors file whose packed matrices are U8 tensors
// [rows, rowBytes] named as the HF weight they replace, described in the header's
// `__metadata__["actlab.quantization"]` ({version, tensors: {name: {type, shape: [rows, cols],
// transposed}}}: rows are outputs, `transposed` when the HF tensor is [in, out], as GPT-2's
// Conv1D), beside the config.json's `quantization_config`. `PackedWeights` serves such a file as
// any other WeightSource: the packed matrices kept quantized (`loadQuantized`) or expanded to f32.
// Writing: src/quantize/write.ts.
import type { Backend } from '../tensor/backend.js';
import { isQuantType, QuantizedTensor, quantRowBytes } from '../tensor/quantized.js';
import { Tensor } from '../tensor/tensor.js';
import type { SafetensorsFile } from '../formats/safetensors.js';
import { bytesToTensor, type LoadOptions, type QuantizedWeight, type WeightInfo, type WeightSource } from '../formats/weight-source.js';
import { dequantizeWeights, isActlabQuantType, type ActlabQuantType } from './formats.js';

export const PACKED_METADATA_KEY = 'actlab.quantization';

export interface PackedEntry {
  type: ActlabQuantType;
  /** [rows, cols] of the packed matrix (rows = outputs). */
  shape: [number, number];
  transposed: boolean;
}

export interface PackedManifest {
  version: 1;
  tensors: Record<string, PackedEntry>;
}

/** Reads and checks the manifest of `file`; null when the file holds no actlab quantization. */
export function packedManifest(file: SafetensorsFile): PackedManifest | null {
  const text = file.metadata[PACKED_METADATA_KEY];
  if (text === undefined) return null;
  const where = `${file.source.name}: __metadata__["${PACKED_METADATA_KEY}"]`;
  let m: PackedManifest;
  try {
    m = JSON.parse(text) as PackedManifest;
  } catch (e) {
    throw new Error(`${where} is not JSON (${(e as Error).message})`);
  }
  if (m?.version !== 1 || typeof m.tensors !== 'object' || m.tensors === null) throw new Error(`${where}: expected {"version": 1, "tensors": {...}}`);
  for (const [name, e] of Object.entries(m.tensors)) {
    if (!isActlabQuantType(String(e?.type))) throw new Error(`${where}: tensor '${name}' has unknown type '${e?.type}'`);
    if (!file.has(name)) throw new Error(`${where}: tensor '${name}' is not in the file`);
    const [rows, cols] = e.shape ?? [];
    const info = file.info(name);
    const rb = quantRowBytes(e.type, cols!, `${file.source.name}: tensor '${name}'`);
    if (info.storedAs !== 'U8' || info.shape.length !== 2 || info.shape[0] !== rows || info.shape[1] !== rb) {
      throw new Error(`${file.source.name}: tensor '${name}' (${e.type} [${rows}, ${cols}]) must be U8 [${rows}, ${rb}], the file has ${info.storedAs} [${info.shape.join(', ')}]${info.bytes < rows! * rb ? ' (truncated)' : ''}`);
    }
  }
  return m;
}

export class PackedWeights implements WeightSource {
  constructor(readonly file: SafetensorsFile, readonly manifest: PackedManifest) {}

  static wrap(file: SafetensorsFile): WeightSource {
    const m = packedManifest(file);
    return m ? new PackedWeights(file, m) : file;
  }

  private packed(name: string): PackedEntry | undefined {
    return Object.prototype.hasOwnProperty.call(this.manifest.tensors, name) ? this.manifest.tensors[name] : undefined;
  }

  names(): string[] { return this.file.names(); }
  has(name: string): boolean { return this.file.has(name); }
  totalBytes(): number { return this.file.totalBytes(); }
  close(): Promise<void> { return this.file.close(); }

  info(name: string): WeightInfo {
    const p = this.packed(name);
    if (!p) return this.file.info(name);
    const [rows, cols] = p.shape;
    return { dtype: 'f32', storedAs: p.type, shape: p.transposed ? [cols, rows] : [rows, cols], bytes: this.file.info(name).bytes };
  }

  async load(name: string, backend: Backend, opts: LoadOptions = {}): Promise<Tensor> {
    const p = this.packed(name);
    if (!p) return this.file.load(name, backend, opts);
    const [rows, cols] = p.shape;
    let v = dequantizeWeights(p.type, await this.file.readBytes(name), rows, cols);
    if (p.transposed) {
      const t = new Float32Array(v.length);
      for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) t[c * rows + r] = v[r * cols + c]!;
      v = t;
    }
    return bytesToTensor(new Uint8Array(v.buffer), p.transposed ? [cols, rows] : [rows, cols], 'f32', backend, opts.dtype);
  }

  async loadQuantized(name: string, backend: Backend): Promise<QuantizedWeight | null> {
    const p = this.packed(name);
    if (!p || !isQuantType(p.type)) return null;
    const weight = QuantizedTensor.fromBytes(await this.file.readBytes(name), p.type, p.shape, backend, `${this.file.source.name}: tensor '${name}'`);
    return { weight, transposed: p.transposed };
  }
}
