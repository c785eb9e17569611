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

/** TEAL's input sites of a block: q/k/v's input, the output projection's, gate/up's (or a plain MLP's in), down's. */
export type TealSite = 'attn.in' | 'attn.out' | 'mlp.in' | 'mlp.out';
export const TEAL_SITES: readonly TealSite[] = ['attn.in', 'attn.out', 'mlp.in', 'mlp.out'];

export interface SparsitySpec {
  method: SparsityMethod;
  /** topk: share zeroed (< 1) or count kept (>= 1); threshold: the threshold; cats/chess: target sparsity. */
  value: number;
  /**
   * teal: a sparsity per input site (the same in every block), as TEAL's greedy allocation
   * (teal-allocate.ts) finds them; `value` is then the share of weights skipped they aim at.
   * Absent: every site at `value` (uniform allocation).
   */
  sites?: Partial<Record<TealSite, number>>;
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
  if (s.sites) {
    if (s.method !== 'teal') throw new RangeError(`${where}: per-site sparsities are TEAL's (teal), not ${s.method}'s`);
    for (const [site, x] of Object.entries(s.sites)) {
      if (!TEAL_SITES.includes(site as TealSite)) throw new RangeError(`${where}: unknown TEAL site '${site}' (have ${TEAL_SITES.join(', ')})`);
      if (!(x! >= 0 && x! < 1)) throw new RangeError(`${where}: TEAL site ${site} takes a sparsity in [0, 1), got ${x}`);
    }
  }
}

export function formatSpec(s: SparsitySpec): string {
  const sites = s.sites ? ` (${TEAL_SITES.filter((k) => s.sites![k] !== undefined).map((k) => `${k} ${s.sites![k]}`).join(', ')})` : '';
  return `${s.method}:${s.value}${sites}`;
}

/** How many of `d` entries top-k keeps. */
export function topkKeep(s: SparsitySpec, d: number): number {
  return s.value >= 1 ? Math.min(d, s.value) : Math.max(1, Math.round((1 - s.value) * d));
}
