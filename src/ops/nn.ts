// Neural-network ops: softmax with causal and padding masks, norms, rotary embedding, embedding
// gather and its scatter-add, and scaled dot-product attention (causal, grouped-query).
import { isFloat } from '../tensor/dtype.js';
import { DTypeError, ShapeError } from '../tensor/errors.js';
import { dispatch } from '../tensor/engine.js';
import { fmtShape, normAxis, shapesEqual } from '../tensor/shape.js';
import { Tensor } from '../tensor/tensor.js';
import { add } from './elementwise.js';

function needFloat(t: Tensor, where: string, what: string): void {
  if (!isFloat(t.dtype)) throw new DTypeError(`${where}: ${what} must be a float tensor, got ${t.dtype}${fmtShape(t.shape)}`);
}

export interface SoftmaxOptions {
  axis?: number;
  /** Hide key j > i + (k - q) for query i (the last two dims are [query, key]). */
  causal?: boolean;
  /** u8, 1 = keep, broadcastable to x (e.g. a padding mask [b, 1, 1, k]). */
  mask?: Tensor;
}

function softmaxImpl(x: Tensor, log: boolean, o: SoftmaxOptions): Tensor {
  const where = log ? 'logSoftmax' : 'softmax';
  needFloat(x, where, 'x');
  const axis = normAxis(o.axis ?? -1, x.rank, where);
  if ((o.causal || o.mask) && axis !== x.rank - 1) throw new ShapeError(`${where}: masks need axis = -1, got ${o.axis}`);
  if (o.causal && x.rank < 2) throw new ShapeError(`${where}: causal needs [..., query, key], got ${fmtShape(x.shape)}`);
  const made: Tensor[] = [];
  let src = x;
  if (axis !== x.rank - 1) made.push((src = x.transpose(axis, -1)));
  const inputs = [src];
  if (o.mask) {
    if (o.mask.dtype !== 'u8') throw new DTypeError(`${where}: mask must be u8 (1 = keep), got ${o.mask.dtype}`);
    const m = o.mask.broadcastTo(src.shape);
    made.push(m);
    inputs.push(m);
  }
  try {
    const y = dispatch({ op: 'softmax', log, causal: !!o.causal, masked: !!o.mask }, inputs, [{ shape: src.shape, dtype: x.dtype }])[0]!;
    if (src === x) return y;
    const back = y.transpose(axis, -1);
    y.dispose();
    return back;
  } finally {
    for (const t of made) t.dispose();
  }
}

export const softmax = (x: Tensor, o: SoftmaxOptions = {}) => softmaxImpl(x, false, o);
export const logSoftmax = (x: Tensor, o: SoftmaxOptions = {}) => softmaxImpl(x, true, o);

/** y ⊙ (dy − Σ y ⊙ dy) over the last axis in one op (`softmaxBackward`): the gradient of y = softmax(x) from y and dy, of one float dtype and shape. */
export function softmaxBackward(y: Tensor, dy: Tensor): Tensor {
  if (!isFloat(y.dtype) || dy.dtype !== y.dtype || !shapesEqual(dy.shape, y.shape)) {
    throw new DTypeError(`softmaxBackward: y is ${y.dtype}${fmtShape(y.shape)}, dy is ${dy.dtype}${fmtShape(dy.shape)}; both must be one float dtype and shape`);
  }
  if (y.rank === 0) throw new ShapeError('softmaxBackward: y must have rank >= 1 (rows are the last axis), got a scalar');
  return dispatch({ op: 'softmaxBackward' }, [y, dy], [{ shape: y.shape, dtype: y.dtype }])[0]!;
}

function checkParam(p: Tensor | undefined, d: number, x: Tensor, where: string, name: string): void {
  if (p && (p.rank !== 1 || p.shape[0] !== d || p.dtype !== x.dtype)) {
    throw new ShapeError(`${where}: ${name} must be ${x.dtype}[${d}] to match x ${x.dtype}${fmtShape(x.shape)}, got ${p.dtype}${fmtShape(p.shape)}`);
  }
}

