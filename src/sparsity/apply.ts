// Installs a sparsity plan on a model as a runtime mode: every MLP the plan names sparsifies its
// activation (src/models/layers/mlp.ts), chess+ also thresholds the inputs of the query and
// output projections, teal the input of every projection (src/models/layers/linear.ts). With
// kernels on (the default), decode-sized calls (at most `maxKernelRows` rows) run the sparse
// products: the up projection only where the activation is non-zero, the down projection over
// the rows of the non-zero activations, a thresholded input through `sparseMatmul` with the
// thresholds fused in. For that the weights the products read are also kept as f32 [in, out]
// copies (a layer stored [out, in] is transposed once here; memory: one more copy of those
// matrices while the mode is on; none for a layer already stored [in, out]). Quantized weights
// keep the dense products on the zeroed activations.
// `remove()` restores the dense model and frees the copies.
import { tensor } from '../ops/creation.js';
import { concat } from '../ops/layout.js';
import { keep } from '../tensor/engine.js';
import { QuantizedTensor } from '../tensor/quantized.js';
import type { Tensor } from '../tensor/tensor.js';
import type { Linear } from '../models/layers/linear.js';
import type { Mlp, MlpSparsity } from '../models/layers/mlp.js';
import type { CausalLM } from '../models/model.js';
import { thresholdSparsify, topkSparsify } from './rules.js';
import { topkKeep } from './spec.js';
import type { SparsityPlan } from './calibrate.js';
import { blockLinears, inputSparsity, SharedInputProduct, thresholdRow } from './teal.js';

export interface ApplyOptions {
  /** Run the sparse products at decode sizes (default true); false keeps dense products on the zeroed activations. */
  kernels?: boolean;
  /** Calls of at most this many rows (batch · pos) use the sparse products (default 1: single-token decode). */
  maxKernelRows?: number;
}

export interface AppliedSparsity {
  readonly plan: SparsityPlan;
  /** Bytes of the [in, out] weight copies the sparse products read. */
  readonly extraBytes: number;
  /**
   * Restores the dense model but keeps what the mode made (weight copies, thresholds), so that
   * `resume()` puts the mode back without rebuilding it: switching modes step by step copies nothing.
   */
  suspend(): void;
  resume(): void;
  /** Restores the dense model and frees what the mode made. */
  remove(): void;
}

/** What a mode installs itself on: a projection's input sparsity or an MLP's activation sparsity. */
type Sparsified = Linear | Mlp;

/** The weight as a contiguous f32 [in, out] tensor the caller owns, or undefined when it is quantized. */
export function rowsOf(l: Linear): Tensor | undefined {
  if (l.weight instanceof QuantizedTensor || l.weight.dtype !== 'f32') return undefined;
  const w = l.weight;
  const t = l.layout === 'in_out' ? w.share() : w.transpose();
  if (t.isContiguous) return keep(t);
  const c = keep(t.contiguous());
  t.dispose();
  return c;
}

