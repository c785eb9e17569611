// The activation store on a real model and a real corpus: a few hundred tokens of tinyshakespeare
// through llama2.c's stories260K, harvested to disk as f16, resumed to a larger limit, and read
// back: values equal a direct runWithCache within f16 rounding; the tokens decode to the corpus text.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import * as al from '../src/index.js';
import { Llama2cCheckpoint } from '../src/formats/llama2c.js';
import { runWithCache } from '../src/hooks/run.js';
import { NodeFileSource } from '../src/io/node/file-source.js';
import { buildModel } from '../src/models/registry.js';
import { Llama2cTokenizer, parseLlama2cTokenizer } from '../src/tokenizer/llama2c.js';
import { describeStats } from '../src/store/corpus.js';
import { matchHookPatterns } from '../src/hooks/patterns.js';
import { ActivationStore } from '../src/store/reader.js';
import { harvest } from '../src/store/writer.js';
import { f16BitsToF32, f32ToF16Bits } from '../src/tensor/dtype.js';

const DIR = new URL('../../shared/data/stories260K/', import.meta.url).pathname;
const CORPUS = new URL('../../shared/data/tinyshakespeare/input.txt', import.meta.url).pathname;

describe('activation store on stories260K', () => {
  it('harvests tinyshakespeare, resumes, and reads back what a direct run gives', async () => {
    const backend = await al.initBackend('js');
    const ckpt = await Llama2cCheckpoint.open(await NodeFileSource.open(`${DIR}stories260K.bin`));
    const model = await buildModel(ckpt.config(), ckpt, backend);
    await ckpt.close();
    const tokenizer = new Llama2cTokenizer(parseLlama2cTokenizer(readFileSync(`${DIR}tok512.bin`), 512));
    const hooks = matchHookPatterns('blocks.*.hook_resid_post,blocks.0.attn.hook_pattern', model.hookPoints().map((h) => h.name));
    expect(hooks).toEqual(['blocks.0.attn.hook_pattern', ...Array.from({ length: model.dims.nLayers }, (_, i) => `blocks.${i}.hook_resid_post`)]);
    const out = mkdtempSync(join(tmpdir(), 'actlab-store-shared-'));
    try {
      const o = { model, tokenizer, corpus: CORPUS, hooks, outDir: out, context: 64, dtype: 'f16' as const, contextsPerShard: 2, batchSize: 2, source: 'stories260K' };
      const first = await harvest({ ...o, maxTokens: 192 });
      expect(first.manifest.contexts).toBe(3);
      const second = await harvest({ ...o, maxTokens: 512 });
      expect(second.resumedFrom).toBe(3);
      const s = await ActivationStore.open(out);
      expect(s.tokenCount).toBe(512);
      expect(s.shards.map((x) => x.contexts)).toEqual([2, 1, 2, 2, 1]);
      expect(await s.verify()).toEqual([]);
      console.log(`${s.tokenCount} tokens, ${s.shards.length} shards; corpus: ${describeStats(s.manifest.corpus.stats).join('; ') || 'clean'}`);

      const ctxs: number[][] = [];
      for await (const t of s.batches({ hook: 'tokens', batchSize: 3, flatten: 'contexts' })) {
        const d = t.dataSync();
        for (let i = 0; i < t.shape[0]!; i++) ctxs.push([...d.slice(i * 64, (i + 1) * 64)]);
        t.dispose();
      }
      expect(ctxs.every((c) => c[0] === tokenizer.bosId)).toBe(true);
      const text = tokenizer.decode(ctxs[0]!, { skipSpecialTokens: true });
      console.log(`first context: ${JSON.stringify(text)}`);
      expect(text).toContain('First Citizen');

      const ids = al.tensor(ctxs.flat(), [ctxs.length, 64], 'i32', { backend });
      const { logits, cache } = runWithCache(model, ids, { names: hooks });
      logits.dispose(); ids.dispose();
      for (const h of hooks) {
        const want = cache.get(h).dataSync();
        const got: number[] = [];
        for await (const t of s.batches({ hook: h, batchSize: 100, flatten: 'tokens' })) { got.push(...t.dataSync()); t.dispose(); }
        expect(got.length).toBe(want.length);
        let maxDiff = 0;
        if (h.endsWith('hook_pattern')) {
          // Token rows are query positions: [head, key_pos] per (context, query).
          const H = model.dims.nHeads;
          for (let c = 0; c < ctxs.length; c++) for (let q = 0; q < 64; q++) for (let hd = 0; hd < H; hd++) for (let k = 0; k < 64; k++) {
            const w = f16BitsToF32(f32ToF16Bits(want[((c * H + hd) * 64 + q) * 64 + k]!));
            maxDiff = Math.max(maxDiff, Math.abs(got[((c * 64 + q) * H + hd) * 64 + k]! - w));
          }
        } else {
          for (let i = 0; i < want.length; i++) maxDiff = Math.max(maxDiff, Math.abs(got[i]! - f16BitsToF32(f32ToF16Bits(want[i]!))));
        }
        console.log(`${h}: max diff to the f16-rounded direct run ${maxDiff}`);
        expect(maxDiff).toBe(0);
      }
      cache.dispose();
    } finally {
      model.dispose();
      rmSync(out, { recursive: true, force: true });
    }
  }, 120_000);
});
