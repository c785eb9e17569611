// Benchmark: a GPT-2-small-shaped model (random weights) on an actlab backend, side by side in
// the same run with PyTorch CPU and ONNX Runtime (the scripts of ../shared/anchors, when that
// folder and the peers are installed). Metrics: prefill tokens/s with full logits (T=128, 512),
// decode ms/token from a 128-token prompt, and cache_all_ratio (run-with-cache of resid pre/mid/
// post, q/k/v, pattern, z, attn_out, mlp pre/post, mlp_out for every layer at T=128, divided by
// the plain forward) and each process's peak resident memory.
// Each implementation runs in its own process, and the set runs `--rounds` times in turn (actlab
// with its native GEMM, actlab on wasm SIMD alone, PyTorch, ONNX Runtime), so that load from other
// work hits all alike; the table gives the median over rounds and the range.
// Usage: npm run bench:model [-- --backend wasm|js] [--json] [--runs N] [--rounds R] [--no-peers] [--quick]
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import '../src/backends/index.js';
import { tensor } from '../src/ops/creation.js';
import { disposeBackends, initBackend } from '../src/tensor/engine.js';
import { randomModel } from '../src/models/random.js';
import { KVCache } from '../src/models/layers/kv-cache.js';
import { CACHE_ALL_NAMES } from './cache-all-names.js';
import { runWithCache } from '../src/hooks/run.js';
import { greedyTokenSync } from '../src/models/generate.js';
import type { CausalLM } from '../src/models/model.js';
import { reportTorchBlas } from './torch-blas.js';

const args = process.argv.slice(2);
const flag = (n: string) => args.includes(`--${n}`);
const opt = (n: string, d: string) => { const i = args.indexOf(`--${n}`); return i >= 0 ? args[i + 1]! : d; };
const backendName = opt('backend', 'wasm');
if (backendName === 'webgpu') { await (await import('./webgpu-model.js')).main(args); process.exit(0); } // beside PyTorch CUDA
const runs = Number(opt('runs', flag('quick') ? '3' : '7'));
const warmup = 2;
const json = flag('json');
const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const anchors = join(root, '..', 'shared', 'anchors');

const GPT2_SMALL = { model_type: 'gpt2', n_embd: 768, n_head: 12, n_layer: 12, n_positions: 1024, vocab_size: 50257 };

interface Row { impl: string; metric: string; T: number | null; value: number; note?: string; range?: [number, number] }
const rows: Row[] = [];

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

function time(fn: () => void, n = runs): number {
  for (let i = 0; i < warmup; i++) fn();
  const ts: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    fn();
    ts.push(performance.now() - t0);
  }
  return median(ts);
}

function ids(T: number, vocab: number, seed = 1): number[] {
  let x = seed;
  return Array.from({ length: T }, () => (x = (x * 1103515245 + 12345) % 2147483648) % vocab);
}

function benchActlab(model: CausalLM, impl: string): void {
  const V = model.dims.vocabSize;
  const b = model.backend;
  for (const T of flag('quick') ? [128] : [128, 512]) {
    const x = tensor(ids(T, V), [1, T], 'i32', { backend: b });
    const ms = time(() => model.forward(x).dispose(), T > 128 ? Math.max(3, Math.ceil(runs / 2)) : runs);
    x.dispose();
    rows.push({ impl, metric: 'prefill_tok_s', T, value: round(T / (ms / 1000)), note: `${ms.toFixed(1)} ms` });
  }
  // Decode: 128-token prompt into the KV cache, then 64 greedy steps; 5 timed runs after the
  // warm-up, as ../shared/anchors/gpt2_torch.py times PyTorch's decode.
  // The next token by argmax on the backend, 4 bytes read back (PyTorch's loop: argmax, .item()).
  const prompt = ids(128, V, 7);
  const steps = flag('quick') ? 16 : 64;
  const perToken: number[] = [];
  for (let r = 0; r < warmup + (flag('quick') ? 3 : 5); r++) {
    const cache = new KVCache();
    const p = tensor(prompt, [1, 128], 'i32', { backend: b });
    let next = greedyTokenSync(model.forward(p, { cache, logits: 'last' }));
    p.dispose();
    const t0 = performance.now();
    for (let s = 0; s < steps; s++) {
      const t = tensor([next], [1, 1], 'i32', { backend: b });
      next = greedyTokenSync(model.forward(t, { cache, logits: 'last' }));
      t.dispose();
    }
    if (r >= warmup) perToken.push((performance.now() - t0) / steps);
    cache.dispose();
  }
  rows.push({ impl, metric: 'decode_ms_per_token', T: 128, value: round(median(perToken), 2) });
  // cache_all_ratio at T=128, timed back to back with the plain forward.
  const x = tensor(ids(128, V, 3), [1, 128], 'i32', { backend: b });
  const names = CACHE_ALL_NAMES;
  const plain = time(() => model.forward(x).dispose());
  const cached = time(() => { const r = runWithCache(model, x, { names }); r.logits.dispose(); r.cache.dispose(); });
  x.dispose();
  rows.push({ impl, metric: 'cache_all_ratio', T: 128, value: round(cached / plain, 3), note: `${cached.toFixed(1)} / ${plain.toFixed(1)} ms` });
}

