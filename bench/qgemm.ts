// Benchmark: the quantized GEMM of prefill (M activation rows, default 128, against a weight kept
// in its blocks) on the wasm backend, per format, beside actlab's f32 wasm GEMM and ONNX Runtime's
// MLAS f32 GEMM of the same shape in the same run, and, where onnxruntime-node loads, the same
// quantized product on MLAS (MatMulNBits, int8 activations: src/io/node/onnx-qgemm.ts) for the
// formats it takes (Q4_0, Q8_0); the wasm backend routes those there from policy.minQuantRows rows. Shapes
// are GPT-2 small's prefill products (qkv 2304x768, mlp up 3072x768, mlp down 768x3072).
// Each variant runs in turn (A B C A B C ...) so that a busy machine slows them alike; prints the
// median ms per product, GFLOP/s (2·M·N·K over the median) and the process's CPU ms per product.
// At M = 1 (decode) each timed run repeats the product `--reps` times (default 20 there), so that
// the CPU clock's granularity does not swamp a 0.1 ms product; `--shapes attn-out,unembed` adds
// decode's other shapes (Q6_K on MLAS is 8-bit codes in blocks of 16: src/io/node/onnx-qgemm.ts).
// Usage: npm run build && node dist/bench/qgemm.js [--threads 2] [--m 128] [--types q4_0,q8_0] [--shapes qkv] [--runs 15] [--reps 1] [--json]
import type { OpDesc, QuantType, View } from '../src/tensor/backend.js';
import { createWasmBackend, type WasmBackend } from '../src/backends/wasm/backend.js';
import { quantizeQ4_0, quantizeQ8_0 } from '../src/formats/gguf-quants.js';
import { quantizeQ4K, quantizeQ5K, quantizeQ6K } from '../src/formats/gguf-kquants.js';
import { quantRowBytes } from '../src/tensor/quantized.js';
import { Rng } from '../src/ops/creation.js';

const args = process.argv.slice(2);
const opt = (n: string, d: string) => { const i = args.indexOf(`--${n}`); return i >= 0 ? args[i + 1]! : d; };
const threads = Number(opt('threads', '2'));
const runs = Number(opt('runs', '15'));
const M = Number(opt('m', '128'));
const reps = Number(opt('reps', M === 1 ? '20' : '1'));
const json = args.includes('--json');
const TYPES = opt('types', 'q8_0,q4_0,q4_k,q6_k').split(',') as QuantType[];
const SHAPES: [string, number, number][] = [['qkv', 2304, 768], ['mlp up', 3072, 768], ['mlp down', 768, 3072], ['attn out', 768, 768], ['unembed', 50257, 768]];
/** Shapes run unless --shapes names others (attn out and unembed only when named). */
const DEFAULT_SHAPES = ['qkv', 'mlp-up', 'mlp-down'];

function view(be: WasmBackend, dtype: View['dtype'], shape: number[], bytes: Uint8Array): View {
  const buf = be.alloc(bytes.byteLength);
  be.write(buf, 0, bytes);
  const strides = shape.map((_, i) => shape.slice(i + 1).reduce((a, b) => a * b, 1));
  return { buffer: buf, dtype, shape, strides, offset: 0 };
}

function encode(type: QuantType, w: Float32Array): Uint8Array {
  switch (type) {
    case 'q8_0': return quantizeQ8_0(w);
    case 'q4_0': return quantizeQ4_0(w);
    case 'q4_k': return quantizeQ4K(w);
    case 'q5_k': return quantizeQ5K(w);
    case 'q6_k': return quantizeQ6K(w);
    default: throw new Error(`qgemm bench: no quantizer for ${type} here`);
  }
}

interface Variant { name: string; run: () => void; wall: number[]; cpu: number[] }

/** Runs the variants interleaved, two warm-ups each, then `runs` rounds. */
function measure(variants: Variant[]): void {
  for (const v of variants) { v.run(); v.run(); }
  for (let i = 0; i < runs; i++) {
    for (const v of variants) {
      const c0 = process.cpuUsage();
      const t0 = performance.now();
      for (let r = 0; r < reps; r++) v.run();
      v.wall.push((performance.now() - t0) / reps);
      const c = process.cpuUsage(c0);
      v.cpu.push((c.user + c.system) / 1e3 / reps);
    }
  }
}
const median = (a: number[]) => { const s = [...a].sort((x, y) => x - y); return s[s.length >> 1]!; };

