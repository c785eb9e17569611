// Model organisms: their data, the Fourier analysis on a planted embedding, head ablation, and
// the committed trained models (modular addition groks; the induction model has induction heads).
import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import * as al from '../src/index.js';
import { modularAdditionData, fourierAnalysis, modularAdditionConfig, P } from '../src/organisms/modular-addition.js';
import { inductionTrainingData, inductionConfig, ablateHead, INDUCTION } from '../src/organisms/induction.js';
import { initToy } from '../src/organisms/common.js';
import { evaluateOrganism } from '../src/organisms/index.js';
import { loadModel } from '../src/models/load.js';

const MODELS = new URL('../models/organisms/', import.meta.url).pathname;

describe('modular addition', () => {
  it('splits all p² pairs 30/70, disjointly, with c = (a + b) mod p', () => {
    const { train, test } = modularAdditionData();
    expect(train.length + test.length).toBe(P * P);
    expect(train.length).toBe(Math.round(0.3 * P * P));
    const key = (r: number[]) => r[0]! * P + r[1]!;
    const seen = new Set(train.map(key));
    expect(test.every((r) => !seen.has(key(r)))).toBe(true);
    for (const r of [...train.slice(0, 50), ...test.slice(0, 50)]) expect(r).toEqual([r[0], r[1], P, (r[0]! + r[1]!) % P]);
  });

  it('the Fourier analysis finds the frequencies planted in an embedding, and nothing else', async () => {
    const backend = await al.initBackend('js');
    const model = initToy({ ...modularAdditionConfig(), d_model: 16, d_head: 4, d_mlp: 32 }, backend, 1);
    const WE = model.parameters().get('embed.W_E')!;
    const d = 16;
    const planted = new Float32Array((P + 1) * d);
    for (let x = 0; x < P; x++) {
      planted[x * d + 0] = Math.cos((2 * Math.PI * 5 * x) / P);
      planted[x * d + 1] = Math.sin((2 * Math.PI * 5 * x) / P);
      planted[x * d + 2] = 0.7 * Math.cos((2 * Math.PI * 17 * x) / P);
      planted[x * d + 3] = 0.7 * Math.sin((2 * Math.PI * 17 * x) / P);
    }
    const bytes = new Uint8Array(planted.buffer);
    backend.write(WE.view().buffer, 0, bytes);
    const f = fourierAnalysis(model);
    console.log('planted embedding: key frequencies', f.keyFrequencies, 'share', f.keyShare.toFixed(4));
    expect(f.keyFrequencies.sort((a, b) => a - b)).toEqual([5, 17]);
    expect(f.keyShare).toBeGreaterThan(0.999);
    model.dispose();
  }, 60_000);
});

describe('induction', () => {
  it('training sequences repeat a segment with a period that varies', () => {
    const data = inductionTrainingData(200, 3);
    const periods = new Set<number>();
    for (const s of data) {
      expect(s.length).toBe(2 * INDUCTION.segment + 1);
      expect(s[0]).toBe(INDUCTION.bos);
      // The smallest period k >= 5 such that the tail of the sequence repeats with it.
      const tail = s.slice(-30);
      const k = [...Array(25).keys()].find((p) => p >= 5 && tail.every((t, i) => i < p || t === tail[i - p]));
      expect(k, JSON.stringify(s)).toBeDefined();
      periods.add(k!);
    }
    expect(periods.size).toBeGreaterThan(10);
  });

  it('ablateHead zeroes exactly that head', async () => {
    const backend = await al.initBackend('js');
    const model = initToy(inductionConfig(), backend, 2);
    const x = al.tensor([1, 5, 6, 7, 5, 6], [1, 6], 'i32', { backend });
    const { logits, cache } = al.runWithCache(model, x, { names: ['blocks.0.attn.hook_z'], hooks: [ablateHead(0, 2)] });
    const z = cache.get('blocks.0.attn.hook_z');
    const d = z.dataSync();
    const [, T, H, D] = z.shape as number[];
    for (let t = 0; t < T!; t++) for (let h = 0; h < H!; h++) {
      const norm = Array.from(d.subarray((t * H! + h) * D!, (t * H! + h + 1) * D!)).reduce((s, v) => s + v * v, 0);
      if (h === 2) expect(norm).toBe(0); else expect(norm).toBeGreaterThan(0);
    }
    logits.dispose(); cache.dispose(); model.dispose();
  });
});

describe.skipIf(!existsSync(`${MODELS}modular-addition/model.safetensors`))('the committed modular-addition organism', () => {
  it('has grokked: ≥ 99% accuracy on the held-out pairs, with a few key frequencies', async () => {
    const { model } = await loadModel(`${MODELS}modular-addition`, { backend: 'wasm' });
    const r = evaluateOrganism('modular-addition', model) as { train_accuracy: number; test_accuracy: number; key_frequencies: number[]; key_frequency_share: number };
    console.log(`train ${r.train_accuracy}, test ${r.test_accuracy}, key frequencies ${r.key_frequencies} (${(100 * r.key_frequency_share).toFixed(1)}% of the embedding)`);
    expect(r.train_accuracy).toBe(1);
    expect(r.test_accuracy).toBeGreaterThanOrEqual(0.99);
    expect(r.key_frequencies.length).toBeGreaterThanOrEqual(2);
    expect(r.key_frequencies.length).toBeLessThanOrEqual(8);
    expect(r.key_frequency_share).toBeGreaterThan(0.6);
    expect((r as unknown as { neurons_explained_by_one_frequency: number }).neurons_explained_by_one_frequency).toBeGreaterThan(0.5);
    model.dispose();
  }, 120_000);
});

describe.skipIf(!existsSync(`${MODELS}induction/model.safetensors`))('the committed induction organism', () => {
  it('predicts repeats in context through a layer-1 induction head', async () => {
    const { model } = await loadModel(`${MODELS}induction`, { backend: 'wasm' });
    const r = evaluateOrganism('induction', model) as { in_context_loss_drop: number; induction_heads: { layer: number; head: number; score: number }[] };
    console.log(`in-context loss drop ${r.in_context_loss_drop.toFixed(3)} nats; induction heads ${JSON.stringify(r.induction_heads)}`);
    expect(r.in_context_loss_drop).toBeGreaterThan(2);
    expect(r.induction_heads.some((h) => h.layer === 1)).toBe(true);
    model.dispose();
  }, 120_000);
});
