// llama.cpp control vectors: steering vectors in llama.cpp's GGUF format, read and written.
// The format (llama.cpp common/common.cpp `common_control_vector_load_one`, the cvector-generator,
// repeng's `export_gguf`): general.architecture = "controlvector", `controlvector.model_hint`
// (the model's architecture), `controlvector.layer_count`, and one F32 1-D tensor `direction.N`
// of n_embd values per layer N ≥ 1 (direction.0 is rejected: llama.cpp never steers layer 0).
// Where llama.cpp adds it (src/llama-adapter.cpp `llama_adapter_cvec::apply_to`, called by
// `build_cvec(cur, il)` right after the FFN residual add of layer il, before `cb(cur, "l_out", il)`):
//   direction.N × strength is added to the output of block N, i.e. actlab's blocks.N.hook_resid_post,
// at every position, for N in the layer range (`--control-vector-layer-range`, default 1..n_layer).
// `--control-vector-scaled FILE s` multiplies the directions by s when loading, as actlab's strength.
// Its own generator (tools/cvector-generator) reads `l_out` of layer il (the output of block il)
// and writes it as direction.{il+1}: a generated direction.N is computed from blocks.{N-1}
// .hook_resid_post (= blocks.N.hook_resid_pre) and applied one block later, at blocks.N.hook_resid_post.
import { GgufFile } from '../formats/gguf.js';
import { writeGguf } from '../formats/gguf-write.js';
import { getPlatform } from '../io/platform.js';
import type { ByteSource } from '../io/byte-source.js';
import type { FileStore } from '../io/file-store.js';
import { InterventionError, type Intervention } from './intervention.js';
import { DEFAULT_STEERING_HOOK, type SteeringVectors } from './steering-vectors.js';

export interface ControlVector {
  /** `controlvector.model_hint`: the architecture the vectors were made for (e.g. 'llama'). */
  modelHint: string;
  /** n_embd of every direction. */
  dModel: number;
  /** direction.N by llama.cpp layer N (≥ 1): added to the output of block N. */
  directions: Map<number, Float32Array>;
}

export class ControlVectorError extends InterventionError {
  constructor(file: string, message: string) {
    super(`${file}: ${message}`);
    this.name = 'ControlVectorError';
  }
}

/** Reads a control-vector GGUF (a path through the platform adapter, or a ByteSource). */
export async function readControlVector(file: string | ByteSource): Promise<ControlVector> {
  const src = typeof file === 'string' ? await (await getPlatform()).openFile(file) : file;
  const name = src.name;
  try {
    let g: GgufFile;
    try {
      g = await GgufFile.open(src);
    } catch (e) {
      throw new ControlVectorError(name, `not a readable control-vector GGUF (${(e as Error).message.replace(`${name}: `, '')})`);
    }
    const arch = g.metadata['general.architecture'];
    if (arch !== undefined && arch !== 'controlvector') {
      throw new ControlVectorError(name, `general.architecture is '${String(arch)}', not 'controlvector': this is a model or another adapter, not a control vector`);
    }
    const hint = g.metadata['controlvector.model_hint'];
    const directions = new Map<number, Float32Array>();
    let dModel = -1;
    for (const t of g.tensors) {
      const m = /^direction\.(\d+)$/.exec(t.name);
      if (!m) throw new ControlVectorError(name, `tensor '${t.name}' is not named direction.N (llama.cpp rejects it too)`);
      const n = Number(m[1]);
      if (n === 0) throw new ControlVectorError(name, `tensor 'direction.0': layer indices start at 1 (llama.cpp never steers layer 0)`);
      if (t.type !== 'F32') throw new ControlVectorError(name, `tensor '${t.name}' is ${t.type}; control vectors are F32`);
      if (t.shape.length !== 1) throw new ControlVectorError(name, `tensor '${t.name}' has shape [${t.shape.join(', ')}]; control vectors are 1-D`);
      if (dModel >= 0 && t.shape[0] !== dModel) throw new ControlVectorError(name, `tensor '${t.name}' has ${t.shape[0]} values; earlier directions have ${dModel}`);
      dModel = t.shape[0]!;
      const bytes = await g.readRaw(t.name);
      const v = new Float32Array(bytes.slice().buffer);
      const bad = v.findIndex((x) => !Number.isFinite(x));
      if (bad >= 0) throw new ControlVectorError(name, `tensor '${t.name}' holds ${v[bad]} at index ${bad}`);
      directions.set(n, v);
    }
    if (directions.size === 0) throw new ControlVectorError(name, 'no direction.N tensors');
    const count = g.metadata['controlvector.layer_count'];
    if (count !== undefined && Number(count) < directions.size) {
      throw new ControlVectorError(name, `controlvector.layer_count is ${String(count)} but the file holds ${directions.size} directions`);
    }
    return { modelHint: hint === undefined ? '' : String(hint), dModel, directions: new Map([...directions].sort((a, b) => a[0] - b[0])) };
  } finally {
    await src.close();
  }
}

