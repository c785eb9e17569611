// Probes on activations: a multinomial logistic regression (softmax, L2 penalty, trained with
// actlab's autograd and Adam on the whole training split) and a linear probe (ridge regression
// onto one-hot targets, solved in closed form), with features standardised on the training split
// and a train/test split; and per-layer accuracy curves over the hooks of an activation store,
// with labels read from the store's tokens (current, previous or next token; whether the token
// already appeared in its context).
// Not for: SAEs (src/sae).
import type { Backend } from '../tensor/backend.js';
import { valueAndGrad } from '../autograd/tape.js';
import { Rng } from '../ops/creation.js';
import { add, mul, square } from '../ops/elementwise.js';
import { matmul } from '../ops/linalg.js';
import { sum } from '../ops/reduce.js';
import type { ActivationStore } from '../store/reader.js';
import { crossEntropy } from '../train/loss.js';
import { AdamW } from '../train/optim.js';
import { getBackend } from '../tensor/engine.js';
import { Tensor } from '../tensor/tensor.js';

export type ProbeKind = 'logistic' | 'linear';

export interface ProbeOptions {
  kind?: ProbeKind;
  /** L2 penalty: logistic, λ·‖W‖² added to the mean cross-entropy; linear, the ridge λ (default 1e-3). */
  l2?: number;
  /** Logistic: Adam steps over the whole training split (default 300) and learning rate (default 0.05). */
  steps?: number;
  lr?: number;
  /** Fraction of rows held out (default 0.2); or give `testMask`. */
  testFraction?: number;
  /** 1 = test row (e.g. whole contexts held out). */
  testMask?: Uint8Array;
  seed?: number;
  backend?: Backend;
}

export interface ProbeResult {
  kind: ProbeKind;
  classes: number;
  trainAccuracy: number;
  testAccuracy: number;
  /** Accuracy of always answering the training split's most frequent class, on the test split. */
  baselineAccuracy: number;
  train: number;
  test: number;
  /** Weights on standardised features [d, classes], bias [classes], and the standardisation. */
  weights: Float32Array;
  bias: Float32Array;
  mean: Float32Array;
  std: Float32Array;
}

/** Fits a probe of labels y (0..classes-1) [n] on x [n, d]. */
export function trainProbe(x: Float32Array, y: Int32Array, d: number, classes: number, o: ProbeOptions = {}): ProbeResult {
  const n = y.length;
  if (x.length !== n * d) throw new Error(`trainProbe: x has ${x.length} values, expected ${n} x ${d}`);
  for (let i = 0; i < n; i++) if (y[i]! < 0 || y[i]! >= classes) throw new RangeError(`trainProbe: label ${y[i]} at row ${i} is outside 0..${classes - 1}`);
  const kind = o.kind ?? 'logistic';
  const l2 = o.l2 ?? 1e-3;
  let test = o.testMask;
  if (!test) {
    const rng = new Rng(o.seed ?? 0);
    const f = o.testFraction ?? 0.2;
    test = Uint8Array.from({ length: n }, () => (rng.uniform() < f ? 1 : 0));
  }
  const tr: number[] = [];
  const te: number[] = [];
  for (let i = 0; i < n; i++) (test[i] ? te : tr).push(i);
  if (tr.length === 0 || te.length === 0) throw new Error(`trainProbe: the split leaves ${tr.length} training and ${te.length} test rows; both must be > 0`);
  const mean = new Float32Array(d);
  const std = new Float32Array(d);
  for (const i of tr) for (let j = 0; j < d; j++) mean[j] += x[i * d + j]! / tr.length;
  for (const i of tr) for (let j = 0; j < d; j++) std[j] += (x[i * d + j]! - mean[j]!) ** 2 / tr.length;
  for (let j = 0; j < d; j++) std[j] = Math.sqrt(std[j]!) || 1;
  const rows = (idx: number[]) => {
    const out = new Float32Array(idx.length * d);
    idx.forEach((i, r) => { for (let j = 0; j < d; j++) out[r * d + j] = (x[i * d + j]! - mean[j]!) / std[j]!; });
    return out;
  };
  const xtr = rows(tr);
  const xte = rows(te);
  const ytr = Int32Array.from(tr, (i) => y[i]!);
  const yte = Int32Array.from(te, (i) => y[i]!);
  const W = new Float32Array(d * classes);
  const b = new Float32Array(classes);
  if (kind === 'linear') ridge(xtr, ytr, d, classes, l2, W, b);
  else logistic(xtr, ytr, d, classes, l2, o, W, b);
  const acc = (xs: Float32Array, ys: Int32Array) => {
    let ok = 0;
    for (let r = 0; r < ys.length; r++) {
      let best = -Infinity;
      let arg = 0;
      for (let c = 0; c < classes; c++) {
        let s = b[c]!;
        for (let j = 0; j < d; j++) s += xs[r * d + j]! * W[j * classes + c]!;
        if (s > best) { best = s; arg = c; }
      }
      if (arg === ys[r]) ok++;
    }
    return ok / ys.length;
  };
  const counts = new Array<number>(classes).fill(0);
  for (const v of ytr) counts[v]!++;
  const major = counts.indexOf(Math.max(...counts));
  return {
    kind, classes, trainAccuracy: acc(xtr, ytr), testAccuracy: acc(xte, yte), baselineAccuracy: yte.filter((v) => v === major).length / yte.length,
    train: tr.length, test: te.length, weights: W, bias: b, mean, std,
  };
}