const wasm = await createWasmBackend({ threads, nativeGemm: false });
// every quantized product of the formats MLAS takes goes native here, whatever its size (the default
// policy sends those of at least 4 rows and 2M multiply-adds)
const native = await createWasmBackend({ threads, nativeGemmPolicy: { minQuantRows: 1, minMacs: 0 } });
const hasNative = !String(native.info().nativeGemm).startsWith('off');
const nativeTypes = String(native.info().nativeQuantTypes ?? '').split(',');
const rng = new Rng(1);
interface Row { shape: string; N: number; K: number; M: number; variant: string; ms: number; gflops: number; cpu_ms: number; vs_f32_wasm: number }
const rows: Row[] = [];
const only = opt('shapes', '').split(',').filter(Boolean);
for (const [name, N, K] of SHAPES.filter(([n]) => (only.length ? only : DEFAULT_SHAPES).includes(n.replace(' ', '-')))) {
  const w = Float32Array.from({ length: N * K }, () => rng.normal() * 0.02);
  const xb = new Uint8Array(Float32Array.from({ length: M * K }, () => rng.normal()).buffer);
  const variants: Variant[] = [];
  const mm: OpDesc = { op: 'matmul', transA: false, transB: true };
  const frees: (() => void)[] = [];
  for (const [be, label, isNat] of [[wasm, 'wasm', false], [native, 'MLAS', true]] as const) {
    if (isNat && !hasNative) continue;
    const x = view(be, 'f32', [M, K], xb);
    const y = view(be, 'f32', [M, N], new Uint8Array(M * N * 4));
    const wf = view(be, 'f32', [N, K], new Uint8Array(w.buffer));
    variants.push({ name: `f32 ${label}`, run: () => be.exec(mm, [x, wf], [y]), wall: [], cpu: [] });
    for (const type of TYPES) {
      const wq = view(be, 'u8', [N * quantRowBytes(type, K)], encode(type, w));
      const op: OpDesc = { op: 'qmatmul', type };
      // the native backend's qmatmul goes to MLAS only for the formats it takes; the rest would repeat the wasm row
      if (isNat && !nativeTypes.includes(type)) { be.free(wq.buffer); continue; }
      variants.push({ name: `${type} ${label}`, run: () => be.exec(op, [x, wq], [y]), wall: [], cpu: [] });
      frees.push(() => be.free(wq.buffer));
    }
    frees.push(() => { be.free(x.buffer); be.free(y.buffer); be.free(wf.buffer); });
  }
  measure(variants);
  const f32ms = median(variants[0]!.wall);
  for (const v of variants) {
    const ms = median(v.wall);
    rows.push({ shape: name, N, K, M, variant: v.name, ms, gflops: (2 * M * N * K) / ms / 1e6, cpu_ms: median(v.cpu), vs_f32_wasm: f32ms / ms });
  }
  for (const f of frees) f();
}
wasm.dispose();
native.dispose();

if (json) for (const r of rows) console.log(JSON.stringify({ bench: 'qgemm', threads, ...r }));
else {
  console.log(`quantized GEMM (M = ${M}) on wasm, ${threads} threads, relaxed SIMD ${wasm.features.relaxed}, ${hasNative ? native.info().nativeGemm : 'no MLAS'}, median of ${runs} interleaved runs${reps > 1 ? ` of ${reps} products` : ''}`);
  console.log('| shape | N x K | variant | ms | GFLOP/s | CPU ms | speed vs f32 wasm |\n|---|---|---|---:|---:|---:|---:|');
  for (const r of rows) console.log(`| ${r.shape} | ${r.N}x${r.K} | ${r.variant} | ${r.ms.toFixed(2)} | ${r.gflops.toFixed(1)} | ${r.cpu_ms.toFixed(2)} | ${r.vs_f32_wasm.toFixed(2)}x |`);
}
