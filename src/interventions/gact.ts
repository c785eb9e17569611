// Concept-specific steering that picks its vector per input.
//  G-ACT (Sharma & Raman 2025, "Steering Conceptual Bias via Transformer Latent-Subspace
//  Activation", arXiv 2506.18887: gradient-refined adaptive activation steering): per layer, the
//  per-prompt activation differences d_i = a(positive_i) − a(negative_i) are clustered (k-means)
//  into k concept-specific steering vectors (the cluster means); a small linear probe per layer
//  (softmax regression trained by gradient descent) learns to predict a prompt's cluster from the
//  activation; at inference the probe reads the residual at the last position and the chosen
//  cluster's vector is added (× strength) to that sequence at that layer.
//  Concept directions from a labelled set (the physics-steering recipe): for each label, the mean
//  activation of its texts minus the mean of all other texts, injected at one layer with a
//  strength.
// Activations are read with the steering-vector reader (steering-vectors.ts: left-padded batches,
// 'last' / 'mean' / index positions) at [batch, pos, d] hook points.
import type { HookFilter, HookFn } from '../models/hook-point.js';
import { Rng, tensor } from '../ops/creation.js';
import { add } from '../ops/elementwise.js';
import type { CausalLM } from '../models/model.js';
import type { Tensor } from '../tensor/tensor.js';
import type { EncodedText } from './contrastive.js';
import { InterventionError, type Intervention } from './intervention.js';
import { collectActivations, hookFor, type ReadPosition } from './steering-vectors.js';

const dist2 = (a: ArrayLike<number>, b: ArrayLike<number>) => { let s = 0; for (let i = 0; i < a.length; i++) s += (a[i]! - b[i]!) ** 2; return s; };

/**
 * k-means with k-means++ seeding (seeded), Lloyd iterations until no assignment changes.
 * Hand-written: ~30 lines over a few dozen rows; the npm packages would add a dependency for it.
 */
export function kMeans(rows: readonly Float32Array[], k: number, seed = 0, maxIter = 100): { centroids: Float32Array[]; assign: number[] } {
  if (k < 1 || k > rows.length) throw new RangeError(`k-means: k must be 1..${rows.length} (the number of rows), got ${k}`);
  const rng = new Rng(seed);
  const D = rows[0]!.length;
  const centroids: Float32Array[] = [Float32Array.from(rows[Math.floor(rng.uniform() * rows.length)]!)];
  while (centroids.length < k) {
    const d = rows.map((r) => Math.min(...centroids.map((c) => dist2(r, c))));
    const total = d.reduce((a, b) => a + b, 0);
    let u = rng.uniform() * total;
    let pick = rows.length - 1;
    for (let i = 0; i < rows.length; i++) { u -= d[i]!; if (u <= 0) { pick = i; break; } }
    centroids.push(Float32Array.from(rows[pick]!));
  }
  let assign = new Array<number>(rows.length).fill(-1);
  for (let it = 0; it < maxIter; it++) {
    const next = rows.map((r) => { let b = 0; for (let c = 1; c < k; c++) if (dist2(r, centroids[c]!) < dist2(r, centroids[b]!)) b = c; return b; });
    const changed = next.some((a, i) => a !== assign[i]);
    assign = next;
    for (let c = 0; c < k; c++) {
      const members = rows.filter((_, i) => assign[i] === c);
      if (members.length === 0) continue;
      const m = new Float32Array(D);
      for (const r of members) for (let j = 0; j < D; j++) m[j]! += r[j]! / members.length;
      centroids[c] = m;
    }
    if (!changed) break;
  }
  return { centroids, assign };
}

/** A softmax-regression probe: logits = W x / scale + b. */
export interface LinearProbe {
  weights: Float32Array[]; // [k][d]
  bias: Float32Array; // [k]
  /** Inputs are divided by this (the mean activation norm) to keep training well conditioned. */
  scale: number;
  trainAccuracy: number;
}

/** Trains a softmax-regression probe by full-batch gradient descent (cross-entropy + L2). Hand-written: a tiny dense problem. */
export function trainProbe(xs: readonly Float32Array[], ys: readonly number[], k: number, o: { epochs?: number; lr?: number; l2?: number } = {}): LinearProbe {
  const D = xs[0]!.length;
  const n = xs.length;
  const scale = xs.reduce((s, x) => s + Math.sqrt(x.reduce((a, v) => a + v * v, 0)), 0) / n / Math.sqrt(D) || 1;
  const W = Array.from({ length: k }, () => new Float64Array(D));
  const b = new Float64Array(k);
  const lr = o.lr ?? 0.5;
  const l2 = o.l2 ?? 1e-3;
  const probs = (x: Float32Array) => {
    const z = W.map((w, c) => { let s = b[c]!; for (let j = 0; j < D; j++) s += (w[j]! * x[j]!) / scale; return s; });
    const m = Math.max(...z);
    const e = z.map((v) => Math.exp(v - m));
    const t = e.reduce((a, v) => a + v, 0);
    return e.map((v) => v / t);
  };
  for (let ep = 0; ep < (o.epochs ?? 300); ep++) {
    const gW = W.map(() => new Float64Array(D));
    const gb = new Float64Array(k);
    xs.forEach((x, i) => {
      const p = probs(x);
      for (let c = 0; c < k; c++) {
        const g = (p[c]! - (ys[i] === c ? 1 : 0)) / n;
        gb[c]! += g;
        for (let j = 0; j < D; j++) gW[c]![j]! += (g * x[j]!) / scale;
      }
    });
    for (let c = 0; c < k; c++) {
      b[c]! -= lr * gb[c]!;
      for (let j = 0; j < D; j++) W[c]![j]! -= lr * (gW[c]![j]! + l2 * W[c]![j]!);
    }
  }
  const correct = xs.filter((x, i) => { const p = probs(x); return p.indexOf(Math.max(...p)) === ys[i]; }).length;
  return { weights: W.map((w) => Float32Array.from(w)), bias: Float32Array.from(b), scale, trainAccuracy: correct / n };
}

