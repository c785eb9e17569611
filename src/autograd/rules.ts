// Gradient rules, one per op of the backend contract (src/tensor/backend.ts), written with
// frontend ops so they run on every backend. A rule says which inputs/outputs its backward reads
// (only those are kept on the tape) and maps output gradients to input gradients (null: none).
// Rules run with recording off; every tensor they make and do not return is disposed by the tape.
import { runsNatively, type OpDesc, type OpName, type UnaryFn } from '../tensor/backend.js';
import { isFloat, type DType } from '../tensor/dtype.js';
import { numel } from '../tensor/shape.js';
import type { Tensor } from '../tensor/tensor.js';
import { arange, zeros } from '../ops/creation.js';
import * as E from '../ops/elementwise.js';
import { matmul } from '../ops/linalg.js';
import { gather, layerNormBackward, rope, scatterAdd, softmaxBackward } from '../ops/nn.js';
import { dequantize } from '../ops/quant.js';
import { dropout } from '../ops/random.js';
import { cumsum, mean, sum } from '../ops/reduce.js';
import { attentionBackward } from './attention.js';

export type Grad = Tensor | null;

/** What a rule's backward can read. */
export interface BackCtx {
  /** Input i as the op saw it (only the indices `save` listed). */
  input(i: number): Tensor;
  output(i: number): Tensor;
  inShape(i: number): readonly number[];
  inDType(i: number): DType;
  outShape(i: number): readonly number[];
  /** Whether input i wants a gradient. */
  needs(i: number): boolean;
}

type Op<K extends OpName> = Extract<OpDesc, { op: K }>;

export interface Rule<K extends OpName = OpName> {
  save?(op: Op<K>): { inputs?: number[]; outputs?: number[] };
  backward(op: Op<K>, c: BackCtx, g: Grad[]): Grad[];
}

const none = { inputs: [], outputs: [] };
const like = (t: Tensor, shape: readonly number[] = t.shape) => zeros(shape, t.dtype, { backend: t.backend });

// ---- unary: d/dx f(x), from x and/or y ----

const UNARY_SAVES: Record<UnaryFn, { x?: boolean; y?: boolean }> = {
  neg: {}, exp: { y: true }, log: { x: true }, sqrt: { y: true }, rsqrt: { y: true }, tanh: { y: true },
  abs: { x: true }, sign: {}, relu: { y: true }, sigmoid: { y: true }, silu: { x: true },
  gelu_tanh: { x: true }, gelu_erf: { x: true, y: true }, square: { x: true }, recip: { y: true },
  sin: { x: true }, cos: { x: true },
};

const SQRT_2_PI = Math.sqrt(2 / Math.PI);
const INV_SQRT_2PI = 1 / Math.sqrt(2 * Math.PI);

function unaryGrad(fn: UnaryFn, c: BackCtx, g: Tensor): Tensor {
  const x = () => c.input(0);
  const y = () => c.output(0);
  switch (fn) {
    case 'neg': return E.neg(g);
    case 'exp': return E.mul(g, y());
    case 'log': return E.div(g, x());
    case 'sqrt': return E.div(E.mul(g, 0.5), y());
    case 'rsqrt': return E.mul(g, E.mul(E.mul(E.square(y()), y()), -0.5));
    case 'tanh': return E.mul(g, E.sub(1, E.square(y())));
    case 'abs': return E.mul(g, E.sign(x()));
    case 'sign': return like(g);
    case 'relu': return E.where(E.gt(y(), 0), g, 0);
    case 'sigmoid': return E.mul(g, E.mul(y(), E.sub(1, y())));
    case 'silu': {
      const s = E.sigmoid(x());
      return E.mul(g, E.mul(s, E.add(E.mul(x(), E.sub(1, s)), 1)));
    }
    case 'gelu_tanh': case 'gelu_erf':
      return runsNatively(g.backend, 'geluBackward') ? E.geluBackward(fn, x(), g) : geluGradComposed(fn, c, g);
    case 'square': return E.mul(g, E.mul(x(), 2));
    case 'recip': return E.mul(g, E.neg(E.square(y())));
    case 'sin': return E.mul(g, E.cos(x()));
    case 'cos': return E.mul(g, E.neg(E.sin(x())));
  }
}

