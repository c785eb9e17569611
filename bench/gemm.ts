// GEMM benchmark: f32 C[M,N] = A[M,K]·B[K,N] on actlab-wasm (1 and 2 threads), actlab-js (the
// reference backend; large shapes skipped) and onnxruntime-node's MatMul (a one-node ONNX model
// encoded here by hand, both operands as graph inputs, intraOpNumThreads 2), side by side in one
// run. Median of timed runs after warm-up. Prints a table; `--json` prints one JSON object a line.
// Usage: npm run bench:gemm [-- --json] [-- --quick]
import os from 'node:os';
import type { Backend, View } from '../src/backends/backend.js';
import { createJsBackend } from '../src/backends/js/backend.js';
import { createWasmBackend } from '../src/backends/wasm/backend.js';

const SHAPES: [number, number, number][] = [[1, 768, 3072], [128, 768, 3072], [512, 768, 768], [1024, 1024, 1024]];
/** The reference backend takes minutes on anything much bigger than this many multiply-adds. */
const JS_MAX_MACS = 5e6;

interface Row { bench: 'gemm'; shape: [number, number, number]; impl: string; threads: number; gflops: number | null; note?: string }

const args = process.argv.slice(2);
const json = args.includes('--json');
const quick = args.includes('--quick');

function rand(n: number): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = Math.random() - 0.5;
  return a;
}

/** Median seconds of `fn` over timed runs (after warm-up), at least `minRuns`, about `budgetS` in all. */
async function timeIt(fn: () => unknown, flops: number): Promise<number> {
  const budgetS = quick ? 0.3 : 1.0;
  const t0 = performance.now();
  await fn();
  const first = (performance.now() - t0) / 1e3;
  const warm = Math.max(2, Math.min(20, Math.ceil(0.2 / Math.max(first, 1e-6))));
  for (let i = 0; i < warm; i++) await fn();
  const runs = Math.max(5, Math.min(500, Math.ceil(budgetS / Math.max(first, 1e-6))));
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const s = performance.now();
    await fn();
    times.push((performance.now() - s) / 1e3);
  }
  times.sort((x, y) => x - y);
  return flops / times[Math.floor(times.length / 2)]! / 1e9;
}

async function benchBackend(be: Backend, M: number, K: number, N: number): Promise<number> {
  const bytes = (a: Float32Array) => new Uint8Array(a.buffer);
  const A = be.alloc(M * K * 4);
  const B = be.alloc(K * N * 4);
  const Y = be.alloc(M * N * 4);
  be.write(A, 0, bytes(rand(M * K)));
  be.write(B, 0, bytes(rand(K * N)));
  const v = (buffer: typeof A, shape: number[]): View => ({ buffer, dtype: 'f32', shape, strides: [shape[1]!, 1], offset: 0 });
  const ins = [v(A, [M, K]), v(B, [K, N])];
  const outs = [v(Y, [M, N])];
  try {
    return await timeIt(() => be.exec({ op: 'matmul', transA: false, transB: false }, ins, outs), 2 * M * N * K);
  } finally {
    for (const b of [A, B, Y]) be.free(b);
  }
}

// ---- a one-node ONNX model, protobuf encoded by hand ----

function varint(n: number): number[] {
  const out: number[] = [];
  while (n > 0x7f) { out.push((n & 0x7f) | 0x80); n = Math.floor(n / 128); }
  out.push(n);
  return out;
}
const field = (no: number, wire: number) => varint((no << 3) | wire);
const vint = (no: number, v: number) => [...field(no, 0), ...varint(v)];
const bytesField = (no: number, b: number[]) => [...field(no, 2), ...varint(b.length), ...b];
const str = (no: number, s: string) => bytesField(no, [...new TextEncoder().encode(s)]);

