// Training checkpoints in the Hugging Face layout, one folder per step:
//   <out>/checkpoint-<step>/model.safetensors      parameters under their HF names
//                          /config.json            the model's config
//                          /optimizer.safetensors  moments / buffers, with kind and step in the metadata
//                          /tokenizer files        when given (tokenizer.json, tokenizer.bin, ...)
//                          /trainer_state.json     step, data position, seed, run settings (written last:
//                                                  a folder without it is incomplete and ignored)
// Resuming restores all of it, so N/2 + resume + N/2 steps equal N steps bit for bit. A checkpoint
// whose model config or parameter shapes differ from the model's is refused.
import { noGrad } from '../autograd/tape.js';
import { SafetensorsFile, writeSafetensors } from '../formats/safetensors.js';
import { readJson, writeBytesAtomic, type FileStore } from '../io/file-store.js';
import { assign } from '../ops/layout.js';
import { tidy } from '../tensor/engine.js';
import { fmtShape, shapesEqual } from '../tensor/shape.js';
import type { Tensor } from '../tensor/tensor.js';
import type { Optimizer } from './optim.js';

export class CheckpointMismatchError extends Error {
  constructor(dir: string, detail: string) {
    super(`checkpoint ${dir} does not fit this run: ${detail}`);
    this.name = 'CheckpointMismatchError';
  }
}

export interface TrainerState {
  /** Updates taken. */
  global_step: number;
  /** Examples consumed from the (shuffled) data, over all epochs. */
  data_position: number;
  epoch: number;
  /** Settings that fix the data order and the update; a resumed run must use the same. */
  run: Record<string, number | string>;
  /** The last log line written. */
  last_log?: Record<string, number>;
  /** The learning-rate schedule the run followed (warmup + cosine). */
  schedule?: { lr: number; min_lr: number; warmup_steps: number; total_steps: number };
}

const json = (v: unknown) => new TextEncoder().encode(JSON.stringify(v, null, 2) + '\n');

/** JSON with sorted keys, for comparing configs. */
function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  if (v && typeof v === 'object') {
    return `{${Object.keys(v as object).sort().filter((k) => (v as Record<string, unknown>)[k] !== undefined).map((k) => `${JSON.stringify(k)}:${canonical((v as Record<string, unknown>)[k])}`).join(',')}}`;
  }
  return JSON.stringify(v);
}

export async function saveCheckpoint(
  store: FileStore, dir: string, params: ReadonlyMap<string, Tensor>, config: Record<string, unknown>, opt: Optimizer, state: TrainerState,
  files: readonly { name: string; bytes: Uint8Array }[] = [],
): Promise<void> {
  await writeSafetensors(store, store.join(dir, 'model.safetensors'), [...params], { metadata: { format: 'pt' } });
  await writeBytesAtomic(store, store.join(dir, 'config.json'), json(config));
  for (const f of files) await writeBytesAtomic(store, store.join(dir, f.name), f.bytes);
  const s = opt.state();
  await writeSafetensors(store, store.join(dir, 'optimizer.safetensors'), [...s.tensors], { metadata: s.meta });
  await writeBytesAtomic(store, store.join(dir, 'trainer_state.json'), json(state));
}

/** The newest complete checkpoint folder under `out`, or null. */
export async function latestCheckpoint(store: FileStore, out: string): Promise<string | null> {
  let best = -1;
  for (const name of await store.list(out)) {
    const m = /^checkpoint-(\d+)$/.exec(name);
    if (!m) continue;
    const step = Number(m[1]);
    if (step > best && await store.stat(store.join(out, name, 'trainer_state.json'))) best = step;
  }
  return best >= 0 ? store.join(out, `checkpoint-${best}`) : null;
}

/**
 * Loads `dir` into the parameters (in place) and the optimizer; returns the trainer state. Refuses
 * a checkpoint whose config, parameter names or shapes, or run settings differ from this run's.
 */
export async function loadCheckpoint(
  store: FileStore, dir: string, params: ReadonlyMap<string, Tensor>, config: Record<string, unknown>, opt: Optimizer,
  run: Record<string, number | string>,
): Promise<TrainerState> {
  const saved = await readJson(store, store.join(dir, 'config.json')) as Record<string, unknown>;
  const keys = [...new Set([...Object.keys(saved), ...Object.keys(config)])].filter((k) => canonical(saved[k]) !== canonical(config[k]));
  if (keys.length) {
    throw new CheckpointMismatchError(dir, `its config differs in ${keys.slice(0, 5).map((k) => `${k} (${canonical(saved[k])} vs ${canonical(config[k])})`).join(', ')}`);
  }
  const state = await readJson(store, store.join(dir, 'trainer_state.json')) as TrainerState;
  const runKeys = Object.keys(run).filter((k) => state.run?.[k] !== run[k]);
  if (runKeys.length) {
    throw new CheckpointMismatchError(dir, `it was trained with ${runKeys.map((k) => `${k}=${state.run?.[k]} (this run: ${run[k]})`).join(', ')}`);
  }
  const model = await SafetensorsFile.open(await store.openRead(store.join(dir, 'model.safetensors')));
  try {
    const names = new Set(model.names());
    const missing = [...params.keys()].filter((n) => !names.has(n));
    const extra = [...names].filter((n) => !params.has(n));
    if (missing.length || extra.length) {
      throw new CheckpointMismatchError(dir, `${missing.length ? `it lacks ${missing.slice(0, 3).join(', ')}` : ''}${extra.length ? ` it has parameters this model lacks: ${extra.slice(0, 3).join(', ')}` : ''}`);
    }
    for (const [n, p] of params) {
      const info = model.info(n);
      if (!shapesEqual(info.shape, p.shape) || info.dtype !== p.dtype) {
        throw new CheckpointMismatchError(dir, `parameter '${n}' is ${info.dtype}${fmtShape(info.shape)}, the model's is ${p.dtype}${fmtShape(p.shape)}`);
      }
    }
    for (const [n, p] of params) {
      const t = await model.load(n, p.backend);
      noGrad(() => tidy(() => assign(p, t)));
      t.dispose();
    }
  } finally {
    await model.close();
  }
  const o = await SafetensorsFile.open(await store.openRead(store.join(dir, 'optimizer.safetensors')));
  try {
    const backend = params.values().next().value!.backend;
    const tensors = new Map<string, Tensor>();
    for (const n of o.names()) tensors.set(n, await o.load(n, backend));
    opt.loadState({ tensors, meta: o.metadata });
  } finally {
    await o.close();
  }
  return state;
}
