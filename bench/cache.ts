// Benchmark: `actlab cache` (the harvest behind it: src/store/writer.ts) in tokens/s over
// wikitext-2 with a GPT-2-small-shaped model (random weights, the GPT-2 tokenizer of
// ../shared/fixtures/hf/gpt2), beside bench/cache_torch.py (a TransformerLens-style caching loop in
// PyTorch over the same contexts, same hooks, same batch) in the same run, with each process's
// peak resident memory. actlab runs with its native GEMM and on wasm SIMD alone; the three run
// in turn for `--rounds` rounds, each in its own process; medians over rounds.
// Both stop after the last block a hook needs, and both write every activation to disk as f32.
// Usage: npm run bench:cache [-- --tokens 8192] [--rounds 3] [--hooks 'blocks.*.hook_resid_post'] [--json]
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import '../src/backends/index.js';
import { disposeBackends, initBackend } from '../src/tensor/engine.js';
import { randomModel } from '../src/models/random.js';
import { loadTokenizer } from '../src/tokenizer/load.js';
import { matchHookPatterns } from '../src/hooks/patterns.js';
import { harvest } from '../src/store/writer.js';
import { ActivationStore } from '../src/store/reader.js';
import { reportTorchBlas } from './torch-blas.js';

const args = process.argv.slice(2);
const flag = (n: string) => args.includes(`--${n}`);
const opt = (n: string, d: string) => { const i = args.indexOf(`--${n}`); return i >= 0 ? args[i + 1]! : d; };
const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const shared = join(root, '..', 'shared');
const corpus = opt('corpus', join(shared, 'data', 'wikitext-2', 'test.txt'));
const tokenizerDir = join(shared, 'fixtures', 'hf', 'gpt2');
const tokens = Number(opt('tokens', '8192'));
const context = Number(opt('context', '128'));
const batch = Number(opt('batch', '8'));
const hookPattern = opt('hooks', 'blocks.*.hook_resid_post');
const rounds = Number(opt('rounds', '3'));
const GPT2_SMALL = { model_type: 'gpt2', n_embd: 768, n_head: 12, n_layer: 12, n_positions: 1024, vocab_size: 50257 };

interface Result { impl: string; tok_s: number; peak_rss_mb: number | null; note?: string }

/** One actlab harvest in this process: a warm-up harvest of two batches, then the timed one. */
async function child(): Promise<void> {
  const backend = await initBackend('wasm');
  const model = randomModel(GPT2_SMALL, backend, { seed: 0, std: 0.02 });
  const tokenizer = await loadTokenizer(tokenizerDir);
  const hooks = matchHookPatterns(hookPattern, model.hookPoints().map((h) => h.name));
  const dir = mkdtempSync(join(tmpdir(), 'actlab-cache-bench-'));
  try {
    const common = { model, tokenizer, corpus, hooks, context, batchSize: batch, bos: false };
    await harvest({ ...common, outDir: join(dir, 'warm'), maxTokens: 2 * batch * context });
    // timed from the first batch's end to the end, as the CLI's tokens/s (hashing excluded)
    let t0 = 0;
    let first = 0;
    let last = { t: 0, contexts: 0 };
    await harvest({
      ...common, outDir: join(dir, 'store'), maxTokens: tokens,
      onProgress: (p) => {
        if (p.phase !== 'harvest' && p.phase !== 'done') return;
        const now = performance.now();
        if (!t0) { t0 = now; first = p.contexts; }
        last = { t: now, contexts: p.contexts };
      },
    });
    const tokS = ((last.contexts - first) * context) / ((last.t - t0) / 1000);
    const out = opt('tokens-out', '');
    if (out) { // the contexts cached, for the PyTorch peer
      const store = await ActivationStore.open(join(dir, 'store'));
      const parts: Uint8Array[] = [];
      for (let i = 0; i < store.manifest.shards.length; i++) parts.push(await store.readShard(i, 'tokens'));
      writeFileSync(out, Buffer.concat(parts));
    }
    console.log(JSON.stringify({ tok_s: Math.round(tokS * 10) / 10, hooks: hooks.length, gemm: String(backend.info?.().nativeGemm ?? '') }));
  } finally {
    rmSync(dir, { recursive: true, force: true });
    model.dispose();
    disposeBackends();
  }
}

