// The activation-sparsity methods by name, as `--sparsity` takes them:
//   topk:F        keep the largest |a| per token, zero the share F (0 < F < 1) of each MLP activation
//   topk:K        keep the K largest (an integer >= 1) — Lazy Neuron's enforced top-k
//   threshold:T   zero |a| < T at every MLP activation (T > 0, one value for all layers)
//   cats:F        one threshold per layer, the F-quantile of |a| on calibration tokens (CATS)
//   chess:F       CHESS's channel-wise thresholds for the FFN, calibrated for sparsity F
//   chess+:F      chess plus CHESS's selective attention sparsification (the query and output
//                 projections' inputs thresholded per layer; keys and values stay dense)
//   teal:F        TEAL: the input of every projection thresholded at its calibrated F-quantile
//                 (uniform allocation), the thresholds fused into the decode products (teal.ts)
// Not for: applying them (apply.ts) or calibration (calibrate.ts).

export type SparsityMethod = 'topk' | 'threshold' | 'cats' | 'chess' | 'chess+' | 'teal';

export interface SparsitySpec {
  method: SparsityMethod;
  /** topk: share zeroed (< 1) or count kept (>= 1); threshold: the threshold; cats/chess: target sparsity. */
  value: number;
}

const METHODS: readonly SparsityMethod[] = ['topk', 'threshold', 'cats', 'chess', 'chess+', 'teal'];

/** Methods whose thresholds come from calibration tokens. */
export function needsCalibration(s: SparsitySpec): boolean {
  return s.method === 'cats' || s.method === 'chess' || s.method === 'chess+' || s.method === 'teal';
}

/** Parses `method:value`; throws naming what is wrong. */
export function parseSparsity(text: string, where = '--sparsity'): SparsitySpec {
  const m = /^([a-z+]+):(.+)$/.exec(text.trim());
  if (!m || !METHODS.includes(m[1] as SparsityMethod)) {
    throw new Error(`${where}: expected METHOD:VALUE with METHOD one of ${METHODS.join(', ')} (e.g. chess:0.5, topk:0.5, threshold:0.05), got '${text}'`);
  }
  const method = m[1] as SparsityMethod;
  const value = Number(m[2]);
  if (!Number.isFinite(value)) throw new Error(`${where}: '${m[2]}' is not a number (in '${text}')`);
  checkSpec({ method, value }, where);
  return { method, value };
}

export function checkSpec(s: SparsitySpec, where = 'sparsity'): void {
  const v = s.value;
  switch (s.method) {
    case 'topk':
      if (!(v > 0) || (v >= 1 && !Number.isInteger(v))) throw new RangeError(`${where}: topk takes a share to zero in (0, 1) or a whole count to keep >= 1, got ${v}`);
      break;
    case 'threshold':
      if (!(v > 0)) throw new RangeError(`${where}: threshold must be > 0, got ${v}`);
      break;
    default:
      if (!(v > 0 && v < 1)) throw new RangeError(`${where}: ${s.method} takes a target sparsity in (0, 1), got ${v}`);
  }
}

export function formatSpec(s: SparsitySpec): string {
  return `${s.method}:${s.value}`;
}

/** How many of `d` entries top-k keeps. */
export function topkKeep(s: SparsitySpec, d: number): number {
  return s.value >= 1 ? Math.min(d, s.value) : Math.max(1, Math.round((1 - s.value) * d));
}
