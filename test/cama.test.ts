// CAMA and ABP ("All for One"): the context-aware means equal hand-computed means; CAMA where an
// activation depends only on (token, position) changes nothing, deeper it does; ABP 'self' makes
// each position's output that of its token alone; 'peek' leaves the last query the only one that
// sees other tokens; both run the same on wasm as on the js reference.
import { beforeAll, describe, expect, it } from 'vitest';
import * as al from '../src/index.js';
import { randomModel } from '../src/models/random.js';
import { abpHooks, allForOneHooks, CamaTable, camaHooks } from '../src/interventions/cama.js';
import { ablationSweep, type AblationItem } from '../src/interventions/ablation.js';
import { TINY } from './helpers/tiny-configs.js';
import { capture } from './helpers/capture.js';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const FIX = new URL('../fixtures/hf/', import.meta.url).pathname;

let js: al.Backend;
const data = [[1, 5, 9, 4], [1, 5, 7, 4], [1, 6, 9, 3], [1, 6, 7, 4]];
const maxAbs = (a: ArrayLike<number>, b: ArrayLike<number>) => { let m = 0; for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!)); return m; };

beforeAll(async () => {
  js = await al.initBackend('js');
});

describe('CAMA', () => {
  it('the context-aware mean is the mean over the references with that token at that position', () => {
    const model = randomModel(TINY.llama!, js, { seed: 2, std: 0.3 });
    const name = 'blocks.1.hook_resid_pre';
    const table = CamaTable.build(model, data, [name]);
    const acts = data.map((s) => {
      const { logits, cache } = al.runWithCache(model, al.tensor(s, [1, 4], 'i32', { backend: js }), { names: [name] });
      const d = Float32Array.from(cache.get(name).dataSync());
      logits.dispose(); cache.dispose();
      return d;
    });
    const D = model.dims.dModel;
    const row = (i: number, p: number) => acts[i]!.subarray(p * D, (p + 1) * D);
    // Position 2, token 9: sequences 0 and 2.
    const want = Float32Array.from({ length: D }, (_, j) => (row(0, 2)[j]! + row(2, 2)[j]!) / 2);
    expect(maxAbs(table.mean(name, 2, 9), want)).toBeLessThan(1e-6);
    // Token 8 never at position 2: the mean of all four.
    const all = Float32Array.from({ length: D }, (_, j) => [0, 1, 2, 3].reduce((s, i) => s + row(i, 2)[j]!, 0) / 4);
    expect(maxAbs(table.mean(name, 2, 8), all)).toBeLessThan(1e-6);
    expect(() => table.mean(name, 7, 1)).toThrow(/no reference activation .* at position 7/);
    model.dispose();
  });

  it('at the embedding (token and position only) CAMA changes nothing; after a block it does', () => {
    const model = randomModel(TINY.gpt2!, js, { seed: 4, std: 0.2 });
    const ids = [[1, 6, 7, 4]];
    const x = al.tensor(ids[0]!, [1, 4], 'i32', { backend: js });
    const plain = model.forward(x).dataSync();
    for (const [layer, same] of [[0, true], [1, false]] as const) {
      const name = `blocks.${layer}.hook_resid_pre`;
      const table = CamaTable.build(model, data, [name]);
      const out = model.withHooks(camaHooks(table, ids), () => model.forward(x).dataSync());
      const err = maxAbs(out, plain);
      console.log(`CAMA at ${name}: max |Δ logits| ${err.toExponential(2)}`);
      if (same) expect(err).toBeLessThan(1e-5); else expect(err).toBeGreaterThan(1e-3);
    }
    // Only head 1 of hook_z replaced: the other heads keep their values.
    const table = CamaTable.build(model, data, ['blocks.1.attn.hook_z']);
    const { logits, cache } = al.runWithCache(model, x, { names: ['blocks.1.attn.hook_z'], hooks: camaHooks(table, ids, { unit: { heads: [1] } }) });
    const z = cache.get('blocks.1.attn.hook_z').dataSync();
    const { logits: l2, cache: c2 } = al.runWithCache(model, x, { names: ['blocks.1.attn.hook_z'] });
    const z0 = c2.get('blocks.1.attn.hook_z').dataSync();
    const H = model.dims.nHeads;
    const dh = model.dims.dHead;
    const rep = table.mean('blocks.1.attn.hook_z', 3, 4);
    for (let h = 0; h < H; h++) {
      const got = z.subarray((3 * H + h) * dh, (3 * H + h + 1) * dh);
      if (h === 1) expect(maxAbs(got, rep.subarray(h * dh, (h + 1) * dh))).toBeLessThan(1e-6);
      else expect(maxAbs(got, z0.subarray((3 * H + h) * dh, (3 * H + h + 1) * dh))).toBe(0);
    }
    for (const t of [logits, l2]) t.dispose();
    cache.dispose(); c2.dispose();
    model.dispose();
  });
});

