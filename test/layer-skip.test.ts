// Layer skipping from the voids analysis (LAC): a block planted to do nothing is found as a void,
// skipping it changes no logit and no generated token; per-token masking drops exactly the updates
// LAC calls voids; the FLOP count matches a hand count; skipping runs the same on wasm as on js.
import { beforeAll, describe, expect, it } from 'vitest';
import * as al from '../src/index.js';
import { randomModel } from '../src/models/random.js';
import type { CausalLM } from '../src/models/model.js';
import { layerVoids } from '../src/analysis/voids.js';
import { flopsPerToken, lacMaskHooks, layerSkipReport, withSkippedLayers } from '../src/interventions/layer-skip.js';
import { TINY } from './helpers/tiny-configs.js';
import { capture } from './helpers/capture.js';

const FIX = new URL('../fixtures/hf/', import.meta.url).pathname;

const cfg = { ...TINY.llama!, num_hidden_layers: 4 };
const prompt = [1, 5, 17, 3, 9, 22, 8, 40, 11, 7, 19, 2];
let js: al.Backend;

/** A 4-block random llama whose block 2 writes nothing (o_proj and down_proj zero). */
function planted(b: al.Backend): CausalLM {
  const m = randomModel(cfg, b, { seed: 7, std: 0.3, present: /^lm_head/ });
  const p = m.parameters();
  for (const n of ['model.layers.2.self_attn.o_proj.weight', 'model.layers.2.mlp.down_proj.weight']) {
    const t = p.get(n)!;
    b.write(t.view().buffer, t.offset * 4, new Uint8Array(new Float32Array(t.size).buffer));
  }
  return m;
}

beforeAll(async () => {
  js = await al.initBackend('js');
});

describe('layer skipping', () => {
  it('a block that writes nothing is a void; skipping it leaves logits and generations unchanged', () => {
    const model = planted(js);
    const v = layerVoids(model, prompt, { generateTokens: 0 });
    console.log(`void rate per block: ${v.prompt.void_rate.map((r) => r.toFixed(2)).join(' ')}`);
    expect(v.prompt.void_rate[2]).toBe(1);
    const x = al.tensor(prompt, [1, prompt.length], 'i32', { backend: js });
    const full = model.forward(x).dataSync();
    const skip = withSkippedLayers(model, [2], () => model.forward(x).dataSync());
    expect(Array.from(skip)).toEqual(Array.from(full));
    expect(model.skippedLayers.size).toBe(0);
    const r = layerSkipReport(model, prompt, { maxNewTokens: 12, minVoidRate: 1 });
    console.log(`static: skipped ${r.skipped}, compute saved ${(100 * r.computeSaved.blocks).toFixed(1)}% of block FLOPs (${(100 * r.computeSaved.total).toFixed(1)}% of all), KL ${r.quality.kl.toExponential(2)}, top-1 ${r.quality.top1}`);
    expect(r.skipped).toEqual([2]);
    expect(r.quality.kl).toBeLessThan(1e-9);
    expect(r.quality.top1).toBe(1);
    expect(r.generation.skipped).toEqual(r.generation.full);
    expect(r.computeSaved.blocks).toBeCloseTo(0.25, 6);
    model.dispose();
  });

  it('per-token masking drops exactly the updates LAC calls voids', () => {
    const model = planted(js);
    const v = layerVoids(model, prompt, { generateTokens: 0 });
    const m = lacMaskHooks(model);
    const x = al.tensor(prompt, [1, prompt.length], 'i32', { backend: js });
    model.withHooks(m.hooks, () => model.forward(x).dispose());
    const want = (l: number) => v.prompt.tokens.filter((t) => t.void[l]).length;
    console.log(`dropped per block ${m.stats.dropped.join(' ')}; LAC voids per block ${[0, 1, 2, 3].map(want).join(' ')}`);
    expect(m.stats.tokens).toEqual([12, 12, 12, 12]);
    expect(m.stats.dropped[0]).toBe(0);
    // Until the first dropped update the stream is the plain one, so the decisions are LAC's.
    expect(m.stats.dropped[1]).toBe(want(1));
    if (want(1) === 0) expect(m.stats.dropped[2]).toBe(want(2));
    const r = layerSkipReport(model, prompt, { mode: 'mask', maxNewTokens: 12 });
    console.log(`mask: ${(100 * r.computeSaved.blocks).toFixed(1)}% of block updates' FLOPs dropped, KL ${r.quality.kl.toExponential(2)}, top-1 ${r.quality.top1.toFixed(3)}, same greedy tokens ${r.generation.sameTokens}/12`);
    expect(r.computeSaved.blocks).toBeGreaterThanOrEqual(0.25 - 1e-9);
    model.dispose();
  });

  it('FLOPs per token match a hand count', () => {
    const model = randomModel(cfg, js, { seed: 1 });
    const f = flopsPerToken(model, 10);
    const weights = 32 * 32 + 16 * 32 + 16 * 32 + 32 * 32 + 3 * 40 * 32; // q k v o gate up down
    expect(f.blocks).toEqual([0, 1, 2, 3].map(() => 2 * weights + 4 * 10 * 4 * 8));
    expect(f.head).toBe(2 * 61 * 32);
    model.dispose();
  });

  it('skipping blocks on wasm equals skipping them on js', async () => {
    const wasm = await al.initBackend('wasm');
    const a = planted(js);
    const b = planted(wasm);
    const x = (be: al.Backend) => al.tensor(prompt, [1, prompt.length], 'i32', { backend: be });
    const la = withSkippedLayers(a, [1, 3], () => a.forward(x(js)).dataSync());
    const lb = withSkippedLayers(b, [1, 3], () => b.forward(x(wasm)).dataSync());
    let err = 0;
    for (let i = 0; i < la.length; i++) err = Math.max(err, Math.abs(la[i]! - lb[i]!));
    console.log(`blocks 1 and 3 skipped: max |wasm − js| ${err.toExponential(2)}`);
    expect(err).toBeLessThan(1e-4);
    const ga = withSkippedLayers(a, [1, 3], () => al.generate(a, [prompt], { maxNewTokens: 8, eosTokenIds: [] }).newIds[0]);
    const gb = withSkippedLayers(b, [1, 3], () => al.generate(b, [prompt], { maxNewTokens: 8, eosTokenIds: [] }).newIds[0]);
    expect(gb).toEqual(ga);
    a.dispose();
    b.dispose();
  }, 60_000);

  it('actlab skip-layers --json reports both modes; a bad layer or rate is a clear error', async () => {
    for (const mode of ['static', 'mask']) {
      const r = await capture(['skip-layers', '--model', `${FIX}llama3`, '--ids', '1,5,9,13,17,21,25,29', '--mode', mode, '--min-void-rate', '0', '--max-new-tokens', '4', '--json', '--backend', 'js']);
      expect(r.code, r.err).toBe(0);
      const j = JSON.parse(r.out.trim());
      expect(j.mode).toBe(mode);
      expect(j.generation.full).toHaveLength(4);
      expect(j.quality.top1).toBeGreaterThanOrEqual(0);
      if (mode === 'static') expect(j.skipped.length).toBeGreaterThan(0);
    }
    const bad = await capture(['skip-layers', '--model', `${FIX}llama3`, '--ids', '1,5', '--min-void-rate', '2', '--backend', 'js']);
    expect(bad.code).toBe(1);
    expect(bad.err).toMatch(/min-void-rate/);
    const model = randomModel(cfg, js, { seed: 1 });
    expect(() => withSkippedLayers(model, [4], () => 0)).toThrow(/layer 4 is out of range; this model has 4 blocks/);
    model.dispose();
  });
});
