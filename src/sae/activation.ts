// The SAE activation functions on host rows: ReLU, TopK (per row), BatchTopK (over the whole
// batch) and JumpReLU, each giving the activations and the set of units that pass gradient.
// They run on plain Float32Arrays because the selections (a k-th largest value per row or per
// batch) are branchy scalar work that the tensor engine has no fast kernel for (its `topk` is the
// reference fallback on wasm, ~30x slower than this selection for [4096, 512]); the matrix products
// around them stay on the backend (src/sae/step.ts).
// Not for: the linear parts of the SAE (step.ts, sae.ts).

/** Which units of a [rows, n] block pass gradient (1) or not (0). */
export type GateMask = Uint8Array;

export interface ActivationResult {
  acts: Float32Array; // [rows, n]
  /** Units whose activation depends on its pre-activation (gradient gate). */
  gate: GateMask; // [rows, n]
}

/** The k-th largest value of `v[0..len)` (k >= 1), using `scratch` (length >= len). */
export function kthLargest(v: Float32Array, len: number, k: number, scratch: Float32Array): number {
  for (let i = 0; i < len; i++) scratch[i] = v[i]!;
  // Quickselect for index k-1 in descending order (Hoare partition around a median of three).
  let lo = 0;
  let hi = len - 1;
  const target = k - 1;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    const a = scratch[lo]!, b = scratch[mid]!, c = scratch[hi]!;
    const pivot = a > b ? (b > c ? b : a > c ? c : a) : a > c ? a : b > c ? c : b;
    let i = lo;
    let j = hi;
    while (i <= j) {
      while (scratch[i]! > pivot) i++;
      while (scratch[j]! < pivot) j--;
      if (i <= j) {
        const t = scratch[i]!;
        scratch[i] = scratch[j]!;
        scratch[j] = t;
        i++;
        j--;
      }
    }
    if (target <= j) hi = j;
    else if (target >= i) lo = i;
    else return scratch[target]!;
  }
  return scratch[target]!;
}

/**
 * Marks the k largest entries of each row (exactly k; among equal values the lower index first, as
 * torch.topk on CPU does for distinct values) in `sel`; with `valid`, only columns where it is 1.
 * A min-heap of the k best so far: most entries lose one comparison against its root.
 */
export function topkRows(pre: Float32Array, rows: number, n: number, k: number, sel: Uint8Array, valid?: Uint8Array): void {
  sel.fill(0);
  const hv = new Float32Array(Math.max(k, 1));
  const hi = new Int32Array(Math.max(k, 1));
  // Heap order: smaller value first; among equal values the larger index first (it is evicted first).
  const less = (a: number, b: number) => hv[a]! < hv[b]! || (hv[a] === hv[b] && hi[a]! > hi[b]!);
  const swap = (a: number, b: number) => {
    const v = hv[a]!; hv[a] = hv[b]!; hv[b] = v;
    const i = hi[a]!; hi[a] = hi[b]!; hi[b] = i;
  };
  for (let r = 0; r < rows; r++) {
    const o = r * n;
    let size = 0;
    for (let j = 0; j < n; j++) {
      if (valid && !valid[j]) continue;
      const x = pre[o + j]!;
      if (size < k) {
        hv[size] = x; hi[size] = j;
        let c = size++;
        while (c > 0) { const p = (c - 1) >> 1; if (!less(c, p)) break; swap(c, p); c = p; }
      } else if (x > hv[0]!) {
        hv[0] = x; hi[0] = j;
        let c = 0;
        for (;;) {
          const l = 2 * c + 1;
          if (l >= size) break;
          const m = l + 1 < size && less(l + 1, l) ? l + 1 : l;
          if (!less(m, c)) break;
          swap(m, c);
          c = m;
        }
      }
    }
    for (let q = 0; q < size; q++) sel[o + hi[q]!] = 1;
  }
}

/** ReLU: acts = max(pre, 0); gradient passes where pre > 0. */
export function reluAct(pre: Float32Array): ActivationResult {
  const acts = new Float32Array(pre.length);
  const gate = new Uint8Array(pre.length);
  for (let i = 0; i < pre.length; i++) {
    const x = pre[i]!;
    if (x > 0) { acts[i] = x; gate[i] = 1; }
  }
  return { acts, gate };
}

/** TopK (SAELens' TopK module): the k largest pre-activations of each row, then ReLU. */
export function topkAct(pre: Float32Array, rows: number, n: number, k: number): ActivationResult {
  const sel = new Uint8Array(pre.length);
  topkRows(pre, rows, n, k, sel);
  const acts = new Float32Array(pre.length);
  for (let i = 0; i < pre.length; i++) {
    if (sel[i] && pre[i]! > 0) acts[i] = pre[i]!;
    else sel[i] = 0;
  }
  return { acts, gate: sel };
}

/**
 * BatchTopK (SAELens' BatchTopK): ReLU, then the round(k * rows) largest activations of the whole
 * batch are kept. Returns also the smallest kept positive activation (for the inference threshold).
 */
export function batchTopkAct(pre: Float32Array, rows: number, k: number): ActivationResult & { minPositive: number } {
  const relu = new Float32Array(pre.length);
  for (let i = 0; i < pre.length; i++) relu[i] = pre[i]! > 0 ? pre[i]! : 0;
  const keep = Math.min(pre.length, Math.floor(k * rows));
  const acts = new Float32Array(pre.length);
  const gate = new Uint8Array(pre.length);
  let minPositive = Infinity;
  if (keep > 0) {
    const kth = kthLargest(relu, relu.length, keep, new Float32Array(relu.length));
    let above = 0;
    for (let i = 0; i < relu.length; i++) if (relu[i]! > kth) above++;
    let ties = keep - above;
    for (let i = 0; i < relu.length; i++) {
      const x = relu[i]!;
      if (x > kth || (x === kth && ties-- > 0)) {
        if (x > 0) {
          acts[i] = x;
          gate[i] = 1;
          if (x < minPositive) minPositive = x;
        }
      }
    }
  }
  return { acts, gate, minPositive };
}

/** JumpReLU: acts = pre where pre > threshold (per unit), else 0; gradient to pre passes there. */
export function jumpreluAct(pre: Float32Array, n: number, threshold: Float32Array): ActivationResult {
  const acts = new Float32Array(pre.length);
  const gate = new Uint8Array(pre.length);
  for (let i = 0; i < pre.length; i++) {
    const x = pre[i]!;
    // SAELens' inference JumpReLU is relu(pre) * (pre > threshold); with a positive threshold the same.
    if (x > threshold[i % n]! && x > 0) { acts[i] = x; gate[i] = 1; }
  }
  return { acts, gate };
}
