// A sparse autoencoder (or transcoder) for inference: weights as host arrays (the trainer updates
// them in place), encode / decode / forward on any backend, and SAELens' hook points
// (`<site>.sae.hook_sae_input`, `.hook_sae_acts_pre`, `.hook_sae_acts_post`, `.hook_sae_recons`,
// `.hook_sae_error`, `.hook_sae_output`) so features can be read, ablated, clamped or steered.
// Shapes: x [..., d_in] -> acts [..., d_sae] -> out [..., d_out].
// Not for: training (step.ts, train.ts) or files (saelens.ts).
import type { Backend } from '../tensor/backend.js';
import { Hooks, NO_HOOKS } from '../models/hook-point.js';
import { add, div, gt, mul, relu, sqrt, square, sub, where } from '../ops/elementwise.js';
import { matmul } from '../ops/linalg.js';
import { mean, sum } from '../ops/reduce.js';
import { keep, tidy } from '../tensor/engine.js';
import { ShapeError } from '../tensor/errors.js';
import { fmtShape } from '../tensor/shape.js';
import { Tensor } from '../tensor/tensor.js';
import { topkAct } from './activation.js';
import { topkActsDevice } from './step-device.js';
import { isTranscoder, weightShapes, type SaeConfig } from './config.js';

export interface SaeForwardOptions {
  /** Hooks fired at `${prefix}hook_sae_*` (default none). */
  hooks?: Hooks;
  /** Prefix of the SAE's hook names, e.g. 'blocks.2.hook_resid_post.sae.' (default 'sae.'). */
  prefix?: string;
  /** Add the SAE's error (x - recons of an unhooked pass) so the output equals the input unless hooks change features. */
  useErrorTerm?: boolean;
}

export class Sae {
  /** Bumped whenever the host weights change, so device copies are refreshed. */
  private version = 0;
  private device: { backend: Backend; version: number; tensors: Map<string, Tensor> } | null = null;

  constructor(readonly cfg: SaeConfig, readonly params: Map<string, Float32Array>) {
    const shapes = weightShapes(cfg);
    for (const [name, shape] of Object.entries(shapes)) {
      const p = params.get(name);
      const n = shape.reduce((a, b) => a * b, 1);
      if (!p) throw new Error(`SAE (${cfg.architecture}): missing weight '${name}' ${fmtShape(shape)}`);
      if (p.length !== n) throw new ShapeError(`SAE (${cfg.architecture}): weight '${name}' has ${p.length} values; ${fmtShape(shape)} needs ${n}`);
    }
  }

  /** Zero weights of the config's shapes. */
  static zeros(cfg: SaeConfig): Sae {
    const m = new Map<string, Float32Array>();
    for (const [name, shape] of Object.entries(weightShapes(cfg))) m.set(name, new Float32Array(shape.reduce((a, b) => a * b, 1)));
    return new Sae(cfg, m);
  }

  get dIn(): number { return this.cfg.d_in; }
  get dSae(): number { return this.cfg.d_sae; }
  get dOut(): number { return this.cfg.d_out ?? this.cfg.d_in; }

  param(name: string): Float32Array {
    const p = this.params.get(name);
    if (!p) throw new Error(`SAE (${this.cfg.architecture}) has no weight '${name}'`);
    return p;
  }

  /** Call after changing the host weights in place. */
  changed(): void {
    this.version++;
  }

  /** The weight `name` on `backend` (cached until the next `changed()`); owned by the SAE. */
  weight(name: string, backend: Backend): Tensor {
    if (!this.device || this.device.backend !== backend || this.device.version !== this.version) {
      this.disposeDevice();
      this.device = { backend, version: this.version, tensors: new Map() };
    }
    let t = this.device.tensors.get(name);
    if (!t) {
      t = keep(Tensor.from(this.param(name), weightShapes(this.cfg)[name]!, 'f32', backend));
      this.device.tensors.set(name, t);
    }
    return t;
  }

  /** Feature activations of x [..., d_in] -> [..., d_sae]. */
  encode(x: Tensor, o: SaeForwardOptions = {}): Tensor {
    return tidy(() => this.encodeParts(x, o).acts);
  }

  /** Reconstruction [..., d_out] from feature activations [..., d_sae] (no input normalisation to undo). */
  decode(acts: Tensor, o: SaeForwardOptions = {}): Tensor {
    return tidy(() => {
      const hooks = o.hooks ?? NO_HOOKS;
      const p = o.prefix ?? 'sae.';
      return hooks.at(`${p}hook_sae_recons`, this.decodeLinear(acts));
    });
  }

