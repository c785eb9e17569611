// Per-channel scales folded between a norm and the linear layers that read its output: the norm's
// weight (and bias) divided by f_c, the consumers' input column c multiplied by f_c, so the f32
// model computes the same function while its activations and weights change range before they
// are quantized. Two choices of f:
//  - 'exp-bias' (LLM-FP4, Liu et al. 2023, arXiv:2310.16836, §4.2, pre-shifted exponent bias):
//    f_c = 2^ρc with ρc = ⌈log2(absmax_c / absmax)⌉ ≤ 0 from calibration activations, so that a
//    per-tensor FP activation quantizer sees channels of equal exponent range and the per-channel
//    exponent bias lives in the weights;
//  - 'scale' (RAMP's Scale Folding of outliers, with the scale search of AWQ, Lin et al. 2023,
//    arXiv:2306.00978): f_c = (mean |x_c|)^α normalised to geometric mean 1, α in {0, .25, .5, .75,
//    1} chosen per norm by the least output error of the consumers quantized in their formats —
//    channels that carry large activations get larger, better-resolved weights.
// Covers Llama-family (input_layernorm / post_attention_layernorm -> q,k,v / gate,up) and GPT-2
// (ln_1 / ln_2 -> c_attn / c_fc) names; Gemma's (1 + w) norms are left alone.
import type { DType } from '../tensor/dtype.js';
import { fakeQuantizeWeights, type ActlabQuantType } from './formats.js';

/** A checkpoint tensor as f32 values in HF layout (non-float tensors kept as `raw`). */
export interface HfMatrix {
  values: Float32Array;
  shape: number[];
  raw?: { dtype: DType; bytes: Uint8Array };
}

export interface FoldGroup {
  /** The norm's weight (and bias) names. */
  norm: string;
  bias?: string;
  /** The consumers' weight names. */
  consumers: string[];
  /** GPT-2's Conv1D consumers are [in, out]: input channel = row. */
  inOut: boolean;
  /** The hook point carrying the norm's output (the consumers' input). */
  hook: string;
}

export type FoldKind = 'exp-bias' | 'scale';

/** The norm -> consumers groups of a checkpoint's names. */
export function foldGroups(names: readonly string[], config: Record<string, unknown>): FoldGroup[] {
  if (config.model_type === 'gemma') return [];
  const has = new Set(names);
  const out: FoldGroup[] = [];
  for (const n of names) {
    let m = n.match(/^model\.layers\.(\d+)\.(input_layernorm|post_attention_layernorm)\.weight$/);
    if (m) {
      const i = m[1]!;
      const attn = m[2] === 'input_layernorm';
      const consumers = (attn ? ['q_proj', 'k_proj', 'v_proj'].map((p) => `model.layers.${i}.self_attn.${p}.weight`) : ['gate_proj', 'up_proj'].map((p) => `model.layers.${i}.mlp.${p}.weight`)).filter((c) => has.has(c));
      if (consumers.length) out.push({ norm: n, bias: has.has(n.replace(/weight$/, 'bias')) ? n.replace(/weight$/, 'bias') : undefined, consumers, inOut: false, hook: `blocks.${i}.${attn ? 'ln1' : 'ln2'}.hook_normalized` });
      continue;
    }
    m = n.match(/^((?:transformer\.)?h\.(\d+))\.(ln_1|ln_2)\.weight$/);
    if (m) {
      const c = `${m[1]}.${m[3] === 'ln_1' ? 'attn.c_attn' : 'mlp.c_fc'}.weight`;
      if (has.has(c)) out.push({ norm: n, bias: n.replace(/weight$/, 'bias'), consumers: [c], inOut: true, hook: `blocks.${m[2]}.${m[3] === 'ln_1' ? 'ln1' : 'ln2'}.hook_normalized` });
    }
  }
  return out;
}

/** Divides the norm by f and multiplies the consumers' input channels by f, in place. */
export function applyFold(all: Map<string, HfMatrix>, g: FoldGroup, f: Float32Array): void {
  for (const n of [g.norm, g.bias]) {
    const t = n ? all.get(n) : undefined;
    if (t) for (let c = 0; c < f.length; c++) t.values[c] = t.values[c]! / f[c]!;
  }
  for (const n of g.consumers) {
    const w = all.get(n)!;
    const [a, b] = w.shape as [number, number];
    if (g.inOut) { for (let r = 0; r < a; r++) for (let c = 0; c < b; c++) w.values[r * b + c]! *= f[r]!; }
    else { for (let r = 0; r < a; r++) for (let c = 0; c < b; c++) w.values[r * b + c]! *= f[c]!; }
  }
}

