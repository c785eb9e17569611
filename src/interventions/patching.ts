// Activation patching and attribution patching (Nanda 2023, "Attribution Patching: Activation
// Patching At Industrial Scale"; Syed et al. 2023). Both measure how much each site matters to a
// metric when the clean run's activation there is replaced by the corrupted run's:
//   activation patching: metric(clean run with a_corrupt patched in at the site) − metric(clean)
//   attribution patching: (a_corrupt − a_clean) · ∂metric/∂a, evaluated at the clean run
// over residual positions (blocks.{l}.hook_resid_pre × pos), attention heads (attn.hook_z per
// head, all positions) and MLP neurons (mlp.hook_post per neuron, all positions).
import { pearson } from '../analysis/stats.js';
import { gradAtDevice } from '../hooks/grad.js';
import { readAsync, readSync, type Reads } from '../tensor/read.js';
import { blockHook, Hooks, type HookFilter, type HookFn } from '../models/hook-point.js';
import { runWithCache } from '../hooks/run.js';
import { mul, sub, where } from '../ops/elementwise.js';
import { tensor } from '../ops/creation.js';
import { sum } from '../ops/reduce.js';
import type { CausalLM } from '../models/model.js';
import { ShapeError } from '../tensor/errors.js';
import { tidy } from '../tensor/engine.js';
import type { Tensor } from '../tensor/tensor.js';

export type PatchSite = 'resid' | 'heads' | 'neurons';

export interface PatchingResult {
  site: PatchSite;
  /** Rows are layers; columns are positions (resid), heads or neurons. */
  effects: Float32Array[];
  labels: { rows: string[]; cols: string[] };
  cleanMetric: number;
  corruptMetric: number;
}

/** The hook point whose activation a site patches, and the axis (in [batch, pos, ...]) that selects the unit. */
function siteHook(site: PatchSite, layer: number): { name: string; unitAxis: number | null } {
  switch (site) {
    case 'resid': return { name: blockHook(layer, 'hook_resid_pre'), unitAxis: 1 };
    case 'heads': return { name: blockHook(layer, 'attn.hook_z'), unitAxis: 2 };
    case 'neurons': return { name: blockHook(layer, 'mlp.hook_post'), unitAxis: 2 };
  }
}

function units(model: CausalLM, site: PatchSite, pos: number): number {
  return site === 'resid' ? pos : site === 'heads' ? model.dims.nHeads : model.dims.dMlp;
}

function checkPair(clean: Tensor, corrupt: Tensor): void {
  if (clean.dtype !== 'i32' || corrupt.dtype !== 'i32' || clean.rank !== 2 || clean.shape.join() !== corrupt.shape.join() || clean.shape[0] !== 1) {
    throw new ShapeError(`patching: clean and corrupted inputs must both be i32[1, pos] of one length, got ${clean.dtype}[${clean.shape}] and ${corrupt.dtype}[${corrupt.shape}]`);
  }
}

/** u8 mask over `shape` selecting index `u` along `axis` (all other indices). */
function unitMask(shape: readonly number[], axis: number, u: number, like: Tensor): Tensor {
  const bshape = shape.map((d, i) => (i === axis ? d : 1));
  const m = new Uint8Array(shape[axis]!);
  m[u] = 1;
  return tensor(m, bshape, 'u8', { backend: like.backend });
}

/**
 * Activation patching: for every layer and unit, the clean run with that unit's activation
 * replaced by the corrupted run's; effect = metric(patched) − metric(clean). Each patched run
 * starts at the patched layer from the cached clean residual. `layers` and `unitsFilter` restrict
 * the sweep (a full neuron sweep costs layers × d_mlp forward passes).
 */
export function activationPatching(
  model: CausalLM, clean: Tensor, corrupt: Tensor, metric: (logits: Tensor) => Tensor, site: PatchSite,
  o: { layers?: number[]; units?: (layer: number) => number[] } = {},
): PatchingResult {
  return readSync(activationPatchingReads(model, clean, corrupt, metric, site, o));
}

/** `activationPatching` on any backend (WebGPU included): each metric is read asynchronously. */
export function activationPatchingAsync(
  model: CausalLM, clean: Tensor, corrupt: Tensor, metric: (logits: Tensor) => Tensor, site: PatchSite,
  o: { layers?: number[]; units?: (layer: number) => number[] } = {},
): Promise<PatchingResult> {
  return readAsync(activationPatchingReads(model, clean, corrupt, metric, site, o));
}

/** The metric of `logits` as a number, read through the driver (src/tensor/read.ts). */
function* readMetric(metric: (logits: Tensor) => Tensor, logits: () => Tensor): Reads<number> {
  const m = tidy(() => metric(logits()));
  try {
    return (yield m)[0]!;
  } finally {
    m.dispose();
  }
}

