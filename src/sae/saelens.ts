// SAELens' folder format: cfg.json + sae_weights.safetensors (+ sparsity.safetensors, log10 feature
// density), read for every architecture actlab has (SAELens 6 configs and the older layouts) and
// written as SAELens 6 writes them; and the Hub release layout (a repository with one such folder
// per SAE), fetched through actlab's Hub download (cache, resume, checksums, offline mode).
// A round trip is exact: weights bit for bit, the config's fields as read.
// Not for: training checkpoints (checkpoint.ts).
import { downloadFile } from '../hub/download.js';
import { defaultCacheDir } from '../hub/resolve.js';
import { HubOfflineError } from '../hub/errors.js';
import { readJson, writeAtomic, writeBytesAtomic, type FileStore } from '../io/file-store.js';
import { getPlatform } from '../io/platform.js';
import { encodeSafetensorsHeader, SafetensorsFile } from '../formats/safetensors.js';
import { initBackend } from '../tensor/engine.js';
import { fmtShape } from '../tensor/shape.js';
import { configFromSaeLens, configToSaeLens, weightShapes } from './config.js';
import { Sae } from './sae.js';

export const SAE_CFG = 'cfg.json';
export const SAE_WEIGHTS = 'sae_weights.safetensors';
export const SAE_SPARSITY = 'sparsity.safetensors';

export interface LoadedSae {
  sae: Sae;
  /** log10 feature density [d_sae], when the folder has sparsity.safetensors. */
  logSparsity: Float32Array | null;
  dir: string;
}

/** Tensors of a SAELens weights file that are not weights of the architecture but are kept for a round trip. */
const extras = new WeakMap<Sae, Map<string, { data: Float32Array; shape: number[] }>>();

/** Reads an SAE from a SAELens folder. */
export async function loadSaeLens(dir: string, o: { store?: FileStore } = {}): Promise<LoadedSae> {
  const store = o.store ?? (await getPlatform()).store;
  const cfgPath = store.join(dir, SAE_CFG);
  const wPath = store.join(dir, SAE_WEIGHTS);
  if (!(await store.stat(cfgPath))) throw new Error(`${dir}: no ${SAE_CFG}; an SAELens folder holds ${SAE_CFG} and ${SAE_WEIGHTS}`);
  if (!(await store.stat(wPath))) throw new Error(`${dir}: no ${SAE_WEIGHTS}; an SAELens folder holds ${SAE_CFG} and ${SAE_WEIGHTS}`);
  const cfg = configFromSaeLens(await readJson(store, cfgPath), cfgPath);
  const js = await initBackend('js');
  const f = await SafetensorsFile.open(await store.openRead(wPath));
  try {
    const have = new Set(f.names());
    const shapes = weightShapes(cfg);
    // Training layouts: JumpReLU's log_threshold, BatchTopK's scalar topk_threshold.
    const alias: Record<string, string> = {};
    if (shapes.threshold && !have.has('threshold')) {
      if (have.has('log_threshold')) alias.threshold = 'log_threshold';
      else if (have.has('topk_threshold')) alias.threshold = 'topk_threshold';
    }
    const missing = Object.keys(shapes).filter((k) => !have.has(alias[k] ?? k));
    if (missing.length) {
      throw new Error(`${wPath}: missing ${missing.map((m) => `'${m}' ${fmtShape(shapes[m]!)}`).join(', ')} for a ${cfg.architecture} SAE (the file has ${[...have].join(', ') || 'no tensors'})`);
    }
    const read = async (name: string): Promise<{ data: Float32Array; shape: number[] }> => {
      const t = await f.load(name, js, { dtype: 'f32' });
      try {
        return { data: (t.dataSync() as Float32Array).slice(), shape: [...t.shape] };
      } finally {
        t.dispose();
      }
    };
    const params = new Map<string, Float32Array>();
    for (const [name, shape] of Object.entries(shapes)) {
      const src = alias[name] ?? name;
      const { data, shape: got } = await read(src);
      if (src === 'topk_threshold') { params.set(name, new Float32Array(shape[0]!).fill(data[0]!)); continue; }
      if (got.join(',') !== shape.join(',')) {
        throw new Error(`${wPath}: '${src}' is ${fmtShape(got)}; cfg.json (d_in ${cfg.d_in}, d_sae ${cfg.d_sae}${cfg.d_out ? `, d_out ${cfg.d_out}` : ''}) needs ${fmtShape(shape)}`);
      }
      params.set(name, src === 'log_threshold' ? data.map(Math.exp) : data);
    }
    const sae = new Sae(cfg, params);
    const rest = new Map<string, { data: Float32Array; shape: number[] }>();
    for (const name of have) if (!(name in shapes) && !Object.values(alias).includes(name)) rest.set(name, await read(name));
    if (rest.size) extras.set(sae, rest);
    let logSparsity: Float32Array | null = null;
    const spPath = store.join(dir, SAE_SPARSITY);
    if (await store.stat(spPath)) {
      const sp = await SafetensorsFile.open(await store.openRead(spPath));
      try {
        if (sp.has('sparsity')) {
          const t = await sp.load('sparsity', js, { dtype: 'f32' });
          logSparsity = (t.dataSync() as Float32Array).slice();
          t.dispose();
        }
      } finally {
        await sp.close();
      }
    }
    return { sae, logSparsity, dir };
  } finally {
    await f.close();
  }
}