/** The probe's class for one activation. */
export function probeClass(p: LinearProbe, x: ArrayLike<number>): number {
  let best = 0;
  let bestZ = -Infinity;
  p.weights.forEach((w, c) => {
    let z = p.bias[c]!;
    for (let j = 0; j < w.length; j++) z += (w[j]! * x[j]!) / p.scale;
    if (z > bestZ) { bestZ = z; best = c; }
  });
  return best;
}

export interface GactLayer {
  layer: number;
  hook: string;
  /** The k concept-specific steering vectors (cluster means of the per-prompt differences). */
  vectors: Float32Array[];
  /** Cluster of each training prompt. */
  assign: number[];
  probe: LinearProbe;
}

/** G-ACT per layer from contrastive pairs: clusters of the differences, and the probe that predicts them from the prompt's activation. */
export function gact(
  model: CausalLM, pairs: readonly { positive: EncodedText; negative: EncodedText }[],
  o: { layers: number[]; k: number; hook?: string; read?: ReadPosition; seed?: number; epochs?: number },
): GactLayer[] {
  if (pairs.length < o.k) throw new InterventionError(`G-ACT: ${pairs.length} pairs cannot make ${o.k} clusters`);
  const template = o.hook ?? 'blocks.{layer}.hook_resid_post';
  const hooks = o.layers.map((l) => hookFor(template, l));
  const read = o.read ?? 'last';
  const pos = collectActivations(model, pairs.map((p) => p.positive), hooks, read);
  const neg = collectActivations(model, pairs.map((p) => p.negative), hooks, read);
  return o.layers.map((layer, li) => {
    const hook = hooks[li]!;
    const P = pos.get(hook)!;
    const N = neg.get(hook)!;
    const diffs = P.map((p, i) => Float32Array.from(p, (v, j) => v - N[i]![j]!));
    const { centroids, assign } = kMeans(diffs, o.k, o.seed ?? 0);
    // The probe sees the prompt as it is at inference: the negative (unsteered) activation.
    const probe = trainProbe(N, assign, o.k, { epochs: o.epochs });
    return { layer, hook, vectors: centroids, assign, probe };
  });
}

/** Hooks that add, per sequence, strength × the vector its probe picks at the last position (every call, generation steps included). */
export function gactHooks(layers: readonly GactLayer[], strength: number, onPick?: (layer: number, row: number, cluster: number) => void): [HookFilter, HookFn][] {
  if (!Number.isFinite(strength)) throw new InterventionError(`G-ACT: strength must be finite, got ${strength}`);
  return layers.map((g) => [g.hook, (x: Tensor) => {
    const [B, T, D] = x.shape as [number, number, number];
    const last = x.narrow(1, T - 1, 1).dataSync();
    const add1 = new Float32Array(B * D);
    for (let r = 0; r < B; r++) {
      const c = probeClass(g.probe, last.subarray(r * D, (r + 1) * D));
      onPick?.(g.layer, r, c);
      for (let j = 0; j < D; j++) add1[r * D + j] = strength * g.vectors[c]![j]!;
    }
    return add(x, tensor(add1, [B, 1, D], x.dtype, { backend: x.backend }));
  }]);
}

/**
 * Concept directions from a labelled set: for each label, mean(activation of its texts) − mean(of
 * every other text), at `hook`.
 */
export function conceptDirections(model: CausalLM, items: readonly { text: EncodedText; label: string }[], hook: string, read: ReadPosition = 'last'): Map<string, Float32Array> {
  const labels = [...new Set(items.map((i) => i.label))];
  if (labels.length < 2) throw new InterventionError(`concept directions need at least two labels, got ${labels.length === 0 ? 'an empty set' : `only '${labels[0]}'`}`);
  const acts = collectActivations(model, items.map((i) => i.text), [hook], read).get(hook)!;
  const D = acts[0]!.length;
  const out = new Map<string, Float32Array>();
  for (const l of labels) {
    const a = new Float64Array(D);
    const r = new Float64Array(D);
    let na = 0;
    let nr = 0;
    items.forEach((it, i) => {
      const t = it.label === l ? a : r;
      for (let j = 0; j < D; j++) t[j]! += acts[i]![j]!;
      if (it.label === l) na++; else nr++;
    });
    out.set(l, Float32Array.from(a, (v, j) => v / na - r[j]! / nr));
  }
  return out;
}

/** The 'add' intervention that injects a concept direction at `hook` with `strength`. */
export function conceptIntervention(direction: Float32Array, hook: string, strength: number, label?: string): Intervention {
  return { hook, op: 'add', vector: direction, strength, ...(label ? { name: `concept ${label}` } : {}) };
}
