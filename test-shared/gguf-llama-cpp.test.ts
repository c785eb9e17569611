// GGUF files written by actlab (Q8_0, Q4_0, Q4_K, Q6_K and a mixed file) load and run in
// llama.cpp: its logits on actlab's file equal actlab's logits on the same file within the
// format's error (llama.cpp also rounds activations to 8 bits before each quantized product), and
// actlab's K-quant blocks match llama-quantize's for the same weights. Needs the peers
// (../shared/peers/llama.cpp), g++, and llama.cpp's headers at the peers' commit:
// LLAMA_CPP_SRC=<llama.cpp checkout> (its include/ and ggml/include/, as scripts/llamacpp/build.sh);
// skipped otherwise.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as al from '../src/index.js';
import { convertToGguf } from '../src/formats/gguf-convert.js';
import { GgufFile, ggufMetadataTyped } from '../src/formats/gguf.js';
import type { GgmlTypeName } from '../src/formats/gguf-quants.js';
import type { GgufWriteValue } from '../src/formats/gguf-write.js';
import type { WeightSource } from '../src/formats/weight-source.js';
import { NodeFileSource } from '../src/io/node/file-source.js';
import { NodeFileStore } from '../src/io/node/file-store.js';
import { randomModel } from '../src/models/random.js';
import { peerLibDir } from '../bench/llama-peer.js';

const PEERS = new URL('../../shared/peers/llama.cpp/', import.meta.url).pathname;
const STORIES = new URL('../../shared/data/stories260K-gguf/stories260K.gguf', import.meta.url).pathname;
const SRC = process.env.LLAMA_CPP_SRC ?? '';
const have = existsSync(join(PEERS, 'llama-quantize')) && existsSync(STORIES) && !!SRC && existsSync(join(SRC, 'include', 'llama.h'))
  && spawnSync('g++', ['--version']).status === 0;
if (!have) console.log('gguf-llama-cpp: skipped (needs ../shared/peers/llama.cpp, g++ and LLAMA_CPP_SRC with llama.cpp\'s headers)');

// A Llama-shaped model whose rows hold 256-value K-quant blocks, with stories260K's 512-token vocabulary.
const CONFIG = {
  model_type: 'llama', hidden_size: 256, intermediate_size: 512, num_hidden_layers: 2, num_attention_heads: 4,
  num_key_value_heads: 2, vocab_size: 512, max_position_embeddings: 256, rms_norm_eps: 1e-5, rope_theta: 10000, tie_word_embeddings: false,
};
const IDS = [1, 403, 407, 261, 378, 285, 300, 267, 412, 280, 278, 263, 429, 46];

let tmp: string;
let libs: string;
let llcpp: string;
let js: al.Backend;
let source: WeightSource;
let tokenizer: Record<string, GgufWriteValue>;

