// TEAL (Liu et al. 2024, "Training-Free Activation Sparsity in Large Language Models"): the input
// of every projection of a block (q, k, v or fused qkv; the attention output; the MLP's gate / up
// / in and its down projection) is thresholded by magnitude, each at the F-quantile of its |x| on
// calibration tokens: TEAL's uniform allocation (one sparsity for every projection; the paper's
// greedy per-projection allocation is not implemented). At decode the thresholds are fused into
// the product (`sparseMatmul` with thresholds), so a skipped input never reads its weight row and
// no thresholded copy of x is made. Unlike CHESS it needs no gated MLP and reaches every weight
// matrix of the block, attention included (keys and values are computed from the sparsified input;
// the cache stores them as computed).
// Not for: installing the plan (apply.ts).
import { tensor } from '../ops/creation.js';
import { sparseMatmul } from '../ops/sparse.js';
import { thresholdSparsify } from './rules.js';
import type { Linear, LinearSparsity } from '../models/layers/linear.js';
import type { CausalLM, SparsityParts } from '../models/model.js';
import type { Tensor } from '../tensor/tensor.js';
import type { TealSite } from './spec.js';

/** A block's projections by role, in a fixed order: attn.in.N (q, k, v or qkv), attn.out, mlp.in, mlp.up, mlp.out. */
export function blockLinears(parts: SparsityParts): [string, Linear][] {
  const out: [string, Linear][] = [];
  (parts.attnIn ?? []).forEach((l, i) => out.push([`attn.in.${i}`, l]));
  if (parts.o) out.push(['attn.out', parts.o]);
  if (parts.mlp) {
    out.push(['mlp.in', parts.mlp.in]);
    if (parts.mlp.up) out.push(['mlp.up', parts.mlp.up]);
    out.push(['mlp.out', parts.mlp.out]);
  }
  return out;
}

/** The input site a role reads (projections of one site read the same input). */
export function tealSite(role: string): TealSite {
  if (role.startsWith('attn.in.')) return 'attn.in';
  if (role === 'mlp.up') return 'mlp.in';
  return role as TealSite;
}

/** The q-quantile as in calibrate.ts of sorted |x| (threshold 0 for q = 0: nothing below it), and the share below it. */
export function kth(all: Float32Array, q: number): { t: number; below: number } {
  const n = all.length;
  if (q <= 0) return { t: 0, below: 0 };
  const k = Math.max(1, Math.min(n, Math.floor(n * q)));
  const t = all[k - 1]!;
  // the first index at or above t (binary search: the array is sorted)
  let lo = 0, hi = k - 1;
  while (lo < hi) { const m = (lo + hi) >> 1; if (all[m]! < t) lo = m + 1; else hi = m; }
  return { t, below: lo / n };
}

export interface TealLayer {
  /** Threshold on |x| of each projection's input, by role (blockLinears). */
  inputThresholds: Record<string, number>;
  /** Share of the inputs below their threshold on the calibration tokens, weighted by the weights each input gates. */
  calibrationSparsity: number;
}

/**
 * Records |x| at the input of every projection of `layers` over `ids` (chunks of `ctx`) and returns
 * each one's quantile at its site's sparsity (`F`: one for all, or per site). Recording rides on
 * the projections' input-sparsity slot, so it sees exactly what the product multiplies, in every
 * architecture.
 */
export function calibrateTeal(model: CausalLM, ids: readonly number[], layers: readonly number[], F: number | ((site: TealSite) => number), ctx: number): Map<number, TealLayer> {
  return tealThresholds(model, recordTealInputs(model, ids, layers, ctx), layers, typeof F === 'number' ? () => F : F);
}

/** Thresholds and calibration sparsity from recorded inputs (`recordTealInputs`), each site at `share(site)`. */
export function tealThresholds(model: CausalLM, samples: Map<Linear, Float32Array>, layers: readonly number[], share: (site: TealSite) => number): Map<number, TealLayer> {
  const out = new Map<number, TealLayer>();
  for (const l of layers) {
    const inputThresholds: Record<string, number> = {};
    let weighted = 0, weights = 0;
    for (const [role, lin] of blockLinears(model.sparsityParts(l))) {
      const { t, below } = kth(samples.get(lin)!, share(tealSite(role)));
      inputThresholds[role] = t;
      const size = lin.weight.shape.reduce((a, b) => a * b, 1);
      weighted += below * size;
      weights += size;
    }
    out.set(l, { inputThresholds, calibrationSparsity: weights ? weighted / weights : 0 });
  }
  return out;
}