/** LLM-FP4's per-channel exponent bias as fold factors 2^ρc from activations [tokens, d]. */
export function expBiasFactors(x: Float32Array, d: number): Float32Array {
  const am = new Float32Array(d);
  for (let i = 0; i < x.length; i++) am[i % d] = Math.max(am[i % d]!, Math.abs(x[i]!));
  const top = Math.max(...am);
  return Float32Array.from(am, (m) => (m > 0 && top > 0 ? 2 ** Math.min(0, Math.ceil(Math.log2(m / top))) : 1));
}

/** The consumer as [out, in] values (a copy). */
function outIn(w: HfMatrix, inOut: boolean): { v: Float32Array; rows: number; cols: number } {
  const [a, b] = w.shape as [number, number];
  if (!inOut) return { v: w.values.slice(), rows: a, cols: b };
  const v = new Float32Array(a * b);
  for (let r = 0; r < a; r++) for (let c = 0; c < b; c++) v[c * a + r] = w.values[r * b + c]!;
  return { v, rows: b, cols: a };
}

/** ‖X_s (W_s − Q(W_s))ᵀ‖² over at most 64 output rows and 128 tokens (X_s = X / s, W_s = W · s). */
function foldError(w: { v: Float32Array; rows: number; cols: number }, x: Float32Array, s: Float32Array, type: ActlabQuantType): number {
  const { rows, cols } = w;
  const step = Math.max(1, Math.floor(rows / 64));
  const pick = Array.from({ length: Math.min(64, rows) }, (_, i) => i * step).filter((r) => r < rows);
  const ws = new Float32Array(pick.length * cols);
  pick.forEach((r, i) => { for (let c = 0; c < cols; c++) ws[i * cols + c] = w.v[r * cols + c]! * s[c]!; });
  const q = fakeQuantizeWeights(type, ws, pick.length, cols);
  const tokens = Math.min(128, x.length / cols);
  let e = 0;
  for (let t = 0; t < tokens; t++) {
    for (let i = 0; i < pick.length; i++) {
      let acc = 0;
      for (let c = 0; c < cols; c++) acc += (x[t * cols + c]! / s[c]!) * (ws[i * cols + c]! - q[i * cols + c]!);
      e += acc * acc;
    }
  }
  return e;
}

export interface ScaleFoldResult { alpha: number; error: number; errorUnfolded: number; factors: Float32Array }

/** Searches α of the scale fold of one group for consumers quantized in `typeOf(name)`. */
export function searchScaleFold(all: Map<string, HfMatrix>, g: FoldGroup, x: Float32Array, typeOf: (name: string) => ActlabQuantType | null): ScaleFoldResult {
  const d = all.get(g.norm)!.values.length;
  const mean = new Float64Array(d);
  for (let i = 0; i < x.length; i++) mean[i % d]! += Math.abs(x[i]!);
  const ws = g.consumers.map((n) => ({ n, w: outIn(all.get(n)!, g.inOut), t: typeOf(n) })).filter((c) => c.t && c.w.cols % 32 === 0);
  const factorsFor = (alpha: number): Float32Array => {
    const f = Float32Array.from(mean, (m) => Math.max(m / (x.length / d), 1e-8) ** alpha);
    const gm = Math.exp(f.reduce((s, v) => s + Math.log(v), 0) / d);
    return f.map((v) => v / gm);
  };
  const err = (s: Float32Array) => ws.reduce((e, c) => e + foldError(c.w, x, s, c.t!), 0);
  const errorUnfolded = err(new Float32Array(d).fill(1));
  let best: ScaleFoldResult = { alpha: 0, error: errorUnfolded, errorUnfolded, factors: new Float32Array(d).fill(1) };
  for (const alpha of [0.25, 0.5, 0.75, 1]) {
    const f = factorsFor(alpha);
    const e = err(f);
    if (e < best.error) best = { alpha, error: e, errorUnfolded, factors: f };
  }
  return best;
}
