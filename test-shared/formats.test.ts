// Checkpoint formats on real files from ../shared: safetensors fixtures, the llama2.c stories260K
// checkpoint and tokenizer, HF tokenizers vs transformers' ids, and GGUF write -> read round trips.
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as al from '../src/index.js';
import { NodeFileSource } from '../src/io/node/file-source.js';
import { NodeFileStore } from '../src/io/node/file-store.js';
import { SafetensorsFile } from '../src/formats/safetensors.js';
import { Llama2cCheckpoint } from '../src/formats/llama2c.js';
import { parseLlama2cTokenizer, Llama2cTokenizer } from '../src/tokenizer/llama2c.js';
import { HfTokenizer } from '../src/tokenizer/hf.js';
import { GgufFile } from '../src/formats/gguf.js';
import { GgufWeights } from '../src/formats/gguf-weights.js';
import { convertToGguf } from '../src/formats/gguf-convert.js';
import { estimateLoadBytes } from '../src/formats/weight-source.js';
import { openCheckpoint } from '../src/models/checkpoint.js';

const SHARED = join(__dirname, '../../shared');
const HF = join(SHARED, 'fixtures/hf');
const STORIES = join(SHARED, 'data/stories260K');
let backend: al.Backend;
let tmp: string;

beforeAll(async () => {
  backend = await al.setDefaultBackend('js');
  tmp = await mkdtemp(join(tmpdir(), 'actlab-formats-'));
});
afterAll(async () => { await rm(tmp, { recursive: true, force: true }); });

const maxDiff = (a: ArrayLike<number>, b: ArrayLike<number>): number => {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
};

describe('safetensors fixtures', () => {
  it('llama: names, shapes, values at known offsets', async () => {
    const f = await SafetensorsFile.open(await NodeFileSource.open(join(HF, 'llama/model.safetensors')));
    expect(f.names()).toHaveLength(30);
    expect(f.metadata).toEqual({ format: 'pt' });
    expect(f.info('lm_head.weight')).toMatchObject({ dtype: 'f32', shape: [512, 64], bytes: 131072 });
    // model.embed_tokens.weight starts at data byte 131072 (header 3072 bytes + 8)
    expect(f.entry('model.embed_tokens.weight').begin).toBe(8 + 3072 + 131072);
    const t = await f.load('model.embed_tokens.weight', backend);
    expect(Array.from(t.dataSync().slice(0, 4))).toEqual([0.012648013420403004, 0.0999215766787529, -0.06512331962585449, 0.06420169025659561].map(Math.fround));
    t.dispose();
    await f.close();
  });

  it('gpt2: Conv1D weights keep their [in, out] shapes', async () => {
    const f = await SafetensorsFile.open(await NodeFileSource.open(join(HF, 'gpt2/model.safetensors')));
    expect(f.info('transformer.h.0.attn.c_attn.weight').shape).toEqual([64, 192]);
    const wte = f.names().find((n) => n.includes('wte'))!;
    const t = await f.load(wte, backend, { dtype: 'bf16' });
    expect(t.dtype).toBe('bf16');
    expect(t.dataSync()[0]).toBeCloseTo(-0.0869198590517044, 2);
    t.dispose();
    await f.close();
  });
});

