// GPTQ (Frantar et al. 2022, "GPTQ: Accurate Post-Training Quantization for Generative
// Pre-trained Transformers", Algorithm 1): a linear layer's weight W [rows, cols] is rounded one
// input column at a time, and each column's rounding error is spread over the columns not yet
// rounded through the inverse Hessian of the layer's input, H = Σ x xᵀ over calibration tokens, so
// that ‖(W − Ŵ) X‖² stays small rather than ‖W − Ŵ‖². Dead inputs (H_ii = 0) are zeroed,
// H is damped by `damp`·mean(diag H) (0.01 as in the paper), and the updates use the upper Cholesky
// factor of H⁻¹. The grid is the caller's: it is fitted per group of columns on the weights as
// they are when the group starts (the paper's grouping), then each value is rounded onto it.
// The column loop applies each update to the whole row at once (the paper's lazy batches of 128
// change only the memory traffic, not the result).

/** The grid GPTQ rounds onto. */
export interface GptqGrid {
  /** Columns per group (the grid is fitted at columns 0, groupSize, 2·groupSize, ...). */
  groupSize: number;
  /** Fits the grid of columns [c0, c0 + groupSize) of every row on W's current values ([rows, cols], row-major). */
  fitGroup(w: Float64Array, rows: number, cols: number, c0: number): void;
  /** The grid value for row r, column c (in the current group) nearest to v; the grid may record the level. */
  round(r: number, c: number, v: number): number;
}

export interface GptqOptions {
  /** Damping as a fraction of the mean diagonal of H (default 0.01). */
  damp?: number;
}

/**
 * Upper-triangular U with Uᵀ U = H⁻¹ (H symmetric positive definite, n×n, row-major), as GPTQ
 * needs it: the Cholesky factor of H taken from the last row up (H = Ũ Ũᵀ, Ũ upper) gives
 * U = Ũ⁻¹, since H⁻¹ = Ũ⁻ᵀ Ũ⁻¹. Throws when H is not positive definite.
 */
export function invHessianFactor(H: Float64Array, n: number): Float64Array {
  // Ũ: H = Ũ Ũᵀ with Ũ upper, by the Cholesky recurrence run from the last index down
  const Ut = new Float64Array(n * n);
  for (let j = n - 1; j >= 0; j--) {
    let s = H[j * n + j]!;
    for (let k = j + 1; k < n; k++) s -= Ut[j * n + k]! * Ut[j * n + k]!;
    if (!(s > 0)) throw new Error(`GPTQ: the damped Hessian is not positive definite at column ${j} (pivot ${s})`);
    const d = Math.sqrt(s);
    Ut[j * n + j] = d;
    for (let i = j - 1; i >= 0; i--) {
      let t = H[i * n + j]!;
      for (let k = j + 1; k < n; k++) t -= Ut[i * n + k]! * Ut[j * n + k]!;
      Ut[i * n + j] = t / d;
    }
  }
  // U = Ũ⁻¹ (upper): solve Ũ U = I column by column, bottom up
  const U = new Float64Array(n * n);
  for (let c = 0; c < n; c++) {
    U[c * n + c] = 1 / Ut[c * n + c]!;
    for (let i = c - 1; i >= 0; i--) {
      let t = 0;
      for (let k = i + 1; k <= c; k++) t += Ut[i * n + k]! * U[k * n + c]!;
      U[i * n + c] = -t / Ut[i * n + i]!;
    }
  }
  return U;
}

/**
 * GPTQ of W [rows, cols] (row-major) with input Hessian H [cols, cols] (Σ x xᵀ; any positive
 * multiple): returns Ŵ, every value on `grid`. H is not changed.
 */
export function gptq(W: ArrayLike<number>, rows: number, cols: number, H: ArrayLike<number>, grid: GptqGrid, o: GptqOptions = {}): Float32Array {
  if (W.length !== rows * cols) throw new Error(`GPTQ: W has ${W.length} values, not ${rows}×${cols}`);
  if (H.length !== cols * cols) throw new Error(`GPTQ: H has ${H.length} values, not ${cols}×${cols}`);
  if (cols % grid.groupSize) throw new Error(`GPTQ: ${cols} columns are not whole groups of ${grid.groupSize}`);
  const w = Float64Array.from(W);
  const h = Float64Array.from(H);
  let meanDiag = 0;
  for (let i = 0; i < cols; i++) {
    if (h[i * cols + i]! === 0) {
      h[i * cols + i] = 1;
      for (let r = 0; r < rows; r++) w[r * cols + i] = 0;
    }
    meanDiag += h[i * cols + i]! / cols;
  }
  const damp = (o.damp ?? 0.01) * meanDiag;
  for (let i = 0; i < cols; i++) h[i * cols + i]! += damp;
  const U = invHessianFactor(h, cols);
  const q = new Float32Array(rows * cols);
  for (let i = 0; i < cols; i++) {
    if (i % grid.groupSize === 0) grid.fitGroup(w, rows, cols, i);
    const dii = U[i * cols + i]!;
    for (let r = 0; r < rows; r++) {
      const ro = r * cols;
      const v = w[ro + i]!;
      const qv = grid.round(r, i, v);
      q[ro + i] = qv;
      const err = (v - qv) / dii;
      if (err === 0) continue;
      for (let j = i + 1, uo = i * cols; j < cols; j++) w[ro + j]! -= err * U[uo + j]!;
    }
  }
  return q;
}

/** Σ x xᵀ of rows x ([tokens, d], row-major) accumulated into H [d, d] (a plain loop; callers with many tokens use a matrix product). */
export function accumulateHessian(H: Float64Array, x: ArrayLike<number>, d: number): void {
  const n = x.length / d;
  for (let t = 0; t < n; t++) {
    for (let i = 0; i < d; i++) {
      const xi = x[t * d + i]!;
      if (xi === 0) continue;
      for (let j = 0; j < d; j++) H[i * d + j]! += xi * x[t * d + j]!;
    }
  }
}
