// Every architecture on random weights (no ../shared): padded batches equal sequences alone, the
// KV cache equals a full forward, the optional hook paths (explicit attention, norm scale,
// per-head results) equal the fused ones, and start/stop layers compose.
import { beforeAll, describe, expect, it } from 'vitest';
import * as al from '../src/index.js';
import { randomModel } from '../src/models/random.js';
import { KVCache } from '../src/models/layers/kv-cache.js';
import { Hooks } from '../src/models/hook-point.js';
import type { CausalLM } from '../src/models/model.js';
import { TINY } from './helpers/tiny-configs.js';


function maxRelErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 1;
  let d = 0;
  for (let i = 0; i < b.length; i++) { m = Math.max(m, Math.abs(b[i]!)); d = Math.max(d, Math.abs(a[i]! - b[i]!)); }
  return d / m;
}

const seqA = [3, 14, 15, 9, 26, 5, 35];
const seqB = [8, 9, 7, 9];

describe.each(Object.keys(TINY))('%s', (name) => {
  let model: CausalLM;
  let backend: al.Backend;
  const ids = (rows: number[][]) => al.tensor(rows.flat(), [rows.length, rows[0]!.length], 'i32', { backend });
  const run = (rows: number[][], o: Parameters<CausalLM['forward']>[1] = {}) => {
    const l = model.forward(ids(rows), o);
    const d = l.dataSync();
    l.dispose();
    return d;
  };
  beforeAll(async () => {
    backend = await al.initBackend('js');
    model = randomModel(TINY[name]!, backend, { seed: 7 });
  });

  it('padded batches (left and right) equal each sequence alone', () => {
    const V = model.dims.vocabSize;
    const alone = [seqA, seqB].map((s) => run([s]));
    const T = seqA.length;
    for (const left of [true, false]) {
      const padB = left ? [0, 0, 0, ...seqB] : [...seqB, 0, 0, 0];
      const maskB = left ? [0, 0, 0, 1, 1, 1, 1] : [1, 1, 1, 1, 0, 0, 0];
      const both = run([seqA, padB], { attentionMask: [seqA.map(() => 1), maskB] });
      expect(maxRelErr(both.subarray(0, T * V), alone[0]!)).toBeLessThan(1e-5);
      const off = left ? 3 : 0;
      const err = maxRelErr(both.subarray((T + off) * V, (T + off + seqB.length) * V), alone[1]!);
      expect(err, `${left ? 'left' : 'right'} padding`).toBeLessThan(1e-5);
    }
  });

  it('the KV cache gives the logits of a full forward', () => {
    const V = model.dims.vocabSize;
    const full = run([seqA]);
    const cache = new KVCache();
    const first = run([seqA.slice(0, 4)], { cache });
    const rest = seqA.slice(4).map((t) => run([[t]], { cache }));
    cache.dispose();
    expect(maxRelErr(first, full.subarray(0, 4 * V))).toBeLessThan(1e-5);
    rest.forEach((r, i) => expect(maxRelErr(r, full.subarray((4 + i) * V, (5 + i) * V)), `step ${i}`).toBeLessThan(1e-5));
  });

  it('explicit attention, norm scale and per-head result paths equal the fused ones', () => {
    const plain = run([seqA, seqB.concat([1, 2, 3])], { attentionMask: [seqA.map(() => 1), [1, 1, 1, 1, 1, 0, 1]] });
    const seen: string[] = [];
    const hooks = new Hooks([[/hook_pattern$|hook_scale$|hook_result$/, (_t, h) => { seen.push(h.name); }]]);
    const hooked = run([seqA, seqB.concat([1, 2, 3])], { attentionMask: [seqA.map(() => 1), [1, 1, 1, 1, 1, 0, 1]], hooks });
    const err = maxRelErr(hooked, plain);
    expect(err).toBeLessThan(1e-5);
    expect(seen).toContain('blocks.1.attn.hook_pattern');
    if (model.hookPoints().some((h) => h.name === 'ln_final.hook_scale')) expect(seen).toContain('ln_final.hook_scale');
    expect(seen).toContain('blocks.0.attn.hook_result');
    // Scores asked: the fully explicit path (scores -> mask -> softmax -> P·V).
    const scored = run([seqA, seqB.concat([1, 2, 3])], { attentionMask: [seqA.map(() => 1), [1, 1, 1, 1, 1, 0, 1]], hooks: new Hooks([[/hook_attn_scores$/, () => {}]]) });
    expect(maxRelErr(scored, plain)).toBeLessThan(1e-5);
  });

  it('fires every listed hook point, with the listed shapes, and nothing unlisted', () => {
    const shapes = new Map<string, number[]>();
    const hooks = new Hooks([[() => true, (t, h) => { shapes.set(h.name, [...t.shape]); }]]);
    run([seqA], { hooks });
    const listed = model.hookPointShapes();
    const dims: Record<string, number> = { batch: 1, pos: seqA.length, query_pos: seqA.length, key_pos: seqA.length };
    const fired = new Set(shapes.keys());
    for (const h of listed) {
      if (/experts\.\d+\./.test(h.name) && !fired.has(h.name)) continue; // fires only when the expert gets tokens
      expect(fired.has(h.name), `${h.name} fired`).toBe(true);
      // Dims the model does not fix (routed_tokens) match any size; so does an expert MLP's width
      // (Qwen2-MoE's experts and shared expert have their own, not d_mlp).
      const own = /experts\.\d+\.|shared_expert\./.test(h.name);
      const want = h.shape.map((s, i) => (own && i === h.shape.length - 1 ? -1 : typeof s === 'number' ? s : dims[s] ?? -1));
      const got = shapes.get(h.name)!.map((n, i) => (want[i] === -1 ? -1 : n));
      expect(got, h.name).toEqual(want);
    }
    const listedNames = new Set(listed.map((h) => h.name));
    const extra = [...fired].filter((n) => !listedNames.has(n));
    expect(extra).toEqual([]);
  });

  it('start and stop layers compose to the full forward', () => {
    const full = run([seqA]);
    const mid = model.forward(ids([seqA]), { stopAtLayer: 1 });
    const rest = model.forward(mid, { startAtLayer: 1 });
    expect(maxRelErr(rest.dataSync(), full)).toBeLessThan(1e-6);
    mid.dispose(); rest.dispose();
  });
});

