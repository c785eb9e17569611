// G-ACT, AUSteer and labelled concept directions on planted truths: embeddings written so that the
// per-prompt differences fall in two known clusters (G-ACT recovers them, its probe picks the
// right one per prompt and the hook adds exactly that vector), two dimensions that always move
// together with the contrast (AUSteer's momenta find them first and scale exactly them), and
// labelled tokens whose mean difference is computed by hand; G-ACT's hook on wasm equals js.
import { beforeAll, describe, expect, it } from 'vitest';
import * as al from '../src/index.js';
import { randomModel } from '../src/models/random.js';
import type { CausalLM } from '../src/models/model.js';
import { conceptDirections, conceptIntervention, gact, gactHooks, kMeans } from '../src/interventions/gact.js';
import { activationMomenta, auSteerInterventions, selectAtomicUnits } from '../src/interventions/austeer.js';
import { TINY } from './helpers/tiny-configs.js';

let js: al.Backend;
const HOOK = 'blocks.0.hook_resid_pre'; // the token embedding (Llama: no position term)
const enc = (ids: number[]) => ({ ids, answerStart: 0 });
const A = 40;
const B = 41;
const SA = [3, 4, 5, 6, 7, 8];
const SB = [10, 11, 12, 13, 14, 15];

function embeddingOf(m: CausalLM): { E: Float32Array; D: number; write: (row: number, v: Float32Array) => void } {
  const e = m.parameters().get('model.embed_tokens.weight')!;
  const D = m.dims.dModel;
  return {
    E: Float32Array.from(e.dataSync()), D,
    write: (row, v) => m.backend.write(e.view().buffer, (e.offset + row * D) * 4, new Uint8Array(Float32Array.from(v).buffer)),
  };
}

/** Token A at +10u, B at −10u: differences A − x and B − x fall in two clusters. */
function planted(b: al.Backend): CausalLM {
  const m = randomModel(TINY.llama!, b, { seed: 12, std: 0.3 });
  const { D, write } = embeddingOf(m);
  const u = Float32Array.from({ length: D }, (_, j) => (j % 3 === 0 ? 1 : -0.5) / Math.sqrt(D));
  write(A, u.map((v) => 10 * v));
  write(B, u.map((v) => -10 * v));
  return m;
}
const pairs = [...SA.map((x) => ({ positive: enc([x, A]), negative: enc([x, x]) })), ...SB.map((x) => ({ positive: enc([x, B]), negative: enc([x, x]) }))];

beforeAll(async () => {
  js = await al.initBackend('js');
});

describe('G-ACT', () => {
  it('clusters the planted differences, its probe picks each prompt\'s cluster, and the hook adds that vector', () => {
    const model = planted(js);
    const [g] = gact(model, pairs, { layers: [0], k: 2, hook: 'blocks.{layer}.hook_resid_pre', seed: 1 });
    const cA = g!.assign[0]!;
    expect(g!.assign).toEqual([...SA.map(() => cA), ...SB.map(() => 1 - cA)]);
    // Each vector is the mean of its pairs' differences, by hand from the embedding table.
    const { E, D } = embeddingOf(model);
    const want = Float32Array.from({ length: D }, (_, j) => SA.reduce((s, x) => s + E[A * D + j]! - E[x * D + j]!, 0) / SA.length);
    expect(Math.max(...g!.vectors[cA]!.map((v, j) => Math.abs(v - want[j]!)))).toBeLessThan(1e-5);
    console.log(`probe train accuracy ${g!.probe.trainAccuracy}`);
    expect(g!.probe.trainAccuracy).toBe(1);
    // At inference, on a B-concept prompt the hook adds strength × the B vector at every position.
    const picks: number[] = [];
    const ids = [12, 12];
    const x = al.tensor(ids, [1, 2], 'i32', { backend: js });
    const { logits, cache } = al.runWithCache(model, x, { names: [HOOK], hooks: gactHooks([g!], 2, (_l, _r, c) => picks.push(c)) });
    const got = cache.get(HOOK).dataSync();
    expect(picks).toEqual([1 - cA]);
    for (let p = 0; p < 2; p++) for (let j = 0; j < D; j++) expect(got[p * D + j]!).toBeCloseTo(E[12 * D + j]! + 2 * g!.vectors[1 - cA]![j]!, 5);
    logits.dispose(); cache.dispose();
    expect(() => gact(model, pairs.slice(0, 1), { layers: [0], k: 2 })).toThrow(/1 pairs cannot make 2 clusters/);
    model.dispose();
  });

  it('k-means recovers separated groups; G-ACT hooks on wasm equal js', async () => {
    const rows = [[0, 0], [0.1, 0], [0, 0.1], [5, 5], [5.1, 5], [5, 5.2]].map((r) => Float32Array.from(r));
    const { assign } = kMeans(rows, 2, 3);
    expect(new Set(assign.slice(0, 3)).size).toBe(1);
    expect(assign[3]).not.toBe(assign[0]);
    const wasm = await al.initBackend('wasm');
    const outs = [js, wasm].map((b) => {
      const m = planted(b);
      const g = gact(m, pairs, { layers: [1], k: 2, seed: 1 });
      const o = Float32Array.from(m.withHooks(gactHooks(g, 1.5), () => m.forward(al.tensor([3, 9, 12], [1, 3], 'i32', { backend: b })).dataSync()));
      m.dispose();
      return o;
    });
    let err = 0;
    for (let i = 0; i < outs[0]!.length; i++) err = Math.max(err, Math.abs(outs[0]![i]! - outs[1]![i]!));
    console.log(`G-ACT at block 1: max |wasm − js| ${err.toExponential(2)}`);
    expect(err).toBeLessThan(1e-3);
  }, 60_000);
});