describe('llama2.c stories260K', () => {
  it('config and weights', async () => {
    const ck = await Llama2cCheckpoint.open(await NodeFileSource.open(join(STORIES, 'stories260K.bin')));
    expect(ck.config()).toMatchObject({
      hidden_size: 64, num_hidden_layers: 5, num_attention_heads: 8, num_key_value_heads: 4, vocab_size: 512,
      intermediate_size: 172, max_position_embeddings: 512, tie_word_embeddings: true, rope_theta: 10000, rms_norm_eps: 1e-5,
    });
    expect(ck.has('lm_head.weight')).toBe(false);
    expect(ck.info('model.layers.4.self_attn.k_proj.weight').shape).toEqual([32, 64]);
    expect(ck.info('model.layers.0.mlp.down_proj.weight').shape).toEqual([64, 172]);
    // q rows: HF row (h, j, i) is llama2.c row (h, 2i + j).
    const raw = new Float32Array(readFileSync(join(STORIES, 'stories260K.bin')).buffer.slice(28));
    const q = (await ck.load('model.layers.0.self_attn.q_proj.weight', backend)).dataSync();
    const wq0 = 512 * 64 + 5 * 64; // after token embedding and the 5 rms_att vectors
    const hd = 8;
    for (const [h, j, i] of [[0, 0, 1], [3, 1, 2], [7, 1, 3]] as const) {
      const hfRow = h * hd + j * (hd / 2) + i;
      const metaRow = h * hd + 2 * i + j;
      expect(Array.from(q.slice(hfRow * 64, hfRow * 64 + 64))).toEqual(Array.from(raw.slice(wq0 + metaRow * 64, wq0 + metaRow * 64 + 64)));
    }
    const norm = (await ck.load('model.norm.weight', backend)).dataSync();
    expect(norm).toHaveLength(64);
    expect(ck.totalBytes()).toBe(1056540 - 28 - 4096 * 4);
    await ck.close();
  });

  it('tokenizer decodes ids and round-trips the greedy text', () => {
    const vocab = parseLlama2cTokenizer(readFileSync(join(STORIES, 'tok512.bin')), 512, 'tok512.bin');
    const tok = new Llama2cTokenizer(vocab);
    const line = readFileSync(join(STORIES, 'greedy_from_BOS_256.txt'), 'utf8').split('\n')[0]!;
    const ids = tok.encode(line);
    expect(ids[0]).toBe(1);
    expect(tok.decode(ids, { skipSpecialTokens: true })).toBe(line);
    expect(tok.decode(ids.slice(0, 4))).toMatch(/^\n<s>\nOnce/);
    expect(tok.decode([1, ...ids.slice(1, 5)], { skipSpecialTokens: true })).toBe(tok.decode(ids.slice(1, 5)));
    expect(tok.encode('héllo ☃', { addSpecialTokens: false }).every((i) => i > 2)).toBe(true);
    expect(tok.decode(tok.encode('héllo ☃'), { skipSpecialTokens: true })).toBe('héllo ☃');
  });
});

describe('HF tokenizers match transformers', () => {
  for (const arch of ['gpt2', 'llama']) {
    it(arch, () => {
      const dir = join(HF, arch);
      const ref = JSON.parse(readFileSync(join(dir, 'reference.json'), 'utf8')) as { prompts: string[]; input_ids: number[][] };
      const tok = new HfTokenizer({
        tokenizer: JSON.parse(readFileSync(join(dir, 'tokenizer.json'), 'utf8')),
        config: JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')),
        generationConfig: JSON.parse(readFileSync(join(dir, 'generation_config.json'), 'utf8')),
      });
      ref.prompts.forEach((p, k) => {
        expect(tok.encode(p, { addSpecialTokens: false })).toEqual(ref.input_ids[k]);
        expect(tok.decode(ref.input_ids[k]!)).toBe(p);
      });
      expect(tok.vocabSize).toBe(453); // the tokenizer's own size; the model's embedding has 512 rows
      expect(tok.eosId).toBe(arch === 'gpt2' ? 0 : 2);
    });
  }
});

