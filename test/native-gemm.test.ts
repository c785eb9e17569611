// The wasm backend's native GEMM (ONNX Runtime's MLAS through onnxruntime-node): products, linear
// layers (bias and activation in the call) and prefill attention against the js reference backend
// with the error printed, weights packed once and re-packed when written, hooks firing with the
// same values as on the wasm kernels, and the fallback when it is absent.
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import '../src/backends/index.js';
import { createJsBackend } from '../src/backends/js/backend.js';
import { createWasmBackend, type WasmBackend } from '../src/backends/wasm/backend.js';
import type { AttentionCall, GemmCall, NativeGemm } from '../src/backends/wasm/native-gemm.js';
import { loadNativeGemm } from '../src/io/node/native-gemm.js';
import { setPlatform, getPlatform } from '../src/io/platform.js';
import { tensor } from '../src/ops/creation.js';
import { fusedLinear, matmul } from '../src/ops/linalg.js';
import { attention } from '../src/ops/nn.js';
import { randomModel } from '../src/models/random.js';
import { runWithCache } from '../src/hooks/run.js';
import type { Backend, BackendBuffer, UnaryFn } from '../src/tensor/backend.js';
import type { Tensor } from '../src/tensor/tensor.js';
import { TINY } from './helpers/tiny-configs.js';
import { grad, variable } from '../src/autograd/index.js';
import { mul } from '../src/ops/elementwise.js';
import { sum } from '../src/ops/reduce.js';
import { maxAbsDiffFinite, rand } from './helpers/numeric.js';

/** Wraps a native GEMM to count the products it was given. */
function counting(inner: NativeGemm): NativeGemm & { calls: number; attentions: number } {
  const c = {
    calls: 0,
    attentions: 0,
    name: inner.name,
    activations: inner.activations,
    gemm(call: GemmCall) { c.calls++; inner.gemm(call); },
    attention(call: AttentionCall) { c.attentions++; inner.attention!(call); },
    forget: (k: Parameters<NativeGemm['forget']>[0]) => inner.forget(k),
    packedCount: () => inner.packedCount(),
    dispose: () => inner.dispose(),
  };
  return c;
}

const load = loadNativeGemm(2);
const available = load.gemm !== null;
if (!available) console.log(`native GEMM tests skipped: ${(load as { reason: string }).reason}`);

