// resolveModel: a local folder is used as is; a Hub id ("gpt2", "Qwen/Qwen2.5-0.5B") is fetched
// from `${endpoint}/${id}/resolve/${revision}/${file}` into a cache folder
// (`<cacheDir>/<id>/<revision>/`, default ~/.cache/actlab/hub), or taken from that cache when offline
// (HF_HUB_OFFLINE=1, `offline: true`, or the network is unreachable). Files already in the cache
// are not fetched again.
import { getPlatform } from '../io/platform.js';
import { readJson } from '../io/file-store.js';
import { downloadFile, type DownloadContext, type DownloadProgress } from './download.js';
import { HubError, HubFileNotFoundError, HubOfflineError, NetworkError } from './errors.js';
import type { Fetch } from '../io/http.js';

export interface ResolveOptions {
  cacheDir?: string;
  offline?: boolean;
  /** Default: env HF_ENDPOINT, else https://huggingface.co. */
  endpoint?: string;
  /** Branch, tag or commit; default 'main'. */
  revision?: string;
  /** Default: env HF_TOKEN (sent as a Bearer token). */
  token?: string;
  onProgress?: (p: DownloadProgress) => void;
  /** Replaces the platform's fetch (proxies, tests). */
  fetch?: Fetch;
}

export interface ResolvedModel {
  /** The folder that holds config.json and the weights. */
  dir: string;
  source: 'local' | 'cache' | 'hub';
  id?: string;
  revision?: string;
  /** Weight files, relative to `dir`. */
  weightFiles: string[];
}

const OPTIONAL = ['generation_config.json', 'tokenizer.json', 'tokenizer_config.json'];
const ID = /^[A-Za-z0-9][\w.-]*(\/[\w.-]+)?$/;

export function defaultCacheDir(env: (k: string) => string | undefined, home: string | null): string {
  const own = env('ACTLAB_CACHE');
  if (own) return own;
  return home ? `${home}/.cache/actlab/hub` : '/actlab/hub';
}

export async function resolveModel(idOrPath: string, opts: ResolveOptions = {}): Promise<ResolvedModel> {
  const p = await getPlatform();
  const store = p.store;
  const st = await store.stat(idOrPath);
  if (st?.isDirectory) return { dir: idOrPath, source: 'local', weightFiles: await localWeights(idOrPath) };
  if (st) throw new Error(`${idOrPath}: is a file; resolveModel takes a model folder or a Hub id`);
  if (!ID.test(idOrPath) || idOrPath.includes('..')) {
    throw new Error(`${idOrPath}: no such folder, and it is not a Hub model id (like 'gpt2' or 'Qwen/Qwen2.5-0.5B')`);
  }
  const id = idOrPath;
  const revision = opts.revision ?? 'main';
  const endpoint = (opts.endpoint ?? p.env('HF_ENDPOINT') ?? 'https://huggingface.co').replace(/\/+$/, '');
  const cacheDir = opts.cacheDir ?? defaultCacheDir((k) => p.env(k), p.homeDir());
  const dir = store.join(cacheDir, ...id.split('/'), revision);
  const token = opts.token ?? p.env('HF_TOKEN');
  const envOffline = ['1', 'true', 'yes', 'on'].includes((p.env('HF_HUB_OFFLINE') ?? '').toLowerCase());
  let offlineWhy = opts.offline || envOffline ? 'offline mode is on (offline: true or HF_HUB_OFFLINE=1)' : null;

  const ctx: DownloadContext = {
    id, store, fetch: opts.fetch ?? p.fetch, sha256: () => p.sha256(), onProgress: opts.onProgress,
    headers: token ? { Authorization: `Bearer ${token}` } : {},
  };
  const url = (file: string): string => `${endpoint}/${id}/resolve/${encodeURIComponent(revision)}/${file}`;
  const cached = async (file: string): Promise<boolean> => (await store.stat(store.join(dir, file)))?.isDirectory === false;
  let fetched = false;

  /** Gets `file` into the cache; false when it is optional and absent (404) or we are offline. */
  const get = async (file: string, required: boolean): Promise<boolean> => {
    if (await cached(file)) return true;
    if (offlineWhy) {
      if (!required) return false;
      throw new HubOfflineError(id, file, store.join(dir, file), offlineWhy);
    }
    try {
      await downloadFile(ctx, url(file), file, store.join(dir, file));
      fetched = true;
      return true;
    } catch (e) {
      if (e instanceof HubFileNotFoundError && !required) return false;
      if (e instanceof NetworkError) {
        offlineWhy = `the Hub is unreachable (${e.message})`;
        return get(file, required);
      }
      throw e;
    }
  };

  await get('config.json', true);
  for (const f of OPTIONAL) await get(f, false);
  let weightFiles: string[];
  if (await get('model.safetensors', false)) {
    weightFiles = ['model.safetensors'];
  } else if (await get('model.safetensors.index.json', false)) {
    weightFiles = await shardsOf(store.join(dir, 'model.safetensors.index.json'), id);
    for (const f of weightFiles) await get(f, true);
  } else {
    const why = offlineWhy ?? `the Hub has neither at ${url('model.safetensors')}`;
    throw new HubError(`${id}: no model.safetensors or model.safetensors.index.json in the cache (${dir}) and ${why}`, id, 'model.safetensors');
  }
  return { dir, source: fetched ? 'hub' : 'cache', id, revision, weightFiles };

  async function shardsOf(indexPath: string, what: string): Promise<string[]> {
    const index = await readJson(store, indexPath) as { weight_map?: Record<string, string> };
    if (!index.weight_map || typeof index.weight_map !== 'object') throw new Error(`${what}: ${indexPath} has no weight_map`);
    const files = [...new Set(Object.values(index.weight_map))];
    for (const f of files) if (typeof f !== 'string' || f.includes('..') || f.startsWith('/')) throw new Error(`${indexPath}: bad shard name ${JSON.stringify(f)}`);
    return files;
  }

  async function localWeights(folder: string): Promise<string[]> {
    if (await store.stat(store.join(folder, 'model.safetensors'))) return ['model.safetensors'];
    const idx = store.join(folder, 'model.safetensors.index.json');
    if (await store.stat(idx)) return shardsOf(idx, folder);
    return [];
  }
}
