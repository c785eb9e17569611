// One SAE training step, forward and backward written out by hand: the losses of SAELens'
// training SAEs (MSE + L1 for 'standard', + auxiliary-k for TopK/BatchTopK, + L0 with straight-
// through threshold gradients for JumpReLU, + ghost grads for 'standard') and their gradients.
// Why by hand and not through src/autograd: the SAE is five matrix products around one selection;
// the tape would record and keep every intermediate ([batch, d_sae] several times over), run the
// TopK selection through the reference `topk` kernel, and build the dense scatter of the selected
// values from several ops. Here the products run on the backend (wasm SIMD, threads) and the
// selections and masks in one pass over host arrays; test/sae-step.test.ts checks every gradient
// against autodiff on the reference backend.
// Not for: the optimizer, schedules or data (train.ts).
import type { Backend } from '../tensor/backend.js';
import { matmul } from '../ops/linalg.js';
import { Tensor } from '../tensor/tensor.js';
import { batchTopkAct, jumpreluAct, reluAct, topkAct, topkRows, type ActivationResult } from './activation.js';
import { isTranscoder } from './config.js';
import type { Sae } from './sae.js';

export interface StepSettings {
  /** 'standard': L1 coefficient; 'jumprelu': L0 coefficient (after warmup). */
  coefficient: number;
  /** TopK / BatchTopK: weight of the auxiliary-k loss (SAELens default 1). */
  auxCoefficient?: number;
  /** 'standard': ghost grads for dead features (SAELens ≤ 5 use_ghost_grads). */
  ghostGrads?: boolean;
  /** JumpReLU: bandwidth of the straight-through rectangle (default 0.05). */
  bandwidth?: number;
  /** JumpReLU: the log-threshold being trained ([d_sae]); the step reads exp of it. */
  logThreshold?: Float32Array;
}

export interface StepInput {
  x: Float32Array; // [rows, d_in]
  rows: number;
  /** Transcoders: what to predict [rows, d_out] (an SAE predicts x). */
  target?: Float32Array;
  /** Dead features [d_sae] (1 = dead), for the auxiliary-k loss and ghost grads. */
  dead?: Uint8Array;
}

/** The loss terms and sparsity figures of one training step (the host step, the device step and the trainer's progress all report them). */
export interface SaeLossTerms {
  loss: number;
  mse: number;
  /** L1 ('standard') or L0 ('jumprelu') loss term, coefficient included. */
  sparsity: number;
  /** Auxiliary-k or ghost-grad loss. */
  aux: number;
  /** Mean active features per row. */
  l0: number;
  /** Fraction of variance unexplained of this batch: Σ‖out − target‖² / Σ‖target − mean‖². */
  fvu: number;
}

export interface StepOutput extends SaeLossTerms {
  /** Gradients by training-parameter name (jumprelu: 'log_threshold' instead of 'threshold'). */
  grads: Map<string, Float32Array>;
  /** Rows in which each feature fired [d_sae]. */
  fireCounts: Float32Array;
  /** BatchTopK: the smallest kept positive activation (for the threshold estimate). */
  minPositive?: number;
}

/** Matrix products on a backend, on host arrays (each result read back as a fresh array). */
class Device {
  private readonly made: Tensor[] = [];
  constructor(readonly backend: Backend) {}
  up(a: Float32Array, shape: number[]): Tensor {
    const t = Tensor.from(a, shape, 'f32', this.backend);
    this.made.push(t);
    return t;
  }
  mm(a: Tensor, b: Tensor, o: { transA?: boolean; transB?: boolean } = {}): Float32Array {
    const y = matmul(a, b, o);
    try {
      return y.dataSync() as Float32Array;
    } finally {
      y.dispose();
    }
  }
  dispose(): void {
    for (const t of this.made) t.dispose();
    this.made.length = 0;
  }
}

function rect(x: number): number {
  return x > -0.5 && x < 0.5 ? 1 : 0;
}

