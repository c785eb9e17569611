// The native wasm kernels beyond the conformance matrix: that model-shaped calls really take the
// native path (not the reference fallback), their error against the reference on large
// GPT-2-sized inputs (printed), and bit-exact f16/bf16 conversions over many bit patterns.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Backend, OpDesc, View } from '../src/tensor/backend.js';
import { createJsBackend } from '../src/backends/js/backend.js';
import { createWasmBackend, type WasmBackend } from '../src/backends/wasm/backend.js';
import { f32ToBf16Bits, f32ToF16Bits, type DType } from '../src/tensor/dtype.js';

const SIZE: Partial<Record<DType, number>> = { f32: 4, i32: 4, f16: 2, bf16: 2, u8: 1 };

function strides(shape: readonly number[]): number[] {
  const s: number[] = [];
  let acc = 1;
  for (let i = shape.length - 1; i >= 0; i--) { s[i] = acc; acc *= shape[i]!; }
  return s;
}

function rng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

/** A tensor spec: stored contiguously as `stored`, seen through `perm` (a permuted view). */
interface Spec { dtype: DType; shape: number[]; bytes?: Uint8Array; fill?: (i: number) => number; perm?: number[] }

function bytesOf(s: Spec, n: number): Uint8Array {
  if (s.bytes) return s.bytes;
  const size = SIZE[s.dtype]!;
  const out = new Uint8Array(n * size);
  const dv = new DataView(out.buffer);
  const r = rng(n + size);
  for (let i = 0; i < n; i++) {
    const x = s.fill ? s.fill(i) : (r() + r() + r() - 1.5) * 2;
    if (s.dtype === 'f32') dv.setFloat32(i * 4, x, true);
    else if (s.dtype === 'i32') dv.setInt32(i * 4, x, true);
    else if (s.dtype === 'u8') out[i] = x;
  }
  return out;
}

function place(be: Backend, s: Spec): View {
  const n = s.shape.reduce((p, d) => p * d, 1);
  const data = bytesOf(s, n);
  const buf = be.alloc(data.byteLength);
  be.write(buf, 0, data);
  const st = strides(s.shape);
  const p = s.perm;
  return p ? { buffer: buf, dtype: s.dtype, shape: p.map((i) => s.shape[i]!), strides: p.map((i) => st[i]!), offset: 0 }
    : { buffer: buf, dtype: s.dtype, shape: s.shape, strides: st, offset: 0 };
}

function readF(be: Backend, v: View): Float64Array {
  const n = v.shape.reduce((p, d) => p * d, 1);
  const raw = be.readSync(v.buffer, 0, n * SIZE[v.dtype]!);
  const dv = new DataView(raw.buffer, raw.byteOffset);
  return Float64Array.from({ length: n }, (_, i) => (v.dtype === 'i32' ? dv.getInt32(i * 4, true) : dv.getFloat32(i * 4, true)));
}

