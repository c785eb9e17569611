// manifest.json of an activation store: what was harvested (model, tokenizer, corpus, hooks,
// dtype, context) and which shards hold it. It is rewritten atomically after every shard, and
// only shards it lists exist as far as readers and resumes are concerned.
//
// Identity (what must match for a harvest to resume into a folder):
//   model: arch, dims, SHA-256 of the config (canonical JSON) and a probe: logits of a fixed
//     8-token input, compared with a tolerance (so another backend may resume, other weights may not);
//     `source` is recorded but not compared (the same model may be reached by another path).
//   tokenizer: kind, vocabulary size, BOS/EOS ids and the SHA-256 of the ids of a fixed probe text.
//   corpus: size and SHA-256 of every byte, format, field and split; the path is not compared.
//   hooks (names and per-context shapes), dtype, context, bos.
// Not for: reading rows (reader.ts) or writing shards (shard.ts).
import type { FileStore } from '../io/file-store.js';
import { readJson } from '../io/file-store.js';
import type { Hasher } from '../io/platform.js';
import type { ByteSource } from '../io/byte-source.js';
import { tensor } from '../ops/creation.js';
import type { CausalLM, ModelDims } from '../models/model.js';
import type { Tokenizer } from '../tokenizer/tokenizer.js';
import type { CorpusFormat, CorpusStats, TxtSplit } from './corpus.js';

export const MANIFEST = 'manifest.json';
export const STORE_FORMAT = 'actlab-activation-store';
export const STORE_VERSION = 1;

export type StoreDType = 'f32' | 'f16' | 'bf16';

export interface ModelIdentity {
  source: string;
  arch: string;
  dims: ModelDims;
  /** SHA-256 of the config as canonical JSON (sorted keys), or null when the model has no config. */
  configSha256: string | null;
  /** Logits of `probe.ids` at the first positions and vocabulary entries (see modelIdentity). */
  probe: { ids: number[]; logits: number[] };
}

export interface TokenizerIdentity {
  kind: string;
  vocabSize: number;
  bosId: number | null;
  eosId: number | null;
  /** SHA-256 of JSON.stringify(encode(PROBE_TEXT)). */
  probeSha256: string;
}

export interface CorpusIdentity {
  /** As given (informational). */
  path: string;
  format: CorpusFormat;
  field: string | null;
  split: TxtSplit | null;
  size: number;
  /** SHA-256 of every byte of the corpus. */
  sha256: string;
}

export interface ShardEntry {
  file: string;
  firstContext: number;
  contexts: number;
  bytes: number;
  sha256: string;
}

export interface HookEntry {
  /** Per-context shape (without the batch axis), e.g. [context, d_model] or [heads, context, context]. */
  shape: number[];
  dtype: StoreDType;
}

export interface StoreManifest {
  format: typeof STORE_FORMAT;
  version: number;
  model: ModelIdentity;
  tokenizer: TokenizerIdentity;
  /** Hook name -> shape and dtype; `tokens` (i32 [context]) is stored in every shard too. */
  hooks: Record<string, HookEntry>;
  dtype: StoreDType;
  context: number;
  bos: boolean;
  corpus: CorpusIdentity & { stats: CorpusStats };
  contextsPerShard: number;
  /** The limit of the latest harvest (null: the whole corpus). */
  maxTokens: number | null;
  /** contexts * context. */
  tokenCount: number;
  contexts: number;
  shards: ShardEntry[];
  /** True once the corpus ended or maxTokens was reached. */
  complete: boolean;
}

const PROBE_TEXT = 'The quick brown fox jumps over the lazy dog.\n0123456789 Ünïcödé ß 日本語 🙂';

