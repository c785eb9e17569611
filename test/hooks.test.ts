// The hook API: runWithCache keeps only what was asked (and only asked positions), runWithHooks
// replaces activations, scoped hooks are removed afterwards, generation hooks see each step with
// its position, the ActivationCache's residual analyses add up, and bad hooks give clear errors.
import { beforeAll, describe, expect, it } from 'vitest';
import * as al from '../src/index.js';
import { randomModel } from '../src/models/random.js';
import type { CausalLM } from '../src/models/model.js';
import { TINY } from './helpers/tiny-configs.js';

let model: CausalLM;
let gpt2: CausalLM;
let backend: al.Backend;
const ids = (xs: number[]) => al.tensor(xs, [1, xs.length], 'i32', { backend });
const seq = [3, 1, 4, 1, 5, 9, 2, 6];

beforeAll(async () => {
  backend = await al.initBackend('js');
  model = randomModel(TINY.llama!, backend, { seed: 3 });
  gpt2 = randomModel(TINY.gpt2!, backend, { seed: 4 });
});

const maxDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
};

describe('hook points', () => {
  it('are derived from what the model fires: declared shapes, in firing order, persistent hooks left out', () => {
    const listed = model.hookPoints();
    const fired: string[] = [];
    const out = model.withHooks([[() => true, (_t, h) => { fired.push(h.name); }]], () => model.hookPoints());
    expect(fired).toEqual([]); // the recording run does not call the model's own hooks
    expect(out).toEqual(listed);
    expect(listed[0]).toEqual({ name: 'hook_embed', shape: ['batch', 'pos', 'd_model'] });
    expect(listed.find((h) => h.name === 'blocks.1.attn.hook_rot_k')?.shape).toEqual(['batch', 'pos', 'kv_head_index', 'd_head']);
    expect(listed.find((h) => h.name === 'blocks.0.mlp.hook_pre_linear')?.shape).toEqual(['batch', 'pos', 'd_mlp']);
    expect(gpt2.hookPoints().some((h) => h.name.includes('rot_') || h.name.includes('pre_linear'))).toBe(false);
    expect(new Set(listed.map((h) => h.name)).size).toBe(listed.length);
  });

  it('hand hooks the block index with the name', () => {
    const seen = new Map<string, number | null>();
    al.runWithHooks(model, ids(seq), { hooks: [[/hook_embed$|hook_resid_post$|attn\.hook_z$/, (_t, h) => { seen.set(h.name, h.layer); }]] }).dispose();
    expect(Object.fromEntries(seen)).toEqual({ hook_embed: null, 'blocks.0.attn.hook_z': 0, 'blocks.0.hook_resid_post': 0, 'blocks.1.attn.hook_z': 1, 'blocks.1.hook_resid_post': 1 });
  });
});

