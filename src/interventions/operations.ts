// The math of each intervention op on one activation, given its layout and the selection mask.
// Every op computes its replacement y over the whole activation and the result is
// where(mask, y, x): unselected positions and units keep x bit for bit. Constants (vectors,
// directions, sources) come in already embedded in the hook's full feature shape, on the
// activation's backend and dtype. Not for: parsing or shape checks (intervention.ts, apply.ts).
import { add, maximum, minimum, mul, sub, where } from '../ops/elementwise.js';
import { tensor, zeros } from '../ops/creation.js';
import { concat } from '../ops/layout.js';
import { gather } from '../ops/nn.js';
import { sum } from '../ops/reduce.js';
import type { Tensor } from '../tensor/tensor.js';

/** Where the axes of a hook's activation are. */
export interface Layout {
  /** Axis of the batch ([batch, ...]); null for expert hooks ([routed_tokens, d_mlp]). */
  batchAxis: number | null;
  /** Axis of the (query) positions; null for expert hooks. */
  posAxis: number | null;
  /** The other axes (features), in order, with their sizes (a string where it varies, e.g. key_pos). */
  featAxes: number[];
  feat: (number | string)[];
}

/** Constants of one op on one backend and dtype (feature-shaped, broadcast from the right). */
export interface OpConstants {
  vector?: Tensor;
  /** project_out: unit directions along the last axis. */
  direction?: Tensor;
  source?: Tensor; // [n, prod(feature)]
  value?: number;
}

export interface OpCall {
  op: 'add' | 'set' | 'scale' | 'project_out' | 'zero' | 'mean' | 'resample' | 'clamp' | 'interpolate';
  strength?: number;
  factor?: number;
  min?: number;
  max?: number;
  alpha?: number;
  seed?: number;
}

/** A deterministic index in [0, n) for (seed, row, position): resampling does not depend on batching or steps. */
export function resampleIndex(seed: number, row: number, position: number, n: number): number {
  let h = (seed ^ 0x9e3779b9) >>> 0;
  for (const v of [row, position]) {
    h = Math.imul(h ^ v, 0x85ebca6b) >>> 0;
    h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35) >>> 0;
    h = (h ^ (h >>> 16)) >>> 0;
  }
  return h % n;
}

/**
 * The replacement y of x (the same shape and dtype) for `call`. `real` holds, in x's dtype and
 * rank (1 on the feature axes), the weight of each (row, pos) in the in-call mean: 1/count at real
 * tokens, 0 at padding. `rows` is the token position of each (row, pos), for resampling.
 */
export function replacement(x: Tensor, lay: Layout, call: OpCall, k: OpConstants, ctx: { real?: Tensor; rows?: Int32Array }): Tensor {
  switch (call.op) {
    case 'add': return add(x, k.vector!);
    case 'scale': return mul(x, call.factor!);
    case 'zero': return zeros(x.shape, x.dtype, { backend: x.backend });
    case 'set':
    case 'mean':
      if (k.vector) return add(zeros(x.shape, x.dtype, { backend: x.backend }), k.vector);
      if (k.value !== undefined) return add(zeros(x.shape, x.dtype, { backend: x.backend }), k.value);
      return add(zeros(x.shape, x.dtype, { backend: x.backend }), callMean(x, lay, ctx.real));
    case 'clamp': {
      let y = x;
      if (call.min !== undefined) y = maximum(y, call.min);
      if (call.max !== undefined) y = minimum(y, call.max);
      return y === x ? x.share() : y;
    }
    case 'interpolate': {
      const target = k.vector ?? k.value!;
      return add(x, mul(sub(target, x), call.alpha!));
    }
    case 'project_out': {
      const d = k.direction!; // [..., d] unit rows (zero rows leave x alone)
      const coef = sum(mul(x, d), -1, { keepDims: true }); // [..., 1]
      return sub(x, mul(mul(coef, d), call.strength ?? 1));
    }
    case 'resample': {
      if (k.source && lay.batchAxis === null) { // per-expert rows: row i takes the source row of (seed, i)
        const n = k.source.shape[0]!;
        const R = x.shape[0]!;
        const idx = Int32Array.from({ length: R }, (_, i) => resampleIndex(call.seed ?? 0, i, 0, n));
        return gather(k.source, tensor(idx, [R], 'i32', { backend: x.backend })).reshape(x.shape);
      }
      if (k.source) {
        const [B, P] = [x.shape[lay.batchAxis!]!, x.shape[lay.posAxis!]!];
        const n = k.source.shape[0]!;
        const idx = new Int32Array(B * P);
        for (let i = 0; i < B * P; i++) idx[i] = resampleIndex(call.seed ?? 0, Math.floor(i / P), ctx.rows ? Math.max(0, ctx.rows[i]!) : i % P, n);
        return gather(k.source, tensor(idx, [B, P], 'i32', { backend: x.backend })).reshape(x.shape);
      }
      const B = x.shape[0]!;
      return concat([x.narrow(0, 1, B - 1), x.narrow(0, 0, 1)], 0);
    }
  }
}

/** Mean of x over its batch and position axes at real tokens (weights 1/count), keeping dims. */
function callMean(x: Tensor, lay: Layout, real?: Tensor): Tensor {
  if (lay.batchAxis === null || lay.posAxis === null) return mulMean(x, 0);
  if (!real) return mulMean(mulMean(x, lay.posAxis), lay.batchAxis);
  const s = sum(mul(x, real), lay.posAxis, { keepDims: true });
  return sum(s, lay.batchAxis, { keepDims: true });
}

function mulMean(x: Tensor, axis: number): Tensor {
  return mul(sum(x, axis, { keepDims: true }), 1 / x.shape[axis]!);
}

/** where(mask, y, x), or y itself when nothing is masked. */
export function select(mask: Tensor | null, y: Tensor, x: Tensor): Tensor {
  return mask ? where(mask, y, x) : y;
}
