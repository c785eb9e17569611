// harvest: streams a corpus through a model and stores the activations at chosen hook points as a
// folder of safetensors shards plus manifest.json (see manifest.ts for what it records).
//
// Crash safety: a shard is written under a temporary name and renamed into place; only then is
// the manifest rewritten (atomically too) to list it. So at any kill point the folder holds a
// valid manifest listing complete shards, plus possibly temporary files and at most one shard
// that the manifest does not list. A resume deletes those, recomputes the same context stream
// (corpus.ts is deterministic), skips the contexts already stored and continues; batches never
// straddle a shard, so a resumed store is byte-identical to an uninterrupted one.
//
// Memory: one batch of activations lives on the backend at a time (cast to the store dtype and
// read out right away); the current shard's bytes, in the store dtype, are held on the host until
// it is written (contextsPerShard defaults to about 32 MiB of activations).
// Not for: reading a store back (reader.ts).
import type { ByteSource } from '../io/byte-source.js';
import { writeBytesAtomic, type FileStore } from '../io/file-store.js';
import { getPlatform, type Hasher } from '../io/platform.js';
import { runWithCache } from '../hooks/run.js';
import { tensor } from '../ops/creation.js';
import { byteSize } from '../tensor/dtype.js';
import { fmtShape, numel } from '../tensor/shape.js';
import type { CausalLM } from '../models/model.js';
import type { Tokenizer } from '../tokenizer/tokenizer.js';
import { corpusFormatOf, emptyStats, readContexts, type CorpusOptions, type CorpusStats } from './corpus.js';
import {
  MANIFEST, STORE_FORMAT, STORE_VERSION, StoreMismatchError, manifestDifferences, modelIdentity, readManifest,
  sha256Source, tokenizerIdentity, type HookEntry, type StoreDType, type StoreManifest,
} from './manifest.js';
import { STORE_FILE, sha256File, shardFileName, writeShard } from './shard.js';

export interface HarvestProgress {
  phase: 'hash' | 'skip' | 'harvest' | 'done';
  /** Contexts stored (skipped ones included when resuming). */
  contexts: number;
  tokens: number;
  /** maxTokens' contexts, or an estimate from the share of the corpus read (null before any). */
  totalContexts: number | null;
  /** Where this run started (contexts already in the store). */
  resumedFrom: number;
  bytesRead: number;
  bytesTotal: number;
}

export interface HarvestOptions {
  model: CausalLM;
  tokenizer: Tokenizer;
  /** A path (opened with the platform's openFile) or a ByteSource. */
  corpus: string | ByteSource;
  corpusOptions?: CorpusOptions;
  /** Hook point names (expand globs with matchHookPatterns first). */
  hooks: string[];
  outDir: string;
  /** Tokens per context, BOS included. */
  context: number;
  /** Default 'f32'. */
  dtype?: StoreDType;
  /** Start every context with BOS (default: when the tokenizer has one). */
  bos?: boolean;
  /** Stop after floor(maxTokens / context) contexts (default: the whole corpus). */
  maxTokens?: number;
  /** Used for a new store only; a resume keeps the store's. */
  contextsPerShard?: number;
  /** Contexts per forward pass (default 8). */
  batchSize?: number;
  /** Where the model came from, for the manifest (default: its architecture). */
  source?: string;
  /** Default: the platform's store (the disk in Node). */
  store?: FileStore;
  /** On resume, check every listed shard's SHA-256, not only its size. */
  verify?: boolean;
  onProgress?: (p: HarvestProgress) => void;
  /** Things done to the folder that the user should hear about (removed strays, repaired shards). */
  onWarning?: (message: string) => void;
}

export interface HarvestResult {
  manifest: StoreManifest;
  /** Contexts already stored when this run started. */
  resumedFrom: number;
  /** Contexts this run added. */
  added: number;
  stats: CorpusStats;
}

const STORE_DTYPES: readonly StoreDType[] = ['f32', 'f16', 'bf16'];
const POSITION_DIMS = new Set(['pos', 'query_pos', 'key_pos']);

