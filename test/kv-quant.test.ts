// The quantized KV cache (src/models/kvquant): packed rows against reference quantize-dequantize (ggml's
// q8_0 / q4_0 bit for bit; KVQuant's per-token, per-channel, nuq and outlier rules), the wasm
// kernel against the js reference on the same bytes, the reference against the plain attention op
// on the dequantized cache, whole models with the cache on and off, and bad input.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as al from '../src/index.js';
import { initBackend } from '../src/tensor/engine.js';
import { randomModel } from '../src/models/random.js';
import type { CausalLM } from '../src/models/model.js';
import { decodeBlockQ4_0, decodeBlockQ8_0, quantizeQ4_0, quantizeQ8_0 } from '../src/formats/gguf-quants.js';
import { f16BitsToF32, f32ToF16Bits } from '../src/tensor/dtype.js';
import { decodeRow, encodeRow, fixedLut, streamLayout, type RowEncoder } from '../src/models/kvquant/codec.js';
import { KVCacheQuant } from '../src/models/kvquant/cache.js';
import { calibrateKV, collectKV, fitKV, weightedKMeans } from '../src/kvquant/calibrate.js';
import { parseKVCacheType, resolveKVSpec, type KVCacheSpec } from '../src/models/kvquant/spec.js';
import { evaluateLM } from '../src/models/evaluate.js';
import { generate } from '../src/models/generate.js';
import { TINY } from './helpers/tiny-configs.js';

const maxDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
};
const maxAbs = (a: ArrayLike<number>) => { let m = 0; for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]!)); return m; };

/** Writes one encoded row into fresh stream buffers and decodes it back (codec only, no backend). */
function roundTrip(e: RowEncoder, x: Float32Array, exact = false): { y: Float32Array; nOut: number } {
  const r = encodeRow(e, x, exact);
  const L = streamLayout(e.bits, e.R, e.params, e.G, e.grpBytes, 1, Math.max(1, r.outIdx.length), false, true);
  const main = new Uint8Array(L.bytes), out = new Uint8Array(L.outBytes);
  const dv = new DataView(main.buffer), ov = new DataView(out.buffer);
  main.set(r.codes, 0);
  main.set(r.grp, L.oGrp);
  dv.setInt32(L.oRowptr + 4, r.outIdx.length, true);
  e.lut.forEach((v, i) => dv.setFloat32(L.oLut + 4 * i, v, true));
  if (e.params === 'channel') for (let c = 0; c < e.R; c++) { dv.setFloat32(L.oChan + 4 * c, e.chanScale![c]!, true); dv.setFloat32(L.oChan + 4 * (e.R + c), e.chanOffset![c]!, true); }
  r.outIdx.forEach((c, i) => { ov.setUint16(2 * i, c, true); ov.setFloat32(L.oVal + 4 * i, r.outVal[i]!, true); });
  const y = new Float32Array(e.R);
  decodeRow(L, { main, out }, 0, 0, e.R, y);
  return { y, nOut: r.outIdx.length };
}

function randomRow(n: number, seed: number, outlierEvery = 0): Float32Array {
  let s = seed;
  const rnd = () => { s = (s * 1103515245 + 12345) >>> 0; return s / 2 ** 32; };
  return Float32Array.from({ length: n }, (_, i) => (rnd() * 2 - 1) * (outlierEvery && i % outlierEvery === 3 ? 40 : 1));
}

const f16 = (x: number) => f16BitsToF32(f32ToF16Bits(x));