/** Runs one forward and backward pass of `sae` on a batch; the weights are not changed. */
export function saeStep(sae: Sae, input: StepInput, s: StepSettings, backend: Backend): StepOutput {
  const c = sae.cfg;
  const B = input.rows;
  const dIn = sae.dIn;
  const n = sae.dSae;
  const dOut = sae.dOut;
  const x = input.x;
  const target = input.target ?? x;
  if (x.length !== B * dIn) throw new Error(`saeStep: x has ${x.length} values, expected ${B} x ${dIn}`);
  if (target.length !== B * dOut) throw new Error(`saeStep: target has ${target.length} values, expected ${B} x ${dOut}`);
  const Wenc = sae.param('W_enc');
  const benc = sae.param('b_enc');
  const Wdec = sae.param('W_dec');
  const bdec = sae.param('b_dec');
  const dev = new Device(backend);
  try {
    // Forward. xc = x − b_dec (SAEs with apply_b_dec_to_input), pre = xc W_enc + b_enc.
    const centre = c.apply_b_dec_to_input && !isTranscoder(c);
    const xc = centre ? new Float32Array(B * dIn) : x;
    if (centre) for (let r = 0; r < B; r++) for (let j = 0; j < dIn; j++) xc[r * dIn + j] = x[r * dIn + j]! - bdec[j]!;
    const xcT = dev.up(xc, [B, dIn]);
    const WencT = dev.up(Wenc, [dIn, n]);
    const WdecT = dev.up(Wdec, [n, dOut]);
    const pre = dev.mm(xcT, WencT); // [B, n]
    for (let r = 0; r < B; r++) for (let i = 0; i < n; i++) pre[r * n + i] += benc[i]!;

    let act: ActivationResult;
    let minPositive: number | undefined;
    let theta: Float32Array | null = null;
    const arch = c.architecture;
    if (arch === 'topk') act = topkAct(pre, B, n, c.k!);
    else if (arch === 'batchtopk') { const r = batchTopkAct(pre, B, c.k!); act = r; minPositive = r.minPositive; }
    else if (arch === 'jumprelu' || arch === 'jumprelu_transcoder') {
      theta = s.logThreshold ? s.logThreshold.map(Math.exp) : sae.param('threshold');
      act = jumpreluAct(pre, n, theta);
    } else act = reluAct(pre);
    const { acts, gate } = act;

    const actsT = dev.up(acts, [B, n]);
    const out = dev.mm(actsT, WdecT); // [B, dOut]
    let Wskip: Float32Array | null = null;
    let xT: Tensor | null = null;
    if (arch === 'skip_transcoder') {
      Wskip = sae.param('W_skip');
      xT = xcT;
      const skip = dev.mm(xT, dev.up(Wskip, [dOut, dIn]), { transB: true });
      for (let i = 0; i < out.length; i++) out[i] += skip[i]!;
    }
    const e = new Float32Array(B * dOut); // out − target
    let sq = 0;
    for (let r = 0; r < B; r++) for (let j = 0; j < dOut; j++) {
      const v = out[r * dOut + j]! + bdec[j]! - target[r * dOut + j]!;
      e[r * dOut + j] = v;
      sq += v * v;
    }
    const mse = sq / B;
    // FVU of the batch (SAELens' explained_variance: 1 − Σ‖e‖² / Σ‖t − mean(t)‖²).
    const tMean = new Float64Array(dOut);
    for (let r = 0; r < B; r++) for (let j = 0; j < dOut; j++) tMean[j] += target[r * dOut + j]!;
    for (let j = 0; j < dOut; j++) tMean[j] /= B;
    let tv = 0;
    for (let r = 0; r < B; r++) for (let j = 0; j < dOut; j++) tv += (target[r * dOut + j]! - tMean[j]!) ** 2;

    // Backward of the MSE: g_out = 2e / B.
    const gOut = new Float32Array(B * dOut);
    for (let i = 0; i < gOut.length; i++) gOut[i] = (2 * e[i]!) / B;
    const gOutT = dev.up(gOut, [B, dOut]);
    const dWdec = dev.mm(actsT, gOutT, { transA: true }); // [n, dOut]
    const dbdec = new Float32Array(dOut);
    for (let r = 0; r < B; r++) for (let j = 0; j < dOut; j++) dbdec[j] += gOut[r * dOut + j]!;
    const gActs = dev.mm(gOutT, WdecT, { transB: true }); // [B, n]
    const grads = new Map<string, Float32Array>();
    if (Wskip && xT) grads.set('W_skip', dev.mm(gOutT, xT, { transA: true })); // [dOut, dIn]

    let sparsity = 0;
    let aux = 0;
    const gPre = new Float32Array(B * n);
    const fireCounts = new Float32Array(n);
    let active = 0;
    for (let r = 0; r < B; r++) for (let i = 0, o = r * n; i < n; i++) if (acts[o + i] !== 0) { fireCounts[i]++; active++; }

    if (arch === 'standard' || arch === 'transcoder' || arch === 'skip_transcoder') {
      // L1 of the activations weighted by the decoder row norms, mean over rows (SAELens 'standard').
      const norms = rowNorms(Wdec, n, dOut);
      const actSum = new Float64Array(n);
      for (let r = 0; r < B; r++) for (let i = 0; i < n; i++) actSum[i] += acts[r * n + i]!;
      for (let i = 0; i < n; i++) sparsity += actSum[i]! * norms[i]!;
      sparsity *= s.coefficient / B;
      const cb = s.coefficient / B;
      for (let r = 0; r < B; r++) for (let i = 0; i < n; i++) {
        const k = r * n + i;
        if (gate[k]) gPre[k] = gActs[k]! + cb * norms[i]!;
      }
      for (let i = 0; i < n; i++) {
        if (norms[i]! === 0 || actSum[i] === 0) continue;
        const f = (cb * actSum[i]!) / norms[i]!;
        for (let j = 0; j < dOut; j++) dWdec[i * dOut + j] += f * Wdec[i * dOut + j]!;
      }
    } else if (theta) {
      // JumpReLU: straight-through gradients of the threshold, L0 ('step') sparsity loss.
      const bw = s.bandwidth ?? 0.05;
      const dTheta = new Float64Array(n);
      let l0sum = 0;
      const cb = s.coefficient / B;
      for (let r = 0; r < B; r++) for (let i = 0; i < n; i++) {
        const k = r * n + i;
        const p = pre[k]!;
        const t = theta[i]!;
        const rc = rect((p - t) / bw);
        if (p > t) l0sum++;
        if (gate[k]) gPre[k] = gActs[k]!;
        if (rc) dTheta[i] += -(t / bw) * gActs[k]! - (1 / bw) * cb;
      }
      sparsity = cb * l0sum;
      if (s.logThreshold) grads.set('log_threshold', Float32Array.from(dTheta, (g, i) => g * theta![i]!));
      else grads.set('threshold', Float32Array.from(dTheta));
    } else {
      for (let k = 0; k < gPre.length; k++) if (gate[k]) gPre[k] = gActs[k]!;
    }

    const dead = input.dead;
    const numDead = dead ? dead.reduce((a, b) => a + b, 0) : 0;
    if (dead && numDead > 0 && (arch === 'topk' || arch === 'batchtopk')) {
      // Auxiliary-k (SAELens / EleutherAI): the top k_aux dead pre-activations reconstruct the residual.
      let kAux = Math.floor(dIn / 2);
      const scale = Math.min(numDead / kAux, 1);
      kAux = Math.min(kAux, numDead);
      const sel = new Uint8Array(B * n);
      topkRows(pre, B, n, kAux, sel, dead);
      const auxActs = new Float32Array(B * n);
      for (let k = 0; k < sel.length; k++) if (sel[k]) auxActs[k] = pre[k]!;
      const auxActsT = dev.up(auxActs, [B, n]);
      const auxOut = dev.mm(auxActsT, WdecT);
      const coef = (s.auxCoefficient ?? 1) * scale;
      const gAux = new Float32Array(B * dOut);
      let asq = 0;
      for (let r = 0; r < B; r++) for (let j = 0; j < dOut; j++) {
        const k = r * dOut + j;
        const v = auxOut[k]! + bdec[j]! + e[k]!; // recons − residual, residual = target − out = −e
        asq += v * v;
        gAux[k] = (2 * coef * v) / B;
        dbdec[j] += gAux[k]!;
      }
      aux = (coef * asq) / B;
      const gAuxT = dev.up(gAux, [B, dOut]);
      const dW2 = dev.mm(auxActsT, gAuxT, { transA: true });
      for (let i = 0; i < dW2.length; i++) dWdec[i] += dW2[i]!;
      const gAuxActs = dev.mm(gAuxT, WdecT, { transB: true });
      for (let k = 0; k < sel.length; k++) if (sel[k]) gPre[k] += gAuxActs[k]!;
    } else if (dead && numDead > 0 && s.ghostGrads && (arch === 'standard' || arch === 'transcoder' || arch === 'skip_transcoder')) {
      aux = ghostGrads(dev, pre, e, B, n, dOut, dead, WdecT, dWdec, gPre);
    }

    const gPreT = dev.up(gPre, [B, n]);
    const dWenc = dev.mm(xcT, gPreT, { transA: true }); // [dIn, n]
    const dbenc = new Float32Array(n);
    for (let r = 0; r < B; r++) for (let i = 0; i < n; i++) dbenc[i] += gPre[r * n + i]!;
    if (centre) {
      // xc = x − b_dec: b_dec also receives −Σ_rows g_pre W_encᵀ = −W_enc · db_enc.
      for (let j = 0; j < dIn; j++) {
        let a = 0;
        for (let i = 0; i < n; i++) a += Wenc[j * n + i]! * dbenc[i]!;
        dbdec[j] -= a;
      }
    }
    grads.set('W_enc', dWenc);
    grads.set('b_enc', dbenc);
    grads.set('W_dec', dWdec);
    grads.set('b_dec', dbdec);
    return {
      loss: mse + sparsity + aux, mse, sparsity, aux, l0: active / B, fvu: tv > 0 ? sq / tv : NaN,
      grads, fireCounts, minPositive,
    };
  } finally {
    dev.dispose();
  }
}

