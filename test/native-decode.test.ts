// Decode steps as one native call (Backend.fusedDecode: an ONNX Runtime session per run of blocks,
// the KV cache the model's own) against the same model stepped op by op (the policy's decode off),
// with the error printed: greedy generation over a cache filled by a prompt (a first call of several
// positions over an empty cache, then one position per step) for f32 weights and GGUF files made
// from them (Q8_0, Q4_0, Q4_K with Q6_K), both fed the op-by-op path's tokens: token ids equal
// wherever the choice is clear by more than the difference, logits and cache contents within the
// budget (the final norm and a quantized unembedding in the same call, but for a hook at ln_final or
// an editing one at the last hook_resid_post); read-only hooks at hook_resid_post see the same tensors; a hook that edits inside a block
// runs that block op by op (and the rest fused) with the op-by-op result; a batch of two under a mask
// of ones fuses; a quantized cache and a padded batch decline.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import '../src/backends/index.js';
import { createJsBackend } from '../src/backends/js/backend.js';
import { createWasmBackend, type WasmBackend } from '../src/backends/wasm/backend.js';
import type { NativeGemm } from '../src/backends/wasm/native-gemm.js';
import type { DecodeCall } from '../src/io/native-decode.js';
import { convertToGguf } from '../src/formats/gguf-convert.js';
import type { GgmlTypeName } from '../src/formats/gguf-quants.js';
import { tensorWeights } from '../src/formats/weight-source.js';
import { NodeFileStore } from '../src/io/node/file-store.js';
import { loadNativeGemm } from '../src/io/node/native-gemm.js';
import { KVCache } from '../src/models/layers/kv-cache.js';
import { KVCacheQuant } from '../src/models/kvquant/cache.js';
import { loadModel } from '../src/models/load.js';
import type { CausalLM } from '../src/models/model.js';
import { Hooks, type HookFn } from '../src/models/hook-point.js';
import { randomModel } from '../src/models/random.js';
import { scalar, tensor } from '../src/ops/creation.js';
import { mul } from '../src/ops/elementwise.js';

const load = loadNativeGemm(2);
const available = load.gemm !== null;
if (!available) console.log(`native decode tests skipped: ${(load as { reason: string }).reason}`);

// d_model a multiple of 256, so that the K-quants' super-blocks fit
const CONFIG = { model_type: 'gpt2', n_embd: 256, n_head: 4, n_layer: 3, n_positions: 64, n_inner: 512, vocab_size: 97, layer_norm_epsilon: 1e-5 };
const PROMPT = [3, 41, 7, 88, 19];
const STEPS = 14; // past 16 positions: the cache and its mirror grow

interface Trace { ids: number[]; logits: Float32Array[]; cache: Float32Array[]; resid: Float32Array[] }

/**
 * Greedy decoding over a KV cache: the prompt in one call, then STEPS single positions, each the
 * previous step's best token, or `forced`'s (so that two paths compared see the same inputs).
 */
function generate(model: CausalLM, hooks?: Hooks, forced?: readonly number[]): Trace {
  const be = model.backend;
  const kv = new KVCache();
  const out: Trace = { ids: [], logits: [], cache: [], resid: [] };
  let input = PROMPT;
  for (let s = 0; s <= STEPS; s++) {
    const t = tensor(input, [1, input.length], 'i32', { backend: be });
    const l = model.forward(t, { cache: kv, logits: 'last', hooks });
    const v = l.dataSync() as Float32Array;
    t.dispose();
    l.dispose();
    out.logits.push(Float32Array.from(v));
    let best = 0;
    for (let i = 1; i < v.length; i++) if (v[i]! > v[best]!) best = i;
    out.ids.push(best);
    input = [forced?.[s] ?? best];
  }
  // every layer's cached keys and values [2, 1, heads, length, d_head]
  for (let l = 0; l < CONFIG.n_layer; l++) {
    const all = kv.reserve(l, [1, CONFIG.n_head, 0, CONFIG.n_embd / CONFIG.n_head], 'f32', be);
    const used = all.narrow(3, 0, kv.length);
    out.cache.push(Float32Array.from(used.dataSync() as Float32Array));
    used.dispose();
  }
  kv.dispose();
  return out;
}

/** The best logit's lead over the second. */
function margin(l: Float32Array): number {
  const [a, b] = [...l].sort((x, y) => y - x);
  return a! - b!;
}

function maxAbs(l: Float32Array): number {
  return l.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
}

/** max |a − b| over max |b|, over every pair of arrays. */
function relErr(a: Float32Array[], b: Float32Array[]): number {
  expect(a.length).toBe(b.length);
  let d = 0;
  let m = 0;
  a.forEach((x, j) => {
    const y = b[j]!;
    expect(x.length).toBe(y.length);
    for (let i = 0; i < y.length; i++) { d = Math.max(d, Math.abs(x[i]! - y[i]!)); m = Math.max(m, Math.abs(y[i]!)); }
  });
  return d / m;
}

