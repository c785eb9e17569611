// Vectors of interventions, inline or by reference: resolving `{ file, tensor }` references to a
// safetensors file, writing the vectors of a list out to one safetensors file next to the JSON
// (so a steering file stays small), and reading / writing intervention files. Files go through the
// platform adapter (`getPlatform()`), so this runs in Node and the browser alike.
import { SafetensorsFile } from '../formats/safetensors.js';
import { getPlatform } from '../io/platform.js';
import { writeBytesAtomic, type FileStore } from '../io/file-store.js';
import { initBackend } from '../tensor/engine.js';
import { writeSafetensors } from '../formats/safetensors.js';
import { tensor } from '../ops/creation.js';
import type { Tensor } from '../tensor/tensor.js';
import {
  InterventionError, interventionsToJSON, parseInterventions, type Intervention, type ValueRef, type VectorRef,
} from './intervention.js';

/** A resolved vector: row-major f32 data and its shape. */
export interface DenseVector {
  shape: number[];
  data: Float32Array;
}

/** The vector-valued fields of each op. */
const VECTOR_FIELDS = ['vector', 'value', 'source', 'target'] as const;

function isRef(v: unknown): v is { file: string; tensor: string } {
  return !!v && typeof v === 'object' && !Array.isArray(v) && !(v instanceof Float32Array) && 'file' in v;
}

/** The dense form of an inline vector (a reference must be resolved first). */
export function denseOf(v: VectorRef, where: string): DenseVector {
  if (Array.isArray(v)) return { shape: [v.length], data: Float32Array.from(v) };
  if (v instanceof Float32Array) return { shape: [v.length], data: v };
  if (isRef(v)) throw new InterventionError(`${where}: the reference to '${v.tensor}' in ${v.file} is not resolved; load the list with loadInterventions or resolveVectors first`);
  return { shape: [...v.shape], data: v.data instanceof Float32Array ? v.data : Float32Array.from(v.data) };
}

/** A number stays a number; a vector becomes dense. */
export function denseValue(v: ValueRef, where: string): number | DenseVector {
  return typeof v === 'number' ? v : denseOf(v, where);
}

function dirOf(path: string): string {
  const i = Math.max(path.lastIndexOf('/'), path.lastIndexOf('\\'));
  return i < 0 ? '' : path.slice(0, i);
}

function isAbsolute(p: string): boolean {
  return p.startsWith('/') || /^[A-Za-z]:[\\/]/.test(p) || /^[a-z]+:\/\//.test(p);
}

/** Reads one tensor of a safetensors file as f32. */
export async function readSafetensorsVector(path: string, name: string): Promise<DenseVector> {
  const platform = await getPlatform();
  const file = await SafetensorsFile.open(await platform.openFile(path));
  try {
    if (!file.has(name)) throw new InterventionError(`${path}: no tensor '${name}' (it has ${file.names().slice(0, 20).map((n) => `'${n}'`).join(', ')})`);
    const t = await file.load(name, await initBackend('js'));
    const f = t.dtype === 'f32' ? t : t.cast('f32');
    const data = Float32Array.from(f.dataSync() as Float32Array);
    const shape = [...t.shape];
    if (f !== t) f.dispose();
    t.dispose();
    for (let i = 0; i < data.length; i++) if (!Number.isFinite(data[i]!)) throw new InterventionError(`${path}: tensor '${name}' holds ${data[i]} at index ${i}; vectors must be finite`);
    return { shape, data };
  } finally {
    await file.close();
  }
}

/** Replaces every `{ file, tensor }` reference by its data (files relative to `baseDir`). */
export async function resolveVectors(list: readonly Intervention[], o: { baseDir?: string } = {}): Promise<Intervention[]> {
  const platform = await getPlatform();
  const out: Intervention[] = [];
  for (const iv of list) {
    const copy = { ...iv } as Record<string, unknown>;
    for (const k of VECTOR_FIELDS) {
      const v = copy[k];
      if (!isRef(v)) continue;
      const path = isAbsolute(v.file) || !o.baseDir ? v.file : platform.store.join(o.baseDir, v.file);
      const d = await readSafetensorsVector(path, v.tensor);
      copy[k] = { shape: d.shape, data: d.data };
    }
    out.push(copy as Intervention);
  }
  return out;
}

/** Reads an intervention file (JSON), checks it and resolves its vector references. */
export async function loadInterventions(path: string): Promise<Intervention[]> {
  const platform = await getPlatform();
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder().decode(await platform.store.readBytes(path)));
  } catch (e) {
    throw new InterventionError(`${path}: cannot read an intervention file (${(e as Error).message})`);
  }
  return resolveVectors(parseInterventions(json, path), { baseDir: dirOf(path) });
}

/**
 * Writes `list` to `path` as JSON. With `vectorsFile` (a path relative to the JSON's folder),
 * every vector of more than `inlineMax` values (default 16) is stored in that safetensors file
 * and referenced by name (`interventions.{i}.{field}`); smaller ones stay inline. Both files are
 * written atomically.
 */
export async function saveInterventions(
  list: readonly Intervention[], path: string, o: { vectorsFile?: string; inlineMax?: number; store?: FileStore } = {},
): Promise<void> {
  const store = o.store ?? (await getPlatform()).store;
  const copy = list.map((iv) => ({ ...iv }) as Record<string, unknown>);
  const tensors: [string, Tensor][] = [];
  if (o.vectorsFile) {
    const js = await initBackend('js');
    copy.forEach((iv, i) => {
      for (const k of VECTOR_FIELDS) {
        const v = iv[k];
        if (v === undefined || typeof v === 'number' || isRef(v)) continue;
        const d = denseOf(v as VectorRef, `interventions[${i}].${k}`);
        if (d.data.length <= (o.inlineMax ?? 16)) continue;
        const name = `interventions.${i}.${k}`;
        tensors.push([name, tensor(d.data, d.shape, 'f32', { backend: js })]);
        iv[k] = { file: o.vectorsFile!, tensor: name };
      }
    });
  }
  try {
    if (tensors.length) {
      const dir = dirOf(path);
      await writeSafetensors(store, isAbsolute(o.vectorsFile!) || !dir ? o.vectorsFile! : store.join(dir, o.vectorsFile!), tensors);
    }
    const json = interventionsToJSON(copy as Intervention[]);
    await writeBytesAtomic(store, path, new TextEncoder().encode(`${JSON.stringify(json, null, 1)}\n`));
  } finally {
    for (const [, t] of tensors) t.dispose();
  }
}
