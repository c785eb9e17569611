// LLM-FP4's format search (Liu et al. 2023, "LLM-FP4: 4-Bit Floating-Point Quantized
// Transformers", arXiv:2310.16836, §4.1): per layer, the exponent/mantissa split of the 4-bit
// float (E1M2, E2M1, E3M0) and the clipping range (here the ratio of each channel's scale to its
// absmax) are picked by the least squared error of the layer's output on calibration inputs,
// ‖X Wᵀ − X Ŵᵀ‖² (the weights' own squared error when no calibration is given). The error is
// estimated on at most `maxRows` output channels and `maxTokens` calibration rows; the chosen
// format then encodes the whole matrix. Per-channel activation exponent biases (§4.2) are folded
// into the weights by src/quant/llm-fp4-fold.ts before this search runs.
import { encodeGroups, decodeGroups, MSE_RATIOS } from './group.js';
import { checkDivides, checkFinite, type ActlabQuantType } from './formats.js';
import { LLM_FP4, type LlmFp4Split } from './llm-fp4-formats.js';

export interface LlmFp4Choice {
  type: ActlabQuantType;
  split: LlmFp4Split;
  /** Ratio of the channel scale to the channel's absmax (1 = no clipping). */
  clip: number;
  /** Mean squared output error (or weight error without calibration) of the choice. */
  error: number;
}

export interface LlmFp4Options {
  /** Calibration inputs of the layer, f32 [n, cols]. */
  calib?: Float32Array;
  maxRows?: number;
  maxTokens?: number;
  what?: string;
}

function pickRows(w: Float32Array, rows: number, cols: number, max: number): { sub: Float32Array; n: number } {
  if (rows <= max) return { sub: w, n: rows };
  const sub = new Float32Array(max * cols);
  for (let i = 0; i < max; i++) sub.set(w.subarray(Math.floor((i * rows) / max) * cols, (Math.floor((i * rows) / max) + 1) * cols), i * cols);
  return { sub, n: max };
}

/** Mean squared error of X (W − Ŵ)ᵀ over the sampled rows (or of W − Ŵ without X). */
function outputError(w: Float32Array, wq: Float32Array, n: number, cols: number, x?: Float32Array, nx = 0): number {
  let e = 0;
  if (!x) {
    for (let i = 0; i < w.length; i++) { const d = w[i]! - wq[i]!; e += d * d; }
    return e / w.length;
  }
  const d = new Float32Array(cols);
  for (let r = 0; r < n; r++) {
    for (let k = 0; k < cols; k++) d[k] = w[r * cols + k]! - wq[r * cols + k]!;
    for (let t = 0; t < nx; t++) {
      let s = 0;
      for (let k = 0; k < cols; k++) s += x[t * cols + k]! * d[k]!;
      e += s * s;
    }
  }
  return e / (n * nx);
}

/** Searches the split and clip of one [rows, cols] weight; returns the choice and the packed bytes. */
export function quantizeLlmFp4(w: Float32Array, rows: number, cols: number, o: LlmFp4Options = {}): { choice: LlmFp4Choice; bytes: Uint8Array; tried: LlmFp4Choice[] } {
  const what = o.what ?? `llm-fp4 weight [${rows}, ${cols}]`;
  checkDivides('llmfp4_e2m1', cols, what);
  checkFinite(w, what);
  let x: Float32Array | undefined;
  let nx = 0;
  if (o.calib) {
    if (o.calib.length % cols || o.calib.length === 0) throw new Error(`${what}: calibration inputs of ${o.calib.length} values are not rows of ${cols}`);
    nx = Math.min(o.calib.length / cols, o.maxTokens ?? 256);
    x = o.calib.subarray(0, nx * cols);
  }
  const { sub, n } = pickRows(w, rows, cols, o.maxRows ?? 128);
  const tried: LlmFp4Choice[] = [];
  let best: LlmFp4Choice | undefined;
  for (const split of Object.keys(LLM_FP4) as LlmFp4Split[]) {
    const layout = LLM_FP4[split];
    for (const clip of MSE_RATIOS) {
      const wq = decodeGroups(layout, encodeGroups(layout, sub, n, cols, clip), n, cols);
      const c: LlmFp4Choice = { type: `llmfp4_${split}`, split, clip, error: outputError(sub, wq, n, cols, x, nx) };
      tried.push(c);
      if (!best || c.error < best.error) best = c;
    }
  }
  return { choice: best!, bytes: encodeGroups(LLM_FP4[best!.split], w, rows, cols, best!.clip), tried };
}
