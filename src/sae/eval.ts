// Evaluating an SAE (or transcoder) on a model and the contexts of an activation store, with
// SAELens' metrics: L0, fraction of variance unexplained, cross-entropy loss with the SAE spliced
// in against the clean model and against zero-ablation of the site (CE loss recovered =
// (CE_zero − CE_sae) / (CE_zero − CE_clean)), dead and dense feature fractions, and the histogram of
// log10 feature densities.
// Not for: training metrics (train.ts reports those per batch).
import type { CausalLM } from '../models/model.js';
import { runWithCache, runWithHooks } from '../hooks/run.js';
import { mul } from '../ops/elementwise.js';
import { crossEntropy } from '../train/loss.js';
import type { ActivationStore } from '../store/reader.js';
import { tidy } from '../tensor/engine.js';
import { Tensor } from '../tensor/tensor.js';
import { hookNameOut, isTranscoder } from './config.js';
import type { Sae } from './sae.js';
import { saeHooks, saeSite } from './splice.js';

export interface SaeEvalOptions {
  /** Contexts of the store to evaluate on (default 32). */
  contexts?: number;
  /** Contexts per forward pass (default 8). */
  batchSize?: number;
  /** A feature firing on more than this fraction of tokens counts as dense (default 0.1). */
  denseThreshold?: number;
  /** Histogram bins over log10 density in [-8, 0] (default 16). */
  bins?: number;
  site?: string;
}

export interface SaeEvalResult {
  site: string;
  tokens: number;
  l0: number;
  fvu: number;
  mse: number;
  ce_clean: number;
  ce_sae: number;
  ce_zero_ablation: number;
  ce_loss_recovered: number;
  dead_fraction: number;
  dense_fraction: number;
  /** Per feature: fraction of tokens it fired on. */
  feature_density: number[];
  /** Histogram of log10(density) for features that fired (dead ones counted apart). */
  density_histogram: { edges: number[]; counts: number[]; dead: number };
}

function ce(logits: Tensor, ids: Tensor): number {
  return tidy(() => {
    const P = ids.shape[1]!;
    const l = logits.narrow(1, 0, P - 1);
    const t = ids.narrow(1, 1, P - 1).contiguous();
    return crossEntropy(l.contiguous(), t).item();
  });
}

export async function evaluateSae(model: CausalLM, sae: Sae, store: ActivationStore, o: SaeEvalOptions = {}): Promise<SaeEvalResult> {
  const site = saeSite(sae, o.site);
  const outSite = isTranscoder(sae.cfg) ? hookNameOut(sae.cfg)! : site;
  const names = new Set(model.hookPoints().map((h) => h.name));
  for (const s of [site, outSite]) if (!names.has(s)) throw new Error(`the model has no hook '${s}' (the SAE's site); see actlab hooks --model ...`);
  const want = Math.min(o.contexts ?? 32, store.contexts);
  const bs = o.batchSize ?? 8;
  const n = sae.dSae;
  const fire = new Float64Array(n);
  const dOut = sae.dOut;
  const sumT = new Float64Array(dOut);
  let sumT2 = 0;
  let sumE2 = 0;
  let active = 0;
  let tokens = 0;
  let ceClean = 0;
  let ceSae = 0;
  let ceZero = 0;
  let batches = 0;
  let done = 0;
  for await (const ids of store.batches({ hook: 'tokens', flatten: 'contexts', batchSize: bs, backend: model.backend })) {
    try {
      const take = Math.min(ids.shape[0]!, want - done);
      const batch = take === ids.shape[0] ? ids.share() : ids.narrow(0, 0, take).contiguous();
      try {
        const { logits, cache } = runWithCache(model, batch, { names: [...new Set([site, outSite])] });
        const x = cache.get(site);
        const target = cache.get(outSite);
        ceClean += ce(logits, batch);
        logits.dispose();
        // Metrics of the SAE on the clean activations.
        const acts = sae.encode(x);
        const recon = sae.forward(x);
        const a = acts.dataSync() as Float32Array;
        const r = recon.dataSync() as Float32Array;
        const t = target.dataSync() as Float32Array;
        acts.dispose();
        recon.dispose();
        for (let i = 0; i < a.length; i++) if (a[i] !== 0) { fire[i % n]++; active++; }
        for (let i = 0; i < t.length; i++) {
          sumT[i % dOut] += t[i]!;
          sumT2 += t[i]! * t[i]!;
          sumE2 += (t[i]! - r[i]!) ** 2;
        }
        tokens += t.length / dOut;
        cache.dispose();
        const spliced = runWithHooks(model, batch, { hooks: saeHooks(sae, { site }) });
        ceSae += ce(spliced, batch);
        spliced.dispose();
        const zero = runWithHooks(model, batch, { hooks: [[outSite, (y) => mul(y, 0)]] });
        ceZero += ce(zero, batch);
        zero.dispose();
        batches++;
        done += take;
      } finally {
        batch.dispose();
      }
    } finally {
      ids.dispose();
    }
    if (done >= want) break;
  }
  let mean2 = 0;
  for (let j = 0; j < dOut; j++) mean2 += (sumT[j]! / tokens) ** 2;
  const totalVar = sumT2 - tokens * mean2;
  const density = Array.from(fire, (f) => f / tokens);
  const bins = o.bins ?? 16;
  const lo = -8;
  const edges = Array.from({ length: bins + 1 }, (_, i) => lo + (i * -lo) / bins);
  const counts = new Array<number>(bins).fill(0);
  let dead = 0;
  for (const d of density) {
    if (d === 0) { dead++; continue; }
    const b = Math.min(bins - 1, Math.max(0, Math.floor(((Math.log10(d) - lo) / -lo) * bins)));
    counts[b]!++;
  }
  const dense = density.filter((d) => d > (o.denseThreshold ?? 0.1)).length;
  const c0 = ceClean / batches;
  const cs = ceSae / batches;
  const cz = ceZero / batches;
  return {
    site, tokens, l0: active / tokens, fvu: sumE2 / totalVar, mse: sumE2 / tokens,
    ce_clean: c0, ce_sae: cs, ce_zero_ablation: cz, ce_loss_recovered: (cz - cs) / (cz - c0),
    dead_fraction: dead / n, dense_fraction: dense / n, feature_density: density,
    density_histogram: { edges, counts, dead },
  };
}
