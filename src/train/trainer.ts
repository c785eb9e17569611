// The training loop for causal language models: seeded shuffled data order, gradient
// accumulation, warmup + cosine schedule, global-norm clipping, SGD or AdamW, a NaN/Inf check of
// the loss and of every gradient (training stops naming the step, the parameter and its group,
// and the last good checkpoint stays as it was), HF-layout checkpoints every N steps that resume
// exactly, and a JSON-lines log (step, loss, lr, grad_norm, tokens, ms) written through the
// platform's store. Progress is reported through `onStep`; drawing a bar is the CLI's job.
// Not for: distributed or mixed-precision training.
import { clearTape, grad, noGrad, tapeMark } from '../autograd/tape.js';
import { Rng, tensor } from '../ops/creation.js';
import { add, mul } from '../ops/elementwise.js';
import { getPlatform } from '../io/platform.js';
import { writeBytesAtomic, type FileStore, type WriteSink } from '../io/file-store.js';
import { keep, tidy } from '../tensor/engine.js';
import type { Tensor } from '../tensor/tensor.js';
import type { CausalLM } from '../models/model.js';
import { clipFactor, globalNorm, gradNormsAsync } from './clip.js';
import { latestCheckpoint, loadCheckpoint, saveCheckpoint, type TrainerState } from './checkpoint.js';
import { crossEntropy } from './loss.js';
import { AdamW, defaultGroups, Sgd, type Optimizer } from './optim.js';
import { warmupCosine } from './schedule.js';

export interface TrainOptions {
  /** Updates to reach (a resumed run continues up to this count). */
  steps: number;
  /** Sequences per micro-batch. */
  batchSize: number;
  /** Micro-batches per update (the loss of each is divided by this). */
  gradAccum?: number;
  lr: number;
  minLr?: number;
  warmupSteps?: number;
  optimizer?: 'adamw' | 'sgd';
  betas?: [number, number];
  eps?: number;
  weightDecay?: number;
  momentum?: number;
  /** Maximum global gradient norm; 0 or absent: no clipping. */
  clip?: number;
  /** Seed of the data order (a fresh permutation each epoch). */
  seed?: number;
  /** Save a checkpoint every this many steps (and after the last). 0: only after the last. */
  checkpointEvery?: number;
  /** Folder for checkpoints and the log; none: nothing is written. */
  outDir?: string;
  /** Where files go (default: the platform's store). */
  store?: FileStore;
  /** The log's path (default `<outDir>/train_log.jsonl`). */
  logFile?: string;
  /** Return (after a checkpoint) once this many updates are done, though the schedule runs to `steps`: a run split in parts. */
  untilStep?: number;
  /** Continue from the newest checkpoint in outDir (true), or from this folder. */
  resume?: boolean | string;
  /** Files written into every checkpoint folder beside the weights (the tokenizer, so the folder loads with it). */
  checkpointFiles?: readonly { name: string; bytes: Uint8Array }[];
  /** Model config written to config.json (default: the model's own). */
  config?: Record<string, unknown>;
  /** Called after each update; a returned promise is awaited before the next (an evaluation that reads asynchronously, as on WebGPU). */
  onStep?: (s: StepInfo) => void | Promise<void>;
  /** Told what a resumed run changes (a schedule for another step count), in a sentence. */
  onNotice?: (message: string) => void;
  /** Only these input positions count in the loss (e.g. [T - 1]: predict the last token only); default all. */
  lossPositions?: readonly number[];
  /**
   * Called around each forward and backward pass: `before` may change the parameters in place (fake
   * quantization), `after` must put them back; the gradients, taken at the changed values, update
   * the originals (the straight-through estimator of quantization-aware training).
   */
  aroundPass?: { before(): void; after(): void };
}

export interface StepInfo {
  /** Updates taken, including this one. */
  step: number;
  steps: number;
  loss: number;
  lr: number;
  gradNorm: number;
  tokens: number;
  ms: number;
}

export interface TrainResult {
  step: number;
  /** The loss of the last update (of this call, or the one logged in the checkpoint resumed from). */
  loss: number;
  /** The step the run resumed from (undefined: it started fresh). */
  resumedFrom?: number;
  /** Updates taken by this call (0: the checkpoint was already at `steps`). */
  updates: number;
  /** Folder of the last checkpoint written (or resumed from). */
  checkpoint: string | null;
}

const IGNORE = -100;

/** Training stopped on a non-finite loss or gradient; nothing of the bad step was applied or saved. */
export class TrainingStoppedError extends Error {
  constructor(readonly step: number, readonly group: string, readonly param: string, readonly lastCheckpoint: string | null, detail: string) {
    super(`training stopped at step ${step}: ${detail} (parameter group '${group}', parameter '${param}'); ${lastCheckpoint ? `the last good checkpoint is ${lastCheckpoint}` : 'no checkpoint was written yet'}`);
    this.name = 'TrainingStoppedError';
  }
}

