// Quantized products on ONNX Runtime's MLAS (MatMulNBits through onnxruntime-node): Q4_0, Q8_0 and
// Q6_K weights repacked exactly, Q4_K and Q5_K with per-block offsets up to the offsets' f32
// rounding (checked by dequantizing the repacked codes), products against the
// js reference (dequantize then f32) within qmatmul's budget with the error printed, one-row
// (decode) products native from the policy's size on, qlinear's bias and activation in the native
// call, packed once per weight and again when the weight is written.
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import '../src/backends/index.js';
import { createJsBackend } from '../src/backends/js/backend.js';
import { createWasmBackend, type WasmBackend } from '../src/backends/wasm/backend.js';
import type { NativeGemm, QGemmCall } from '../src/backends/wasm/native-gemm.js';
import { QMATMUL_BUDGET } from '../src/conformance/cases.js';
import { quantizeQ4K, quantizeQ5K, quantizeQ6K } from '../src/formats/gguf-kquants.js';
import { quantizeQ4_0, quantizeQ8_0 } from '../src/formats/gguf-quants.js';
import { convertToGguf } from '../src/formats/gguf-convert.js';
import { SafetensorsFile } from '../src/formats/safetensors.js';
import { NodeFileSource } from '../src/io/node/file-source.js';
import { NodeFileStore } from '../src/io/node/file-store.js';
import { loadNativeGemm } from '../src/io/node/native-gemm.js';
import { KVCache } from '../src/models/layers/kv-cache.js';
import { loadModel } from '../src/models/load.js';
import { ggmlToNBits } from '../src/io/node/onnx-qgemm.js';
import { tensor } from '../src/ops/creation.js';
import { add, unary } from '../src/ops/elementwise.js';
import { dequantize, qlinear, qmatmul } from '../src/ops/quant.js';
import type { Backend, BackendBuffer, QuantType } from '../src/tensor/backend.js';
import { QuantizedTensor } from '../src/tensor/quantized.js';
import { q8ActivationMatmul, rand } from './helpers/numeric.js';

const load = loadNativeGemm(2);
const available = load.gemm !== null;
if (!available) console.log(`native quantized GEMM tests skipped: ${(load as { reason: string }).reason}`);

/** Σ(a − b)² / Σb². */
function nmse(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let e = 0;
  let s = 0;
  for (let i = 0; i < b.length; i++) { e += (a[i]! - b[i]!) ** 2; s += b[i]! ** 2; }
  return e / s;
}

const ENCODERS: Partial<Record<QuantType, (w: Float32Array) => Uint8Array>> = {
  q4_0: quantizeQ4_0, q8_0: quantizeQ8_0, q6_k: quantizeQ6K, q4_k: quantizeQ4K, q5_k: quantizeQ5K,
};
const encode = (type: QuantType, w: Float32Array) => ENCODERS[type]!(w);

describe('MatMulNBits repacking', () => {
  it('maps Q4_0, Q8_0, Q6_K (and Q4_K, Q5_K with offsets) onto codes and scales that dequantize to the same values', () => {
    const js = createJsBackend();
    for (const type of ['q4_0', 'q8_0', 'q6_k', 'q4_k', 'q5_k'] as const) {
      const kq = type.endsWith('_k');
      const [N, K] = kq ? [5, 512] : [5, 96];
      // Q6_K: values of both signs and scales of both signs (each sub-block of 16 its own range)
      const raw = encode(type, rand(N * K, 7).map((v, i) => v * (1 + ((i >> 4) % 7)) * ((i >> 4) % 3 === 0 ? -1 : 1)));
      const want = dequantize(QuantizedTensor.fromBytes(raw, type, [N, K], js).raw, type, [N, K]).dataSync();
      const { bits, block, codes, scales, offsets } = ggmlToNBits(type, raw, N, K);
      expect(block).toBe(type === 'q6_k' ? 16 : 32);
      expect(!!offsets).toBe(type === 'q4_k' || type === 'q5_k');
      const got = new Float32Array(N * K);
      for (let e = 0; e < N * K; e++) {
        const code = bits === 4 ? (codes[e >> 1]! >> (4 * (e & 1))) & 15 : codes[e]!;
        const v = (code - (bits === 4 ? 8 : 128)) * scales[Math.floor(e / block)]!;
        // in f64: MatMulNBits multiplies the codes by the scale, the offset is added to the block's sum
        got[e] = offsets ? v + offsets[(((e % K) / block) | 0) * N + Math.floor(e / K)]! : v;
      }
      let worst = 0;
      let size = 0;
      for (let e = 0; e < N * K; e++) { worst = Math.max(worst, Math.abs(got[e]! - want[e]!)); size = Math.max(size, Math.abs(want[e]!)); }
      console.log(`${type} as MatMulNBits (${bits} bits, blocks of ${block}${offsets ? ', block offsets' : ''}): max |dequantized - ggml's values| ${worst.toExponential(2)} (max |w| ${size.toFixed(2)})`);
      // exact, but for the offsets' rounding to f32 (half an ulp of the offset)
      if (offsets) expect(worst).toBeLessThanOrEqual(size * 2 ** -24);
      else expect(Array.from(got)).toEqual(Array.from(want));
    }
    expect(() => ggmlToNBits('q6_k', new Uint8Array(210), 1, 128)).toThrow(/K = 128 is not a multiple of the block size 256/);
    expect(() => ggmlToNBits('q4_1', new Uint8Array(20), 1, 32)).toThrow(/no exact mapping for q4_1/);
    expect(() => ggmlToNBits('q4_0', new Uint8Array(17), 1, 32)).toThrow(/q4_0 \[1, 32\] needs 18 bytes, got 17/);
  });
});