describe('GGUF writer -> reader round trip of the llama fixture', () => {
  for (const type of ['F32', 'Q8_0'] as const) {
    it(type, async () => {
      const dir = join(HF, 'llama');
      const config = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')) as Record<string, unknown>;
      const st = await SafetensorsFile.open(await NodeFileSource.open(join(dir, 'model.safetensors')));
      const path = join(tmp, `llama-${type}.gguf`);
      await convertToGguf(new NodeFileStore(), path, st, config, backend, { type, metadata: { 'general.name': 'fixture' } });
      const g = new GgufWeights(await GgufFile.open(await NodeFileSource.open(path)));
      expect(g.config).toMatchObject({
        model_type: 'llama', hidden_size: 64, num_hidden_layers: 3, num_attention_heads: 4, num_key_value_heads: 2,
        intermediate_size: 176, max_position_embeddings: 128, rope_theta: 10000, vocab_size: 512, tie_word_embeddings: false,
      });
      expect((g.config.rms_norm_eps as number)).toBeCloseTo(1e-6, 12);
      expect(g.names().sort()).toEqual(st.names().sort());
      expect(g.file.info('blk.0.attn_q.weight').type).toBe(type);
      expect(g.file.info('blk.0.ffn_down.weight').type).toBe(type === 'F32' ? 'F32' : 'F16'); // rows of 176: not whole Q8_0 blocks (llama.cpp falls back to F16)
      let worst = 0;
      for (const n of st.names()) {
        const a = await st.load(n, backend);
        const b = await g.load(n, backend);
        expect(b.shape).toEqual(a.shape);
        const d = maxDiff(a.dataSync(), b.dataSync());
        if (type === 'F32') expect(d).toBe(0);
        worst = Math.max(worst, d);
        a.dispose(); b.dispose();
      }
      console.log(`GGUF ${type} round trip of the llama fixture: max |diff| = ${worst.toExponential(3)}`);
      if (type === 'Q8_0') expect(worst).toBeLessThan(0.01);
      await g.close();
      await st.close();
    });
  }
});

describe('openCheckpoint on real files', () => {
  it('an HF folder: config, generation config, tokenizer, weights', async () => {
    const ck = await openCheckpoint(join(HF, 'llama'));
    expect(ck.format).toBe('hf');
    expect(ck.config).toMatchObject({ model_type: 'llama', hidden_size: 64 });
    expect(ck.generationConfig).toMatchObject({ bos_token_id: 1, eos_token_id: 2 });
    const ref = JSON.parse(readFileSync(join(HF, 'llama/reference.json'), 'utf8')) as { prompts: string[]; input_ids: number[][] };
    expect(ck.tokenizer!.encode(ref.prompts[1]!, { addSpecialTokens: false })).toEqual(ref.input_ids[1]);
    expect(ck.weights.totalBytes()).toBe(estimateLoadBytes(ck.weights));
    await ck.weights.close();
  });

  it('stories260K with --tokenizer, and as a GGUF conversion (Q8_0) that loads back the same layout', async () => {
    const ck = await openCheckpoint(join(STORIES, 'stories260K.bin'), { tokenizerPath: join(STORIES, 'tok512.bin') });
    expect(ck.format).toBe('llama2c');
    expect(ck.tokenizer!.decode(ck.tokenizer!.encode('Once upon a time'), { skipSpecialTokens: true })).toBe('Once upon a time');
    const path = join(tmp, 'stories260K-q8.gguf');
    await convertToGguf(new NodeFileStore(), path, ck.weights, ck.config, backend, { type: 'Q8_0' });
    const g = await openCheckpoint(path);
    expect(g.format).toBe('gguf');
    expect(g.config).toMatchObject({ hidden_size: 64, num_hidden_layers: 5, num_attention_heads: 8, num_key_value_heads: 4, tie_word_embeddings: true });
    let worst = 0;
    for (const n of ck.weights.names()) {
      const a = await ck.weights.load(n, backend);
      const b = await g.weights.load(n, backend);
      worst = Math.max(worst, maxDiff(a.dataSync(), b.dataSync()));
      a.dispose(); b.dispose();
    }
    console.log(`stories260K -> GGUF Q8_0 -> HF layout: max |diff| = ${worst.toExponential(3)}`);
    expect(worst).toBeLessThan(0.05);
    await ck.weights.close();
    await g.weights.close();
  });
});