/** The order of `n` examples in `epoch` (Fisher-Yates with a seed derived from both). */
export function epochOrder(n: number, seed: number, epoch: number): Int32Array {
  const rng = new Rng((seed * 1000003 + epoch * 7919) >>> 0);
  const p = Int32Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    [p[i], p[j]] = [p[j]!, p[i]!];
  }
  return p;
}

/**
 * Trains `model` in place on `data`, sequences of token ids that all have one length T + 1 (input
 * = the first T, target = the last T). Returns after `steps` updates.
 */
export async function train(model: CausalLM, data: readonly ArrayLike<number>[], o: TrainOptions): Promise<TrainResult> {
  if (data.length === 0) throw new Error('train: no data');
  const len = data[0]!.length;
  if (len < 2 || data.some((d) => d.length !== len)) throw new Error(`train: every sequence must have the same length >= 2 (got ${data[0]!.length} and others)`);
  const T = len - 1;
  const counted = Array.from({ length: T }, (_, j) => !o.lossPositions || o.lossPositions.includes(j));
  if (o.lossPositions?.some((p) => !Number.isInteger(p) || p < 0 || p >= T)) throw new Error(`train: lossPositions ${JSON.stringify(o.lossPositions)} must lie in [0, ${T})`);
  const accum = o.gradAccum ?? 1;
  const seed = o.seed ?? 0;
  const params = model.parameters();
  for (const [n, p] of params) if (p.dtype !== 'f32') throw new Error(`train: parameter '${n}' is ${p.dtype}; training needs f32 parameters`);
  const groups = defaultGroups(params, o.weightDecay ?? (o.optimizer === 'sgd' ? 0 : 0.01));
  const opt: Optimizer = o.optimizer === 'sgd'
    ? new Sgd(params, groups, { momentum: o.momentum ?? 0.9 })
    : new AdamW(params, groups, { betas: o.betas, eps: o.eps });
  const sched = { lr: o.lr, min_lr: o.minLr ?? 0, warmup_steps: o.warmupSteps ?? 0, total_steps: o.steps };
  const schedule = warmupCosine({ lr: sched.lr, minLr: sched.min_lr, warmupSteps: sched.warmup_steps, totalSteps: sched.total_steps });
  const config = o.config ?? model.hfConfig;
  const store = o.outDir ? o.store ?? (await getPlatform()).store : null;
  const run = { seed, batch_size: o.batchSize, grad_accum: accum, examples: data.length, seq_len: T, optimizer: opt.kind };

  let step = 0;
  let position = 0;
  let lastCkpt: string | null = null;
  let resumedFrom: number | undefined;
  let loss = NaN;
  if (o.resume && store && o.outDir) {
    const dir = typeof o.resume === 'string' ? o.resume : await latestCheckpoint(store, o.outDir);
    if (dir) {
      const st = await loadCheckpoint(store, dir, params, config, opt, run);
      step = st.global_step;
      position = st.data_position;
      lastCkpt = dir;
      resumedFrom = step;
      loss = st.last_log?.loss ?? NaN;
      const was = st.schedule;
      if (was && step < o.steps && (Object.keys(sched) as (keyof typeof sched)[]).some((k) => was[k] !== sched[k])) {
        const before = warmupCosine({ lr: was.lr, minLr: was.min_lr, warmupSteps: was.warmup_steps, totalSteps: was.total_steps })(step);
        o.onNotice?.(`the learning-rate schedule changes at step ${step + 1}: ${dir} was trained with warmup ${was.warmup_steps} + cosine from ${was.lr} to ${was.min_lr} over ${was.total_steps} steps, `
          + `this run uses warmup ${sched.warmup_steps} + cosine from ${sched.lr} to ${sched.min_lr} over ${sched.total_steps} steps (lr at step ${step + 1}: ${before.toExponential(3)} before, ${schedule(step).toExponential(3)} now)`);
      }
    }
  }

  let log: WriteSink | null = null;
  if (store && o.outDir) {
    // The log holds each step once: lines past the step this run starts from (written after the
    // checkpoint it resumes from, or by an earlier run in this folder) are dropped.
    const logPath = o.logFile ?? store.join(o.outDir, 'train_log.jsonl');
    if (await store.stat(logPath)) {
      const text = new TextDecoder().decode(await store.readBytes(logPath));
      const lines = text.split('\n').filter((l) => l.trim() !== '');
      const kept = lines.filter((l) => { try { return (JSON.parse(l) as { step: number }).step <= step; } catch { return false; } });
      if (kept.length !== lines.length) await writeBytesAtomic(store, logPath, new TextEncoder().encode(kept.map((l) => l + '\n').join('')));
    }
    log = await store.openAppend(logPath);
  }
  let lastLine: Record<string, number> | undefined;
  const order = new Map<number, Int32Array>();
  const example = (k: number): ArrayLike<number> => {
    const epoch = Math.floor(k / data.length);
    let p = order.get(epoch);
    if (!p) {
      order.clear();
      p = epochOrder(data.length, seed, epoch);
      order.set(epoch, p);
    }
    return data[p[k % data.length]!]!;
  };
  const backend = params.values().next().value!.backend;
  const list = [...params];
  const saved = list.map(([, p]) => p.requiresGrad);
  for (const [, p] of list) p.requireGrad(true);
  const save = async (): Promise<void> => {
    if (!store || !o.outDir) return;
    const dir = store.join(o.outDir, `checkpoint-${step}`);
    const state: TrainerState = { global_step: step, data_position: position, epoch: Math.floor(position / data.length), run, schedule: sched, ...(lastLine ? { last_log: lastLine } : {}) };
    await saveCheckpoint(store, dir, params, config, opt, state, o.checkpointFiles);
    lastCkpt = dir;
  };
  const stop = async (detail: string, grads: Map<string, number> | null): Promise<never> => {
    // Name the first parameter holding non-finite values, else the first with a non-finite gradient
    // (read asynchronously: WebGPU has no synchronous read).
    const norms = await noGrad(() => gradNormsAsync(new Map(list)));
    const bad = list.find(([n]) => !Number.isFinite(norms.get(n)!))?.[0]
      ?? (grads ? [...grads].find(([, v]) => !Number.isFinite(v))?.[0] : undefined) ?? list[0]![0];
    const what = grads?.has(bad) && !Number.isFinite(grads.get(bad)!) ? `${detail}; its gradient norm is ${grads.get(bad)}` : detail;
    throw new TrainingStoppedError(step + 1, opt.groupOf(bad), bad, lastCkpt, what);
  };
  try {
    const end = Math.min(o.steps, o.untilStep ?? o.steps);
    while (step < end) {
      const t0 = performance.now();
      const lr = schedule(step);
      const acc = new Map<string, Tensor>();
      let info: StepInfo | undefined;
      let lossSum = 0;
      try {
        for (let a = 0; a < accum; a++) {
          const ids = new Int32Array(o.batchSize * T);
          const tgt = new Int32Array(o.batchSize * T);
          for (let b = 0; b < o.batchSize; b++) {
            const ex = example(position++);
            for (let j = 0; j < T; j++) { ids[b * T + j] = ex[j]!; tgt[b * T + j] = counted[j] ? ex[j + 1]! : IGNORE; }
          }
          const mark = tapeMark();
          let lossT: Tensor | null = null;
          o.aroundPass?.before();
          try {
            tidy(() => {
              const logits = model.forward(tensor(ids, [o.batchSize, T], 'i32', { backend }));
              const l = crossEntropy(logits, tensor(tgt, [o.batchSize, T], 'i32', { backend }), { ignoreIndex: IGNORE });
              lossT = keep(l);
              const gs = grad(accum === 1 ? l : mul(l, 1 / accum), list.map(([, p]) => p));
              list.forEach(([n], i) => {
                const prev = acc.get(n);
                acc.set(n, keep(prev ? add(prev, gs[i]!) : gs[i]!));
                prev?.dispose();
              });
            });
            // Read asynchronously, so training runs on every backend (WebGPU has no synchronous read).
            lossSum += (await lossT!.data())[0] as number;
          } finally {
            o.aroundPass?.after();
            (lossT as Tensor | null)?.dispose();
            clearTape(mark - 1);
          }
        }
        loss = lossSum / accum;
        const norms = await gradNormsAsync(acc);
        if (!Number.isFinite(loss)) await stop(`the loss is ${loss}`, norms);
        const badGrad = [...norms].find(([, v]) => !Number.isFinite(v));
        if (badGrad) await stop(`the gradient of '${badGrad[0]}' is not finite (norm ${badGrad[1]})`, norms);
        const norm = globalNorm(norms.values());
        opt.update(acc, lr, clipFactor(norm, o.clip ?? 0));
        step++;
        const ms = performance.now() - t0;
        const line = { step, loss, lr, grad_norm: norm, tokens: o.batchSize * T * accum, ms: Math.round(ms * 10) / 10 };
        lastLine = line;
        if (log) await log.write(new TextEncoder().encode(JSON.stringify(line) + '\n'));
        info = { step, steps: o.steps, loss, lr, gradNorm: norm, tokens: line.tokens, ms };
      } finally {
        for (const g of acc.values()) g.dispose();
      }
      // After the gradients are freed: an evaluation here has the memory to itself.
      if (info) await o.onStep?.(info);
      if (o.checkpointEvery && step % o.checkpointEvery === 0 && step < end) await save();
    }
    const updates = step - (resumedFrom ?? 0);
    if (updates > 0 && lastCkpt !== (store && o.outDir ? store.join(o.outDir, `checkpoint-${step}`) : null)) await save();
    return { step, loss, resumedFrom, updates, checkpoint: lastCkpt };
  } finally {
    list.forEach(([, p], i) => p.requireGrad(saved[i]));
    opt.dispose();
    await log?.close();
  }
}
