// Training an SAE (or transcoder) on activations, as SAELens' SAETrainer does: Adam with a
// warmup / constant / linear-decay learning rate, a linearly warmed-up sparsity coefficient,
// decoder rows held at unit norm (the gradient along each row removed before the update),
// gradient clipping at norm 1, dead features counted over a window (auxiliary-k for TopK and
// BatchTopK, optional ghost grads for ReLU), SAELens' input scaling (expected_average_only_in,
// folded into the weights at the end), and the decoder bias started at the geometric median.
// Checkpoints are single files written atomically, so a kill never leaves half of one; a NaN or
// infinite loss stops the run naming the step, the last checkpoint untouched.
// Not for: the forward/backward arithmetic (step.ts) or file formats (saelens.ts).
import type { Backend } from '../tensor/backend.js';
import type { FileStore } from '../io/file-store.js';
import { getPlatform } from '../io/platform.js';
import { getBackend } from '../tensor/engine.js';
import type { SaeArchitecture, SaeConfig } from './config.js';
import type { SaeDataSource } from './data.js';
import { geometricMedian, initSae, meanOf, scalingFactor } from './init.js';
import { Sae } from './sae.js';
import { saveTrainCheckpoint, latestTrainCheckpoint, loadTrainCheckpoint, type TrainState } from './checkpoint.js';
import { saeStep, type SaeLossTerms } from './step.js';
import { DEVICE_SAE_ARCHITECTURES, DeviceSaeTrainer } from './step-device.js';

export interface SaeTrainOptions {
  architecture: SaeArchitecture;
  /** Features (d_sae). */
  dSae: number;
  k?: number;
  /** L1 ('standard') or L0 ('jumprelu') coefficient. */
  coefficient?: number;
  /** Steps over which the coefficient rises linearly from 0 (SAELens l1_warm_up_steps). */
  coefficientWarmupSteps?: number;
  /** Tokens (rows) to train on; steps = ceil(tokens / batchSize). */
  tokens: number;
  batchSize?: number;
  lr?: number;
  lrWarmupSteps?: number;
  /** Steps of linear decay to 0 at the end. */
  lrDecaySteps?: number;
  adamBeta1?: number;
  adamBeta2?: number;
  /** Maximum global gradient norm (SAELens: 1; 0 disables). */
  clipGradNorm?: number;
  /** b_dec start: 'geometric_median' (default), 'mean' or 'zeros'. */
  bDecInit?: 'geometric_median' | 'mean' | 'zeros';
  /** Rows used for the b_dec init and the scaling factor (default 4 batches). */
  initRows?: number;
  normalizeActivations?: 'none' | 'expected_average_only_in';
  /** Keep decoder rows at unit norm (default true). */
  normalizeDecoder?: boolean;
  /** Steps without firing after which a feature counts as dead (SAELens dead_feature_window). */
  deadFeatureWindow?: number;
  auxCoefficient?: number;
  /** 'standard': ghost grads for dead features. */
  ghostGrads?: boolean;
  bandwidth?: number;
  initThreshold?: number;
  seed?: number;
  /** Start from these weights instead of a fresh init (the init's b_dec and scaling still apply unless skipInit). */
  init?: Sae;
  /** Use `init` exactly as given: no b_dec init. */
  skipInit?: boolean;
  /** Fixed input scaling factor (otherwise estimated when normalizeActivations asks). */
  scalingFactor?: number;
  /** Checkpoint folder (and resume from the newest checkpoint in it). */
  checkpointDir?: string;
  /** Save every n steps (default: about every 10% of the run). */
  checkpointEvery?: number;
  resume?: boolean;
  metadata?: Record<string, unknown>;
  backend?: Backend;
  /**
   * Keep weights, optimizer state and counters on the backend for the whole run (step-device.ts),
   * reading back a few numbers per step. Default: on backends that cannot read synchronously (WebGPU).
   */
  resident?: boolean;
  store?: FileStore;
  onStep?: (s: SaeStepInfo) => void;
}

export interface SaeStepInfo extends SaeLossTerms {
  step: number;
  steps: number;
  tokens: number;
  dead: number;
  lr: number;
  coefficient: number;
}

