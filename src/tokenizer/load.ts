// A tokenizer from any file actlab knows, whatever the model's own format: a folder (tokenizer.json,
// else tokenizer.bin, else tokenizer.gguf), a tokenizer.json, a GGUF file (its tokenizer.ggml.*
// metadata) or a llama2.c tokenizer .bin; and the files that carry a tokenizer into a checkpoint
// folder (`tokenizerFiles`), so that the folder loads with its tokenizer again.
// Not for: tokenizer algorithms (hf.ts, llama2c.ts, gguf.ts).
import type { MetadataValue } from '@huggingface/gguf';
import { GgufFile } from '../formats/gguf.js';
import { f32s, GGUF_VALUE, i32s, u32, writeGgufBytes, type GgufWriteValue } from '../formats/gguf-write.js';
import { readJson, type FileStore } from '../io/file-store.js';
import { getPlatform } from '../io/platform.js';
import { ggufTokenizer } from './gguf.js';
import { HfTokenizer } from './hf.js';
import { Llama2cTokenizer, parseLlama2cTokenizer } from './llama2c.js';
import type { Tokenizer } from './tokenizer.js';

export interface LoadTokenizerOptions {
  /** The model's vocabulary size: a llama2.c tokenizer file does not record its own. */
  vocabSize?: number;
  /** The model's config.json and generation_config.json: fallbacks for special-token ids of a tokenizer.json. */
  config?: Record<string, unknown>;
  generationConfig?: Record<string, unknown>;
}

/** The files of an HF tokenizer beside tokenizer.json. */
const HF_TOKENIZER_FILES = ['tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json'];

async function optionalJson(store: FileStore, path: string): Promise<Record<string, unknown> | undefined> {
  return (await store.stat(path)) ? await readJson(store, path) as Record<string, unknown> : undefined;
}

const isGguf = (b: Uint8Array) => b.length >= 4 && b[0] === 0x47 && b[1] === 0x47 && b[2] === 0x55 && b[3] === 0x46;

/** The tokenizer in `path` (see the header for what is accepted); errors name the path. */
export async function loadTokenizer(path: string, o: LoadTokenizerOptions = {}): Promise<Tokenizer> {
  const p = await getPlatform();
  const store = p.store;
  const st = await store.stat(path);
  if (!st) throw new Error(`--tokenizer ${path}: no such file or folder`);
  if (st.isDirectory) {
    for (const name of ['tokenizer.json', 'tokenizer.bin', 'tokenizer.gguf']) {
      const f = store.join(path, name);
      if (await store.stat(f)) return loadTokenizer(f, o);
    }
    throw new Error(`${path}: a folder with no tokenizer.json, tokenizer.bin or tokenizer.gguf`);
  }
  const src = await p.openFile(path);
  try {
    const head = await src.read(0, Math.min(4, src.size));
    if (isGguf(head)) {
      const g = await GgufFile.open(src);
      const tok = ggufTokenizer(g.metadata);
      if (!tok) throw new Error(`${path}: this GGUF file has no tokenizer actlab reads (tokenizer.ggml.model '${String(g.metadata['tokenizer.ggml.model'] ?? 'none')}'; supported: llama, gpt2)`);
      return tok;
    }
    const bytes = await src.read(0, src.size);
    if (path.endsWith('.json')) {
      let json: unknown;
      try {
        json = JSON.parse(new TextDecoder().decode(bytes));
      } catch (e) {
        throw new Error(`${path}: not valid JSON (${(e as Error).message})`);
      }
      const dir = path.replace(/[^/\\]*$/, '');
      return new HfTokenizer({
        tokenizer: json,
        tokenizerConfig: dir ? await optionalJson(store, store.join(dir, 'tokenizer_config.json')) : undefined,
        config: o.config, generationConfig: o.generationConfig,
      }, path);
    }
    if (o.vocabSize === undefined) throw new Error(`${path}: a llama2.c tokenizer file needs the model's vocabulary size`);
    return new Llama2cTokenizer(parseLlama2cTokenizer(bytes, o.vocabSize, path));
  } finally {
    await src.close();
  }
}

/** A file to place in a checkpoint folder. */
export interface TokenizerFile {
  name: string;
  bytes: Uint8Array;
}

/**
 * The files that carry the tokenizer found at `path` (as `loadTokenizer` reads it) into another
 * folder: an HF tokenizer's JSON files as they are, a llama2.c tokenizer as tokenizer.bin, and a
 * GGUF file's tokenizer as tokenizer.gguf (its tokenizer metadata alone, no tensors).
 */
export async function tokenizerFiles(path: string): Promise<TokenizerFile[]> {
  const p = await getPlatform();
  const store = p.store;
  const st = await store.stat(path);
  if (!st) throw new Error(`${path}: no such file or folder`);
  if (st.isDirectory) {
    const out: TokenizerFile[] = [];
    if (await store.stat(store.join(path, 'tokenizer.json'))) {
      for (const name of HF_TOKENIZER_FILES) {
        const f = store.join(path, name);
        if (await store.stat(f)) out.push({ name, bytes: await store.readBytes(f) });
      }
      return out;
    }
    for (const name of ['tokenizer.bin', 'tokenizer.gguf']) {
      const f = store.join(path, name);
      if (await store.stat(f)) return [{ name, bytes: await store.readBytes(f) }];
    }
    return [];
  }
  const src = await p.openFile(path);
  try {
    const head = await src.read(0, Math.min(4, src.size));
    if (isGguf(head)) {
      const g = await GgufFile.open(src);
      return [{ name: 'tokenizer.gguf', bytes: writeGgufBytes(ggufTokenizerMetadata(g.metadata), []) }];
    }
  } finally {
    await src.close();
  }
  if (path.endsWith('.json')) {
    const out: TokenizerFile[] = [{ name: 'tokenizer.json', bytes: await store.readBytes(path) }];
    const dir = path.replace(/[^/\\]*$/, '');
    for (const name of HF_TOKENIZER_FILES.slice(1)) {
      const f = dir ? store.join(dir, name) : name;
      if (await store.stat(f)) out.push({ name, bytes: await store.readBytes(f) });
    }
    return out;
  }
  return [{ name: 'tokenizer.bin', bytes: await store.readBytes(path) }];
}

/** The tokenizer.* keys of GGUF metadata, typed as llama.cpp writes them. */
function ggufTokenizerMetadata(m: Record<string, MetadataValue>): Record<string, GgufWriteValue> {
  const out: Record<string, GgufWriteValue> = { 'general.architecture': String(m['general.architecture'] ?? 'llama') };
  for (const [k, v] of Object.entries(m)) {
    if (!k.startsWith('tokenizer.')) continue;
    if (k === 'tokenizer.ggml.scores') out[k] = f32s((v as number[]).map(Number));
    else if (k === 'tokenizer.ggml.token_type') out[k] = i32s((v as number[]).map(Number));
    else if (typeof v === 'number' || typeof v === 'bigint') out[k] = k.endsWith('_id') ? u32(Number(v)) : { type: GGUF_VALUE.INT32, value: Number(v) };
    else if (typeof v === 'string' || typeof v === 'boolean') out[k] = v;
    else if (Array.isArray(v) && v.every((x) => typeof x === 'string')) out[k] = v as string[];
  }
  return out;
}
