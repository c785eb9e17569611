// GEMM benchmark: f32 C[M,N] = A[M,K]·B[K,N] on actlab-wasm's own kernel (1 and 2 threads), the
// wasm backend as dispatched (its native GEMM, ONNX Runtime's MLAS with B packed once, for large
// products; wasm below the size policy), actlab-js (the reference backend; large shapes skipped)
// and onnxruntime-node's MatMul (a one-node ONNX model
// encoded here by hand, both operands as graph inputs, intraOpNumThreads 2), side by side in one
// run. Median of timed runs after warm-up, the implementations timed in turn over several rounds. Prints a table; `--json` prints one JSON object a line.
// Usage: npm run bench:gemm [-- --json] [-- --quick]   (-- --backend webgpu: bench/webgpu-gemm.ts, beside PyTorch CUDA)
import os from 'node:os';
import type { Backend, View } from '../src/tensor/backend.js';
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

interface Runner { impl: string; threads: number; run: () => unknown; dispose: () => Promise<void> | void }

/**
 * GFLOP/s of each runner: warm-up, then ROUNDS rounds in which every runner is timed in turn
 * (so that load from other processes hits all of them alike); median over all timed runs.
 */
async function measure(runners: Runner[], flops: number): Promise<number[]> {
  const rounds = quick ? 3 : 7;
  const perRoundS = quick ? 0.1 : 0.25;
  const firsts: number[] = [];
  for (const r of runners) {
    const t0 = performance.now();
    await r.run();
    firsts.push((performance.now() - t0) / 1e3);
    const warm = Math.max(2, Math.min(20, Math.ceil(0.2 / Math.max(firsts.at(-1)!, 1e-6))));
    for (let i = 0; i < warm; i++) await r.run();
  }
  const times: number[][] = runners.map(() => []);
  for (let round = 0; round < rounds; round++) {
    for (let j = 0; j < runners.length; j++) {
      // a turn lasts ~perRoundS: shorter turns (this was capped at 200 calls, 11 ms of the GEMV)
      // time a runner while the previous one's threads still hold the cores (ORT's pool spins)
      const n = Math.max(1, Math.min(20000, Math.ceil(perRoundS / Math.max(firsts[j]!, 1e-6))));
      for (let i = 0; i < n; i++) {
        const s = performance.now();
        await runners[j]!.run();
        times[j]!.push((performance.now() - s) / 1e3);
      }
    }
  }
  return times.map((t) => {
    t.sort((x, y) => x - y);
    return flops / t[Math.floor(t.length / 2)]! / 1e9;
  });
}

