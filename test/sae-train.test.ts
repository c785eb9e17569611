// SAE training and use: exact resume after a kill, the NaN stop keeping the last good checkpoint,
// training from an activation store (and its errors), splicing into a model with SAELens hook
// names (error term, feature ablation, transcoders), and evaluation (CE loss recovered).
import { beforeAll, describe, expect, it } from 'vitest';
import * as al from '../src/index.js';
import { BytesSource } from '../src/io/byte-source.js';
import { MemoryStore } from '../src/io/memory-store.js';
import { randomModel } from '../src/models/random.js';
import type { CausalLM } from '../src/models/model.js';
import { ActivationStore } from '../src/store/reader.js';
import { harvest } from '../src/store/writer.js';
import type { Tokenizer } from '../src/tokenizer/tokenizer.js';
import { arraySource, storeSource } from '../src/sae/data.js';
import { plantedActivations } from '../src/sae/planted.js';
import { SaeDivergedError, trainSae, type SaeStepInfo } from '../src/sae/train.js';
import { latestTrainCheckpoint, loadTrainCheckpoint } from '../src/sae/checkpoint.js';
import { initSae } from '../src/sae/init.js';
import { saeHooks } from '../src/sae/splice.js';
import { evaluateSae } from '../src/sae/eval.js';
import type { SaeConfig } from '../src/sae/config.js';

let wasm: al.Backend;
let js: al.Backend;
let model: CausalLM;
const CONFIG = {
  model_type: 'llama', vocab_size: 260, max_position_embeddings: 64, hidden_size: 32, num_attention_heads: 4,
  num_key_value_heads: 2, num_hidden_layers: 2, intermediate_size: 40, rope_theta: 10000,
};
function byteTokenizer(): Tokenizer {
  return {
    kind: 'hf', vocabSize: 258, bosId: 256, eosId: 257, eosIds: [257], padId: null, chatTemplate: null,
    encode: (text, o) => [...(o?.addSpecialTokens === false ? [] : [256]), ...new TextEncoder().encode(text)],
    decode: (ids) => new TextDecoder().decode(Uint8Array.from(ids.filter((i) => i < 256))),
    idToToken: (id) => (id < 256 ? String.fromCharCode(id) : undefined),
    tokenToId: () => undefined,
    applyChatTemplate: () => { throw new Error('no chat template'); },
  };
}

beforeAll(async () => {
  js = await al.initBackend('js');
  wasm = await al.initBackend('wasm');
  model = randomModel(CONFIG, js, { seed: 3 });
});

const planted = () => plantedActivations({ d: 16, features: 32, rows: 4000, seed: 5 });

describe('SAE training runs', () => {
  it('a run killed after a checkpoint and resumed ends bit-identical to an uninterrupted one', async () => {
    const p = planted();
    const opts = (store: MemoryStore) => ({
      architecture: 'topk' as const, dSae: 48, k: 4, tokens: 128 * 20, batchSize: 128, lr: 2e-3, seed: 1, deadFeatureWindow: 3,
      checkpointDir: 'ck', checkpointEvery: 5, store, backend: wasm, normalizeActivations: 'expected_average_only_in' as const,
    });
    const a = await trainSae(arraySource(p.x, 16, { batchSize: 128, seed: 2 }), opts(new MemoryStore()));
    const store = new MemoryStore();
    await expect(trainSae(arraySource(p.x, 16, { batchSize: 128, seed: 2 }), {
      ...opts(store), onStep: (s: SaeStepInfo) => { if (s.step === 12) throw new Error('killed'); },
    })).rejects.toThrow('killed');
    expect(await store.list('ck')).toEqual(['sae-step-000000010.safetensors']);
    const b = await trainSae(arraySource(p.x, 16, { batchSize: 128, seed: 2 }), { ...opts(store), resume: true });
    expect(b.resumedFrom).toBe(10);
    for (const [k, v] of a.sae.params) expect(Buffer.from(b.sae.param(k).buffer).equals(Buffer.from(v.buffer)), k).toBe(true);
    expect(Array.from(b.featureDensity)).toEqual(Array.from(a.featureDensity));
  }, 60_000);

  it('a NaN stops the run naming the step and keeps the last good checkpoint', async () => {
    const p = planted();
    const store = new MemoryStore();
    const src = arraySource(p.x, 16, { batchSize: 128, seed: 2 });
    let n = 0;
    const poisoned = { dIn: 16, dOut: 16, next: async () => { const b = await src.next(); if (++n === 10) b.x[7] = NaN; return b; } };
    let err: unknown;
    try {
      await trainSae(poisoned, { architecture: 'standard', dSae: 32, coefficient: 1, tokens: 128 * 20, batchSize: 128, bDecInit: 'zeros', checkpointDir: 'ck', checkpointEvery: 4, store, backend: wasm });
    } catch (e) { err = e; }
    expect(err).toBeInstanceOf(SaeDivergedError);
    expect((err as SaeDivergedError).step).toBe(9);
    expect((err as Error).message).toMatch(/diverged at step 9: loss is NaN.*last good checkpoint is ck\/sae-step-000000008.safetensors/);
    const ck = await loadTrainCheckpoint(store, (await latestTrainCheckpoint(store, 'ck'))!);
    expect(ck.state.step).toBe(8);
    for (const v of ck.tensors.get('W_dec')!) expect(Number.isFinite(v)).toBe(true);
  }, 60_000);
});

