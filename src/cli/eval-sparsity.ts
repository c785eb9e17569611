// `actlab eval --sparsity METHOD:VALUE`: the evaluated model runs with activation sparsity
// (src/sparsity) and is compared with the same checkpoint dense (loaded a second time as the
// reference unless --ref names one). Calibration tokens come from --calibration FILE, else from
// the start of --data (which the evaluation then skips, so no scored token was seen by the
// calibration).
import { readFileSync } from 'node:fs';
import type { LoadedModel } from '../models/load.js';
import { planSparsity, type SparsityPlan } from '../sparsity/calibrate.js';
import { applySparsity, type AppliedSparsity } from '../sparsity/apply.js';
import { formatSpec, needsCalibration, parseSparsity } from '../sparsity/spec.js';
import { inputIds } from './common.js';

export interface SparsityArgs {
  sparsity?: string;
  calibration?: string;
  calibrationTokens?: number;
}

export interface EvalSparsity {
  applied: AppliedSparsity;
  /** Token ids of --data the evaluation must skip (used for calibration). */
  skip: number;
  json: Record<string, unknown>;
  text: string;
}

/** Plans and applies `--sparsity` on `m`; `ids` are the --data tokens. */
export function sparsityForEval(a: SparsityArgs, m: LoadedModel, ids: number[]): EvalSparsity {
  const spec = parseSparsity(a.sparsity!);
  const n = a.calibrationTokens ?? 512;
  let calib: number[] = [];
  let skip = 0;
  if (spec.method !== 'topk') {
    if (a.calibration) {
      let text: string;
      try {
        text = readFileSync(a.calibration, 'utf8');
      } catch (e) {
        throw new Error(`--calibration: cannot read ${a.calibration} (${(e as Error).message})`);
      }
      calib = inputIds({ prompt: text.slice(0, n * 16) }, m, false, { prompt: '--calibration', ids: '--calibration' }).slice(0, n);
    } else {
      calib = ids.slice(0, n);
      skip = calib.length;
    }
    if (needsCalibration(spec) && calib.length < n && calib.length === ids.length) {
      throw new Error(`--sparsity ${formatSpec(spec)}: --data holds ${ids.length} tokens, all needed for calibration and none left to evaluate; give --calibration FILE or more text`);
    }
  }
  const plan: SparsityPlan = planSparsity(m.model, spec, calib, { ctx: Math.min(m.model.dims.nCtx, 512) });
  const applied = applySparsity(m.model, plan);
  const layers = plan.layers.map((l) => ({
    layer: l.layer, calibration_sparsity: l.calibrationSparsity, threshold: l.threshold,
    ...(l.qThreshold !== undefined ? { q_threshold: l.qThreshold } : {}), ...(l.oThreshold !== undefined ? { o_threshold: l.oThreshold } : {}),
    ...(l.inputThresholds ? { input_thresholds: l.inputThresholds } : {}),
  }));
  const mean = plan.layers.every((l) => l.calibrationSparsity !== null)
    ? plan.layers.reduce((s, l) => s + l.calibrationSparsity!, 0) / plan.layers.length : null;
  return {
    applied, skip,
    json: { spec: formatSpec(spec), calibration_tokens: plan.calibrationTokens, calibration_source: a.calibration ?? (calib.length ? 'the start of --data (not scored)' : null), mean_sparsity: mean, layers },
    text: `sparsity ${formatSpec(spec)} on ${plan.layers.length} ${spec.method === 'teal' ? 'blocks (every projection input)' : 'MLP blocks'}${mean !== null ? `, ${(100 * mean).toFixed(1)}% of activations zeroed on ${plan.calibrationTokens} calibration tokens` : ''}`,
  };
}