describe('packed rows', () => {
  it('q8_0 and q4_0 rows decode to ggml\'s values bit for bit', () => {
    for (const [kind, quant, dec, bb] of [['q8_0', quantizeQ8_0, decodeBlockQ8_0, 34], ['q4_0', quantizeQ4_0, decodeBlockQ4_0, 18]] as const) {
      const x = randomRow(96, 7, 11);
      const e: RowEncoder = { kind, bits: kind === 'q8_0' ? 8 : 4, R: 96, params: 'group', G: 32, grpBytes: 2, lut: fixedLut(kind, kind === 'q8_0' ? 8 : 4), tau: Infinity };
      const { y } = roundTrip(e, x);
      const blocks = quant(x);
      const want = new Float32Array(96);
      for (let b = 0; b < 3; b++) dec(blocks, b * bb, want, b * 32);
      console.log(`${kind}: max |packed − ggml| = ${maxDiff(y, want)}, quantization error ${maxDiff(y, x).toExponential(2)}`);
      expect(Array.from(y)).toEqual(Array.from(want));
    }
  });

  it('kvquant per-token rows: min-max (uniform) or the codebook (nuq), f16 params, outliers exact', () => {
    const R = 48;
    for (const bits of [2, 3, 4]) {
      for (const nuq of [false, true]) {
        const x = randomRow(R, 11 + bits, 13);
        const lut = nuq ? Float32Array.from(weightedKMeans(Array.from(randomRow(500, 3)), new Array(500).fill(1), 1 << bits)) : fixedLut('uniform', bits);
        const e: RowEncoder = { kind: nuq ? 'nuq' : 'uniform', bits, R, params: 'group', G: R, grpBytes: 4, lut, tau: 5 };
        const { y, nOut } = roundTrip(e, x);
        // the rule written out: outliers are |x − median| > tau, the rest spans [mn, mx]
        const sorted = Array.from(x).sort((a, b) => a - b);
        const med = (sorted[R / 2 - 1]! + sorted[R / 2]!) / 2;
        const inl = Array.from(x).filter((v) => Math.abs(v - med) <= 5);
        const mn = Math.min(...inl), mx = Math.max(...inl);
        const [scale, offset] = nuq ? [f16((mx - mn) / 2), f16((mx + mn) / 2)] : [f16((mx - mn) / ((1 << bits) - 1)), f16(mn)];
        const want = Float32Array.from(x, (v) => {
          if (Math.abs(v - med) > 5) return v;
          const t = (v - offset) / scale;
          let best = 0;
          for (let i = 1; i < lut.length; i++) if (Math.abs(lut[i]! - t) < Math.abs(lut[best]! - t)) best = i;
          return Math.fround(Math.fround(lut[best]! * scale) + offset);
        });
        expect(nOut).toBe(R - inl.length);
        expect(nOut).toBeGreaterThan(0);
        expect(maxDiff(y, want)).toBe(0);
      }
    }
  });

  it('kvquant per-channel rows: calibrated ranges, values outside kept exact, a sink row all exact', () => {
    const R = 32, bits = 3;
    const lo = Float32Array.from({ length: R }, (_, c) => -1 - c / R), hi = Float32Array.from({ length: R }, (_, c) => 1 + c / R);
    const lut = fixedLut('uniform', bits);
    const e: RowEncoder = {
      kind: 'uniform', bits, R, params: 'channel', G: R, grpBytes: 0, lut, tau: Infinity, lo, hi,
      chanScale: Float32Array.from(lo, (l, c) => (hi[c]! - l) / 7), chanOffset: Float32Array.from(lo),
    };
    const x = randomRow(R, 5, 9);
    const { y, nOut } = roundTrip(e, x);
    const want = Float32Array.from(x, (v, c) => {
      if (v < lo[c]! || v > hi[c]!) return v;
      const q = Math.min(7, Math.max(0, Math.round((v - e.chanOffset![c]!) / e.chanScale![c]!)));
      return Math.fround(Math.fround(q * e.chanScale![c]!) + e.chanOffset![c]!);
    });
    expect(nOut).toBe(Array.from(x).filter((v, c) => v < lo[c]! || v > hi[c]!).length);
    expect(maxDiff(y, want)).toBe(0);
    const sink = roundTrip(e, x, true);
    expect(sink.nOut).toBe(R);
    expect(Array.from(sink.y)).toEqual(Array.from(x));
  });

  it('per-token outliers: |x − median(row)| > tau for odd and even rows with ties', () => {
    let mismatches = 0;
    for (let t = 0; t < 300; t++) {
      const n = 1 + (t % 67);
      const x = Float32Array.from(randomRow(n, 100 + t), (v) => Math.round(v * (t % 3 ? 10 : 3)) / (t % 2 ? 1 : 7));
      const s = Array.from(x).sort((a, b) => a - b);
      const med = n % 2 ? s[n >> 1]! : (s[(n >> 1) - 1]! + s[n >> 1]!) / 2;
      const want = Array.from(x).flatMap((v, i) => (Math.abs(v - med) > 0.4 ? [i] : []));
      const e: RowEncoder = { kind: 'uniform', bits: 4, R: n, params: 'group', G: n, grpBytes: 4, lut: fixedLut('uniform', 4), tau: 0.4 };
      if (JSON.stringify(encodeRow(e, x).outIdx) !== JSON.stringify(want)) mismatches++;
    }
    console.log(`outlier rule against a sorted median: ${mismatches} of 300 rows differ`);
    expect(mismatches).toBe(0);
  });

  it('weighted k-means follows the weights', () => {
    const xs = Array.from({ length: 1000 }, (_, i) => -1 + (2 * i) / 999);
    const plain = weightedKMeans(xs, xs.map(() => 1), 4);
    const heavy = weightedKMeans(xs, xs.map((x) => (Math.abs(x - 0.5) < 0.05 ? 1000 : 1)), 4);
    console.log('k-means centroids, uniform weights:', plain.map((c) => c.toFixed(3)).join(' '), '| weight at 0.5:', heavy.map((c) => c.toFixed(3)).join(' '));
    expect(plain[0]).toBeCloseTo(-0.75, 1);
    expect(Math.min(...heavy.map((c) => Math.abs(c - 0.5)))).toBeLessThan(0.02);
  });
});

