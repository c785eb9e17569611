// SoftPAG and HeadHunter: the perturbed attention map is (1 − s)·P + s·I on the chosen heads and
// nothing else; s = 1 everywhere equals every token attending to itself (ABP 'self'); guidance
// follows its formula; HeadHunter's greedy rounds pick what a brute-force search picks, and on the
// induction organism they find heads whose identity attention breaks in-context copying.
import { existsSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import * as al from '../src/index.js';
import { randomModel } from '../src/models/random.js';
import { loadModel } from '../src/models/load.js';
import { abpHooks } from '../src/interventions/cama.js';
import { headHunter, perturbedGuidance, softPagHooks } from '../src/interventions/head-perturb.js';
import { inContextLossDrop, inductionData } from '../src/organisms/induction.js';
import { TINY } from './helpers/tiny-configs.js';

let js: al.Backend;
const ids = [3, 17, 8, 29, 11, 4];
const maxAbs = (a: ArrayLike<number>, b: ArrayLike<number>) => { let m = 0; for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!)); return m; };
const MODELS = new URL('../models/organisms/', import.meta.url).pathname;

beforeAll(async () => {
  js = await al.initBackend('js');
});

describe('SoftPAG', () => {
  it('moves the chosen heads toward the identity by s and leaves the others', () => {
    const model = randomModel(TINY.llama!, js, { seed: 3, std: 0.3 });
    const x = al.tensor(ids, [1, 6], 'i32', { backend: js });
    const name = 'blocks.1.attn.hook_pattern';
    const base = al.runWithCache(model, x, { names: [name] });
    const P = Float32Array.from(base.cache.get(name).dataSync());
    const s = 0.3;
    const r = al.runWithCache(model, x, { names: [name], hooks: softPagHooks(model, [{ layer: 1, head: 2 }], s) });
    const Q = r.cache.get(name).dataSync();
    const T = 6;
    for (let h = 0; h < 4; h++) for (let i = 0; i < T; i++) for (let j = 0; j < T; j++) {
      const k = (h * T + i) * T + j;
      const want = h === 2 ? (1 - s) * P[k]! + s * (i === j ? 1 : 0) : P[k]!;
      expect(Math.abs(Q[k]! - want)).toBeLessThan(1e-6);
    }
    for (const t of [base, r]) { t.logits.dispose(); t.cache.dispose(); }
    const plain = model.forward(x).dataSync();
    expect(maxAbs(model.withHooks(softPagHooks(model, [{ layer: 0, head: 1 }], 0), () => model.forward(x).dataSync()), plain)).toBeLessThan(1e-5);
    // s = 1 on every head of every layer is each token attending to itself.
    const everyHead = [0, 1].flatMap((layer) => [0, 1, 2, 3].map((head) => ({ layer, head })));
    const pag = model.withHooks(softPagHooks(model, everyHead, 1), () => model.forward(x).dataSync());
    const self = model.withHooks(abpHooks(model, [0, 1], 'self'), () => model.forward(x).dataSync());
    console.log(`SoftPAG s=1 on every head vs ABP 'self': max |Δ| ${maxAbs(pag, self).toExponential(2)}`);
    expect(maxAbs(pag, self)).toBeLessThan(1e-5);
    // Guidance: l + w (l − l_perturbed).
    const heads = [{ layer: 1, head: 0 }];
    const weak = model.withHooks(softPagHooks(model, heads, 0.5), () => model.forward(x).dataSync());
    const g = perturbedGuidance(model, x, heads, { strength: 0.5, scale: 2 }).dataSync();
    expect(maxAbs(g, Float32Array.from(plain, (v, i) => v + 2 * (v - weak[i]!)))).toBeLessThan(1e-5);
    expect(() => softPagHooks(model, [{ layer: 0, head: 4 }])).toThrow(/head 4 is out of range; this model has 4 heads/);
    expect(() => softPagHooks(model, heads, 1.5)).toThrow(/strength must be in \[0, 1\]/);
    model.dispose();
  });

  it('runs the same on wasm as on js', async () => {
    const wasm = await al.initBackend('wasm');
    const outs = [js, wasm].map((b) => {
      const m = randomModel(TINY.gpt2!, b, { seed: 6, std: 0.2 });
      const o = Float32Array.from(m.withHooks(softPagHooks(m, [{ layer: 0, head: 1 }, { layer: 1, head: 2 }], 0.6), () => m.forward(al.tensor(ids, [1, 6], 'i32', { backend: b })).dataSync()));
      m.dispose();
      return o;
    });
    console.log(`SoftPAG s=0.6: max |wasm − js| ${maxAbs(outs[0]!, outs[1]!).toExponential(2)}`);
    expect(maxAbs(outs[0]!, outs[1]!)).toBeLessThan(1e-4);
  }, 60_000);
});

describe.skipIf(!existsSync(`${MODELS}induction/model.safetensors`))('HeadHunter on the induction organism', () => {
  it('greedy rounds pick the brute-force best head, and the heads found break in-context copying', async () => {
    const { model } = await loadModel(`${MODELS}induction`, { backend: 'js' });
    const data = inductionData(8, 77);
    // Objective: the loss on the second repeat (higher = the perturbation hurts copying more).
    const objective = () => inContextLossDrop(model, data).second;
    const r = headHunter(model, objective, { k: 2, strength: 1 });
    const single = [0, 1].flatMap((layer) => [0, 1, 2, 3].map((head) => ({ layer, head, score: model.withHooks(softPagHooks(model, [{ layer, head }], 1), objective) })));
    single.sort((a, b) => b.score - a.score);
    console.log(`second-repeat loss ${r.baseline.toFixed(3)}; single heads at identity: ${single.map((s) => `L${s.layer}H${s.head} ${s.score.toFixed(3)}`).join(', ')}`);
    console.log(`HeadHunter picks: ${r.steps.map((s) => `L${s.head.layer}H${s.head.head} -> ${s.score.toFixed(3)}`).join(', ')}`);
    expect(r.selected[0]).toEqual({ layer: single[0]!.layer, head: single[0]!.head });
    expect(r.steps[0]!.score).toBeCloseTo(single[0]!.score, 6);
    expect(r.steps[1]!.score).toBeGreaterThan(r.baseline + 1);
    model.dispose();
  }, 120_000);
});
