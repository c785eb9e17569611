// SAE training kept on an asynchronous backend (WebGPU): weights, Adam moments and dead-feature
// counters live there as tensors, and a whole step (forward, backward, decoder-gradient projection,
// global clipping, Adam, unit-norm decoder rows) is queued as ops with one read of a few numbers
// per step (the losses, the gradient norm and the dead count the next step needs). The same
// arithmetic as step.ts + train.ts do on host arrays (SAELens' semantics); train.ts takes this
// path when the backend cannot read synchronously. TopK and ReLU-L1 ('standard') SAEs.
// Not for: transcoders, BatchTopK, JumpReLU or ghost grads on such backends (train.ts says so).
import type { Backend } from '../tensor/backend.js';
import { zeros } from '../ops/creation.js';
import { add, div, ge, gt, mul, ne, relu, rsqrt, sqrt, square, sub, where } from '../ops/elementwise.js';
import { cast, concat } from '../ops/layout.js';
import { matmul } from '../ops/linalg.js';
import { adamwStep } from '../ops/optim.js';
import { mean, reduce, sum, topk } from '../ops/reduce.js';
import { keep, tidy } from '../tensor/engine.js';
import { Tensor } from '../tensor/tensor.js';
import type { Sae } from './sae.js';
import type { SaeLossTerms } from './step.js';

/** The architectures whose training step runs on an asynchronous backend. */
export const DEVICE_SAE_ARCHITECTURES = ['topk', 'standard'] as const;

/**
 * The k largest entries of each row of pre [rows, n] as a u8 mask: entries at or above the row's
 * k-th largest value (the `topk` op's last value). Exactly k per row unless values tie at the k-th
 * (then all of them pass; the host trainer keeps the lower indices), which real-valued
 * pre-activations do with probability ~0. A mask, not a scatter of the selected indices: the
 * backend's scatterAdd visits every (target, index) pair, far too slow at [4096, 24576].
 */
export function topkMaskDevice(pre: Tensor, k: number): Tensor {
  return tidy(() => ge(pre, reduce('min', topk(pre, k, -1).values, -1, { keepDims: true })));
}

/** TopK activations on the backend: the k largest entries of each row of pre [rows, n], ReLU'd, the rest 0. */
export function topkActsDevice(pre: Tensor, k: number): { acts: Tensor; mask: Tensor } {
  const mask = topkMaskDevice(pre, k);
  return { acts: where(mask, relu(pre), 0), mask };
}

export interface DeviceStepSettings {
  coefficient: number;
  auxCoefficient: number;
  lr: number;
  /** Updates taken including this one. */
  t: number;
  beta1: number;
  beta2: number;
  clip: number;
  window: number;
  normalizeDecoder: boolean;
}

export interface DeviceStepStats extends SaeLossTerms {
  gnorm: number;
  /** Dead features for the next step (not fired for more than `window` steps). */
  deadNext: number;
}

const NAMES = ['W_enc', 'b_enc', 'W_dec', 'b_dec'] as const;
type Name = (typeof NAMES)[number];

/** The training state of one SAE on an asynchronous backend. */
export class DeviceSaeTrainer {
  private p: Record<Name, Tensor>;
  private m: Record<Name, Tensor>;
  private v: Record<Name, Tensor>;
  private sinceFired: Tensor; // [d_sae]
  private fireTotal: Tensor; // [d_sae]
  private dead = 0;

  constructor(
    private readonly sae: Sae, readonly backend: Backend,
    adamM: Map<string, Float32Array>, adamV: Map<string, Float32Array>, sinceFired: Float32Array, fireTotal: Float64Array, window: number,
  ) {
    const up = (a: Float32Array, shape: number[]) => keep(Tensor.from(a, shape, 'f32', backend));
    const shape = (nm: Name) => (nm === 'W_enc' ? [sae.dIn, sae.dSae] : nm === 'W_dec' ? [sae.dSae, sae.dOut] : nm === 'b_enc' ? [sae.dSae] : [sae.dOut]);
    const rec = (f: (nm: Name) => Tensor) => Object.fromEntries(NAMES.map((nm) => [nm, f(nm)])) as Record<Name, Tensor>;
    this.p = rec((nm) => up(sae.param(nm), shape(nm)));
    this.m = rec((nm) => up(adamM.get(nm)!, shape(nm)));
    this.v = rec((nm) => up(adamV.get(nm)!, shape(nm)));
    this.sinceFired = up(sinceFired, [sae.dSae]);
    this.fireTotal = up(Float32Array.from(fireTotal), [sae.dSae]);
    for (const s of sinceFired) if (s > window) this.dead++;
  }

