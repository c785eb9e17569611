// The WebGPU backend: the conformance matrix against the reference, readback rules, and clear
// errors. Runs wherever an adapter exists (the GPU machine; any machine with Debian's Chromium,
// through SwiftShader); elsewhere every test is skipped with the reason printed.
// Filters: ACTLAB_OPS=matmul,softmax
// Budgets: on SwiftShader (a CPU Vulkan driver) on a loaded 2-core machine the matrix took 10 min
// and the gradients 8.5 min; each budget is about twice what was seen.
import { afterAll, describe, expect, it } from 'vitest';
import '../src/backends/index.js';
import type { Backend } from '../src/tensor/backend.js';
import { createJsBackend } from '../src/backends/js/backend.js';
import { runConformance, summarize } from '../src/conformance/runner.js';
import { runGradConformance, summarizeGrad } from '../src/conformance/grad.js';
import { Tensor } from '../src/tensor/tensor.js';
import * as F from '../src/ops/index.js';
import { openWebGpu } from './webgpu-helpers.js';
import { qmatmul } from '../src/ops/quant.js';
import { QuantizedTensor } from '../src/tensor/quantized.js';
import { DEFAULT_SPLITK, setMatmulSplitK } from '../src/backends/webgpu/kernels/matmul.js';
import { setF32PadN } from '../src/backends/webgpu/kernels/matmul-f32.js';
import { setGemvSplit, setSplitSumVec4 } from '../src/backends/webgpu/kernels/matmul-gemv.js';
import { A8_GEMV_TYPES } from '../src/backends/webgpu/kernels/quant-gemv.js';
import type { QuantType } from '../src/tensor/backend.js';

const { backend, reason, driver } = await openWebGpu();
if (!backend) console.log(`webgpu tests skipped: ${reason}`);
else console.log(`webgpu tests on ${JSON.stringify(backend.info?.())} via ${driver}`);
const ops = process.env.ACTLAB_OPS?.split(',').filter(Boolean);

