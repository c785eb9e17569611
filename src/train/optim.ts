// Optimizers over a model's parameters, updated in place (the model reads these very tensors):
// SGD with momentum (PyTorch's SGD) and AdamW with decoupled weight decay (PyTorch's AdamW:
// decay p ← p(1 - lr·wd), bias-corrected moments, eps added outside the square root).
// Parameters are split into named groups (by default 'decay' for matrices, 'no_decay' for
// biases and norm weights); a group sets the weight decay. Updates run without recording.
import { noGrad } from '../autograd/tape.js';
import { zeros } from '../ops/creation.js';
import { add, div, mul, sqrt, square, sub } from '../ops/elementwise.js';
import { assign } from '../ops/layout.js';
import { adamwStep } from '../ops/optim.js';
import { runsNatively } from '../tensor/backend.js';
import { keep, tidy } from '../tensor/engine.js';
import type { Tensor } from '../tensor/tensor.js';

export interface ParamGroup {
  name: string;
  /** Parameter names in this group. */
  params: string[];
  weightDecay: number;
}

/** 'decay' (rank >= 2: matrices, embeddings) and 'no_decay' (biases, norm weights), as nanoGPT does. */
export function defaultGroups(params: ReadonlyMap<string, Tensor>, weightDecay: number): ParamGroup[] {
  const decay: string[] = [];
  const rest: string[] = [];
  for (const [n, t] of params) (t.rank >= 2 ? decay : rest).push(n);
  return [{ name: 'decay', params: decay, weightDecay }, { name: 'no_decay', params: rest, weightDecay: 0 }].filter((g) => g.params.length > 0);
}

export interface OptimizerState {
  tensors: Map<string, Tensor>;
  meta: Record<string, string>;
}

/** Bytes of a parameter block updated at once. */
const CHUNK_BYTES = 4 << 20;

export abstract class Optimizer {
  abstract readonly kind: string;
  /** Updates taken so far. */
  step = 0;
  protected readonly group = new Map<string, ParamGroup>();
  protected readonly slots = new Map<string, Tensor>();

  constructor(readonly params: ReadonlyMap<string, Tensor>, readonly groups: ParamGroup[]) {
    for (const g of groups) for (const n of g.params) {
      if (!params.has(n)) throw new Error(`optimizer: group '${g.name}' names '${n}', which is not a parameter`);
      this.group.set(n, g);
    }
    for (const n of params.keys()) if (!this.group.has(n)) throw new Error(`optimizer: parameter '${n}' is in no group`);
  }

  /** The group a parameter belongs to. */
  groupOf(name: string): string {
    return this.group.get(name)!.name;
  }

  /**
   * One update with learning rate `lr` from `grads` (by parameter name; a missing gradient skips
   * that parameter), each multiplied by `gradScale` first (gradient clipping).
   */
  update(grads: ReadonlyMap<string, Tensor>, lr: number, gradScale = 1): void {
    this.step++;
    noGrad(() => {
      for (const [name, p] of this.params) {
        const g = grads.get(name);
        if (!g) continue;
        const wd = this.group.get(name)!.weightDecay;
        // Large parameters are updated a block of rows at a time, so the temporaries of the update
        // stay small (an embedding's would otherwise be several copies of it at once).
        const rows = p.rank === 0 ? 1 : p.shape[0]!;
        const rowBytes = (p.size / Math.max(rows, 1)) * 4;
        const step = p.rank === 0 ? 1 : Math.max(1, Math.floor(CHUNK_BYTES / Math.max(rowBytes, 1)));
        for (let r0 = 0; r0 < rows; r0 += step) {
          tidy(() => {
            const n = Math.min(step, rows - r0);
            const whole = p.rank === 0 || n === rows;
            const pv = whole ? p : p.narrow(0, r0, n);
            const gv = whole ? g : g.narrow(0, r0, n);
            const view = (key: string) => { const full = this.slot(key, p); return whole ? full : full.narrow(0, r0, n); };
            // A whole state buffer is replaced by the new tensor (no copy); a block is written into it.
            const put = (key: string, t: Tensor) => (whole ? this.replaceSlot(key, t) : assign(view(key), t));
            const fused = this.fusedUpdate(name, pv, gv, lr, wd, view, put, gradScale);
            assign(pv, fused ?? this.updateOne(name, pv, gradScale === 1 ? gv : mul(gv, gradScale), lr, wd, view));
          });
        }
      }
    });
    this.fresh.clear();
  }

  /**
   * The new value of `p` (a block of rows of a parameter, or all of it) from its gradient `g`;
   * `slot(key)` is the same block of a state buffer (zeros at first), which the rule updates in
   * place with `assign`.
   */
  protected abstract updateOne(name: string, p: Tensor, g: Tensor, lr: number, wd: number, slot: (key: string) => Tensor): Tensor;

  /**
   * The same update as one fused op where the backend runs one natively (the gradient not yet
   * multiplied by `gradScale`), which stores the new state with `put`; null: use `updateOne`.
   */
  protected fusedUpdate(
    _name: string, _p: Tensor, _g: Tensor, _lr: number, _wd: number, _slot: (key: string) => Tensor,
    _put: (key: string, t: Tensor) => void, _gradScale: number,
  ): Tensor | null {
    return null;
  }