describe('AUSteer', () => {
  it('the planted dimensions have momentum ±1, come first, and only they are scaled by 1 + αβ', () => {
    const model = randomModel(TINY.llama!, js, { seed: 13, std: 0.3 });
    const { E, D, write } = embeddingOf(model);
    // 16 pairs: an ordinary dimension agrees in sign on all of them with probability 2⁻¹⁵.
    const pos = Array.from({ length: 16 }, (_, i) => 20 + i);
    const neg = Array.from({ length: 16 }, (_, i) => 40 + i);
    // Positives: dim 5 above every negative, dim 9 below every negative.
    for (const t of pos) { const r = E.slice(t * D, (t + 1) * D); r[5] = 3; r[9] = -3; write(t, r); }
    for (const t of neg) { const r = E.slice(t * D, (t + 1) * D); r[5] = -3; r[9] = 3; write(t, r); }
    const cp = pos.map((p, i) => ({ positive: enc([1, p]), negative: enc([1, neg[i]!]) }));
    const units = activationMomenta(model, cp, [HOOK]);
    // Hand check of one ordinary dimension's β.
    const d0 = pos.map((p, i) => E[p * D]! - E[neg[i]! * D]!);
    const up = d0.filter((v) => v > 0).length;
    const down = d0.filter((v) => v < 0).length;
    expect(units[0]!.beta).toBeCloseTo((up < down ? -1 : 1) * Math.max(up, down) / 16, 6);
    const top = selectAtomicUnits(units, 2);
    console.log('AUSteer top units:', top.map((u) => `${u.hook}[${u.dim}] β ${u.beta}`).join(', '));
    expect(top.map((u) => [u.dim, u.beta])).toEqual([[5, 1], [9, -1]]);
    const list = auSteerInterventions(top, 0.5);
    expect(list.map((i) => (i as { factor: number }).factor).sort()).toEqual([0.5, 1.5]);
    const x = al.tensor([1, 33], [1, 2], 'i32', { backend: js });
    const plain = al.runWithCache(model, x, { names: [HOOK] });
    const a = Float32Array.from(plain.cache.get(HOOK).dataSync());
    const steered = al.withInterventions(model, list, () => al.runWithCache(model, x, { names: [HOOK] }));
    const b = steered.cache.get(HOOK).dataSync();
    for (let i = 0; i < a.length; i++) {
      const j = i % D;
      expect(b[i]).toBeCloseTo(j === 5 ? 1.5 * a[i]! : j === 9 ? 0.5 * a[i]! : a[i]!, 6);
    }
    for (const r of [plain, steered]) { r.logits.dispose(); r.cache.dispose(); }
    expect(() => activationMomenta(model, [], [HOOK])).toThrow(/contrastive set is empty/);
    model.dispose();
  });
});

describe('concept directions from a labelled set', () => {
  it('each label\'s direction is its mean minus the mean of the rest, and injects as an add intervention', () => {
    const model = randomModel(TINY.llama!, js, { seed: 14, std: 0.3 });
    const { E, D } = embeddingOf(model);
    const items = [[3, 'force'], [4, 'force'], [5, 'energy'], [6, 'energy'], [7, 'energy'], [8, 'heat']].map(([t, l]) => ({ text: enc([t as number]), label: l as string }));
    const dirs = conceptDirections(model, items, HOOK);
    const mean = (ts: number[], j: number) => ts.reduce((s, t) => s + E[t * D + j]!, 0) / ts.length;
    const want = Float32Array.from({ length: D }, (_, j) => mean([5, 6, 7], j) - mean([3, 4, 8], j));
    expect(Math.max(...dirs.get('energy')!.map((v, j) => Math.abs(v - want[j]!)))).toBeLessThan(1e-5);
    expect([...dirs.keys()].sort()).toEqual(['energy', 'force', 'heat']);
    const iv = conceptIntervention(dirs.get('energy')!, HOOK, 4, 'energy');
    const x = al.tensor([9], [1, 1], 'i32', { backend: js });
    const r = al.withInterventions(model, [iv], () => al.runWithCache(model, x, { names: [HOOK] }));
    const got = r.cache.get(HOOK).dataSync();
    for (let j = 0; j < D; j++) expect(got[j]).toBeCloseTo(E[9 * D + j]! + 4 * want[j]!, 5);
    r.logits.dispose(); r.cache.dispose();
    expect(() => conceptDirections(model, items.slice(0, 2), HOOK)).toThrow(/at least two labels/);
    model.dispose();
  });
});