  /** The reconstruction of x [..., d_in] as [..., d_out], firing the SAE's hook points. */
  forward(x: Tensor, o: SaeForwardOptions = {}): Tensor {
    return tidy(() => {
      const hooks = o.hooks ?? NO_HOOKS;
      const p = o.prefix ?? 'sae.';
      const { acts, undo, xIn } = this.encodeParts(x, o);
      let out = undo(hooks.at(`${p}hook_sae_recons`, this.decodeLinear(acts)));
      if (this.cfg.architecture === 'skip_transcoder') out = add(out, matmul(xIn, this.weight('W_skip', x.backend), { transB: true }));
      if (o.useErrorTerm) {
        // The error of the SAE as it is, without the user's hooks, so only what they change moves the output.
        const clean = this.forward(x, { prefix: p });
        const err = hooks.at(`${p}hook_sae_error`, sub(isTranscoder(this.cfg) ? clean : x, clean));
        out = add(out, err);
      }
      return hooks.at(`${p}hook_sae_output`, out);
    });
  }

  private checkInput(x: Tensor): void {
    if (x.shape.at(-1) !== this.dIn) {
      throw new ShapeError(`SAE: input ${fmtShape(x.shape)} does not match d_in ${this.dIn}${this.cfg.metadata.hook_name ? ` (trained on ${String(this.cfg.metadata.hook_name)})` : ''}`);
    }
  }

  private encodeParts(x: Tensor, o: SaeForwardOptions): { acts: Tensor; undo: (t: Tensor) => Tensor; xIn: Tensor } {
    this.checkInput(x);
    const hooks = o.hooks ?? NO_HOOKS;
    const p = o.prefix ?? 'sae.';
    const be = x.backend;
    const xIn = hooks.at(`${p}hook_sae_input`, x.dtype === 'f32' ? x.share() : x.cast('f32'));
    let normed = xIn;
    let undo = (t: Tensor) => t;
    const norm = this.cfg.normalize_activations;
    if (norm === 'constant_norm_rescale') {
      const coeff = div(Math.sqrt(this.dIn), sqrt(sum(square(xIn), -1, { keepDims: true })));
      normed = mul(xIn, coeff);
      undo = (t) => div(t, coeff);
    } else if (norm === 'layer_norm') {
      const mu = mean(xIn, -1, { keepDims: true });
      const centred = sub(xIn, mu);
      // torch.Tensor.std is the unbiased estimate.
      const std = sqrt(div(sum(square(centred), -1, { keepDims: true }), Math.max(1, this.dIn - 1)));
      normed = div(centred, add(std, 1e-5));
      undo = (t) => add(mul(t, std), mu);
    }
    const saeIn = this.cfg.apply_b_dec_to_input && !isTranscoder(this.cfg) ? sub(normed, this.weight('b_dec', be)) : normed;
    let pre = hooks.at(`${p}hook_sae_acts_pre`, add(matmul(saeIn, this.weight('W_enc', be)), this.weight('b_enc', be)));
    const rescale = this.cfg.architecture === 'topk' && this.cfg.rescale_acts_by_decoder_norm;
    if (rescale) pre = mul(pre, this.decoderNorms(be));
    let acts: Tensor;
    switch (this.cfg.architecture) {
      case 'topk': {
        if (!be.synchronous) { acts = topkActsDevice(pre.reshape([-1, this.dSae]), this.cfg.k!).acts.reshape(pre.shape); break; }
        const host = pre.dataSync() as Float32Array;
        const rows = host.length / this.dSae;
        acts = Tensor.from(topkAct(host, rows, this.dSae, this.cfg.k!).acts, pre.shape, 'f32', be);
        break;
      }
      case 'jumprelu': case 'jumprelu_transcoder': case 'batchtopk':
        acts = where(gt(pre, this.weight('threshold', be)), relu(pre), 0);
        break;
      default:
        acts = relu(pre);
    }
    acts = hooks.at(`${p}hook_sae_acts_post`, acts);
    if (rescale) acts = div(acts, this.decoderNorms(be));
    return { acts, undo, xIn };
  }

  private decodeLinear(acts: Tensor): Tensor {
    return add(matmul(acts, this.weight('W_dec', acts.backend)), this.weight('b_dec', acts.backend));
  }

  /** ||W_dec[i]|| per feature, [d_sae]. */
  decoderNorms(backend: Backend): Tensor {
    const W = this.param('W_dec');
    const d = this.dOut;
    const n = new Float32Array(this.dSae);
    for (let i = 0; i < this.dSae; i++) {
      let s = 0;
      for (let j = 0; j < d; j++) s += W[i * d + j]! ** 2;
      n[i] = Math.sqrt(s);
    }
    return Tensor.from(n, [this.dSae], 'f32', backend);
  }

  /** The hook-point names of this SAE under `prefix`. */
  static hookNames(prefix: string): string[] {
    return ['hook_sae_input', 'hook_sae_acts_pre', 'hook_sae_acts_post', 'hook_sae_recons', 'hook_sae_error', 'hook_sae_output'].map((h) => `${prefix}${h}`);
  }

  private disposeDevice(): void {
    if (this.device) for (const t of this.device.tensors.values()) t.dispose();
    this.device = null;
  }

  /** Frees the device copies (the host weights stay). */
  dispose(): void {
    this.disposeDevice();
  }
}
