// openCheckpoint: one entry point for every model source — an HF folder (config.json +
// model.safetensors or shards), a Hub id (downloaded or cached through src/hub), a llama2.c .bin
// (+ tokenizer .bin), or a GGUF file — giving an HF-style config, the weights under HF names, the
// tokenizer, and a memory check before anything large is read.
// Not for: building the architecture (src/models/<arch>.ts reads `config` and `weights`).
import type { ByteSource } from '../io/byte-source.js';
import { readJson, type FileStore } from '../io/file-store.js';
import { getPlatform, type Platform } from '../io/platform.js';
import { GgufFile } from '../formats/gguf.js';
import { GgufWeights } from '../formats/gguf-weights.js';
import { Llama2cCheckpoint, parseLlama2cHeader } from '../formats/llama2c.js';
import { SafetensorsFile } from '../formats/safetensors.js';
import { PackedWeights } from '../quant/packed-weights.js';
import { ShardedWeights } from '../formats/sharded.js';
import { estimateLoadBytes, type WeightSource } from '../formats/weight-source.js';
import { resolveModel, type ResolveOptions } from '../hub/resolve.js';
import type { DType } from '../tensor/dtype.js';
import { HfTokenizer } from '../tokenizer/hf.js';
import { ggufTokenizer } from '../tokenizer/gguf.js';
import { Llama2cTokenizer, parseLlama2cTokenizer } from '../tokenizer/llama2c.js';
import { loadTokenizer } from '../tokenizer/load.js';
import type { Tokenizer } from '../tokenizer/tokenizer.js';

export type CheckpointFormat = 'hf' | 'llama2c' | 'gguf';

export interface Checkpoint {
  format: CheckpointFormat;
  /** An HF config.json object (mapped from the file's own header for llama2c and GGUF). */
  config: Record<string, unknown>;
  generationConfig?: Record<string, unknown>;
  weights: WeightSource;
  tokenizer?: Tokenizer;
  /** Where it came from: the folder, file or cache path. */
  source: string;
}

export interface OpenCheckpointOptions extends ResolveOptions {
  /**
   * A tokenizer for any format, replacing the checkpoint's own: a tokenizer.json, a llama2.c .bin,
   * a GGUF file or a folder holding one (src/tokenizer/load.ts). Default: the checkpoint's own
   * (llama2.c: tokenizer.bin next to the model, when there).
   */
  tokenizerPath?: string;
  /** The dtype the weights will be loaded as, for the memory check (default: as stored). */
  dtype?: DType;
  /** Bytes the model may take (default: the platform's free memory); 0 or Infinity turns the check off. */
  memoryBudget?: number;
}

export class MemoryBudgetError extends Error {
  constructor(readonly need: number, readonly budget: number, what: string, budgetFrom: string) {
    super(`${what} needs ${gib(need)} to load, but only ${gib(budget)} is available (${budgetFrom}); `
      + 'load it in a smaller dtype, or pass a larger memoryBudget if you know better');
    this.name = 'MemoryBudgetError';
  }
}

const gib = (n: number): string => (n >= 2 ** 30 ? `${(n / 2 ** 30).toFixed(2)} GiB` : `${(n / 2 ** 20).toFixed(1)} MiB`);

/** Refuses (with both numbers) when the weights, loaded as `dtype`, will not fit in the budget. */
export async function checkMemory(weights: WeightSource, what: string, opts: { dtype?: DType; memoryBudget?: number } = {}): Promise<number> {
  const need = estimateLoadBytes(weights, opts.dtype);
  let budget = opts.memoryBudget;
  let from = 'the memoryBudget option';
  if (budget === undefined) {
    const mem = (await getPlatform()).memory();
    if (!mem) return need;
    budget = mem.free;
    from = `free memory of ${gib(mem.total)} in all`;
  }
  if (budget > 0 && need > budget) throw new MemoryBudgetError(need, budget, what, from);
  return need;
}

export async function openCheckpoint(pathOrId: string | ByteSource, opts: OpenCheckpointOptions = {}): Promise<Checkpoint> {
  const p = await getPlatform();
  const ck = typeof pathOrId === 'string' ? await openPath(p, pathOrId, opts) : await openSource(p, pathOrId, null, opts);
  try {
    if (opts.tokenizerPath && ck.format !== 'llama2c') {
      const vocab = ck.config.vocab_size;
      ck.tokenizer = await loadTokenizer(opts.tokenizerPath, { vocabSize: typeof vocab === 'number' ? vocab : undefined, config: ck.config, generationConfig: ck.generationConfig });
    }
    await checkMemory(ck.weights, ck.source, opts);
  } catch (e) {
    await ck.weights.close();
    throw e;
  }
  return ck;
}

async function openPath(p: Platform, path: string, opts: OpenCheckpointOptions): Promise<Checkpoint> {
  const st = await p.store.stat(path);
  if (st?.isDirectory) {
    if (!(await p.store.stat(p.store.join(path, 'config.json')))) {
      throw new Error(`${path}: a folder without config.json is not an HF model folder`);
    }
    return openHfFolder(p.store, path, opts);
  }
  if (st) {
    if (path.endsWith('.safetensors')) {
      throw new Error(`${path}: give the folder that holds this file and its config.json, not the .safetensors file`);
    }
    return openSource(p, await p.openFile(path), path, opts);
  }
  const r = await resolveModel(path, opts);
  return openHfFolder(p.store, r.dir, opts);
}