/** ‖W[i]‖ for each row of W [rows, cols]. */
export function rowNorms(W: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(rows);
  for (let i = 0; i < rows; i++) {
    let s = 0;
    for (let j = 0; j < cols; j++) s += W[i * cols + j]! ** 2;
    out[i] = Math.sqrt(s);
  }
  return out;
}

/**
 * Ghost grads (SAELens ≤ 5): dead features, through exp(pre), reconstruct the residual at half its
 * norm, the per-element loss rescaled to the main MSE; adds to dW_dec and g_pre, returns the loss.
 */
function ghostGrads(
  dev: Device, pre: Float32Array, e: Float32Array, B: number, n: number, d: number, dead: Uint8Array,
  WdecT: Tensor, dWdec: Float32Array, gPre: Float32Array,
): number {
  const ga = new Float32Array(B * n);
  for (let r = 0; r < B; r++) for (let i = 0; i < n; i++) if (dead[i]) ga[r * n + i] = Math.exp(pre[r * n + i]!);
  const gaT = dev.up(ga, [B, n]);
  const go = dev.mm(gaT, WdecT); // [B, d]
  const g = new Float32Array(B * d);
  let loss = 0;
  for (let r = 0; r < B; r++) {
    let nr = 0;
    let ng = 0;
    for (let j = 0; j < d; j++) { nr += e[r * d + j]! ** 2; ng += go[r * d + j]! ** 2; }
    const scale = Math.sqrt(nr) / (1e-6 + 2 * Math.sqrt(ng));
    for (let j = 0; j < d; j++) {
      const k = r * d + j;
      const resid = -e[k]!;
      const gv = go[k]! * scale;
      const m = (gv - resid) ** 2;
      const rescale = e[k]! ** 2 / (m + 1e-6);
      loss += rescale * m;
      g[k] = ((rescale * 2 * (gv - resid)) / (B * d)) * scale;
    }
  }
  const gT = dev.up(g, [B, d]);
  const dW = dev.mm(gaT, gT, { transA: true });
  for (let i = 0; i < dW.length; i++) dWdec[i] += dW[i]!;
  const gga = dev.mm(gT, WdecT, { transB: true });
  for (let k = 0; k < gga.length; k++) if (ga[k]) gPre[k] += gga[k]! * ga[k]!;
  return loss / (B * d);
}