/** gelu'(x) · g in elementwise ops, for backends without the fused `geluBackward`. */
export function geluGradComposed(fn: 'gelu_tanh' | 'gelu_erf', c: Pick<BackCtx, 'input' | 'output'>, g: Tensor): Tensor {
  const x = () => c.input(0);
  if (fn === 'gelu_tanh') {
    // y = x/2 (1 + tanh u), u = c (x + 0.044715 x³)
    const x2 = E.square(x());
    const t = E.tanh(E.mul(E.mul(x(), E.add(E.mul(x2, 0.044715), 1)), SQRT_2_PI));
    const a = E.mul(E.add(t, 1), 0.5);
    const b = E.mul(E.mul(E.mul(x(), E.sub(1, E.square(t))), 0.5 * SQRT_2_PI), E.add(E.mul(x2, 3 * 0.044715), 1));
    return E.mul(g, E.add(a, b));
  }
  // y = x Φ(x); dy = Φ(x) + x φ(x), with Φ = y / x (no erf op; exact to f32 rounding away from 0).
  const phiCdf = E.where(E.ne(x(), 0), E.div(c.output(0), x()), 0.5);
  const pdf = E.mul(E.exp(E.mul(E.square(x()), -0.5)), INV_SQRT_2PI);
  return E.mul(g, E.add(phiCdf, E.mul(x(), pdf)));
}

/** y ⊙ (g − Σ_row y ⊙ g) in elementwise ops and a row sum, for backends without the fused `softmaxBackward`. */
export function softmaxGradComposed(y: Tensor, g: Tensor): Tensor {
  return E.mul(y, E.sub(g, sum(E.mul(g, y), -1, { keepDims: true })));
}

// ---- binary (inputs already broadcast to the output shape) ----

function binaryGrad(op: Op<'binary'>, c: BackCtx, g: Tensor): Grad[] {
  const a = () => c.input(0);
  const b = () => c.input(1);
  const na = c.needs(0);
  const nb = c.needs(1);
  switch (op.fn) {
    case 'add': return [na ? g.share() : null, nb ? g.share() : null];
    case 'sub': return [na ? g.share() : null, nb ? E.neg(g) : null];
    case 'mul': return [na ? E.mul(g, b()) : null, nb ? E.mul(g, a()) : null];
    case 'div': return [na ? E.div(g, b()) : null, nb ? E.neg(E.div(E.mul(g, c.output(0)), b())) : null];
    case 'pow': return [
      na ? E.mul(g, E.mul(b(), E.pow(a(), E.sub(b(), 1)))) : null,
      nb ? E.where(E.gt(a(), 0), E.mul(g, E.mul(c.output(0), E.log(a()))), 0) : null,
    ];
    case 'maximum': case 'minimum': {
      // Ties split the gradient in half, as PyTorch does.
      const win = op.fn === 'maximum' ? E.gt : E.lt;
      const half = E.mul(g, 0.5);
      const tie = E.eq(a(), b());
      return [
        na ? E.where(win(a(), b()), g, E.where(tie, half, 0)) : null,
        nb ? E.where(win(b(), a()), g, E.where(tie, half, 0)) : null,
      ];
    }
    default: return [null, null]; // comparisons: no gradient (their u8 output is never recorded)
  }
}

// ---- rows (last-axis) helpers ----

/** Sums `t` [..., d] over every leading dim -> [d]. */
function sumRows(t: Tensor): Tensor {
  const d = t.shape.at(-1)!;
  return sum(t.reshape([-1, d]), 0);
}

function normGrad(c: BackCtx, g: Tensor, kind: 'layernorm' | 'rmsnorm', eps: number, hasWeight: boolean, offset: number): { gx: Tensor; xhat: Tensor } {
  const x = c.input(0);
  const centered = kind === 'layernorm' ? E.sub(x, mean(x, -1, { keepDims: true })) : x;
  const rstd = E.rsqrt(E.add(mean(E.square(centered), -1, { keepDims: true }), eps));
  const xhat = E.mul(centered, rstd);
  let gh = g;
  if (hasWeight) gh = E.mul(g, offset ? E.add(c.input(1), offset) : c.input(1));
  const proj = mean(E.mul(gh, xhat), -1, { keepDims: true });
  let inner = E.sub(gh, E.mul(xhat, proj));
  if (kind === 'layernorm') inner = E.sub(inner, mean(gh, -1, { keepDims: true }));
  return { gx: E.mul(inner, rstd), xhat };
}

// ---- the table ----

