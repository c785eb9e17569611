// Whole GPT-2 blocks as one native call (Backend.fusedBlocks / fusedBlock: an ONNX Runtime
// session per run of consecutive blocks) against the js reference backend, with the error
// printed: a plain forward (every block in one call), a cache of the residual stream (one call,
// every residual read out), hooks inside a block (which must not fuse: they fire, with the
// reference's values, and a replacement changes the output as it does op by op), hooks that
// replace a residual between blocks (the run ends there, and the replacement takes effect), and
// one packed copy of the blocks once values inside them are read, and the packed weights dropped
// when the model is freed.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import '../src/backends/index.js';
import { createJsBackend } from '../src/backends/js/backend.js';
import { createWasmBackend, type WasmBackend } from '../src/backends/wasm/backend.js';
import type { BlockCall, ChainCall, NativeGemm } from '../src/backends/wasm/native-gemm.js';
import { loadNativeGemm } from '../src/io/node/native-gemm.js';
import { tensor } from '../src/ops/creation.js';
import { mul } from '../src/ops/elementwise.js';
import { randomModel } from '../src/models/random.js';
import { runWithCache } from '../src/hooks/run.js';
import { Hooks, type HookFn } from '../src/models/hook-point.js';
import type { Backend } from '../src/tensor/backend.js';
import { maxAbsDiffFinite } from './helpers/numeric.js';

const load = loadNativeGemm(2);
const available = load.gemm !== null;
if (!available) console.log(`native block tests skipped: ${(load as { reason: string }).reason}`);

const CONFIG = { model_type: 'gpt2', n_embd: 64, n_head: 4, n_layer: 3, n_positions: 64, vocab_size: 61 };
const T = 40;
const IDS = Array.from({ length: T }, (_, i) => (i * 7 + 3) % CONFIG.vocab_size);

interface Run { logits: Float32Array; cache: Map<string, Float32Array> }

/** Forwards `times` times on `backend` (weights packed from the second), returning the last. */
function run(backend: Backend, o: { names?: RegExp; hooks?: [string, HookFn][]; times?: number } = {}): Run {
  const model = randomModel(CONFIG, backend, { seed: 9, std: 0.08 });
  const x = tensor(IDS, [1, T], 'i32', { backend });
  let out: Run = { logits: new Float32Array(), cache: new Map() };
  for (let i = 0; i < (o.times ?? 3); i++) {
    const r = runWithCache(model, x, { names: o.names ?? /^$/, hooks: o.hooks });
    out = { logits: r.logits.dataSync() as Float32Array, cache: new Map() };
    for (const n of r.cache.names()) out.cache.set(n, r.cache.get(n).dataSync() as Float32Array);
    r.logits.dispose();
    r.cache.dispose();
  }
  x.dispose();
  model.dispose();
  return out;
}

