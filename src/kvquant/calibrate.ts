// KVQuant's offline calibration: run the model on calibration text, record every layer's keys
// (before and after RoPE) and values with the gradient of the language-model loss at them
// (actlab's autograd, `gradAt`), and fit what the cache needs that cannot be computed online:
//   - per-channel key ranges: the share/2 and 1 − share/2 percentiles of each channel (min and max
//     when no outliers are kept); values beyond them are the outliers kept exact;
//   - per-token outlier threshold tau: the 1 − share quantile of |x − median(token row)| (KVQuant
//     takes per-token quantiles online; with rows of a few dozen values a per-token 1% is less
//     than one value, so the threshold is calibrated per layer and applied online to each token);
//   - the nuq codebook per layer and stream: 2^bits centroids of the normalised values (outliers
//     left out) by k-means weighted with the Fisher information, the squared gradient of the loss
//     at each value (the paper's sensitivity-weighted k-means, 50 Lloyd iterations).
// Not for: the online quantization (cache.ts, codec.ts).
import { tensor } from '../ops/creation.js';
import type { Tensor } from '../tensor/tensor.js';
import type { CausalLM } from '../models/model.js';
import { gradAtDevice } from '../hooks/grad.js';
import { crossEntropy } from '../train/loss.js';
import type { KVCalibration, KVStreamCalibration, ResolvedKVSpec } from '../models/kvquant/spec.js';

export type { KVCalibration, KVStreamCalibration };

export interface KVLayerStats {
  keysPre: Float32Array; // [tokens, R]
  keysPost?: Float32Array; // [tokens, R] (rotary models)
  values: Float32Array; // [tokens, R]
  fisherKeysPre: Float32Array;
  fisherKeysPost?: Float32Array;
  fisherValues: Float32Array;
}

export interface KVStats {
  /** Values per row (kv_head · d_head). */
  R: number;
  tokens: number;
  rotary: boolean;
  layers: KVLayerStats[];
}

/** Calibration tokens a spec needs: 64, and enough that each tail of a 1% share holds a token. */
export function minCalibrationTokens(outliers: number): number {
  return Math.max(64, outliers > 0 ? Math.ceil(2 / outliers) : 0);
}

/**
 * Records keys, values and their Fisher information over `ids`, cut into sequences of `ctx`
 * tokens (default min(model context, 256)). Holds 6 · layers · tokens · R floats.
 */
export function collectKV(model: CausalLM, ids: readonly number[], o: { ctx?: number } = {}): KVStats {
  const g = collectSteps(model, ids, o);
  for (let s = g.next(); ; s = g.next(s.value.dataSync() as Float32Array)) if (s.done) return s.value;
}

/** collectKV on a backend that reads its buffers asynchronously (webgpu). */
export async function collectKVAsync(model: CausalLM, ids: readonly number[], o: { ctx?: number } = {}): Promise<KVStats> {
  const g = collectSteps(model, ids, o);
  for (let s = g.next(); ; s = g.next((await s.value.data()) as Float32Array)) if (s.done) return s.value;
}

/** collectKV's work; yields each tensor to read and takes its values (sync or async reads). */
function* collectSteps(model: CausalLM, ids: readonly number[], o: { ctx?: number }): Generator<Tensor, KVStats, Float32Array> {
  const ctx = o.ctx ?? Math.min(model.dims.nCtx, 256);
  const L = model.dims.nLayers;
  const names = (i: number) => [`blocks.${i}.attn.hook_k`, `blocks.${i}.attn.hook_rot_k`, `blocks.${i}.attn.hook_v`];
  const have = new Set(model.hookPoints().map((h) => h.name));
  const rotary = have.has('blocks.0.attn.hook_rot_k');
  const want = Array.from({ length: L }, (_, i) => names(i).filter((n) => have.has(n))).flat();
  const seqs: number[][] = [];
  for (let s = 0; s + 2 <= ids.length; s += ctx) seqs.push(ids.slice(s, s + ctx) as number[]);
  const tokens = seqs.reduce((a, s) => a + s.length, 0);
  let R = 0;
  const acc = new Map<string, { x: Float32Array; f: Float32Array; at: number }>();
  for (const seq of seqs) {
    const input = tensor(seq, [1, seq.length], 'i32', { backend: model.backend });
    const targets = tensor(seq.slice(1), [1, seq.length - 1], 'i32', { backend: model.backend });
    try {
      // the loss stays on the device (no read: backends that read asynchronously run it too)
      const r = gradAtDevice(model, input, (logits) => crossEntropy(logits.narrow(1, 0, seq.length - 1), targets), want, { activations: true });
      r.metric.dispose();
      for (const n of want) {
        const a = r.activations!.get(n)!, g = r.grads.get(n);
        const x = yield a;
        const gx = g ? yield g : new Float32Array(x.length);
        R = a.shape[2]! * a.shape[3]!;
        let e = acc.get(n);
        if (!e) acc.set(n, e = { x: new Float32Array(tokens * R), f: new Float32Array(tokens * R), at: 0 });
        e.x.set(x, e.at);
        for (let i = 0; i < gx.length; i++) e.f[e.at + i] = gx[i]! * gx[i]!;
        e.at += x.length;
      }
      for (const t of r.activations!.values()) t.dispose();
      for (const t of r.grads.values()) t.dispose();
    } finally {
      input.dispose();
      targets.dispose();
    }
  }
  const layers = Array.from({ length: L }, (_, i): KVLayerStats => {
    const [k, rk, v] = names(i).map((n) => acc.get(n));
    return { keysPre: k!.x, fisherKeysPre: k!.f, keysPost: rk?.x, fisherKeysPost: rk?.f, values: v!.x, fisherValues: v!.f };
  });
  return { R, tokens, rotary, layers };
}