/** |x| at the input of every projection of `layers` over `ids` (chunks of `ctx`), sorted, per projection. */
export function recordTealInputs(model: CausalLM, ids: readonly number[], layers: readonly number[], ctx: number): Map<Linear, Float32Array> {
  const samples = new Map<Linear, Float32Array[]>();
  const installed: Linear[] = [];
  try {
    for (const l of layers) {
      for (const [, lin] of blockLinears(model.sparsityParts(l))) {
        if (lin.sparse || lin.delta) throw new Error(`sparsity calibration: block ${l} already has sparsity or delta inference applied; remove it first`);
        const got: Float32Array[] = [];
        samples.set(lin, got);
        const rec: LinearSparsity = {
          maxKernelRows: 0,
          sparsify: (x: Tensor) => {
            got.push(Float32Array.from(x.dataSync() as Float32Array, Math.abs));
            return x.share();
          },
        };
        lin.sparse = rec;
        installed.push(lin);
      }
    }
    forwardChunks(model, ids, ctx);
  } finally {
    for (const lin of installed) delete lin.sparse;
  }
  const sorted = new Map<Linear, Float32Array>();
  for (const [lin, parts] of samples) {
    const all = new Float32Array(parts.reduce((s, p) => s + p.length, 0));
    let o = 0;
    for (const p of parts) { all.set(p, o); o += p.length; }
    sorted.set(lin, all.sort());
  }
  return sorted;
}

/** The thresholds as the fused product takes them: f32 [in] filled with `t` (the caller owns it). */
export function thresholdRow(lin: Linear, t: number, model: CausalLM): Tensor {
  const din = lin.layout === 'in_out' ? lin.weight.shape[0]! : lin.weight.shape[1]!;
  return tensor(new Float32Array(din).fill(t), [din], 'f32', { backend: model.backend });
}

/** Input sparsity of one projection at threshold `t` (rows: its [in, out] weight for the decode products, or none). */
export function inputSparsity(t: number, maxKernelRows: number, rows: Tensor | undefined, thresholds: Tensor | undefined): LinearSparsity {
  return { sparsify: (x) => thresholdSparsify(x, t), maxKernelRows, rows, thresholds };
}

/**
 * One decode product for projections that read the same input under the same thresholds (q, k
 * and v; a gated MLP's gate and up): their [in, out] weights side by side, [in, Σ out], so a kept
 * input reads one long row (12 KiB for q, k, v of width 1,024; 32 KiB for gate and up of 4,096)
 * instead of one short row per matrix, in one kernel call. The first member called with an input
 * runs the product; each member takes its columns (a view); after the last one the full output is
 * released (its views keep the memory). A member called again, or with another input, recomputes.
 */
export class SharedInputProduct {
  private x?: Tensor;
  private y?: Tensor; // [..., Σ out]
  private waiting = new Set<number>();
  private readonly offsets: number[] = [];

  /** `rows` [in, Σ out] and `thresholds` [in] are owned by the caller. */
  constructor(private readonly rows: Tensor, private readonly thresholds: Tensor, private readonly widths: readonly number[]) {
    let o = 0;
    for (const w of widths) { this.offsets.push(o); o += w; }
  }

  /** Member i's output for input x [..., in]: [..., out_i], owned by the caller. */
  take(i: number, x: Tensor): Tensor {
    if (this.x !== x || !this.waiting.has(i)) {
      this.release();
      this.y = sparseMatmul(x, this.rows, this.thresholds);
      this.x = x;
      this.widths.forEach((_, j) => this.waiting.add(j));
    }
    this.waiting.delete(i);
    const out = this.y!.narrow(-1, this.offsets[i]!, this.widths[i]!);
    if (this.waiting.size === 0) this.release();
    return out;
  }

  release(): void {
    this.y?.dispose();
    this.y = this.x = undefined;
    this.waiting.clear();
  }
}

/** Calibration passes: `ids` through the model in chunks of `ctx` tokens (last position's logits only; hooks do the work). */
export function forwardChunks(model: CausalLM, ids: readonly number[], ctx: number): void {
  for (let i = 0; i < ids.length; i += ctx) {
    const chunk = ids.slice(i, i + ctx);
    const x = tensor([...chunk], [1, chunk.length], 'i32', { backend: model.backend });
    try {
      model.forward(x, { logits: 'last' }).dispose();
    } finally {
      x.dispose();
    }
  }
}