describe.skipIf(!available)('quantized products on MLAS (onnxruntime-node MatMulNBits)', () => {
  let calls = 0;
  let gemm: NativeGemm;
  let be: WasmBackend;
  let js: Backend;
  beforeAll(async () => {
    const inner = load.gemm!;
    // counts the quantized products it is given
    gemm = Object.assign(Object.create(inner) as NativeGemm, { qgemm: (c: QGemmCall) => { calls++; inner.qgemm!(c); } });
    // small products native too (the default policy keeps those under 2M multiply-adds on wasm)
    be = await createWasmBackend({ threads: 2, nativeGemm: gemm, nativeGemmPolicy: { minQuantMacs: 0 } });
    js = createJsBackend();
  });
  afterAll(() => { be.dispose(); });

  for (const type of ['q4_0', 'q8_0', 'q6_k', 'q4_k', 'q5_k'] as const) {
    it(`${type}: prefill and decode products run natively within qmatmul's budget of the js reference`, () => {
      const [N, K] = [72, 256];
      const raw = encode(type, rand(N * K, 11));
      const wq = QuantizedTensor.fromBytes(raw, type, [N, K], be);
      const wf = dequantize(QuantizedTensor.fromBytes(raw, type, [N, K], js).raw, type, [N, K]).dataSync();
      for (const M of [37, 4, 1]) {
        const X = rand(M * K, 12 + M);
        const before = calls;
        const x = tensor(X, [M, K], 'f32', { backend: be });
        const y = qmatmul(x, wq);
        const got = y.dataSync();
        expect(calls).toBe(before + 1);
        const ref = qmatmul(tensor(X, [M, K], 'f32', { backend: js }), QuantizedTensor.fromBytes(raw, type, [N, K], js)).dataSync();
        const { scheme } = q8ActivationMatmul(X, wf, M, N, K);
        const err = nmse(got, ref);
        console.log(`MLAS MatMulNBits ${type} [${M}, ${N}, ${K}]: NMSE vs dequantize-then-f32 ${err.toExponential(2)} (budget ${QMATMUL_BUDGET}), vs ggml's 8-bit activation scheme ${nmse(got, scheme).toExponential(2)}`);
        expect(err).toBeLessThan(QMATMUL_BUDGET);
        x.dispose();
        y.dispose();
      }
      wq.dispose();
    });
  }

  for (const [type, M, act] of [['q4_0', 9, 'gelu_tanh'], ['q8_0', 1, 'gelu_tanh'], ['q6_k', 1, undefined], ['q4_k', 1, 'gelu_tanh'], ['q5_k', 5, undefined]] as const) {
    it(`qlinear ${type} at M = ${M} (product, bias${act ? ' and GELU' : ''} in one native call) equals qmatmul, add${act ? ' and GELU' : ''}`, () => {
      const [N, K] = [48, 256];
      const raw = encode(type, rand(N * K, 31));
      const wq = QuantizedTensor.fromBytes(raw, type, [N, K], be);
      const x = tensor(rand(M * K, 32), [M, K], 'f32', { backend: be });
      const bias = tensor(rand(N, 33), [N], 'f32', { backend: be });
      const before = calls;
      const fused = qlinear(x, wq, bias, act).dataSync();
      expect(calls).toBe(before + 1);
      const y = qmatmul(x, wq);
      const z = add(y, bias);
      const w = act ? unary(act, z) : z;
      const want = w.dataSync();
      let worst = 0;
      let scale = 0;
      for (let i = 0; i < want.length; i++) { worst = Math.max(worst, Math.abs(fused[i]! - want[i]!)); scale = Math.max(scale, Math.abs(want[i]!)); }
      console.log(`qlinear ${type} [${M}, ${N}, ${K}]${act ? ' gelu' : ''} in one MLAS call vs qmatmul + add${act ? ' + gelu' : ''}: max |diff| ${worst.toExponential(2)} (max |y| ${scale.toFixed(2)})`);
      // the same product; the bias added (and FastGelu's tanh taken) in ORT: f32 rounding apart
      expect(worst).toBeLessThan(1e-5 * Math.max(1, scale));
      for (const t of new Set([wq, x, bias, y, z, w])) t.dispose();
    });
  }

  it('the default policy sends one-row products from 1M multiply-adds to MLAS and leaves smaller ones on wasm', async () => {
    const def = await createWasmBackend({ threads: 2, nativeGemm: gemm });
    try {
      for (const [N, K, native] of [[1024, 1024, true], [512, 1024, false]] as const) {
        const wq = QuantizedTensor.fromBytes(quantizeQ8_0(rand(N * K, 41)), 'q8_0', [N, K], def);
        const x = tensor(rand(K, 42), [1, K], 'f32', { backend: def });
        const before = calls;
        const y = qmatmul(x, wq);
        y.dataSync();
        expect(calls).toBe(before + (native ? 1 : 0));
        for (const t of [wq, x, y]) t.dispose();
      }
    } finally {
      def.dispose();
    }
  });

  it('packs a weight once, again after it is written, and forgets it when freed', () => {
    const [N, K, M] = [16, 64, 8];
    const X = rand(M * K, 21);
    const w1 = rand(N * K, 22);
    const wq = QuantizedTensor.fromBytes(quantizeQ4_0(w1), 'q4_0', [N, K], be);
    const x = tensor(X, [M, K], 'f32', { backend: be });
    const packed0 = gemm.packedCount();
    const a = qmatmul(x, wq).dataSync();
    const b = qmatmul(x, wq).dataSync();
    expect(gemm.packedCount()).toBe(packed0 + 1);
    expect(Array.from(b)).toEqual(Array.from(a));
    // new values written into the weight's buffer: repacked, and the product follows them
    const w2 = w1.map((v) => -v);
    be.write((wq.raw.storageKey as { buffer: BackendBuffer }).buffer, 0, quantizeQ4_0(w2));
    const c = qmatmul(x, wq).dataSync();
    expect(gemm.packedCount()).toBe(packed0 + 1);
    for (let i = 0; i < c.length; i++) expect(c[i]).toBeCloseTo(-a[i]!, 4);
    wq.dispose();
    expect(gemm.packedCount()).toBe(packed0);
    x.dispose();
  });
});