describe('runWithCache', () => {
  it('keeps exactly the asked names, and its logits equal a plain forward', () => {
    const plain = model.forward(ids(seq));
    const { logits, cache } = al.runWithCache(model, ids(seq), { names: ['blocks.0.hook_resid_post', 'blocks.1.attn.hook_pattern'] });
    expect(cache.names().sort()).toEqual(['blocks.0.hook_resid_post', 'blocks.1.attn.hook_pattern']);
    // Asking for a pattern switches that layer from the fused attention op to the explicit path.
    expect(maxDiff(logits.dataSync(), plain.dataSync())).toBeLessThan(1e-5);
    const cheap = al.runWithCache(model, ids(seq), { names: ['blocks.0.hook_resid_post', 'blocks.1.attn.hook_z'] });
    expect(maxDiff(cheap.logits.dataSync(), plain.dataSync())).toBe(0);
    cheap.logits.dispose(); cheap.cache.dispose();
    expect(cache.get('blocks.1.attn.hook_pattern').shape).toEqual([1, 4, 8, 8]);
    expect(cache.bytes()).toBe(4 * (8 * 32 + 4 * 64));
    plain.dispose(); logits.dispose(); cache.dispose();
  });

  it('positions keep only those positions (query positions for patterns)', () => {
    const all = al.runWithCache(model, ids(seq), { names: /hook_resid_pre$|hook_pattern$/ });
    const some = al.runWithCache(model, ids(seq), { names: /hook_resid_pre$|hook_pattern$/, positions: [2, -1] });
    const full = all.cache.get('blocks.1.hook_resid_pre');
    const part = some.cache.get('blocks.1.hook_resid_pre');
    expect(part.shape).toEqual([1, 2, 32]);
    const f = full.dataSync();
    const p = part.dataSync();
    expect(Array.from(p.subarray(0, 32))).toEqual(Array.from(f.subarray(2 * 32, 3 * 32)));
    expect(Array.from(p.subarray(32))).toEqual(Array.from(f.subarray(7 * 32, 8 * 32)));
    expect(some.cache.get('blocks.0.attn.hook_pattern').shape).toEqual([1, 4, 2, 8]);
    for (const r of [all, some]) { r.logits.dispose(); r.cache.dispose(); }
  });

  it('frees everything it kept on dispose', () => {
    const input = ids(seq);
    const before = backend.memoryInUse();
    const r = al.runWithCache(model, input);
    expect(backend.memoryInUse()).toBeGreaterThan(before);
    r.logits.dispose();
    r.cache.dispose();
    expect(backend.memoryInUse()).toBe(before);
  });

  it('an unknown hook name is an error listing what exists', () => {
    expect(() => al.runWithCache(model, ids(seq), { names: ['blocks.0.hook_resid_pree'] })).toThrow(/no hook point named 'blocks.0.hook_resid_pree' \(closest: 'blocks.0.hook_resid_pre'/);
  });
});

describe('ActivationCache analyses', () => {
  it('the decomposed residual sums to the final residual; accumulated residual is the resid_pre stack', () => {
    const { logits, cache } = al.runWithCache(gpt2, ids(seq));
    const { components, labels } = cache.decomposeResid();
    expect(labels).toEqual(['embed', 'pos_embed', '0_attn_out', '0_mlp_out', '1_attn_out', '1_mlp_out']);
    const summed = al.sum(components, 0);
    const err = maxDiff(summed.dataSync(), cache.get('blocks.1.hook_resid_post').dataSync());
    console.log(`residual decomposition max abs error ${err.toExponential(2)}`);
    expect(err).toBeLessThan(1e-4);
    const { resid, labels: l2 } = cache.accumulatedResid();
    expect(l2).toEqual(['0_pre', '1_pre', 'final_post']);
    expect(resid.shape).toEqual([3, 1, 8, 24]);
    // The logit lens of the final residual is the model's logits.
    const lens = cache.logitLens(cache.get('blocks.1.hook_resid_post'));
    expect(maxDiff(lens.dataSync(), logits.dataSync())).toBeLessThan(1e-5);
    summed.dispose(); components.dispose(); resid.dispose(); lens.dispose(); logits.dispose(); cache.dispose();
  });

  it('per-head results sum (plus bias) to the attention output', () => {
    const { logits, cache } = al.runWithCache(gpt2, ids(seq), { names: /blocks\.0\.(attn\.hook_result|hook_attn_out)/ });
    const { results, labels } = cache.stackHeadResults(1);
    expect(labels).toEqual(['L0H0', 'L0H1', 'L0H2']);
    const heads = al.sum(results, 0);
    const bias = (gpt2 as unknown as { blocks: { out: { bias: al.Tensor } }[] }).blocks[0]!.out.bias;
    const total = al.add(heads, bias);
    expect(maxDiff(total.dataSync(), cache.get('blocks.0.hook_attn_out').dataSync())).toBeLessThan(1e-5);
    for (const t of [results, heads, total, logits]) t.dispose();
    cache.dispose();
  });
});

describe('runWithHooks and scoped hooks', () => {
  it('zero-ablating an MLP changes the output; returning the activation itself changes nothing', () => {
    const plain = model.forward(ids(seq));
    const same = al.runWithHooks(model, ids(seq), { hooks: [['blocks.0.hook_mlp_out', (t) => t]] });
    expect(maxDiff(same.dataSync(), plain.dataSync())).toBe(0);
    const ablated = al.runWithHooks(model, ids(seq), { hooks: [['blocks.0.hook_mlp_out', (t) => al.zeros(t.shape, t.dtype, { backend: t.backend })]] });
    expect(maxDiff(ablated.dataSync(), plain.dataSync())).toBeGreaterThan(1e-3);
    // The same ablation done by hand: resid_mid flows on unchanged into block 1.
    const byHand = al.runWithHooks(model, ids(seq), { hooks: [['blocks.0.hook_resid_post', (_t) => undefined]] });
    expect(maxDiff(byHand.dataSync(), plain.dataSync())).toBe(0);
    for (const t of [plain, same, ablated, byHand]) t.dispose();
  });

  it('a hook that returns another shape or dtype is an error naming the hook and both shapes', () => {
    expect(() => al.runWithHooks(model, ids(seq), { hooks: [['blocks.0.hook_resid_pre', () => al.zeros([1, 8, 31], 'f32', { backend })]] }))
      .toThrow(/hook at 'blocks.0.hook_resid_pre' returned f32\[1, 8, 31\]; the activation is f32\[1, 8, 32\]/);
    expect(() => al.runWithHooks(model, ids(seq), { hooks: [['blocks.0.hook_resid_pre', (t) => t.cast('f16')]] })).toThrow(/dtype f16/);
  });

  it('read-only hooks: editsAt tells them from hooks that may replace; a read-only one that replaces is an error', () => {
    const read = () => {};
    const h = new al.Hooks().add(/hook_resid_post$/, read, { readOnly: true }).add('blocks.1.hook_resid_pre', (t) => t);
    expect(h.wants('blocks.0.hook_resid_post')).toBe(true);
    expect(h.editsAt('blocks.0.hook_resid_post')).toBe(false);
    expect(h.editsAt('blocks.1.hook_resid_pre')).toBe(true);
    expect(h.editsAt('blocks.0.hook_resid_pre')).toBe(false);
    expect(new al.Hooks().addBackward('blocks.0.hook_resid_pre', () => {}).editsAt('blocks.0.hook_resid_pre')).toBe(true); // the tape
    expect(al.Hooks.merge(h, new al.Hooks()).editsAt('blocks.0.hook_resid_post')).toBe(false);
    h.remove(read);
    expect(h.wants('blocks.0.hook_resid_post')).toBe(false);
    const liar = new al.Hooks().add('blocks.0.hook_resid_post', (t) => al.mul(t, 2), { readOnly: true });
    expect(() => model.forward(ids(seq), { hooks: liar })).toThrow(/hook at 'blocks.0.hook_resid_post' was added as read-only but returned a replacement/);
    // one function added twice, read-only at one site and editable at another: each entry keeps its own kind
    const double = (t: al.Tensor) => al.mul(t, 2);
    const both = new al.Hooks().add('blocks.0.hook_resid_post', double, { readOnly: true }).add('blocks.1.hook_resid_pre', double);
    expect(both.editsAt('blocks.1.hook_resid_pre')).toBe(true);
    expect(both.editsAt('blocks.0.hook_resid_post')).toBe(false);
    const edited = new al.Hooks().add('blocks.1.hook_resid_pre', double);
    const asEdit = model.forward(ids(seq), { hooks: edited }).dataSync();
    const plain = model.forward(ids(seq)).dataSync();
    expect(maxDiff(asEdit, plain)).toBeGreaterThan(1e-4);
    const twice = new al.Hooks().add('blocks.0.hook_resid_pre', double, { readOnly: true }).add('blocks.1.hook_resid_pre', double);
    expect(() => model.forward(ids(seq), { hooks: twice })).toThrow(/hook at 'blocks.0.hook_resid_pre' was added as read-only/);
    const editFirst = new al.Hooks().add('blocks.1.hook_resid_pre', double).add('blocks.1.hook_resid_post', double, { readOnly: true });
    expect(() => model.forward(ids(seq), { hooks: editFirst })).toThrow(/hook at 'blocks.1.hook_resid_post' was added as read-only/);
  });

  it('withHooks applies to every call inside and is removed after, also after a throw', () => {
    const plain = model.forward(ids(seq)).dataSync();
    const ablate: [string, al.HookFn] = ['blocks.1.hook_attn_out', (t) => al.mul(t, 0)];
    const inside = model.withHooks([ablate], () => model.forward(ids(seq)).dataSync());
    expect(maxDiff(inside, plain)).toBeGreaterThan(1e-4);
    expect(() => model.withHooks([ablate], () => { throw new Error('boom'); })).toThrow('boom');
    expect(maxDiff(model.forward(ids(seq)).dataSync(), plain)).toBe(0);
  });

  it('generation hooks see every step with its position', () => {
    const seen: [number, number][] = [];
    al.generate(model, [[3, 1, 4]], { maxNewTokens: 4, hooks: new al.Hooks([['blocks.0.hook_resid_pre', (t, h) => { seen.push([h.position, t.shape[1]!]); }]]) });
    expect(seen).toEqual([[0, 3], [3, 1], [4, 1], [5, 1]]);
  });

  it('a hook-steered generation differs from the plain one and equals steering by hand', () => {
    const steer = (t: al.Tensor) => al.add(t, 3);
    const a = al.generate(model, [[3, 1, 4]], { maxNewTokens: 5, hooks: new al.Hooks([['blocks.1.hook_resid_pre', steer]]) });
    const b = model.withHooks([['blocks.1.hook_resid_pre', steer]], () => al.generate(model, [[3, 1, 4]], { maxNewTokens: 5 }));
    const plain = al.generate(model, [[3, 1, 4]], { maxNewTokens: 5 });
    expect(a.ids).toEqual(b.ids);
    expect(a.ids).not.toEqual(plain.ids);
  });
});