function backendRunner(be: Backend, impl: string, threads: number, M: number, K: number, N: number): Runner {
  const bytes = (a: Float32Array) => new Uint8Array(a.buffer);
  const A = be.alloc(M * K * 4);
  const B = be.alloc(K * N * 4);
  const Y = be.alloc(M * N * 4);
  be.write(A, 0, bytes(rand(M * K)));
  be.write(B, 0, bytes(rand(K * N)));
  const v = (buffer: typeof A, shape: number[]): View => ({ buffer, dtype: 'f32', shape, strides: [shape[1]!, 1], offset: 0 });
  const ins = [v(A, [M, K]), v(B, [K, N])];
  const outs = [v(Y, [M, N])];
  return {
    impl, threads,
    run: () => be.exec({ op: 'matmul', transA: false, transB: false }, ins, outs),
    dispose: () => { for (const b of [A, B, Y]) be.free(b); },
  };
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

async function ortRunner(M: number, K: number, N: number, threads: number): Promise<Runner> {
  const ort = await import('onnxruntime-node');
  const session = await ort.InferenceSession.create(matmulModel(M, K, N), {
    intraOpNumThreads: threads, interOpNumThreads: 1, executionMode: 'sequential', graphOptimizationLevel: 'all',
  });
  const feeds = {
    A: new ort.Tensor('float32', rand(M * K), [M, K]),
    B: new ort.Tensor('float32', rand(K * N), [K, N]),
  };
  return { impl: 'onnxruntime-node', threads, run: () => session.run(feeds), dispose: () => session.release() };
}

function emit(rows: Row[], row: Row): void {
  rows.push(row);
  if (json) console.log(JSON.stringify(row));
}

async function main(): Promise<void> {
  const rows: Row[] = [];
  const wasm1 = await createWasmBackend({ threads: 1, nativeGemm: false });
  const wasm2 = await createWasmBackend({ threads: 2, nativeGemm: false });
  const dispatched = await createWasmBackend({ threads: 2 });
  const js = createJsBackend();
  const relaxed = wasm2.info().relaxedSimd;
  if (!json) {
    console.log(`GEMM f32 on ${os.cpus()[0]?.model ?? 'unknown CPU'} (${os.availableParallelism()} threads), Node ${process.version}; ` +
      `relaxed SIMD ${relaxed ? 'on' : `off (${wasm2.info().relaxedNote})`}; native GEMM: ${dispatched.info().nativeGemm}`);
  }
  for (const [M, K, N] of SHAPES) {
    const shape: [number, number, number] = [M, K, N];
    const runners: Runner[] = [];
    if (M * K * N <= JS_MAX_MACS) runners.push(backendRunner(js, 'actlab-js', 1, M, K, N));
    runners.push(backendRunner(wasm1, 'actlab-wasm', 1, M, K, N));
    runners.push(backendRunner(wasm2, 'actlab-wasm', 2, M, K, N));
    runners.push(backendRunner(dispatched, 'actlab-wasm+native', 2, M, K, N));
    runners.push(await ortRunner(M, K, N, 2));
    const gflops = await measure(runners, 2 * M * N * K);
    if (M * K * N > JS_MAX_MACS) emit(rows, { bench: 'gemm', shape, impl: 'actlab-js', threads: 1, gflops: null, note: 'skipped (too slow)' });
    runners.forEach((r, i) => emit(rows, { bench: 'gemm', shape, impl: r.impl, threads: r.threads, gflops: gflops[i]! }));
    for (const r of runners) await r.dispose();
  }
  wasm1.dispose();
  wasm2.dispose();
  dispatched.dispose();
  if (json) return;
  const fmt = (x: number | null) => (x === null ? 'skipped' : x.toFixed(1));
  console.log('');
  console.log('| M, K, N | actlab-js | wasm 1 thr | wasm 2 thr | wasm+native 2 thr | ORT 2 thr | wasm 2 thr / ORT | wasm+native / ORT |');
  console.log('|---|---:|---:|---:|---:|---:|---:|---:|');
  for (const [M, K, N] of SHAPES) {
    const get = (impl: string, t: number) => rows.find((r) => r.shape[0] === M && r.shape[1] === K && r.shape[2] === N && r.impl === impl && r.threads === t)?.gflops ?? null;
    const w2 = get('actlab-wasm', 2);
    const ort = get('onnxruntime-node', 2);
    const nat = get('actlab-wasm+native', 2);
    const ratio = (x: number | null) => (x && ort ? (x / ort).toFixed(2) + '×' : '-');
    console.log(`| ${M}, ${K}, ${N} | ${fmt(get('actlab-js', 1))} | ${fmt(get('actlab-wasm', 1))} | ${fmt(w2)} | ${fmt(nat)} | ${fmt(ort)} | ${ratio(w2)} | ${ratio(nat)} |`);
  }
  console.log('(GFLOP/s, median; actlab-js skipped above 5e6 multiply-adds)');
}

const viaWebGpu = args[args.indexOf('--backend') + 1] === 'webgpu' && args.includes('--backend');
(viaWebGpu ? import('./webgpu-gemm.js').then((m) => m.main(args)) : main()).then(() => process.exit(0), (e) => { console.error(e); process.exit(1); });
