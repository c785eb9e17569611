// nanoGPT's shakespeare-char run, trained by actlab: a GPT-2-layout character model (6 layers,
// 6 heads, 384 wide, context 256, vocabulary of the 65 characters of tinyshakespeare) trained from
// nanoGPT's initialisation with dropout 0.2, batch 64, AdamW (lr 1e-3, betas 0.9/0.99, weight
// decay 0.1 on matrices and embeddings), warmup 100 + cosine to 1e-4 over 5000 steps and global
// gradient clipping at 1.0 (config/train_shakespeare_char.py). Data: nanoGPT's prepare.py — the
// vocabulary is the sorted set of characters, the first 90% of the text trains, the last 10%
// validates. Dropout is applied where nanoGPT applies it, through hooks: the embedding sum
// (blocks.0.hook_resid_pre), the attention pattern, and each attention and MLP output.
// The run is split into chunks of `--eval-every` steps, each resumed from the previous
// checkpoint; after each chunk the validation loss over all non-overlapping context-length
// windows of the validation text is logged (nanoGPT samples 200 random batches instead).
// Usage: node dist/bench/shakespeare-char.js --data DIR(with input.txt) --out DIR [--backend webgpu]
//   [--steps 5000] [--until N] [--budget-s S] [--eval-every 250] [--dropout 0.2] [--seed 1337]
//   [--time-steps N: only time N steps (no checkpoints) and print ms/step, and WebGPU's dispatches etc. per step]
//   [--profile: with --time-steps on WebGPU, the GPU time of one step by kernel, from timestamps around each dispatch]
//   [--batch 64] [--val-batches N] (smaller: smoke tests)
//   [--layers 6] [--heads 6] [--d-model 384] [--d-ff 4·d_model] [--context 256] [--lr 1e-3] [--min-lr 1e-4] [--warmup 100]
//   (other sizes of the same recipe: models/shakespeare-char-256 is --layers 4 --heads 4 --d-model 256 --context 128)
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import '../src/backends/index.js';
import { noGrad } from '../src/autograd/tape.js';
import { randn, tensor, zeros } from '../src/ops/creation.js';
import { dropout } from '../src/ops/random.js';
import { disposeBackends, initBackend, tidy } from '../src/tensor/engine.js';
import type { Backend } from '../src/tensor/backend.js';
import type { WebGpuBackend } from '../src/backends/webgpu/backend.js';
import type { Tensor } from '../src/tensor/tensor.js';
import { Gpt2 } from '../src/models/gpt2.js';
import { WeightMap } from '../src/models/weights.js';
import type { CausalLM } from '../src/models/model.js';
import type { HookFn } from '../src/models/hook-point.js';
import { crossEntropy } from '../src/train/loss.js';
import { train } from '../src/train/trainer.js';
import { latestCheckpoint } from '../src/train/checkpoint.js';
import { getPlatform } from '../src/io/platform.js';

const args = process.argv.slice(2);
const opt = (n: string, d: string) => { const i = args.indexOf(`--${n}`); return i >= 0 ? args[i + 1]! : d; };
const dataDir = opt('data', '../shared/data/tinyshakespeare');
const outDir = opt('out', '');
const steps = Number(opt('steps', '5000'));
const until = Number(opt('until', String(steps)));
const budgetS = Number(opt('budget-s', '0'));
const evalEvery = Number(opt('eval-every', '250'));
const pDrop = Number(opt('dropout', '0.2'));
const seed = Number(opt('seed', '1337'));
const timeSteps = Number(opt('time-steps', '0'));
const profile = args.includes('--profile');
// 'explicit': scores, softmax, dropout and P·V as separate ops (batched GEMMs); 'probs': the fused
// attention op returning its probabilities (its row kernel), P·V redone on the dropped-out pattern.
const attnPath = opt('attn', 'explicit');
const B = Number(opt('batch', '64'));
const valBatches = Number(opt('val-batches', 'Infinity'));
const T = Number(opt('context', '256'));
const L = Number(opt('layers', '6'));
const H = Number(opt('heads', '6'));
const D = Number(opt('d-model', '384'));
const F = Number(opt('d-ff', String(4 * D)));
const lr = Number(opt('lr', '1e-3'));
const minLr = Number(opt('min-lr', '1e-4'));
const warmup = Number(opt('warmup', '100'));

// nanoGPT's data/shakespeare_char/prepare.py: sorted characters, 90/10 split.
const text = readFileSync(join(dataDir, 'input.txt'), 'utf8');
const chars = [...new Set(text)].sort();
const stoi = new Map(chars.map((c, i) => [c, i]));
const ids = Uint8Array.from(text, (c) => stoi.get(c)!);
const nTrain = Math.floor(ids.length * 0.9);
const trainIds = ids.subarray(0, nTrain);
const valIds = ids.subarray(nTrain);
console.log(`data: ${ids.length} characters, vocabulary ${chars.length}, train ${trainIds.length}, val ${valIds.length}`);