describe.skipIf(!available)('native GEMM (onnxruntime-node)', () => {
  let gemm: NativeGemm & { calls: number; attentions: number };
  let be: WasmBackend;
  let js: Backend;
  beforeAll(async () => {
    gemm = counting(load.gemm!);
    // every product native, however small, so that small shapes exercise it
    be = await createWasmBackend({ threads: 2, nativeGemm: gemm, nativeGemmPolicy: { minRows: 1, minMacs: 0, minAttentionRows: 1 } });
    js = createJsBackend();
  });
  afterAll(() => { be.dispose(); });

  const cases: { name: string; a: number[]; b: number[]; transA?: boolean; transB?: boolean }[] = [
    { name: '2-D 37x129 · 129x65', a: [37, 129], b: [129, 65] },
    { name: 'x Wᵀ (torch Linear), batch of 2', a: [2, 33, 96], b: [80, 96], transB: true },
    { name: 'x W (GPT-2 Conv1D), [1, T, d]', a: [1, 64, 48], b: [48, 192] },
    { name: 'Aᵀ B (a weight gradient)', a: [70, 40], b: [70, 30], transA: true },
    { name: 'Aᵀ Bᵀ', a: [50, 20], b: [30, 50], transA: true, transB: true },
  ];
  for (const c of cases) {
    it(`${c.name}: matches the js reference`, () => {
      const n = (s: number[]) => s.reduce((p, x) => p * x, 1);
      const A = rand(n(c.a), 3);
      const B = rand(n(c.b), 5);
      const run = (backend: Backend) => {
        const a = tensor(A, c.a, 'f32', { backend });
        const b = tensor(B, c.b, 'f32', { backend });
        const y = matmul(a, b, { transA: c.transA, transB: c.transB });
        const out = { shape: y.shape, data: y.dataSync() as Float32Array };
        a.dispose(); b.dispose(); y.dispose();
        return out;
      };
      const before = gemm.calls;
      const got = run(be);
      expect(gemm.calls).toBe(before + 1);
      const want = run(js);
      expect(got.shape).toEqual(want.shape);
      const err = maxAbsDiffFinite(got.data, want.data);
      console.log(`native gemm ${c.name}: max |native - js| = ${err.toExponential(2)}`);
      expect(err).toBeLessThan(1e-4);
    });
  }

  const acts: (UnaryFn | undefined)[] = [undefined, 'gelu_tanh', 'gelu_erf', 'relu', 'silu', 'sigmoid', 'tanh', 'exp'];
  for (const act of acts) {
    it(`linear layer x·Wᵀ + b, activation ${act ?? 'none'}: matches the js reference${act === 'exp' ? ' (exp applied by the backend)' : ''}`, () => {
      const [M, K, N] = [33, 80, 56];
      const X = rand(M * K, 31);
      const W = rand(N * K, 32);
      const Bs = rand(N, 33);
      const run = (backend: Backend) => {
        const x = tensor(X, [M, K], 'f32', { backend });
        const w = tensor(W, [N, K], 'f32', { backend });
        const b = tensor(Bs, [N], 'f32', { backend });
        const outs: Float32Array[] = [];
        for (let i = 0; i < 3; i++) { // first product per call, then packed with the bias
          const y = fusedLinear(x, w, b, { transB: true, act, force: true });
          outs.push(y.dataSync() as Float32Array);
          y.dispose();
        }
        x.dispose(); w.dispose(); b.dispose();
        return outs;
      };
      const before = gemm.calls;
      const got = run(be);
      expect(gemm.calls).toBe(before + 3);
      const want = run(js)[0]!;
      for (const g of got) {
        const err = maxAbsDiffFinite(g, want);
        expect(err).toBeLessThan(1e-4);
      }
      console.log(`native linear, activation ${act ?? 'none'}: max |native - js| = ${maxAbsDiffFinite(got[2]!, want).toExponential(2)}`);
    });
  }

  for (const c of [
    { causal: true, probs: false, tq: 40, tk: 40, tokenMajor: false }, { causal: true, probs: true, tq: 24, tk: 40, tokenMajor: false },
    { causal: false, probs: true, tq: 40, tk: 40, tokenMajor: false }, { causal: true, probs: false, tq: 40, tk: 40, tokenMajor: true },
  ]) {
    it(`attention of [batch, pos, head, d] projections, causal ${c.causal}, probs ${c.probs}, ${c.tq}x${c.tk}${c.tokenMajor ? ', token-major output' : ''}: matches the js reference`, () => {
      const [B, H, D] = [2, 3, 16];
      const Q = rand(B * c.tq * H * D, 41);
      const K = rand(B * c.tk * H * D, 42);
      const V = rand(B * c.tk * H * D, 43);
      const run = (backend: Backend) => {
        const q = tensor(Q, [B, c.tq, H, D], 'f32', { backend });
        const k = tensor(K, [B, c.tk, H, D], 'f32', { backend });
        const v = tensor(V, [B, c.tk, H, D], 'f32', { backend });
        const r = attention(q.permute([0, 2, 1, 3]), k.permute([0, 2, 1, 3]), v.permute([0, 2, 1, 3]), { causal: c.causal, scale: 0.3, returnProbs: c.probs, tokenMajor: c.tokenMajor });
        if (c.tokenMajor) expect(r.out.shape).toEqual([B, c.tq, H, D]);
        const out = { y: r.out.dataSync() as Float32Array, p: r.probs?.dataSync() as Float32Array | undefined };
        for (const t of [q, k, v, r.out, ...(r.probs ? [r.probs] : [])]) t.dispose();
        return out;
      };
      const before = gemm.attentions;
      const got = run(be);
      expect(gemm.attentions).toBe(before + 1);
      const want = run(js);
      const err = maxAbsDiffFinite(got.y, want.y);
      const errP = c.probs ? maxAbsDiffFinite(got.p!, want.p!) : 0;
      console.log(`native attention (causal ${c.causal}, ${c.tq}x${c.tk}): max |native - js| = ${err.toExponential(2)} (probs ${errP.toExponential(2)})`);
      expect(err).toBeLessThan(1e-5);
      expect(errP).toBeLessThan(1e-5);
    });
  }

  it('a product whose C exceeds the staging runs in blocks of rows, and matches the js reference', { timeout: 120_000 }, () => {
    const [M, K, N] = [300, 8, 30000]; // C: 9M elements, over the 8M staged per run
    const X = rand(M * K, 51);
    const W = rand(K * N, 52);
    const run = (backend: Backend) => {
      const x = tensor(X, [M, K], 'f32', { backend });
      const w = tensor(W, [K, N], 'f32', { backend });
      const y = matmul(x, w);
      const d = y.dataSync() as Float32Array;
      x.dispose(); w.dispose(); y.dispose();
      return d;
    };
    const err = maxAbsDiffFinite(run(be), run(js));
    console.log(`native gemm in row blocks (${M}x${K}x${N}): max |native - js| = ${err.toExponential(2)}`);
    expect(err).toBeLessThan(1e-4);
  });

  it('packs a weight on its second product and re-packs after the weight is written', () => {
    const [M, K, N] = [24, 64, 40];
    const W = rand(K * N, 11);
    const w = tensor(W, [K, N], 'f32', { backend: be });
    const x = tensor(rand(M * K, 12), [M, K], 'f32', { backend: be });
    const X = x.dataSync() as Float32Array;
    const reference = (wv: Float32Array) => {
      const a = tensor(X, [M, K], 'f32', { backend: js });
      const b = tensor(wv, [K, N], 'f32', { backend: js });
      const y = matmul(a, b);
      const d = y.dataSync() as Float32Array;
      a.dispose(); b.dispose(); y.dispose();
      return d;
    };
    const product = () => { const y = matmul(x, w); const d = y.dataSync() as Float32Array; y.dispose(); return d; };
    const packedBefore = gemm.packedCount();
    expect(maxAbsDiffFinite(product(), reference(W))).toBeLessThan(1e-4); // first use: B passed per call
    expect(gemm.packedCount()).toBe(packedBefore);
    expect(maxAbsDiffFinite(product(), reference(W))).toBeLessThan(1e-4); // second: packed
    expect(gemm.packedCount()).toBe(packedBefore + 1);
    expect(maxAbsDiffFinite(product(), reference(W))).toBeLessThan(1e-4);
    // an in-place write (an optimizer step does this) must not leave the stale packed copy in use
    const W2 = rand(K * N, 13);
    be.write((w.storageKey as { buffer: BackendBuffer }).buffer, 0, new Uint8Array(W2.buffer));
    const err = maxAbsDiffFinite(product(), reference(W2));
    console.log(`native gemm after the weight was rewritten: max |native - js| = ${err.toExponential(2)}`);
    expect(err).toBeLessThan(1e-4);
    expect(maxAbsDiffFinite(product(), reference(W2))).toBeLessThan(1e-4);
    w.dispose();
    expect(gemm.packedCount()).toBe(packedBefore); // freed weight: its packed copy is dropped
    x.dispose();
  });

  it('hooks fire with the same values as on the wasm kernels', { timeout: 120_000 }, async () => {
    const plain = await createWasmBackend({ threads: 2, nativeGemm: false });
    // d_model 512: products long enough in K that MLAS blocks them (its sums round differently);
    // linear layers, activations and attention on the native path
    const config = { ...TINY.gpt2!, n_embd: 512, n_head: 8, vocab_size: 97 };
    const ids = Array.from({ length: 40 }, (_, i) => (i * 7 + 3) % 97);
    const cacheOf = (backend: Backend) => {
      const model = randomModel(config, backend, { seed: 5, std: 0.05 });
      const x = tensor(ids, [1, ids.length], 'i32', { backend });
      const r = runWithCache(model, x);
      const out = new Map<string, Float32Array>();
      for (const name of r.cache.names()) out.set(name, r.cache.get(name).dataSync() as Float32Array);
      out.set('logits', r.logits.dataSync() as Float32Array);
      r.logits.dispose(); r.cache.dispose(); x.dispose(); model.dispose();
      return out;
    };
    const before = gemm.calls;
    const native = cacheOf(be);
    expect(gemm.calls).toBeGreaterThan(before);
    console.log(`native products in the forward: ${gemm.calls - before}`);
    const wasm = cacheOf(plain);
    console.log(`plain backend: ${String(plain.info().nativeGemm)}`);
    plain.dispose();
    expect([...native.keys()]).toEqual([...wasm.keys()]);
    expect(native.size).toBeGreaterThan(20);
    let worst = { name: '(none differ)', err: 0 };
    for (const [name, v] of native) {
      const w = wasm.get(name)!;
      let scale = 1;
      for (const e of w) if (Number.isFinite(e)) scale = Math.max(scale, Math.abs(e));
      const err = maxAbsDiffFinite(v, w) / scale;
      if (err > worst.err) worst = { name, err };
    }
    console.log(`hooks native vs wasm: ${native.size} activations, worst relative max diff ${worst.err.toExponential(2)} at ${worst.name}`);
    expect(worst.err).toBeLessThan(1e-4);
  });

  it('gradients of a two-layer product (the training path: xᵀ·dy, dy·Wᵀ) match the js reference', () => {
    const [T, D, H] = [48, 64, 96];
    const X = rand(T * D, 21);
    const W1 = rand(D * H, 22);
    const W2 = rand(H * D, 23);
    const R = rand(T * D, 24);
    const grads = (backend: Backend) => {
      const x = variable(tensor(X, [1, T, D], 'f32', { backend }));
      const w1 = variable(tensor(W1, [D, H], 'f32', { backend }));
      const w2 = variable(tensor(W2, [D, H], 'f32', { backend })); // used transposed, as torch's Linear
      const r = tensor(R, [1, T, D], 'f32', { backend });
      const h = matmul(x, w1);
      const y = matmul(h, w2, { transB: true });
      const loss = sum(mul(y, r).reshape([-1]));
      const gs = grad(loss, [x, w1, w2]).map((g) => g.dataSync() as Float32Array);
      for (const t of [x, w1, w2, r, h, y, loss]) t.dispose();
      return gs;
    };
    const before = gemm.calls;
    const got = grads(be);
    expect(gemm.calls - before).toBeGreaterThanOrEqual(5); // forward 2, backward 3 (dx, dw1, dw2 and dh)
    const want = grads(js);
    got.forEach((g, i) => {
      let scale = 1;
      for (const e of want[i]!) scale = Math.max(scale, Math.abs(e));
      const err = maxAbsDiffFinite(g, want[i]!) / scale;
      console.log(`native gemm gradient ${['x', 'w1', 'w2'][i]}: relative max diff ${err.toExponential(2)}`);
      expect(err).toBeLessThan(1e-5);
    });
  });

  it('leaves decode-sized products and batched products on the wasm kernel under the default policy', async () => {
    const inner = counting(gemm);
    const dflt = await createWasmBackend({ threads: 2, nativeGemm: inner });
    const t = (shape: number[], seed: number) => tensor(rand(shape.reduce((p, x) => p * x, 1), seed), shape, 'f32', { backend: dflt });
    const w = t([768, 768], 1);
    const one = t([1, 1, 768], 2);
    const many = t([1, 128, 768], 3);
    matmul(one, w).dispose(); // one row: decode
    expect(inner.calls).toBe(0);
    const q = t([4, 128, 64], 4);
    const k = t([4, 128, 64], 5);
    matmul(q, k, { transB: true }).dispose(); // a different B per batch entry: attention scores
    expect(inner.calls).toBe(0);
    matmul(many, w).dispose(); // prefill-sized
    expect(inner.calls).toBe(1);
    for (const x of [w, one, many, q, k]) x.dispose();
    dflt.dispose();
  });
});