function timed(cmd: string, argv: string[], env: NodeJS.ProcessEnv): { stdout: string; stderr: string; status: number | null; rssMb: number | null } {
  const dir = mkdtempSync(join(tmpdir(), 'actlab-bench-'));
  const file = join(dir, 'rss');
  try {
    const gnuTime = existsSync('/usr/bin/time');
    const r = gnuTime
      ? spawnSync('/usr/bin/time', ['-f', '%M', '-o', file, cmd, ...argv], { env, encoding: 'utf8', maxBuffer: 1 << 24 })
      : spawnSync(cmd, argv, { env, encoding: 'utf8', maxBuffer: 1 << 24 });
    const kb = gnuTime && existsSync(file) ? Number(readFileSync(file, 'utf8').trim().split('\n').pop()) : NaN;
    return { stdout: r.stdout, stderr: r.stderr, status: r.status, rssMb: Number.isFinite(kb) ? Math.round(kb / 1024) : null };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function python(): string | null {
  for (const py of ['/usr/bin/python3', 'python3']) if (spawnSync(py, ['-c', 'import torch, numpy'], { stdio: 'ignore' }).status === 0) return py;
  return null;
}

const median = (xs: number[]) => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)]!; };

async function main(): Promise<void> {
  if (!existsSync(corpus) || !existsSync(tokenizerDir)) throw new Error(`bench:cache needs ${corpus} and ${tokenizerDir} (../shared)`);
  const work = mkdtempSync(join(tmpdir(), 'actlab-cache-peer-'));
  const tokFile = join(work, 'tokens.i32');
  const py = python();
  if (!py) console.error('PyTorch skipped: no python3 with torch and numpy (apt-get install python3-torch)');
  const blas = py ? reportTorchBlas(py) : null;
  const results: Result[][] = [];
  try {
    for (let r = 0; r < rounds; r++) {
      const got: Result[] = [];
      for (const wasmOnly of [false, true]) {
        const env = { ...process.env, ...(wasmOnly ? { ACTLAB_NATIVE_GEMM: '0' } : {}) };
        const argv = [fileURLToPath(import.meta.url), '--child', ...args, ...(r === 0 && !wasmOnly ? ['--tokens-out', tokFile] : [])];
        const c = timed(process.execPath, argv, env);
        if (c.status !== 0) throw new Error(`actlab cache child failed:\n${c.stderr}`);
        const j = JSON.parse(c.stdout.trim().split('\n').pop()!) as { tok_s: number; gemm: string };
        got.push({ impl: wasmOnly ? 'actlab cache (wasm GEMM only)' : 'actlab cache', tok_s: j.tok_s, peak_rss_mb: c.rssMb, note: j.gemm });
      }
      if (py) {
        const out = join(work, 'torch-out');
        const env = { ...process.env, OMP_WAIT_POLICY: 'passive', OMP_NUM_THREADS: String(cpus().length) };
        const c = timed(py, [join(root, 'bench', 'cache_torch.py'), '--tokens', tokFile, '--context', String(context), '--hooks', hookPattern, '--batch', String(batch), '--out', out, '--threads', String(cpus().length)], env);
        rmSync(out, { recursive: true, force: true });
        if (c.status !== 0) throw new Error(`cache_torch.py failed:\n${c.stderr}`);
        const j = JSON.parse(c.stdout.trim().split('\n').pop()!) as { tok_s: number; torch: string };
        got.push({ impl: `pytorch ${j.torch} TransformerLens-style loop`, tok_s: j.tok_s, peak_rss_mb: c.rssMb, note: blas ? `BLAS: ${blas}` : undefined });
      }
      results.push(got);
      if (!flag('json')) console.error(`round ${r + 1}/${rounds}: ${got.map((g) => `${g.impl} ${g.tok_s} tok/s`).join(', ')}`);
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  const impls = results[0]!.map((g) => g.impl);
  const rows = impls.map((impl) => {
    const xs = results.map((rs) => rs.find((g) => g.impl === impl)!);
    return { impl, tok_s: median(xs.map((x) => x.tok_s)), all: xs.map((x) => x.tok_s), peak_rss_mb: median(xs.map((x) => x.peak_rss_mb ?? NaN)), note: xs[0]!.note };
  });
  if (flag('json')) {
    for (const r of rows) console.log(JSON.stringify({ bench: 'cache', impl: r.impl, metric: 'tok_s', value: r.tok_s, range: [Math.min(...r.all), Math.max(...r.all)], peak_rss_mb: r.peak_rss_mb, rounds }));
    return;
  }
  console.log(`Caching ${hookPattern} over ${tokens} tokens of wikitext-2 (contexts of ${context}, batch ${batch}), GPT-2 small shape, f32, ${cpus().length} threads; median of ${rounds} rounds`);
  console.log('| impl | tokens/s | rounds | peak RSS, MB | detail |\n|---|---:|---|---:|---|');
  for (const r of rows) console.log(`| ${r.impl} | ${r.tok_s} | ${r.all.join(' / ')} | ${r.peak_rss_mb} | ${r.note ?? ''} |`);
  const me = rows.find((r) => r.impl === 'actlab cache');
  const pt = rows.find((r) => r.impl.startsWith('pytorch'));
  if (me && pt) console.log(`actlab cache: ${(me.tok_s / pt.tok_s).toFixed(2)}x the PyTorch loop`);
}

if (flag('child')) await child();
else await main();
