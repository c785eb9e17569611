// Quantized products on ONNX Runtime's MLAS (MatMulNBits through onnxruntime-node): Q4_0 and Q8_0
// weights repacked exactly (checked by dequantizing the repacked codes), products against the js
// reference (dequantize then f32) within qmatmul's budget with the error printed, packed once per
// weight and again when the weight is written, and decode-sized products left on wasm.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import '../src/backends/index.js';
import { createJsBackend } from '../src/backends/js/backend.js';
import { createWasmBackend, type WasmBackend } from '../src/backends/wasm/backend.js';
import type { NativeGemm, QGemmCall } from '../src/backends/wasm/native-gemm.js';
import { QMATMUL_BUDGET } from '../src/conformance/cases.js';
import { quantizeQ4_0, quantizeQ8_0 } from '../src/formats/gguf-quants.js';
import { loadNativeGemm } from '../src/io/node/native-gemm.js';
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

const encode = (type: QuantType, w: Float32Array) => (type === 'q4_0' ? quantizeQ4_0(w) : quantizeQ8_0(w));

describe('MatMulNBits repacking', () => {
  it('maps Q4_0 and Q8_0 blocks onto codes and scales that dequantize to the same values', () => {
    const js = createJsBackend();
    const [N, K] = [5, 96];
    for (const type of ['q4_0', 'q8_0'] as const) {
      const raw = encode(type, rand(N * K, 7));
      const want = dequantize(QuantizedTensor.fromBytes(raw, type, [N, K], js).raw, type, [N, K]).dataSync();
      const { bits, codes, scales } = ggmlToNBits(type, raw, N, K);
      const got = new Float32Array(N * K);
      for (let e = 0; e < N * K; e++) {
        const code = bits === 4 ? (codes[e >> 1]! >> (4 * (e & 1))) & 15 : codes[e]!;
        got[e] = (code - (bits === 4 ? 8 : 128)) * scales[Math.floor(e / 32)]!;
      }
      expect(Array.from(got)).toEqual(Array.from(want));
    }
    expect(() => ggmlToNBits('q4_k', new Uint8Array(144), 1, 256)).toThrow(/no exact mapping for q4_k/);
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
    be = await createWasmBackend({ threads: 2, nativeGemm: gemm, nativeGemmPolicy: { minMacs: 0 } });
    js = createJsBackend();
  });
  afterAll(() => { be.dispose(); });

  for (const type of ['q4_0', 'q8_0'] as const) {
    it(`${type}: prefill-sized products run natively within qmatmul's budget of the js reference; decode stays on wasm`, () => {
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
        expect(calls).toBe(before + (M >= 4 ? 1 : 0));
        const ref = qmatmul(tensor(X, [M, K], 'f32', { backend: js }), QuantizedTensor.fromBytes(raw, type, [N, K], js)).dataSync();
        const { scheme } = q8ActivationMatmul(X, wf, M, N, K);
        const err = nmse(got, ref);
        console.log(`${M >= 4 ? 'MLAS MatMulNBits' : 'wasm'} ${type} [${M}, ${N}, ${K}]: NMSE vs dequantize-then-f32 ${err.toExponential(2)} (budget ${QMATMUL_BUDGET}), vs ggml's 8-bit activation scheme ${nmse(got, scheme).toExponential(2)}`);
        expect(err).toBeLessThan(QMATMUL_BUDGET);
        x.dispose();
        y.dispose();
      }
      wq.dispose();
    });
  }

  it('qlinear (product, bias and activation in one op) takes the native product and equals qmatmul, add and GELU', () => {
    const [N, K, M] = [48, 128, 9];
    const raw = quantizeQ4_0(rand(N * K, 31));
    const wq = QuantizedTensor.fromBytes(raw, 'q4_0', [N, K], be);
    const x = tensor(rand(M * K, 32), [M, K], 'f32', { backend: be });
    const bias = tensor(rand(N, 33), [N], 'f32', { backend: be });
    const before = calls;
    const fused = qlinear(x, wq, bias, 'gelu_tanh').dataSync();
    expect(calls).toBe(before + 1);
    const y = qmatmul(x, wq);
    const z = add(y, bias);
    const want = unary('gelu_tanh', z).dataSync();
    let worst = 0;
    for (let i = 0; i < want.length; i++) worst = Math.max(worst, Math.abs(fused[i]! - want[i]!));
    console.log(`qlinear q4_0 [${M}, ${N}, ${K}] gelu on MLAS vs qmatmul + add + gelu: max |diff| ${worst}`);
    expect(worst).toBe(0);
    for (const t of [wq, x, bias, y, z]) t.dispose();
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