/** ModelProto of Y = MatMul(A, B) with A [M,K], B [K,N] f32 inputs (ONNX IR 8, opset 13). */
function matmulModel(M: number, K: number, N: number): Uint8Array {
  const FLOAT = 1;
  const valueInfo = (name: string, dims: number[]) => [
    ...str(1, name), // ValueInfoProto.name
    ...bytesField(2, bytesField(1, [ // TypeProto.tensor_type
      ...vint(1, FLOAT), // elem_type
      ...bytesField(2, dims.flatMap((d) => bytesField(1, vint(1, d)))), // shape.dim[].dim_value
    ])),
  ];
  const node = [...str(1, 'A'), ...str(1, 'B'), ...str(2, 'Y'), ...str(3, 'mm'), ...str(4, 'MatMul')];
  const graph = [
    ...bytesField(1, node), ...str(2, 'gemm'),
    ...bytesField(11, valueInfo('A', [M, K])), ...bytesField(11, valueInfo('B', [K, N])),
    ...bytesField(12, valueInfo('Y', [M, N])),
  ];
  const model = [...vint(1, 8), ...str(2, 'actlab-bench'), ...bytesField(7, graph), ...bytesField(8, [...str(1, ''), ...vint(2, 13)])];
  return new Uint8Array(model);
}

async function benchOrt(M: number, K: number, N: number, threads: number): Promise<number> {
  const ort = await import('onnxruntime-node');
  const session = await ort.InferenceSession.create(matmulModel(M, K, N), {
    intraOpNumThreads: threads, interOpNumThreads: 1, executionMode: 'sequential', graphOptimizationLevel: 'all',
  });
  const feeds = {
    A: new ort.Tensor('float32', rand(M * K), [M, K]),
    B: new ort.Tensor('float32', rand(K * N), [K, N]),
  };
  try {
    return await timeIt(() => session.run(feeds), 2 * M * N * K);
  } finally {
    await session.release();
  }
}

function emit(rows: Row[], row: Row): void {
  rows.push(row);
  if (json) console.log(JSON.stringify(row));
}

async function main(): Promise<void> {
  const rows: Row[] = [];
  const wasm1 = await createWasmBackend({ threads: 1 });
  const wasm2 = await createWasmBackend({ threads: 2 });
  const js = createJsBackend();
  const relaxed = wasm2.info().relaxedSimd;
  if (!json) {
    console.log(`GEMM f32 on ${os.cpus()[0]?.model ?? 'unknown CPU'} (${os.availableParallelism()} threads), Node ${process.version}; ` +
      `relaxed SIMD ${relaxed ? 'on' : `off (${wasm2.info().relaxedNote})`}`);
  }
  for (const [M, K, N] of SHAPES) {
    const shape: [number, number, number] = [M, K, N];
    if (M * K * N <= JS_MAX_MACS) emit(rows, { bench: 'gemm', shape, impl: 'actlab-js', threads: 1, gflops: await benchBackend(js, M, K, N) });
    else emit(rows, { bench: 'gemm', shape, impl: 'actlab-js', threads: 1, gflops: null, note: 'skipped (too slow)' });
    emit(rows, { bench: 'gemm', shape, impl: 'actlab-wasm', threads: 1, gflops: await benchBackend(wasm1, M, K, N) });
    emit(rows, { bench: 'gemm', shape, impl: 'actlab-wasm', threads: 2, gflops: await benchBackend(wasm2, M, K, N) });
    emit(rows, { bench: 'gemm', shape, impl: 'onnxruntime-node', threads: 2, gflops: await benchOrt(M, K, N, 2) });
  }
  wasm1.dispose();
  wasm2.dispose();
  if (json) return;
  const fmt = (x: number | null) => (x === null ? 'skipped' : x.toFixed(1));
  console.log('');
  console.log('| M, K, N | actlab-js | wasm 1 thr | wasm 2 thr | ORT 2 thr | wasm 2 thr / ORT |');
  console.log('|---|---:|---:|---:|---:|---:|');
  for (const [M, K, N] of SHAPES) {
    const get = (impl: string, t: number) => rows.find((r) => r.shape[0] === M && r.shape[1] === K && r.shape[2] === N && r.impl === impl && r.threads === t)?.gflops ?? null;
    const w2 = get('actlab-wasm', 2);
    const ort = get('onnxruntime-node', 2);
    console.log(`| ${M}, ${K}, ${N} | ${fmt(get('actlab-js', 1))} | ${fmt(get('actlab-wasm', 1))} | ${fmt(w2)} | ${fmt(ort)} | ${w2 && ort ? (w2 / ort).toFixed(2) + '×' : '-'} |`);
  }
  console.log('(GFLOP/s, median; actlab-js skipped above 5e6 multiply-adds)');
}

main().then(() => process.exit(0), (e) => { console.error(e); process.exit(1); });