  /** Makes `t` the state buffer `key` (kept outside any scope), disposing the one it replaces. */
  private replaceSlot(key: string, t: Tensor): void {
    this.slots.get(key)?.dispose();
    this.slots.set(key, keep(t));
  }

  protected slot(key: string, like: Tensor): Tensor {
    let s = this.slots.get(key);
    if (!s) {
      s = keep(zeros(like.shape, like.dtype, { backend: like.backend }));
      this.slots.set(key, s);
      this.fresh.add(key);
    }
    return s;
  }

  /** Slots created during the current step (SGD's momentum starts from the first gradient). */
  protected readonly fresh = new Set<string>();

  /** Moments / buffers by name, and the scalars (for checkpoints). The tensors stay owned by the optimizer. */
  state(): OptimizerState {
    return { tensors: new Map(this.slots), meta: { kind: this.kind, step: String(this.step) } };
  }

  /** Restores `state()` (the tensors are taken over). */
  loadState(s: OptimizerState): void {
    if (s.meta.kind !== this.kind) throw new Error(`optimizer: the checkpoint holds ${s.meta.kind} state, this run uses ${this.kind}`);
    for (const t of this.slots.values()) t.dispose();
    this.slots.clear();
    for (const [k, t] of s.tensors) this.slots.set(k, keep(t));
    this.step = Number(s.meta.step);
  }

  dispose(): void {
    for (const t of this.slots.values()) t.dispose();
    this.slots.clear();
  }
}

export interface AdamWOptions {
  betas?: [number, number];
  eps?: number;
  /** Use the fused `adamw` op where the backend runs it natively (default true). */
  fused?: boolean;
}

export class AdamW extends Optimizer {
  readonly kind = 'adamw';
  readonly beta1: number;
  readonly beta2: number;
  readonly eps: number;
  private readonly fuse: boolean;

  constructor(params: ReadonlyMap<string, Tensor>, groups: ParamGroup[], o: AdamWOptions = {}) {
    super(params, groups);
    [this.beta1, this.beta2] = o.betas ?? [0.9, 0.999];
    this.eps = o.eps ?? 1e-8;
    this.fuse = o.fused ?? true;
  }

  /** One `adamw` op per block where the backend has the kernel (WebGPU): 2 dispatches (the op, the copy into the parameter) instead of about 18. */
  protected override fusedUpdate(
    name: string, p: Tensor, g: Tensor, lr: number, wd: number, slot: (key: string) => Tensor,
    put: (key: string, t: Tensor) => void, gradScale: number,
  ): Tensor | null {
    if (!this.fuse || !runsNatively(p.backend, 'adamw')) return null;
    const m = slot(`exp_avg.${name}`);
    const v = slot(`exp_avg_sq.${name}`);
    const [np, nm, nv] = adamwStep(p, g, m, v, { lr, beta1: this.beta1, beta2: this.beta2, eps: this.eps, weightDecay: wd, step: this.step, gradScale });
    put(`exp_avg.${name}`, nm);
    put(`exp_avg_sq.${name}`, nv);
    return np;
  }

  protected updateOne(name: string, p: Tensor, g: Tensor, lr: number, wd: number, slot: (key: string) => Tensor): Tensor {
    const { beta1: b1, beta2: b2, eps, step: t } = this;
    const decayed = wd ? mul(p, 1 - lr * wd) : p;
    const m = slot(`exp_avg.${name}`);
    const v = slot(`exp_avg_sq.${name}`);
    assign(m, add(mul(m, b1), mul(g, 1 - b1)));
    assign(v, add(mul(v, b2), mul(square(g), 1 - b2)));
    const bc1 = 1 - b1 ** t;
    const bc2 = 1 - b2 ** t;
    const denom = add(div(sqrt(v), Math.sqrt(bc2)), eps);
    return sub(decayed, mul(div(m, denom), lr / bc1));
  }
}

export interface SgdOptions {
  momentum?: number;
  dampening?: number;
  nesterov?: boolean;
}

/** PyTorch's SGD: weight decay added to the gradient (coupled), then momentum. */
export class Sgd extends Optimizer {
  readonly kind = 'sgd';
  constructor(params: ReadonlyMap<string, Tensor>, groups: ParamGroup[], readonly o: SgdOptions = {}) {
    super(params, groups);
  }

  protected updateOne(name: string, p: Tensor, g: Tensor, lr: number, wd: number, slot: (key: string) => Tensor): Tensor {
    const mom = this.o.momentum ?? 0;
    let d = wd ? add(g, mul(p, wd)) : g;
    if (mom) {
      const key = `momentum_buffer.${name}`;
      const buf = slot(key);
      assign(buf, this.step === 1 || this.fresh.has(key) ? d : add(mul(buf, mom), mul(d, 1 - (this.o.dampening ?? 0))));
      d = this.o.nesterov ? add(d, mul(buf, mom)) : buf;
    }
    return sub(p, mul(d, lr));
  }
}