/** Every window of T + 1 characters of the training text, without materialising them. */
function windows(src: Uint8Array): ArrayLike<number>[] {
  const n = src.length - T;
  return new Proxy([] as Uint8Array[], {
    get(target, key, recv) {
      if (key === 'length') return n;
      if (typeof key === 'string' && /^\d+$/.test(key)) { const i = Number(key); return i < n ? src.subarray(i, i + T + 1) : undefined; }
      return Reflect.get(target, key, recv);
    },
  });
}

const config = {
  model_type: 'gpt2', architectures: ['GPT2LMHeadModel'], vocab_size: chars.length, n_positions: T, n_ctx: T, n_embd: D, n_layer: L, n_head: H,
  activation_function: 'gelu_new', layer_norm_epsilon: 1e-5, tie_word_embeddings: true, ...(F !== 4 * D ? { n_inner: F } : {}),
};

/** nanoGPT's initialisation: N(0, 0.02) weights and embeddings, N(0, 0.02/sqrt(2L)) output projections, zero biases, unit LayerNorm weights. */
function initModel(backend: Backend): CausalLM {
  const m = new Map<string, Tensor>();
  let s = seed * 1000;
  const normal = (shape: number[], std: number) => randn(shape, { seed: s++, std, backend });
  const ln = (n: string) => {
    m.set(`transformer.${n}.weight`, tensor(new Float32Array(D).fill(1), [D], 'f32', { backend }));
    m.set(`transformer.${n}.bias`, zeros([D], 'f32', { backend }));
  };
  const conv = (n: string, i: number, o: number, std: number) => {
    m.set(`transformer.${n}.weight`, normal([i, o], std));
    m.set(`transformer.${n}.bias`, zeros([o], 'f32', { backend }));
  };
  m.set('transformer.wte.weight', normal([chars.length, D], 0.02));
  m.set('transformer.wpe.weight', normal([T, D], 0.02));
  const projStd = 0.02 / Math.sqrt(2 * L);
  for (let i = 0; i < L; i++) {
    ln(`h.${i}.ln_1`);
    conv(`h.${i}.attn.c_attn`, D, 3 * D, 0.02);
    conv(`h.${i}.attn.c_proj`, D, D, projStd);
    ln(`h.${i}.ln_2`);
    conv(`h.${i}.mlp.c_fc`, D, F, 0.02);
    conv(`h.${i}.mlp.c_proj`, F, D, projStd);
  }
  ln('ln_f');
  return new Gpt2(config, new WeightMap(m, 'shakespeare-char (fresh)'), backend);
}

/** Dropout hooks at nanoGPT's places; a fresh mask for every call (seeded by a counter). */
function dropoutHooks(p: number): [RegExp, HookFn][] {
  let calls = 0;
  const fn: HookFn = (x) => dropout(x, p, (seed * 7919 + calls++) >>> 0);
  const hooks: [RegExp, HookFn][] = [[/^blocks\.0\.hook_resid_pre$|^blocks\.\d+\.(hook_attn_out|hook_mlp_out|attn\.hook_pattern)$/, fn]];
  // A listener at the scores (it changes nothing) selects the explicit attention path.
  if (attnPath === 'explicit') hooks.push([/^blocks\.\d+\.attn\.hook_attn_scores$/, () => undefined]);
  return hooks;
}

/** Mean loss over every non-overlapping window of `src` (no dropout). */
async function evalLoss(model: CausalLM, src: Uint8Array, maxBatches = Infinity): Promise<number> {
  const n = Math.floor((src.length - 1) / T);
  let total = 0;
  let count = 0;
  for (let s = 0, b = 0; s < n && b < maxBatches; s += B, b++) {
    const rows = Math.min(B, n - s);
    const x = new Int32Array(rows * T);
    const y = new Int32Array(rows * T);
    for (let r = 0; r < rows; r++) for (let j = 0; j < T; j++) { x[r * T + j] = src[(s + r) * T + j]!; y[r * T + j] = src[(s + r) * T + j + 1]!; }
    const l = noGrad(() => tidy(() => crossEntropy(model.forward(tensor(x, [rows, T], 'i32', { backend: model.backend })), tensor(y, [rows, T], 'i32', { backend: model.backend }))));
    try {
      total += ((await l.data())[0] as number) * rows;
      count += rows;
    } finally {
      l.dispose();
    }
  }
  return total / count;
}

/** One step's GPU time by kernel: total, calls and share, the 30 largest. */
function printProfile(t: { name: string; ms: number }[]): void {
  const total = t.reduce((a, d) => a + d.ms, 0);
  console.log(`profile: one step's GPU time ${total.toFixed(2)} ms over ${t.length} dispatches`);
  const by = new Map<string, { ms: number; n: number }>();
  for (const d of t) { const e = by.get(d.name) ?? { ms: 0, n: 0 }; by.set(d.name, { ms: e.ms + d.ms, n: e.n + 1 }); }
  for (const [k, v] of [...by].sort((a, b) => b[1].ms - a[1].ms).slice(0, 30)) {
    console.log(`  ${v.ms.toFixed(3).padStart(8)} ms ${(100 * v.ms / total).toFixed(1).padStart(5)}%  x${String(v.n).padEnd(4)} ${(v.ms / v.n * 1e3).toFixed(1).padStart(8)} us each  ${k}`);
  }
}