describe('memory', () => {
  it('a forward leaves nothing allocated beyond its logits', async () => {
    const backend = await al.initBackend('js');
    const model = randomModel(TINY.llama!, backend);
    const before = backend.memoryInUse();
    const l = model.forward(al.tensor(seqA, [1, seqA.length], 'i32', { backend }));
    const ids = 4 * seqA.length;
    expect(backend.memoryInUse() - before - ids).toBeLessThanOrEqual(l.size * 4 + 64 * 4 /* rope table */);
    l.dispose();
    model.dispose();
  });
});

describe('mixture of experts without host readback (the path asynchronous backends take)', () => {
  it.each(['mixtral', 'qwen2_moe'])('%s: dense routing on the device equals routed experts', async (name) => {
    const js = await al.initBackend('js');
    // The reference backend, presented as asynchronous: the MoE layer must not read routing back.
    const asyncJs = Object.create(js, { synchronous: { value: false } }) as al.Backend;
    const routed = randomModel(TINY[name]!, js, { seed: 5 });
    const dense = randomModel(TINY[name]!, asyncJs, { seed: 5 });
    const a = routed.forward(al.tensor(seqA, [1, seqA.length], 'i32', { backend: js }));
    const rows: number[] = [];
    const hooks = new Hooks([[/experts\.\d+\.hook_post$/, (t) => { rows.push(t.shape[0]!); }]]);
    const b = dense.forward(al.tensor(seqA, [1, seqA.length], 'i32', { backend: asyncJs }), { hooks });
    // Every expert ran on every token (the dense path), not only on the routed ones.
    expect(rows.length).toBe(dense.dims.nLayers * dense.dims.nExperts!);
    expect(new Set(rows)).toEqual(new Set([seqA.length]));
    const err = maxRelErr(b.dataSync(), a.dataSync());
    console.log(`${name}: dense vs routed MoE, max rel err ${err.toExponential(2)}`);
    expect(err).toBeLessThan(1e-5);
    a.dispose(); b.dispose(); routed.dispose(); dense.dispose();
  });
});

describe('generateAsync', () => {
  it('gives what generate gives (greedy and sampled), reading logits asynchronously', async () => {
    const js = await al.initBackend('js');
    const model = randomModel(TINY.llama!, js, { seed: 9 });
    for (const o of [{ maxNewTokens: 6 }, { maxNewTokens: 6, temperature: 0.8, topK: 10, seed: 3 }]) {
      const a = al.generate(model, [[3, 1, 4], [5, 9]], o);
      const b = await al.generateAsync(model, [[3, 1, 4], [5, 9]], o);
      expect(b.ids).toEqual(a.ids);
    }
    model.dispose();
  });
});