async function openSource(p: Platform, src: ByteSource, path: string | null, opts: OpenCheckpointOptions): Promise<Checkpoint> {
  const head = await src.read(0, Math.min(28, src.size));
  try {
    if (new TextDecoder().decode(head.subarray(0, 4)) === 'GGUF') {
      const weights = await GgufWeights.open(await GgufFile.open(src));
      weights.checkComplete();
      const m = weights.file.metadata;
      const gen: Record<string, unknown> = {};
      for (const k of ['bos_token_id', 'eos_token_id', 'pad_token_id']) if (k in weights.config) gen[k] = weights.config[k];
      return { format: 'gguf', config: weights.config, generationConfig: gen, weights, tokenizer: ggufTokenizer(m) ?? undefined, source: src.name };
    }
    if (parseLlama2cHeader(head)) {
      const weights = await Llama2cCheckpoint.open(src);
      const config = weights.config();
      return {
        format: 'llama2c', config, generationConfig: { bos_token_id: 1, eos_token_id: 2 }, weights, source: src.name,
        tokenizer: await llama2cTokenizer(p, path, weights.header.vocabSize, opts.tokenizerPath),
      };
    }
  } catch (e) {
    await src.close();
    throw e;
  }
  await src.close();
  throw new Error(`${src.name}: not a checkpoint actlab knows (not GGUF, not a llama2.c .bin; an HF model is a folder with config.json)`);
}

async function llama2cTokenizer(p: Platform, modelPath: string | null, vocab: number, given?: string): Promise<Tokenizer | undefined> {
  if (given) return loadTokenizer(given, { vocabSize: vocab });
  let path = given;
  if (!path && modelPath) {
    const sibling = modelPath.replace(/[^/\\]*$/, 'tokenizer.bin');
    if (sibling !== modelPath && (await p.store.stat(sibling))) path = sibling;
  }
  if (!path) return undefined;
  const src = await p.openFile(path);
  try {
    return new Llama2cTokenizer(parseLlama2cTokenizer(await src.read(0, src.size), vocab, path));
  } finally {
    await src.close();
  }
}

async function optionalJson(store: FileStore, path: string): Promise<Record<string, unknown> | undefined> {
  if (!(await store.stat(path))) return undefined;
  return await readJson(store, path) as Record<string, unknown>;
}

async function openHfFolder(store: FileStore, dir: string, _opts: OpenCheckpointOptions): Promise<Checkpoint> {
  const config = await readJson(store, store.join(dir, 'config.json')) as Record<string, unknown>;
  const generationConfig = await optionalJson(store, store.join(dir, 'generation_config.json'));
  const weights = await openSafetensorsWeights(store, dir);
  let tokenizer: Tokenizer | undefined;
  const tokJson = await optionalJson(store, store.join(dir, 'tokenizer.json'));
  if (!tokJson) {
    // A folder written by actlab's trainer from a llama2.c or GGUF model carries that tokenizer.
    for (const name of ['tokenizer.bin', 'tokenizer.gguf']) {
      if (!(await store.stat(store.join(dir, name)))) continue;
      const vocab = config.vocab_size;
      tokenizer = await loadTokenizer(store.join(dir, name), { vocabSize: typeof vocab === 'number' ? vocab : undefined, config, generationConfig });
      break;
    }
  }
  if (tokJson) {
    tokenizer = new HfTokenizer({
      tokenizer: tokJson,
      tokenizerConfig: await optionalJson(store, store.join(dir, 'tokenizer_config.json')),
      config, generationConfig,
    }, store.join(dir, 'tokenizer.json'));
  }
  return { format: 'hf', config, generationConfig, weights, tokenizer, source: dir };
}

async function openSafetensorsWeights(store: FileStore, dir: string): Promise<WeightSource> {
  const single = store.join(dir, 'model.safetensors');
  if (await store.stat(single)) return PackedWeights.wrap(await SafetensorsFile.open(await store.openRead(single)));
  const indexPath = store.join(dir, 'model.safetensors.index.json');
  if (!(await store.stat(indexPath))) throw new Error(`${dir}: no model.safetensors or model.safetensors.index.json`);
  const index = await readJson(store, indexPath) as { weight_map?: Record<string, string> };
  const files = [...new Set(Object.values(index.weight_map ?? {}))];
  if (!files.length) throw new Error(`${indexPath}: weight_map is empty or missing`);
  const parts: { name: string; weights: WeightSource }[] = [];
  try {
    for (const f of files) parts.push({ name: f, weights: await SafetensorsFile.open(await store.openRead(store.join(dir, f))) });
  } catch (e) {
    for (const p of parts) await p.weights.close();
    throw e;
  }
  const sharded = new ShardedWeights(parts, dir);
  for (const [name, file] of Object.entries(index.weight_map ?? {})) {
    if (!sharded.has(name)) throw new Error(`${indexPath}: '${name}' should be in ${file} but is not`);
  }
  return sharded;
}