describe.skipIf(!available)('decode steps as one native call', () => {
  let fused: WasmBackend;
  let plain: WasmBackend;
  let tmp: string;
  /** Each native decode call: blocks, past positions, new positions, and whether the final norm and unembedding were in it. */
  const calls: { n: number; past: number; pos: number; head: boolean }[] = [];
  beforeAll(async () => {
    const inner = load.gemm!;
    const gemm: NativeGemm = Object.assign(Object.create(inner) as NativeGemm, {
      decode: (c: DecodeCall) => { const done = inner.decode!(c); if (done) calls.push({ n: c.blocks.length, past: c.past, pos: c.pos, head: !!c.head }); return done; },
    });
    // every quantized product on MatMulNBits on both sides, so that both round activations alike
    fused = await createWasmBackend({ threads: 2, nativeGemm: gemm, nativeGemmPolicy: { minQuantMacs: 0, decodeF32: true } });
    plain = await createWasmBackend({ threads: 2, nativeGemm: loadNativeGemm(2).gemm!, nativeGemmPolicy: { minQuantMacs: 0, decode: false } });
    tmp = await mkdtemp(join(tmpdir(), 'actlab-native-decode-'));
  });
  afterAll(async () => {
    fused.dispose();
    plain.dispose();
    await rm(tmp, { recursive: true, force: true });
  });

  /** The model on both backends: f32 random weights, or a GGUF of them in `type` (with `typeFor`'s exceptions). */
  async function pair(type?: GgmlTypeName, typeFor?: (name: string) => GgmlTypeName | undefined): Promise<[CausalLM, CausalLM, CausalLM?]> {
    if (!type) return [randomModel(CONFIG, fused, { seed: 4, std: 0.05 }), randomModel(CONFIG, plain, { seed: 4, std: 0.05 })];
    const path = join(tmp, `gpt2-${type}.gguf`);
    const src = randomModel(CONFIG, plain, { seed: 4, std: 0.05 });
    const params = new Map([...src.parameters()].filter(([n]) => !n.startsWith('lm_head')).map(([n, t]) => [n.startsWith('transformer.') ? n : `transformer.${n}`, t]));
    await convertToGguf(new NodeFileStore(), path, tensorWeights(params), CONFIG, plain, { type, typeFor, metadata: { 'general.name': 'gpt2' } });
    src.dispose();
    // and on the js reference (blocks dequantized, f32 activations)
    return [(await loadModel(path, { backend: fused })).model, (await loadModel(path, { backend: plain })).model, (await loadModel(path, { backend: createJsBackend() })).model];
  }

  // f32: the same products in another order. Quantized: MatMulNBits rounds each block of 32
  // activations to 8 bits, so an f32 difference of an ulp before a product (ORT's LayerNorm against
  // the wasm kernel's) can move a code by one step: the two paths then differ by about that
  // rounding, which the js reference (f32 activations) shows for each of them.
  const cases: [string, GgmlTypeName | undefined, ((n: string) => GgmlTypeName | undefined) | undefined, number][] = [
    ['f32', undefined, undefined, 1e-4],
    ['Q8_0', 'Q8_0', undefined, 5e-2],
    ['Q4_0', 'Q4_0', undefined, 5e-2],
    // Q4_K_M's mix: the attention output and MLP output in Q6_K
    ['Q4_K + Q6_K', 'Q4_K', (n) => (/attn_output|ffn_down/.test(n) ? 'Q6_K' : undefined), 5e-2],
  ];
  for (const [name, type, typeFor, budget] of cases) {
    it(`${name}: greedy generation gives the op-by-op tokens, logits and KV cache`, { timeout: 120_000 }, async () => {
      const [a, b, ref] = await pair(type, typeFor);
      const want = generate(b);
      calls.length = 0;
      const got = generate(a, undefined, want.ids);
      const eLogits = relErr(got.logits, want.logits);
      const eCache = relErr(got.cache, want.cache);
      console.log(`${name}: ${calls.length} native decode calls; logits max |fused - op by op| / max |logit| = ${eLogits.toExponential(2)}, KV cache ${eCache.toExponential(2)} (budget ${budget})`);
      // the prompt over an empty cache (its last position's logits apart), then every step: all
      // blocks in one call each, with the final norm and the unembedding where that is quantized
      expect(calls).toEqual([{ n: 3, past: 0, pos: PROMPT.length, head: false }, ...Array.from({ length: STEPS }, (_, s) => ({ n: 3, past: PROMPT.length + s, pos: 1, head: !!type }))]);
      // the same token wherever the op-by-op choice is clear by more than twice the difference
      want.ids.forEach((id, s) => { if (margin(want.logits[s]!) > 2 * eLogits * maxAbs(want.logits[s]!)) expect(got.ids[s]).toBe(id); });
      expect(eLogits).toBeLessThan(budget);
      expect(eCache).toBeLessThan(budget);
      if (ref) {
        // both against the js reference: the fused step is no further from it than twice the op-by-op one
        const exact = generate(ref, undefined, want.ids);
        const [eFused, eOps] = [relErr(got.logits, exact.logits), relErr(want.logits, exact.logits)];
        console.log(`${name}: logits vs the js reference (f32 activations): fused ${eFused.toExponential(2)}, op by op ${eOps.toExponential(2)}`);
        expect(eFused).toBeLessThan(2 * eOps + 1e-4);
        ref.dispose();
      }
      a.dispose();
      b.dispose();
    });
  }

  it('by default, steps of fewer than minRows rows over f32 weights run op by op; a prompt of more is one call', { timeout: 120_000 }, async () => {
    const [a, b] = await pair();
    const want = generate(b);
    const pol = fused.native.policy;
    const minRows = pol.minRows;
    pol.decodeF32 = false;
    pol.minRows = PROMPT.length; // the prompt's rows count as a product large enough, a step's one row not
    calls.length = 0;
    try {
      const got = generate(a, undefined, want.ids);
      expect(calls).toEqual([{ n: 3, past: 0, pos: PROMPT.length, head: false }]);
      const e = relErr(got.logits, want.logits);
      console.log(`f32, steps op by op: logits max |difference| / max |logit| = ${e.toExponential(2)}`);
      expect(e).toBeLessThan(1e-4);
    } finally {
      pol.decodeF32 = true;
      pol.minRows = minRows;
      a.dispose();
      b.dispose();
    }
  });

  it('read-only hooks at hook_resid_post see the op-by-op residuals; the run is still one call', { timeout: 120_000 }, async () => {
    const [a, b] = await pair();
    const watch = (into: Float32Array[]): Hooks => new Hooks().add(/^blocks\.[01]\.hook_resid_post$/, (t) => { into.push(Float32Array.from(t.dataSync() as Float32Array)); }, { readOnly: true });
    const seenA: Float32Array[] = [];
    const seenB: Float32Array[] = [];
    calls.length = 0;
    const got = generate(a, watch(seenA));
    const want = generate(b, watch(seenB));
    expect(seenA.length).toBe(2 * (STEPS + 1));
    const err = relErr(seenA, seenB);
    console.log(`read-only resid_post hooks: ${seenA.length} tensors, max |fused - op by op| / max = ${err.toExponential(2)}`);
    expect(err).toBeLessThan(1e-4);
    expect(got.ids).toEqual(want.ids);
    expect(calls.length).toBe(STEPS + 1);
    expect(calls.every((c) => c.n === 3)).toBe(true);
    a.dispose();
    b.dispose();
  });

  it('a hook at ln_final or an editing one at the last hook_resid_post keeps the head apart, with the op-by-op result', { timeout: 120_000 }, async () => {
    const [a, b] = await pair('Q8_0');
    const seen: Float32Array[] = [];
    const cases: [string, () => Hooks][] = [
      ['ln_final.hook_normalized (read-only)', () => new Hooks().add('ln_final.hook_normalized', (t) => { seen.push(Float32Array.from(t.dataSync() as Float32Array)); }, { readOnly: true })],
      ['blocks.2.hook_resid_post (editing)', () => new Hooks().add('blocks.2.hook_resid_post', (t) => mul(t, scalar(0.5, 'f32', { backend: t.backend })))],
    ];
    for (const [name, hooks] of cases) {
      calls.length = 0;
      seen.length = 0;
      const got = generate(a, hooks());
      expect(calls.length).toBe(STEPS + 1);
      expect(calls.some((c) => c.head)).toBe(false);
      const n = seen.length;
      const want = generate(b, hooks());
      const err = relErr(got.logits, want.logits);
      console.log(`${name}: head apart in all ${calls.length} calls; logits max |fused - op by op| / max = ${err.toExponential(2)}`);
      expect(err).toBeLessThan(5e-2);
      if (name.startsWith('ln_final')) expect(n).toBe(STEPS + 1);
    }
    a.dispose();
    b.dispose();
  });

  it('a batch of two runs the quantized head in the call and gives the op-by-op logits', { timeout: 120_000 }, async () => {
    const [a, b] = await pair('Q8_0');
    const run = (m: CausalLM) => {
      const kv = new KVCache();
      const out: Float32Array[] = [];
      let input = [[3, 41, 7], [88, 19, 5]];
      for (let s = 0; s < 4; s++) {
        const t = tensor(input.flat(), [2, input[0]!.length], 'i32', { backend: m.backend });
        const l = m.forward(t, { cache: kv, logits: 'last' });
        out.push(Float32Array.from(l.dataSync() as Float32Array));
        t.dispose();
        l.dispose();
        input = [[(s * 13 + 1) % CONFIG.vocab_size], [(s * 29 + 2) % CONFIG.vocab_size]];
      }
      kv.dispose();
      return out;
    };
    calls.length = 0;
    const got = run(a);
    expect(calls).toEqual([{ n: 3, past: 0, pos: 3, head: false }, { n: 3, past: 3, pos: 1, head: true }, { n: 3, past: 4, pos: 1, head: true }, { n: 3, past: 5, pos: 1, head: true }]);
    const err = relErr(got, run(b));
    console.log(`batch of two, Q8_0 head in the call: logits max |fused - op by op| / max = ${err.toExponential(2)}`);
    expect(err).toBeLessThan(5e-2);
    a.dispose();
    b.dispose();
  });

  it('an editing hook inside a block runs that block op by op, the others fused, with the op-by-op result', { timeout: 120_000 }, async () => {
    const [a, b] = await pair();
    const half: HookFn = (t) => mul(t, scalar(0.5, 'f32', { backend: t.backend }));
    const edit = () => new Hooks().add('blocks.1.mlp.hook_post', half);
    calls.length = 0;
    const got = generate(a, edit());
    const want = generate(b, edit());
    const plainRun = generate(b);
    const err = relErr(got.logits, want.logits);
    console.log(`editing hook in block 1: ${calls.length} native calls; logits max |fused - op by op| / max = ${err.toExponential(2)}`);
    expect(calls.length).toBe(2 * (STEPS + 1)); // block 0, then block 2, each step
    expect(calls.every((c) => c.n === 1)).toBe(true);
    expect(err).toBeLessThan(1e-4);
    expect(got.ids).toEqual(want.ids);
    expect(relErr(got.logits, plainRun.logits)).toBeGreaterThan(1e-2); // the edit took effect
    a.dispose();
    b.dispose();
  });

  it('a batch of two under a mask of ones fuses and gives the op-by-op logits; a quantized cache declines', { timeout: 60_000 }, () => {
    const step = (be: WasmBackend, kv: KVCache) => {
      const m = randomModel(CONFIG, be, { seed: 4, std: 0.05 });
      const out: Float32Array[] = [];
      let input = [[3, 41, 7], [88, 19, 5]];
      for (let s = 0; s < 4; s++) {
        const t = tensor(input.flat(), [2, input[0]!.length], 'i32', { backend: be });
        const mask = [Array<number>(kv.length + input[0]!.length).fill(1), Array<number>(kv.length + input[0]!.length).fill(1)];
        const l = m.forward(t, { cache: kv, attentionMask: mask, logits: 'last' });
        out.push(Float32Array.from(l.dataSync() as Float32Array));
        t.dispose();
        l.dispose();
        input = [[(s * 13 + 1) % CONFIG.vocab_size], [(s * 29 + 2) % CONFIG.vocab_size]];
      }
      m.dispose();
      kv.dispose();
      return out;
    };
    calls.length = 0;
    const got = step(fused, new KVCache());
    expect(calls).toEqual([{ n: 3, past: 0, pos: 3, head: false }, { n: 3, past: 3, pos: 1, head: false }, { n: 3, past: 4, pos: 1, head: false }, { n: 3, past: 5, pos: 1, head: false }]);
    const want = step(plain, new KVCache());
    const err = relErr(got, want);
    console.log(`batch of two: logits max |fused - op by op| / max = ${err.toExponential(2)}`);
    expect(err).toBeLessThan(1e-4);
    calls.length = 0;
    step(fused, new KVCacheQuant({ type: 'q8_0' }, fused));
    expect(calls.length).toBe(0);
  });

  it('a padded batch (a mask with zeros) declines: op by op, as before', { timeout: 60_000 }, () => {
    const a = randomModel(CONFIG, fused, { seed: 4, std: 0.05 });
    const kv = new KVCache();
    calls.length = 0;
    const ids = tensor([0, 5, 6, 7, 8, 9], [2, 3], 'i32', { backend: fused });
    a.forward(ids, { cache: kv, attentionMask: [[0, 1, 1], [1, 1, 1]], logits: 'last' }).dispose();
    expect(calls.length).toBe(0);
    const ones = tensor([1, 2], [2, 1], 'i32', { backend: fused });
    a.forward(ones, { cache: kv, attentionMask: [[0, 1, 1, 1], [1, 1, 1, 1]], logits: 'last' }).dispose();
    expect(calls.length).toBe(0);
    ids.dispose();
    ones.dispose();
    kv.dispose();
    a.dispose();
  });
});