describe.skipIf(!backend)('webgpu backend', () => {
  const gpu = backend as Backend;
  const ref = createJsBackend();
  afterAll(() => gpu?.dispose());

  it('matches the reference on every conformance case', async () => {
    const results = await runConformance(ref, gpu, { ops });
    console.log(summarize(results));
    // actlab's own formats have no WebGPU kernel yet (docs/quantization.md): their cases must say so, nothing else may
    const noKernel = (r: { status: string; label: string }) => r.status === 'unsupported' && /^(dequantize|qmatmul|qlinear) (int|nf4|fp|llmfp4)/.test(r.label);
    console.log(`without a WebGPU kernel: ${results.filter(noKernel).length} cases of actlab's formats`);
    const bad = results.filter((r) => r.status !== 'pass' && !noKernel(r));
    for (const r of bad) console.log(`${r.status} ${r.label}: nmse ${r.nmse} > ${r.budget} ${r.detail ?? ''}`);
    expect(results.length).toBeGreaterThan(ops ? 0 : 400);
    expect(bad.map((r) => `${r.label} (${r.status}, nmse ${r.nmse})`)).toEqual([]);
    // the decode GEMV of q4_0 / q4_k / q8_0 rounds x to 8 bits per 32 values (the conformance budget,
    // checked above); every other WebGPU block kernel multiplies x as it is, in f32: far inside it
    const a8 = (label: string) => { const m = /^qmatmul (\S+) .* M=(\d+) /.exec(label); return !!m && A8_GEMV_TYPES.has(m[1] as QuantType) && Number(m[2]) <= 8; };
    const qa = results.filter((r) => r.op === 'qmatmul' && a8(r.label));
    if (qa.length) console.log(`webgpu qmatmul, 8-bit activations: ${qa.length} cases, worst NMSE ${Math.max(...qa.map((r) => r.nmse)).toExponential(2)}`);
    const q = results.filter((r) => r.op === 'qmatmul' && !noKernel(r) && !a8(r.label));
    if (q.length) console.log(`webgpu qmatmul: ${q.length} cases, worst NMSE ${Math.max(...q.map((r) => r.nmse)).toExponential(2)} (budget for f32 accumulation 1e-10)`);
    expect(q.filter((r) => !(r.nmse <= 1e-10)).map((r) => `${r.label}: ${r.nmse}`)).toEqual([]);
  }, 1_800_000);

  it('backward: every op\'s gradient on webgpu equals the reference\'s (and finite differences)', async () => {
    const results = await runGradConformance(ref, gpu, { ops });
    console.log(summarizeGrad(results));
    const bad = results.filter((r) => r.status === 'fail' || r.status === 'error');
    expect(results.length).toBeGreaterThan(ops ? 0 : 200);
    expect(bad.map((r) => `${r.label}: ${r.detail}`)).toEqual([]);
  }, 1_800_000);

  it('large matmuls (128x128 tiles with and without bounds tests, split-K GEMV and GEMM, both weight layouts) match the reference', async () => {
    // 2560x32x3840: 600 aligned tiles (8x16 per thread); 520x24x15401 Bᵀ: the same kernel with
    // bounds tests and scalar stores (an LM head); 2048x48x2432: aligned 8x8 per thread;
    // 2000x40x2500: 8x8 with bounds tests on every axis; 512x32x4096: 8x8 per thread on 64 threads
    // (64x64 tiles); 512x64x768: the 128-thread grid of 64x64 tiles; 1024x40x1920: 64x64 tiles with bounds tests;
    // Aᵀ (A stored [K, M]) on the aligned paths; 128x4096x256, 96x2048x192 Bᵀ, 64x3072x128 Aᵀ: few
    // tiles and a long K, split into 8 / 4 / 4 k-ranges added by a second pass (and into 4 each by 'few')
    const cases: [number, number, number, boolean, boolean?][] = [
      [1024, 40, 1920, false], [2560, 32, 3840, false], [2560, 32, 3840, true], [520, 24, 15401, true], [2048, 48, 2432, false],
      [2000, 40, 2500, true], [512, 32, 4096, false], [512, 64, 768, true],
      [2560, 32, 3840, false, true], [512, 32, 4096, true, true], [512, 64, 768, false, true],
      [3, 700, 300, false], [1, 512, 200, true], [5, 1000, 64, true],
      [128, 4096, 256, false], [96, 2048, 192, true], [64, 3072, 128, false, true],
    ];
    // the long-K cases once more under the 'few' split (64x64 tiles counted, 4 k-ranges)
    const runs = [...cases.map((c) => ['auto', c] as const), ...cases.slice(-3).map((c) => ['few', c] as const)];
    for (const [mode, [M, K, N, transB, transA = false]] of runs) {
      setMatmulSplitK(mode);
      const a = Array.from({ length: M * K }, (_, i) => Math.sin(i * 0.37));
      const b = Array.from({ length: K * N }, (_, i) => Math.cos(i * 0.11));
      const mm = (be: Backend) => F.matmul(Tensor.from(a, transA ? [K, M] : [M, K], 'f32', be), Tensor.from(b, transB ? [N, K] : [K, N], 'f32', be), { transA, transB });
      const yr = mm(ref).dataSync();
      const yg = await mm(gpu).data();
      let num = 0; let den = 0;
      for (let i = 0; i < yr.length; i++) { num += (yr[i]! - yg[i]!) ** 2; den += yr[i]! ** 2; }
      expect(num / den, `${M}x${K}x${N}${transA ? ' Aᵀ' : ''}${transB ? ' Bᵀ' : ''} split ${mode}`).toBeLessThan(1e-10);
    }
    setMatmulSplitK(DEFAULT_SPLITK);
  }, 900_000);

  it('an LM head (Bᵀ, N not a multiple of the tile nor of 4) with B\'s rows clamped or bounds-tested matches the reference', async () => {
    // 'clamp': B's rows past N read as its last row (no bounds test on loads; the columns they
    // make are not stored); 'off': bounds tests on every load. 520x24x15401: 8x16 per thread; 300x40x1234: 4x4.
    for (const [M, K, N] of [[520, 24, 15401], [300, 40, 1234]] as const) {
      const a = Array.from({ length: M * K }, (_, i) => Math.sin(i * 0.37));
      const b = Array.from({ length: K * N }, (_, i) => Math.cos(i * 0.11));
      const mm = (be: Backend) => F.matmul(Tensor.from(a, [M, K], 'f32', be), Tensor.from(b, [N, K], 'f32', be), { transB: true });
      const yr = mm(ref).dataSync();
      for (const mode of ['clamp', 'off'] as const) {
        setF32PadN(mode);
        const yg = await mm(gpu).data();
        let num = 0; let den = 0;
        for (let i = 0; i < yr.length; i++) { num += (yr[i]! - yg[i]!) ** 2; den += yr[i]! ** 2; }
        console.log(`LM head ${M}x${K}x${N} pad ${mode}: NMSE ${(num / den).toExponential(1)}`);
        expect(yg.length).toBe(M * N);
        expect(num / den, `${M}x${K}x${N} pad ${mode}`).toBeLessThan(1e-10);
      }
    }
    setF32PadN('clamp');
  }, 300_000);

  it('gelu_tanh across its range, alone and as a product epilogue, matches the reference', async () => {
    // 4096 values from -1e13 to 1e13, dense in [-12, 12] where the function bends and its tail
    // for x < 0 is small. Against x·σ(2u) in double: the reference's 0.5·x·(1 + tanh u) loses
    // all digits once 1 + tanh u falls below 1e-16 (x < -6), so the tail is compared with the
    // exact value and the reference is checked to agree where it keeps its digits. Relative
    // error where the value is above 1e-30, else absolute.
    const n = 4096;
    const xs = Array.from({ length: n }, (_, i) => {
      const t = i / (n - 1) * 2 - 1; // -1 .. 1
      return Math.abs(t) < 0.9 ? t / 0.9 * 12 : Math.sign(t) * 12 * 10 ** ((Math.abs(t) - 0.9) / 0.1 * 11.9);
    });
    const specials = [Infinity, -Infinity, NaN, 0, -0, 1e-30, -1e-30, 3e38, -3e38];
    // relative error over what f32 allows: e^{-2u} carries u's rounding times |2u| (the exponent's
    // conditioning), so the allowance is 2e-6 + 3e-7·|2u| (x = -9.5: 2.8e-5)
    const worst = (x: ArrayLike<number>, y: ArrayLike<number>, r: ArrayLike<number>) => {
      let rel = 0; let abs = 0; let at = 0;
      for (let i = 0; i < r.length; i++) {
        const d = Math.abs(y[i]! - r[i]!);
        const t = Math.abs(1.5957691216057308 * (x[i]! + 0.044715 * x[i]! ** 3));
        const e = d / Math.abs(r[i]!) / (2e-6 + 3e-7 * t);
        if (Math.abs(r[i]!) > 1e-30) { if (e > rel) { rel = e; at = x[i]!; } } else abs = Math.max(abs, d);
      }
      return { rel, abs, at };
    };
    const all = [...xs, ...specials];
    const exact = (x: number) => {
      const u = Math.sqrt(2 / Math.PI) * (x + 0.044715 * x * x * x);
      return x === -Infinity ? 0 : x === Infinity ? x : x / (1 + Math.exp(-2 * u));
    };
    const x32 = Float32Array.from(all);
    const ye = Float32Array.from(x32, exact);
    const yr = F.unary('gelu_tanh', Tensor.from(all, [all.length], 'f32', ref)).dataSync();
    const yg = await F.unary('gelu_tanh', Tensor.from(all, [all.length], 'f32', gpu)).data();
    const head = [...x32.subarray(0, n)].map((x, i) => (x > -5 ? i : -1)).filter((i) => i >= 0);
    const er = worst(head.map((i) => x32[i]!), head.map((i) => yr[i]!), head.map((i) => ye[i]!));
    expect(er.rel, 'the reference against x·σ(2u) for x > -5 (share of the allowance)').toBeLessThan(0.5);
    const e = worst(x32, yg.subarray(0, n), ye.subarray(0, n));
    console.log(`gelu_tanh elementwise: worst relative error ${e.rel.toFixed(3)} of the allowance (x = ${e.at.toPrecision(4)}), absolute below 1e-30 ${e.abs.toExponential(1)}`);
    expect(e.rel).toBeLessThan(1);
    expect(e.abs).toBeLessThan(1e-30);
    for (let i = n; i < all.length; i++) {
      const [g, r] = [yg[i]!, yr[i]!];
      expect(Number.isNaN(g), `gelu_tanh(${all[i]}) NaN`).toBe(Number.isNaN(r));
      if (!Number.isNaN(r)) expect(g === r || Math.abs(g - r) <= 1e-6 * Math.abs(r), `gelu_tanh(${all[i]}) = ${g}, reference ${r}`).toBe(true);
    }
    // the same values as act(I · W + 0) of a 64x64x64 linear layer (the tiled product's epilogue)
    const eye = Array.from({ length: 64 * 64 }, (_, i) => (i % 65 === 0 ? 1 : 0));
    const zero = new Array<number>(64).fill(0);
    const lin = (be: Backend) => F.fusedLinear(Tensor.from(eye, [64, 64], 'f32', be), Tensor.from(xs, [64, 64], 'f32', be), Tensor.from(zero, [64], 'f32', be), { act: 'gelu_tanh', force: true });
    const lg = await lin(gpu).data();
    const el = worst(x32.subarray(0, n), lg, ye.subarray(0, n));
    console.log(`gelu_tanh epilogue: worst relative error ${el.rel.toFixed(3)} of the allowance (x = ${el.at.toPrecision(4)}), absolute below 1e-30 ${el.abs.toExponential(1)}`);
    expect(el.rel).toBeLessThan(1);
    expect(el.abs).toBeLessThan(1e-30);
  }, 300_000);

  it('a linear layer split into k-ranges: their sum with bias and gelu, four outputs a thread or one, matches the reference', async () => {
    // 128x4096x256 under 'few': 4 k-ranges, added by the second pass with the epilogue
    const [M, K, N] = [128, 4096, 256];
    const a = Array.from({ length: M * K }, (_, i) => Math.sin(i * 0.37));
    const w = Array.from({ length: K * N }, (_, i) => Math.cos(i * 0.11) * 0.05);
    const bias = Array.from({ length: N }, (_, i) => Math.sin(i * 0.7));
    const lin = (be: Backend) => F.fusedLinear(Tensor.from(a, [M, K], 'f32', be), Tensor.from(w, [K, N], 'f32', be), Tensor.from(bias, [N], 'f32', be), { act: 'gelu_tanh', force: true });
    const yr = lin(ref).dataSync();
    setMatmulSplitK('few');
    for (const v4 of [true, false]) {
      setSplitSumVec4(v4);
      const yg = await lin(gpu).data();
      let num = 0; let den = 0;
      for (let i = 0; i < yr.length; i++) { num += (yr[i]! - yg[i]!) ** 2; den += yr[i]! ** 2; }
      expect(num / den, `split linear, ${v4 ? 'four' : 'one'} a thread`).toBeLessThan(1e-10);
    }
    setSplitSumVec4(true);
    setMatmulSplitK(DEFAULT_SPLITK);
  }, 300_000);

  it('few-row products on 16-byte loads (f32 and f16 weights, both layouts, split K or not) match the reference', async () => {
    // [M, K, N, transB]: K split over many workgroups (few columns) and not (many columns), under
    // each GEMV split setting (the default keeps these weights unsplit; 'auto' splits the first)
    const cases: [number, number, number, boolean][] = [[1, 4096, 64, false], [4, 512, 2048, false], [1, 4096, 24, true], [3, 256, 2304, true], [8, 1024, 96, true]];
    for (const mode of ['shape', 'auto', 'off'] as const) for (const dt of ['f32', 'f16'] as const) for (const [M, K, N, transB] of cases) {
      setGemvSplit(mode);
      const a = Array.from({ length: M * K }, (_, i) => Math.sin(i * 0.37));
      const b = Array.from({ length: K * N }, (_, i) => Math.cos(i * 0.11));
      const yr = F.matmul(Tensor.from(a, [M, K], dt, ref), Tensor.from(b, transB ? [N, K] : [K, N], dt, ref), { transB }).dataSync();
      const yg = await F.matmul(Tensor.from(a, [M, K], dt, gpu), Tensor.from(b, transB ? [N, K] : [K, N], dt, gpu), { transB }).data();
      let num = 0; let den = 0;
      for (let i = 0; i < yr.length; i++) { num += (yr[i]! - yg[i]!) ** 2; den += yr[i]! ** 2; }
      // f16 outputs: both sides round the f32 sum to f16 (NMSE of f16 rounding is ~1e-8)
      expect(num / den, `${dt} ${M}x${K}x${N}${transB ? ' Bᵀ' : ''} GEMV split ${mode}`).toBeLessThan(dt === 'f32' ? 1e-10 : 1e-6);
    }
    setGemvSplit('shape');
  }, 600_000);

  it('quantized blocks at byte offsets that are not word-aligned (views into a larger buffer) give the reference product', async () => {
    // rows of 3 q4_0 / q6_k blocks: 54 / 630 bytes, so every other row starts at an odd half-word;
    // the weight itself starts 2 bytes into its buffer, and x one element into its own
    for (const [type, K] of [['q4_0', 96], ['q6_k', 768], ['q4_k', 512]] as const) {
      const bytes = { q4_0: 18, q6_k: 210, q4_k: 144 }[type];
      const N = 5;
      const need = N * (K / (type === 'q4_0' ? 32 : 256)) * bytes;
      const raw = Array.from({ length: need + 4 }, (_, i) => (i * 37 + 11) % 256);
      for (let o = 2; o < need + 2; o += bytes) { const a = type === 'q6_k' ? o + 208 : o; raw[a] = 0x34; raw[a + 1] = 0x12; if (type === 'q4_k') { raw[o + 2] = 0x10; raw[o + 3] = 0x11; } }
      const xs = Array.from({ length: 2 * K + 1 }, (_, i) => Math.sin(i * 0.3));
      const run = (be: Backend) => {
        const r = Tensor.from(raw, [need + 4], 'u8', be).narrow(0, 2, need);
        const x = Tensor.from(xs, [2 * K + 1], 'f32', be).narrow(0, 1, 2 * K).reshape([2, K]);
        return qmatmul(x, new QuantizedTensor(r, type, [N, K]));
      };
      const yr = run(ref).dataSync();
      const yg = await run(gpu).data();
      let num = 0; let den = 0;
      for (let i = 0; i < yr.length; i++) { num += (yr[i]! - yg[i]!) ** 2; den += yr[i]! ** 2; }
      // two rows of x: q4_0 and q4_k take the decode GEMV that rounds x to 8 bits per 32 values
      // (where the adapter has packed dot products), whose budget is the conformance matrix's 3e-4
      const budget = A8_GEMV_TYPES.has(type) ? 3e-4 : 1e-10;
      console.log(`${type} at unaligned offsets: NMSE ${(num / den).toExponential(2)} (budget ${budget})`);
      expect(num / den, type).toBeLessThan(budget);
    }
  }, 300_000);

  it('reads synchronously only what JavaScript wrote', async () => {
    const ids = Tensor.from([3, 1, 4], [3], 'i32', gpu);
    expect(Array.from(ids.dataSync())).toEqual([3, 1, 4]);
    const y = ids.cast('f32');
    expect(() => y.dataSync()).toThrow(/cannot read synchronously/);
    expect(Array.from(await y.data())).toEqual([3, 1, 4]);
    ids.dispose();
    y.dispose();
  });

  it('names the backend and the size of an allocation it cannot make', () => {
    expect(() => gpu.alloc(2 ** 52)).toThrow(/webgpu backend: cannot allocate 4503599627370496 bytes/);
  });

  it('writes unaligned byte ranges', async () => {
    const t = Tensor.from([1, 2, 3, 4, 5, 6, 7], [7], 'u8', gpu);
    await gpu.flush();
    const buf = (t as unknown as { storage: { buffer: import('../src/tensor/backend.js').BackendBuffer } }).storage.buffer;
    gpu.write(buf, 1, new Uint8Array([20, 30]));
    const y = t.cast('i32');
    expect(Array.from(await y.data())).toEqual([1, 20, 30, 4, 5, 6, 7]);
    t.dispose();
    y.dispose();
  });
});