/** Writes a control vector as llama.cpp's cvector-generator does (atomically). */
export async function writeControlVector(cv: ControlVector, path: string, store?: FileStore): Promise<void> {
  if (cv.directions.size === 0) throw new InterventionError('a control vector needs at least one direction');
  for (const [n, v] of cv.directions) {
    if (!Number.isInteger(n) || n < 1) throw new InterventionError(`direction.${n}: llama.cpp layers of a control vector start at 1`);
    if (v.length !== cv.dModel) throw new InterventionError(`direction.${n} has ${v.length} values, not ${cv.dModel}`);
  }
  const s = store ?? (await getPlatform()).store;
  const sorted = [...cv.directions].sort((a, b) => a[0] - b[0]);
  await writeGguf(s, path, {
    'general.architecture': 'controlvector',
    'controlvector.model_hint': cv.modelHint,
    'controlvector.layer_count': sorted.length,
  }, sorted.map(([n, v]) => ({ name: `direction.${n}`, type: 'F32' as const, shape: [v.length], data: new Uint8Array(Float32Array.from(v).buffer) })));
}

/**
 * Steering vectors as a control vector: a vector of blocks.L.hook_resid_post becomes direction.L,
 * one of blocks.L.hook_resid_pre direction.(L − 1) (the same residual state). Layers with no
 * llama.cpp slot (the output of block 0 or the embeddings) are refused.
 */
export function controlVectorFromSteering(sv: Pick<SteeringVectors, 'hook' | 'vectors' | 'dModel'>, modelHint: string, layers?: number[]): ControlVector {
  const shift = sv.hook === DEFAULT_STEERING_HOOK ? 0 : sv.hook === 'blocks.{layer}.hook_resid_pre' ? -1 : null;
  if (shift === null) throw new InterventionError(`llama.cpp steers the residual stream between blocks; vectors at '${sv.hook}' have no control-vector slot (use hook_resid_post or hook_resid_pre)`);
  const directions = new Map<number, Float32Array>();
  for (const [l, v] of sv.vectors) {
    if (layers && !layers.includes(l)) continue;
    const n = l + shift;
    if (n < 1) throw new InterventionError(`the vector of ${sv.hook.replace('{layer}', String(l))} would be direction.${n}; llama.cpp only steers the outputs of blocks 1 and up`);
    directions.set(n, v);
  }
  if (directions.size === 0) throw new InterventionError(`none of layers ${layers?.join(', ')} has a steering vector`);
  return { modelHint, dModel: sv.dModel, directions };
}

/**
 * The interventions that do what llama.cpp does with this control vector at `strength`: add
 * strength × direction.N at blocks.N.hook_resid_post, every position, for N in [layerStart,
 * layerEnd] (llama.cpp's --control-vector-layer-range; default every direction).
 */
export function controlVectorInterventions(cv: ControlVector, strength: number, o: { layerStart?: number; layerEnd?: number; nLayers?: number } = {}): Intervention[] {
  if (!Number.isFinite(strength)) throw new InterventionError(`control vector strength must be a finite number, got ${strength}`);
  const out: Intervention[] = [];
  for (const [n, v] of cv.directions) {
    if (n < (o.layerStart ?? 1) || n > (o.layerEnd ?? Infinity)) continue;
    if (o.nLayers !== undefined && n >= o.nLayers) {
      throw new InterventionError(`direction.${n} is past the model's last block (${o.nLayers} blocks, so direction.1 to direction.${o.nLayers - 1}); llama.cpp ignores such a direction, actlab refuses it`);
    }
    out.push({ hook: `blocks.${n}.hook_resid_post`, op: 'add', vector: v, strength });
  }
  if (out.length === 0) throw new InterventionError(`no direction of the control vector lies in layers ${o.layerStart ?? 1}..${o.layerEnd ?? '∞'}`);
  return out;
}