function round(x: number, d = 1): number {
  const p = 10 ** d;
  return Math.round(x * p) / p;
}

function python(): string | null {
  for (const py of ['/usr/bin/python3', 'python3']) {
    const r = spawnSync(py, ['-c', 'import torch'], { stdio: 'ignore' });
    if (r.status === 0) return py;
  }
  return null;
}

function benchPeers(): void {
  if (flag('no-peers')) return;
  if (!existsSync(join(anchors, 'gpt2_torch.py'))) {
    console.error(`peers skipped: ${anchors} not found`);
    return;
  }
  const py = python();
  if (!py) {
    console.error('PyTorch skipped: no python3 with torch (apt-get install python3-torch)');
  } else {
    const env = { ...process.env, OMP_WAIT_POLICY: 'passive', OMP_NUM_THREADS: String(cpus().length) };
    const blas = reportTorchBlas(py);
    const { stdout: out, rssMb } = measured(py, [join(anchors, 'gpt2_torch.py'), '--runs', String(runs)], env);
    const j = JSON.parse(out.trim().split('\n').pop()!);
    const impl = `pytorch ${j.torch} (passive${blas ? `; ${blas}` : ''})`;
    if (rssMb) rows.push({ impl, metric: 'peak_rss_mb', T: null, value: rssMb });
    for (const T of [128, 512]) if (j[`prefill_T${T}_tok_s`]) rows.push({ impl, metric: 'prefill_tok_s', T, value: j[`prefill_T${T}_tok_s`], note: `${j[`prefill_T${T}_ms`]} ms` });
    rows.push({ impl, metric: 'decode_ms_per_token', T: 128, value: j.decode_ms_per_tok });
    rows.push({ impl, metric: 'cache_all_ratio', T: 128, value: j.cache_T128_ratio, note: `${j.cache_T128_ms} / ${j.cache_T128_plain_ms} ms` });
    // ONNX Runtime on the same graph, exported once by the PyTorch script.
    const cache = join(root, 'bench', '.cache');
    const onnx = join(cache, 'gpt2s.onnx');
    if (!existsSync(onnx)) {
      mkdirSync(cache, { recursive: true });
      execFileSync(py, [join(anchors, 'gpt2_torch.py'), '--export-onnx', onnx], { stdio: 'ignore' });
    }
    const ort = measured(process.execPath, [join(anchors, 'gpt2_ort.mjs'), onnx], { ...process.env, NODE_PATH: join(root, 'node_modules') });
    if (ort.status === 0) {
      const o = JSON.parse(ort.stdout.trim().split('\n').pop()!);
      if (ort.rssMb) rows.push({ impl: `onnxruntime-node ${o.ort}`, metric: 'peak_rss_mb', T: null, value: ort.rssMb });
      for (const T of [128, 512]) if (o[`prefill_T${T}_tok_s`]) rows.push({ impl: `onnxruntime-node ${o.ort}`, metric: 'prefill_tok_s', T, value: o[`prefill_T${T}_tok_s`], note: `${o[`prefill_T${T}_ms`]} ms` });
    } else {
      console.error(`ONNX Runtime skipped: ${ort.stderr.split('\n')[0]}`);
    }
  }
}