const backendName = opt('backend', 'webgpu');
if (profile && (timeSteps < 3 || backendName !== 'webgpu')) throw new Error('--profile needs --time-steps 3 or more on the webgpu backend');
const backend = await initBackend(backendName);
const model = initModel(backend);
const nParams = [...model.parameters().values()].reduce((a, t) => a + t.size, 0);
console.log(`model: ${nParams} parameters (${(nParams / 1e6).toFixed(2)}M), backend ${backendName}`);
const data = windows(trainIds);
const common = {
  steps, batchSize: B, lr, minLr, warmupSteps: warmup, optimizer: 'adamw' as const, betas: [0.9, 0.99] as [number, number],
  weightDecay: 0.1, clip: 1.0, seed, config,
};
const hooks = pDrop > 0 ? dropoutHooks(pDrop) : [];

if (timeSteps > 0) {
  const ms: number[] = [];
  // WebGPU's counters (dispatches, submits, bind groups, buffers created, reads, writes) per step, after the first 5 steps.
  const stats = (backend as Partial<WebGpuBackend>).rt?.stats;
  const warm = Math.min(5, timeSteps - 1);
  let from = stats ? { ...stats } : undefined;
  await model.withHooks(hooks, () => train(model, data, {
    ...common, steps: timeSteps,
    onStep: async (s) => {
      ms.push(s.ms);
      if (s.step === warm && stats) from = { ...stats };
      console.log(`step ${s.step} loss ${s.loss.toFixed(4)} ${s.ms.toFixed(1)} ms`);
      // The profile covers step warm + 1 (each dispatch in a pass of its own, so that step runs slower); its time is left out of the median.
      if (profile && s.step === warm) (backend as WebGpuBackend).rt.startTiming();
      if (profile && s.step === warm + 1) { ms.pop(); printProfile(await (backend as WebGpuBackend).rt.stopTiming()); }
    },
  }));
  const tail = ms.slice(warm).sort((a, b) => a - b);
  const perStep = stats && from ? Object.fromEntries(Object.entries(stats).map(([k, v]) => [k, Math.round((v - from![k as keyof typeof stats]) / tail.length)])) : undefined;
  console.log(JSON.stringify({ bench: 'shakespeare-char-step', impl: `actlab-${backendName}`, dropout: pDrop, attn: attnPath, batch: B, T, step_ms: Math.round(tail[Math.floor(tail.length / 2)]! * 10) / 10, ...(perStep ? { per_step: perStep } : {}) }));
} else {
  if (!outDir) throw new Error('--out DIR is required for a training run');
  const store = (await getPlatform()).store;
  const evalLog = join(outDir, 'eval_log.jsonl');
  const t0 = performance.now();
  let chunkS = 0;
  for (;;) {
    const last = await latestCheckpoint(store, outDir);
    const at = last ? Number(/checkpoint-(\d+)$/.exec(last)![1]) : 0;
    if (at >= until) break;
    const elapsed = (performance.now() - t0) / 1000;
    if (budgetS > 0 && elapsed + chunkS * 1.1 > budgetS) { console.log(`stopping at step ${at}: the next chunk (~${chunkS.toFixed(0)} s) would pass the ${budgetS} s budget`); break; }
    const next = Math.min(until, (Math.floor(at / evalEvery) + 1) * evalEvery);
    const c0 = performance.now();
    let lastMs = 0;
    const r = await model.withHooks(hooks, () => train(model, data, {
      ...common, untilStep: next, outDir, resume: true, checkpointEvery: 0,
      onStep: (s) => { lastMs = s.ms; if (s.step % 50 === 0) console.log(`step ${s.step} loss ${s.loss.toFixed(4)} lr ${s.lr.toExponential(2)} norm ${s.gradNorm.toFixed(3)} ${s.ms.toFixed(1)} ms`); },
    }));
    chunkS = (performance.now() - c0) / 1000;
    const val = await evalLoss(model, valIds, valBatches);
    const trainEst = await evalLoss(model, trainIds, Math.min(8, valBatches));
    const line = { step: r.step, val_loss: val, train_loss_8_batches: trainEst, last_step_ms: lastMs, chunk_s: Math.round(chunkS * 10) / 10, time: new Date().toISOString() };
    console.log(JSON.stringify(line));
    const sink = await store.openAppend(evalLog);
    await sink.write(new TextEncoder().encode(JSON.stringify(line) + '\n'));
    await sink.close();
  }
}
model.dispose();
disposeBackends();
