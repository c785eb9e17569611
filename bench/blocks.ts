// Benchmark: how whole blocks reach the native GEMM, interleaved in one process on a
// GPT-2-small-shaped model (random weights): all consecutive blocks in one ONNX Runtime call
// (`chain`, the default), one call per block (`block`: nativeGemmPolicy.chains off), and every
// block op by op (`ops`: blocks off; the products, attention still native), beside ONNX Runtime
// running the exported whole graph (bench/.cache/gpt2s.onnx, made by bench:model) in the same
// process. Each round runs every mode once, in turn, so that load from other work hits all
// alike; the table gives medians of wall and CPU time (the process's, every thread) and of the
// minor page faults per forward (memory the C heap handed back and took again: onnxruntime-node
// returns each fetched output in a new array, 25.7 MB for the logits at T=128, and whether that
// lands on fresh pages depends on the heap's state, which the modes before it leave).
// Two more rows: a runWithCache of every hook point cache_all_ratio caches (bench/cache-all-names.ts)
// with the blocks in one call (the inner values written out by it) and op by op; the ratio of the
// first to the plain forward in one call is printed under the table.
// `--cache`: a runWithCache of every hook_resid_post instead (stopping after the last block, as
// `actlab cache` does), batch × T tokens; the whole-graph peer and the cache-every-hook rows are
// then left out.
// Usage: node dist/bench/blocks.js [--T 128] [--batch 1] [--rounds 9] [--threads 2] [--cache]
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import '../src/backends/index.js';
import { createWasmBackend } from '../src/backends/wasm/backend.js';
import { tensor } from '../src/ops/creation.js';
import { randomModel } from '../src/models/random.js';
import { runWithCache } from '../src/hooks/run.js';
import { CACHE_ALL_NAMES } from './cache-all-names.js';

const args = process.argv.slice(2);
const opt = (n: string, d: string) => { const i = args.indexOf(`--${n}`); return i >= 0 ? args[i + 1]! : d; };
const T = Number(opt('T', '128'));
const batch = Number(opt('batch', '1'));
const rounds = Number(opt('rounds', '9'));
const threads = Number(opt('threads', '2'));
const cache = args.includes('--cache');
const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const onnx = join(root, 'bench', '.cache', 'gpt2s.onnx');
const GPT2_SMALL = { model_type: 'gpt2', n_embd: 768, n_head: 12, n_layer: 12, n_positions: 1024, vocab_size: 50257 };
const cpuMs = (u: NodeJS.CpuUsage) => (u.user + u.system) / 1000;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

const backend = await createWasmBackend({ threads });
const native = backend.native;
if (!native.gemm) throw new Error(`bench/blocks: no native GEMM (${native.reason})`);
const policy = native.policy;
const model = randomModel(GPT2_SMALL, backend, { seed: 0, std: 0.02 });
const ids = Array.from({ length: batch * T }, (_, i) => (i * 7919) % GPT2_SMALL.vocab_size);
const x = tensor(ids, [batch, T], 'i32', { backend });
const names = Array.from({ length: GPT2_SMALL.n_layer }, (_, l) => `blocks.${l}.hook_resid_post`);
const forward = () => {
  if (!cache) { model.forward(x).dispose(); return; }
  const r = runWithCache(model, x, { names, stopAtLayer: GPT2_SMALL.n_layer });
  r.logits.dispose();
  r.cache.dispose();
};