export interface SaeTrainResult {
  /** The trained SAE, with the input scaling folded into its weights (it reads raw activations). */
  sae: Sae;
  steps: number;
  tokens: number;
  scalingFactor: number | null;
  /** Fraction of tokens each feature fired on over the whole run [d_sae]. */
  featureDensity: Float32Array;
  /** The last step's metrics. */
  last: SaeStepInfo | null;
  resumedFrom: number | null;
}

export class SaeDivergedError extends Error {
  constructor(readonly step: number, readonly checkpoint: string | null, what: string) {
    super(`SAE training diverged at step ${step}: ${what}; stopped${checkpoint ? `, the last good checkpoint is ${checkpoint}` : ' (no checkpoint was written yet)'}`);
    this.name = 'SaeDivergedError';
  }
}

/** The learning rate at `step` of `steps`: linear warmup from lr/W, constant, linear decay to 0 over the last D steps. */
export function saeLr(step: number, steps: number, lr: number, warmup: number, decay: number): number {
  if (warmup > 0 && step < warmup) return (lr * (step + 1)) / warmup;
  if (decay > 0 && step >= steps - decay) return (lr * (steps - step)) / decay;
  return lr;
}

/** The sparsity coefficient at `step` (SAELens' CoefficientScheduler: 0 at step 0, final after W steps). */
export function saeCoefficient(step: number, final: number, warmup: number): number {
  return warmup > 0 ? final * Math.min(step / warmup, 1) : final;
}

/** Names of the trained parameters (jumprelu trains log_threshold in place of threshold). */
function trainedNames(cfg: SaeConfig): string[] {
  const names = ['W_enc', 'b_enc', 'W_dec', 'b_dec'];
  if (cfg.architecture === 'skip_transcoder') names.push('W_skip');
  if (cfg.architecture === 'jumprelu' || cfg.architecture === 'jumprelu_transcoder') names.push('log_threshold');
  return names;
}

