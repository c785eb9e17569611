// GPT-2-small and GPT-2-medium-shaped models (random weights, f32, batch 1) on the WebGPU
// backend beside PyTorch CUDA eager in the same run (bench/gpu_torch.py): prefill tokens/s with
// full logits (T=128, 512; timed to the end of the GPU work), greedy decode ms/token from a
// 128-token prompt (argmax on the device, 4 bytes read back per step, as PyTorch's .item()), and
// the same decode with a read-only hook at every block's hook_resid_post (PyTorch's row: its plain
// decode), and cache_all_ratio for the small model (runWithCache of the usual hook points / plain forward,
// the two alternating).
// Also the weight upload of a GPT-2-small checkpoint from disk (bench/webgpu-load.ts; --no-load skips
// it, --load-only runs nothing else).
// Usage: npm run bench:model -- --backend webgpu [--json] [--quick] [--no-peers] [--models small,medium] [--no-load | --load-only]
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import '../src/backends/index.js';
import { tensor } from '../src/ops/creation.js';
import { greedyToken } from '../src/models/generate.js';
import { disposeBackends, initBackend } from '../src/tensor/engine.js';
import { randomModel } from '../src/models/random.js';
import { KVCache } from '../src/models/layers/kv-cache.js';
import { runWithCache } from '../src/hooks/run.js';
import type { CausalLM } from '../src/models/model.js';
import type { Backend } from '../src/tensor/backend.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const CONFIGS: Record<string, Record<string, unknown>> = {
  'gpt2-small': { model_type: 'gpt2', n_embd: 768, n_head: 12, n_layer: 12, n_positions: 1024, vocab_size: 50257 },
  'gpt2-tiny': { model_type: 'gpt2', n_embd: 64, n_head: 4, n_layer: 2, n_positions: 1024, vocab_size: 1000 },
  'gpt2-medium': { model_type: 'gpt2', n_embd: 1024, n_head: 16, n_layer: 24, n_positions: 1024, vocab_size: 50257 },
};

export interface Row { bench: 'model'; model: string; impl: string; metric: string; T: number; value: number; ms?: number; note?: string }

export function ids(T: number, vocab: number, seed = 1): number[] {
  let x = seed;
  return Array.from({ length: T }, () => (x = (x * 1103515245 + 12345) % 2147483648) % vocab);
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/**
 * Median of `runs` timed calls after a warm-up of at least `warm` calls and 1.5 s: V8 optimizes the
 * host side (encoding ~220-440 dispatches per forward) only after several forwards; with 2
 * warm-up calls gpt2-small at T=128 was timed at 28-33 ms instead of its steady 9-10 ms.
 */
export async function timeAsync(fn: () => Promise<void>, runs: number, warm = 2): Promise<number> {
  const w0 = performance.now();
  for (let i = 0; i < 50 && (i < warm || performance.now() - w0 < 1500); i++) await fn();
  const ts: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    await fn();
    ts.push(performance.now() - t0);
  }
  return median(ts);
}

/**
 * Greedy decode of `steps` tokens after a 128-token prompt (argmax on the device, 4 bytes read per
 * step), timed from the first step: wall and host CPU ms per token (process.cpuUsage: Dawn's
 * threads included), and per token how much each of the counters `count` returns grew.
 */
export async function timeDecode(model: CausalLM, be: Backend, steps: number, count: () => number[] = () => []): Promise<{ ms: number; cpu: number; counted: number[] }> {
  const cache = new KVCache();
  const p = tensor(ids(128, model.dims.vocabSize, 7), [1, 128], 'i32', { backend: be });
  let id = await greedyToken(model.forward(p, { cache, logits: 'last' }));
  p.dispose();
  const n0 = count();
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  for (let s = 0; s < steps; s++) {
    const t = tensor([id], [1, 1], 'i32', { backend: be });
    const lg = model.forward(t, { cache, logits: 'last' });
    t.dispose();
    id = await greedyToken(lg);
  }
  const ms = (performance.now() - t0) / steps;
  const c = process.cpuUsage(c0);
  const counted = count().map((n, i) => (n - n0[i]!) / steps);
  cache.dispose();
  return { ms, cpu: (c.user + c.system) / 1e3 / steps, counted };
}

