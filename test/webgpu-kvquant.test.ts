// KVQuant's caches held on the WebGPU device (src/backends/webgpu/kernels/kv-quant.ts): per-channel
// pre-RoPE keys rotated in the attention kernel, per-token values, nuq codebooks and uniform levels
// of 4, 3 and 2 bits, outliers in the device's side table, the sink row. Each against the same cache
// on the js backend (the reference codec and attention, src/models/kvquant/reference.ts) fed the
// same rows: dequantized keys and values, attention outputs, errors printed; a model's logits
// against wasm, and greedy generation. Skips where no WebGPU adapter exists.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as al from '../src/index.js';
import { initBackend } from '../src/tensor/engine.js';
import { KVCacheQuant } from '../src/models/kvquant/cache.js';
import type { KVCalibration, KVCacheSpec } from '../src/models/kvquant/spec.js';
import { kvGreedy, kvLogitErrors, kvTestModels, kvquant4Calibrated, maxAbs, openWebGpu, randomRow } from './webgpu-helpers.js';
import { KV_TUNING } from '../src/backends/webgpu/kernels/kv-cache.js';

const { backend, reason } = await openWebGpu();
if (!backend) console.log(`webgpu KVQuant tests skipped: ${reason}`);

/** Max difference, and how many values differ by more than `tol` (a code rounded the other way). */
function compare(a: ArrayLike<number>, b: ArrayLike<number>, tol: number): { max: number; off: number } {
  let max = 0, off = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i]! - b[i]!);
    if (!(d <= tol)) off++;
    max = Math.max(max, Number.isNaN(d) ? Infinity : d);
  }
  return { max, off };
}

/** A calibration of R channels: key ranges ±1.2, value τ 1.5 (only the ×40 values are outliers), a codebook. */
function calibration(bits: number, R: number, layers: number, o: { nuq: boolean; outliers: number; keys?: 'per-channel' | 'per-token' }): KVCalibration {
  const n = 1 << bits;
  // a non-uniform codebook: denser near 0
  const lut = Array.from({ length: n }, (_, i) => { const u = -1 + (2 * i) / (n - 1); return Math.sign(u) * u * u * 0.7 + u * 0.3; });
  return {
    bits, keys: o.keys ?? 'per-channel', preRope: true, nuq: o.nuq, outliers: o.outliers, tokens: 1000,
    layers: Array.from({ length: layers }, () => ({
      keys: { lo: new Array(R).fill(-1.2), hi: new Array(R).fill(1.2), lut: o.nuq ? lut : undefined, tau: o.outliers ? 1.5 : undefined },
      values: { tau: o.outliers ? 1.5 : undefined, lut: o.nuq ? lut : undefined },
    })),
  };
}

