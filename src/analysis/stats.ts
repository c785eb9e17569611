// The numerics the analyses share, on plain arrays (f64 where it matters): norms, medians,
// ranks, entropy, a seeded RNG, k-means, and a Jacobi eigensolver for the small symmetric
// matrices of SVCCA (d_model-sized, so O(n³) sweeps are fine).
// Not for: anything large enough to need a backend.

export function l2(v: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < v.length; i++) s += v[i]! * v[i]!;
  return Math.sqrt(s);
}

export function cosine(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let ab = 0;
  let aa = 0;
  let bb = 0;
  for (let i = 0; i < a.length; i++) { ab += a[i]! * b[i]!; aa += a[i]! * a[i]!; bb += b[i]! * b[i]!; }
  return aa === 0 || bb === 0 ? 0 : ab / Math.sqrt(aa * bb);
}

export function median(values: ArrayLike<number>): number {
  const s = Float64Array.from(values).sort();
  const n = s.length;
  if (n === 0) return NaN;
  return n % 2 ? s[(n - 1) / 2]! : (s[n / 2 - 1]! + s[n / 2]!) / 2;
}

export function mean(values: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < values.length; i++) s += values[i]!;
  return values.length ? s / values.length : NaN;
}

export function sd(values: ArrayLike<number>): number {
  const m = mean(values);
  let s = 0;
  for (let i = 0; i < values.length; i++) s += (values[i]! - m) ** 2;
  return values.length > 1 ? Math.sqrt(s / (values.length - 1)) : 0;
}

/** Softmax of logits (stable). */
export function softmax(logits: ArrayLike<number>): Float64Array {
  let m = -Infinity;
  for (let i = 0; i < logits.length; i++) m = Math.max(m, logits[i]!);
  const p = new Float64Array(logits.length);
  let z = 0;
  for (let i = 0; i < logits.length; i++) z += p[i] = Math.exp(logits[i]! - m);
  for (let i = 0; i < p.length; i++) p[i]! /= z;
  return p;
}

/** Shannon entropy in nats. */
export function entropy(p: ArrayLike<number>): number {
  let h = 0;
  for (let i = 0; i < p.length; i++) if (p[i]! > 0) h -= p[i]! * Math.log(p[i]!);
  return h;
}

/** Indices of the k largest values, largest first. */
export function topIndices(v: ArrayLike<number>, k: number): number[] {
  const idx = Array.from({ length: v.length }, (_, i) => i);
  idx.sort((a, b) => v[b]! - v[a]! || a - b);
  return idx.slice(0, k);
}

/** How many other entries are at least v[i] (0 = the strict argmax; ties count against it). */
export function rankOf(v: ArrayLike<number>, i: number): number {
  let r = 0;
  for (let j = 0; j < v.length; j++) if (j !== i && v[j]! >= v[i]!) r++;
  return r;
}

export function argmax(v: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < v.length; i++) if (v[i]! > v[best]!) best = i;
  return best;
}

/** Ranks 1..n with ties given their average rank (for Spearman). */
export function ranks(v: ArrayLike<number>): Float64Array {
  const idx = Array.from({ length: v.length }, (_, i) => i).sort((a, b) => v[a]! - v[b]!);
  const r = new Float64Array(v.length);
  for (let i = 0; i < idx.length;) {
    let j = i;
    while (j + 1 < idx.length && v[idx[j + 1]!] === v[idx[i]!]) j++;
    for (let k = i; k <= j; k++) r[idx[k]!] = (i + j) / 2 + 1;
    i = j + 1;
  }
  return r;
}

export function pearson(a: ArrayLike<number>, b: ArrayLike<number>): number {
  const ma = mean(a);
  const mb = mean(b);
  let ab = 0;
  let aa = 0;
  let bb = 0;
  for (let i = 0; i < a.length; i++) {
    const x = a[i]! - ma;
    const y = b[i]! - mb;
    ab += x * y; aa += x * x; bb += y * y;
  }
  return aa === 0 || bb === 0 ? 0 : ab / Math.sqrt(aa * bb);
}

export function spearman(a: ArrayLike<number>, b: ArrayLike<number>): number {
  return pearson(ranks(a), ranks(b));
}

