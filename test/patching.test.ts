// Activation and attribution patching on small random models: the fast activation patching
// (each run starts at the patched layer) equals patching a full forward; attribution patching
// tracks activation patching (correlation printed) and is exact where the metric is linear.
import { beforeAll, describe, expect, it } from 'vitest';
import * as al from '../src/index.js';
import { randomModel } from '../src/models/random.js';
import type { CausalLM } from '../src/models/model.js';
import { activationPatching, attributionPatching, correlation } from '../src/interventions/patching.js';
import { logitDiff } from '../src/interventions/metrics.js';
import { TINY } from './helpers/tiny-configs.js';

let model: CausalLM;
let backend: al.Backend;
const clean = [5, 17, 3, 9, 22, 8, 40, 11];
const corrupt = [5, 17, 3, 30, 22, 8, 40, 11];
const metric = logitDiff(12, 13);

beforeAll(async () => {
  backend = await al.initBackend('js');
  model = randomModel(TINY.gpt2!, backend, { seed: 11, std: 0.1 });
});

const ids = (xs: number[]) => al.tensor(xs, [1, xs.length], 'i32', { backend });

function bruteForce(site: 'resid' | 'heads', layer: number, unit: number): number {
  const name = site === 'resid' ? `blocks.${layer}.hook_resid_pre` : `blocks.${layer}.attn.hook_z`;
  const { logits: kl, cache } = al.runWithCache(model, ids(corrupt), { names: [name] });
  const a = cache.get(name).dataSync();
  const patched = al.runWithHooks(model, ids(clean), {
    hooks: [[name, (t) => {
      const d = Float32Array.from(t.dataSync());
      const [, P, H, D] = [t.shape[0]!, t.shape[1]!, t.shape[2]!, t.shape[3] ?? 1];
      if (site === 'resid') d.set(a.subarray(unit * H, (unit + 1) * H), unit * H);
      else for (let p = 0; p < P; p++) d.set(a.subarray((p * H + unit) * D, (p * H + unit + 1) * D), (p * H + unit) * D);
      return al.tensor(d, [...t.shape], 'f32', { backend });
    }]],
  });
  const cleanLogits = model.forward(ids(clean));
  const v = metric(patched).item() - metric(cleanLogits).item();
  for (const t of [kl, patched, cleanLogits]) t.dispose();
  cache.dispose();
  return v;
}

describe('patching', () => {
  it('activation patching equals patching a full forward, unit by unit', () => {
    for (const site of ['resid', 'heads'] as const) {
      const r = activationPatching(model, ids(clean), ids(corrupt), metric, site);
      const cases = site === 'resid' ? [[0, 3], [1, 3], [1, 6], [0, 2]] : [[0, 2], [1, 1], [1, 0], [0, 0]];
      for (const [l, u] of cases as [number, number][]) {
        const want = bruteForce(site, l, u);
        expect(Math.abs(r.effects[l]![u]! - want), `${site} L${l} unit ${u}`).toBeLessThan(1e-5);
      }
      // Positions the corruption cannot reach (before the changed token) have no effect.
      if (site === 'resid') for (const u of [0, 1, 2]) expect(Math.abs(r.effects[0]![u]!)).toBeLessThan(1e-6);
    }
  });

  it('attribution patching tracks activation patching', () => {
    for (const site of ['resid', 'heads', 'neurons'] as const) {
      const act = activationPatching(model, ids(clean), ids(corrupt), metric, site);
      const att = attributionPatching(model, ids(clean), ids(corrupt), metric, site);
      expect(att.cleanMetric).toBeCloseTo(act.cleanMetric, 4);
      const r = correlation(act, att);
      console.log(`${site}: correlation of attribution with activation patching ${r.toFixed(3)}`);
      expect(r).toBeGreaterThan(0.5);
    }
  });

  it('attribution is close to activation patching at the last block, where little nonlinearity is left', () => {
    const act = activationPatching(model, ids(clean), ids(corrupt), metric, 'resid', { layers: [1] });
    const att = attributionPatching(model, ids(clean), ids(corrupt), metric, 'resid', { layers: [1] });
    const err = Math.max(...Array.from(act.effects[0]!).map((v, i) => Math.abs(v - att.effects[0]![i]!)));
    const scale = Math.max(...Array.from(act.effects[0]!).map(Math.abs));
    console.log(`last-block resid: max |attribution − activation| ${err.toExponential(2)} (effects up to ${scale.toExponential(2)})`);
    expect(err).toBeLessThan(scale);
  });
});