  /** Dead features before the next step. */
  get deadCount(): number {
    return this.dead;
  }

  /** One training step on x [rows, d_in] (already scaled); the weights on the backend are updated. */
  async step(x: Float32Array, rows: number, s: DeviceStepSettings): Promise<DeviceStepStats> {
    const { sae, backend } = this;
    const arch = sae.cfg.architecture;
    const [dIn, n, dOut] = [sae.dIn, sae.dSae, sae.dOut];
    const numDead = this.dead;
    const next = tidy(() => {
      const { W_enc: Wenc, b_enc: benc, W_dec: Wdec, b_dec: bdec } = this.p;
      const xt = Tensor.from(x, [rows, dIn], 'f32', backend);
      const xc = sae.cfg.apply_b_dec_to_input ? sub(xt, bdec) : xt; // [rows, d_in]
      const pre = add(matmul(xc, Wenc), benc); // [rows, d_sae]
      let acts: Tensor;
      let gPreOf: (gActs: Tensor) => Tensor;
      let sparsity: Tensor = zeros([1], 'f32', { backend });
      let dWdecL1: Tensor | null = null;
      if (arch === 'topk') {
        const a = topkActsDevice(pre, sae.cfg.k!);
        acts = a.acts;
        gPreOf = (gActs) => where(a.mask, where(gt(pre, 0), gActs, 0), 0);
      } else {
        // ReLU with the L1 penalty weighted by the decoder row norms (SAELens 'standard').
        acts = relu(pre);
        const norms = sqrt(sum(square(Wdec), 1)); // [d_sae]
        const actSum = sum(acts, 0); // [d_sae]
        const cb = s.coefficient / rows;
        sparsity = mul(sum(mul(actSum, norms), 0, { keepDims: true }), cb);
        gPreOf = (gActs) => where(gt(pre, 0), add(gActs, mul(norms, cb)), 0);
        dWdecL1 = mul(where(gt(norms, 0), div(mul(actSum, cb), norms), 0).reshape([n, 1]), Wdec);
      }
      const out = add(matmul(acts, Wdec), bdec); // [rows, d_out]
      const e = sub(out, xt); // out − target
      const sq = sum(square(e).reshape([-1]), 0, { keepDims: true });
      const tv = sum(square(sub(xt, mean(xt, 0))).reshape([-1]), 0, { keepDims: true });
      const gOut = mul(e, 2 / rows);
      let dWdec = matmul(acts, gOut, { transA: true }); // [d_sae, d_out]
      if (dWdecL1) dWdec = add(dWdec, dWdecL1);
      let dbdec = sum(gOut, 0); // [d_out]
      let gPre = gPreOf(matmul(gOut, Wdec, { transB: true })); // [rows, d_sae]
      let aux: Tensor = zeros([1], 'f32', { backend });
      if (arch === 'topk' && numDead > 0) {
        // Auxiliary-k: the top k_aux dead pre-activations reconstruct the residual.
        let kAux = Math.floor(dIn / 2);
        const coef = s.auxCoefficient * Math.min(numDead / kAux, 1);
        kAux = Math.min(kAux, numDead);
        const deadMask = gt(this.sinceFired, s.window); // [d_sae] u8
        const masked = where(deadMask, pre, -Infinity);
        const sel = topkMaskDevice(masked, kAux); // dead units only: kAux <= dead, the others are -inf
        const auxActs = where(sel, pre, 0);
        const v = add(add(matmul(auxActs, Wdec), bdec), e); // recons − residual
        aux = mul(sum(square(v).reshape([-1]), 0, { keepDims: true }), coef / rows);
        const gAux = mul(v, (2 * coef) / rows);
        dbdec = add(dbdec, sum(gAux, 0));
        dWdec = add(dWdec, matmul(auxActs, gAux, { transA: true }));
        gPre = add(gPre, where(sel, matmul(gAux, Wdec, { transB: true }), 0));
      }
      const dWenc = matmul(xc, gPre, { transA: true }); // [d_in, d_sae]
      const dbenc = sum(gPre, 0); // [d_sae]
      if (sae.cfg.apply_b_dec_to_input) dbdec = sub(dbdec, matmul(Wenc, dbenc.reshape([n, 1])).reshape([dIn]));
      if (s.normalizeDecoder) {
        // Remove from each decoder row's gradient its component along the row.
        const nn = sum(square(Wdec), 1, { keepDims: true }); // [d_sae, 1]
        const f = where(gt(nn, 0), div(sum(mul(dWdec, Wdec), 1, { keepDims: true }), nn), 0);
        dWdec = sub(dWdec, mul(f, Wdec));
      }
      const grads: Record<Name, Tensor> = { W_enc: dWenc, b_enc: dbenc, W_dec: dWdec, b_dec: dbdec };
      const gsq = NAMES.map((nm) => sum(square(grads[nm]).reshape([-1]), 0, { keepDims: true })).reduce((a, b) => add(a, b));
      const gnorm = sqrt(gsq);
      const scale = s.clip > 0 ? where(gt(gnorm, s.clip), div(s.clip, add(gnorm, 1e-6)), 1) : null;
      const p: Partial<Record<Name, Tensor>> = {};
      const m: Partial<Record<Name, Tensor>> = {};
      const vv: Partial<Record<Name, Tensor>> = {};
      for (const nm of NAMES) {
        const g = scale ? mul(grads[nm], scale) : grads[nm];
        [p[nm], m[nm], vv[nm]] = adamwStep(this.p[nm], g, this.m[nm], this.v[nm], { lr: s.lr, beta1: s.beta1, beta2: s.beta2, eps: 1e-8, weightDecay: 0, step: s.t });
      }
      if (s.normalizeDecoder) {
        const ss = sum(square(p.W_dec!), 1, { keepDims: true });
        p.W_dec = mul(p.W_dec!, where(gt(ss, 0), rsqrt(ss), 0));
      }
      const firedCount = sum(cast(ne(acts, 0), 'f32'), 0); // [d_sae]
      const sinceFired = where(gt(firedCount, 0), 0, add(this.sinceFired, 1));
      const fireTotal = add(this.fireTotal, firedCount);
      const deadNext = sum(cast(gt(sinceFired, s.window), 'f32'), 0, { keepDims: true });
      const active = sum(firedCount, 0, { keepDims: true });
      const stats = concat([sq, sparsity, aux, active, tv, gnorm, deadNext], 0); // [7]
      return { p, m, v: vv, sinceFired, fireTotal, stats };
    });
    for (const nm of NAMES) {
      this.p[nm].dispose(); this.m[nm].dispose(); this.v[nm].dispose();
      this.p[nm] = next.p[nm]!; this.m[nm] = next.m[nm]!; this.v[nm] = next.v[nm]!;
    }
    this.sinceFired.dispose(); this.fireTotal.dispose();
    this.sinceFired = next.sinceFired; this.fireTotal = next.fireTotal;
    const st = (await next.stats.data()) as Float32Array;
    next.stats.dispose();
    const [sq, sparsity, aux, active, tv, gnorm, deadNext] = Array.from(st);
    this.dead = deadNext!;
    const mse = sq! / rows;
    return { loss: mse + sparsity! + aux!, mse, sparsity: sparsity!, aux: aux!, l0: active! / rows, fvu: tv! > 0 ? sq! / tv! : NaN, gnorm: gnorm!, deadNext: deadNext! };
  }

  /** Copies the state back into the host arrays (weights into the SAE, which is marked changed). */
  async download(adamM: Map<string, Float32Array>, adamV: Map<string, Float32Array>, sinceFired: Float32Array, fireTotal: Float64Array): Promise<void> {
    for (const nm of NAMES) {
      this.sae.param(nm).set((await this.p[nm].data()) as Float32Array);
      adamM.get(nm)!.set((await this.m[nm].data()) as Float32Array);
      adamV.get(nm)!.set((await this.v[nm].data()) as Float32Array);
    }
    sinceFired.set((await this.sinceFired.data()) as Float32Array);
    fireTotal.set((await this.fireTotal.data()) as Float32Array);
    this.sae.changed();
  }

  dispose(): void {
    for (const nm of NAMES) { this.p[nm].dispose(); this.m[nm].dispose(); this.v[nm].dispose(); }
    this.sinceFired.dispose();
    this.fireTotal.dispose();
  }
}