export async function trainSae(data: SaeDataSource, o: SaeTrainOptions): Promise<SaeTrainResult> {
  const backend = o.backend ?? getBackend();
  const store = o.store ?? (o.checkpointDir ? (await getPlatform()).store : undefined);
  const B = o.batchSize ?? 4096;
  const steps = Math.ceil(o.tokens / B);
  const arch = o.architecture;
  if ((arch === 'topk' || arch === 'batchtopk') && !(o.k && o.k > 0)) throw new Error(`SAE training: --k is required for ${arch}`);
  if ((arch === 'topk') && o.k! > o.dSae) throw new Error(`SAE training: k ${o.k} exceeds d_sae ${o.dSae}`);
  const transcoder = arch === 'transcoder' || arch === 'skip_transcoder' || arch === 'jumprelu_transcoder';
  const resident = o.resident ?? !backend.synchronous;
  if (resident && (!(DEVICE_SAE_ARCHITECTURES as readonly string[]).includes(arch) || o.ghostGrads)) {
    throw new Error(`SAE training on the ${backend.name} backend runs ${DEVICE_SAE_ARCHITECTURES.join(' and ')} SAEs without ghost grads; train ${arch}${o.ghostGrads ? ' with ghost grads' : ''} on wasm or js`);
  }
  const cfg: SaeConfig = o.init?.cfg ?? {
    architecture: arch,
    d_in: data.dIn,
    d_sae: o.dSae,
    ...(transcoder ? { d_out: data.dOut } : {}),
    ...(o.k !== undefined && (arch === 'topk' || arch === 'batchtopk') ? { k: o.k } : {}),
    ...(arch === 'topk' ? { rescale_acts_by_decoder_norm: false } : {}),
    apply_b_dec_to_input: !transcoder,
    normalize_activations: 'none',
    dtype: 'float32',
    metadata: { ...(o.metadata ?? {}) },
  };
  if (cfg.d_in !== data.dIn || (cfg.d_out ?? cfg.d_in) !== data.dOut) {
    throw new Error(`SAE training: the SAE reads ${cfg.d_in} -> ${cfg.d_out ?? cfg.d_in} but the activations are ${data.dIn} -> ${data.dOut}`);
  }
  const sae = o.init ? new Sae(cfg, new Map([...o.init.params].map(([k, v]) => [k, v.slice()]))) : initSae(cfg, { seed: o.seed, initThreshold: o.initThreshold });
  const names = trainedNames(cfg);
  const logTheta = names.includes('log_threshold') ? sae.param('threshold').map(Math.log) : null;
  const paramOf = (name: string): Float32Array => (name === 'log_threshold' ? logTheta! : sae.param(name));
  const adamM = new Map(names.map((nm) => [nm, new Float32Array(paramOf(nm).length)]));
  const adamV = new Map(names.map((nm) => [nm, new Float32Array(paramOf(nm).length)]));
  const n = cfg.d_sae;
  const sinceFired = new Float32Array(n);
  const fireTotal = new Float64Array(n);
  const window = o.deadFeatureWindow ?? 1000;
  let step = 0;
  let scale: number | null = o.scalingFactor ?? null;
  let topkThreshold = 0;
  let resumedFrom: number | null = null;
  let lastCheckpoint: string | null = null;
  const every = o.checkpointEvery ?? Math.max(1, Math.ceil(steps / 10));

  let batchesRead = 0;
  const next = async () => { batchesRead++; return data.next(); };
  // Resume: weights, Adam moments, counters, and the data position (batches are re-read and skipped).
  if (o.checkpointDir && o.resume && store) {
    const path = await latestTrainCheckpoint(store, o.checkpointDir);
    if (path) {
      const st = await loadTrainCheckpoint(store, path);
      if (st.cfg.architecture !== cfg.architecture || st.cfg.d_sae !== n || st.cfg.d_in !== cfg.d_in) {
        throw new Error(`${path}: checkpoint of a ${st.cfg.architecture} SAE ${st.cfg.d_in}x${st.cfg.d_sae}; this run trains ${cfg.architecture} ${cfg.d_in}x${n}`);
      }
      for (const nm of names) {
        paramOf(nm).set(st.tensors.get(nm)!);
        adamM.get(nm)!.set(st.tensors.get(`adam_m.${nm}`)!);
        adamV.get(nm)!.set(st.tensors.get(`adam_v.${nm}`)!);
      }
      sinceFired.set(st.tensors.get('since_fired')!);
      fireTotal.set(st.tensors.get('fire_total')!);
      step = st.state.step;
      scale = st.state.scalingFactor;
      topkThreshold = st.state.topkThreshold ?? 0;
      resumedFrom = step;
      lastCheckpoint = path;
      if (logTheta) sae.param('threshold').set(logTheta.map(Math.exp));
      for (let s = 0; s < (st.state.batchesRead ?? step); s++) await next();
    }
  }

  const scaleBatch = (b: { x: Float32Array; target?: Float32Array }) => {
    if (scale === null || scale === 1) return;
    for (let i = 0; i < b.x.length; i++) b.x[i] *= scale;
    if (b.target) for (let i = 0; i < b.target.length; i++) b.target[i] *= scale;
  };

  if (resumedFrom === null) {
    const needInit = !o.skipInit && (o.bDecInit ?? 'geometric_median') !== 'zeros';
    const needScale = scale === null && o.normalizeActivations === 'expected_average_only_in';
    if (needInit || needScale) {
      // A sample from a separate pass of the source's shuffled stream (the training order is not consumed
      // here only when the source restarts; an in-memory or store source hands out the next batches).
      const want = o.initRows ?? 4 * B;
      const xs: Float32Array[] = [];
      const ts: Float32Array[] = [];
      let rows = 0;
      while (rows < want) { const b = await next(); xs.push(b.x); if (b.target) ts.push(b.target); rows += b.rows; }
      const x = concatF32(xs);
      if (needScale) scale = scalingFactor(x, rows, cfg.d_in);
      if (needInit) {
        const t = ts.length ? concatF32(ts) : x;
        const d = cfg.d_out ?? cfg.d_in;
        if (scale !== null) for (let i = 0; i < t.length; i++) t[i] *= scale;
        const c = o.bDecInit === 'mean' ? meanOf(t, rows, d) : geometricMedian(t, rows, d);
        sae.param('b_dec').set(c);
        sae.changed();
      }
    }
  }

  const normalizeDecoder = o.normalizeDecoder ?? true;
  const dOut = cfg.d_out ?? cfg.d_in;
  const lr0 = o.lr ?? 3e-4;
  const b1 = o.adamBeta1 ?? 0.9;
  const b2 = o.adamBeta2 ?? 0.999;
  const clip = o.clipGradNorm ?? 1;
  let last: SaeStepInfo | null = null;
  const dev = resident ? new DeviceSaeTrainer(sae, backend, adamM, adamV, sinceFired, fireTotal, window) : null;
  const save = async (done: number) => {
    if (!o.checkpointDir || !store) return;
    if (dev) await dev.download(adamM, adamV, sinceFired, fireTotal);
    const tensors = new Map<string, Float32Array>();
    for (const nm of names) {
      tensors.set(nm, paramOf(nm));
      tensors.set(`adam_m.${nm}`, adamM.get(nm)!);
      tensors.set(`adam_v.${nm}`, adamV.get(nm)!);
    }
    tensors.set('since_fired', sinceFired);
    tensors.set('fire_total', Float32Array.from(fireTotal));
    const state: TrainState = { step: done, steps, tokens: done * B, batchesRead, scalingFactor: scale, topkThreshold };
    lastCheckpoint = await saveTrainCheckpoint(store, o.checkpointDir, cfg, state, tensors);
  };

  try {
    for (; step < steps; step++) {
      const batch = await next();
      scaleBatch(batch);
      const coefficient = saeCoefficient(step, o.coefficient ?? (arch === 'jumprelu' ? 1 : 5), o.coefficientWarmupSteps ?? 0);
      if (dev) {
        const lr = saeLr(step, steps, lr0, o.lrWarmupSteps ?? 0, o.lrDecaySteps ?? 0);
        const numDead = dev.deadCount;
        const out = await dev.step(batch.x, batch.rows, {
          coefficient, auxCoefficient: o.auxCoefficient ?? 1, lr, t: step + 1, beta1: b1, beta2: b2, clip, window, normalizeDecoder,
        });
        if (!Number.isFinite(out.loss)) throw new SaeDivergedError(step, lastCheckpoint, `loss is ${out.loss} (mse ${out.mse}, sparsity ${out.sparsity}, aux ${out.aux})`);
        if (!Number.isFinite(out.gnorm)) throw new SaeDivergedError(step, lastCheckpoint, `gradient norm is ${out.gnorm}`);
        last = {
          step: step + 1, steps, tokens: (step + 1) * B, loss: out.loss, mse: out.mse, sparsity: out.sparsity, aux: out.aux,
          l0: out.l0, fvu: out.fvu, dead: numDead, lr, coefficient,
        };
        o.onStep?.(last);
        if (o.checkpointDir && (step + 1) % every === 0 && step + 1 < steps) await save(step + 1);
        continue;
      }
      const dead = new Uint8Array(n);
      let numDead = 0;
      for (let i = 0; i < n; i++) if (sinceFired[i]! > window) { dead[i] = 1; numDead++; }
      const out = saeStep(sae, { x: batch.x, target: batch.target, rows: batch.rows, dead: numDead ? dead : undefined },
        { coefficient, auxCoefficient: o.auxCoefficient, ghostGrads: o.ghostGrads, bandwidth: o.bandwidth, logThreshold: logTheta ?? undefined }, backend);
      if (!Number.isFinite(out.loss)) throw new SaeDivergedError(step, lastCheckpoint, `loss is ${out.loss} (mse ${out.mse}, sparsity ${out.sparsity}, aux ${out.aux})`);
      for (let i = 0; i < n; i++) {
        sinceFired[i] = out.fireCounts[i]! > 0 ? 0 : sinceFired[i]! + 1;
        fireTotal[i] += out.fireCounts[i]!;
      }
      if (arch === 'batchtopk' && out.minPositive !== undefined && Number.isFinite(out.minPositive)) {
        topkThreshold = 0.99 * topkThreshold + 0.01 * out.minPositive;
      }
      const g = out.grads;
      if (normalizeDecoder) removeParallel(g.get('W_dec')!, sae.param('W_dec'), n, dOut);
      let sq = 0;
      for (const nm of names) for (const v of g.get(nm)!) sq += v * v;
      const gnorm = Math.sqrt(sq);
      if (!Number.isFinite(gnorm)) throw new SaeDivergedError(step, lastCheckpoint, `gradient norm is ${gnorm}`);
      const gs = clip > 0 && gnorm > clip ? clip / (gnorm + 1e-6) : 1;
      const lr = saeLr(step, steps, lr0, o.lrWarmupSteps ?? 0, o.lrDecaySteps ?? 0);
      const t = step + 1;
      const bc1 = 1 - b1 ** t;
      const bc2 = 1 - b2 ** t;
      for (const nm of names) {
        const p = paramOf(nm);
        const gr = g.get(nm)!;
        const m = adamM.get(nm)!;
        const v = adamV.get(nm)!;
        for (let i = 0; i < p.length; i++) {
          const gi = gr[i]! * gs;
          m[i] = b1 * m[i]! + (1 - b1) * gi;
          v[i] = b2 * v[i]! + (1 - b2) * gi * gi;
          p[i] -= (lr * (m[i]! / bc1)) / (Math.sqrt(v[i]! / bc2) + 1e-8);
        }
      }
      if (normalizeDecoder) unitRows(sae.param('W_dec'), n, dOut);
      if (logTheta) sae.param('threshold').set(logTheta.map(Math.exp));
      sae.changed();
      last = {
        step: step + 1, steps, tokens: (step + 1) * B, loss: out.loss, mse: out.mse, sparsity: out.sparsity, aux: out.aux,
        l0: out.l0, fvu: out.fvu, dead: numDead, lr, coefficient,
      };
      o.onStep?.(last);
      if (o.checkpointDir && (step + 1) % every === 0 && step + 1 < steps) await save(step + 1);
    }
    if (o.checkpointDir) await save(step);
    else if (dev) await dev.download(adamM, adamV, sinceFired, fireTotal);
  } finally {
    dev?.dispose();
  }

  // Inference form: BatchTopK becomes a JumpReLU with its running threshold; the scaling folds into the weights.
  let final = sae;
  if (arch === 'batchtopk') {
    final = new Sae({ ...cfg }, new Map(sae.params));
    final.param('threshold').fill(topkThreshold);
  }
  if (scale !== null && scale !== 1) foldScaling(final, scale);
  final.changed();
  const total = steps * B;
  return {
    sae: final, steps, tokens: total, scalingFactor: scale,
    featureDensity: Float32Array.from(fireTotal, (c) => c / Math.max(1, total)),
    last, resumedFrom,
  };
}

