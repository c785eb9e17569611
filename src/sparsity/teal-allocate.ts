// TEAL's greedy allocation (Liu et al. 2024, "Training-Free Activation Sparsity in Large Language
// Models", §3.3): the input sites of a block differ in how much zeroing them costs, so instead of
// one sparsity everywhere each site gets its own. Starting from none, each step raises by `step`
// the sparsity of the site whose raise costs the least KL(dense ‖ sparse) on the calibration tokens
// per weight it skips, until the share of weights skipped reaches the target. The paper searches
// per block on each block's output error; here the sites are shared by all blocks (q/k/v's input,
// the output projection's, gate/up's, down's: TealSite) and the cost is measured end to end, on
// the model's next-token distribution, with the same thresholded inputs the decode products skip.
// Not for: thresholds at given sparsities (teal.ts) or installing them (apply.ts).
import { tensor } from '../ops/creation.js';
import type { CausalLM } from '../models/model.js';
import { applySparsity } from './apply.js';
import { sparseLayers, type LayerPlan } from './calibrate.js';
import { TEAL_SITES, type SparsitySpec, type TealSite } from './spec.js';
import { blockLinears, recordTealInputs, tealSite, tealThresholds } from './teal.js';

export interface TealAllocation {
  /** The share of weights skipped this allocation was searched for. */
  target: number;
  /** The spec to plan with (`planSparsity`): teal with these per-site sparsities. */
  spec: SparsitySpec;
  /** Share of the blocks' projection weights whose input is below its threshold on the calibration tokens. */
  skipped: number;
  /** Mean KL(dense ‖ sparse) per calibration token, nats. */
  kl: number;
}

/** Log-softmax of each row of logits [rows, V]. */
function logSoftmax(z: Float32Array, V: number): Float64Array {
  const out = new Float64Array(z.length);
  for (let r = 0; r < z.length / V; r++) {
    let mx = -Infinity;
    for (let i = 0; i < V; i++) mx = Math.max(mx, z[r * V + i]!);
    let s = 0;
    for (let i = 0; i < V; i++) s += Math.exp(z[r * V + i]! - mx);
    const lse = mx + Math.log(s);
    for (let i = 0; i < V; i++) out[r * V + i] = z[r * V + i]! - lse;
  }
  return out;
}

/**
 * Greedy per-site sparsities for each share of skipped weights in `targets` (ascending; one search
 * serves them all: an allocation is the first point of the path at or past its target).
 */
export function allocateTeal(model: CausalLM, ids: readonly number[], targets: readonly number[], o: { ctx?: number; step?: number } = {}): TealAllocation[] {
  const step = o.step ?? 0.05;
  const ctx = Math.min(o.ctx ?? 256, model.dims.nCtx);
  if (!targets.length || targets.some((t) => !(t > 0 && t < 1))) throw new RangeError(`allocateTeal: targets are shares of skipped weights in (0, 1), got [${targets.join(', ')}]`);
  if (!(step > 0 && step < 1)) throw new RangeError(`allocateTeal: step ${step} is not in (0, 1)`);
  const layers = sparseLayers(model, { method: 'teal', value: 0.5 });
  const samples = recordTealInputs(model, ids, layers, ctx);
  // weights each site gates, over all blocks
  const weights: Record<TealSite, number> = { 'attn.in': 0, 'attn.out': 0, 'mlp.in': 0, 'mlp.out': 0 };
  for (const l of layers) for (const [role, lin] of blockLinears(model.sparsityParts(l))) weights[tealSite(role)] += lin.weight.shape.reduce((a, b) => a * b, 1);
  const total = TEAL_SITES.reduce((s, k) => s + weights[k], 0);
  const sites = TEAL_SITES.filter((k) => weights[k] > 0);
  const chunks: number[][] = [];
  for (let i = 0; i < ids.length; i += ctx) if (ids.length - i >= 2) chunks.push(ids.slice(i, i + ctx));
  const logits = (c: number[]) => {
    const x = tensor(c, [1, c.length], 'i32', { backend: model.backend });
    try {
      const y = model.forward(x);
      const d = Float32Array.from(y.dataSync() as Float32Array);
      y.dispose();
      return d;
    } finally {
      x.dispose();
    }
  };
  const V = model.dims.vocabSize;
  const dense = chunks.map((c) => logSoftmax(logits(c), V));
  const planFor = (lv: Record<TealSite, number>) => {
    const th = tealThresholds(model, samples, layers, (s) => lv[s]);
    const spec: SparsitySpec = { method: 'teal', value: 0.5, sites: { ...lv } };
    const pl: LayerPlan[] = layers.map((layer) => ({ layer, inputThresholds: th.get(layer)!.inputThresholds, calibrationSparsity: th.get(layer)!.calibrationSparsity }));
    const skipped = layers.reduce((s, l) => s + th.get(l)!.calibrationSparsity * blockLinears(model.sparsityParts(l)).reduce((w, [, lin]) => w + lin.weight.shape.reduce((a, b) => a * b, 1), 0), 0) / total;
    return { plan: { spec, layers: pl, calibrationTokens: ids.length }, skipped };
  };
  const klOf = (lv: Record<TealSite, number>): { kl: number; skipped: number } => {
    const { plan, skipped } = planFor(lv);
    const ap = applySparsity(model, plan, { kernels: false });
    try {
      let kl = 0, n = 0;
      chunks.forEach((c, i) => {
        const q = logSoftmax(logits(c), V), p = dense[i]!;
        for (let r = 0; r < c.length; r++, n++) {
          for (let j = 0; j < V; j++) { const lp = p[r * V + j]!; kl += Math.exp(lp) * (lp - q[r * V + j]!); }
        }
      });
      return { kl: kl / n, skipped };
    } finally {
      ap.remove();
    }
  };
  const level: Record<TealSite, number> = { 'attn.in': 0, 'attn.out': 0, 'mlp.in': 0, 'mlp.out': 0 };
  let cur = { kl: 0, skipped: 0 };
  const out: TealAllocation[] = [];
  const record = () => {
    while (out.length < targets.length && cur.skipped >= targets[out.length]! - 1e-9) {
      const target = targets[out.length]!;
      out.push({ target, spec: { method: 'teal', value: target, sites: { ...level } }, skipped: cur.skipped, kl: cur.kl });
    }
  };
  while (out.length < targets.length) {
    let best: { site: TealSite; kl: number; skipped: number; rate: number } | undefined;
    for (const site of sites) {
      if (level[site] + step >= 1) continue;
      const r = klOf({ ...level, [site]: Math.round((level[site] + step) * 1e6) / 1e6 });
      const gained = r.skipped - cur.skipped;
      if (gained <= 0) continue;
      const rate = Math.max(0, r.kl - cur.kl) / gained;
      if (!best || rate < best.rate) best = { site, kl: r.kl, skipped: r.skipped, rate };
    }
    if (!best) throw new Error(`allocateTeal: no site can be raised further at ${(100 * cur.skipped).toFixed(1)}% of weights skipped (targets up to ${targets.at(-1)})`);
    level[best.site] = Math.round((level[best.site] + step) * 1e6) / 1e6;
    cur = { kl: best.kl, skipped: best.skipped };
    record();
  }
  return out;
}