function* activationPatchingReads(
  model: CausalLM, clean: Tensor, corrupt: Tensor, metric: (logits: Tensor) => Tensor, site: PatchSite,
  o: { layers?: number[]; units?: (layer: number) => number[] },
): Reads<PatchingResult> {
  checkPair(clean, corrupt);
  const L = model.dims.nLayers;
  const layers = o.layers ?? [...Array(L).keys()];
  const names = layers.flatMap((l) => [siteHook(site, l).name, blockHook(l, 'hook_resid_pre')]);
  const c = runWithCache(model, clean, { names: [...new Set(names)] });
  const k = runWithCache(model, corrupt, { names: layers.map((l) => siteHook(site, l).name) });
  try {
    const cleanMetric = yield* readMetric(metric, () => c.logits);
    const corruptMetric = yield* readMetric(metric, () => k.logits);
    const pos = clean.shape[1]!;
    const effects: Float32Array[] = [];
    for (const l of layers) {
      const { name, unitAxis } = siteHook(site, l);
      const a = k.cache.get(name);
      const resid = c.cache.get(blockHook(l, 'hook_resid_pre'));
      const list = o.units?.(l) ?? [...Array(units(model, site, pos)).keys()];
      const out = new Float32Array(units(model, site, pos)).fill(NaN);
      for (const u of list) {
        const mask = unitMask(a.shape, unitAxis!, u, a);
        const patch = (t: Tensor) => where(mask, a, t);
        const hooks = new Hooks([[name, patch]]);
        // Start at the patched block from the cached clean residual (block 0 starts from the ids).
        try {
          out[u] = (yield* readMetric(metric, () => (l === 0 ? model.forward(clean, { hooks }) : model.forward(resid, { startAtLayer: l, hooks })))) - cleanMetric;
        } finally {
          mask.dispose();
        }
      }
      effects.push(out);
    }
    return { site, effects, labels: labelsFor(model, site, layers, pos), cleanMetric, corruptMetric };
  } finally {
    for (const r of [c, k]) { r.logits.dispose(); r.cache.dispose(); }
  }
}

/**
 * Attribution patching: one clean forward and backward, one corrupted forward; effect of a unit
 * = Σ over its entries of (a_corrupt − a_clean) · ∂metric/∂a at the clean run.
 */
export function attributionPatching(
  model: CausalLM, clean: Tensor, corrupt: Tensor, metric: (logits: Tensor) => Tensor, site: PatchSite,
  o: { layers?: number[]; cleanHooks?: readonly (readonly [HookFilter, HookFn])[] } = {},
): PatchingResult {
  return readSync(attributionPatchingReads(model, clean, corrupt, metric, site, o));
}

/** `attributionPatching` on any backend (WebGPU included): metrics and effects are read asynchronously. */
export function attributionPatchingAsync(
  model: CausalLM, clean: Tensor, corrupt: Tensor, metric: (logits: Tensor) => Tensor, site: PatchSite,
  o: { layers?: number[]; cleanHooks?: readonly (readonly [HookFilter, HookFn])[] } = {},
): Promise<PatchingResult> {
  return readAsync(attributionPatchingReads(model, clean, corrupt, metric, site, o));
}

function* attributionPatchingReads(
  model: CausalLM, clean: Tensor, corrupt: Tensor, metric: (logits: Tensor) => Tensor, site: PatchSite,
  o: { layers?: number[]; cleanHooks?: readonly (readonly [HookFilter, HookFn])[] },
): Reads<PatchingResult> {
  checkPair(clean, corrupt);
  const layers = o.layers ?? [...Array(model.dims.nLayers).keys()];
  const names = layers.map((l) => siteHook(site, l).name);
  // `cleanHooks` change what the clean backward computes (RelP's LRP rules, ./relp.ts).
  const g = model.withHooks(o.cleanHooks ?? [], () => gradAtDevice(model, clean, metric, names, { activations: true }));
  const k = runWithCache(model, corrupt, { names });
  try {
    const cleanMetric = (yield g.metric)[0]!;
    const corruptMetric = yield* readMetric(metric, () => k.logits);
    const pos = clean.shape[1]!;
    const effects: Float32Array[] = [];
    for (const l of layers) {
      const t = tidy(() => {
        const { name, unitAxis } = siteHook(site, l);
        const prod = mul(sub(k.cache.get(name), g.activations!.get(name)!), g.grads.get(name)!); // [1, pos, ...]
        // Sum every axis but the unit axis.
        let r: Tensor = prod;
        for (let ax = prod.rank - 1; ax >= 0; ax--) if (ax !== unitAxis) r = sum(r, ax, { keepDims: true });
        return r;
      });
      try {
        effects.push(Float32Array.from(yield t));
      } finally {
        t.dispose();
      }
    }
    return { site, effects, labels: labelsFor(model, site, layers, pos), cleanMetric, corruptMetric };
  } finally {
    k.logits.dispose();
    k.cache.dispose();
    g.metric.dispose();
    for (const t of [...g.grads.values(), ...(g.activations?.values() ?? [])]) t.dispose();
  }
}

function labelsFor(model: CausalLM, site: PatchSite, layers: number[], pos: number): { rows: string[]; cols: string[] } {
  const n = units(model, site, pos);
  const prefix = site === 'resid' ? 'pos' : site === 'heads' ? 'H' : 'N';
  return { rows: layers.map((l) => `L${l}`), cols: Array.from({ length: n }, (_, i) => `${prefix}${i}`) };
}

/** Pearson correlation of two effect maps (NaN entries skipped): how well attribution tracks activation patching. */
export function correlation(a: PatchingResult, b: PatchingResult): number {
  const xs: number[] = [];
  const ys: number[] = [];
  a.effects.forEach((row, i) => row.forEach((x, j) => {
    const y = b.effects[i]![j]!;
    if (Number.isFinite(x) && Number.isFinite(y)) { xs.push(x); ys.push(y); }
  }));
  return pearson(xs, ys);
}
