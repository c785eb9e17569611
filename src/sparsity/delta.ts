// Delta inference (temporal sparsity, as delta networks do it: Neil et al. 2017, "Delta Networks
// for Optimized Recurrent Network Computation"): at each decode step a linear layer y = W x + b
// propagates only the input changes that are large enough. Per layer it keeps x̂ (the input as
// last propagated) and y; a step computes Δ = x − x̂, zeroes |Δ| < θ, then y ← y + W·Δ and
// x̂ ← x where Δ was propagated. The skipped columns of W are the operations saved; the error the
// skipped changes leave is measured as KL to the dense model (`deltaSweep`).
// Layers covered: every projection of the attention input (q, k, v or fused qkv), the attention
// output, and the MLP's three projections. Batched decode: x̂ and y hold one row per sequence
// ([batch, in], [batch, out]) and each row has its own change mask (a sequence propagates only its
// own large changes; the sparse kernel lists the kept inputs row by row). A call of more than one
// position per sequence (a prompt), or of another batch size, runs dense and (re)starts the state
// from each sequence's last position. With `kernels` the products read only the propagated rows of
// the weight (`sparseMatmul`, over [in, out] copies of the weights); without, a dense product of
// the sparse Δ gives the same values, and the savings are counted, not timed.
import { tensor } from '../ops/creation.js';
import { abs, add, ge, sub, where } from '../ops/elementwise.js';
import { logSoftmax } from '../ops/nn.js';
import { sum } from '../ops/reduce.js';
import { sparseMatmul } from '../ops/sparse.js';
import { keep, tidy } from '../tensor/engine.js';
import type { Tensor } from '../tensor/tensor.js';
import { matmulWeight, outFeatures, type Linear } from '../models/layers/linear.js';
import { KVCache } from '../models/layers/kv-cache.js';
import type { CausalLM } from '../models/model.js';
import { rowsOf } from './apply.js';

export interface DeltaCounts {
  /** Multiply-adds the covered layers would do densely in decode steps. */
  macs: number;
  /** Those actually done (propagated input columns × outputs). */
  done: number;
}

class LinearDelta {
  private xhat?: Tensor; // [batch, in]
  private y?: Tensor; // [batch, out]

  constructor(private readonly threshold: number, private readonly rows: Tensor | undefined, private readonly counts: DeltaCounts) {}

  project(x: Tensor, l: Linear): Tensor {
    const din = x.shape.at(-1)!;
    const dout = outFeatures(l);
    const M = x.size / din;
    const lead = x.shape.slice(0, -1);
    // x [batch, pos, in] (or [rows, in]): one position per sequence at a decode step
    const pos = x.rank >= 3 ? x.shape.at(-2)! : 1;
    const B = M / pos;
    if (pos !== 1 || !this.xhat || !this.y || this.xhat.shape[0] !== B) {
      // a prompt (or the first step, or another batch): dense, and the state restarts from each
      // sequence's last position
      const y = tidy(() => {
        const z = matmulWeight(x, l.weight, l.layout);
        return l.bias ? add(z, l.bias) : z;
      }); // [..., out]
      this.reset();
      this.xhat = keep(x.reshape([B, pos, din]).narrow(1, pos - 1, 1).reshape([B, din]).contiguous());
      this.y = keep(y.reshape([B, pos, dout]).narrow(1, pos - 1, 1).reshape([B, dout]).contiguous());
      return y;
    }
    const x2 = x.reshape([B, din]);
    const { xNew, yNew, kept } = tidy(() => {
      const d = sub(x2, this.xhat!); // [batch, in]
      const mask = ge(abs(d), this.threshold); // each row its own change mask
      const dz = where(mask, d, 0);
      const dy = this.rows ? sparseMatmul(dz, this.rows) : matmulWeight(dz, l.weight, l.layout); // [batch, out]
      return { xNew: where(mask, x2, this.xhat!), yNew: add(this.y!, dy), kept: sum(mask.cast('f32').reshape([-1])) };
    });
    x2.dispose();
    const n = kept.item();
    kept.dispose();
    this.counts.macs += B * din * dout;
    this.counts.done += n * dout;
    this.reset();
    this.xhat = keep(xNew);
    this.y = keep(yNew);
    return yNew.reshape([...lead, dout]);
  }

  reset(): void {
    this.xhat?.dispose();
    this.y?.dispose();
    this.xhat = this.y = undefined;
  }
}

