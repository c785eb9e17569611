// MoE experts (MoTE): fTRI finds an expert planted to fire on one set of prompts only; switching
// it off removes it from every routing, forcing it puts it in every routing; the interventions
// are plain JSON and run the same on wasm as on the js reference.
import { beforeAll, describe, expect, it } from 'vitest';
import * as al from '../src/index.js';
import { randomModel } from '../src/models/random.js';
import type { CausalLM } from '../src/models/model.js';
import { deactivateExperts, expertActivationRates, forceExperts, ftri } from '../src/interventions/experts.js';
import { interventionsToJSON, parseInterventions } from '../src/interventions/intervention.js';
import { TINY } from './helpers/tiny-configs.js';

const A = 20;
const B = 21;
// The same prompts with A in one set and B in the other.
const base = [[5, 0, 9, 0, 30, 0, 2, 0], [7, 0, 11, 0, 40, 0], [0, 13, 0, 44, 0, 3]];
const positive = base.map((p) => p.map((t) => t || A));
const negative = base.map((p) => p.map((t) => t || B));
let js: al.Backend;

/** A random Mixtral whose layer-0 router sends token A (embedding +10u) to expert 3 and token B (−10u) never there. */
function planted(b: al.Backend): CausalLM {
  const m = randomModel(TINY.mixtral!, b, { seed: 9, std: 0.2 });
  const p = m.parameters();
  const emb = p.get('model.embed_tokens.weight')!;
  const d = m.dims.dModel;
  const u = Float32Array.from({ length: d }, (_, j) => (j % 2 === 0 ? 1 : -1) / Math.sqrt(d));
  const put = (t: al.Tensor, row: number, v: Float32Array) => b.write(t.view().buffer, (t.offset + row * d) * 4, new Uint8Array(v.buffer));
  put(emb, A, u.map((x) => 10 * x));
  put(emb, B, u.map((x) => -10 * x));
  put(p.get('model.layers.0.block_sparse_moe.gate.weight')!, 3, u.map((x) => 50 * x)); // [n_experts, d_model]
  return m;
}

beforeAll(async () => {
  js = await al.initBackend('js');
});

describe('MoE experts: fTRI, deactivation, forcing', () => {
  it('fTRI ranks the planted expert first in its layer, with rates counted by hand', () => {
    const model = planted(js);
    const r = ftri(model, positive, negative);
    console.log('fTRI top 4:', r.ranking.slice(0, 4).map((e) => `L${e.layer}E${e.expert} ${e.positive.toFixed(3)} − ${e.negative.toFixed(3)} = ${e.diff.toFixed(3)}`).join('; '));
    // In the planted layer the planted expert leads by far (later layers see A's identity too).
    const l0 = r.ranking.filter((e) => e.layer === 0);
    expect(l0[0]).toMatchObject({ layer: 0, expert: 3 });
    expect(l0[0]!.diff).toBeGreaterThan(l0[1]!.diff);
    // The plant itself: every A token goes to expert 3 in layer 0, no B token does.
    for (const [set, tok, has] of [[positive, A, true], [negative, B, false]] as const) {
      for (const pr of set) {
        const { logits, cache } = al.runWithCache(model, al.tensor(pr, [1, pr.length], 'i32', { backend: js }), { names: ['blocks.0.mlp.hook_expert_indices'] });
        const idx = cache.get('blocks.0.mlp.hook_expert_indices').dataSync();
        pr.forEach((t, p) => { if (t === tok) expect([idx[2 * p], idx[2 * p + 1]].includes(3)).toBe(has); });
        logits.dispose(); cache.dispose();
      }
    }
    // Rates by hand from the routing hook.
    const want = Array.from({ length: 2 }, () => new Array(4).fill(0));
    let n = 0;
    for (const pr of positive) {
      const { logits, cache } = al.runWithCache(model, al.tensor(pr, [1, pr.length], 'i32', { backend: js }), { names: ['blocks.0.mlp.hook_expert_indices', 'blocks.1.mlp.hook_expert_indices'] });
      [0, 1].forEach((l) => { for (const e of cache.get(`blocks.${l}.mlp.hook_expert_indices`).dataSync()) want[l]![e]++; });
      n += pr.length;
      logits.dispose(); cache.dispose();
    }
    expect(r.positive).toEqual(want.map((row) => row.map((c) => c / n)));
    // Each token picks k = 2 experts per layer: rates sum to 2.
    for (const row of r.positive) expect(row.reduce((s, x) => s + x, 0)).toBeCloseTo(2, 6);
    model.dispose();
  });

  it('deactivating the expert removes it from every routing; forcing it adds it to every routing', () => {
    const model = planted(js);
    const off = deactivateExperts(model, [{ layer: 0, expert: 3 }]);
    const on = forceExperts(model, [{ layer: 0, expert: 3 }, { layer: 1, expert: 1 }]);
    // Plain JSON that round-trips.
    expect(parseInterventions(JSON.parse(JSON.stringify(interventionsToJSON([...off, ...on])))).map((x) => x.op)).toEqual(['set', 'set', 'set']);
    const offRates = al.withInterventions(model, off, () => expertActivationRates(model, positive));
    const onRates = al.withInterventions(model, on, () => expertActivationRates(model, negative));
    console.log(`expert L0E3 on the positive set: ${expertActivationRates(model, positive)[0]![3]} -> ${offRates[0]![3]} deactivated; on the negative set forced: ${onRates[0]![3]}, L1E1 ${onRates[1]![1]}`);
    expect(offRates[0]![3]).toBe(0);
    expect(offRates[0]!.reduce((s, x) => s + x, 0)).toBeCloseTo(2, 6);
    expect(onRates[0]![3]).toBe(1);
    expect(onRates[1]![1]).toBe(1);
    expect(() => deactivateExperts(model, [{ layer: 0, expert: 4 }])).toThrow(/expert 4 is out of range; this model has 4 experts/);
    expect(() => forceExperts(model, [{ layer: 2, expert: 0 }])).toThrow(/layer 2 is out of range/);
    expect(() => forceExperts(model, [0, 1, 2].map((expert) => ({ layer: 0, expert })))).toThrow(/more than the 2 each token uses/);
    model.dispose();
  });

  it('deactivation and forcing on wasm equal the js reference', async () => {
    const wasm = await al.initBackend('wasm');
    const mj = planted(js);
    const mw = planted(wasm);
    const ids = [A, 5, 9, B, 30, 2, A];
    for (const list of [deactivateExperts(mj, [{ layer: 0, expert: 3 }, { layer: 1, expert: 0 }]), forceExperts(mj, [{ layer: 1, expert: 2 }])]) {
      const a = al.withInterventions(mj, list, () => mj.forward(al.tensor(ids, [1, ids.length], 'i32', { backend: js })).dataSync());
      const b = al.withInterventions(mw, list, () => mw.forward(al.tensor(ids, [1, ids.length], 'i32', { backend: wasm })).dataSync());
      let err = 0;
      for (let i = 0; i < a.length; i++) err = Math.max(err, Math.abs(a[i]! - b[i]!));
      console.log(`${list[0]!.name}: max |wasm − js| ${err.toExponential(2)}`);
      expect(err).toBeLessThan(1e-4);
    }
    mj.dispose();
    mw.dispose();
  }, 60_000);
});