describe.skipIf(!backend)('KVQuant caches on webgpu', () => {
  let gpu: al.Backend;
  let js: al.Backend;
  let wasm: al.Backend;
  beforeAll(async () => { gpu = backend!; js = await initBackend('js'); wasm = await initBackend('wasm'); });
  afterAll(() => gpu?.dispose());

  const cases: { name: string; bits: number; nuq: boolean; outliers: number; sink: boolean; keys?: 'per-channel' | 'per-token'; hq: number; hkv: number; d: number; tk: number; tq: number; batch: number; steps: number; mode: 'half' | 'interleaved'; rot: number }[] = [
    { name: 'kvquant-4 (nuq, 1% outliers, sink), heads of 32, 3 appends', bits: 4, nuq: true, outliers: 0.01, sink: true, hq: 4, hkv: 2, d: 32, tk: 70, tq: 1, batch: 1, steps: 3, mode: 'half', rot: 32 },
    { name: 'kvquant-3 (nuq), interleaved RoPE on 48 of 64, 2 queries', bits: 3, nuq: true, outliers: 0.01, sink: true, hq: 4, hkv: 2, d: 64, tk: 45, tq: 2, batch: 1, steps: 2, mode: 'interleaved', rot: 48 },
    { name: 'kvquant-2 (uniform, no outliers, no sink)', bits: 2, nuq: false, outliers: 0, sink: false, hq: 2, hkv: 2, d: 32, tk: 40, tq: 1, batch: 1, steps: 2, mode: 'half', rot: 32 },
    { name: 'kvquant-4, per-token keys, left-padded batch of 2', bits: 4, nuq: true, outliers: 0.01, sink: true, keys: 'per-token', hq: 2, hkv: 2, d: 32, tk: 36, tq: 1, batch: 2, steps: 2, mode: 'half', rot: 32 },
  ];

  it.each(cases)('$name: dequantized streams and attention against the js reference', async (c) => {
    const R = c.hkv * c.d;
    const spec: KVCacheSpec = { type: 'kvquant', bits: c.bits, nuq: c.nuq, outliers: c.outliers, sink: c.sink, keys: c.keys ?? 'per-channel', calibration: calibration(c.bits, R, 1, c) };
    const cg = new KVCacheQuant(spec, gpu), cj = new KVCacheQuant(spec, js);
    const pad = c.batch > 1 ? 4 : 0;
    // sequence 0 left-padded by `pad` positions; its positions count from its first real token
    const mask = Uint8Array.from({ length: c.batch * c.tk }, (_, i) => (i < c.tk && i < pad ? 0 : 1));
    const posOf = (b: number, t: number) => (b === 0 ? Math.max(0, t - pad) : t);
    // outliers: one value in 29 is 40x (at most 2 in a block of 32: the device's 2 slots hold them all)
    const kx = randomRow(c.batch * R * c.tk, 31, 29), vx = randomRow(c.batch * R * c.tk, 32, 29);
    const cuts = [0, ...Array.from({ length: c.steps - 1 }, (_, i) => c.tk - c.steps + 1 + i), c.tk];
    for (let s = 0; s + 1 < cuts.length; s++) {
      const [t0, t1] = [cuts[s]!, cuts[s + 1]!];
      const T = t1 - t0;
      const part = (x: Float32Array) => {
        const out = new Float32Array(c.batch * c.hkv * T * c.d);
        for (let bh = 0; bh < c.batch * c.hkv; bh++) out.set(x.subarray((bh * c.tk + t0) * c.d, (bh * c.tk + t1) * c.d), bh * T * c.d);
        return out;
      };
      const positions = Int32Array.from({ length: c.batch * T }, (_, i) => posOf(Math.floor(i / T), t0 + (i % T)));
      const keyMask = c.batch > 1 ? Uint8Array.from({ length: c.batch * t1 }, (_, i) => mask[Math.floor(i / t1) * c.tk + (i % t1)]!) : undefined;
      for (const [cache, be] of [[cg, gpu], [cj, js]] as const) {
        const k = al.tensor(part(kx), [c.batch, c.hkv, T, c.d], 'f32', { backend: be });
        const v = al.tensor(part(vx), [c.batch, c.hkv, T, c.d], 'f32', { backend: be });
        cache.store(0, k, v, positions, keyMask);
        cache.commit();
        k.dispose(); v.dispose();
      }
    }
    const half = c.rot / 2;
    const invHost = Array.from({ length: half }, (_, i) => 1 / 10000 ** ((2 * i) / c.rot));
    const inv = (be: al.Backend) => al.tensor(invHost, [half], 'f32', { backend: be });
    const [ig, ij] = [inv(gpu), inv(js)];
    const rope = (t: al.Tensor) => ({ invFreq: t, rotaryDim: c.rot, mode: c.mode });
    const dg = cg.dequantized(0, rope(ig)), dj = cj.dequantized(0, rope(ij));
    const scaleOf = maxAbs(kx);
    for (const which of ['k', 'v'] as const) {
      const [a, b] = [(await dg[which].data()) as Float32Array, dj[which].dataSync() as Float32Array];
      const r = compare(a, b, 1e-5 * scaleOf);
      console.log(`${c.name}, ${which}: device vs js dequantized, ${r.off} of ${a.length} values off by more than 1e-5 (a code rounded the other way), max difference ${r.max.toExponential(2)}`);
      expect(r.off).toBeLessThanOrEqual(Math.ceil(a.length * 2e-3));
    }
    const q = randomRow(c.batch * c.hq * c.tq * c.d, 33);
    const qg = al.tensor(q, [c.batch, c.hq, c.tq, c.d], 'f32', { backend: gpu });
    const qj = al.tensor(q, [c.batch, c.hq, c.tq, c.d], 'f32', { backend: js });
    const maskG = c.batch > 1 ? al.tensor(mask, [c.batch, c.tk], 'u8', { backend: gpu }) : undefined;
    const o = { scale: 1 / Math.sqrt(c.d), keyMaskHost: c.batch > 1 ? mask : undefined };
    const yg = cg.attend(0, qg, { ...o, keyMask: maskG, rope: rope(ig) });
    const yj = cj.attend(0, qj, { ...o, rope: rope(ij) });
    const [a, b] = [(await yg.data()) as Float32Array, yj.dataSync() as Float32Array];
    const err = compare(a, b, Infinity).max / maxAbs(b);
    console.log(`${c.name}: webgpu attention vs js reference over ${c.tk} keys, max relative error ${err.toExponential(2)}`);
    expect(err).toBeLessThan(2e-3);
    // keys split in runs of 16 over workgroups, query rows in chunks of about 3
    const saved = { ...KV_TUNING };
    Object.assign(KV_TUNING, { split: 16, scoreBytes: 3 * 4 * c.tk });
    const y3 = cg.attend(0, qg, { ...o, keyMask: maskG, rope: rope(ig) });
    Object.assign(KV_TUNING, saved);
    const e3 = compare((await y3.data()) as Float32Array, a, Infinity).max / maxAbs(a);
    console.log(`${c.name}: keys split in runs of 16, rows in chunks, against runs of 64: max relative difference ${e3.toExponential(2)}`);
    expect(e3).toBeLessThan(1e-5);
    y3.dispose();
    const m = cg.memory(), mj = cj.memory();
    console.log(`${c.name}: ${m.bytesPerToken} bytes per token on the device (js's CSR layout ${mj.bytesPerToken.toFixed(1)}; f32 cache ${m.f32BytesPerToken}, ${(m.bytesPerToken / m.f32BytesPerToken).toFixed(3)}x)`);
    // heads of 32 hold 4 slots of 5 bytes a block (heads of 64 and 128: 6 and 8, ≤ 0.26x at 4 bits)
    expect(m.bytesPerToken / m.f32BytesPerToken).toBeLessThan(c.bits === 4 ? 0.32 : 0.25);
    for (const t of [ig, ij, dg.k, dg.v, dj.k, dj.v, qg, qj, yg, yj, ...(maskG ? [maskG] : [])]) t.dispose();
    cg.dispose(); cj.dispose();
  }, 120_000);

  it('a block with more outliers than its slots keeps the farthest exact', async () => {
    const hkv = 1, d = 32, R = 32;
    const spec: KVCacheSpec = { type: 'kvquant', bits: 4, sink: false, calibration: calibration(4, R, 1, { nuq: true, outliers: 0.01 }) };
    const cg = new KVCacheQuant(spec, gpu);
    const x = randomRow(2 * R, 41);
    // row 1: six key outliers (outside ±1.2) at channels 3, 7, 11, 20, 25, 30; four slots
    const far = [[3, 5], [7, -9], [11, 2], [20, 7], [25, -4], [30, -3]] as const;
    for (const [c, v] of far) x[R + c] = v;
    const k = al.tensor(x, [1, hkv, 2, d], 'f32', { backend: gpu });
    cg.store(0, k, k, Int32Array.from([0, 1]));
    cg.commit();
    const dq = cg.dequantized(0);
    const got = (await dq.k.data()) as Float32Array;
    const exact = far.map(([c]) => got[R + c] === x[R + c]);
    console.log(`outliers of row 1 kept exact: ${exact.join(', ')} (channels 3, 7, 11, 20, 25, 30; slots for 4: the farthest are 3, 7, 20, 25)`);
    expect(exact).toEqual([true, true, false, true, true, false]);
    // the others clamped to the range, as any value
    for (const c of [11, 30]) expect(Math.abs(got[R + c]!)).toBeLessThanOrEqual(1.2 + 1e-6);
    for (const t of [k, dq.k, dq.v]) t.dispose();
    cg.dispose();
  }, 60_000);

  it('a llama model on webgpu with kvquant-4: logits as on wasm, the pattern-hook path, greedy generation', async () => {
    const m = kvTestModels(gpu, wasm);
    const { mw } = m;
    const spec = kvquant4Calibrated(mw);
    const { vsWasm: e1, vsHookPath: e2 } = await kvLogitErrors(m, spec);
    console.log(`kvquant-4: webgpu vs wasm logits, max relative error ${e1.toExponential(2)}; kernel vs the pattern-hook path on webgpu ${e2.toExponential(2)}`);
    expect(e1).toBeLessThan(2e-3);
    expect(e2).toBeLessThan(1e-4);
    const g = await kvGreedy(m, spec);
    console.log('greedy kvquant-4 cache: webgpu', g.gpu.join(','), '| wasm', g.wasm.join(','));
    expect(g.gpu).toEqual(g.wasm);
    expect(g.leaked).toBe(0);
    m.mg.dispose(); mw.dispose();
  }, 180_000);
});
