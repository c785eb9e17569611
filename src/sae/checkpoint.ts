// Training checkpoints of an SAE: one safetensors file per checkpoint holding the trained
// parameters, Adam's moments and the dead-feature counters, with the config and the trainer state
// in its metadata. One file, written under a temporary name and renamed, so a checkpoint is
// either whole or absent; older ones are deleted only after the new one is in place.
// Not for: the SAELens inference format (saelens.ts).
import { writeAtomic, type FileStore } from '../io/file-store.js';
import { encodeSafetensorsHeader, SafetensorsFile } from '../formats/safetensors.js';
import { configFromSaeLens, configToSaeLens, type SaeConfig } from './config.js';

export interface TrainState {
  /** Steps done. */
  step: number;
  steps: number;
  tokens: number;
  /** Batches taken from the data source (init sample included), skipped again on resume. */
  batchesRead?: number;
  scalingFactor: number | null;
  topkThreshold?: number;
}

const FORMAT = 'actlab-sae-checkpoint';
const PREFIX = 'sae-step-';

function fileName(step: number): string {
  return `${PREFIX}${String(step).padStart(9, '0')}.safetensors`;
}

/** Writes a checkpoint into `dir` and deletes the older ones; returns its path. */
export async function saveTrainCheckpoint(
  store: FileStore, dir: string, cfg: SaeConfig, state: TrainState, tensors: Map<string, Float32Array>,
): Promise<string> {
  const list = [...tensors].map(([name, a]) => ({ name, dtype: 'f32' as const, shape: [a.length], data: a }));
  const metadata = { format: FORMAT, cfg: JSON.stringify(configToSaeLens(cfg)), state: JSON.stringify(state) };
  const { prefix } = encodeSafetensorsHeader(`SAE checkpoint in ${dir}`, list, metadata);
  const path = store.join(dir, fileName(state.step));
  await writeAtomic(store, path, async (sink) => {
    await sink.write(prefix);
    for (const e of list) await sink.write(new Uint8Array(e.data.buffer, e.data.byteOffset, e.data.byteLength).slice());
  });
  for (const f of await store.list(dir)) {
    if (f.startsWith(PREFIX) && f.endsWith('.safetensors') && f !== fileName(state.step)) await store.remove(store.join(dir, f));
  }
  return path;
}

/** The newest checkpoint in `dir`, or null. */
export async function latestTrainCheckpoint(store: FileStore, dir: string): Promise<string | null> {
  const files = (await store.list(dir)).filter((f) => f.startsWith(PREFIX) && f.endsWith('.safetensors')).sort();
  return files.length ? store.join(dir, files[files.length - 1]!) : null;
}

export async function loadTrainCheckpoint(store: FileStore, path: string): Promise<{ cfg: SaeConfig; state: TrainState; tensors: Map<string, Float32Array> }> {
  const f = await SafetensorsFile.open(await store.openRead(path));
  try {
    if (f.metadata.format !== FORMAT) throw new Error(`${path}: not an actlab SAE checkpoint`);
    const cfg = configFromSaeLens(JSON.parse(f.metadata.cfg ?? 'null'), path);
    const state = JSON.parse(f.metadata.state ?? 'null') as TrainState;
    const tensors = new Map<string, Float32Array>();
    for (const name of f.names()) {
      const b = await f.readBytes(name);
      tensors.set(name, new Float32Array(b.slice().buffer));
    }
    return { cfg, state, tensors };
  } finally {
    await f.close();
  }
}