describe('greedyToken', () => {
  it('is the argmax of the last logits, and frees them', async () => {
    const js = await al.initBackend('js');
    const model = randomModel(TINY.gpt2!, js, { seed: 4 });
    const prompt = [3, 1, 4, 1, 5];
    const want = al.generate(model, [prompt], { maxNewTokens: 1 }).ids[0]!.at(-1);
    const before = js.memoryInUse();
    const logits = model.forward(al.tensor(prompt, [1, prompt.length], 'i32', { backend: js }), { logits: 'last' });
    const grown = js.memoryInUse() - before;
    expect(al.greedyTokenSync(logits)).toBe(want);
    expect(logits.isDisposed).toBe(true);
    expect(js.memoryInUse() - before).toBeLessThan(grown);
    const again = model.forward(al.tensor(prompt, [1, prompt.length], 'i32', { backend: js }), { logits: 'last' });
    expect(await al.greedyToken(again)).toBe(want);
    model.dispose();
  });
});

describe('batched generation', () => {
  it.each(['gpt2', 'llama', 'gpt_neox'])('%s: a left-padded batch generates what each prompt generates alone', async (name) => {
    const js = await al.initBackend('js');
    const model = randomModel(TINY[name]!, js, { seed: 21 });
    const prompts = [[3, 1, 4, 1, 5], [9, 2], [6, 5, 3, 5]];
    const together = al.generate(model, prompts, { maxNewTokens: 6, eosTokenIds: [] });
    prompts.forEach((p, i) => expect(together.ids[i]).toEqual(al.generate(model, [p], { maxNewTokens: 6, eosTokenIds: [] }).ids[0]));
    model.dispose();
  });
});

describe('sliding-window attention (Mistral)', () => {
  const cfg = (window: number, layers = 1) => ({ ...TINY.llama!, model_type: 'mistral', num_hidden_layers: layers, sliding_window: window, max_position_embeddings: 64 });
  const seq = [3, 14, 15, 9, 26, 5, 35, 8, 9, 7];

  it('a one-layer model sees exactly the last `window` tokens (rotary positions are relative)', async () => {
    const js = await al.initBackend('js');
    const model = randomModel(cfg(4), js, { seed: 13 });
    const V = model.dims.vocabSize;
    const full = model.forward(al.tensor(seq, [1, seq.length], 'i32', { backend: js })).dataSync();
    const tail = seq.slice(-4);
    const alone = model.forward(al.tensor(tail, [1, 4], 'i32', { backend: js })).dataSync();
    const err = maxRelErr(full.subarray((seq.length - 1) * V), alone.subarray(3 * V));
    console.log(`sliding window 4: last position vs the last 4 tokens alone, rel err ${err.toExponential(2)}`);
    expect(err).toBeLessThan(1e-5);
    // Without the window the last position sees all ten tokens and differs.
    const open = randomModel(cfg(64), js, { seed: 13 });
    const unwindowed = open.forward(al.tensor(seq, [1, seq.length], 'i32', { backend: js })).dataSync();
    expect(maxRelErr(unwindowed.subarray((seq.length - 1) * V), alone.subarray(3 * V))).toBeGreaterThan(1e-3);
    model.dispose(); open.dispose();
  });

  it('the KV cache gives the windowed full forward, step by step (two layers)', async () => {
    const js = await al.initBackend('js');
    const model = randomModel(cfg(3, 2), js, { seed: 17 });
    const V = model.dims.vocabSize;
    const full = model.forward(al.tensor(seq, [1, seq.length], 'i32', { backend: js })).dataSync();
    const cache = new KVCache();
    model.forward(al.tensor(seq.slice(0, 2), [1, 2], 'i32', { backend: js }), { cache }).dispose();
    for (let i = 2; i < seq.length; i++) {
      const step = model.forward(al.tensor([seq[i]!], [1, 1], 'i32', { backend: js }), { cache }).dataSync();
      expect(maxRelErr(step, full.subarray(i * V, (i + 1) * V)), `position ${i}`).toBeLessThan(1e-5);
    }
    cache.dispose();
    model.dispose();
  });
});