type Mode = { name: string; run: () => void | Promise<unknown> };
const cacheAll = () => { const r = runWithCache(model, x, { names: CACHE_ALL_NAMES }); r.logits.dispose(); r.cache.dispose(); };
const modes: Mode[] = [
  { name: 'actlab, blocks in one call', run: () => { policy.blocks = true; policy.chains = true; forward(); } },
  { name: 'actlab, one call per block', run: () => { policy.blocks = true; policy.chains = false; forward(); } },
  { name: 'actlab, blocks op by op', run: () => { policy.blocks = false; forward(); } },
];
if (!cache) {
  modes.push(
    { name: 'actlab, cache every hook, blocks in one call', run: () => { policy.blocks = true; policy.chains = true; cacheAll(); } },
    { name: 'actlab, cache every hook, blocks op by op', run: () => { policy.blocks = false; cacheAll(); } },
  );
}
if (!cache && existsSync(onnx) && batch === 1) {
  const require = createRequire(import.meta.url);
  const ort = require('onnxruntime-node') as typeof import('onnxruntime-node');
  // spinning as ORT's default, stopped at the end of each run so that it does not take the
  // cores from the next mode
  const sess = await ort.InferenceSession.create(onnx, {
    executionProviders: ['cpu'], intraOpNumThreads: threads, interOpNumThreads: 1, graphOptimizationLevel: 'all',
    executionMode: 'sequential', extra: { session: { force_spinning_stop: '1' } },
  });
  const feed = { input_ids: new ort.Tensor('int64', BigInt64Array.from(ids.map(BigInt)), [batch, T]) };
  // the promise API (it runs the binding's synchronous run one tick later): awaited in the timing
  modes.push({ name: 'ONNX Runtime, whole graph', run: () => sess.run(feed) });
} else if (!cache) {
  console.error(`ONNX Runtime peer left out: ${batch !== 1 ? 'the exported graph takes batch 1' : `${onnx} not found (npm run bench:model exports it)`}`);
}

const times = modes.map(() => ({ wall: [] as number[], cpu: [] as number[], faults: [] as number[] }));
const faults = () => process.resourceUsage().minorPageFault;
const timeOne = async (m: Mode) => {
  const f0 = faults();
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  await m.run();
  return { wall: performance.now() - t0, cpu: cpuMs(process.cpuUsage(c0)), faults: faults() - f0 };
};
for (const m of modes) for (let i = 0; i < 3; i++) await timeOne(m); // weights packed from the second forward
const load0 = loadavg()[0]!;
for (let r = 0; r < rounds; r++) {
  for (let i = 0; i < modes.length; i++) {
    const t = await timeOne(modes[i]!);
    times[i]!.wall.push(t.wall);
    times[i]!.cpu.push(t.cpu);
    times[i]!.faults.push(t.faults);
  }
}
policy.blocks = true;
policy.chains = true;
const what = cache ? `runWithCache of ${names.length} × hook_resid_post (stop after the blocks)` : 'prefill with logits';
console.log(`GPT-2 small shape, ${what}, ${batch} × T=${T}, ${threads} threads, median of ${rounds} interleaved rounds; load average ${load0.toFixed(1)} -> ${loadavg()[0]!.toFixed(1)}`);
const info = backend.info();
console.log(`native GEMM: ${native.gemm.name}; held packed by it after all modes: ${info.nativeGemmPackedMB} MB (${info.nativeGemmNote})`);
console.log('| mode | wall ms | CPU ms | tok/s (wall) | page faults |\n|---|---:|---:|---:|---:|');
modes.forEach((m, i) => {
  const w = median(times[i]!.wall);
  console.log(`| ${m.name} | ${w.toFixed(1)} | ${median(times[i]!.cpu).toFixed(1)} | ${((batch * T) / (w / 1000)).toFixed(1)} | ${median(times[i]!.faults)} |`);
});
if (!cache) {
  const cpu = (name: string) => median(times[modes.findIndex((m) => m.name === name)]!.cpu);
  const plain = cpu('actlab, blocks in one call');
  console.log(`cache every hook / plain forward, CPU time: ${(cpu('actlab, cache every hook, blocks in one call') / plain).toFixed(3)} fused, ${(cpu('actlab, cache every hook, blocks op by op') / plain).toFixed(3)} op by op`);
}
x.dispose();
model.dispose();
backend.dispose();
process.exit(0);