describe('packed attention', () => {
  let wasm: al.Backend;
  let js: al.Backend;
  let model: CausalLM;
  let modelJs: CausalLM;
  const cfg = { ...TINY.llama!, hidden_size: 64, num_attention_heads: 4, num_key_value_heads: 2, max_position_embeddings: 128 };
  const calibIds = Array.from({ length: 320 }, (_, i) => (i * 7 + 3 + (i >> 4)) % 60);
  const seq = [1, 5, 9, 22, 31, 5, 9, 22, 40, 41, 3, 7, 12, 5, 9, 22, 31, 50, 2, 8, 17, 33, 5, 9];
  const specs: Record<string, KVCacheSpec> = {};

  beforeAll(async () => {
    wasm = await initBackend('wasm');
    js = await initBackend('js');
    model = randomModel(cfg, wasm, { seed: 3 });
    modelJs = randomModel(cfg, js, { seed: 3 });
    const stats = collectKV(model, calibIds, { ctx: 64 });
    specs.q8_0 = { type: 'q8_0' };
    specs.q4_0 = { type: 'q4_0' };
    for (const s of [{ bits: 4 }, { bits: 3, preRope: false }, { bits: 2, nuq: false, keys: 'per-token' as const }, { bits: 4, outliers: 0, sink: false }]) {
      const spec: KVCacheSpec = { type: 'kvquant', ...s };
      spec.calibration = fitKV(stats, resolveKVSpec(spec));
      specs[`kvquant-${s.bits} ${JSON.stringify(s)}`] = spec;
    }
  }, 120_000);
  afterAll(() => { model.dispose(); modelJs.dispose(); });

  const forward = (m: CausalLM, b: al.Backend, cache?: KVCacheQuant, hooks?: al.Hooks) => al.tidy(() => {
    const x = al.tensor(seq, [1, seq.length], 'i32', { backend: b });
    return m.forward(x, { cache, hooks }).dataSync() as Float32Array;
  });

  it('the wasm kernel equals the js reference on the same packed bytes', () => {
    for (const [name, spec] of Object.entries(specs)) {
      const cache = new KVCacheQuant(spec, wasm);
      forward(model, wasm, cache);
      // 3 query rows, batch 1, against the 24 cached positions of layer 1
      const q = al.randn([1, 4, 3, 16], { seed: 5, backend: wasm });
      const inv = al.tensor(Array.from({ length: 8 }, (_, i) => 1 / 10000 ** (i / 8)), [8], 'f32', { backend: wasm });
      const o = { scale: 0.25, rope: { invFreq: inv, rotaryDim: 16, mode: 'half' as const } };
      const yk = cache.attend(1, q, o), yr = cache.attend(1, q, { ...o, reference: true });
      const [a, b] = [yk.dataSync(), yr.dataSync()];
      const err = maxDiff(a, b) / maxAbs(b);
      console.log(`${name}: kernel vs reference, max relative error ${err.toExponential(2)}`);
      expect(err).toBeLessThan(1e-5);
      for (const t of [q, inv, yk, yr]) t.dispose();
      cache.dispose();
    }
  });

  it('attention over the packed cache equals the attention op over the dequantized cache', () => {
    // A hook at the pattern makes the layer take the explicit path over `dequantized()` (RoPE by
    // the rope table, then softmax and P·V by the plain ops); without it the kernel runs.
    for (const [name, spec] of Object.entries(specs)) {
      const c1 = new KVCacheQuant(spec, wasm), c2 = new KVCacheQuant(spec, wasm);
      const packed = forward(model, wasm, c1);
      const hooks = new al.Hooks();
      hooks.add(/hook_pattern$/, (t) => t);
      const plain = forward(model, wasm, c2, hooks);
      const err = maxDiff(packed, plain) / maxAbs(plain);
      console.log(`${name}: packed kernel vs attention op on the dequantized cache, max relative logit error ${err.toExponential(2)}`);
      expect(err).toBeLessThan(1e-4);
      c1.dispose(); c2.dispose();
    }
  });

  it('left-padded batches: the kernel (key mask, per-sequence sink and positions) equals the explicit path', () => {
    const ids = [[0, 0, 0, 0, ...seq.slice(0, 12)], seq.slice(4, 20)];
    const mask = [[0, 0, 0, 0, ...new Array(12).fill(1)], new Array(16).fill(1)];
    for (const name of ['q4_0', 'kvquant-4 {"bits":4}']) {
      const run = (hooks?: al.Hooks) => al.tidy(() => {
        const c = new KVCacheQuant(specs[name]!, wasm);
        try {
          const x = al.tensor(ids.flat(), [2, 16], 'i32', { backend: wasm });
          return model.forward(x, { cache: c, attentionMask: mask, hooks }).dataSync() as Float32Array;
        } finally {
          c.dispose();
        }
      });
      const hooks = new al.Hooks();
      hooks.add(/hook_pattern$/, (t) => t);
      const [a, b] = [run(), run(hooks)];
      const V = a.length / 32;
      // the real positions: sequence 0 from position 4 on, then all of sequence 1 (batch-major)
      const real = (y: Float32Array) => y.subarray(4 * V);
      const err = maxDiff(real(a), real(b)) / maxAbs(real(b));
      console.log(`${name}, batch of 2 with left padding: kernel vs explicit path, max relative logit error ${err.toExponential(2)}`);
      expect(err).toBeLessThan(1e-4);
    }
  });

  it('on js the reference runs the model; quantized logits stay near the f32 cache\'s', () => {
    const f = forward(modelJs, js);
    for (const [name, spec] of Object.entries(specs)) {
      const c = new KVCacheQuant(spec, js);
      const y = forward(modelJs, js, c);
      const m = c.memory();
      const err = maxDiff(y, f) / maxAbs(f);
      console.log(`${name}: relative logit error vs f32 ${err.toExponential(2)}, ${m.bytesPerToken.toFixed(1)} bytes/token = ${(m.bytesPerToken / m.f32BytesPerToken).toFixed(3)}x f32, exact ${(100 * m.sparseShare).toFixed(2)}%`);
      expect(err).toBeLessThan(name.startsWith('kvquant-2') ? 1 : 0.5);
      expect(m.bytesPerToken / m.f32BytesPerToken).toBeLessThan(0.3);
      c.dispose();
    }
  });

  it('generation and evaluation take kvCache; the cache frees what it held', () => {
    const before = al.liveTensors().tensors;
    const f32 = generate(model, [seq.slice(0, 6)], { maxNewTokens: 8 });
    const q8 = generate(model, [seq.slice(0, 6)], { maxNewTokens: 8, kvCache: specs.q8_0 });
    console.log('greedy f32', f32.newIds[0]!.join(','), '| q8_0', q8.newIds[0]!.join(','));
    expect(q8.newIds[0]!.length).toBe(8);
    const r = evaluateLM(model, calibIds, { ctx: 32, maxChunks: 2, ref: model, kvCache: specs['kvquant-4 {"bits":4}'] });
    console.log(`eval kvquant-4: ppl ${r.perplexity.toFixed(3)} (f32 ${r.refPerplexity!.toFixed(3)}), KL ${r.kl!.toExponential(3)}, top-1 ${r.top1}, ${r.kvMemory!.bytesPerToken.toFixed(1)} bytes/token`);
    expect(r.kl!).toBeGreaterThan(0);
    expect(r.kvMemory!.bytesPerToken / r.kvMemory!.f32BytesPerToken).toBeLessThan(0.3);
    expect(al.liveTensors().tensors).toBe(before);
  }, 120_000);

  it('bad input: bits, calibration length, block size, backend, calibration mismatch', () => {
    expect(() => resolveKVSpec({ type: 'kvquant', bits: 9 })).toThrow(/bits: 9 is out of range \(kvquant takes 2\.\.8 bits\)/);
    expect(() => resolveKVSpec({ type: 'kvquant', bits: 1 })).toThrow(/out of range/);
    expect(() => parseKVCacheType('q5_1')).toThrow(/unknown KV cache type 'q5_1'/);
    expect(() => calibrateKV(model, calibIds.slice(0, 100), resolveKVSpec({ type: 'kvquant', bits: 4 }))).toThrow(/100 tokens are too few .* need at least 200/);
    expect(() => new KVCacheQuant({ type: 'kvquant', bits: 4 }, wasm)).toThrow(/needs an offline calibration/);
    expect(() => new KVCacheQuant({ ...specs['kvquant-4 {"bits":4}']!, bits: 3 }, wasm)).toThrow(/fitted for kvquant-4/);
    const gpu = { name: 'webgpu', synchronous: false } as unknown as al.Backend;
    expect(() => new KVCacheQuant({ type: 'q4_0' }, gpu)).toThrow(/webgpu backend has no packed KV-cache kernel .*--backend wasm/);
    const narrow = randomModel(TINY.llama!, wasm, { seed: 1 }); // kv_head · d_head = 16
    const c = new KVCacheQuant({ type: 'q4_0' }, wasm);
    expect(() => forward(narrow, wasm, c)).toThrow(/rows of kv_head · d_head = 16 values are not a whole number of 32-value blocks/);
    c.dispose();
    narrow.dispose();
  });
});