/** A small seeded generator (mulberry32) for sampling tokens, units and stimuli reproducibly. */
export class SeededRandom {
  private s: number;
  constructor(seed = 0) {
    this.s = (seed >>> 0) ^ 0x9e3779b9;
  }
  next(): number {
    let t = (this.s = (this.s + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  /** k distinct integers from [0, n), in random order. */
  sample(n: number, k: number): number[] {
    const a = Array.from({ length: n }, (_, i) => i);
    for (let i = 0; i < Math.min(k, n); i++) {
      const j = i + this.int(n - i);
      [a[i], a[j]] = [a[j]!, a[i]!];
    }
    return a.slice(0, Math.min(k, n));
  }
}

/**
 * Eigen-decomposition of a symmetric n×n matrix (row-major) by cyclic Jacobi rotations.
 * Returns eigenvalues (descending) and eigenvectors as columns of `vectors` (row-major n×n).
 */
export function symmetricEigen(a: ArrayLike<number>, n: number): { values: Float64Array; vectors: Float64Array } {
  const A = Float64Array.from(a);
  const V = new Float64Array(n * n);
  for (let i = 0; i < n; i++) V[i * n + i] = 1;
  for (let sweep = 0; sweep < 60; sweep++) {
    let off = 0;
    let diag = 0;
    for (let i = 0; i < n; i++) {
      diag += A[i * n + i]! ** 2;
      for (let j = i + 1; j < n; j++) off += A[i * n + j]! ** 2;
    }
    if (off <= 1e-22 * Math.max(diag, 1e-300)) break;
    for (let p = 0; p < n; p++) {
      for (let q = p + 1; q < n; q++) {
        const apq = A[p * n + q]!;
        if (Math.abs(apq) < 1e-300) continue;
        const theta = (A[q * n + q]! - A[p * n + p]!) / (2 * apq);
        const t = Math.sign(theta || 1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
        const c = 1 / Math.sqrt(t * t + 1);
        const s = t * c;
        for (let k = 0; k < n; k++) {
          const akp = A[k * n + p]!;
          const akq = A[k * n + q]!;
          A[k * n + p] = c * akp - s * akq;
          A[k * n + q] = s * akp + c * akq;
        }
        for (let k = 0; k < n; k++) {
          const apk = A[p * n + k]!;
          const aqk = A[q * n + k]!;
          A[p * n + k] = c * apk - s * aqk;
          A[q * n + k] = s * apk + c * aqk;
        }
        for (let k = 0; k < n; k++) {
          const vkp = V[k * n + p]!;
          const vkq = V[k * n + q]!;
          V[k * n + p] = c * vkp - s * vkq;
          V[k * n + q] = s * vkp + c * vkq;
        }
      }
    }
  }
  const order = Array.from({ length: n }, (_, i) => i).sort((x, y) => A[y * n + y]! - A[x * n + x]!);
  const values = Float64Array.from(order, (i) => A[i * n + i]!);
  const vectors = new Float64Array(n * n);
  order.forEach((src, dst) => { for (let k = 0; k < n; k++) vectors[k * n + dst] = V[k * n + src]!; });
  return { values, vectors };
}

/**
 * k-means (k-means++ seeding, cosine geometry: rows are L2-normalised first) on `rows`.
 * Returns each row's cluster and the cluster sizes.
 */
export function kmeans(rows: readonly ArrayLike<number>[], k: number, seed = 0, iters = 50): { assign: number[]; sizes: number[] } {
  const n = rows.length;
  k = Math.min(k, n);
  if (n === 0 || k === 0) return { assign: [], sizes: [] };
  const X = rows.map((r) => { const v = Float64Array.from(r); const m = l2(v) || 1; for (let i = 0; i < v.length; i++) v[i]! /= m; return v; });
  const d = X[0]!.length;
  const rng = new SeededRandom(seed);
  const dist = (a: Float64Array, b: Float64Array) => { let s = 0; for (let i = 0; i < d; i++) s += (a[i]! - b[i]!) ** 2; return s; };
  const centers: Float64Array[] = [Float64Array.from(X[rng.int(n)]!)];
  while (centers.length < k) {
    const w = X.map((x) => Math.min(...centers.map((c) => dist(x, c))));
    const total = w.reduce((s, x) => s + x, 0);
    let r = rng.next() * total;
    let pick = 0;
    while (pick < n - 1 && (r -= w[pick]!) > 0) pick++;
    centers.push(Float64Array.from(X[pick]!));
  }
  let assign = new Array<number>(n).fill(0);
  for (let it = 0; it < iters; it++) {
    const next = X.map((x) => { let b = 0; for (let c = 1; c < k; c++) if (dist(x, centers[c]!) < dist(x, centers[b]!)) b = c; return b; });
    const same = next.every((a, i) => a === assign[i]);
    assign = next;
    for (let c = 0; c < k; c++) {
      const members = X.filter((_, i) => assign[i] === c);
      if (!members.length) continue;
      const m = new Float64Array(d);
      for (const x of members) for (let i = 0; i < d; i++) m[i]! += x[i]! / members.length;
      centers[c] = m;
    }
    if (same && it > 0) break;
  }
  const sizes = new Array<number>(k).fill(0);
  for (const a of assign) sizes[a]!++;
  return { assign, sizes };
}