export async function benchModel(label: string, model: CausalLM, be: Backend, quick: boolean, emit: (r: Row) => void): Promise<void> {
  const V = model.dims.vocabSize;
  const impl = 'actlab-webgpu';
  for (const T of [128, 512]) {
    const x = tensor(ids(T, V), [1, T], 'i32', { backend: be });
    const ms = await timeAsync(async () => { model.forward(x).dispose(); await be.flush(); }, quick ? 3 : 7);
    x.dispose();
    emit({ bench: 'model', model: label, impl, metric: 'prefill_tok_s', T, value: T / (ms / 1e3), ms });
  }
  const steps = quick ? 16 : 64;
  const decode = async () => {
    const per: number[] = [];
    for (let r = 0; r < 4; r++) {
      const { ms } = await timeDecode(model, be, steps);
      if (r > 0) per.push(ms);
    }
    return median(per);
  };
  emit({ bench: 'model', model: label, impl, metric: 'decode_ms_per_token', T: 128, value: await decode() });
  // A monitoring hook at every block's hook_resid_post (reads, changes nothing), as an analysis
  // that watches generation registers; PyTorch's row is its plain decode.
  let seen = 0;
  const hooked = await model.withHooks([[/^blocks\.\d+\.hook_resid_post$/, () => { seen++; }]], decode);
  emit({ bench: 'model', model: label, impl, metric: 'decode_hooked_ms_per_token', T: 128, value: hooked, note: `${seen} hook calls` });
  if (label === 'gpt2-small') {
    const x = tensor(ids(128, V, 3), [1, 128], 'i32', { backend: be });
    const names = /^blocks\.\d+\.(hook_resid_(pre|mid|post)|attn\.hook_(q|k|v|pattern|z)|hook_attn_out|mlp\.hook_(pre|post)|hook_mlp_out)$/;
    const plainOnce = async () => { model.forward(x).dispose(); await be.flush(); };
    const cachedOnce = async () => { const r = runWithCache(model, x, { names }); r.logits.dispose(); await be.flush(); r.cache.dispose(); };
    // warmed like timeAsync, then plain and cached forwards alternating (one after the other they
    // had read 0.86-1.22 in three processes of one build): the ratio of the medians
    await timeAsync(plainOnce, 1);
    await timeAsync(cachedOnce, 1);
    const ps: number[] = [];
    const cs: number[] = [];
    for (let i = 0; i < (quick ? 9 : 21); i++) {
      for (const [once, into] of [[plainOnce, ps], [cachedOnce, cs]] as const) {
        const t0 = performance.now();
        await once();
        into.push(performance.now() - t0);
      }
    }
    const [plain, cached] = [median(ps), median(cs)];
    x.dispose();
    emit({ bench: 'model', model: label, impl, metric: 'cache_all_ratio', T: 128, value: cached / plain, note: `${cached.toFixed(2)} / ${plain.toFixed(2)} ms, ${ps.length} alternating pairs` });
  }
}

export async function main(args: string[]): Promise<void> {
  const json = args.includes('--json');
  const quick = args.includes('--quick');
  const mi = args.indexOf('--models');
  const models = (mi >= 0 ? args[mi + 1]! : 'small,medium').split(',').map((m) => `gpt2-${m}`);
  const rows: Row[] = [];
  const emit = (r: Row) => { rows.push(r); if (json) console.log(JSON.stringify(r)); };
  const be = await initBackend('webgpu');
  if (!json) console.log(`models on webgpu: ${JSON.stringify(be.info?.())}`);
  // imported only here: the checkpoint reader pulls in the GGUF package, which packed GPU runs lack
  if (!args.includes('--no-load')) await (await import('./webgpu-load.js')).benchLoad(be, root, emit, { peers: !args.includes('--no-peers') });
  for (const label of args.includes('--load-only') ? [] : models) {
    const t0 = performance.now();
    const model = randomModel(CONFIGS[label]!, be, { seed: 0, std: 0.02 });
    await be.flush();
    if (!json) console.log(`${label}: weights made and uploaded in ${((performance.now() - t0) / 1e3).toFixed(1)} s`);
    await benchModel(label, model, be, quick, emit);
    model.dispose();
    await be.flush();
  }
  disposeBackends();
  if (!args.includes('--no-peers') && !args.includes('--load-only')) {
    const py = spawnSync('python3', [join(root, 'bench', 'gpu_torch.py'), 'model', ...(quick ? ['--quick'] : [])], { encoding: 'utf8', maxBuffer: 1 << 24 });
    if (py.status === 0) for (const line of py.stdout.trim().split('\n')) emit(JSON.parse(line));
    else console.error(`PyTorch peer skipped: ${(py.stderr || py.error?.message || '').trim().split('\n').pop()}`);
  }
  if (json) return;
  console.log('\n| model | metric | T | actlab-webgpu | PyTorch CUDA eager | ratio (≥ 1 is faster) |');
  console.log('|---|---|---|---:|---:|---:|');
  for (const r of rows.filter((x) => x.impl === 'actlab-webgpu' && x.metric !== 'load_s')) {
    const peerMetric = r.metric === 'decode_hooked_ms_per_token' ? 'decode_ms_per_token' : r.metric;
    const pt = rows.find((x) => x.impl.startsWith('pytorch') && x.model === r.model && x.metric === peerMetric && x.T === r.T);
    const fmt = (v: number) => (r.metric === 'prefill_tok_s' ? v.toFixed(0) : v.toFixed(r.metric === 'cache_all_ratio' ? 3 : 2));
    const ratio = !pt ? '-' : r.metric.startsWith('decode') ? (pt.value / r.value).toFixed(2) + '×' : r.metric === 'prefill_tok_s' ? (r.value / pt.value).toFixed(2) + '×' : '-';
    console.log(`| ${r.model} | ${r.metric} | ${r.T} | ${fmt(r.value)} | ${pt ? fmt(pt.value) : '-'} | ${ratio} |`);
  }
  for (const r of rows.filter((x) => x.metric === 'load_s')) console.log(`weight upload, ${r.model}: ${r.impl} ${r.value.toFixed(2)} s (${r.note})`);
  const pt = rows.find((r) => r.impl.startsWith('pytorch'));
  console.log(`(prefill in tokens/s with full logits, decode in ms/token; PyTorch: ${pt?.impl ?? 'not run'})`);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  main(process.argv.slice(2)).then(() => process.exit(0), (e) => { console.error(e); process.exit(1); });
}