export interface AppliedDelta {
  readonly counts: DeltaCounts;
  /** Forget the state (a new sequence also restarts it: its prompt has several rows). */
  reset(): void;
  remove(): void;
}

/** Turns delta inference on for every covered layer of `model`, with threshold θ on |Δ|. */
export function applyDelta(model: CausalLM, threshold: number, o: { kernels?: boolean } = {}): AppliedDelta {
  if (!(threshold >= 0)) throw new RangeError(`delta inference: threshold must be >= 0, got ${threshold}`);
  const counts: DeltaCounts = { macs: 0, done: 0 };
  const states: { l: Linear; s: LinearDelta; rows?: Tensor }[] = [];
  for (let i = 0; i < model.dims.nLayers; i++) {
    const p = model.sparsityParts(i);
    for (const l of [...(p.attnIn ?? []), p.o, p.mlp?.in, p.mlp?.up, p.mlp?.out]) {
      if (!l) continue;
      if (l.delta) throw new Error(`delta inference: block ${i} already has it applied; remove it first`);
      const rows = o.kernels ? rowsOf(l) : undefined;
      const s = new LinearDelta(threshold, rows, counts);
      l.delta = s;
      states.push({ l, s, rows });
    }
  }
  if (!states.length) throw new Error(`delta inference: ${model.dims.arch} lists no projections it can reach`);
  return {
    counts,
    reset: () => { for (const x of states) x.s.reset(); },
    remove: () => {
      for (const x of states) { delete x.l.delta; x.s.reset(); x.rows?.dispose(); }
      states.length = 0;
    },
  };
}

export interface DeltaRow {
  threshold: number;
  /** Share of the covered layers' decode multiply-adds skipped. */
  ops_saved: number;
  /** Mean KL(dense ‖ delta) of the next-token distributions over the decode steps. */
  kl: number;
  /** Share of steps where both pick the same next token. */
  top1: number;
}

/** Greedy decode of `steps` tokens after `prompt` (dense), then each threshold teacher-forced on the same tokens. */
export function deltaSweep(model: CausalLM, prompt: readonly number[], thresholds: readonly number[], steps: number): DeltaRow[] {
  if (prompt.length < 2) throw new Error('delta inference: the prompt needs at least 2 tokens (its last row starts the state)');
  if (prompt.length + steps > model.dims.nCtx) throw new Error(`delta inference: ${prompt.length} prompt tokens + ${steps} steps exceed the model's context of ${model.dims.nCtx}`);
  const run = (feed?: number[]): { lp: Float32Array[]; tokens: number[] } => {
    const cache = new KVCache();
    const lp: Float32Array[] = [];
    const tokens: number[] = [];
    try {
      let ids = [...prompt];
      for (let s = 0; s <= steps; s++) {
        const x = tensor(ids, [1, ids.length], 'i32', { backend: model.backend });
        const row = tidy(() => logSoftmax(model.forward(x, { cache, logits: 'last' })).dataSync() as Float32Array);
        x.dispose();
        let best = 0;
        for (let v = 1; v < row.length; v++) if (row[v]! > row[best]!) best = v;
        if (s > 0) lp.push(row); // decode steps only (the prompt row is exact in every mode)
        const next = feed ? feed[s]! : best;
        tokens.push(next);
        ids = [next];
      }
    } finally {
      cache.dispose();
    }
    return { lp, tokens };
  };
  const dense = run();
  const out: DeltaRow[] = [];
  for (const th of thresholds) {
    const d = applyDelta(model, th);
    try {
      const got = run(dense.tokens);
      let kl = 0, agree = 0;
      got.lp.forEach((g, s) => {
        const c = dense.lp[s]!;
        let k = 0, ac = 0, ag = 0;
        for (let v = 0; v < c.length; v++) {
          if (c[v]! > -Infinity) k += Math.exp(c[v]!) * (c[v]! - g[v]!);
          if (c[v]! > c[ac]!) ac = v;
          if (g[v]! > g[ag]!) ag = v;
        }
        kl += k;
        if (ac === ag) agree++;
      });
      out.push({ threshold: th, ops_saved: d.counts.macs ? 1 - d.counts.done / d.counts.macs : 0, kl: kl / steps, top1: agree / steps });
    } finally {
      d.remove();
    }
  }
  return out;
}