describe('CAMA as an ablation method', () => {
  it('ablationSweep --method cama equals CAMA hooks on each item alone (padded batches included)', () => {
    const model = randomModel(TINY.gpt2!, js, { seed: 4, std: 0.2 });
    const items: AblationItem[] = [
      { ids: [1, 5, 9, 4], answer: 12, wrong: 13 },
      { ids: [1, 6, 7], answer: 7, wrong: 12 },
      { ids: [1, 5, 7, 4, 9], answer: 3, wrong: 40 },
    ];
    const r = ablationSweep(model, items, { site: 'heads', method: 'cama', metric: 'logit-diff', layers: [1] });
    const table = CamaTable.build(model, items.map((i) => i.ids), ['blocks.1.attn.hook_z']);
    for (const h of [0, 2]) {
      let want = 0;
      for (const it of items) {
        const l = model.withHooks(camaHooks(table, [it.ids], { unit: { heads: [h] } }), () => model.forward(al.tensor(it.ids, [1, it.ids.length], 'i32', { backend: js })).dataSync());
        const V = model.dims.vocabSize;
        const last = (it.ids.length - 1) * V;
        want += (l[last + it.answer!]! - l[last + it.wrong!]!) / items.length;
      }
      const got = r.effects.find((e) => e.layer === 1 && e.unit === h)!.metric;
      console.log(`CAMA ablation of L1H${h}: sweep ${got.toFixed(6)}, by hand ${want.toFixed(6)} (clean ${r.clean.toFixed(6)})`);
      expect(Math.abs(got - want)).toBeLessThan(1e-4);
    }
    expect(() => ablationSweep(randomModel(TINY.mixtral!, js, { seed: 1 }), items, { site: 'experts', method: 'cama', metric: 'logit-diff' })).toThrow(/CAMA: site 'experts'/);
    model.dispose();
  });

  it('actlab ablate --method cama', async () => {
    const data = join(mkdtempSync(join(tmpdir(), 'actlab-cama-')), 'data.jsonl');
    // The same tokens in different contexts, so the context-aware means differ from each activation.
    writeFileSync(data, [[5, 17, 3, 9], [5, 30, 3, 9], [7, 17, 3, 9, 2]].map((x) => JSON.stringify({ ids: x, answer: 12, wrong: 13 })).join('\n'));
    const r = await capture(['ablate', '--model', `${FIX}llama3`, '--site', 'heads', '--method', 'cama', '--data', data, '--json', '--backend', 'js']);
    expect(r.code, r.err).toBe(0);
    const j = JSON.parse(r.out.trim());
    expect(j.method).toBe('cama');
    expect(j.effects.length).toBeGreaterThan(0);
    expect(j.effects.some((e: { effect: number }) => Math.abs(e.effect) > 0)).toBe(true);
  }, 60_000);
});

describe('ABP', () => {
  it("'self' in every layer makes each position's logits those of its token alone (rotary model)", () => {
    const model = randomModel(TINY.llama!, js, { seed: 5, std: 0.3 });
    const ids = [3, 17, 8, 29, 11];
    const all = [0, 1];
    const out = model.withHooks(abpHooks(model, all, 'self'), () => model.forward(al.tensor(ids, [1, 5], 'i32', { backend: js })).dataSync());
    const V = model.dims.vocabSize;
    let err = 0;
    ids.forEach((t, p) => {
      const alone = model.forward(al.tensor([t], [1, 1], 'i32', { backend: js })).dataSync();
      err = Math.max(err, maxAbs(out.subarray(p * V, (p + 1) * V), alone));
    });
    console.log(`ABP self: max |logits(t) − logits(token t alone)| ${err.toExponential(2)}`);
    expect(err).toBeLessThan(1e-5);
    model.dispose();
  });

  it("'peek': earlier queries see only themselves, the last query sees every token", () => {
    const model = randomModel(TINY.llama!, js, { seed: 5, std: 0.3 });
    const x = al.tensor([3, 17, 8, 29, 11], [1, 5], 'i32', { backend: js });
    const { logits, cache } = al.runWithCache(model, x, { names: ['blocks.1.attn.hook_pattern'], hooks: abpHooks(model, [1], 'peek') });
    const p = cache.get('blocks.1.attn.hook_pattern').dataSync(); // [1, head, 5, 5]
    for (let h = 0; h < model.dims.nHeads; h++) for (let i = 0; i < 5; i++) {
      const row = p.subarray((h * 5 + i) * 5, (h * 5 + i + 1) * 5);
      if (i < 4) expect(Array.from(row)).toEqual([0, 1, 2, 3, 4].map((j) => (j === i ? 1 : 0)));
      else expect(Math.min(...row)).toBeGreaterThan(0);
    }
    logits.dispose(); cache.dispose();
    expect(() => abpHooks(model, [2])).toThrow(/layer 2 is out of range/);
    model.dispose();
  });

  it('All-for-One hooks run the same on wasm as on js', async () => {
    const wasm = await al.initBackend('wasm');
    const ids = [[1, 6, 9, 4]];
    const outs = [js, wasm].map((b) => {
      const model = randomModel({ ...TINY.llama!, num_hidden_layers: 3 }, b, { seed: 8, std: 0.3 });
      const table = CamaTable.build(model, data, ['blocks.1.hook_resid_pre']);
      const o = model.withHooks(allForOneHooks(model, table, ids, 1, 1), () => model.forward(al.tensor(ids[0]!, [1, 4], 'i32', { backend: b })).dataSync());
      model.dispose();
      return Float32Array.from(o);
    });
    const err = maxAbs(outs[0]!, outs[1]!);
    console.log(`All-for-One (CAMA at 1, peek 1, self 2): max |wasm − js| ${err.toExponential(2)}`);
    expect(err).toBeLessThan(1e-4);
  }, 60_000);
});