/** Per-context shapes of `hooks` (positions = context); throws for unknown hooks or ones without a batch axis. */
export function hookEntries(model: CausalLM, hooks: string[], context: number, dtype: StoreDType): Record<string, HookEntry> {
  const shapes = new Map(model.hookPointShapes().map((h) => [h.name, h.shape]));
  const out: Record<string, HookEntry> = {};
  for (const h of hooks) {
    if (h === 'tokens') throw new Error(`'tokens' is stored in every shard; it is not a hook name`);
    const s = shapes.get(h);
    if (!s) throw new Error(`no hook point named '${h}' in this ${model.dims.arch} model (see model.hookPoints())`);
    if (s[0] !== 'batch') throw new Error(`hook '${h}' has shape [${s.join(', ')}], without a leading batch axis; it cannot be stored per context`);
    const rest = s.slice(1).map((d) => (typeof d === 'number' ? d : POSITION_DIMS.has(d) ? context : d));
    const bad = rest.filter((d) => typeof d !== 'number');
    if (bad.length) throw new Error(`hook '${h}' has shape [${s.join(', ')}]; its ${bad.join(', ')} size depends on the input, so it cannot be stored`);
    out[h] = { shape: rest as number[], dtype };
  }
  return out;
}

/** The block to stop before when every hook fires in the embedding or in blocks (undefined: run the whole model). */
export function stopLayerFor(hooks: string[], nLayers: number): number | undefined {
  let stop = 0;
  for (const h of hooks) {
    const m = /^blocks\.(\d+)\./.exec(h);
    if (m) stop = Math.max(stop, Number(m[1]) + 1);
    else if (h !== 'hook_embed' && h !== 'hook_pos_embed') return undefined;
  }
  return Math.min(stop, nLayers);
}

