// Profile of one GPT-2-small-shaped prefill (random weights) on the wasm backend, per op kind:
// wall and CPU time of every op the backend runs (linear layers, the unembedding's matmul,
// attention, layer norms, adds, copies), the time inside the native GEMM, and what is left for
// JavaScript dispatch — beside ONNX Runtime's own profile of the whole graph (per node type, from
// its profiler) in the same process, when the exported graph of bench:model is there
// (bench/.cache/gpt2s.onnx). A block that runs as one native call (no hook inside it) counts as
// one op kind, as do consecutive blocks in one call. CPU time is the process's (every thread), so it stays meaningful on a
// loaded machine, where wall time is not.
// Usage: node dist/bench/prefill-profile.js [--T 128] [--batch 1] [--threads 2] [--runs 5] [--no-native] [--no-blocks] [--no-unembed]
import { createRequire } from 'node:module';
import { existsSync, readdirSync, readFileSync, rmSync, mkdtempSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import '../src/backends/index.js';
import { createWasmBackend } from '../src/backends/wasm/backend.js';
import { tensor } from '../src/ops/creation.js';
import { randomModel } from '../src/models/random.js';
import type { FusedChainDesc, OpDesc, View } from '../src/tensor/backend.js';

const args = process.argv.slice(2);
const opt = (n: string, d: string) => { const i = args.indexOf(`--${n}`); return i >= 0 ? args[i + 1]! : d; };
const T = Number(opt('T', '128'));
const batch = Number(opt('batch', '1'));
const threads = Number(opt('threads', '2'));
const runs = Number(opt('runs', '5'));
const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const onnx = join(root, 'bench', '.cache', 'gpt2s.onnx');
const GPT2_SMALL = { model_type: 'gpt2', n_embd: 768, n_head: 12, n_layer: 12, n_positions: 1024, vocab_size: 50257 };

const cpuMs = (u: NodeJS.CpuUsage) => (u.user + u.system) / 1000;

function opKey(op: OpDesc, inputs: readonly View[]): string {
  const fn = 'fn' in op ? `:${String(op.fn)}` : '';
  if (op.op === 'matmul') return `matmul ${inputs[0]!.shape.join('x')} · ${inputs[1]!.shape.join('x')}${op.transB ? 'ᵀ' : ''}`;
  if (op.op === 'linear') return `linear${op.act ? ` + ${op.act}` : ''} ${inputs[1]!.shape.join('x')}${op.transB ? 'ᵀ' : ''}`;
  return op.op + fn;
}

// --no-blocks: every block op by op (the native GEMM still takes the products and attention)
const backend = await createWasmBackend({ threads, ...(args.includes('--no-native') ? { nativeGemm: false as const } : {}), nativeGemmPolicy: { blocks: !args.includes('--no-blocks') } });
const model = randomModel(GPT2_SMALL, backend, { seed: 0, std: 0.02 });
const ids = Array.from({ length: batch * T }, (_, i) => (i * 7919) % GPT2_SMALL.vocab_size);
const x = tensor(ids, [batch, T], 'i32', { backend });
// --no-unembed: the blocks only (a cache of resid_post stops there)
const forward = () => (args.includes('--no-unembed') ? model.forward(x, { stopAtLayer: GPT2_SMALL.n_layer }) : model.forward(x));
const stats = new Map<string, { n: number; wall: number; cpu: number }>();
let recording = false;
const exec = backend.exec.bind(backend);
let depth = 0; // ops the backend runs inside another op (a linear layer split into matmul, add, unary) are counted in it
backend.exec = (op, inputs, outputs) => {
  if (!recording || depth > 0) { depth++; try { return exec(op, inputs, outputs); } finally { depth--; } }
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  depth++;
  try { exec(op, inputs, outputs); } finally { depth--; }
  const s = stats.get(opKey(op, inputs)) ?? { n: 0, wall: 0, cpu: 0 };
  s.n++; s.wall += performance.now() - t0; s.cpu += cpuMs(process.cpuUsage(c0));
  stats.set(opKey(op, inputs), s);
};
const gemm = backend.native.gemm;
let inGemm = { wall: 0, cpu: 0 };
if (gemm) {
  const wrap = <F extends (...a: never[]) => void>(f: F): F => ((...a: Parameters<F>) => {
    if (!recording) return f(...a);
    const c0 = process.cpuUsage(); const t0 = performance.now();
    f(...a);
    inGemm = { wall: inGemm.wall + performance.now() - t0, cpu: inGemm.cpu + cpuMs(process.cpuUsage(c0)) };
  }) as F;
  gemm.gemm = wrap(gemm.gemm.bind(gemm));
  if (gemm.attention) gemm.attention = wrap(gemm.attention.bind(gemm));
}
// whole blocks in one native call (Backend.fusedBlock, or a run of them: Backend.fusedBlocks) are
// not ops: counted here as one kind per call
const countBlocks = <F extends (...a: never[]) => boolean>(f: F | undefined, key: (...a: Parameters<F>) => string, name: string) => {
  if (f) Object.defineProperty(backend, name, { value: (...a: Parameters<F>) => {
    if (!recording) return f(...a);
    const c0 = process.cpuUsage(); const t0 = performance.now();
    const done = f(...a);
    const w = performance.now() - t0; const c = cpuMs(process.cpuUsage(c0));
    if (done) {
      inGemm = { wall: inGemm.wall + w, cpu: inGemm.cpu + c };
      const s = stats.get(key(...a)) ?? { n: 0, wall: 0, cpu: 0 };
      s.n++; s.wall += w; s.cpu += c;
      stats.set(key(...a), s);
    }
    return done;
  } });
};
countBlocks(backend.fusedBlock, () => 'whole block (one native call)', 'fusedBlock');
countBlocks(backend.fusedBlocks, (desc: FusedChainDesc) => `${desc.blocks.length} whole blocks (one native call)`, 'fusedBlocks');
for (let i = 0; i < 3; i++) forward().dispose(); // weights packed from the second product
recording = true;
const c0 = process.cpuUsage();
const t0 = performance.now();
for (let i = 0; i < runs; i++) forward().dispose();
const total = { wall: (performance.now() - t0) / runs, cpu: cpuMs(process.cpuUsage(c0)) / runs };
recording = false;

console.log(`GPT-2 small shape, prefill ${batch} x T=${T}${args.includes('--no-unembed') ? ', blocks only' : ''}, ${threads} threads, mean of ${runs} forwards; load average ${loadavg().map((l) => l.toFixed(1)).join(' ')}`);
console.log(`native GEMM: ${String(backend.info().nativeGemm)}`);
console.log('| op | calls | wall ms | CPU ms | CPU share |\n|---|---:|---:|---:|---:|');
let opsCpu = 0;
let opsWall = 0;
for (const [k, s] of [...stats].sort((a, b) => b[1].cpu - a[1].cpu)) {
  opsCpu += s.cpu; opsWall += s.wall;
  console.log(`| ${k} | ${s.n / runs} | ${(s.wall / runs).toFixed(1)} | ${(s.cpu / runs).toFixed(1)} | ${(100 * s.cpu / runs / total.cpu).toFixed(1)}% |`);
}
if (gemm) console.log(`| (of which inside the native GEMM: copies, ORT) | | ${(inGemm.wall / runs).toFixed(1)} | ${(inGemm.cpu / runs).toFixed(1)} | ${(100 * inGemm.cpu / runs / total.cpu).toFixed(1)}% |`);
console.log(`| JavaScript between ops (forward - ops) | | ${(total.wall - opsWall / runs).toFixed(1)} | ${(total.cpu - opsCpu / runs).toFixed(1)} | ${(100 * (total.cpu - opsCpu / runs) / total.cpu).toFixed(1)}% |`);
console.log(`| forward | | ${total.wall.toFixed(1)} | ${total.cpu.toFixed(1)} | |`);
x.dispose();
model.dispose();
backend.dispose();

// ONNX Runtime on the whole graph, in this process, with its profiler: time per node type.
if (!existsSync(onnx) || batch !== 1) {
  console.error(`ONNX Runtime profile skipped: ${batch !== 1 ? 'the exported graph takes batch 1' : `${onnx} not found (npm run bench:model exports it)`}`);
} else {
  const require = createRequire(import.meta.url);
  const ort = require('onnxruntime-node') as typeof import('onnxruntime-node');
  const dir = mkdtempSync(join(tmpdir(), 'actlab-ortprof-'));
  try {
    const sess = await ort.InferenceSession.create(onnx, {
      executionProviders: ['cpu'], intraOpNumThreads: threads, interOpNumThreads: 1, graphOptimizationLevel: 'all',
      executionMode: 'sequential', enableProfiling: true, profileFilePrefix: join(dir, 'ort'),
    });
    const feed = { input_ids: new ort.Tensor('int64', BigInt64Array.from(ids.map(BigInt)), [batch, T]) };
    for (let i = 0; i < 2; i++) await sess.run(feed);
    const o0 = process.cpuUsage();
    const w0 = performance.now();
    for (let i = 0; i < runs; i++) await sess.run(feed);
    const ortTotal = { wall: (performance.now() - w0) / runs, cpu: cpuMs(process.cpuUsage(o0)) / runs };
    sess.endProfiling();
    const file = readdirSync(dir).map((f) => join(dir, f)).find((f) => f.endsWith('.json'))!;
    const events = JSON.parse(readFileSync(file, 'utf8')) as { cat: string; name: string; ts: number; dur: number; args?: { op_name?: string } }[];
    const runsEv = events.filter((e) => e.name === 'model_run').slice(-runs);
    const from = runsEv[0]?.ts ?? 0;
    const byType = new Map<string, number>();
    for (const e of events) {
      if (e.cat !== 'Node' || !e.name.endsWith('_kernel_time') || e.ts < from) continue;
      byType.set(e.args?.op_name ?? '?', (byType.get(e.args?.op_name ?? '?') ?? 0) + e.dur / 1000 / runs);
    }
    console.log(`\nonnxruntime-node ${ort.env.versions.common}, whole graph (optimisation 'all', spinning on: its CPU time includes spinning): forward ${ortTotal.wall.toFixed(1)} ms wall, ${ortTotal.cpu.toFixed(1)} ms CPU`);
    console.log('| node type | wall ms (ORT profiler) |\n|---|---:|');
    for (const [k, ms] of [...byType].sort((a, b) => b[1] - a[1])) console.log(`| ${k} | ${ms.toFixed(1)} |`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
process.exit(0);
