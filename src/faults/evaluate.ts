// Accuracy and KL under faults, with and without clipping: a task is token sequences of one length
// and the positions whose next token is scored (an organism's answer positions, or the second half
// of text chunks). Each condition is compared with the clean model on the same inputs: task
// accuracy (argmax = the true next token), KL(clean ‖ condition) of the next-token distributions
// and top-1 agreement with the clean model, averaged over scored positions, then over trials
// (independent fault draws, seeds seed, seed + 1, ...). Predictions whose distribution is no
// longer finite (NaN or infinite logits) are counted apart, and KL is the mean over the rest.
import { tensor } from '../ops/creation.js';
import { logSoftmax } from '../ops/nn.js';
import { tidy } from '../tensor/engine.js';
import type { HookFn } from '../models/hook-point.js';
import type { CausalLM } from '../models/model.js';
import { activationFaultHook, injectWeightFaults, type FaultSpec } from './bitflip.js';
import { calibrateClipBounds, clipHooks, type BoundGranularity } from './proact.js';
import { hookGlobs } from './sites.js';

export interface FaultTask {
  name: string;
  /** Sequences of one length; the model reads all but the last token. */
  data: number[][];
  /** Scored positions p: the prediction of seq[p + 1]. */
  positions: number[];
  /** Calibration sequences for the clipping bounds (clean inputs, apart from `data`). */
  calibration: number[][];
}

export interface FaultOptions extends FaultSpec {
  target: 'weights' | 'activations';
  /** Activation faults: hook point globs (comma-separated). */
  sites?: string;
  /** Weight faults: parameter names (RegExp source) to hit; all f32 parameters by default. */
  weights?: string;
  /** Clipping: hook point globs; granularity of the bounds. */
  clipSites: string;
  granularity?: BoundGranularity;
  trials?: number;
}

export interface ConditionResult {
  accuracy: number;
  /** Mean KL over the predictions that stayed finite. */
  kl: number;
  /** Share of predictions whose distribution is no longer finite (NaN / Inf logits). */
  nonfinite: number;
  top1: number;
  /** Mean bits flipped per trial. */
  flips: number;
}

export interface FaultReport {
  task: string;
  scored: number;
  fault: { target: string; rate: number; bit: number | 'any'; sites?: string[]; weights?: string };
  clip: { sites: string[]; granularity: BoundGranularity };
  trials: number;
  clean: { accuracy: number };
  clipped_clean: ConditionResult;
  faulty: ConditionResult;
  faulty_clipped: ConditionResult;
}

/** Log-probabilities at the scored positions, [seq][pos][vocab] flattened per sequence. */
function scoredLogProbs(model: CausalLM, t: FaultTask): Float32Array[] {
  const T = t.data[0]!.length - 1; // the last token is only a target
  const out: Float32Array[] = [];
  for (const seq of t.data) {
    const lp = tidy(() => logSoftmax(model.forward(tensor(seq.slice(0, T), [1, T], 'i32', { backend: model.backend }))).dataSync() as Float32Array);
    const V = lp.length / T;
    const rows = new Float32Array(t.positions.length * V);
    t.positions.forEach((p, i) => rows.set(lp.subarray(p * V, (p + 1) * V), i * V));
    out.push(rows);
  }
  return out;
}

function compare(t: FaultTask, clean: Float32Array[], got: Float32Array[]): { accuracy: number; kl: number; top1: number; nonfinite: number } {
  let acc = 0, kl = 0, agree = 0, n = 0, bad = 0;
  const V = clean[0]!.length / t.positions.length;
  t.data.forEach((seq, s) => {
    t.positions.forEach((p, i) => {
      const c = clean[s]!.subarray(i * V, (i + 1) * V);
      const g = got[s]!.subarray(i * V, (i + 1) * V);
      let ac = 0, ag = 0, k = 0;
      for (let v = 0; v < V; v++) {
        if (c[v]! > c[ac]!) ac = v;
        if (g[v]! > g[ag]! || Number.isNaN(g[ag]!)) ag = v;
        if (c[v]! > -Infinity) k += Math.exp(c[v]!) * (c[v]! - g[v]!);
      }
      if (Number.isFinite(k)) kl += k;
      else bad++;
      if (ag === seq[p + 1]) acc++;
      if (ag === ac) agree++;
      n++;
    });
  });
  return { accuracy: acc / n, kl: n > bad ? kl / (n - bad) : NaN, top1: agree / n, nonfinite: bad / n };
}

export function faultReport(model: CausalLM, task: FaultTask, o: FaultOptions): FaultReport {
  const trials = o.trials ?? 5;
  if (!Number.isInteger(trials) || trials < 1) throw new RangeError(`faults: trials must be a whole number >= 1, got ${trials}`);
  const sites = o.target === 'activations' ? hookGlobs(model, o.sites ?? '', '--site') : undefined;
  const names = o.target === 'weights' && o.weights ? new RegExp(o.weights) : undefined;
  const granularity = o.granularity ?? 'neuron';
  const bounds = calibrateClipBounds(model, task.calibration.map((s) => s.slice(0, -1)), o.clipSites, granularity);
  const clipper = clipHooks(model, bounds);
  try {
    const clean = scoredLogProbs(model, task);
    const cleanAcc = compare(task, clean, clean).accuracy;
    const clippedClean = { ...model.withHooks(clipper.hooks, () => compare(task, clean, scoredLogProbs(model, task))), flips: 0 };
    const run = (withClip: boolean): ConditionResult => {
      const sum = { accuracy: 0, kl: 0, top1: 0, flips: 0, nonfinite: 0, finiteTrials: 0 };
      for (let r = 0; r < trials; r++) {
        const seed = (o.seed ?? 1) + r;
        const hooks: [string, HookFn][] = [];
        let flips = () => 0;
        let restore = () => {};
        if (o.target === 'activations') {
          const f = activationFaultHook({ rate: o.rate, bit: o.bit, seed });
          for (const s of sites!) hooks.push([s, f]);
          flips = () => f.flips();
        } else {
          const w = injectWeightFaults(model, { rate: o.rate, bit: o.bit, seed, names });
          flips = () => w.flips;
          restore = () => w.restore();
        }
        if (withClip) hooks.push(...clipper.hooks);
        try {
          const c = model.withHooks(hooks, () => compare(task, clean, scoredLogProbs(model, task)));
          sum.accuracy += c.accuracy; sum.top1 += c.top1; sum.flips += flips(); sum.nonfinite += c.nonfinite;
          if (!Number.isNaN(c.kl)) { sum.kl += c.kl; sum.finiteTrials++; }
        } finally {
          restore();
        }
      }
      return { accuracy: sum.accuracy / trials, kl: sum.finiteTrials ? sum.kl / sum.finiteTrials : NaN, nonfinite: sum.nonfinite / trials, top1: sum.top1 / trials, flips: sum.flips / trials };
    };
    return {
      task: task.name, scored: task.data.length * task.positions.length,
      fault: { target: o.target, rate: o.rate, bit: o.bit ?? 'any', ...(sites ? { sites } : {}), ...(o.weights ? { weights: o.weights } : {}) },
      clip: { sites: bounds.map((b) => b.name), granularity }, trials,
      clean: { accuracy: cleanAcc }, clipped_clean: clippedClean, faulty: run(false), faulty_clipped: run(true),
    };
  } finally {
    clipper.dispose();
  }
}