/** Ridge regression onto one-hot targets (centred, so the bias is the class frequencies), by Cholesky. */
function ridge(x: Float32Array, y: Int32Array, d: number, C: number, lambda: number, W: Float32Array, b: Float32Array): void {
  const n = y.length;
  const A = new Float64Array(d * d);
  const B = new Float64Array(d * C);
  // Features are standardised (mean 0 on this split), so the intercept separates: b_c = mean(onehot_c).
  for (let r = 0; r < n; r++) {
    for (let i = 0; i < d; i++) {
      const xi = x[r * d + i]!;
      for (let j = 0; j <= i; j++) A[i * d + j] += xi * x[r * d + j]!;
      B[i * C + y[r]!] += xi;
    }
  }
  for (let i = 0; i < d; i++) { for (let j = 0; j < i; j++) A[j * d + i] = A[i * d + j]!; A[i * d + i] += lambda * n; }
  for (let c = 0; c < C; c++) b[c] = 0;
  for (const v of y) b[v] += 1 / n;
  // Cholesky A = L Lᵀ, then solve for every class column.
  const L = new Float64Array(d * d);
  for (let i = 0; i < d; i++) {
    for (let j = 0; j <= i; j++) {
      let s = A[i * d + j]!;
      for (let k = 0; k < j; k++) s -= L[i * d + k]! * L[j * d + k]!;
      L[i * d + j] = i === j ? Math.sqrt(Math.max(s, 1e-12)) : s / L[j * d + j]!;
    }
  }
  const z = new Float64Array(d);
  for (let c = 0; c < C; c++) {
    for (let i = 0; i < d; i++) { let s = B[i * C + c]!; for (let k = 0; k < i; k++) s -= L[i * d + k]! * z[k]!; z[i] = s / L[i * d + i]!; }
    for (let i = d - 1; i >= 0; i--) { let s = z[i]!; for (let k = i + 1; k < d; k++) s -= L[k * d + i]! * W[k * C + c]!; W[i * C + c] = s / L[i * d + i]!; }
  }
}

function logistic(x: Float32Array, y: Int32Array, d: number, C: number, l2: number, o: ProbeOptions, W: Float32Array, b: Float32Array): void {
  const be = o.backend ?? getBackend();
  const n = y.length;
  const xt = Tensor.from(x, [1, n, d], 'f32', be);
  const yt = Tensor.from(y, [1, n], 'i32', be);
  const w = Tensor.from(new Float32Array(d * C), [d, C], 'f32', be);
  const bias = Tensor.from(new Float32Array(C), [C], 'f32', be);
  const params = new Map([['W', w], ['b', bias]]);
  const opt = new AdamW(params, [{ name: 'all', params: ['W', 'b'], weightDecay: 0 }]);
  const loss = valueAndGrad((W_: Tensor, b_: Tensor) => add(crossEntropy(add(matmul(xt, W_), b_), yt), mul(sum(sum(square(W_), -1), 0), l2)));
  try {
    for (let s = 0; s < (o.steps ?? 300); s++) {
      const { value, grads } = loss(w, bias);
      value.dispose();
      opt.update(new Map([['W', grads[0]!], ['b', grads[1]!]]), o.lr ?? 0.05);
      for (const g of grads) g.dispose();
    }
    W.set(w.dataSync() as Float32Array);
    b.set(bias.dataSync() as Float32Array);
  } finally {
    for (const t of [xt, yt, w, bias]) t.dispose();
    opt.dispose();
  }
}

export type ProbeLabel = 'token' | 'prev-token' | 'next-token' | 'seen-before';