describe('without a native GEMM', () => {
  it('a platform without one: products run on wasm, the backend says so once and in info()', async () => {
    const real = await getPlatform();
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {});
    try {
      setPlatform({ ...real, nativeGemm: async () => ({ gemm: null, reason: 'onnxruntime-node is not installed (simulated)' }) });
      const a = await createWasmBackend({ threads: 2 });
      const b = await createWasmBackend({ threads: 2 });
      expect(String(a.info().nativeGemm)).toContain('off (onnxruntime-node is not installed (simulated))');
      const said = warn.mock.calls.filter((c) => String(c[0]).includes('no native GEMM'));
      // said at most once per process (an earlier backend in this process may already have said it)
      expect(said.length).toBeLessThanOrEqual(1);
      const X = rand(64 * 96, 1);
      const W = rand(96 * 80, 2);
      const js = createJsBackend();
      const prod = (backend: Backend) => {
        const x = tensor(X, [64, 96], 'f32', { backend });
        const w = tensor(W, [96, 80], 'f32', { backend });
        const y: Tensor = matmul(x, w);
        const d = y.dataSync() as Float32Array;
        x.dispose(); w.dispose(); y.dispose();
        return d;
      };
      const err = maxAbsDiffFinite(prod(a), prod(js));
      console.log(`fallback wasm vs js: max diff ${err.toExponential(2)}`);
      expect(err).toBeLessThan(1e-4);
      a.dispose(); b.dispose();
    } finally {
      setPlatform(real);
      warn.mockRestore();
    }
  });

  it('ACTLAB_NATIVE_GEMM=0 turns it off', async () => {
    vi.stubEnv('ACTLAB_NATIVE_GEMM', '0');
    try {
      const be = await createWasmBackend({ threads: 1 });
      expect(String(be.info().nativeGemm)).toContain('ACTLAB_NATIVE_GEMM=0');
      be.dispose();
    } finally {
      vi.unstubAllEnvs();
    }
  });
});
