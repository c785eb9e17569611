// A model's weights -> actlab's quantized checkpoint folder: config.json (with its
// `quantization_config`), model.safetensors (packed matrices as U8 [rows, rowBytes] plus the
// manifest of src/quant/packed-weights.ts; every other tensor as it was, in f32) and the tokenizer's
// files. Which tensors are packed: 2-D `.weight` matrices other than norms, position embeddings
// and MoE routers (the rule llama.cpp's converter applies to GGUF), in [out, in] orientation
// (GPT-2's Conv1D weights transposed). Rows that the format's blocks do not divide stay f32
// (reported) or stop the run (`onIndivisible: 'error'`); NaN or Inf stops it, naming the tensor.
// Every tensor is held in memory until the file is written (a file of the model's packed size).
import { writeAtomic, type FileStore } from '../io/file-store.js';
import { encodeSafetensorsHeader } from '../formats/safetensors.js';
import type { WeightSource } from '../formats/weight-source.js';
import type { Backend } from '../tensor/backend.js';
import type { DType } from '../tensor/dtype.js';
import { checkFinite, quantizeWeights, weightFormat, type ActlabQuantType } from '../quant/formats.js';
import { layoutBlock, type Clip } from '../quant/group.js';
import { quantizeLlmFp4, type LlmFp4Choice } from '../quant/llm-fp4.js';
import type { HfMatrix } from '../quant/fold.js';
import { PACKED_METADATA_KEY, type PackedEntry, type PackedManifest } from '../quant/packed-weights.js';

/** Whether `name` (HF) is a matrix to pack, and whether its HF layout is [in, out]. */
export function packRole(name: string, shape: readonly number[], config: Record<string, unknown>): { pack: boolean; transposed: boolean } {
  // HF '.weight' matrices, and the organisms' TransformerLens names (W_Q, W_in, W_E, W_U, ...)
  const named = name.endsWith('.weight') || /(^|\.)W_(Q|K|V|O|in|out|E|U)$/.test(name);
  const pack = shape.length === 2 && named && !/norm|(^|\.)ln_|\.ln\d?\.|wpe|position|\.gate\.weight$|router/.test(name);
  const transposed = pack && config.model_type === 'gpt2' && /\.(c_attn|c_proj|c_fc)\.weight$/.test(name);
  return { pack, transposed };
}

/** A tensor as it will be written. */
export interface OutTensor {
  name: string;
  dtype: DType;
  shape: number[];
  bytes: Uint8Array;
  packed?: PackedEntry;
}

export type { HfMatrix };

/** Reads every tensor of `weights` as f32 (HF layout), in order. */
export async function readAllF32(weights: WeightSource, backend: Backend): Promise<Map<string, HfMatrix>> {
  const out = new Map<string, HfMatrix>();
  for (const name of weights.names()) {
    const info = weights.info(name);
    const float = info.dtype === 'f32' || info.dtype === 'f16' || info.dtype === 'bf16';
    const t = await weights.load(name, backend, float ? { dtype: 'f32' } : {});
    try {
      if (float) out.set(name, { values: (t.dataSync() as Float32Array).slice(), shape: [...t.shape] });
      else out.set(name, { values: new Float32Array(0), shape: [...t.shape], raw: { dtype: t.dtype, bytes: await t.bytes() } });
    } finally {
      t.dispose();
    }
  }
  return out;
}

/** [in, out] values -> [out, in]. */
export function transpose2(v: Float32Array, rows: number, cols: number): Float32Array {
  const t = new Float32Array(v.length);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) t[c * rows + r] = v[r * cols + c]!;
  return t;
}

/** What one tensor becomes: a format (or 'llm-fp4' to search one), or null to keep it f32. */
export type TensorChoice = ActlabQuantType | 'llm-fp4' | null;

export interface PackOptions {
  /** The format of each packable matrix (name in HF terms, [out, in] shape). */
  choose: (name: string, shape: readonly [number, number]) => TensorChoice;
  /** Calibration inputs [tokens, in] of the matrix `name`, for the LLM-FP4 search. */
  calib?: (name: string) => Float32Array | undefined;
  onIndivisible?: 'fallback' | 'error';
  /** Range setting for every matrix (default: each format's own). */
  clip?: Clip;
  onFallback?: (name: string, shape: readonly number[], wanted: string) => void;
  onTensor?: (name: string, done: number, total: number) => void;
}

export interface PackReport {
  tensors: OutTensor[];
  /** name -> the LLM-FP4 choice, for matrices searched. */
  llmFp4: Record<string, LlmFp4Choice>;
  /** Packed weight bits over packed weight values (scales and tails included). */
  bitsPerWeight: number;
  counts: Record<string, number>;
}

