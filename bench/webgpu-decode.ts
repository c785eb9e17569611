// GPT-2 decode on WebGPU with the decode fusions on and off, interleaved in one process: each
// round runs every variant once (A B C A B C ...), so a host whose speed drifts slows all alike.
// Variants: 'separate' (residual add, then the norm: two dispatches), 'addNorm' (one op; the
// default), 'addNorm, unsplit GEMV' (every linear layer one dispatch, bias and activation in the
// GEMV). Each is timed plain and with a read-only hook at every block's hook_resid_post; per
// variant: median ms/token over the rounds, host CPU ms/token (process.cpuUsage), dispatches and
// submits per token (counted). Greedy steps after a 128-token prompt, argmax on the device, 4
// bytes read per step (as bench/webgpu-model.ts). PyTorch's decode: bench/webgpu-model.ts's peer.
// Usage: node dist/bench/webgpu-decode.js [--model small|medium|tiny] [--steps 32] [--rounds 5] [--json]
import { fileURLToPath } from 'node:url';
import '../src/backends/index.js';
import { tensor } from '../src/ops/creation.js';
import { greedyToken } from '../src/models/generate.js';
import { disposeBackends, initBackend } from '../src/tensor/engine.js';
import { randomModel } from '../src/models/random.js';
import { KVCache } from '../src/models/layers/kv-cache.js';
import type { CausalLM } from '../src/models/model.js';
import type { WebGpuBackend } from '../src/backends/webgpu/backend.js';
import { setGemvSplit } from '../src/backends/webgpu/kernels/matmul-gemv.js';
import { CONFIGS, ids } from './webgpu-model.js';

interface Variant { name: string; addNorm: boolean; split: 'auto' | 'off' }
const VARIANTS: Variant[] = [
  { name: 'separate add and norm', addNorm: false, split: 'auto' },
  { name: 'addNorm', addNorm: true, split: 'auto' },
  { name: 'addNorm, unsplit GEMV', addNorm: true, split: 'off' },
];

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/** One timed run of `steps` greedy steps: wall ms/token, CPU ms/token, dispatches and submits per token. */
async function run(model: CausalLM, be: WebGpuBackend, steps: number): Promise<{ ms: number; cpu: number; dispatches: number; submits: number }> {
  const V = model.dims.vocabSize;
  const cache = new KVCache();
  const p = tensor(ids(128, V, 7), [1, 128], 'i32', { backend: be });
  let id = await greedyToken(model.forward(p, { cache, logits: 'last' }));
  p.dispose();
  const d0 = be.rt.stats.dispatches;
  const s0 = be.rt.stats.submits;
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
  cache.dispose();
  return { ms, cpu: (c.user + c.system) / 1e3 / steps, dispatches: (be.rt.stats.dispatches - d0) / steps, submits: (be.rt.stats.submits - s0) / steps };
}

export async function main(args: string[]): Promise<void> {
  const arg = (n: string, d: string) => { const i = args.indexOf(n); return i >= 0 ? args[i + 1]! : d; };
  const label = `gpt2-${arg('--model', 'small')}`;
  const steps = Number(arg('--steps', '32'));
  const rounds = Number(arg('--rounds', '5'));
  const be = (await initBackend('webgpu')) as WebGpuBackend;
  if (be.name !== 'webgpu') throw new Error('webgpu-decode: no WebGPU adapter');
  const model = randomModel(CONFIGS[label]!, be, { seed: 0, std: 0.02 });
  await be.flush();
  const hooks: [RegExp, () => void][] = [[/^blocks\.\d+\.hook_resid_post$/, () => {}]];
  type R = Awaited<ReturnType<typeof run>>;
  const res = new Map<string, R[]>();
  const setVariant = (v: Variant) => { be.prefersFusedAddNorm = v.addNorm; setGemvSplit(v.split); };
  // warm-up: V8 optimizes the host side only after several steps of each path
  for (const v of VARIANTS) { setVariant(v); await run(model, be, steps); await model.withHooks(hooks, () => run(model, be, steps)); }
  for (let r = 0; r < rounds; r++) {
    for (const v of VARIANTS) {
      setVariant(v);
      for (const hooked of [false, true]) {
        const key = `${v.name}${hooked ? ', hooked' : ''}`;
        const x = hooked ? await model.withHooks(hooks, () => run(model, be, steps)) : await run(model, be, steps);
        res.set(key, [...(res.get(key) ?? []), x]);
      }
    }
  }
  setVariant(VARIANTS[1]!);
  model.dispose();
  disposeBackends();
  const rows = [...res].map(([what, xs]) => ({
    what, ms: median(xs.map((x) => x.ms)), cpu: median(xs.map((x) => x.cpu)), dispatches: xs[0]!.dispatches, submits: xs[0]!.submits,
  }));
  if (args.includes('--json')) {
    for (const r of rows) console.log(JSON.stringify({ bench: 'webgpu-decode', model: label, ...r }));
    return;
  }
  console.log(`${label} decode, ${rounds} interleaved rounds of ${steps} steps (median)`);
  console.log('| variant | ms/token | host CPU ms/token | dispatches/token | submits/token |');
  console.log('|---|---:|---:|---:|---:|');
  for (const r of rows) console.log(`| ${r.what} | ${r.ms.toFixed(3)} | ${r.cpu.toFixed(3)} | ${r.dispatches.toFixed(1)} | ${r.submits.toFixed(2)} |`);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  main(process.argv.slice(2)).then(() => process.exit(0), (e) => { console.error(e); process.exit(1); });
}