describe('SAEs on a model and a store', () => {
  let store: MemoryStore;
  beforeAll(async () => {
    store = new MemoryStore();
    const text = Array.from({ length: 60 }, (_, i) => `Paragraph ${i}: the quick brown fox ${'jumps '.repeat(i % 5)}over the lazy dog.`).join('\n\n');
    await harvest({
      model, tokenizer: byteTokenizer(), corpus: new BytesSource(new TextEncoder().encode(text), 'c.txt'), outDir: 's', context: 32,
      hooks: ['blocks.1.hook_resid_post', 'blocks.1.ln2.hook_normalized', 'blocks.1.hook_mlp_out'], contextsPerShard: 8, store, source: 'random-llama',
    });
  }, 60_000);

  it('trains from the store; a missing hook or a non-vector hook is a clear error', async () => {
    const s = await ActivationStore.open('s', { store });
    const data = storeSource(s, { hook: 'blocks.1.hook_resid_post', batchSize: 64, seed: 0, backend: wasm });
    const r = await trainSae(data, { architecture: 'topk', dSae: 64, k: 8, tokens: 64 * 30, batchSize: 64, lr: 3e-3, backend: wasm, normalizeActivations: 'expected_average_only_in' });
    expect(r.sae.dIn).toBe(32);
    expect(r.last!.fvu).toBeLessThan(0.6);
    expect(() => storeSource(s, { hook: 'blocks.0.hook_resid_post', batchSize: 64 })).toThrow(/no hook 'blocks.0.hook_resid_post' in this store \(it has tokens, blocks.1.hook_resid_post/);
  }, 60_000);

  it('splices with SAELens hook names: error term exact, feature ablation moves the logits, d_in mismatch named', async () => {
    const ids = al.tensor([[256, 72, 101, 108, 108, 111, 32, 119]], [1, 8], 'i32', { backend: js });
    const cfg: SaeConfig = { architecture: 'standard', d_in: 32, d_sae: 64, apply_b_dec_to_input: true, normalize_activations: 'none', dtype: 'float32', metadata: { hook_name: 'blocks.1.hook_resid_post' } };
    const sae = initSae(cfg, { seed: 1 });
    const clean = model.forward(ids).dataSync() as Float32Array;
    const seen: string[] = [];
    const withErr = al.runWithHooks(model, ids, { hooks: saeHooks(sae, { useErrorTerm: true, hooks: [[(n: string) => n.includes('.sae.'), (t: al.Tensor, h: al.HookPoint) => { seen.push(h.name); }]] }) }).dataSync() as Float32Array;
    let m = 0;
    for (let i = 0; i < clean.length; i++) m = Math.max(m, Math.abs(clean[i]! - withErr[i]!));
    console.log(`SAE spliced with its error term: max |logit - clean| ${m.toExponential(2)}`);
    expect(m).toBeLessThan(1e-4);
    expect(seen).toEqual(['hook_sae_input', 'hook_sae_acts_pre', 'hook_sae_acts_post', 'hook_sae_recons', 'hook_sae_error', 'hook_sae_output'].map((h) => `blocks.1.hook_resid_post.sae.${h}`));
    // Zero every feature but the error: the output is the error plus b_dec only, so the logits move.
    const ablated = al.runWithHooks(model, ids, { hooks: saeHooks(sae, { useErrorTerm: true, hooks: [['blocks.1.hook_resid_post.sae.hook_sae_acts_post', (t: al.Tensor) => al.mul(t, 0)]] }) }).dataSync() as Float32Array;
    let moved = 0;
    for (let i = 0; i < clean.length; i++) moved = Math.max(moved, Math.abs(clean[i]! - ablated[i]!));
    expect(moved).toBeGreaterThan(1e-3);
    const wrong = initSae({ ...cfg, d_in: 16 }, { seed: 1 });
    expect(() => al.runWithHooks(model, ids, { hooks: saeHooks(wrong) })).toThrow(/input \[1, 8, 32\] does not match d_in 16 \(trained on blocks.1.hook_resid_post\)/);
  });

  it('evaluates: L0, FVU, CE loss recovered, density histogram; a transcoder splices at its output site', async () => {
    const s = await ActivationStore.open('s', { store });
    const data = storeSource(s, { hook: 'blocks.1.hook_resid_post', batchSize: 64, seed: 0, backend: wasm });
    const r = await trainSae(data, { architecture: 'topk', dSae: 64, k: 8, tokens: 64 * 40, batchSize: 64, lr: 3e-3, backend: wasm, metadata: { hook_name: 'blocks.1.hook_resid_post' } });
    const ev = await evaluateSae(model, r.sae, s, { contexts: 8 });
    console.log(`eval: L0 ${ev.l0.toFixed(2)}, FVU ${ev.fvu.toFixed(3)}, CE clean ${ev.ce_clean.toFixed(4)} sae ${ev.ce_sae.toFixed(4)} zero ${ev.ce_zero_ablation.toFixed(4)} recovered ${ev.ce_loss_recovered.toFixed(3)}`);
    expect(ev.l0).toBeLessThanOrEqual(8);
    expect(ev.tokens).toBe(8 * 32);
    expect(ev.fvu).toBeGreaterThan(0);
    expect(ev.fvu).toBeLessThan(1);
    expect(Number.isFinite(ev.ce_loss_recovered)).toBe(true);
    expect(ev.density_histogram.counts.reduce((a, b) => a + b, 0) + ev.density_histogram.dead).toBe(64);

    const td = storeSource(s, { hook: 'blocks.1.ln2.hook_normalized', targetHook: 'blocks.1.hook_mlp_out', batchSize: 64, seed: 0, backend: wasm });
    const tc = await trainSae(td, { architecture: 'transcoder', dSae: 64, coefficient: 0.01, tokens: 64 * 40, batchSize: 64, lr: 3e-3, backend: wasm, metadata: { hook_name: 'blocks.1.ln2.hook_normalized', hook_name_out: 'blocks.1.hook_mlp_out' } });
    const te = await evaluateSae(model, tc.sae, s, { contexts: 8 });
    console.log(`transcoder eval: L0 ${te.l0.toFixed(2)}, FVU ${te.fvu.toFixed(3)}, CE recovered ${te.ce_loss_recovered.toFixed(3)}`);
    expect(te.fvu).toBeLessThan(1);
  }, 120_000);
});

describe('SAE features through the interventions API', () => {
  it('attachSae makes the SAE hook points model hook points; an intervention on a feature equals a hand-written hook', async () => {
    const { withInterventions } = await import('../src/interventions/apply.js');
    const { attachSae } = await import('../src/sae/splice.js');
    const ids = al.tensor([[256, 72, 101, 108, 108, 111, 32, 119]], [1, 8], 'i32', { backend: js });
    const cfg: SaeConfig = { architecture: 'topk', d_in: 32, d_sae: 64, k: 8, apply_b_dec_to_input: true, normalize_activations: 'none', dtype: 'float32', metadata: { hook_name: 'blocks.1.hook_resid_post' } };
    const sae = initSae(cfg, { seed: 2 });
    const clean = model.forward(ids).dataSync() as Float32Array;
    const att = attachSae(model, sae, { useErrorTerm: true });
    try {
      expect(model.hookPointShapes().find((p) => p.name === 'blocks.1.hook_resid_post.sae.hook_sae_acts_post')?.shape).toEqual(['batch', 'pos', 64]);
      const same = model.forward(ids).dataSync() as Float32Array;
      let m = 0;
      for (let i = 0; i < clean.length; i++) m = Math.max(m, Math.abs(same[i]! - clean[i]!));
      expect(m).toBeLessThan(1e-4);
      const steered = withInterventions(model, [{ hook: 'blocks.1.hook_resid_post.sae.hook_sae_acts_post', unit: { dims: [5] }, op: 'set', value: 4 }], () => model.forward(ids).dataSync() as Float32Array);
      const byHand = al.runWithHooks(model, ids, { hooks: [['blocks.1.hook_resid_post.sae.hook_sae_acts_post', (t: al.Tensor) => {
        const h = t.dataSync() as Float32Array;
        const c = h.slice();
        for (let i = 5; i < c.length; i += 64) c[i] = 4;
        return al.Tensor.from(c, t.shape, 'f32', t.backend);
      }]] }).dataSync() as Float32Array;
      let d = 0;
      let moved = 0;
      for (let i = 0; i < clean.length; i++) { d = Math.max(d, Math.abs(steered[i]! - byHand[i]!)); moved = Math.max(moved, Math.abs(steered[i]! - clean[i]!)); }
      console.log(`feature 5 set to 4 through the interventions API: max |logit - hand hook| ${d.toExponential(2)}, max logit change ${moved.toFixed(4)}`);
      expect(d).toBeLessThan(1e-5);
      expect(moved).toBeGreaterThan(1e-3);
    } finally {
      att.remove();
    }
    expect(model.hookPoints().some((p) => p.name.includes('.sae.'))).toBe(false);
  });
});

describe('feature views', () => {
  it('top contexts hold the largest activations (checked against encoding the stored rows), logit effects, histogram, HTML', async () => {
    const { featureViews, featureViewsHtml } = await import('../src/sae/features.js');
    const store = new MemoryStore();
    const text = Array.from({ length: 30 }, (_, i) => `Line ${i}: ${'abc '.repeat(i % 4)}the end.`).join('\n\n');
    await harvest({ model, tokenizer: byteTokenizer(), corpus: new BytesSource(new TextEncoder().encode(text), 'c.txt'), outDir: 'f', context: 16, hooks: ['blocks.1.hook_resid_post'], store, source: 'random-llama' });
    const s = await ActivationStore.open('f', { store });
    const cfg: SaeConfig = { architecture: 'topk', d_in: 32, d_sae: 40, k: 5, apply_b_dec_to_input: true, normalize_activations: 'none', dtype: 'float32', metadata: { hook_name: 'blocks.1.hook_resid_post' } };
    const sae = initSae(cfg, { seed: 4 });
    const r = await featureViews(sae, s, { top: 3, examples: 4, model, tokenizer: byteTokenizer() });
    expect(r.features).toHaveLength(3);
    // Reference: encode every stored row directly.
    const rows: Float32Array[] = [];
    for await (const t of s.batches({ hook: 'blocks.1.hook_resid_post', batchSize: 1000 })) { const a = sae.encode(t); rows.push(a.dataSync() as Float32Array); a.dispose(); t.dispose(); }
    const all = new Float32Array(rows.reduce((q, x) => q + x.length, 0));
    let o = 0;
    for (const x of rows) { all.set(x, o); o += x.length; }
    for (const v of r.features) {
      let max = 0;
      let fired = 0;
      for (let i = v.feature; i < all.length; i += 40) { if (all[i]! > max) max = all[i]!; if (all[i] !== 0) fired++; }
      expect(v.maxActivation).toBeCloseTo(max, 6);
      expect(v.examples[0]!.activation).toBeCloseTo(max, 6);
      expect(v.density).toBeCloseTo(fired / (all.length / 40), 9);
      const e = v.examples[0]!;
      expect(e.acts[e.tokens.length - 1 - Math.min(3, 15 - e.position)]).toBeCloseTo(e.activation, 6);
      expect(v.histogram.counts.reduce((a, b) => a + b, 0)).toBe(fired);
      expect(v.logits!.promoted[0]!.logit).toBeGreaterThanOrEqual(v.logits!.suppressed[0]!.logit);
    }
    const html = featureViewsHtml(r);
    expect(html).toContain(`<h2>feature ${r.features[0]!.feature}</h2>`);
    expect(html).toContain('<svg');
  }, 60_000);
});
