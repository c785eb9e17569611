// The wasm backend against a plain f64 triple loop: GEMM on odd shapes, every transposition,
// batches and broadcast batches, strided operands and outputs, NaN/Inf, both kernel variants
// (relaxed and plain SIMD) on 1 and 2 threads; the allocator; faults in workers.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { View } from '../src/tensor/backend.js';
import { createWasmBackend, type WasmBackend } from '../src/backends/wasm/backend.js';
import { WasmMemory, PAGE_BYTES } from '../src/backends/wasm/memory.js';
import { rand } from './helpers/numeric.js';

function upload(be: WasmBackend, data: Float32Array) {
  const buf = be.alloc(data.byteLength);
  be.write(buf, 0, new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
  return buf;
}

function download(be: WasmBackend, view: View, n: number): Float32Array {
  return new Float32Array(be.readSync(view.buffer, 0, view.buffer.byteLength).buffer, 0, n);
}

function strides(shape: readonly number[]): number[] {
  const s: number[] = [];
  let acc = 1;
  for (let i = shape.length - 1; i >= 0; i--) { s[i] = acc; acc *= shape[i]!; }
  return s;
}

interface Case {
  M: number; K: number; N: number; transA: boolean; transB: boolean; batch?: number[];
  /** b repeated over the first batch dim (stride 0) */ broadcastB?: boolean;
}

/** Runs one matmul on the backend and returns the max abs error against f64 and the tolerance. */
function checkMatmul(be: WasmBackend, c: Case, seed = 1): { err: number; tol: number } {
  const { M, K, N, transA, transB } = c;
  const batch = c.batch ?? [];
  const nb = batch.reduce((p, s) => p * s, 1);
  const aShape = [...batch, ...(transA ? [K, M] : [M, K])];
  const bShape = [...batch, ...(transB ? [N, K] : [K, N])];
  const yShape = [...batch, M, N];
  const A = rand(nb * M * K, seed);
  const bCount = c.broadcastB ? (nb / (batch[0] ?? 1)) * K * N : nb * K * N;
  const B = rand(bCount, seed + 7);
  const bStrides = strides(bShape);
  if (c.broadcastB) bStrides[0] = 0;
  const a: View = { buffer: upload(be, A), dtype: 'f32', shape: aShape, strides: strides(aShape), offset: 0 };
  const b: View = { buffer: upload(be, B), dtype: 'f32', shape: bShape, strides: bStrides, offset: 0 };
  const y: View = { buffer: upload(be, new Float32Array(nb * M * N).fill(NaN)), dtype: 'f32', shape: yShape, strides: strides(yShape), offset: 0 };
  be.exec({ op: 'matmul', transA, transB }, [a, b], [y]);
  const Y = download(be, y, nb * M * N);
  let err = 0;
  const bBatch = c.broadcastB ? nb / (batch[0] ?? 1) : nb;
  for (let e = 0; e < nb; e++) {
    const ao = e * M * K;
    const bo = (e % bBatch) * K * N;
    for (let i = 0; i < M; i++) for (let j = 0; j < N; j++) {
      let s = 0;
      for (let k = 0; k < K; k++) {
        const av = A[ao + (transA ? k * M + i : i * K + k)]!;
        const bv = B[bo + (transB ? j * K + k : k * N + j)]!;
        s += av * bv;
      }
      const d = Math.abs(s - Y[e * M * N + i * N + j]!);
      if (!(d <= err)) err = d; // NaN shows up as NaN
    }
  }
  for (const v of [a, b, y]) be.free(v.buffer);
  return { err, tol: 1e-6 * (K + 1) };
}

const SHAPES: [number, number, number][] = [
  [1, 1, 1], [1, 3, 17], [3, 17, 33], [17, 33, 65], [65, 129, 3], [1, 768, 65], [33, 1, 17],
  [129, 65, 129], [2, 300, 7], [7, 0, 5], [1, 0, 1], [6, 257, 8], [13, 520, 600], [5, 1030, 9],
];

const variants = [
  { relaxed: true, threads: 1 }, { relaxed: true, threads: 2 },
  { relaxed: false, threads: 1 }, { relaxed: false, threads: 2 },
];

for (const variant of variants) {
  describe(`wasm gemm (relaxed=${variant.relaxed}, threads=${variant.threads})`, () => {
    let be: WasmBackend;
    beforeAll(async () => { be = await createWasmBackend(variant); });
    afterAll(() => be.dispose());

    it('matches an f64 triple loop on odd shapes, all transpositions, K=0 gives zeros', () => {
      if (!variant.relaxed) expect(be.info().relaxedSimd).toBe(false);
      let worst = 0;
      for (const [M, K, N] of SHAPES) {
        for (const transA of [false, true]) for (const transB of [false, true]) {
          const { err, tol } = checkMatmul(be, { M, K, N, transA, transB }, M * 31 + K * 7 + N);
          expect(err, `M=${M} K=${K} N=${N} transA=${transA} transB=${transB}`).toBeLessThanOrEqual(tol);
          worst = Math.max(worst, err);
        }
      }
      console.log(`wasm gemm relaxed=${be.info().relaxedSimd} threads=${be.info().threads}: max abs error ${worst.toExponential(2)}`);
    });

    it('runs batched and broadcast-batched products', () => {
      let worst = 0;
      for (const c of [
        { M: 5, K: 19, N: 33, transA: false, transB: false, batch: [3] },
        { M: 1, K: 64, N: 40, transA: false, transB: true, batch: [2, 3] },
        { M: 17, K: 9, N: 2, transA: true, transB: false, batch: [4, 2] },
        { M: 33, K: 65, N: 17, transA: true, transB: true, batch: [3, 2], broadcastB: true },
        { M: 64, K: 64, N: 64, transA: false, transB: false, batch: [2] },
      ] satisfies Case[]) {
        const { err, tol } = checkMatmul(be, c, 3);
        expect(err, JSON.stringify(c)).toBeLessThanOrEqual(tol);
        worst = Math.max(worst, err);
      }
      console.log(`  batched: max abs error ${worst.toExponential(2)}`);
    });

    it('handles strided operands and a transposed output view', () => {
      const M = 19, K = 37, N = 23;
      const A = rand(M * (K + 5) + 3, 11);
      const B = rand(N * K, 12); // stored [N, K], viewed as [K, N] with strides [1, K]
      const a: View = { buffer: upload(be, A), dtype: 'f32', shape: [M, K], strides: [K + 5, 1], offset: 3 };
      const b: View = { buffer: upload(be, B), dtype: 'f32', shape: [K, N], strides: [1, K], offset: 0 };
      const y: View = { buffer: upload(be, new Float32Array(M * N)), dtype: 'f32', shape: [M, N], strides: [1, M], offset: 0 };
      be.exec({ op: 'matmul', transA: false, transB: false }, [a, b], [y]);
      const Y = download(be, y, M * N);
      let err = 0;
      for (let i = 0; i < M; i++) for (let j = 0; j < N; j++) {
        let s = 0;
        for (let k = 0; k < K; k++) s += A[3 + i * (K + 5) + k]! * B[j * K + k]!;
        err = Math.max(err, Math.abs(s - Y[j * M + i]!));
      }
      expect(err).toBeLessThanOrEqual(1e-5);
    });

    it('propagates NaN and Inf without crashing', () => {
      for (const [M, K, N] of [[1, 40, 70], [9, 40, 70]] as const) {
        const A = rand(M * K, 5);
        const B = rand(K * N, 6);
        A[3] = NaN; // row 0, k = 3: all of row 0 is NaN
        B[7 * N + 5] = Infinity; // k = 7, column 5: +-Inf down column 5 unless NaN
        const a: View = { buffer: upload(be, A), dtype: 'f32', shape: [M, K], strides: [K, 1], offset: 0 };
        const b: View = { buffer: upload(be, B), dtype: 'f32', shape: [K, N], strides: [N, 1], offset: 0 };
        const y: View = { buffer: upload(be, new Float32Array(M * N)), dtype: 'f32', shape: [M, N], strides: [N, 1], offset: 0 };
        be.exec({ op: 'matmul', transA: false, transB: false }, [a, b], [y]);
        const Y = download(be, y, M * N);
        for (let j = 0; j < N; j++) expect(Number.isNaN(Y[j])).toBe(true);
        for (let i = 1; i < M; i++) {
          expect(Math.abs(Y[i * N + 5]!)).toBe(Infinity);
          expect(Math.sign(Y[i * N + 5]!)).toBe(Math.sign(A[i * K + 7]!));
          expect(Number.isFinite(Y[i * N + 4]!)).toBe(true);
        }
      }
      // the backend still works afterwards
      expect(checkMatmul(be, { M: 8, K: 8, N: 8, transA: false, transB: false }).err).toBeLessThan(1e-5);
    });
  });
}

describe('wasm gemm with more threads than cores', () => {
  it('gives the same results with 3 threads, many jobs in a row', async () => {
    const be = await createWasmBackend({ threads: 3 });
    try {
      expect(be.info().threads).toBe(3);
      for (let i = 0; i < 30; i++) {
        const c: Case = { M: 1 + (i % 7) * 9, K: 40 + i, N: 50 + 3 * i, transA: i % 2 === 1, transB: i % 3 === 1, batch: i % 5 === 0 ? [3] : [] };
        const { err, tol } = checkMatmul(be, c, i);
        expect(err, JSON.stringify(c)).toBeLessThanOrEqual(tol);
      }
    } finally {
      be.dispose();
    }
  });
});

describe('wasm backend: other ops and buffers', () => {
  let be: WasmBackend;
  beforeAll(async () => { be = await createWasmBackend({ threads: 2 }); });
  afterAll(() => be.dispose());

  it('lists its native ops and runs the rest on the reference kernels', () => {
    expect(be.nativeOps()).toContain('matmul');
    const x = upload(be, new Float32Array([1, 2, 3]));
    const z = upload(be, new Float32Array([10, 20, 30]));
    const y = be.alloc(12);
    const v = (buffer: typeof x): View => ({ buffer, dtype: 'f32', shape: [3], strides: [1], offset: 0 });
    be.exec({ op: 'binary', fn: 'add' }, [v(x), v(z)], [v(y)]);
    expect([...download(be, v(y), 3)]).toEqual([11, 22, 33]);
    be.exec({ op: 'cumsum', axis: 0 }, [v(x)], [v(y)]);
    expect([...download(be, v(y), 3)]).toEqual([1, 3, 6]);
    expect(be.isNative({ op: 'cumsum', axis: 0 }, [v(x)], [v(y)])).toBe(be.nativeOps().includes('cumsum'));
  });

  it('reads and writes byte ranges, tracks memory in use, rejects freed buffers', () => {
    const before = be.memoryInUse();
    const b = be.alloc(10);
    be.write(b, 2, new Uint8Array([7, 8, 9]));
    expect([...be.readSync(b, 2, 3)]).toEqual([7, 8, 9]);
    expect(be.memoryInUse()).toBe(before + 10);
    be.free(b);
    expect(be.memoryInUse()).toBe(before);
    expect(() => be.readSync(b, 0, 1)).toThrow(/freed/);
    expect(() => be.write(be.alloc(4), 2, new Uint8Array(4))).toThrow(/outside/);
  });
});

describe('wasm memory allocator', () => {
  it('aligns to 64 bytes and reuses freed blocks', () => {
    const m = new WasmMemory(1);
    const a = m.alloc(10);
    const b = m.alloc(100);
    const c = m.alloc(1);
    for (const p of [a, b, c]) expect(p % 64).toBe(0);
    expect(new Set([a, b, c]).size).toBe(3);
    m.free(b);
    expect(m.alloc(64)).toBe(b); // first fit takes the freed block
    expect(m.alloc(64)).toBe(b + 64); // and the rest of it
    m.free(a);
    m.free(c);
    expect(m.alloc(0) % 64).toBe(0);
  });

  it('grows the memory past its initial size and keeps the data', () => {
    const m = new WasmMemory(1);
    expect(m.byteLength()).toBe(PAGE_BYTES);
    const a = m.alloc(1000);
    m.bytes().fill(0xab, a, a + 1000);
    const big = m.alloc(5 * PAGE_BYTES + 17);
    expect(m.byteLength()).toBeGreaterThanOrEqual(big + 5 * PAGE_BYTES + 17);
    m.bytes()[big + 5 * PAGE_BYTES + 16] = 3;
    expect(m.bytes().subarray(a, a + 1000).every((x) => x === 0xab)).toBe(true);
    expect(m.bytes()[big + 5 * PAGE_BYTES + 16]).toBe(3);
    const inUse = m.inUse();
    m.free(big);
    expect(m.inUse()).toBe(inUse - Math.ceil((5 * PAGE_BYTES + 17) / 64) * 64);
    expect(m.alloc(3 * PAGE_BYTES)).toBe(big); // the top block is reused after coalescing
  });

  it('a backend keeps tensors intact when the memory grows under them', async () => {
    const be = await createWasmBackend({ threads: 2 });
    try {
      const before = be.memory.byteLength();
      const x = upload(be, rand(1000, 9));
      const big = be.alloc(before * 2);
      expect(be.memory.byteLength()).toBeGreaterThan(before);
      expect([...download(be, { buffer: x, dtype: 'f32', shape: [1000], strides: [1], offset: 0 }, 1000)]).toEqual([...rand(1000, 9)]);
      // operands above the old end of memory: workers must see the grown memory too
      const grown = be.memory.byteLength();
      expect(checkMatmul(be, { M: 70, K: 80, N: 90, transA: false, transB: true }).err).toBeLessThan(1e-4);
      const huge = be.alloc(grown); // grows again, with the pool running
      expect(checkMatmul(be, { M: 33, K: 300, N: 200, transA: true, transB: false }).err).toBeLessThan(1e-3);
      be.free(huge);
      be.free(big);
    } finally {
      be.dispose();
    }
  });
});

describe('wasm thread pool faults', () => {
  const bigCase: Case = { M: 64, K: 64, N: 64, transA: false, transB: false };

  it('reports a worker that throws, naming worker and kernel, and stays usable', async () => {
    const be = await createWasmBackend({ threads: 2 });
    try {
      be.pool.injectFaultForTest(0, 'throw');
      expect(() => checkMatmul(be, bigCase)).toThrow(/kernel 'gemm_f32' failed on worker 0: Error: fault injected/);
      expect(checkMatmul(be, bigCase).err).toBeLessThan(1e-4);
    } finally {
      be.dispose();
    }
  });

  it('reports a worker that dies instead of hanging, and refuses later jobs', async () => {
    const be = await createWasmBackend({ threads: 2 });
    try {
      be.pool.injectFaultForTest(0, 'exit');
      expect(() => checkMatmul(be, bigCase)).toThrow(/worker 0 exited with code 13 while running kernel 'gemm_f32'/);
      expect(() => checkMatmul(be, bigCase)).toThrow(/cannot run kernel 'gemm_f32': worker 0 exited/);
    } finally {
      be.dispose();
    }
  });

  it('reports a kernel trap (out-of-bounds pointer) from every thread as an Error', async () => {
    const be = await createWasmBackend({ threads: 2 });
    try {
      const bad = 0x7fff0000; // far outside the memory
      expect(() => be.pool.run('gemm_f32', [bad], 2)).toThrow(/kernel 'gemm_f32' failed on calling thread \(task 0\): RuntimeError/);
      expect(checkMatmul(be, bigCase).err).toBeLessThan(1e-4);
    } finally {
      be.dispose();
    }
  });
});
