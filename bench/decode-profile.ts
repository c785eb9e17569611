// Profile of one decode step of a GGUF model on the wasm backend: where the time of a token goes.
// Every backend op is timed (wall and, with --threads 1, also the process's CPU time), quantized
// products by weight shape, with the kernel pool's own calls (activation rounding `qm_quant_x`,
// the product kernel) timed apart, so that the time outside the kernels (dispatch, allocation,
// tensor bookkeeping, the JavaScript between ops) shows as the step's remainder.
// Prints per op kind: calls per token, µs per token, and for products the weight MB and GB/s.
// Usage: npm run build && node dist/bench/decode-profile.js [--model bench/.cache/quant/gpt2s-Q4_0.gguf]
//   [--threads 2] [--steps 32] [--json]
import { existsSync } from 'node:fs';
import '../src/backends/index.js';
import { createWasmBackend } from '../src/backends/wasm/backend.js';
import type { OpDesc, View } from '../src/tensor/backend.js';
import { KVCache } from '../src/models/layers/kv-cache.js';
import { loadModel } from '../src/models/load.js';
import { tensor } from '../src/ops/creation.js';
import { reduce } from '../src/ops/reduce.js';
import { greedyTokenSync } from '../src/models/generate.js';
import { quantRowBytes } from '../src/tensor/quantized.js';

const args = process.argv.slice(2);
const opt = (n: string, d: string) => { const i = args.indexOf(`--${n}`); return i >= 0 ? args[i + 1]! : d; };
const file = opt('model', 'bench/.cache/quant/gpt2s-Q4_0.gguf');
const threads = Number(opt('threads', '2'));
const steps = Number(opt('steps', '32'));
const json = args.includes('--json');
if (!existsSync(file)) throw new Error(`decode-profile: no model file '${file}' (npm run bench:quant makes bench/.cache/quant/)`);

const be = await createWasmBackend({ threads, nativeGemm: false });
const { model } = await loadModel(file, { backend: be, memoryBudget: 0 });

// per op key: calls and wall ms of the current step, and each step's total (a loaded machine
// disturbs some steps: the median over steps is the figure reported)
interface Acc { calls: number; ms: number; bytes: number; perStep: number[] }
const table = new Map<string, Acc>();
const acc = (key: string, ms: number, bytes = 0) => {
  const a = table.get(key) ?? { calls: 0, ms: 0, bytes: 0, perStep: [] };
  a.calls++;
  a.ms += ms;
  a.bytes += bytes;
  table.set(key, a);
};
let on = false;

// the pool's kernels, timed where they are called
const pool = be.pool;
const run0 = pool.run.bind(pool);
pool.run = (kernel: string, a: readonly number[], n?: number) => {
  if (!on) return run0(kernel, a, n);
  const t0 = performance.now();
  run0(kernel, a, n);
  acc(`  pool ${kernel.startsWith('qm_') && kernel !== 'qm_quant_x' ? 'qm_<type> (product kernel)' : kernel}`, performance.now() - t0);
};
// every op, by kind (quantized products by shape)
const exec0 = be.exec.bind(be);
be.exec = (op: OpDesc, inputs: readonly View[], outputs: readonly View[]) => {
  if (!on) return exec0(op, inputs, outputs);
  let key: string = op.op;
  let bytes = 0;
  if (op.op === 'qmatmul') {
    const [M, K] = inputs[0]!.shape;
    const N = outputs[0]!.shape[1]!;
    key = `qmatmul ${op.type} ${N}x${K}${M! > 1 ? ` M=${M}` : ''}`;
    bytes = N * quantRowBytes(op.type, K!);
  } else if (op.op === 'matmul') {
    key = `matmul ${inputs.map((v) => v.shape.join('x')).join(' · ')}`;
  } else if ('fn' in op) key = `${op.op} ${String((op as { fn: unknown }).fn)}`;
  const t0 = performance.now();
  exec0(op, inputs, outputs);
  acc(key, performance.now() - t0, bytes);
};

const b = model.backend;
const kv = new KVCache();
let next = 1;
const step = () => {
  const t = tensor([next], [1, 1], 'i32', { backend: b });
  next = greedyTokenSync(model.forward(t, { cache: kv, logits: 'last' }));
  t.dispose();
};
for (let s = 0; s < 8; s++) step(); // warm-up: scratch areas, JIT
on = true;
const walls: number[] = [];
const c0 = process.cpuUsage();
for (let s = 0; s < steps; s++) {
  for (const a of table.values()) a.ms = 0;
  const t0 = performance.now();
  step();
  walls.push(performance.now() - t0);
  for (const a of table.values()) a.perStep.push(a.ms);
}
const c = process.cpuUsage(c0);
on = false;
kv.dispose();
model.dispose();
be.dispose();

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0;
const wall = median(walls);
const stepCpu = (c.user + c.system) / 1e3 / steps;
const rows = [...table].map(([key, a]) => ({ key, calls: a.calls / steps, us: median(a.perStep) * 1e3, mb: a.bytes / a.calls / 1e6 }))
  .sort((x, y) => y.us - x.us);
const opsMs = rows.filter((r) => !r.key.startsWith('  ')).reduce((s, r) => s + r.us / 1e3, 0);
if (json) {
  for (const r of rows) console.log(JSON.stringify({ bench: 'decode-profile', file, threads, key: r.key.trim(), calls_per_token: r.calls, us_per_token: r.us, gb_s: r.mb ? (r.mb * r.calls) / r.us * 1e3 : undefined }));
  console.log(JSON.stringify({ bench: 'decode-profile', file, threads, ms_per_token: wall, ops_ms_per_token: opsMs, cpu_ms_per_token: stepCpu }));
} else {
  console.log(`decode profile of ${file}, wasm ${threads} threads (relaxed SIMD ${be.features.relaxed}), median of ${steps} steps after 8 warm-up steps`);
  console.log(`step: ${wall.toFixed(2)} ms/token wall (${stepCpu.toFixed(2)} ms/token CPU, all threads); inside backend ops ${opsMs.toFixed(2)} ms, outside ${(wall - opsMs).toFixed(2)} ms`);
  console.log('| op | calls/token | µs/token | µs/call | weight MB | GB/s |\n|---|---:|---:|---:|---:|---:|');
  for (const r of rows) {
    const gbs = r.mb ? ((r.mb * r.calls) / r.us * 1e3).toFixed(2) : '';
    console.log(`| ${r.key} | ${r.calls.toFixed(0)} | ${r.us.toFixed(0)} | ${(r.us / r.calls).toFixed(1)} | ${r.mb ? r.mb.toFixed(2) : ''} | ${gbs} |`);
  }
}