/** Linear-interpolated quantile of sorted values (numpy's default). */
function quantile(sorted: ArrayLike<number>, q: number): number {
  const p = q * (sorted.length - 1);
  const i = Math.floor(p), f = p - i;
  return i + 1 < sorted.length ? sorted[i]! * (1 - f) + sorted[i + 1]! * f : sorted[i]!;
}

function medianOf(xs: Float32Array): number {
  const s = Float64Array.from(xs).sort();
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/**
 * 1-D k-means of `xs` weighted by `ws` (all-zero weights count as 1): centroids start at the
 * weighted quantiles (k + 0.5) / K and move by Lloyd's iterations; returns them sorted.
 */
export function weightedKMeans(xs: ArrayLike<number>, ws: ArrayLike<number>, K: number, iters = 50): number[] {
  const n = xs.length;
  if (n === 0) return Array.from({ length: K }, (_, k) => -1 + (2 * k + 1) / K);
  const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => xs[a]! - xs[b]!);
  const x = Float64Array.from(order, (i) => xs[i]!);
  let wsum = 0;
  for (let i = 0; i < n; i++) wsum += ws[i]!;
  const w = Float64Array.from(order, (i) => (wsum > 0 ? ws[i]! : 1));
  const total = wsum > 0 ? wsum : n;
  const cent = new Float64Array(K);
  let acc = 0, k = 0;
  for (let i = 0; i < n && k < K; i++) {
    acc += w[i]!;
    while (k < K && acc >= ((k + 0.5) / K) * total) cent[k++] = x[i]!;
  }
  for (; k < K; k++) cent[k] = x[n - 1]!;
  for (let it = 0; it < iters; it++) {
    cent.sort();
    const sw = new Float64Array(K), sx = new Float64Array(K);
    let c = 0;
    for (let i = 0; i < n; i++) {
      while (c + 1 < K && x[i]! > (cent[c]! + cent[c + 1]!) / 2) c++;
      sw[c] += w[i]!; sx[c] += w[i]! * x[i]!;
    }
    let moved = false;
    for (let j = 0; j < K; j++) {
      if (sw[j]! > 0) { const m = sx[j]! / sw[j]!; if (m !== cent[j]) { cent[j] = m; moved = true; } }
    }
    if (!moved) break;
  }
  return Array.from(cent).sort((a, b) => a - b);
}

