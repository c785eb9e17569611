// Ablation sweeps on small random models: the batched metric equals each item scored alone; each
// site and method equals the same ablation written by hand as a hook; a registered method joins
// the sweep; bad input is refused before any forward pass.
import { beforeAll, describe, expect, it } from 'vitest';
import * as al from '../src/index.js';
import { randomModel } from '../src/models/random.js';
import type { CausalLM } from '../src/models/model.js';
import {
  ablationSweep, datasetStats, evaluateMetric, registerAblationMethod, type AblationItem,
} from '../src/interventions/ablation.js';
import { TINY } from './helpers/tiny-configs.js';

let js: al.Backend;
let model: CausalLM;
const items: AblationItem[] = [
  { ids: [1, 5, 9, 22, 8], answer: 12, wrong: 13 },
  { ids: [1, 30, 4], answer: 7, wrong: 12 },
  { ids: [1, 17, 17, 3, 40, 2, 9], answer: 12, wrong: 40 },
];

beforeAll(async () => {
  js = await al.initBackend('js');
  model = randomModel(TINY.gpt2!, js, { seed: 21, std: 0.25 });
});

/** logit-diff of each item run alone through `hooks`. */
function byHand(hooks: [string, al.HookFn][], m = model, its = items): number {
  let s = 0;
  for (const it of its) {
    const l = al.runWithHooks(m, al.tensor(it.ids, [1, it.ids.length], 'i32', { backend: js }), { hooks });
    const d = l.dataSync();
    const V = m.dims.vocabSize;
    const last = (it.ids.length - 1) * V;
    s += d[last + it.answer!]! - d[last + it.wrong!]!;
    l.dispose();
  }
  return s / its.length;
}

