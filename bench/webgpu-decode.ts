// GPT-2 decode on WebGPU with the decode fusions on and off, interleaved in one process: each
// round runs every variant once (A B C A B C ...), so a host whose speed drifts slows all alike.
// Variants: 'separate' (residual add, then the norm: two dispatches), 'addNorm' (one op; the
// default; the GEMV split by weight size), 'addNorm, K-split GEMV' (K split wherever workgroups
// are few: the default before), 'addNorm, unsplit GEMV' (every linear layer one dispatch, bias and
// activation in the GEMV). Each is timed plain and with a read-only hook at every block's hook_resid_post; per
// variant: median ms/token over the rounds, host CPU ms/token (process.cpuUsage), dispatches and
// submits per token (counted). Greedy steps after a 128-token prompt, argmax on the device, 4
// bytes read per step (as bench/webgpu-model.ts). PyTorch's decode: bench/webgpu-model.ts's peer.
// --batches 96,32 crosses the variants with dispatches per submit (ACTLAB_WEBGPU_BATCH's setting).
// Usage: node dist/bench/webgpu-decode.js [--model small|medium|tiny] [--steps 32] [--rounds 5] [--batches N,M] [--json]
import { fileURLToPath } from 'node:url';
import '../src/backends/index.js';
import { disposeBackends, initBackend } from '../src/tensor/engine.js';
import { randomModel } from '../src/models/random.js';
import type { CausalLM } from '../src/models/model.js';
import type { WebGpuBackend } from '../src/backends/webgpu/backend.js';
import { setGemvSplit, type GemvSplit } from '../src/backends/webgpu/kernels/matmul-gemv.js';
import { CONFIGS, timeDecode } from './webgpu-model.js';

interface Variant { name: string; addNorm: boolean; split: GemvSplit; batch?: number }
const VARIANTS: Variant[] = [
  { name: 'separate add and norm', addNorm: false, split: 'shape' },
  { name: 'addNorm', addNorm: true, split: 'shape' },
  { name: 'addNorm, K-split GEMV', addNorm: true, split: 'auto' },
  { name: 'addNorm, unsplit GEMV', addNorm: true, split: 'off' },
];

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/** One timed run of `steps` greedy steps: wall ms/token, CPU ms/token, dispatches and submits per token. */
async function run(model: CausalLM, be: WebGpuBackend, steps: number): Promise<{ ms: number; cpu: number; dispatches: number; submits: number }> {
  const { ms, cpu, counted: [dispatches, submits] } = await timeDecode(model, be, steps, () => [be.rt.stats.dispatches, be.rt.stats.submits]);
  return { ms, cpu, dispatches: dispatches!, submits: submits! };
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
  const batch0 = be.rt.batchDispatches;
  const batches = arg('--batches', '').split(',').filter(Boolean).map(Number);
  const variants = batches.length ? VARIANTS.flatMap((v) => batches.map((b) => ({ ...v, name: `${v.name}, ${b} dispatches per submit`, batch: b }))) : VARIANTS;
  const hooks: [RegExp, () => void][] = [[/^blocks\.\d+\.hook_resid_post$/, () => {}]];
  type R = Awaited<ReturnType<typeof run>>;
  const res = new Map<string, R[]>();
  const setVariant = (v: Variant) => { be.prefersFusedAddNorm = v.addNorm; setGemvSplit(v.split); be.rt.batchDispatches = v.batch ?? batch0; };
  // warm-up: V8 optimizes the host side only after several steps of each path
  for (const v of variants) { setVariant(v); await run(model, be, steps); await model.withHooks(hooks, () => run(model, be, steps)); }
  for (let r = 0; r < rounds; r++) {
    for (const v of variants) {
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