/** Encodes every tensor: packable matrices in their chosen format, the rest as f32. */
export function packTensors(all: Map<string, HfMatrix>, config: Record<string, unknown>, o: PackOptions): PackReport {
  const tensors: OutTensor[] = [];
  const llmFp4: Record<string, LlmFp4Choice> = {};
  const counts: Record<string, number> = {};
  let bits = 0;
  let values = 0;
  let done = 0;
  for (const [name, m] of all) {
    const role = packRole(name, m.shape, config);
    const [rows, cols] = role.transposed ? [m.shape[1]!, m.shape[0]!] : [m.shape[0]!, m.shape[1]!];
    let choice: TensorChoice = role.pack && !m.raw ? o.choose(name, [rows, cols]) : null;
    if (choice !== null) {
      const type = choice === 'llm-fp4' ? 'llmfp4_e2m1' : weightFormat(choice, `tensor '${name}'`).type;
      const bv = layoutBlock(weightFormat(type).layout).values;
      if (cols % bv) {
        const msg = `tensor '${name}' [${rows}, ${cols}]: rows of ${cols} values are not a whole number of ${choice} blocks of ${bv}`;
        if (o.onIndivisible === 'error') throw new Error(`quantize: ${msg}`);
        o.onFallback?.(name, [rows, cols], choice);
        choice = null;
      }
    }
    if (m.raw) {
      tensors.push({ name, dtype: m.raw.dtype, shape: m.shape, bytes: m.raw.bytes });
    } else if (choice === null) {
      checkFinite(m.values, `tensor '${name}'`);
      tensors.push({ name, dtype: 'f32', shape: m.shape, bytes: new Uint8Array(m.values.buffer, m.values.byteOffset, m.values.byteLength) });
      counts.f32 = (counts.f32 ?? 0) + 1;
    } else {
      const w = role.transposed ? transpose2(m.values, m.shape[0]!, m.shape[1]!) : m.values;
      let type: ActlabQuantType;
      let bytes: Uint8Array;
      if (choice === 'llm-fp4') {
        const r = quantizeLlmFp4(w, rows, cols, { calib: o.calib?.(name), what: `tensor '${name}'` });
        type = r.choice.type;
        bytes = r.bytes;
        llmFp4[name] = r.choice;
      } else {
        type = choice;
        bytes = quantizeWeights(type, w, rows, cols, { what: `tensor '${name}'`, clip: o.clip });
      }
      const rb = bytes.byteLength / rows;
      tensors.push({ name, dtype: 'u8', shape: [rows, rb], bytes, packed: { type, shape: [rows, cols], transposed: role.transposed } });
      counts[type] = (counts[type] ?? 0) + 1;
      bits += 8 * bytes.byteLength;
      values += rows * cols;
    }
    o.onTensor?.(name, ++done, all.size);
  }
  return { tensors, llmFp4, counts, bitsPerWeight: values ? bits / values : 0 };
}

/** Writes the folder: model.safetensors (atomically), config.json and the extra files. */
export async function writePackedCheckpoint(
  store: FileStore, dir: string, config: Record<string, unknown>, report: PackReport,
  o: { files?: { name: string; bytes: Uint8Array }[]; quantization?: Record<string, unknown> } = {},
): Promise<void> {
  const manifest: PackedManifest = { version: 1, tensors: {} };
  for (const t of report.tensors) if (t.packed) manifest.tensors[t.name] = t.packed;
  const { prefix } = encodeSafetensorsHeader(`quantize(${dir})`, report.tensors.map((t) => ({ name: t.name, dtype: t.dtype, shape: t.shape })),
    { [PACKED_METADATA_KEY]: JSON.stringify(manifest), format: 'pt' });
  await writeAtomic(store, store.join(dir, 'model.safetensors'), async (sink) => {
    await sink.write(prefix);
    for (const t of report.tensors) await sink.write(t.bytes);
  });
  const qc = { quant_method: 'actlab', version: 1, bits_per_weight: report.bitsPerWeight, tensors: report.counts, ...(o.quantization ?? {}) };
  const json = new TextEncoder().encode(JSON.stringify({ ...config, quantization_config: qc }, null, 2) + '\n');
  await writeAtomic(store, store.join(dir, 'config.json'), async (sink) => { await sink.write(json); });
  for (const f of o.files ?? []) await writeAtomic(store, store.join(dir, f.name), async (sink) => { await sink.write(f.bytes); });
}