export interface LayerProbeOptions extends ProbeOptions {
  label: ProbeLabel;
  /** Token labels: the most frequent tokens become the classes (default 10); rows of other tokens are left out. */
  classes?: number;
  /** Contexts read (default all). */
  contexts?: number;
}

export interface LayerProbeCurve {
  label: ProbeLabel;
  classes: number;
  /** Class index -> token id (token labels). */
  classTokens?: number[];
  layers: { hook: string; trainAccuracy: number; testAccuracy: number; baselineAccuracy: number; train: number; test: number }[];
}

/**
 * One probe per hook of the store (each a [batch, pos, d] hook), labels from the stored tokens;
 * whole contexts are held out for the test split, so no context is seen in both.
 */
export async function probeLayers(store: ActivationStore, hooks: readonly string[], o: LayerProbeOptions): Promise<LayerProbeCurve> {
  const P = store.manifest.context;
  const ctxs = Math.min(o.contexts ?? store.contexts, store.contexts);
  const tokenRows: Int32Array[] = [];
  for await (const t of store.batches({ hook: 'tokens', flatten: 'contexts', batchSize: 256, ...(o.backend ? { backend: o.backend } : {}) })) {
    tokenRows.push(t.dataSync() as Int32Array);
    t.dispose();
  }
  const ids = new Int32Array(tokenRows.reduce((s, t) => s + t.length, 0));
  let off = 0;
  for (const t of tokenRows) { ids.set(t, off); off += t.length; }
  const n = ctxs * P;
  // Labels per row; -1 drops the row.
  const raw = new Int32Array(n).fill(-1);
  for (let c = 0; c < ctxs; c++) {
    const seen = new Set<number>();
    for (let p = 0; p < P; p++) {
      const i = c * P + p;
      const t = ids[i]!;
      if (o.label === 'token') raw[i] = t;
      else if (o.label === 'prev-token') raw[i] = p > 0 ? ids[i - 1]! : -1;
      else if (o.label === 'next-token') raw[i] = p < P - 1 ? ids[i + 1]! : -1;
      else raw[i] = p === 0 ? -1 : seen.has(t) ? 1 : 0;
      seen.add(t);
    }
  }
  let classes = 2;
  let classTokens: number[] | undefined;
  const label = new Int32Array(n).fill(-1);
  if (o.label === 'seen-before') label.set(raw);
  else {
    const freq = new Map<number, number>();
    for (const t of raw) if (t >= 0) freq.set(t, (freq.get(t) ?? 0) + 1);
    classTokens = [...freq.keys()].sort((a, b) => freq.get(b)! - freq.get(a)! || a - b).slice(0, o.classes ?? 10);
    classes = classTokens.length;
    const index = new Map(classTokens.map((t, k) => [t, k]));
    for (let i = 0; i < n; i++) label[i] = index.get(raw[i]!) ?? -1;
  }
  const keep: number[] = [];
  for (let i = 0; i < n; i++) if (label[i]! >= 0) keep.push(i);
  const rng = new Rng(o.seed ?? 0);
  const testCtx = Uint8Array.from({ length: ctxs }, () => (rng.uniform() < (o.testFraction ?? 0.2) ? 1 : 0));
  const testMask = Uint8Array.from(keep, (i) => testCtx[Math.floor(i / P)]!);
  const y = Int32Array.from(keep, (i) => label[i]!);
  const layers: LayerProbeCurve['layers'] = [];
  for (const hook of hooks) {
    const shape = store.rowShape(hook);
    if (shape.length !== 1) throw new Error(`${store.dir}: hook '${hook}' has rows [${shape.join(', ')}]; a probe reads vectors`);
    const d = shape[0]!;
    const all = new Float32Array(n * d);
    let r = 0;
    for await (const t of store.batches({ hook, batchSize: 64 * P, dtype: 'f32', ...(o.backend ? { backend: o.backend } : {}) })) {
      const h = t.dataSync() as Float32Array;
      t.dispose();
      const take = Math.min(h.length, all.length - r * d);
      all.set(h.subarray(0, take), r * d);
      r += take / d;
      if (r >= n) break;
    }
    const x = new Float32Array(keep.length * d);
    keep.forEach((i, k) => x.set(all.subarray(i * d, (i + 1) * d), k * d));
    const res = trainProbe(x, y, d, classes, { ...o, testMask });
    layers.push({ hook, trainAccuracy: res.trainAccuracy, testAccuracy: res.testAccuracy, baselineAccuracy: res.baselineAccuracy, train: res.train, test: res.test });
  }
  return { label: o.label, classes, ...(classTokens ? { classTokens } : {}), layers };
}