/** LayerNorm over the last dim (population variance, eps inside the square root). */
export function layerNorm(x: Tensor, weight?: Tensor, bias?: Tensor, eps = 1e-5): Tensor {
  needFloat(x, 'layerNorm', 'x');
  const d = x.shape.at(-1) ?? 0;
  checkParam(weight, d, x, 'layerNorm', 'weight');
  checkParam(bias, d, x, 'layerNorm', 'bias');
  const inputs = [x, ...(weight ? [weight] : []), ...(bias ? [bias] : [])];
  return dispatch({ op: 'layernorm', eps, hasWeight: !!weight, hasBias: !!bias }, inputs, [{ shape: x.shape, dtype: x.dtype }])[0]!;
}

/**
 * The layer norm's gradient in one op (`layernormBackward`): dx for dy = ∂L/∂y of
 * y = layerNorm(x, weight, ·, eps) [..., d], and with a weight also dy · x̂ [..., d] (its column
 * sums are the weight's gradient; dy's are the bias's). The row statistics are recomputed from x.
 */
export function layerNormBackward(x: Tensor, dy: Tensor, o: { weight?: Tensor; eps?: number } = {}): { dx: Tensor; dyXhat?: Tensor } {
  const where = 'layerNormBackward';
  needFloat(x, where, 'x');
  if (dy.dtype !== x.dtype || !shapesEqual(dy.shape, x.shape)) {
    throw new ShapeError(`${where}: dy must be ${x.dtype}${fmtShape(x.shape)} as x, got ${dy.dtype}${fmtShape(dy.shape)}`);
  }
  if (x.rank < 1) throw new ShapeError(`${where}: x needs rank >= 1, got ${fmtShape(x.shape)}`);
  checkParam(o.weight, x.shape.at(-1)!, x, where, 'weight');
  const op = { op: 'layernormBackward', eps: o.eps ?? 1e-5, hasWeight: !!o.weight } as const;
  const out = { shape: x.shape, dtype: x.dtype };
  const [dx, dyXhat] = dispatch(op, o.weight ? [x, o.weight, dy] : [x, dy], o.weight ? [out, out] : [out]);
  return { dx: dx!, dyXhat };
}

/** RMSNorm over the last dim: x / sqrt(mean(x²) + eps) · (offset + weight); offset 1 for Gemma. */
export function rmsNorm(x: Tensor, weight?: Tensor, opts: { eps?: number; offset?: number } = {}): Tensor {
  needFloat(x, 'rmsNorm', 'x');
  checkParam(weight, x.shape.at(-1) ?? 0, x, 'rmsNorm', 'weight');
  const op = { op: 'rmsnorm', eps: opts.eps ?? 1e-6, offset: opts.offset ?? 0, hasWeight: !!weight } as const;
  return dispatch(op, weight ? [x, weight] : [x], [{ shape: x.shape, dtype: x.dtype }])[0]!;
}

export interface AddNormOptions {
  kind: 'layer' | 'rms';
  weight?: Tensor;
  /** LayerNorm only. */
  bias?: Tensor;
  eps?: number;
  /** RMSNorm's weight offset (Gemma: 1). */
  offset?: number;
  /** The fused op on any backend (the conformance matrix), while no gradient is asked for. */
  force?: boolean;
}

/**
 * s = a + b and y = layerNorm(s) or rmsNorm(s): one 'addNorm' op where the backend prefers it
 * (`prefersFusedAddNorm`) and no gradient is asked for, else add and the norm.
 */