/** Folds an input scaling factor s into the weights (SAELens fold_activation_norm_scaling_factor). */
export function foldScaling(sae: Sae, s: number): void {
  for (const v of ['W_enc'] as const) { const p = sae.param(v); for (let i = 0; i < p.length; i++) p[i] *= s; }
  for (const v of ['W_dec', 'b_dec'] as const) { const p = sae.param(v); for (let i = 0; i < p.length; i++) p[i] /= s; }
  if (sae.params.has('W_skip')) { /* W_skip maps scaled x to scaled y: unchanged by a common factor */ }
  sae.changed();
}

/** Removes from each row's gradient its component along the (unit) decoder row. */
function removeParallel(g: Float32Array, W: Float32Array, rows: number, cols: number): void {
  for (let i = 0; i < rows; i++) {
    let dot = 0;
    let nn = 0;
    for (let j = 0; j < cols; j++) { dot += g[i * cols + j]! * W[i * cols + j]!; nn += W[i * cols + j]! ** 2; }
    if (nn === 0) continue;
    const f = dot / nn;
    for (let j = 0; j < cols; j++) g[i * cols + j] -= f * W[i * cols + j]!;
  }
}

function unitRows(W: Float32Array, rows: number, cols: number): void {
  for (let i = 0; i < rows; i++) {
    let s = 0;
    for (let j = 0; j < cols; j++) s += W[i * cols + j]! ** 2;
    const f = s > 0 ? 1 / Math.sqrt(s) : 0;
    for (let j = 0; j < cols; j++) W[i * cols + j] *= f;
  }
}

function concatF32(xs: Float32Array[]): Float32Array {
  const out = new Float32Array(xs.reduce((s, x) => s + x.length, 0));
  let o = 0;
  for (const x of xs) { out.set(x, o); o += x.length; }
  return out;
}
