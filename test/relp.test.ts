// Relevance patching (RelP): the LRP rules conserve relevance (Σ h · ∂̃metric/∂h equals the metric
// at every layer of a model without biases, a property the plain gradient lacks), each rule is
// needed for it, forward values are unchanged, and RelP on wasm equals RelP on the js reference.
import { beforeAll, describe, expect, it } from 'vitest';
import * as al from '../src/index.js';
import { randomModel } from '../src/models/random.js';
import type { CausalLM } from '../src/models/model.js';
import { gradAt } from '../src/hooks/grad.js';
import { logitDiff } from '../src/interventions/metrics.js';
import { activationPatching, attributionPatching, correlation } from '../src/interventions/patching.js';
import { LRP_RULES, lrpGradAt, lrpHooks, relevancePatching, type LrpRule } from '../src/interventions/relp.js';
import { initToy } from '../src/organisms/common.js';
import { TINY } from './helpers/tiny-configs.js';

let js: al.Backend;
const clean = [5, 17, 3, 9, 22, 8, 40, 11];
const corrupt = [5, 17, 3, 30, 22, 8, 40, 11];
const metric = logitDiff(12, 13);
const ids = (xs: number[], b: al.Backend) => al.tensor(xs, [1, xs.length], 'i32', { backend: b });

beforeAll(async () => {
  js = await al.initBackend('js');
});

/** Σ h · g at each block's residual input and at the final residual, and the metric. */
function relevanceSums(model: CausalLM, rules: readonly LrpRule[] | null): { sums: number[]; value: number } {
  const L = model.dims.nLayers;
  const names = [...Array.from({ length: L }, (_, l) => `blocks.${l}.hook_resid_pre`), `blocks.${L - 1}.hook_resid_post`];
  const x = ids(clean, model.backend);
  const g = rules ? lrpGradAt(model, x, metric, names, { rules, activations: true }) : gradAt(model, x, metric, names, { activations: true });
  const sums = names.map((n) => al.tidy(() => al.sum(al.mul(g.activations!.get(n)!, g.grads.get(n)!).reshape([-1])).item()));
  for (const t of [...g.grads.values(), ...g.activations!.values()]) t.dispose();
  x.dispose();
  return { sums, value: g.value };
}

const models: [string, () => CausalLM][] = [
  // Gated SiLU MLP, RMSNorm, grouped-query rotary attention, no biases.
  ['llama', () => randomModel(TINY.llama!, js, { seed: 3, std: 0.3, present: /^lm_head/ })],
  // Plain GELU MLP, LayerNorm (weights 1, biases 0), learned positions.
  ['toy (LayerNorm, GELU)', () => initToy({ ...TINY['actlab_toy (MLP, LayerNorm)']!, act_fn: 'gelu' }, js, 4)],
];

describe('RelP', () => {
  for (const [label, make] of models) {
    it(`${label}: relevance is conserved layer by layer under the LRP rules, not under the gradient`, () => {
      const model = make();
      const lrp = relevanceSums(model, LRP_RULES);
      const plain = relevanceSums(model, null);
      const err = Math.max(...lrp.sums.map((s) => Math.abs(s - lrp.value)));
      const errPlain = Math.max(...plain.sums.map((s) => Math.abs(s - plain.value)));
      console.log(`${label}: metric ${lrp.value.toFixed(5)}; Σ h·∂̃ per layer (LRP) ${lrp.sums.map((s) => s.toFixed(5)).join(' ')} (max err ${err.toExponential(2)}); gradient ${plain.sums.map((s) => s.toFixed(5)).join(' ')} (max err ${errPlain.toExponential(2)})`);
      expect(lrp.value).toBeCloseTo(plain.value, 5);
      expect(err).toBeLessThan(1e-3 * Math.max(1, Math.abs(lrp.value)));
      expect(errPlain).toBeGreaterThan(20 * err);
      model.dispose();
    });
  }

  it('each rule is needed for conservation (dropping one breaks it)', () => {
    const model = models[0]![1]();
    for (const drop of LRP_RULES) {
      const r = relevanceSums(model, LRP_RULES.filter((x) => x !== drop));
      const err = Math.max(...r.sums.map((s) => Math.abs(s - r.value)));
      console.log(`without '${drop}': max |Σ h·∂̃ − metric| ${err.toExponential(2)}`);
      expect(err, drop).toBeGreaterThan(1e-3);
    }
    model.dispose();
  });

  it('the rules leave the forward values unchanged', () => {
    const model = models[0]![1]();
    const x = ids(clean, js);
    const a = model.forward(x).dataSync();
    const b = model.withHooks(lrpHooks(model), () => model.forward(x)).dataSync();
    let err = 0;
    for (let i = 0; i < a.length; i++) err = Math.max(err, Math.abs(a[i]! - b[i]!));
    console.log(`max |logits with LRP hooks − logits| ${err.toExponential(2)}`);
    expect(err).toBeLessThan(1e-5);
    model.dispose();
  });

  it('RelP with no rules is attribution patching (correlations with activation patching printed)', () => {
    const model = randomModel(TINY.gpt2!, js, { seed: 11, std: 0.1 });
    for (const site of ['resid', 'heads', 'neurons'] as const) {
      const act = activationPatching(model, ids(clean, js), ids(corrupt, js), metric, site);
      const att = attributionPatching(model, ids(clean, js), ids(corrupt, js), metric, site);
      const none = relevancePatching(model, ids(clean, js), ids(corrupt, js), metric, site, { rules: [] });
      const rel = relevancePatching(model, ids(clean, js), ids(corrupt, js), metric, site);
      none.effects.forEach((row, l) => row.forEach((v, u) => expect(v).toBeCloseTo(att.effects[l]![u]!, 6)));
      // Random weights: no claim about which tracks activation patching better (see the organism test).
      console.log(`random gpt2 ${site}: corr(attribution, activation) ${correlation(act, att).toFixed(3)}, corr(RelP, activation) ${correlation(act, rel).toFixed(3)}`);
      expect(Number.isFinite(correlation(act, rel))).toBe(true);
    }
    model.dispose();
  });

  it('RelP on wasm equals RelP on the js reference', async () => {
    const wasm = await al.initBackend('wasm');
    const mj = randomModel(TINY.qwen2_moe!, js, { seed: 5, std: 0.2 });
    const mw = randomModel(TINY.qwen2_moe!, wasm, { seed: 5, std: 0.2 });
    for (const site of ['resid', 'heads'] as const) {
      const a = relevancePatching(mj, ids(clean, js), ids(corrupt, js), metric, site);
      const b = relevancePatching(mw, ids(clean, wasm), ids(corrupt, wasm), metric, site);
      let err = 0;
      let scale = 0;
      a.effects.forEach((row, l) => row.forEach((v, u) => { err = Math.max(err, Math.abs(v - b.effects[l]![u]!)); scale = Math.max(scale, Math.abs(v)); }));
      console.log(`qwen2_moe ${site}: max |RelP wasm − js| ${err.toExponential(2)} (effects up to ${scale.toExponential(2)})`);
      expect(err).toBeLessThan(1e-3 * Math.max(scale, 1e-3));
    }
    mj.dispose();
    mw.dispose();
  }, 120_000);
});