export function addNorm(a: Tensor, b: Tensor, o: AddNormOptions): { sum: Tensor; y: Tensor } {
  const where = 'addNorm';
  needFloat(a, where, 'a');
  const d = a.shape.at(-1) ?? 0;
  checkParam(o.weight, d, a, where, 'weight');
  checkParam(o.bias, d, a, where, 'bias');
  if (o.kind === 'rms' && o.bias) throw new ShapeError('addNorm: an rms norm takes no bias');
  const eps = o.eps ?? (o.kind === 'layer' ? 1e-5 : 1e-6);
  const offset = o.offset ?? 0;
  const params = [o.weight, o.bias].filter((t): t is Tensor => !!t);
  const fuse = (o.force === true || a.backend.prefersFusedAddNorm === true) && a.rank >= 1 && b.dtype === a.dtype
    && shapesEqual(a.shape, b.shape) && ![a, b, ...params].some((t) => t.requiresGrad); // the tape knows add and the norms
  if (!fuse) {
    const sum = add(a, b);
    const y = o.kind === 'layer' ? layerNorm(sum, o.weight, o.bias, eps) : rmsNorm(sum, o.weight, { eps, offset });
    return { sum, y };
  }
  const op = { op: 'addNorm', kind: o.kind, eps, offset, hasWeight: !!o.weight, hasBias: !!o.bias } as const;
  const [sum, y] = dispatch(op, [a, b, ...params], [{ shape: a.shape, dtype: a.dtype }, { shape: a.shape, dtype: a.dtype }]);
  return { sum: sum!, y: y! };
}

/** Inverse frequencies theta^(-2i/rotaryDim) for i < rotaryDim/2 (plain RoPE, before any scaling). */
export function ropeInvFreq(rotaryDim: number, theta = 10000): Float32Array {
  return Float32Array.from({ length: rotaryDim / 2 }, (_, i) => theta ** (-(2 * i) / rotaryDim));
}

export interface RopeOptions {
  /** 'half' pairs (i, i + r/2) as HF Llama/NeoX; 'interleaved' pairs (2i, 2i+1) as GPT-J/llama2.c. */
  mode?: 'half' | 'interleaved';
  /** Channels rotated (partial rotary); defaults to 2 · invFreq length. */
  rotaryDim?: number;
}

/** Rotary embedding of x [b, t, h, d] at positions i32 [b, t] with frequencies invFreq [rotaryDim/2]. */
export function rope(x: Tensor, positions: Tensor, invFreq: Tensor, opts: RopeOptions = {}): Tensor {
  needFloat(x, 'rope', 'x');
  const rotaryDim = opts.rotaryDim ?? 2 * (invFreq.shape[0] ?? 0);
  if (x.rank !== 4) throw new ShapeError(`rope: x must be [batch, pos, head, d_head], got ${fmtShape(x.shape)}`);
  const [b, t, , d] = x.shape as [number, number, number, number];
  if (positions.dtype !== 'i32' || !shapesEqual(positions.shape, [b, t])) {
    throw new ShapeError(`rope: positions must be i32[${b}, ${t}] for x ${fmtShape(x.shape)}, got ${positions.dtype}${fmtShape(positions.shape)}`);
  }
  if (rotaryDim % 2 || rotaryDim > d || invFreq.dtype !== 'f32' || invFreq.rank !== 1 || invFreq.shape[0] !== rotaryDim / 2) {
    throw new ShapeError(`rope: rotaryDim ${rotaryDim} must be even, <= d_head ${d}, with invFreq f32[${rotaryDim / 2}]; got invFreq ${invFreq.dtype}${fmtShape(invFreq.shape)}`);
  }
  const op = { op: 'rope', mode: opts.mode ?? 'half', rotaryDim } as const;
  return dispatch(op, [x, positions, invFreq], [{ shape: x.shape, dtype: x.dtype }])[0]!;
}

/** Rows of `table` [n, ...row] at i32 `ids` [...idx] -> [...idx, ...row]. */
export function gather(table: Tensor, ids: Tensor): Tensor {
  if (ids.dtype !== 'i32') throw new DTypeError(`gather: ids must be i32, got ${ids.dtype}${fmtShape(ids.shape)}`);
  if (table.rank < 1) throw new ShapeError(`gather: table must have rank >= 1, got ${fmtShape(table.shape)}`);
  return dispatch({ op: 'gather' }, [table, ids], [{ shape: [...ids.shape, ...table.shape.slice(1)], dtype: table.dtype }])[0]!;
}
export const embedding = gather;