export function applySparsity(model: CausalLM, plan: SparsityPlan, o: ApplyOptions = {}): AppliedSparsity {
  const kernels = o.kernels ?? true;
  const maxKernelRows = o.maxKernelRows ?? 1;
  const owned: Tensor[] = [];
  const undo: (() => void)[] = [];
  const own = <T extends Tensor | undefined>(t: T): T => { if (t) owned.push(t); return t; };
  // every projection or MLP the mode takes over, with what it installed there (suspend / resume)
  const installed: [Sparsified, unknown][] = [];
  const install = <T extends Sparsified>(target: T, value: NonNullable<T['sparse']>) => {
    target.sparse = value;
    installed.push([target, value]);
  };
  let suspended = false;
  const spec = plan.spec;
  try {
    for (const lp of plan.layers) {
      const parts = model.sparsityParts(lp.layer);
      if (lp.inputThresholds) {
        // teal: every projection's input, the thresholds fused into the decode products; projections
        // of one input under one threshold (q, k, v; gate and up) share one product
        const linears = blockLinears(parts);
        const thresholdOf = (role: string): number => {
          const t = lp.inputThresholds![role];
          if (t === undefined) throw new Error(`applySparsity: the plan has no threshold for blocks.${lp.layer} ${role}`);
          return t;
        };
        const grouped = new Set<string>();
        if (kernels) {
          for (const roles of [linears.filter(([r]) => r.startsWith('attn.in.')).map(([r]) => r), ['mlp.in', 'mlp.up']]) {
            const members = linears.filter(([r]) => roles.includes(r));
            if (members.length < 2 || new Set(members.map(([r]) => thresholdOf(r))).size !== 1) continue;
            const rows = members.map(([, lin]) => rowsOf(lin));
            if (rows.some((r) => !r)) { for (const r of rows) r?.dispose(); continue; }
            const fused = own(keep(concat(rows as Tensor[], 1))); // [in, Σ out]
            for (const r of rows) r!.dispose();
            const thresholds = own(keep(thresholdRow(members[0]![1], thresholdOf(members[0]![0]), model)));
            const product = new SharedInputProduct(fused, thresholds, rows.map((r) => r!.shape[1]!));
            members.forEach(([role, lin], i) => {
              if (lin.sparse) throw new Error(`applySparsity: block ${lp.layer} already has sparsity applied; remove it first`);
              install(lin, { ...inputSparsity(thresholdOf(role), maxKernelRows, undefined, thresholds), shared: (x) => product.take(i, x) });
              grouped.add(role);
            });
            undo.push(() => product.release());
          }
        }
        for (const [role, lin] of linears) {
          if (grouped.has(role)) continue;
          const t = thresholdOf(role);
          if (lin.sparse) throw new Error(`applySparsity: block ${lp.layer} already has sparsity applied; remove it first`);
          const rows = kernels ? own(rowsOf(lin)) : undefined;
          install(lin, inputSparsity(t, maxKernelRows, rows, rows ? own(keep(thresholdRow(lin, t, model))) : undefined));
        }
        continue;
      }
      const mlp = parts.mlp;
      if (!mlp) throw new Error(`applySparsity: block ${lp.layer} has no dense MLP`);
      if (mlp.sparse) throw new Error(`applySparsity: block ${lp.layer} already has sparsity applied; remove it first`);
      let sparsify: (a: Tensor) => Tensor;
      if (spec.method === 'topk') {
        sparsify = (a) => topkSparsify(a, topkKeep(spec, a.shape.at(-1)!));
      } else if (lp.channelThresholds) {
        const t = own(keep(tensor(lp.channelThresholds, [lp.channelThresholds.length], 'f32', { backend: model.backend }))); // [d_mlp]
        sparsify = (a) => thresholdSparsify(a, t);
      } else {
        const t = lp.threshold;
        if (t === undefined) throw new Error(`applySparsity: the plan has no threshold for block ${lp.layer}`);
        sparsify = (a) => thresholdSparsify(a, t);
      }
      const ms: MlpSparsity = { sparsify, maxKernelRows, downRows: kernels ? own(rowsOf(mlp.out)) : undefined };
      install(mlp, ms);
      for (const [lin, t] of [[parts.q, lp.qThreshold], [parts.o, lp.oThreshold]] as const) {
        if (!lin || t === undefined) continue;
        const rows = kernels ? own(rowsOf(lin)) : undefined;
        install(lin, inputSparsity(t, maxKernelRows, rows, rows ? own(keep(thresholdRow(lin, t, model))) : undefined));
      }
    }
  } catch (e) {
    for (const [target] of installed) delete target.sparse;
    for (const u of undo) u();
    for (const t of owned) t.dispose();
    throw e;
  }
  let removed = false;
  const suspend = () => {
    if (removed || suspended) return;
    suspended = true;
    for (const [target, value] of installed) if (target.sparse === value) delete target.sparse;
    for (const u of undo) u();
  };
  return {
    plan,
    extraBytes: owned.reduce((n, t) => n + t.size * 4, 0),
    suspend,
    resume() {
      if (removed) throw new Error('applySparsity: resume() after remove()');
      if (!suspended) return;
      const busy = installed.find(([target]) => target.sparse !== undefined);
      if (busy) throw new Error('applySparsity: resume(): a projection of the plan has another sparsity mode on; suspend or remove it first');
      for (const [target, value] of installed) (target as { sparse?: unknown }).sparse = value;
      suspended = false;
    },
    remove() {
      if (removed) return;
      suspend();
      removed = true;
      for (const t of owned) t.dispose();
    },
  };
}
