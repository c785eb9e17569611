// What one decode step and one run-with-cache cost the WebGPU backend in host-side work, counted
// (not timed): submits, dispatches, bind groups and pipelines created, buffers created, reads and
// writes, per step of a greedy decode (argmax on the device, 4 bytes read per step) with and
// without hooks registered, and per forward / runWithCache of the usual hook points.
// Runs wherever a WebGPU adapter exists (SwiftShader included). Host time per step is printed too
// (wall clock to the end of the GPU work; on SwiftShader it mostly measures the CPU driver).
// Usage: node dist/bench/webgpu-counts.js [--model small|tiny|medium] [--steps N] [--json]
import { fileURLToPath } from 'node:url';
import '../src/backends/index.js';
import { tensor } from '../src/ops/creation.js';
import { reduce } from '../src/ops/reduce.js';
import { disposeBackends, initBackend } from '../src/tensor/engine.js';
import { randomModel } from '../src/models/random.js';
import { KVCache } from '../src/models/layers/kv-cache.js';
import { runWithCache } from '../src/hooks/run.js';
import type { CausalLM } from '../src/models/model.js';
import type { WebGpuBackend } from '../src/backends/webgpu/backend.js';

const CONFIGS: Record<string, Record<string, unknown>> = {
  tiny: { model_type: 'gpt2', n_embd: 64, n_head: 4, n_layer: 2, n_positions: 1024, vocab_size: 1000 },
  small: { model_type: 'gpt2', n_embd: 768, n_head: 12, n_layer: 12, n_positions: 1024, vocab_size: 50257 },
  medium: { model_type: 'gpt2', n_embd: 1024, n_head: 16, n_layer: 24, n_positions: 1024, vocab_size: 50257 },
};

/** The hook points the model benchmark caches (bench/webgpu-model.ts). */
export const CACHE_NAMES = /^blocks\.\d+\.(hook_resid_(pre|mid|post)|attn\.hook_(q|k|v|pattern|z)|hook_attn_out|mlp\.hook_(pre|post)|hook_mlp_out)$/;

type Stats = WebGpuBackend['rt']['stats'];
const KEYS = ['submits', 'dispatches', 'bindGroups', 'pipelines', 'buffersCreated', 'reads', 'writes'] as const;
/** Per call: the counters, wall ms to the end of the GPU work, and ms spent encoding on the host. */
export type Counts = Record<(typeof KEYS)[number], number> & { ms: number; encodeMs: number };

function diff(a: Stats, b: Stats, n: number, ms: number, encodeMs: number): Counts {
  const out = { ms: ms / n, encodeMs: encodeMs / n } as Counts;
  for (const k of KEYS) out[k] = (b[k] - a[k]) / n;
  return out;
}

/** Greedy decode steps after a 16-token prompt; counts averaged over the steps after `warm`. */
export async function decodeCounts(model: CausalLM, be: WebGpuBackend, steps: number, warm = 2): Promise<Counts> {
  const V = model.dims.vocabSize;
  let encode = 0;
  const next = async (logits: ReturnType<CausalLM['forward']>, h0: number) => {
    const flat = logits.reshape([-1]); // a view: it holds the logits' buffer too
    const am = reduce('argmax', flat, 0);
    flat.dispose();
    logits.dispose();
    const read = am.data();
    encode += performance.now() - h0;
    const id = (await read)[0]!;
    am.dispose();
    return id;
  };
  const cache = new KVCache();
  const p = tensor(Array.from({ length: 16 }, (_, i) => (i * 7919) % V), [1, 16], 'i32', { backend: be });
  let id = await next(model.forward(p, { cache, logits: 'last' }), performance.now());
  p.dispose();
  let s0 = { ...be.rt.stats };
  let t0 = performance.now();
  for (let s = 0; s < warm + steps; s++) {
    if (s === warm) { s0 = { ...be.rt.stats }; t0 = performance.now(); encode = 0; }
    const h0 = performance.now();
    const t = tensor([id], [1, 1], 'i32', { backend: be });
    const lg = model.forward(t, { cache, logits: 'last' });
    t.dispose();
    id = await next(lg, h0);
  }
  const out = diff(s0, be.rt.stats, steps, performance.now() - t0, encode);
  cache.dispose();
  return out;
}

/** One plain forward and one runWithCache of CACHE_NAMES at T tokens, after warm-up calls. */
export async function cacheCounts(model: CausalLM, be: WebGpuBackend, T: number, runs = 2): Promise<{ plain: Counts; cached: Counts }> {
  const V = model.dims.vocabSize;
  const x = tensor(Array.from({ length: T }, (_, i) => (i * 31) % V), [1, T], 'i32', { backend: be });
  let encode = 0;
  const plainOnce = async () => {
    const h0 = performance.now();
    model.forward(x).dispose();
    const f = be.flush();
    encode += performance.now() - h0;
    await f;
  };
  const cachedOnce = async () => {
    const h0 = performance.now();
    const r = runWithCache(model, x, { names: CACHE_NAMES });
    r.logits.dispose();
    const f = be.flush();
    encode += performance.now() - h0;
    await f;
    r.cache.dispose();
  };
  const measure = async (fn: () => Promise<void>) => {
    for (let i = 0; i < 2; i++) await fn();
    const s0 = { ...be.rt.stats };
    const t0 = performance.now();
    encode = 0;
    for (let i = 0; i < runs; i++) await fn();
    return diff(s0, be.rt.stats, runs, performance.now() - t0, encode);
  };
  const plain = await measure(plainOnce);
  const cached = await measure(cachedOnce);
  x.dispose();
  return { plain, cached };
}

export async function main(args: string[]): Promise<void> {
  const arg = (n: string, d: string) => { const i = args.indexOf(n); return i >= 0 ? args[i + 1]! : d; };
  const label = arg('--model', 'tiny');
  const steps = Number(arg('--steps', '8'));
  const T = Number(arg('--T', '32'));
  const be = (await initBackend('webgpu')) as WebGpuBackend;
  if (be.name !== 'webgpu') throw new Error('webgpu-counts: no WebGPU adapter');
  const model = randomModel(CONFIGS[label]!, be, { seed: 0, std: 0.02 });
  await be.flush();
  const rows: [string, Counts][] = [];
  rows.push(['decode step, no hooks', await decodeCounts(model, be, steps)]);
  const seen: number[] = [];
  const hooked = await model.withHooks([[/hook_resid_post$/, (t) => { seen.push(t.shape[1]!); }]], () => decodeCounts(model, be, steps));
  rows.push([`decode step, ${model.dims.nLayers} resid_post hooks`, hooked]);
  const { plain, cached } = await cacheCounts(model, be, T);
  rows.push([`forward T=${T}`, plain], [`runWithCache T=${T}`, cached]);
  model.dispose();
  disposeBackends();
  if (args.includes('--json')) {
    for (const [what, c] of rows) console.log(JSON.stringify({ bench: 'webgpu-counts', model: label, what, ...c }));
    return;
  }
  console.log(`| gpt2-${label}, per call | ms | host encode ms | ${KEYS.join(' | ')} |`);
  console.log(`|---|---:|---:|${KEYS.map(() => '---:').join('|')}|`);
  for (const [what, c] of rows) console.log(`| ${what} | ${c.ms.toFixed(2)} | ${c.encodeMs.toFixed(2)} | ${KEYS.map((k) => +c[k].toFixed(2)).join(' | ')} |`);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  main(process.argv.slice(2)).then(() => process.exit(0), (e) => { console.error(e); process.exit(1); });
}