/** Runs a command under GNU time for its peak resident memory (MB; null where /usr/bin/time is missing). */
function measured(cmd: string, argv: string[], env: NodeJS.ProcessEnv): { stdout: string; stderr: string; status: number | null; rssMb: number | null } {
  const timeBin = '/usr/bin/time';
  if (!existsSync(timeBin)) {
    const r = spawnSync(cmd, argv, { env, encoding: 'utf8', maxBuffer: 1 << 26 });
    return { stdout: r.stdout, stderr: r.stderr, status: r.status, rssMb: null };
  }
  const dir = mkdtempSync(join(tmpdir(), 'actlab-bench-'));
  const file = join(dir, 'rss');
  try {
    const r = spawnSync(timeBin, ['-f', '%M', '-o', file, cmd, ...argv], { env, encoding: 'utf8', maxBuffer: 1 << 26 });
    const kb = existsSync(file) ? Number(readFileSync(file, 'utf8').trim().split('\n').pop()) : NaN;
    return { stdout: r.stdout, stderr: r.stderr, status: r.status, rssMb: Number.isFinite(kb) ? round(kb / 1024, 0) : null };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** One actlab process (this script with --child): its rows and peak memory. */
function benchActlabChild(wasmOnly: boolean): void {
  const argv = [fileURLToPath(import.meta.url), '--child', '--backend', backendName, '--runs', String(runs), ...(flag('quick') ? ['--quick'] : [])];
  const env = { ...process.env, ...(wasmOnly ? { ACTLAB_NATIVE_GEMM: '0' } : {}) };
  const r = measured(process.execPath, argv, env);
  if (r.status !== 0) throw new Error(`actlab child failed: ${r.stderr}`);
  const got = r.stdout.trim().split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Row & { gemm?: string });
  const impl = wasmOnly ? `actlab-${backendName} (wasm GEMM only)` : `actlab-${backendName}`;
  for (const g of got) rows.push({ ...g, impl });
  if (r.rssMb) rows.push({ impl, metric: 'peak_rss_mb', T: null, value: r.rssMb });
}

if (flag('child')) {
  const backend = await initBackend(backendName);
  const model = randomModel(GPT2_SMALL, backend, { seed: 0, std: 0.02 });
  benchActlab(model, `actlab-${backendName}`);
  const info = backend.info?.() ?? {};
  console.error(`actlab child: ${JSON.stringify(info)}`);
  // the native GEMM's share of the resident memory: its packed weights and host staging
  if (typeof info.nativeGemmPackedMB === 'number') {
    rows.push({ impl: '', metric: 'native_gemm_held_mb', T: null, value: info.nativeGemmPackedMB + Number(info.nativeGemmStagingMB ?? 0), note: `${info.nativeGemmPackedMB} MB packed weights + ${info.nativeGemmStagingMB} MB staging; ${info.nativeGemmNote ?? ''}` });
  }
  rows.push({ impl: '', metric: 'wasm_memory_mb', T: null, value: round(Number(info.memoryBytes ?? 0) / 2 ** 20, 0) });
  model.dispose();
  disposeBackends();
  for (const r of rows) console.log(JSON.stringify(r));
  process.exit(0);
}

const rounds = Number(opt('rounds', flag('quick') ? '1' : '3'));
const perRound: Row[][] = [];
for (let round = 0; round < rounds; round++) {
  rows.length = 0;
  benchActlabChild(false);
  if (backendName === 'wasm' && !flag('no-wasm-only')) benchActlabChild(true);
  benchPeers();
  perRound.push([...rows]);
  // each round's figures on stderr as they come, so that a long run interrupted keeps what it measured
  console.error(`round ${round + 1}/${rounds}: ${JSON.stringify(rows.map((r) => ({ impl: r.impl, metric: r.metric, T: r.T, value: r.value })))}`);
}
// the median over rounds of each (impl, metric, T), with the range
rows.length = 0;
for (const r of perRound[0]!) {
  const vals = perRound.map((rs) => rs.find((x) => x.impl === r.impl && x.metric === r.metric && x.T === r.T)?.value).filter((v): v is number => v !== undefined);
  rows.push({ ...r, value: median(vals), range: [Math.min(...vals), Math.max(...vals)], note: rounds > 1 ? `${rounds} rounds: ${vals.join(' / ')}` : r.note });
}

if (json) {
  for (const r of rows) console.log(JSON.stringify({ bench: 'model', impl: r.impl, metric: r.metric, T: r.T, value: r.value, range: r.range, rounds }));
} else {
  console.log(`GPT-2 small shape (124M params, random weights), batch 1, f32, ${cpus().length} threads; median of ${runs} runs in each of ${rounds} rounds, median over rounds`);
  console.log('| impl | metric | T | value | detail |\n|---|---|---|---|---|');
  for (const r of rows) console.log(`| ${r.impl} | ${r.metric} | ${r.T ?? ''} | ${r.value} | ${r.note ?? ''} |`);
  const impl = `actlab-${backendName}`;
  const get = (i: string, m: string, T: number) => rows.find((r) => (r.impl === i || (i !== impl && r.impl.startsWith(i))) && r.metric === m && r.T === T)?.value;
  for (const T of [128, 512]) {
    const me = get(impl, 'prefill_tok_s', T);
    const py = get('pytorch', 'prefill_tok_s', T);
    const ort = get('onnxruntime-node', 'prefill_tok_s', T);
    if (me && py) console.log(`prefill T=${T}: ${(me / py).toFixed(2)}x PyTorch${ort ? `, ${(me / ort).toFixed(2)}x ONNX Runtime` : ''}`);
  }
  const pyDec = get('pytorch', 'decode_ms_per_token', 128);
  const meDec = get(impl, 'decode_ms_per_token', 128);
  if (pyDec && meDec) console.log(`decode: ${(pyDec / meDec).toFixed(2)}x faster than PyTorch`);
}