describe.skipIf(!available)('whole blocks on the native GEMM', () => {
  let be: WasmBackend;
  let js: Backend;
  /** Each native call that ran blocks: how many, and which of them were read out. */
  const calls: { n: number; taps: number[]; reads?: string[] }[] = [];
  /** Blocks run natively since `calls` was emptied. */
  const blocksRun = () => calls.reduce((s, c) => s + c.n, 0);
  beforeAll(async () => {
    const inner = load.gemm!;
    const gemm: NativeGemm = Object.assign(Object.create(inner) as NativeGemm, {
      block: (c: BlockCall) => { const done = inner.block!(c); if (done) calls.push({ n: 1, taps: [0] }); return done; },
      chain: (c: ChainCall) => {
        const done = inner.chain!(c);
        const reads = c.reads?.length ? { reads: c.reads.map((r) => `${r.block}.${r.value}`) } : {};
        if (done) calls.push({ n: c.blocks.length, taps: c.outputs.map((o) => o.block), ...reads });
        return done;
      },
    });
    be = await createWasmBackend({ threads: 2, nativeGemm: gemm, nativeGemmPolicy: { minRows: 1, minMacs: 0, minAttentionRows: 16 } });
    js = createJsBackend();
  });
  afterAll(() => { be.dispose(); });

  it('a plain forward runs all blocks in one call from the second forward on, and matches the js reference', { timeout: 60_000 }, () => {
    calls.length = 0;
    const got = run(be, { times: 1 });
    expect(blocksRun()).toBe(0); // first sight of the weights: op by op, packed on the next
    const again = run(be);
    expect(blocksRun()).toBe(2 * CONFIG.n_layer);
    expect(calls).toEqual([{ n: 3, taps: [2] }, { n: 3, taps: [2] }]); // one call per forward, only the last residual out
    const ref = run(js, { times: 1 });
    const err = maxAbsDiffFinite(again.logits, ref.logits);
    console.log(`fused blocks: logits max |native - js| = ${err.toExponential(2)} (op by op: ${maxAbsDiffFinite(got.logits, ref.logits).toExponential(2)})`);
    expect(err).toBeLessThan(1e-4);
  });

  it('a cache of the residual stream fuses and keeps the reference values', { timeout: 60_000 }, () => {
    calls.length = 0;
    const names = /hook_resid_(pre|post)$/;
    const got = run(be, { names });
    expect(blocksRun()).toBe(2 * CONFIG.n_layer);
    expect(calls.at(-1)).toEqual({ n: 3, taps: [0, 1, 2] }); // read-only hooks between blocks: one call, every residual out
    const ref = run(js, { names, times: 1 });
    expect([...got.cache.keys()]).toEqual([...ref.cache.keys()]);
    expect(got.cache.size).toBe(2 * CONFIG.n_layer);
    let worst = 0;
    for (const [n, v] of got.cache) worst = Math.max(worst, maxAbsDiffFinite(v, ref.cache.get(n)!));
    console.log(`fused blocks: resid_pre/post max |native - js| = ${worst.toExponential(2)} over ${got.cache.size} activations`);
    expect(worst).toBeLessThan(1e-4);
  });

  it('hooks inside a block fire with the reference values; a block with one at a norm runs op by op', { timeout: 60_000 }, () => {
    calls.length = 0;
    const names = /^blocks\.0\.mlp\.hook_post$|^blocks\.2\.attn\.hook_pattern$|^blocks\.1\.ln2\.hook_scale$/;
    const got = run(be, { names });
    // read-only hooks at values the call writes out (blocks 0 and 2) fuse; hook_scale (block 1) does not
    expect(calls).toEqual([
      { n: 1, taps: [0], reads: ['0.mlp_post'] }, { n: 1, taps: [0], reads: ['0.pattern'] },
      { n: 1, taps: [0], reads: ['0.mlp_post'] }, { n: 1, taps: [0], reads: ['0.pattern'] },
    ]);
    const ref = run(js, { names, times: 1 });
    expect([...got.cache.keys()].sort()).toEqual(['blocks.0.mlp.hook_post', 'blocks.1.ln2.hook_scale', 'blocks.2.attn.hook_pattern']);
    let worst = maxAbsDiffFinite(got.logits, ref.logits);
    for (const [n, v] of got.cache) worst = Math.max(worst, maxAbsDiffFinite(v, ref.cache.get(n)!));
    console.log(`hooks inside blocks: max |native - js| = ${worst.toExponential(2)}`);
    expect(worst).toBeLessThan(1e-4);
    calls.length = 0;
    run(be, { names: /^blocks\.1\.attn\.hook_result$/ });
    expect(blocksRun()).toBe(2 * (CONFIG.n_layer - 1)); // blocks 0 and 2 fuse, twice (the first forward packs)
    expect(calls.slice(-2)).toEqual([{ n: 1, taps: [0] }, { n: 1, taps: [0] }]);
  });

  it('a hook that replaces a residual between blocks ends the fused run there and takes effect', { timeout: 60_000 }, () => {
    const cases: [string, string, { n: number; taps: number[] }[]][] = [
      // (every residual is cached, so every block's output is read out)
      // replaced after block 0: blocks 0 | 1-2, the edit applied to the run's output
      ['blocks.0.hook_resid_post', 'resid_post 0', [{ n: 1, taps: [0] }, { n: 2, taps: [0, 1] }]],
      // replaced before block 1: block 0, then block 1 alone after its hook (fusedBlock), then block 2
      ['blocks.1.hook_resid_pre', 'resid_pre 1', [{ n: 1, taps: [0] }, { n: 1, taps: [0] }, { n: 1, taps: [0] }]],
      // the last block's output may be replaced: nothing in the run comes after it
      ['blocks.2.hook_resid_post', 'resid_post 2', [{ n: 3, taps: [0, 1, 2] }]],
    ];
    const plain = run(js, { times: 1 });
    for (const [site, what, want] of cases) {
      const edit: [string, HookFn][] = [[site, (t) => mul(t, t)]];
      calls.length = 0;
      const got = run(be, { hooks: edit, names: /hook_resid_(pre|post)$/ });
      expect(calls.slice(-want.length)).toEqual(want);
      const ref = run(js, { hooks: edit, names: /hook_resid_(pre|post)$/, times: 1 });
      let worst = maxAbsDiffFinite(got.logits, ref.logits);
      for (const [n, v] of got.cache) worst = Math.max(worst, maxAbsDiffFinite(v, ref.cache.get(n)!));
      const moved = maxAbsDiffFinite(ref.logits, plain.logits);
      console.log(`${what} squared: max |native - js| = ${worst.toExponential(2)} over the logits and ${got.cache.size} residuals; the edit moved the logits by ${moved.toExponential(2)}`);
      expect(got.cache.size).toBe(2 * CONFIG.n_layer);
      expect(worst).toBeLessThan(1e-4);
      expect(moved).toBeGreaterThan(1e-3);
    }
  });

  it('read-only hooks between fused blocks see each residual once, in op-by-op order', { timeout: 60_000 }, () => {
    const model = randomModel(CONFIG, be, { seed: 9, std: 0.08 });
    const x = tensor(IDS, [1, T], 'i32', { backend: be });
    const seen: string[] = [];
    const hooks = new Hooks().add(/hook_resid_(pre|post)$/, (_t, h) => { seen.push(h.name); }, { readOnly: true });
    for (let i = 0; i < 2; i++) { seen.length = 0; calls.length = 0; model.forward(x, { hooks }).dispose(); }
    expect(calls).toEqual([{ n: 3, taps: [0, 1, 2] }]);
    expect(seen).toEqual([0, 1, 2].flatMap((l) => [`blocks.${l}.hook_resid_pre`, `blocks.${l}.hook_resid_post`]));
    // a read-only hook may not replace: it would change what the fused blocks already computed
    const liar = new Hooks().add('blocks.0.hook_resid_post', (t) => mul(t, 2), { readOnly: true });
    expect(() => model.forward(x, { hooks: liar })).toThrow(/read-only but returned a replacement/);
    x.dispose();
    model.dispose();
  });

  /** Every hook point inside a GPT-2 block the fused call can feed (fused-block.ts SITES). */
  const SITES = /^blocks\.\d+\.(hook_resid_(pre|mid|post)|hook_(attn|mlp)_(in|out)|attn\.hook_(q|k|v|attn_scores|pattern|z)|mlp\.hook_(pre|post))$/;

  /** Forwards with `hooks` three times on `be`, blocks fused or op by op; the names, shapes and values the hooks saw in the last. */
  function seen(model: ReturnType<typeof randomModel>, hooks: (o: { name: string; shape: number[]; data: Float32Array }) => void, fused: boolean) {
    const policy = be.native.policy;
    const x = tensor(IDS, [1, T], 'i32', { backend: be });
    const out: { name: string; shape: number[]; data: Float32Array }[] = [];
    policy.blocks = fused;
    try {
      for (let i = 0; i < 3; i++) {
        out.length = 0;
        const h = new Hooks().add(SITES, (t, p) => { const o = { name: p.name, shape: [...t.shape], data: t.dataSync() as Float32Array }; out.push(o); hooks(o); }, { readOnly: true });
        model.forward(x, { hooks: h }).dispose();
      }
    } finally {
      policy.blocks = true;
      x.dispose();
    }
    return out;
  }

  it('read-only hooks at every point inside the blocks: one call, the op-by-op names, order, shapes and values', { timeout: 60_000 }, () => {
    const model = randomModel(CONFIG, be, { seed: 9, std: 0.08 });
    calls.length = 0;
    const fused = seen(model, () => {}, true);
    const reads = ['qkv', 'scores', 'pattern', 'z', 'attn_out', 'resid_mid', 'mlp_pre', 'mlp_post', 'mlp_out'];
    expect(calls.slice(-1)).toEqual([{ n: 3, taps: [0, 1, 2], reads: [0, 1, 2].flatMap((b) => reads.map((r) => `${b}.${r}`)) }]);
    calls.length = 0;
    const ops = seen(model, () => {}, false);
    expect(calls).toEqual([]);
    model.dispose();
    expect(fused.map((o) => o.name)).toEqual(ops.map((o) => o.name));
    expect(fused.length).toBe(15 * CONFIG.n_layer);
    let worst = 0;
    fused.forEach((o, i) => {
      expect(o.shape, o.name).toEqual(ops[i]!.shape);
      worst = Math.max(worst, maxAbsDiffFinite(o.data, ops[i]!.data));
    });
    console.log(`read-only hooks at ${fused.length} points inside fused blocks: max |fused - op by op| = ${worst.toExponential(2)}`);
    expect(worst).toBeLessThan(1e-4);
    // the causal mask: -inf scores and zero probabilities above the diagonal, as op by op
    const scores = fused.find((o) => o.name === 'blocks.1.attn.hook_attn_scores')!.data;
    const pattern = fused.find((o) => o.name === 'blocks.1.attn.hook_pattern')!.data;
    expect(scores[1]).toBe(-Infinity);
    expect(pattern[1]).toBe(0);
  });

  it('runWithCache of every point inside the blocks fuses and keeps the js reference values', { timeout: 60_000 }, () => {
    calls.length = 0;
    const got = run(be, { names: SITES });
    expect(blocksRun()).toBe(2 * CONFIG.n_layer);
    expect(calls.at(-1)!.n).toBe(3);
    const ref = run(js, { names: SITES, times: 1 });
    expect([...got.cache.keys()]).toEqual([...ref.cache.keys()]);
    let worst = maxAbsDiffFinite(got.logits, ref.logits);
    for (const [n, v] of got.cache) worst = Math.max(worst, maxAbsDiffFinite(v, ref.cache.get(n)!));
    console.log(`runWithCache of ${got.cache.size} points, blocks fused: max |native - js| = ${worst.toExponential(2)} over them and the logits`);
    expect(got.cache.size).toBe(15 * CONFIG.n_layer);
    expect(worst).toBeLessThan(1e-4);
  });

  it('an editing hook inside a block keeps that block op by op beside a cache of everything', { timeout: 60_000 }, () => {
    calls.length = 0;
    const edit: [string, HookFn][] = [['blocks.1.attn.hook_z', (t) => mul(t, 0.5)]];
    const got = run(be, { names: SITES, hooks: edit });
    expect(calls.slice(-2).map((c) => c.n)).toEqual([1, 1]); // blocks 0 and 2; block 1 op by op
    const ref = run(js, { names: SITES, hooks: edit, times: 1 });
    let worst = maxAbsDiffFinite(got.logits, ref.logits);
    for (const [n, v] of got.cache) worst = Math.max(worst, maxAbsDiffFinite(v, ref.cache.get(n)!));
    const moved = maxAbsDiffFinite(ref.logits, run(js, { times: 1 }).logits);
    console.log(`hook_z of block 1 halved under a cache of everything: max |native - js| = ${worst.toExponential(2)}; the edit moved the logits by ${moved.toExponential(2)}`);
    expect(worst).toBeLessThan(1e-4);
    expect(moved).toBeGreaterThan(1e-3);
  });

  it('a read-only hook inside a fused block that returns a replacement throws', { timeout: 60_000 }, () => {
    const model = randomModel(CONFIG, be, { seed: 9, std: 0.08 });
    const x = tensor(IDS, [1, T], 'i32', { backend: be });
    const reader = new Hooks().add('blocks.1.attn.hook_pattern', () => {}, { readOnly: true });
    for (let i = 0; i < 2; i++) model.forward(x, { hooks: reader }).dispose(); // packed (the model with the values inside as outputs)
    calls.length = 0;
    const liar = new Hooks().add('blocks.1.attn.hook_pattern', (t) => mul(t, 2), { readOnly: true });
    expect(() => model.forward(x, { hooks: liar })).toThrow(/hook at 'blocks\.1\.attn\.hook_pattern' was added as read-only but returned a replacement/);
    expect(calls).toEqual([{ n: 3, taps: [2], reads: ['1.pattern'] }]); // it ran fused
    x.dispose();
    model.dispose();
  });

  it('a hook that replaces an activation inside a block changes the output as op by op', { timeout: 60_000 }, () => {
    calls.length = 0;
    const ablate: [string, HookFn][] = [['blocks.1.hook_mlp_out', (t) => mul(t, 0)]];
    const got = run(be, { hooks: ablate });
    const ref = run(js, { hooks: ablate, times: 1 });
    const plain = run(js, { times: 1 });
    const err = maxAbsDiffFinite(got.logits, ref.logits);
    console.log(`MLP of block 1 ablated: max |native - js| = ${err.toExponential(2)}; the ablation moved the logits by ${maxAbsDiffFinite(ref.logits, plain.logits).toExponential(2)}`);
    expect(err).toBeLessThan(1e-4);
    expect(maxAbsDiffFinite(ref.logits, plain.logits)).toBeGreaterThan(1e-3);
    expect(blocksRun()).toBe(2 * (CONFIG.n_layer - 1));
  });

  it('reading values inside the blocks packs them once: the plain forward then runs on that session; freeing the model drops it', { timeout: 60_000 }, () => {
    const held = () => load.gemm!.heldBytes!().packed;
    const before = held();
    const model = randomModel(CONFIG, be, { seed: 3, std: 0.08 });
    const x = tensor(IDS, [1, T], 'i32', { backend: be });
    const forward = (hooks?: Hooks) => { const y = model.forward(x, { hooks }); const v = y.dataSync() as Float32Array; y.dispose(); return v; };
    for (let i = 0; i < 2; i++) forward();
    const plain = held();
    const first = forward();
    expect(plain).toBeGreaterThan(before);
    // the blocks' parameters, as packed into a session of the chain
    const d = CONFIG.n_embd;
    const f = 4 * d;
    const blockBytes = CONFIG.n_layer * 4 * (4 * d + 3 * d * d + 3 * d + d * d + d + d * f + f + f * d + d);
    // reading values inside the blocks: the session with them as outputs replaces the plain one
    // (the op-by-op forward before it packs the per-layer products: about one copy of the blocks)
    const reader = new Hooks().add(/mlp\.hook_post$/, () => {}, { readOnly: true });
    for (let i = 0; i < 2; i++) forward(reader);
    const reading = held();
    console.log(`packed: plain ${plain - before} B, after reading values ${reading - before} B (blocks' parameters ${blockBytes} B)`);
    expect(reading - plain).toBeLessThan(1.5 * blockBytes); // a second packed copy of the blocks would add ~2 × blockBytes
    calls.length = 0;
    const again = forward();
    expect(calls).toEqual([{ n: 3, taps: [2] }]); // still one call, no values read out
    expect(held()).toBe(reading); // nothing packed again
    const err = maxAbsDiffFinite(again, first);
    console.log(`plain forward on the session with values vs on its own: logits max |difference| = ${err.toExponential(2)}`);
    expect(err).toBeLessThan(1e-5);
    model.dispose();
    x.dispose();
    expect(held()).toBe(before);
  });
});