describe('native wasm kernels', () => {
  let wasm: WasmBackend;
  let js: Backend;
  beforeAll(async () => { wasm = await createWasmBackend(); js = createJsBackend(); });
  afterAll(() => { wasm?.dispose(); js?.dispose(); });

  /** Runs op on both backends; returns worst NMSE and max abs error over the outputs. */
  function compare(name: string, op: OpDesc, ins: Spec[], outs: { dtype: DType; shape: number[] }[]): { nmse: number; maxAbs: number } {
    const wi = ins.map((s) => place(wasm, s));
    const ji = ins.map((s) => place(js, s));
    const wo = outs.map((o) => place(wasm, { ...o, bytes: new Uint8Array(o.shape.reduce((p, d) => p * d, 1) * SIZE[o.dtype]!) }));
    const jo = outs.map((o) => place(js, { ...o, bytes: new Uint8Array(o.shape.reduce((p, d) => p * d, 1) * SIZE[o.dtype]!) }));
    expect(wasm.isNative(op, wi, wo), `${name} runs natively`).toBe(true);
    wasm.exec(op, wi, wo);
    js.exec(op, ji, jo);
    let nmse = 0;
    let maxAbs = 0;
    for (let k = 0; k < outs.length; k++) {
      const a = readF(js, jo[k]!);
      const b = readF(wasm, wo[k]!);
      let num = 0;
      let den = 0;
      for (let i = 0; i < a.length; i++) {
        if (!Number.isFinite(a[i]!) || !Number.isFinite(b[i]!)) { // the same Inf / NaN, or a failure
          if (!(Object.is(a[i], b[i]) || (Number.isNaN(a[i]!) && Number.isNaN(b[i]!)))) num = Infinity;
          continue;
        }
        num += (a[i]! - b[i]!) ** 2;
        den += a[i]! ** 2;
        maxAbs = Math.max(maxAbs, Math.abs(a[i]! - b[i]!));
      }
      nmse = Math.max(nmse, num / (den || 1));
    }
    console.log(`${name.padEnd(44)} nmse ${nmse.toExponential(2)}  max |err| ${maxAbs.toExponential(2)}`);
    for (const v of [...wi, ...wo]) wasm.free(v.buffer);
    return { nmse, maxAbs };
  }

  it('lists the native ops', () => {
    const ops = wasm.nativeOps();
    for (const o of ['copy', 'fill', 'unary', 'binary', 'where', 'reduce', 'softmax', 'layernorm', 'rmsnorm', 'rope', 'gather', 'attention', 'dequantize', 'matmul']) {
      expect(ops).toContain(o);
    }
  });

  it('softmax [12, 128, 128] causal, and log-softmax with a padding mask', () => {
    expect(compare('softmax causal [12,128,128]', { op: 'softmax', log: false, causal: true, masked: false },
      [{ dtype: 'f32', shape: [12, 128, 128] }], [{ dtype: 'f32', shape: [12, 128, 128] }]).nmse).toBeLessThan(1e-12);
    const mask: Spec = { dtype: 'u8', shape: [2, 12, 16, 64], fill: (i) => (i % 64 < 50 ? 1 : 0) };
    expect(compare('logSoftmax masked [2,12,16,64]', { op: 'softmax', log: true, causal: true, masked: true },
      [{ dtype: 'f32', shape: [2, 12, 16, 64] }, mask], [{ dtype: 'f32', shape: [2, 12, 16, 64] }]).nmse).toBeLessThan(1e-12);
  });

  it('attention at T=128, d=64, 12 heads, permuted q/k/v views; GQA with a key mask; decode', () => {
    const qkv = (t: number, h: number): Spec => ({ dtype: 'f32', shape: [1, t, h, 64], perm: [0, 2, 1, 3] });
    const op = { op: 'attention', scale: 0.125, causal: true, masked: false, returnProbs: true } as const;
    expect(compare('attention T=128 d=64 h=12 (+probs)', op, [qkv(128, 12), qkv(128, 12), qkv(128, 12)],
      [{ dtype: 'f32', shape: [1, 12, 128, 64] }, { dtype: 'f32', shape: [1, 12, 128, 128] }]).nmse).toBeLessThan(1e-11);
    const mask: Spec = { dtype: 'u8', shape: [2, 40], fill: (i) => (i % 40 < 3 ? 0 : 1) };
    expect(compare('attention GQA 8q/2kv T=40 masked', { ...op, masked: true, returnProbs: false },
      [{ dtype: 'f32', shape: [2, 8, 40, 64] }, { dtype: 'f32', shape: [2, 2, 40, 64] }, { dtype: 'f32', shape: [2, 2, 40, 64] }, mask],
      [{ dtype: 'f32', shape: [2, 8, 40, 64] }]).nmse).toBeLessThan(1e-11);
    expect(compare('attention decode tq=1 tk=200', { ...op, returnProbs: false }, [qkv(1, 12), qkv(200, 12), qkv(200, 12)],
      [{ dtype: 'f32', shape: [1, 12, 1, 64] }]).nmse).toBeLessThan(1e-11);
  });

  it('layernorm [128, 768], rmsnorm, rope, gelu and the MLP bias add', () => {
    const x: Spec = { dtype: 'f32', shape: [128, 768], fill: (i) => Math.sin(i) * 3 + 10 };
    const w: Spec = { dtype: 'f32', shape: [768] };
    expect(compare('layernorm [128,768] w+b', { op: 'layernorm', eps: 1e-5, hasWeight: true, hasBias: true }, [x, w, w],
      [{ dtype: 'f32', shape: [128, 768] }]).nmse).toBeLessThan(1e-12);
    expect(compare('rmsnorm [128,768] 1+w', { op: 'rmsnorm', eps: 1e-6, offset: 1, hasWeight: true }, [x, w],
      [{ dtype: 'f32', shape: [128, 768] }]).nmse).toBeLessThan(1e-12);
    for (const mode of ['half', 'interleaved'] as const) {
      expect(compare(`rope ${mode} [1,128,12,64] rot 32`, { op: 'rope', mode, rotaryDim: 32 },
        [{ dtype: 'f32', shape: [1, 128, 12, 64] }, { dtype: 'i32', shape: [1, 128], fill: (i) => i + 1000 },
          { dtype: 'f32', shape: [16], fill: (i) => 10000 ** (-i / 16) }],
        [{ dtype: 'f32', shape: [1, 128, 12, 64] }]).nmse).toBeLessThan(1e-12);
    }
    for (const fn of ['gelu_tanh', 'gelu_erf', 'silu', 'tanh', 'exp'] as const) {
      expect(compare(`unary ${fn} [128,3072]`, { op: 'unary', fn }, [{ dtype: 'f32', shape: [128, 3072] }],
        [{ dtype: 'f32', shape: [128, 3072] }]).nmse).toBeLessThan(1e-12);
    }
    const bias: Spec = { dtype: 'f32', shape: [3072] };
    const wi = [place(wasm, { dtype: 'f32', shape: [128, 3072] }), { ...place(wasm, bias), shape: [128, 3072], strides: [0, 1] }];
    const wo = [place(wasm, { dtype: 'f32', shape: [128, 3072] })];
    expect(wasm.isNative({ op: 'binary', fn: 'add' }, wi, wo)).toBe(true);
  });

  it('casts f32 -> f16 / bf16 bit-exactly (random bit patterns, ties, subnormals, NaN) and back', () => {
    const n = 1 << 16;
    const r = rng(7);
    const bits = new Uint32Array(n);
    for (let i = 0; i < n; i++) bits[i] = i < 4096 ? ((i << 13) | (i & 1 ? 0x1000 : 0)) >>> 0 : (r() * 2 ** 32) >>> 0;
    const f32 = new Float32Array(bits.buffer);
    for (const to of ['f16', 'bf16'] as const) {
      const x = place(wasm, { dtype: 'f32', shape: [n], bytes: new Uint8Array(bits.buffer) });
      const y = place(wasm, { dtype: to, shape: [n], bytes: new Uint8Array(n * 2) });
      expect(wasm.isNative({ op: 'copy' }, [x], [y])).toBe(true);
      wasm.exec({ op: 'copy' }, [x], [y]);
      const got = new Uint16Array(wasm.readSync(y.buffer, 0, n * 2).buffer);
      const conv = to === 'f16' ? f32ToF16Bits : f32ToBf16Bits;
      let bad = 0;
      for (let i = 0; i < n; i++) if (got[i] !== conv(f32[i]!)) bad++;
      expect(bad, `f32 -> ${to} mismatches`).toBe(0);
      // and every 16-bit pattern back to f32, against the reference cast
      const h = place(wasm, { dtype: to, shape: [65536], bytes: new Uint8Array(Uint16Array.from({ length: 65536 }, (_, i) => i).buffer) });
      const hj = place(js, { dtype: to, shape: [65536], bytes: new Uint8Array(Uint16Array.from({ length: 65536 }, (_, i) => i).buffer) });
      const back = place(wasm, { dtype: 'f32', shape: [65536], bytes: new Uint8Array(65536 * 4) });
      const backJ = place(js, { dtype: 'f32', shape: [65536], bytes: new Uint8Array(65536 * 4) });
      wasm.exec({ op: 'copy' }, [h], [back]);
      js.exec({ op: 'copy' }, [hj], [backJ]);
      const a = readF(wasm, back);
      const b = readF(js, backJ);
      expect(a.every((v, i) => Object.is(v, b[i]) || (Number.isNaN(v) && Number.isNaN(b[i])))).toBe(true);
    }
  });

  it('gather rejects an out-of-range id with the reference error', () => {
    const table = place(wasm, { dtype: 'f32', shape: [10, 8] });
    const ids = place(wasm, { dtype: 'i32', shape: [3], fill: (i) => [1, 10, 2][i]! });
    const y = place(wasm, { dtype: 'f32', shape: [3, 8], bytes: new Uint8Array(3 * 8 * 4) });
    expect(wasm.isNative({ op: 'gather' }, [table, ids], [y])).toBe(true);
    expect(() => wasm.exec({ op: 'gather' }, [table, ids], [y])).toThrow(/id 10 out of range/);
  });
});