/** Writes `sae` as an SAELens folder (each file atomically); `featureDensity` adds sparsity.safetensors. */
export async function saveSaeLens(sae: Sae, dir: string, o: { store?: FileStore; featureDensity?: Float32Array; logSparsity?: Float32Array } = {}): Promise<void> {
  const store = o.store ?? (await getPlatform()).store;
  const shapes = weightShapes(sae.cfg);
  const list: { name: string; dtype: 'f32'; shape: number[]; data: Float32Array }[] = [];
  for (const [name, shape] of Object.entries(shapes)) list.push({ name, dtype: 'f32', shape, data: sae.param(name) });
  for (const [name, t] of extras.get(sae) ?? []) list.push({ name, dtype: 'f32', shape: t.shape, data: t.data });
  await writeF32Safetensors(store, store.join(dir, SAE_WEIGHTS), list);
  const log = o.logSparsity ?? (o.featureDensity ? o.featureDensity.map((d) => Math.log10(d + 1e-10)) : null);
  if (log) await writeF32Safetensors(store, store.join(dir, SAE_SPARSITY), [{ name: 'sparsity', dtype: 'f32', shape: [log.length], data: log }]);
  await writeBytesAtomic(store, store.join(dir, SAE_CFG), new TextEncoder().encode(JSON.stringify(configToSaeLens(sae.cfg), null, 2)));
}

async function writeF32Safetensors(store: FileStore, path: string, list: { name: string; dtype: 'f32'; shape: number[]; data: Float32Array }[]): Promise<void> {
  const { prefix } = encodeSafetensorsHeader(path, list);
  await writeAtomic(store, path, async (sink) => {
    await sink.write(prefix);
    for (const e of list) await sink.write(new Uint8Array(e.data.buffer, e.data.byteOffset, e.data.byteLength).slice());
  });
}

export interface SaeHubOptions {
  revision?: string;
  cacheDir?: string;
  offline?: boolean;
  endpoint?: string;
  token?: string;
}

/**
 * Fetches one SAE of a Hub release (`repoId`, folder `saeId` holding cfg.json and
 * sae_weights.safetensors, as SAELens' pretrained releases are laid out) into the Hub cache and
 * reads it.
 */
export async function loadSaeFromHub(repoId: string, saeId: string, o: SaeHubOptions = {}): Promise<LoadedSae> {
  const p = await getPlatform();
  const store = p.store;
  const revision = o.revision ?? 'main';
  const endpoint = (o.endpoint ?? p.env('HF_ENDPOINT') ?? 'https://huggingface.co').replace(/\/+$/, '');
  const cacheDir = o.cacheDir ?? defaultCacheDir((k) => p.env(k), p.homeDir());
  const folder = saeId.replace(/^\/+|\/+$/g, '');
  if (folder.includes('..')) throw new Error(`${saeId}: not a folder name inside ${repoId}`);
  const dir = store.join(cacheDir, ...repoId.split('/'), revision, ...folder.split('/').filter(Boolean));
  const token = o.token ?? p.env('HF_TOKEN');
  const offline = o.offline || ['1', 'true', 'yes', 'on'].includes((p.env('HF_HUB_OFFLINE') ?? '').toLowerCase());
  const ctx = { id: repoId, store, fetch: p.fetch, sha256: () => p.sha256(), headers: (token ? { Authorization: `Bearer ${token}` } : {}) as Record<string, string> };
  for (const [file, required] of [[SAE_CFG, true], [SAE_WEIGHTS, true], [SAE_SPARSITY, false]] as const) {
    const dest = store.join(dir, file);
    if (await store.stat(dest)) continue;
    const rel = folder ? `${folder}/${file}` : file;
    if (offline) {
      if (required) throw new HubOfflineError(repoId, rel, dest, 'offline mode is on (offline: true or HF_HUB_OFFLINE=1)');
      continue;
    }
    try {
      await downloadFile(ctx, `${endpoint}/${repoId}/resolve/${encodeURIComponent(revision)}/${rel}`, rel, dest);
    } catch (e) {
      if (!required) continue;
      throw e;
    }
  }
  return loadSaeLens(dir, { store });
}