/** Per-token normalisation of rows of R: (x − mid) / half-range over the row's non-outliers. */
function perToken(x: Float32Array, f: Float32Array, R: number, share: number): { tau?: number; xs: number[]; ws: number[] } {
  const rows = x.length / R;
  let tau: number | undefined;
  const dev = new Float32Array(x.length);
  const meds = new Float32Array(rows);
  for (let t = 0; t < rows; t++) {
    meds[t] = medianOf(x.subarray(t * R, (t + 1) * R));
    for (let c = 0; c < R; c++) dev[t * R + c] = Math.abs(x[t * R + c]! - meds[t]!);
  }
  if (share > 0) tau = quantile(Float32Array.from(dev).sort(), 1 - share);
  const xs: number[] = [], ws: number[] = [];
  for (let t = 0; t < rows; t++) {
    let mn = Infinity, mx = -Infinity;
    for (let c = 0; c < R; c++) {
      if (tau !== undefined && dev[t * R + c]! > tau) continue;
      mn = Math.min(mn, x[t * R + c]!); mx = Math.max(mx, x[t * R + c]!);
    }
    const mid = (mx + mn) / 2, half = (mx - mn) / 2;
    if (!(half > 0)) continue;
    for (let c = 0; c < R; c++) {
      if (tau !== undefined && dev[t * R + c]! > tau) continue;
      xs.push((x[t * R + c]! - mid) / half); ws.push(f[t * R + c]!);
    }
  }
  return { tau, xs, ws };
}

/** Fits the calibration a resolved kvquant spec needs from recorded statistics. */
export function fitKV(stats: KVStats, spec: ResolvedKVSpec): KVCalibration {
  const need = minCalibrationTokens(spec.outliers);
  if (stats.tokens < need) {
    throw new RangeError(`calibration: ${stats.tokens} tokens are too few for kvquant with ${+(100 * spec.outliers).toFixed(2)}% outliers: need at least ${need}`);
  }
  const { R } = stats;
  const K = 1 << spec.bits;
  const layers = stats.layers.map((l) => {
    const post = !spec.preRope && stats.rotary;
    const kx = post ? l.keysPost! : l.keysPre;
    const kf = post ? l.fisherKeysPost! : l.fisherKeysPre;
    let keys: KVStreamCalibration;
    if (spec.keys === 'per-channel') {
      const rows = kx.length / R;
      const lo: number[] = [], hi: number[] = [];
      const col = new Float32Array(rows);
      for (let c = 0; c < R; c++) {
        for (let t = 0; t < rows; t++) col[t] = kx[t * R + c]!;
        col.sort();
        lo.push(quantile(col, spec.outliers / 2));
        hi.push(quantile(col, 1 - spec.outliers / 2));
      }
      keys = { lo, hi };
      if (spec.nuq) {
        const xs: number[] = [], ws: number[] = [];
        for (let t = 0; t < rows; t++) {
          for (let c = 0; c < R; c++) {
            const v = kx[t * R + c]!, half = (hi[c]! - lo[c]!) / 2;
            if (v < lo[c]! || v > hi[c]! || !(half > 0)) continue;
            xs.push((v - (hi[c]! + lo[c]!) / 2) / half); ws.push(kf[t * R + c]!);
          }
        }
        keys.lut = weightedKMeans(xs, ws, K);
      }
    } else {
      const p = perToken(kx, kf, R, spec.outliers);
      keys = { tau: p.tau, ...(spec.nuq ? { lut: weightedKMeans(p.xs, p.ws, K) } : {}) };
    }
    const pv = perToken(l.values, l.fisherValues, R, spec.outliers);
    const values: KVStreamCalibration = { tau: pv.tau, ...(spec.nuq ? { lut: weightedKMeans(pv.xs, pv.ws, K) } : {}) };
    return { keys, values };
  });
  return { bits: spec.bits, keys: spec.keys, preRope: spec.preRope, nuq: spec.nuq, outliers: spec.outliers, tokens: stats.tokens, layers };
}

/** collectKV then fitKV: the calibration of one spec. */
export function calibrateKV(model: CausalLM, ids: readonly number[], spec: ResolvedKVSpec, o: { ctx?: number } = {}): KVCalibration {
  const need = minCalibrationTokens(spec.outliers);
  if (ids.length < need) {
    throw new RangeError(`calibration: ${ids.length} tokens are too few for kvquant with ${+(100 * spec.outliers).toFixed(2)}% outliers: need at least ${need}`);
  }
  return fitKV(collectKV(model, ids, o), spec);
}

/** calibrateKV on a backend that reads its buffers asynchronously (webgpu). */
export async function calibrateKVAsync(model: CausalLM, ids: readonly number[], spec: ResolvedKVSpec, o: { ctx?: number } = {}): Promise<KVCalibration> {
  const need = minCalibrationTokens(spec.outliers);
  if (ids.length < need) {
    throw new RangeError(`calibration: ${ids.length} tokens are too few for kvquant with ${+(100 * spec.outliers).toFixed(2)}% outliers: need at least ${need}`);
  }
  return fitKV(await collectKVAsync(model, ids, o), spec);
}