describe.skipIf(!available)('decode with its one-row products on MLAS', () => {
  const ROOT = new URL('../fixtures/hf/gpt2/', import.meta.url).pathname;
  let tmp: string;
  beforeAll(async () => { tmp = await mkdtemp(join(tmpdir(), 'actlab-qdecode-')); });
  afterAll(async () => { await rm(tmp, { recursive: true, force: true }); });

  for (const type of ['Q8_0', 'Q4_0'] as const) {
    it(`GPT-2 ${type} GGUF: greedy decode with a KV cache gives the wasm GEMV's logits within the scheme's rounding`, async () => {
      const st = await SafetensorsFile.open(await NodeFileSource.open(`${ROOT}model.safetensors`));
      const path = join(tmp, `gpt2-${type}.gguf`);
      const config = JSON.parse(readFileSync(`${ROOT}config.json`, 'utf8')) as Record<string, unknown>;
      await convertToGguf(new NodeFileStore(), path, st, config, createJsBackend(), { type, metadata: { 'general.name': 'gpt2' } });
      await st.close();
      let nativeCalls = 0;
      const inner = loadNativeGemm(2).gemm!;
      const counted = Object.assign(Object.create(inner) as NativeGemm, { qgemm: (c: QGemmCall) => { nativeCalls++; inner.qgemm!(c); } });
      // every quantized product native (the fixture's are far below the default 1M multiply-adds), op by op (not
      // a whole step in one call: test/native-decode.test.ts), against none
      const native = await createWasmBackend({ threads: 2, nativeGemm: counted, nativeGemmPolicy: { minQuantMacs: 0, decode: false } });
      const plain = await createWasmBackend({ threads: 2, nativeGemm: false });
      try {
        const [a, b] = [(await loadModel(path, { backend: native })).model, (await loadModel(path, { backend: plain })).model];
        const [ka, kb] = [new KVCache(), new KVCache()];
        let next = 5;
        let worst = 0;
        for (let step = 0; step < 6; step++) {
          const step1 = (m: typeof a, k: KVCache, be: WasmBackend) => {
            const t = tensor([next], [1, 1], 'i32', { backend: be });
            const l = m.forward(t, { cache: k, logits: 'last' });
            const v = l.dataSync();
            t.dispose();
            l.dispose();
            return v;
          };
          const la = step1(a, ka, native);
          const lb = step1(b, kb, plain);
          let d = 0;
          let m = 0;
          for (let i = 0; i < lb.length; i++) { d = Math.max(d, Math.abs(la[i]! - lb[i]!)); m = Math.max(m, Math.abs(lb[i]!)); }
          worst = Math.max(worst, d / m);
          next = lb.indexOf(Math.max(...lb));
        }
        console.log(`GPT-2 fixture ${type}, 6 decode steps: ${nativeCalls} MatMulNBits calls; logits max |diff| / max |logit| vs the wasm GEMV ${worst.toExponential(2)}`);
        expect(nativeCalls).toBeGreaterThanOrEqual(6 * 4 * 3); // 4 products per block, 3 blocks, each step
        expect(worst).toBeLessThan(1e-4);
        for (const [m, k] of [[a, ka], [b, kb]] as const) { k.dispose(); m.dispose(); }
      } finally {
        native.dispose();
        plain.dispose();
      }
    }, 120_000);
  }
});
