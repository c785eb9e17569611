// Whole GPT-2 blocks as one native call (Backend.fusedBlock: an ONNX Runtime session per block)
// against the js reference backend, with the error printed: a plain forward, a cache of the
// residual stream (which may fuse), hooks inside a block (which must not: they fire, with the
// reference's values, and a replacement changes the output as it does op by op), and the
// block's packed weights dropped when the model is freed.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import '../src/backends/index.js';
import { createJsBackend } from '../src/backends/js/backend.js';
import { createWasmBackend, type WasmBackend } from '../src/backends/wasm/backend.js';
import type { BlockCall, NativeGemm } from '../src/backends/wasm/native-gemm.js';
import { loadNativeGemm } from '../src/io/node/native-gemm.js';
import { tensor } from '../src/ops/creation.js';
import { mul } from '../src/ops/elementwise.js';
import { randomModel } from '../src/models/random.js';
import { runWithCache } from '../src/hooks/run.js';
import type { HookFn } from '../src/models/hook-point.js';
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
  const fused: BlockCall[] = [];
  beforeAll(async () => {
    const inner = load.gemm!;
    const gemm: NativeGemm = Object.assign(Object.create(inner) as NativeGemm, {
      block: (c: BlockCall) => { const done = inner.block!(c); if (done) fused.push(c); return done; },
    });
    be = await createWasmBackend({ threads: 2, nativeGemm: gemm, nativeGemmPolicy: { minRows: 1, minMacs: 0, minAttentionRows: 16 } });
    js = createJsBackend();
  });
  afterAll(() => { be.dispose(); });

  it('a plain forward runs every block in one call from the second forward on, and matches the js reference', { timeout: 60_000 }, () => {
    fused.length = 0;
    const got = run(be, { times: 1 });
    expect(fused.length).toBe(0); // first sight of the weights: op by op, packed on the next
    const again = run(be);
    expect(fused.length).toBe(2 * CONFIG.n_layer);
    const ref = run(js, { times: 1 });
    const err = maxAbsDiffFinite(again.logits, ref.logits);
    console.log(`fused blocks: logits max |native - js| = ${err.toExponential(2)} (op by op: ${maxAbsDiffFinite(got.logits, ref.logits).toExponential(2)})`);
    expect(err).toBeLessThan(1e-4);
  });

  it('a cache of the residual stream fuses and keeps the reference values', { timeout: 60_000 }, () => {
    fused.length = 0;
    const names = /hook_resid_(pre|post)$/;
    const got = run(be, { names });
    expect(fused.length).toBe(2 * CONFIG.n_layer);
    const ref = run(js, { names, times: 1 });
    expect([...got.cache.keys()]).toEqual([...ref.cache.keys()]);
    expect(got.cache.size).toBe(2 * CONFIG.n_layer);
    let worst = 0;
    for (const [n, v] of got.cache) worst = Math.max(worst, maxAbsDiffFinite(v, ref.cache.get(n)!));
    console.log(`fused blocks: resid_pre/post max |native - js| = ${worst.toExponential(2)} over ${got.cache.size} activations`);
    expect(worst).toBeLessThan(1e-4);
  });

  it('hooks inside a block fire with the reference values; only the other blocks fuse', { timeout: 60_000 }, () => {
    fused.length = 0;
    const names = /^blocks\.0\.mlp\.hook_post$|^blocks\.2\.attn\.hook_pattern$|^blocks\.1\.ln2\.hook_scale$/;
    const got = run(be, { names });
    expect(fused.length).toBe(0); // every block has a listener inside
    const ref = run(js, { names, times: 1 });
    expect([...got.cache.keys()].sort()).toEqual(['blocks.0.mlp.hook_post', 'blocks.1.ln2.hook_scale', 'blocks.2.attn.hook_pattern']);
    let worst = maxAbsDiffFinite(got.logits, ref.logits);
    for (const [n, v] of got.cache) worst = Math.max(worst, maxAbsDiffFinite(v, ref.cache.get(n)!));
    console.log(`hooks inside blocks: max |native - js| = ${worst.toExponential(2)}`);
    expect(worst).toBeLessThan(1e-4);
    fused.length = 0;
    run(be, { names: /^blocks\.1\.attn\.hook_z$/ });
    expect(fused.length).toBe(2 * (CONFIG.n_layer - 1)); // blocks 0 and 2 fuse, twice (the first forward packs)
  });

  it('a hook that replaces an activation inside a block changes the output as op by op', { timeout: 60_000 }, () => {
    fused.length = 0;
    const ablate: [string, HookFn][] = [['blocks.1.hook_mlp_out', (t) => mul(t, 0)]];
    const got = run(be, { hooks: ablate });
    const ref = run(js, { hooks: ablate, times: 1 });
    const plain = run(js, { times: 1 });
    const err = maxAbsDiffFinite(got.logits, ref.logits);
    console.log(`MLP of block 1 ablated: max |native - js| = ${err.toExponential(2)}; the ablation moved the logits by ${maxAbsDiffFinite(ref.logits, plain.logits).toExponential(2)}`);
    expect(err).toBeLessThan(1e-4);
    expect(maxAbsDiffFinite(ref.logits, plain.logits)).toBeGreaterThan(1e-3);
    expect(fused.length).toBe(2 * (CONFIG.n_layer - 1));
  });

  it('freeing the model drops the blocks\' sessions', { timeout: 60_000 }, () => {
    const held = () => load.gemm!.heldBytes!().packed;
    const before = held();
    const model = randomModel(CONFIG, be, { seed: 3, std: 0.08 });
    const x = tensor(IDS, [1, T], 'i32', { backend: be });
    for (let i = 0; i < 2; i++) model.forward(x).dispose();
    expect(held()).toBeGreaterThan(before);
    model.dispose();
    x.dispose();
    expect(held()).toBe(before);
  });
});