export function canonicalJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(',')}]`;
  if (v && typeof v === 'object') {
    return `{${Object.keys(v).sort().filter((k) => (v as Record<string, unknown>)[k] !== undefined)
      .map((k) => `${JSON.stringify(k)}:${canonicalJson((v as Record<string, unknown>)[k])}`).join(',')}}`;
  }
  return JSON.stringify(v) ?? 'null';
}

async function sha256Text(s: string, hasher: Hasher): Promise<string> {
  hasher.update(new TextEncoder().encode(s));
  return hasher.digest();
}

export async function modelIdentity(model: CausalLM, source: string, sha256: () => Hasher): Promise<ModelIdentity> {
  const config = (model as unknown as { config?: unknown }).config;
  const n = Math.min(8, model.dims.nCtx || 8);
  const V = model.dims.vocabSize;
  const ids = Array.from({ length: n }, (_, i) => (i * 7919 + 1) % V);
  const input = tensor(ids, [1, n], 'i32', { backend: model.backend });
  let all: ArrayLike<number>;
  try {
    const logits = model.forward(input);
    all = await logits.data();
    logits.dispose();
  } finally {
    input.dispose();
  }
  const probe: number[] = [];
  for (let p = 0; p < Math.min(n, 4); p++) for (let v = 0; v < Math.min(V, 8); v++) probe.push(Number(all[p * V + v]!.toPrecision(7)));
  return {
    source,
    arch: model.dims.arch,
    dims: { ...model.dims },
    configSha256: config && typeof config === 'object' ? await sha256Text(canonicalJson(config), sha256()) : null,
    probe: { ids, logits: probe },
  };
}

export async function tokenizerIdentity(t: Tokenizer, sha256: () => Hasher): Promise<TokenizerIdentity> {
  const ids = t.encode(PROBE_TEXT, { addSpecialTokens: false });
  return { kind: t.kind, vocabSize: t.vocabSize, bosId: t.bosId, eosId: t.eosId, probeSha256: await sha256Text(JSON.stringify(ids), sha256()) };
}

/** SHA-256 of every byte of `source`. */
export async function sha256Source(source: ByteSource, hasher: Hasher, pieceBytes = 1 << 22, onBytes?: (done: number) => void): Promise<string> {
  for (let o = 0; o < source.size; o += pieceBytes) {
    hasher.update(await source.read(o, Math.min(pieceBytes, source.size - o)));
    onBytes?.(Math.min(o + pieceBytes, source.size));
  }
  return hasher.digest();
}

/** What a resume compares, one line per difference (empty: the same harvest). */
export function manifestDifferences(have: StoreManifest, want: StoreManifest): string[] {
  const d: string[] = [];
  const js = (x: unknown) => canonicalJson(x);
  const m0 = have.model;
  const m1 = want.model;
  if (m0.arch !== m1.arch) d.push(`model architecture: store has ${m0.arch}, this model is ${m1.arch}`);
  if (js(m0.dims) !== js(m1.dims)) d.push(`model dims: store has ${js(m0.dims)}, this model has ${js(m1.dims)}`);
  if (m0.configSha256 !== m1.configSha256) d.push(`model config: store has sha256 ${m0.configSha256}, this model's is ${m1.configSha256}`);
  if (js(m0.probe.ids) !== js(m1.probe.ids) || !probeClose(m0.probe.logits, m1.probe.logits)) {
    d.push(`model weights: the probe logits differ (store ${m0.probe.logits.slice(0, 3).join(', ')}…, this model ${m1.probe.logits.slice(0, 3).join(', ')}…); another checkpoint?`);
  }
  if (js(have.tokenizer) !== js(want.tokenizer)) d.push(`tokenizer: store has ${js(have.tokenizer)}, this one is ${js(want.tokenizer)}`);
  const h0 = Object.keys(have.hooks);
  const h1 = Object.keys(want.hooks);
  const missing = h1.filter((h) => !have.hooks[h]);
  const extra = h0.filter((h) => !want.hooks[h]);
  if (missing.length || extra.length) {
    d.push(`hooks: store has ${h0.join(', ')}; asked for ${h1.join(', ')}${missing.length ? ` (not in store: ${missing.join(', ')})` : ''}${extra.length ? ` (not asked for: ${extra.join(', ')})` : ''}`);
  } else {
    for (const h of h0) if (js(have.hooks[h]) !== js(want.hooks[h])) d.push(`hook ${h}: store has ${js(have.hooks[h])}, now ${js(want.hooks[h])}`);
  }
  if (have.dtype !== want.dtype) d.push(`dtype: store has ${have.dtype}, asked for ${want.dtype}`);
  if (have.context !== want.context) d.push(`context: store has ${have.context}, asked for ${want.context}`);
  if (have.bos !== want.bos) d.push(`bos: store has ${have.bos}, asked for ${want.bos}`);
  const c0 = have.corpus;
  const c1 = want.corpus;
  if (c0.size !== c1.size || c0.sha256 !== c1.sha256) d.push(`corpus: store was made from ${c0.path} (${c0.size} bytes, sha256 ${c0.sha256.slice(0, 12)}…), this is ${c1.path} (${c1.size} bytes, sha256 ${c1.sha256.slice(0, 12)}…)`);
  if (c0.format !== c1.format || c0.field !== c1.field || c0.split !== c1.split) {
    d.push(`corpus reading: store used ${js({ format: c0.format, field: c0.field, split: c0.split })}, now ${js({ format: c1.format, field: c1.field, split: c1.split })}`);
  }
  return d;
}

function probeClose(a: number[], b: number[]): boolean {
  if (a.length !== b.length) return false;
  return a.every((x, i) => Math.abs(x - b[i]!) <= 1e-3 * Math.max(1, Math.abs(x)));
}

/** Thrown when a folder holds a store of another harvest (or is not a store at all); the folder is left as it was. */
export class StoreMismatchError extends Error {
  constructor(readonly dir: string, readonly differences: string[]) {
    super(`${dir}: refusing to write into an activation store of another harvest (nothing was changed):\n${differences.map((x) => `  - ${x}`).join('\n')}\nUse another --out folder, or delete this one to start over.`);
    this.name = 'StoreMismatchError';
  }
}

export async function readManifest(store: FileStore, dir: string): Promise<StoreManifest> {
  const path = store.join(dir, MANIFEST);
  const m = (await readJson(store, path)) as Partial<StoreManifest>;
  if (!m || typeof m !== 'object' || m.format !== STORE_FORMAT) throw new Error(`${path}: not an actlab activation store manifest`);
  if (m.version !== STORE_VERSION) throw new Error(`${path}: store version ${m.version}; this actlab reads version ${STORE_VERSION}`);
  if (!Array.isArray(m.shards) || typeof m.context !== 'number' || !m.hooks) throw new Error(`${path}: manifest lacks shards, context or hooks`);
  return m as StoreManifest;
}