export async function harvest(o: HarvestOptions): Promise<HarvestResult> {
  const platform = await getPlatform();
  const store = o.store ?? platform.store;
  const sha256 = () => platform.sha256();
  const warn = o.onWarning ?? (() => {});
  const { model, tokenizer, context } = o;
  const dtype = o.dtype ?? 'f32';
  if (!STORE_DTYPES.includes(dtype)) throw new Error(`dtype must be one of ${STORE_DTYPES.join(', ')}, got '${dtype}'`);
  const bos = o.bos ?? tokenizer.bosId !== null;
  if (bos && tokenizer.bosId === null) throw new Error('bos: the tokenizer has no BOS token');
  if (!Number.isInteger(context) || context < (bos ? 2 : 1)) throw new RangeError(`context must be an integer >= ${bos ? 2 : 1}, got ${context}`);
  if (context > model.dims.nCtx && model.dims.nCtx > 0) throw new RangeError(`context ${context} is longer than the model's ${model.dims.nCtx} positions`);
  if (o.hooks.length === 0) throw new Error('no hooks to store');
  const batchSize = o.batchSize ?? 8;
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new RangeError(`batchSize must be a positive integer, got ${batchSize}`);
  let maxContexts: number | null = null;
  if (o.maxTokens !== undefined) {
    maxContexts = Math.floor(o.maxTokens / context);
    if (maxContexts < 1) throw new RangeError(`maxTokens ${o.maxTokens} is less than one context of ${context} tokens`);
  }
  const hooks = hookEntries(model, o.hooks, context, dtype);
  const hookNames = Object.keys(hooks);

  const opened = typeof o.corpus === 'string' ? await platform.openFile(o.corpus) : null;
  const source = opened ?? (o.corpus as ByteSource);
  try {
    const corpusOptions = o.corpusOptions ?? {};
    const format = corpusFormatOf(source.name, corpusOptions.format);
    const progress = (phase: HarvestProgress['phase'], contexts: number, resumedFrom: number, bytesRead: number) => {
      const est = maxContexts ?? (bytesRead > 0 && contexts > 0 ? Math.max(contexts, Math.round((contexts * source.size) / bytesRead)) : null);
      o.onProgress?.({ phase, contexts, tokens: contexts * context, totalContexts: est, resumedFrom, bytesRead, bytesTotal: source.size });
    };
    progress('hash', 0, 0, 0);
    const perContext = context * 4 + hookNames.reduce((s, h) => s + byteSize(dtype, numel(hooks[h]!.shape)), 0);
    const want: StoreManifest = {
      format: STORE_FORMAT,
      version: STORE_VERSION,
      model: await modelIdentity(model, o.source ?? model.dims.arch, sha256),
      tokenizer: await tokenizerIdentity(tokenizer, sha256),
      hooks,
      dtype,
      context,
      bos,
      corpus: {
        path: source.name, format, field: format === 'jsonl' ? corpusOptions.field ?? 'text' : null,
        split: format === 'txt' ? corpusOptions.split ?? 'paragraph' : null, size: source.size,
        sha256: await sha256Source(source, sha256(), 1 << 22, (b) => progress('hash', 0, 0, b)), stats: emptyStats(),
      },
      contextsPerShard: o.contextsPerShard ?? Math.max(1, Math.min(1 << 16, Math.floor((32 << 20) / perContext))),
      maxTokens: o.maxTokens ?? null,
      tokenCount: 0,
      contexts: 0,
      shards: [],
      complete: false,
    };
    if (!Number.isInteger(want.contextsPerShard) || want.contextsPerShard < 1) throw new RangeError(`contextsPerShard must be a positive integer, got ${want.contextsPerShard}`);

    const dir = o.outDir;
    const writeManifest = (m: StoreManifest) => writeBytesAtomic(store, store.join(dir, MANIFEST), new TextEncoder().encode(`${JSON.stringify(m, null, 1)}\n`));
    let m: StoreManifest;
    const existing = await store.stat(store.join(dir, MANIFEST));
    if (existing) {
      m = await readManifest(store, dir);
      const diff = manifestDifferences(m, want);
      if (diff.length) throw new StoreMismatchError(dir, diff);
      if (o.contextsPerShard !== undefined && o.contextsPerShard !== m.contextsPerShard) {
        warn(`keeping the store's ${m.contextsPerShard} contexts per shard (asked for ${o.contextsPerShard})`);
      }
      const valid = await validShards(store, dir, m, !!o.verify, sha256, warn);
      if (valid.length < m.shards.length) {
        m.shards = valid;
        m.contexts = valid.reduce((s, x) => s + x.contexts, 0);
        m.tokenCount = m.contexts * context;
        m.corpus.stats = emptyStats(); // recomputed from the corpus as the harvest goes on
        m.complete = false;
      }
    } else {
      // The manifest is written before any shard, so a folder without one holds at most its temporary files.
      const names = await store.list(dir);
      const foreign = names.filter((n) => !/^manifest\.json\.tmp-/.test(n));
      if (foreign.length) {
        throw new StoreMismatchError(dir, [`the folder is not empty and has no ${MANIFEST} (it holds ${foreign.slice(0, 5).join(', ')}${foreign.length > 5 ? ', …' : ''})`]);
      }
      m = want;
    }
    // Strays: temporary files, and shards the manifest does not list (written, then killed before the manifest).
    const listed = new Set(m.shards.map((s) => s.file));
    for (const n of await store.list(dir)) {
      if (n === MANIFEST || listed.has(n) || !STORE_FILE.test(n)) continue;
      await store.remove(store.join(dir, n));
      warn(`removed ${n} (left by an interrupted harvest)`);
    }
    m.maxTokens = o.maxTokens ?? null;
    const resumedFrom = m.contexts;
    if (m.corpus.stats.done || (maxContexts !== null && m.contexts >= maxContexts)) {
      if (!m.complete || !existing) { m.complete = true; await writeManifest(m); }
      progress('done', m.contexts, resumedFrom, source.size);
      return { manifest: m, resumedFrom, added: 0, stats: m.corpus.stats };
    }
    m.complete = false;
    await writeManifest(m); // a new store is marked as one before any shard exists

    const stats = emptyStats();
    const it = readContexts(source, tokenizer, { ...corpusOptions, format, context, bos }, stats)[Symbol.asyncIterator]();
    for (let i = 0; i < m.contexts; i++) {
      if ((await it.next()).done) throw new Error(`${source.name}: the corpus gives only ${i} contexts, but the store holds ${m.contexts}; was the tokenizer changed?`);
      if (i % 256 === 0) progress('skip', i, resumedFrom, stats.bytesRead);
    }
    const stop = stopLayerFor(hookNames, model.dims.nLayers);
    let ended = false;
    while (!ended && !(maxContexts !== null && m.contexts >= maxContexts)) {
      const target = Math.min(m.contextsPerShard, maxContexts === null ? Infinity : maxContexts - m.contexts);
      const tokenChunks: Uint8Array[] = [];
      const actChunks = new Map<string, Uint8Array[]>(hookNames.map((h) => [h, []]));
      let n = 0;
      while (n < target && !ended) {
        const batch: Int32Array[] = [];
        while (batch.length < Math.min(batchSize, target - n)) {
          const r = await it.next();
          if (r.done) { ended = true; break; }
          batch.push(r.value);
        }
        if (batch.length === 0) break;
        await runBatch(model, batch, context, hooks, dtype, stop, tokenChunks, actChunks);
        n += batch.length;
        progress('harvest', m.contexts + n, resumedFrom, stats.bytesRead);
      }
      if (n > 0) {
        const file = shardFileName(m.shards.length);
        const { bytes, sha256: sum } = await writeShard(store, store.join(dir, file), [
          { name: 'tokens', dtype: 'i32', shape: [n, context], chunks: tokenChunks },
          ...hookNames.map((h) => ({ name: h, dtype, shape: [n, ...hooks[h]!.shape], chunks: actChunks.get(h)! })),
        ], sha256(), { format: STORE_FORMAT, first_context: String(m.contexts) });
        m.shards.push({ file, firstContext: m.contexts, contexts: n, bytes, sha256: sum });
        m.contexts += n;
      }
      m.tokenCount = m.contexts * context;
      m.corpus.stats = structuredClone(stats);
      m.complete = ended || (maxContexts !== null && m.contexts >= maxContexts);
      await writeManifest(m);
    }
    progress('done', m.contexts, resumedFrom, stats.bytesRead);
    return { manifest: m, resumedFrom, added: m.contexts - resumedFrom, stats };
  } finally {
    await opened?.close();
  }
}