describe('ablation sweeps', () => {
  it('the batched metric equals each item alone; accuracy and loss by hand', () => {
    const lb = evaluateMetric(model, items, 'logit-diff', 2);
    const lh = byHand([]);
    console.log(`logit-diff batched ${lb.toFixed(6)} vs alone ${lh.toFixed(6)}`);
    expect(Math.abs(lb - lh)).toBeLessThan(1e-5);
    const text = [{ ids: [1, 5, 9, 22, 8, 3] }];
    const l = model.forward(al.tensor(text[0]!.ids, [1, 6], 'i32', { backend: js }));
    const lp = al.logSoftmax(l).dataSync();
    let nll = 0;
    for (let j = 0; j < 5; j++) nll -= lp[j * 61 + text[0]!.ids[j + 1]!]!;
    expect(evaluateMetric(model, text, 'loss')).toBeCloseTo(nll / 5, 5);
    const acc = evaluateMetric(model, items, 'accuracy');
    expect([0, 1 / 3, 2 / 3, 1].some((x) => Math.abs(x - acc) < 1e-9)).toBe(true);
  });

  it('heads, zero: each effect equals zeroing that head by hand', () => {
    const r = ablationSweep(model, items, { site: 'heads', method: 'zero', metric: 'logit-diff', batchSize: 2 });
    expect(r.effects.length).toBe(2 * 3);
    expect(Math.abs(r.clean - byHand([]))).toBeLessThan(1e-5);
    for (const e of r.effects.filter((_, i) => i % 2 === 0)) {
      const hand = byHand([[`blocks.${e.layer}.attn.hook_z`, (t) => {
        const d = Float32Array.from(t.dataSync() as Float32Array);
        const [, P, H, D] = t.shape as [number, number, number, number];
        for (let p = 0; p < P; p++) d.fill(0, (p * H + e.unit) * D, (p * H + e.unit + 1) * D);
        return al.tensor(d, [...t.shape], 'f32', { backend: js });
      }]]);
      expect(Math.abs(e.metric - hand)).toBeLessThan(1e-5);
    }
  });

  it('layers, zero, is skipping the block; neurons, mean, sets the neuron to its dataset mean', () => {
    const r = ablationSweep(model, items, { site: 'layers', method: 'zero', metric: 'logit-diff' });
    for (const e of r.effects) {
      let pre: Float32Array | null = null;
      const hand = byHand([
        [`blocks.${e.layer}.hook_resid_pre`, (t) => { pre = Float32Array.from(t.dataSync() as Float32Array); }],
        [`blocks.${e.layer}.hook_resid_post`, (t) => al.tensor(pre!, [...t.shape], 'f32', { backend: js })],
      ]);
      expect(Math.abs(e.metric - hand)).toBeLessThan(1e-5);
    }
    const n = ablationSweep(model, items, { site: 'neurons', method: 'mean', metric: 'logit-diff', layers: [1], units: [3, 50] });
    const hook = 'blocks.1.mlp.hook_post';
    // The mean over every real token of the data, by hand.
    let sum = 0;
    let cnt = 0;
    for (const it of items) {
      const { logits, cache } = al.runWithCache(model, al.tensor(it.ids, [1, it.ids.length], 'i32', { backend: js }), { names: [hook] });
      const d = cache.get(hook).dataSync();
      for (let p = 0; p < it.ids.length; p++) { sum += d[p * 96 + 50]!; cnt++; }
      logits.dispose(); cache.dispose();
    }
    const mean = sum / cnt;
    const hand = byHand([[hook, (t) => {
      const d = Float32Array.from(t.dataSync() as Float32Array);
      for (let i = 50; i < d.length; i += 96) d[i] = mean;
      return al.tensor(d, [...t.shape], 'f32', { backend: js });
    }]]);
    expect(Math.abs(n.effects[1]!.metric - hand)).toBeLessThan(1e-5);
  });

  it('resample is deterministic and draws from the dataset; experts, zero, on a mixture of experts', () => {
    const a = ablationSweep(model, items, { site: 'heads', method: 'resample', metric: 'logit-diff', layers: [0] });
    const b = ablationSweep(model, items, { site: 'heads', method: 'resample', metric: 'logit-diff', layers: [0] });
    expect(a.effects).toEqual(b.effects);
    expect(a.effects.some((e) => Math.abs(e.effect) > 1e-6)).toBe(true);
    const moe = randomModel(TINY.mixtral!, js, { seed: 3, std: 0.2 });
    const r = ablationSweep(moe, items, { site: 'experts', method: 'zero', metric: 'logit-diff', layers: [1] });
    expect(r.effects.length).toBe(4);
    for (const e of r.effects) {
      const hand = byHand([[`blocks.1.mlp.experts.${e.unit}.hook_post`, (t) => al.zeros(t.shape, 'f32', { backend: js })]], moe);
      expect(Math.abs(e.metric - hand)).toBeLessThan(1e-5);
    }
    const st = datasetStats(moe, items, ['blocks.1.mlp.experts.0.hook_post']);
    expect(st.mean.get('blocks.1.mlp.experts.0.hook_post')?.shape).toEqual([24]);
    const rm = ablationSweep(moe, items, { site: 'experts', method: 'resample', metric: 'loss', layers: [0] });
    expect(rm.effects.every((e) => Number.isFinite(e.metric))).toBe(true);
    moe.dispose();
  });

  it('a registered method joins the sweep (the extension point)', () => {
    registerAblationMethod('half', { needs: [], interventions: (u) => u.hooks.map((hook) => ({ hook, op: 'scale', factor: 0.5, unit: { heads: [u.unit] } })) });
    const r = ablationSweep(model, items, { site: 'heads', method: 'half', metric: 'logit-diff', layers: [1], units: [2] });
    const hand = byHand([['blocks.1.attn.hook_z', (t) => {
      const d = Float32Array.from(t.dataSync() as Float32Array);
      const [, P, H, D] = t.shape as [number, number, number, number];
      for (let p = 0; p < P; p++) for (let k = 0; k < D; k++) d[(p * H + 2) * D + k]! *= 0.5;
      return al.tensor(d, [...t.shape], 'f32', { backend: js });
    }]]);
    expect(Math.abs(r.effects[0]!.metric - hand)).toBeLessThan(1e-5);
  });

  it('a hook-based method gets each batch\'s token rows and its prepared state (for context-aware methods)', () => {
    const seen: number[][][] = [];
    registerAblationMethod('half-hooks', {
      needs: [],
      prepare: (_m, its) => its.length,
      hooks: (u, c) => {
        seen.push(c.ids);
        expect(c.state).toBe(items.length);
        return [[`blocks.${u.layer}.attn.hook_z`, (t) => {
          const d = Float32Array.from(t.dataSync() as Float32Array);
          const [, P, H, D] = t.shape as [number, number, number, number];
          for (let p = 0; p < P * t.shape[0]!; p++) for (let k = 0; k < D; k++) d[(p * H + u.unit) * D + k]! *= 0.5;
          return al.tensor(d, [...t.shape], 'f32', { backend: js });
        }]];
      },
    });
    const a = ablationSweep(model, items, { site: 'heads', method: 'half-hooks', metric: 'logit-diff', layers: [1], units: [2], batchSize: 2 });
    const b = ablationSweep(model, items, { site: 'heads', method: 'half', metric: 'logit-diff', layers: [1], units: [2], batchSize: 2 });
    expect(Math.abs(a.effects[0]!.metric - b.effects[0]!.metric)).toBeLessThan(1e-5);
    expect(seen.map((ids) => ids.map((r) => r.length))).toEqual([[5, 5], [7]]); // left-padded rows of each batch
  });

  it('bad input is refused before any forward pass', () => {
    expect(() => ablationSweep(model, items, { site: 'heads', method: 'nope', metric: 'logit-diff' })).toThrow(/unknown ablation method 'nope' \(one of zero, mean, resample/);
    expect(() => ablationSweep(model, items, { site: 'experts', method: 'zero', metric: 'logit-diff' })).toThrow(/needs a mixture-of-experts model/);
    expect(() => ablationSweep(model, items, { site: 'heads', method: 'zero', metric: 'logit-diff', layers: [5] })).toThrow(/layer 5 is out of range/);
    expect(() => ablationSweep(model, items, { site: 'heads', method: 'zero', metric: 'logit-diff', units: [3] })).toThrow(/unit 3 is out of range for site 'heads' \(3 per layer/);
    expect(() => ablationSweep(model, [{ ids: [1, 2] }], { site: 'heads', method: 'zero', metric: 'logit-diff' })).toThrow(/metric logit-diff needs/);
    expect(() => ablationSweep(model, [], { site: 'heads', method: 'zero', metric: 'loss' })).toThrow(/no data items/);
  });
});