describe('packed attention kernel across layouts', () => {
  // Random keys and values stored through the cache, then the wasm kernel against the js reference
  // on the same bytes: head sizes that take each decoder (4-bit byte planes, 8-bit integer ramps,
  // a value at a time), slices inside one group and made of whole groups, several key blocks,
  // both RoPE modes with a partial rotary width, a left-padded batch with its key mask, and one
  // query head per kv head (4-bit keys and values sixteen rows a vector: kvattn-keyst.mjs, kvattn-valst.mjs).
  let wasm: al.Backend;
  let js: al.Backend;
  beforeAll(async () => { wasm = await initBackend('wasm'); js = await initBackend('js'); });

  const lut = (n: number, seed: number) => Array.from(randomRow(n, seed)).sort((a, b) => a - b);
  function calibration(spec: KVCacheSpec, R: number): KVCacheSpec {
    if (spec.type !== 'kvquant') return spec;
    const r = resolveKVSpec(spec);
    const n = 1 << r.bits;
    const keys = r.keys === 'per-channel'
      ? { lo: Array.from(randomRow(R, 7), (x) => -2 + 0.3 * x), hi: Array.from(randomRow(R, 8), (x) => 2 + 0.3 * x), lut: r.nuq ? lut(n, 9) : undefined }
      : { tau: r.outliers > 0 ? 2.2 : undefined, lut: r.nuq ? lut(n, 10) : undefined };
    return { ...spec, calibration: { bits: r.bits, keys: r.keys, preRope: r.preRope, nuq: r.nuq, outliers: r.outliers, tokens: 1000, layers: [{ keys, values: { tau: r.outliers > 0 ? 2.2 : undefined, lut: r.nuq ? lut(n, 11) : undefined } }] } };
  }

  const cases: { name: string; spec: KVCacheSpec; hq: number; hkv: number; d: number; tk: number; tq: number; batch: number; rot: number; mode: 'half' | 'interleaved'; split?: number }[] = [
    { name: 'q4_0, heads of 8 inside a 32-value group, 3 key blocks', spec: { type: 'q4_0' }, hq: 8, hkv: 4, d: 8, tk: 150, tq: 1, batch: 1, rot: 8, mode: 'half' },
    { name: 'q8_0, heads of 64 = two whole groups', spec: { type: 'q8_0' }, hq: 4, hkv: 2, d: 64, tk: 70, tq: 2, batch: 1, rot: 64, mode: 'half' },
    { name: 'q4_0, heads of 32 = one whole group, batch of 2', spec: { type: 'q4_0' }, hq: 2, hkv: 2, d: 32, tk: 65, tq: 1, batch: 2, rot: 32, mode: 'interleaved' },
    { name: 'q4_0, heads of 12 (a value at a time)', spec: { type: 'q4_0' }, hq: 8, hkv: 8, d: 12, tk: 40, tq: 1, batch: 1, rot: 12, mode: 'half' },
    { name: 'kvquant-4, heads of 64, per-channel keys, outliers, sink, interleaved partial RoPE', spec: { type: 'kvquant', bits: 4 }, hq: 4, hkv: 2, d: 64, tk: 130, tq: 1, batch: 1, rot: 32, mode: 'interleaved' },
    { name: 'kvquant-4, heads of 8, left-padded batch of 2', spec: { type: 'kvquant', bits: 4 }, hq: 8, hkv: 4, d: 8, tk: 90, tq: 1, batch: 2, rot: 8, mode: 'half' },
    { name: 'kvquant-8 uniform (an integer ramp), per-token keys', spec: { type: 'kvquant', bits: 8, nuq: false, keys: 'per-token' }, hq: 2, hkv: 2, d: 16, tk: 66, tq: 3, batch: 1, rot: 16, mode: 'half' },
    { name: 'kvquant-8 nuq (a value at a time)', spec: { type: 'kvquant', bits: 8 }, hq: 2, hkv: 1, d: 16, tk: 20, tq: 1, batch: 1, rot: 16, mode: 'half' },
    { name: 'kvquant-4, 4 heads of 32 (segment index per head), stored a prompt then a step at a time', spec: { type: 'kvquant', bits: 4 }, hq: 8, hkv: 4, d: 32, tk: 100, tq: 1, batch: 1, rot: 32, mode: 'half', split: 40 },
    { name: 'kvquant-4, heads of 8, one sequence (rows back to back: one run of codes, exact entries a block at a time)', spec: { type: 'kvquant', bits: 4 }, hq: 8, hkv: 4, d: 8, tk: 151, tq: 1, batch: 1, rot: 8, mode: 'half' },
    { name: 'q8_0, heads of 8, one sequence (a run of 8-bit codes, odd last block)', spec: { type: 'q8_0' }, hq: 4, hkv: 4, d: 8, tk: 97, tq: 2, batch: 1, rot: 8, mode: 'half' },
    { name: 'kvquant-8 uniform, heads of 8, per-token keys (a run of an integer ramp)', spec: { type: 'kvquant', bits: 8, nuq: false, keys: 'per-token' }, hq: 4, hkv: 4, d: 8, tk: 45, tq: 1, batch: 1, rot: 8, mode: 'interleaved' },
    { name: 'kvquant-4, heads of 16, one sequence (exact entries a block at a time)', spec: { type: 'kvquant', bits: 4 }, hq: 4, hkv: 2, d: 16, tk: 130, tq: 1, batch: 1, rot: 16, mode: 'half' },
    { name: 'kvquant-4, heads of 64, one query head per kv head (RoPE inside the scores), 2 query rows, 3 key blocks', spec: { type: 'kvquant', bits: 4 }, hq: 3, hkv: 3, d: 64, tk: 150, tq: 2, batch: 1, rot: 64, mode: 'half' },
    { name: 'kvquant-4, heads of 32, one query head per kv head, partial RoPE inside the scores, left-padded batch of 2', spec: { type: 'kvquant', bits: 4 }, hq: 2, hkv: 2, d: 32, tk: 71, tq: 1, batch: 2, rot: 24, mode: 'half' },
    { name: 'kvquant-3, heads of 16 (a value at a time)', spec: { type: 'kvquant', bits: 3 }, hq: 4, hkv: 2, d: 16, tk: 75, tq: 1, batch: 1, rot: 6, mode: 'half' },
    // one query head per kv head, 4-bit per-channel keys and per-token values: both streams sixteen rows a vector
    { name: 'kvquant-4 uniform, no outliers or sink, heads of 64, one query head per kv head (no exact entries), 3 query rows', spec: { type: 'kvquant', bits: 4, nuq: false, outliers: 0, sink: false }, hq: 2, hkv: 2, d: 64, tk: 83, tq: 3, batch: 1, rot: 64, mode: 'half' },
    { name: 'kvquant-4, heads of 64, one query head per kv head, stored a prompt then a step at a time', spec: { type: 'kvquant', bits: 4 }, hq: 3, hkv: 3, d: 64, tk: 90, tq: 1, batch: 1, rot: 64, mode: 'half', split: 37 },
  ];

  it.each(cases)('$name', (c) => {
    const R = c.hkv * c.d;
    const cache = new KVCacheQuant(calibration(c.spec, R), wasm);
    const pad = c.batch > 1 ? 5 : 0; // sequence 0 left-padded by 5 positions
    const mask = Uint8Array.from({ length: c.batch * c.tk }, (_, i) => (i < c.tk && i % c.tk < pad ? 0 : 1));
    const positions = Int32Array.from({ length: c.batch * c.tk }, (_, i) => Math.max(0, (i % c.tk) - (i < c.tk ? pad : 0)));
    // outliers: every 13th key value is large
    const k = al.tensor(randomRow(c.batch * R * c.tk, 21, 13), [c.batch, c.hkv, c.tk, c.d], 'f32', { backend: wasm });
    const v = al.tensor(randomRow(c.batch * R * c.tk, 22, 17), [c.batch, c.hkv, c.tk, c.d], 'f32', { backend: wasm });
    // the same rows encoded by the wasm kernel (cache) and by codec.ts's encodeRow on js (ref)
    const ref = new KVCacheQuant(calibration(c.spec, R), js);
    const kj = al.tensor(k.dataSync(), k.shape, 'f32', { backend: js }), vj = al.tensor(v.dataSync(), v.shape, 'f32', { backend: js });
    const fill = (cc: KVCacheQuant, kk: al.Tensor, vv: al.Tensor) => {
      if (c.split) {
        // a prompt of `split` positions, then one position per store: the streams grow (rows and
        // exact entries) and each step appends its rows, row pointers and segment index
        for (let t0 = 0; t0 < c.tk; t0 = t0 ? t0 + 1 : c.split) {
          const n = t0 ? 1 : c.split;
          const kt = kk.narrow(2, t0, n).contiguous(), vt = vv.narrow(2, t0, n).contiguous();
          cc.store(0, kt, vt, positions.subarray(t0, t0 + n));
          cc.commit();
          kt.dispose(); vt.dispose();
        }
      } else {
        // keys as a strided view (the layer hands the cache [b, t, kv_head, d] permuted)
        const kp = kk.permute([0, 2, 1, 3]).contiguous(), kv = kp.permute([0, 2, 1, 3]);
        cc.store(0, kv, vv, positions, c.batch > 1 ? mask : undefined);
        cc.commit();
        kp.dispose();
      }
    };
    fill(cache, k, v);
    fill(ref, kj, vj);
    const rope0 = { invFreq: al.tensor(Array.from({ length: c.rot / 2 }, (_, i) => 1 / 10000 ** ((2 * i) / c.rot)), [c.rot / 2], 'f32', { backend: js }), rotaryDim: c.rot, mode: c.mode };
    const [dw, dj] = [cache.dequantized(0, rope0), ref.dequantized(0, rope0)];
    const encErr = Math.max(maxDiff(dw.k.dataSync(), dj.k.dataSync()), maxDiff(dw.v.dataSync(), dj.v.dataSync()));
    // the wasm cache also keeps its exact entries a kv head at a time (one sequence, heads of 32 and more) for the kernel
    const mw = cache.memory(), mr = ref.memory(), hl = mw.headLists;
    console.log(`${c.name}: wasm encoder vs encodeRow, max difference of the decoded cache ${encErr}, ${mw.bytesPerToken} (per-head lists ${hl.bytesPerToken}) vs ${mr.bytesPerToken} bytes/token`);
    expect(encErr).toBe(0);
    expect(hl.bytesPerToken > 0).toBe(c.batch === 1 && c.d >= 32 && mr.sparseShare > 0);
    expect(mw.bytesPerToken - hl.bytesPerToken).toBeCloseTo(mr.bytesPerToken, 9);
    expect({ ...mw, bytesPerToken: mr.bytesPerToken, fixedBytes: mw.fixedBytes - hl.fixedBytes, headLists: mr.headLists }).toEqual(mr);
    for (const t of [dw.k, dw.v, dj.k, dj.v, kj, vj, rope0.invFreq]) t.dispose();
    ref.dispose();
    const q = al.randn([c.batch, c.hq, c.tq, c.d], { seed: 23, backend: wasm });
    const inv = al.tensor(Array.from({ length: c.rot / 2 }, (_, i) => 1 / 10000 ** ((2 * i) / c.rot)), [c.rot / 2], 'f32', { backend: wasm });
    const keyMask = c.batch > 1 ? al.tensor(mask, [c.batch, c.tk], 'u8', { backend: wasm }) : undefined;
    const o = { scale: 1 / Math.sqrt(c.d), rope: { invFreq: inv, rotaryDim: c.rot, mode: c.mode }, keyMask, keyMaskHost: c.batch > 1 ? mask : undefined };
    const yk = cache.attend(0, q, o), yr = cache.attend(0, q, { ...o, reference: true });
    const [a, b] = [yk.dataSync(), yr.dataSync()];
    const err = maxDiff(a, b) / maxAbs(b);
    console.log(`${c.name}: kernel vs reference over ${c.tk} keys, max relative error ${err.toExponential(2)} (${(100 * cache.memory().sparseShare || 0).toFixed(1)}% exact)`);
    expect(err).toBeLessThan(1e-5);
    for (const t of [k, v, q, inv, yk, yr, ...(keyMask ? [keyMask] : [])]) t.dispose();
    cache.dispose();
  });
});