/** target with each row src[i] added at row ids[i] (duplicates accumulate); a new tensor. */
export function scatterAdd(target: Tensor, ids: Tensor, src: Tensor): Tensor {
  if (ids.dtype !== 'i32' || ids.rank !== 1) throw new DTypeError(`scatterAdd: ids must be i32[m], got ${ids.dtype}${fmtShape(ids.shape)}`);
  if (src.dtype !== target.dtype || !shapesEqual(src.shape, [ids.shape[0]!, ...target.shape.slice(1)])) {
    throw new ShapeError(`scatterAdd: src must be ${target.dtype}[${[ids.shape[0], ...target.shape.slice(1)].join(', ')}] for target ${fmtShape(target.shape)} and ids ${fmtShape(ids.shape)}, got ${src.dtype}${fmtShape(src.shape)}`);
  }
  return dispatch({ op: 'scatterAdd' }, [target, ids, src], [{ shape: target.shape, dtype: target.dtype }])[0]!;
}

export interface AttentionOptions {
  causal?: boolean;
  /** Defaults to 1/sqrt(d_head). */
  scale?: number;
  /** u8 [b, tk], 1 = attend (padding mask). */
  keyMask?: Tensor;
  /** Also return the probabilities [b, hq, tq, tk] (costs memory; only when asked). */
  returnProbs?: boolean;
  /** Output in token order [b, tq, hq, dv] (position before head) instead of [b, hq, tq, dv]. */
  tokenMajor?: boolean;
}

/** Scaled dot-product attention over q [b, hq, tq, d], k [b, hkv, tk, d], v [b, hkv, tk, dv]. */
export function attention(q: Tensor, k: Tensor, v: Tensor, o: AttentionOptions = {}): { out: Tensor; probs?: Tensor } {
  for (const [t, n] of [[q, 'q'], [k, 'k'], [v, 'v']] as const) {
    needFloat(t, 'attention', n);
    if (t.rank !== 4) throw new ShapeError(`attention: ${n} must be [batch, head, pos, d], got ${fmtShape(t.shape)}`);
  }
  const [b, hq, tq, d] = q.shape as [number, number, number, number];
  const [bk, hkv, tk, dk] = k.shape as [number, number, number, number];
  const [bv, hv, tv, dv] = v.shape as [number, number, number, number];
  if (q.dtype !== k.dtype || q.dtype !== v.dtype || bk !== b || bv !== b || dk !== d || hv !== hkv || tv !== tk || hkv === 0 || hq % hkv) {
    throw new ShapeError(`attention: q ${q.dtype}${fmtShape(q.shape)}, k ${k.dtype}${fmtShape(k.shape)}, v ${v.dtype}${fmtShape(v.shape)} do not fit (same batch, d, dtype; k/v heads must divide q heads)`);
  }
  const inputs = [q, k, v];
  if (o.keyMask) {
    if (o.keyMask.dtype !== 'u8' || !shapesEqual(o.keyMask.shape, [b, tk])) {
      throw new ShapeError(`attention: keyMask must be u8[${b}, ${tk}], got ${o.keyMask.dtype}${fmtShape(o.keyMask.shape)}`);
    }
    inputs.push(o.keyMask);
  }
  const op = { op: 'attention', scale: o.scale ?? 1 / Math.sqrt(d), causal: !!o.causal, masked: !!o.keyMask, returnProbs: !!o.returnProbs, ...(o.tokenMajor ? { tokenMajor: true } : {}) } as const;
  const outs = [{ shape: o.tokenMajor ? [b, tq, hq, dv] : [b, hq, tq, dv], dtype: q.dtype }];
  if (o.returnProbs) outs.push({ shape: [b, hq, tq, tk], dtype: q.dtype });
  const [out, probs] = dispatch(op, inputs, outs);
  return probs ? { out: out!, probs } : { out: out! };
}
