// Benchmark: the quantized GEMV of decode (one activation row against a weight kept in its
// blocks) on the wasm backend, per format, beside actlab's own f32 GEMV of the same shape in the
// same run. Shapes are GPT-2 small's decode products (qkv 2304x768, attn out 768x768, mlp up
// 3072x768, mlp down 768x3072, and the 50257x768 unembedding). Per shape the f32 product and every
// format run interleaved (one call of each per round, so that a busy machine slows all alike);
// prints the median and the minimum µs per product, the weight bytes read per µs and the load average;
// the model-level numbers beside llama.cpp are `npm run bench:quant`.
// Usage: npm run build && node dist/bench/qgemv.js [--threads 2] [--types q4_0,q8_0] [--shapes qkv,unembed] [--runs 30] [--cpu] [--json]
import type { OpDesc, View } from '../src/tensor/backend.js';
import type { QuantType } from '../src/tensor/backend.js';
import { createWasmBackend, type WasmBackend } from '../src/backends/wasm/backend.js';
import { quantizeQ4_0, quantizeQ8_0 } from '../src/formats/gguf-quants.js';
import { quantizeQ4K, quantizeQ6K } from '../src/formats/gguf-kquants.js';
import { isActlabQuantType, quantizeWeights } from '../src/quant/formats.js';
import { quantRowBytes } from '../src/tensor/quantized.js';
import { Rng } from '../src/ops/creation.js';
import { loadavg } from 'node:os';

const args = process.argv.slice(2);
const opt = (n: string, d: string) => { const i = args.indexOf(`--${n}`); return i >= 0 ? args[i + 1]! : d; };
const threads = Number(opt('threads', '2'));
const runs = Number(opt('runs', '30'));
const json = args.includes('--json');
const cpu = args.includes('--cpu');
const std = Number(opt('std', '0.02'));
const TYPES = opt('types', 'q8_0,q4_0,q4_k,q6_k,int8,int4_g32,nf4,fp8_e4m3,fp4,llmfp4_e2m1').split(',') as QuantType[];
const SHAPES: [string, number, number][] = [['qkv', 2304, 768], ['attn out', 768, 768], ['mlp up', 3072, 768], ['mlp down', 768, 3072], ['unembed', 50257, 768]];

function view(be: WasmBackend, dtype: View['dtype'], shape: number[], bytes: Uint8Array): View {
  const buf = be.alloc(bytes.byteLength);
  be.write(buf, 0, bytes);
  const strides = shape.map((_, i) => shape.slice(i + 1).reduce((a, b) => a * b, 1));
  return { buffer: buf, dtype, shape, strides, offset: 0 };
}

function encode(type: QuantType, w: Float32Array, rows: number, cols: number): Uint8Array {
  if (isActlabQuantType(type)) return quantizeWeights(type, w, rows, cols);
  switch (type) {
    case 'q8_0': return quantizeQ8_0(w);
    case 'q4_0': return quantizeQ4_0(w);
    case 'q4_k': return quantizeQ4K(w);
    case 'q6_k': return quantizeQ6K(w);
    default: throw new Error(`qgemv bench: no quantizer for ${type} here`);
  }
}

/**
 * µs of one call of `fn`: the wall clock, or with --cpu (and --threads 1) the process's CPU time
 * per call over 5 calls: on a machine shared with other work it counts the kernel's own cycles,
 * not the time it waited to be scheduled.
 */
function sample(fn: () => void): number {
  if (cpu) {
    const c0 = process.cpuUsage();
    const reps = 5;
    for (let r = 0; r < reps; r++) fn();
    const c = process.cpuUsage(c0);
    return (c.user + c.system) / reps;
  }
  const t0 = performance.now();
  fn();
  return (performance.now() - t0) * 1e3;
}

const median = (a: number[]) => [...a].sort((p, q) => p - q)[a.length >> 1]!;
const be = await createWasmBackend({ threads, nativeGemm: false });
const rng = new Rng(1);
interface Row { shape: string; N: number; K: number; type: string; us: number; min_us: number; bytes: number; gb_s: number; vs_f32: number }
const rows: Row[] = [];
const only = opt('shapes', '').split(',').filter(Boolean);
const load0 = loadavg();
for (const [name, N, K] of SHAPES.filter(([n]) => !only.length || only.includes(n.replace(' ', '-')))) {
  const w = Float32Array.from({ length: N * K }, () => rng.normal() * std);
  const x = view(be, 'f32', [1, K], new Uint8Array(Float32Array.from({ length: K }, () => rng.normal()).buffer));
  const y = view(be, 'f32', [1, N], new Uint8Array(N * 4));
  // every variant of this shape: f32 and the formats, measured interleaved (one call of each per round)
  const mm: OpDesc = { op: 'matmul', transA: false, transB: true };
  const wf = view(be, 'f32', [N, K], new Uint8Array(w.buffer));
  const variants: { type: string; bytes: number; run: () => void; free: () => void; us: number[] }[] = [
    { type: 'f32', bytes: N * K * 4, run: () => be.exec(mm, [x, wf], [y]), free: () => be.free(wf.buffer), us: [] }];
  for (const type of TYPES) {
    const wq = view(be, 'u8', [N * quantRowBytes(type, K)], encode(type, w, N, K));
    const op: OpDesc = { op: 'qmatmul', type };
    const native = be.isNative(op, [x, wq], [y]);
    // the reference kernel on a large shape would take minutes: left out
    if (!native && N * K >= 1e6) { rows.push({ shape: name, N, K, type: `${type} (reference)`, us: NaN, min_us: NaN, bytes: wq.shape[0]!, gb_s: NaN, vs_f32: NaN }); be.free(wq.buffer); continue; }
    variants.push({ type: native ? type : `${type} (reference)`, bytes: wq.shape[0]!, run: () => be.exec(op, [x, wq], [y]), free: () => be.free(wq.buffer), us: [] });
  }
  for (const v of variants) { v.run(); v.run(); }
  for (let i = 0; i < runs; i++) for (const v of variants) v.us.push(sample(v.run));
  const f32us = median(variants[0]!.us);
  for (const v of variants) {
    const us = median(v.us);
    rows.push({ shape: name, N, K, type: v.type, us, min_us: Math.min(...v.us), bytes: v.bytes, gb_s: v.bytes / us / 1e3, vs_f32: us / f32us });
    v.free();
  }
  be.free(x.buffer);
  be.free(y.buffer);
}
be.dispose();
const load1 = loadavg();

if (json) for (const r of rows) console.log(JSON.stringify({ bench: 'qgemv', threads, ...r }));
else {
  console.log(`quantized GEMV (M = 1) on wasm, ${threads} threads, relaxed SIMD ${be.features.relaxed}, median (and min) of ${runs} interleaved rounds${cpu ? ' (CPU time per call)' : ''}; load average ${load0[0]!.toFixed(1)} -> ${load1[0]!.toFixed(1)}`);
  console.log('| shape | N x K | type | µs | min µs | weight MB | GB/s | time vs f32 |\n|---|---|---|---:|---:|---:|---:|---:|');
  const r2 = (v: number) => (Number.isFinite(v) ? v.toFixed(2) : '—');
  for (const r of rows) console.log(`| ${r.shape} | ${r.N}x${r.K} | ${r.type} | ${Number.isFinite(r.us) ? r.us.toFixed(0) : '—'} | ${Number.isFinite(r.min_us) ? r.min_us.toFixed(0) : '—'} | ${(r.bytes / 1e6).toFixed(2)} | ${r2(r.gb_s)} | ${r2(r.vs_f32)}x |`);
}