export const RULES: { [K in OpName]?: Rule<K> } = {
  copy: {
    save: () => none,
    backward: (_op, c, [g]) => [g && isFloat(c.inDType(0)) ? (g.dtype === c.inDType(0) ? g.share() : g.cast(c.inDType(0))) : null],
  },
  unary: {
    save: (op) => ({ inputs: UNARY_SAVES[op.fn].x ? [0] : [], outputs: UNARY_SAVES[op.fn].y ? [0] : [] }),
    backward: (op, c, [g]) => [g ? unaryGrad(op.fn, c, g) : null],
  },
  binary: {
    save: (op) => ({
      inputs: op.fn === 'mul' || op.fn === 'div' || op.fn === 'pow' || op.fn === 'maximum' || op.fn === 'minimum' ? [0, 1] : [],
      outputs: op.fn === 'div' || op.fn === 'pow' ? [0] : [],
    }),
    backward: (op, c, [g]) => (g ? binaryGrad(op, c, g) : [null, null]),
  },
  where: {
    save: () => ({ inputs: [0] }),
    backward: (_op, c, [g]) => [
      null,
      g && c.needs(1) ? E.where(c.input(0), g, 0) : null,
      g && c.needs(2) ? E.where(c.input(0), 0, g) : null,
    ],
  },
  reduce: {
    save: (op) => (op.fn === 'max' || op.fn === 'min' ? { inputs: [0], outputs: [0] } : none),
    backward: (op, c, [g]) => {
      if (!g) return [null];
      const shape = c.inShape(0);
      switch (op.fn) {
        case 'sum': return [g.broadcastTo(shape).contiguous()];
        case 'mean': return [E.mul(g.broadcastTo(shape), 1 / shape[op.axis]!)];
        case 'max': case 'min': {
          // Ties share the gradient evenly.
          const hit = E.eq(c.input(0), c.output(0));
          const count = sum(hit.cast(g.dtype), op.axis, { keepDims: true });
          return [E.where(hit, E.div(g, count), 0)];
        }
        default: return [null];
      }
    },
  },
  cumsum: {
    save: () => none,
    backward: (op, _c, [g]) => {
      if (!g) return [null];
      // Reverse cumulative sum: total - cumsum + g.
      return [E.add(E.sub(sum(g, op.axis, { keepDims: true }), cumsum(g, op.axis)), g)];
    },
  },
  topk: {
    save: () => ({ outputs: [1] }),
    backward: (op, c, [g]) => {
      if (!g) return [null];
      const shape = c.inShape(0);
      const n = shape.at(-1)!;
      const rows = numel(shape.slice(0, -1));
      const idx = c.output(1).reshape([rows, op.k]);
      const base = E.mul(arange(0, rows, 1, 'i32', { backend: g.backend }).reshape([rows, 1]), n);
      const ids = E.add(idx, base).reshape([rows * op.k]);
      return [scatterAdd(like(g, [rows * n]), ids, g.reshape([rows * op.k])).reshape(shape)];
    },
  },
  matmul: {
    save: () => ({ inputs: [0, 1] }),
    backward: ({ transA: ta, transB: tb }, c, [g]) => {
      if (!g) return [null, null];
      const A = c.input(0);
      const B = c.input(1);
      // Y = op(A) op(B): d op(A) = G op(B)ᵀ, d op(B) = op(A)ᵀ G, transposed back where the flag is set.
      const gA = !c.needs(0) ? null : ta ? matmul(B, g, { transA: tb, transB: true }) : matmul(g, B, { transB: !tb });
      if (!c.needs(1)) return [gA, null];
      if (B.rank === 2 && A.rank > 2) {
        // B is a weight the tape recorded unbroadcast: d B = Σ over the batch, as one product of flattened rows.
        const K = c.inShape(0).at(ta ? -2 : -1)!;
        const N = g.shape.at(-1)!;
        if (!ta) {
          const a2 = A.reshape([-1, K]);
          const g2 = g.reshape([-1, N]);
          return [gA, tb ? matmul(g2, a2, { transA: true }) : matmul(a2, g2, { transA: true })];
        }
        const full = tb ? matmul(g, A, { transA: true, transB: true }) : matmul(A, g);
        return [gA, sum(full.reshape([-1, ...full.shape.slice(-2)]), 0)];
      }
      return [gA, tb ? matmul(g, A, { transA: true, transB: ta }) : matmul(A, g, { transA: !ta })];
    },
  },
  softmax: {
    save: () => ({ outputs: [0] }),
    backward: (op, c, [g]) => {
      if (!g) return [null, null];
      const y = c.output(0);
      if (!op.log) return [runsNatively(g.backend, 'softmaxBackward') ? softmaxBackward(y, g) : softmaxGradComposed(y, g), null];
      if (!op.causal && !op.masked) return [E.sub(g, E.mul(E.exp(y), sum(g, -1, { keepDims: true }))), null];
      // Hidden entries (-Inf) take no gradient and give none.
      const vis = E.gt(y, -Infinity);
      const gm = E.where(vis, g, 0);
      return [E.where(vis, E.sub(gm, E.mul(E.exp(y), sum(gm, -1, { keepDims: true }))), 0), null];
    },
  },
  layernorm: {
    save: (op) => ({ inputs: op.hasWeight ? [0, 1] : [0] }),
    backward: (op, c, [g]) => {
      if (!g) return [null, null, null];
      if (runsNatively(g.backend, 'layernormBackward') && g.dtype === c.inDType(0)) {
        const { dx, dyXhat } = layerNormBackward(c.input(0), g, { weight: op.hasWeight ? c.input(1) : undefined, eps: op.eps });
        const out: Grad[] = [c.needs(0) ? dx : null];
        if (op.hasWeight) out.push(c.needs(1) ? sumRows(dyXhat!) : null);
        if (op.hasBias) out.push(c.needs(out.length) ? sumRows(g) : null);
        return out;
      }
      const { gx, xhat } = normGrad(c, g, 'layernorm', op.eps, op.hasWeight, 0);
      const out: Grad[] = [c.needs(0) ? gx : null];
      if (op.hasWeight) out.push(c.needs(1) ? sumRows(E.mul(g, xhat)) : null);
      if (op.hasBias) out.push(c.needs(out.length) ? sumRows(g) : null);
      return out;
    },
  },
  rmsnorm: {
    save: (op) => ({ inputs: op.hasWeight ? [0, 1] : [0] }),
    backward: (op, c, [g]) => {
      if (!g) return [null, null];
      const { gx, xhat } = normGrad(c, g, 'rmsnorm', op.eps, op.hasWeight, op.offset);
      return op.hasWeight ? [c.needs(0) ? gx : null, c.needs(1) ? sumRows(E.mul(g, xhat)) : null] : [gx];
    },
  },
  rope: {
    save: () => ({ inputs: [1, 2] }),
    backward: (op, c, [g]) => {
      if (!g) return [null, null, null];
      // A rotation: its transpose rotates by the negated angles.
      return [rope(g, c.input(1), E.neg(c.input(2)), { mode: op.mode, rotaryDim: op.rotaryDim }), null, null];
    },
  },
  gather: {
    save: () => ({ inputs: [1] }),
    backward: (_op, c, [g]) => {
      if (!g || !c.needs(0)) return [null, null];
      const table = c.inShape(0);
      const ids = c.input(1);
      return [scatterAdd(like(g, table), ids.reshape([ids.size]), g.reshape([ids.size, ...table.slice(1)])), null];
    },
  },
  scatterAdd: {
    save: () => ({ inputs: [1] }),
    backward: (_op, c, [g]) => [g && c.needs(0) ? g.share() : null, null, g && c.needs(2) ? gather(g, c.input(1)) : null],
  },
  attention: {
    save: (op) => ({ inputs: op.masked ? [0, 1, 2, 3] : [0, 1, 2], outputs: op.returnProbs ? [1] : [] }),
    backward: (op, c, g) => attentionBackward(op, c, g),
  },
  qmatmul: {
    save: () => ({ inputs: [1] }),
    // y = x Wᵀ with W quantized: dx = g W (W dequantized for the product); the blocks get none.
    backward: (op, c, [g]) => {
      if (!g || !c.needs(0)) return [null, null];
      const [M, K] = c.inShape(0) as [number, number];
      const N = c.outShape(0)[1]!;
      const w = dequantize(c.input(1), op.type, [N, K]);
      const gx = matmul(g, w);
      w.dispose();
      if (gx.shape[0] !== M) throw new Error(`qmatmul backward: gradient rows ${gx.shape[0]} vs ${M}`);
      return [gx, null];
    },
  },
  // The activation-sparsity products are x · w (skipping zero rows changes no value) and a masked
  // x · wᵀ; the mask is piecewise constant and gets no gradient.
  // With thresholds, x is first masked to the entries the product reads (|x| >= t, or NaN).
  sparseMatmul: {
    save: (op) => ({ inputs: op.thresholded ? [0, 1, 2] : [0, 1] }),
    backward: (op, c, [g]) => {
      if (!g) return op.thresholded ? [null, null, null] : [null, null];
      if (!op.thresholded) return [c.needs(0) ? matmul(g, c.input(1), { transB: true }) : null, c.needs(1) ? matmul(c.input(0), g, { transA: true }) : null];
      const below = E.lt(E.abs(c.input(0)), c.input(2)); // [M, K]
      const gx = c.needs(0) ? E.where(below, 0, matmul(g, c.input(1), { transB: true })) : null;
      const gw = c.needs(1) ? matmul(E.where(below, 0, c.input(0)), g, { transA: true }) : null;
      return [gx, gw, null];
    },
  },
  maskedMatmul: {
    save: () => ({ inputs: [0, 1, 2] }),
    backward: (_op, c, [g]) => {
      if (!g) return [null, null, null];
      const gm = E.where(E.ne(c.input(2), 0), g, 0); // [M, N]
      const out = [c.needs(0) ? matmul(gm, c.input(1)) : null, c.needs(1) ? matmul(gm, c.input(0), { transA: true }) : null, null];
      gm.dispose();
      return out;
    },
  },
  // Dropout is linear in x: dy goes through the same mask and scale (the same op and seed).
  dropout: {
    save: () => none,
    backward: (op, _c, [g]) => [g ? dropout(g, op.p, op.seed) : null],
  },
  // fill has no inputs; dequantize has no gradient (the tape names it when one is asked for).
};