describe.skipIf(!have)('actlab GGUF files in llama.cpp', () => {
  beforeAll(async () => {
    tmp = mkdtempSync(join(tmpdir(), 'actlab-llcpp-'));
    libs = join(tmp, 'lib');
    peerLibDir(PEERS, libs);
    llcpp = join(tmp, 'llcpp_logits');
    execFileSync('g++', ['-O2', join(PEERS, 'llcpp_logits.cpp'), `-I${join(SRC, 'include')}`, `-I${join(SRC, 'ggml', 'include')}`,
      `-L${libs}`, `-Wl,-rpath-link,${libs}`, '-lllama', '-lggml', '-lggml-base', '-o', llcpp], { stdio: 'pipe' });
    js = await al.initBackend('js');
    const model = randomModel(CONFIG, js, { seed: 3, std: 0.05 });
    const params = model.parameters();
    source = {
      names: () => [...params.keys()], has: (n) => params.has(n),
      info: (n) => ({ dtype: 'f32', storedAs: 'F32', shape: [...params.get(n)!.shape], bytes: params.get(n)!.size * 4 }),
      load: async (n) => params.get(n)!.share(), totalBytes: () => 0, close: async () => {},
    };
    const src = await NodeFileSource.open(STORIES);
    tokenizer = await ggufMetadataTyped(src, 'tokenizer.') as Record<string, GgufWriteValue>;
    await src.close();
  }, 120_000);
  afterAll(() => { if (tmp) rmSync(tmp, { recursive: true, force: true }); });

  async function write(name: string, type: GgmlTypeName, typeFor?: (n: string) => GgmlTypeName | undefined): Promise<string> {
    const path = join(tmp, `${name}.gguf`);
    await convertToGguf(new NodeFileStore(), path, source, CONFIG, js, { type, typeFor, metadata: { 'general.name': name, ...tokenizer } });
    return path;
  }

  function llamaLogits(path: string): Float32Array {
    const prefix = join(tmp, 'out');
    execFileSync(llcpp, [path, prefix, IDS.join(',')], { env: { ...process.env, LD_LIBRARY_PATH: libs }, stdio: 'pipe' });
    const b = readFileSync(`${prefix}.logits.bin`);
    return new Float32Array(b.buffer, b.byteOffset, b.byteLength / 4).slice();
  }

  async function actlabLogits(path: string): Promise<Float32Array> {
    const m = await al.loadModel(path, { backend: 'js' });
    const x = al.tensor(IDS, [1, IDS.length], 'i32');
    const y = m.model.forward(x);
    const out = y.dataSync() as Float32Array;
    for (const t of [x, y]) t.dispose();
    m.model.dispose();
    return out;
  }

  const V = CONFIG.vocab_size;
  function compare(a: Float32Array, l: Float32Array): { rel: number; top1: number } {
    let err = 0, scale = 0, agree = 0;
    for (let t = 0; t < IDS.length; t++) {
      let ia = 0, il = 0;
      for (let v = 0; v < V; v++) {
        const i = t * V + v;
        err = Math.max(err, Math.abs(a[i]! - l[i]!));
        scale = Math.max(scale, Math.abs(l[i]!));
        if (a[i]! > a[t * V + ia]!) ia = v;
        if (l[i]! > l[t * V + il]!) il = v;
      }
      if (ia === il) agree++;
    }
    return { rel: err / scale, top1: agree / IDS.length };
  }

  // [file, type, per-tensor overrides, budget on max |Δlogit| / max |logit|]
  const CASES: [string, GgmlTypeName, ((n: string) => GgmlTypeName | undefined) | undefined, number][] = [
    ['f32', 'F32', undefined, 1e-4],
    ['q8_0', 'Q8_0', undefined, 0.03],
    ['q4_0', 'Q4_0', undefined, 0.05],
    ['q4_k', 'Q4_K', undefined, 0.05],
    ['q6_k', 'Q6_K', undefined, 0.03],
    ['mixed', 'Q4_K', (n) => (/ffn_down|output\.weight/.test(n) ? 'Q6_K' : /attn_v/.test(n) ? 'Q8_0' : /attn_q/.test(n) ? 'Q4_0' : undefined), 0.05],
  ];
  it.each(CASES)('%s: llama.cpp loads and runs it; its logits equal actlab\'s within the format\'s error', async (name, type, typeFor, budget) => {
    const path = await write(name, type, typeFor);
    const g = await GgufFile.open(await NodeFileSource.open(path));
    const types = [...new Set(g.tensors.map((t) => t.type))].sort();
    await g.close();
    const { rel, top1 } = compare(await actlabLogits(path), llamaLogits(path));
    console.log(`${name} (${types.join(', ')}): llama.cpp vs actlab on actlab's file: max |Δlogit| / max |logit| ${rel.toExponential(2)} (budget ${budget}), top-1 agreement ${(top1 * 100).toFixed(0)}%`);
    expect(rel).toBeLessThan(budget);
    expect(top1).toBeGreaterThanOrEqual(0.85);
  }, 120_000);

  it.each(['Q4_K', 'Q6_K', 'Q8_0', 'Q4_0'] as const)('%s blocks equal llama-quantize\'s for the same weights', async (type) => {
    const f32 = await write(`ref-f32-${type}`, 'F32');
    const theirs = join(tmp, `llama-${type}.gguf`);
    execFileSync(join(PEERS, 'llama-quantize'), ['--pure', f32, theirs, type, '2'], { env: { ...process.env, LD_LIBRARY_PATH: libs }, stdio: 'pipe' });
    const ours = await write(`ours-${type}`, type);
    const a = await GgufFile.open(await NodeFileSource.open(ours));
    const b = await GgufFile.open(await NodeFileSource.open(theirs));
    let same = 0, total = 0;
    const blockBytes = { Q4_K: 144, Q6_K: 210, Q8_0: 34, Q4_0: 18 }[type];
    for (const name of ['blk.0.ffn_up.weight', 'blk.1.attn_q.weight', 'blk.1.ffn_down.weight']) {
      expect(a.info(name).type).toBe(type);
      expect(b.info(name).type).toBe(type);
      const [x, y] = [await a.readRaw(name), await b.readRaw(name)];
      for (let o = 0; o < x.length; o += blockBytes) {
        total++;
        if (x.subarray(o, o + blockBytes).every((v, i) => v === y[o + i])) same++;
      }
    }
    await a.close();
    await b.close();
    console.log(`${type}: ${same}/${total} blocks byte-identical to llama-quantize's`);
    expect(same / total).toBeGreaterThan(0.95);
  }, 120_000);
});