describe('wasm fused attention across threads', () => {
  // Each task of the fused attention kernel scores its rows in its own scratch slot; a task that
  // wrote into another's slot corrupted one row now and then (seen under load in CI). Many short
  // rows on more threads than cores make the tasks interleave; every run must equal the first.
  it('gives bit-identical results on repeated runs with 3 threads (no task writes another task\'s scratch)', async () => {
    const be = await createWasmBackend({ threads: 3 });
    try {
      const shape = [4000, 4, 3, 16];
      const n = shape.reduce((a, b) => a * b, 1);
      const spec = (s: number): Spec => ({ dtype: 'f32', shape, fill: (i) => Math.sin(i * 0.731 + s) * 2 });
      const ins = [spec(0), spec(1), spec(2)].map((s) => place(be, s));
      const out = place(be, { dtype: 'f32', shape, bytes: new Uint8Array(n * 4) });
      const op = { op: 'attention', scale: 0.25, causal: true, masked: false, returnProbs: false } as const;
      expect(be.isNative(op, ins, [out])).toBe(true);
      let first: Float64Array | null = null;
      let bad = 0;
      for (let r = 0; r < 60; r++) {
        be.exec(op, ins, [out]);
        const y = readF(be, out);
        if (!first) { first = y; continue; }
        for (let i = 0; i < n; i++) if (y[i] !== first[i]) { bad++; break; }
      }
      console.log(`fused attention, 60 runs on 3 threads: ${bad} differed from the first`);
      expect(bad).toBe(0);
    } finally {
      be.dispose();
    }
  }, 120_000);
});