/** One forward pass over `batch`; appends the token ids and each hook's activations (as store-dtype bytes). */
async function runBatch(
  model: CausalLM, batch: Int32Array[], context: number, hooks: Record<string, HookEntry>, dtype: StoreDType,
  stopAtLayer: number | undefined, tokenChunks: Uint8Array[], actChunks: Map<string, Uint8Array[]>,
): Promise<void> {
  const b = batch.length;
  const flat = new Int32Array(b * context);
  batch.forEach((c, i) => flat.set(c, i * context));
  tokenChunks.push(new Uint8Array(flat.buffer));
  const ids = tensor(flat, [b, context], 'i32', { backend: model.backend });
  let run: ReturnType<typeof runWithCache>;
  try {
    run = runWithCache(model, ids, { names: Object.keys(hooks), stopAtLayer });
  } finally {
    ids.dispose();
  }
  run.logits.dispose();
  try {
    for (const [h, e] of Object.entries(hooks)) {
      const t = run.cache.get(h);
      const expect = [b, ...e.shape];
      if (fmtShape(t.shape) !== fmtShape(expect)) throw new Error(`hook '${h}' gave ${fmtShape(t.shape)}; hookPointShapes() promised ${fmtShape(expect)}`);
      const c = t.dtype === dtype ? t : t.cast(dtype);
      try {
        actChunks.get(h)!.push(await c.bytes());
      } finally {
        if (c !== t) c.dispose();
      }
    }
  } finally {
    run.cache.dispose();
  }
}

/**
 * The listed shards up to the first one that is missing or has the wrong size (or SHA-256, with
 * `verify`); the harvest recomputes from there. Only damage from outside can cause this.
 */
async function validShards(
  store: FileStore, dir: string, m: StoreManifest, verify: boolean, sha256: () => Hasher, warn: (s: string) => void,
): Promise<StoreManifest['shards']> {
  let expectFirst = 0;
  for (let i = 0; i < m.shards.length; i++) {
    const s = m.shards[i]!;
    const path = store.join(dir, s.file);
    const st = await store.stat(path);
    let problem: string | null = null;
    if (s.firstContext !== expectFirst) problem = `starts at context ${s.firstContext}, expected ${expectFirst}`;
    else if (!st) problem = 'is missing';
    else if (st.size !== s.bytes) problem = `has ${st.size} bytes, the manifest says ${s.bytes}`;
    else if (verify && (await sha256File(store, path, sha256())) !== s.sha256) problem = 'has the wrong SHA-256';
    if (problem) {
      warn(`${s.file} ${problem}; recomputing from context ${s.firstContext} (${m.shards.length - i} shard(s))`);
      return m.shards.slice(0, i);
    }
    expectFirst += s.contexts;
  }
  return m.shards;
}
