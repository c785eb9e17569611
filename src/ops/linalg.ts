// Matrix products: batched matmul with broadcast batch dims and transposed operands.
import { add, unary } from './elementwise.js';
import type { UnaryFn } from '../tensor/backend.js';
import { isFloat } from '../tensor/dtype.js';
import { DTypeError, ShapeError } from '../tensor/errors.js';
import { dispatch } from '../tensor/engine.js';
import { broadcastShapes, fmtShape } from '../tensor/shape.js';
import type { Tensor } from '../tensor/tensor.js';

export interface MatmulOptions {
  /** `a` is given as [..., K, M] and used transposed. */
  transA?: boolean;
  /** `b` is given as [..., N, K] and used transposed (a Linear weight in HF layout). */
  transB?: boolean;
}

/** True when the last two dims are stored column-major (a transposed view of contiguous data). */
function storedTransposed(t: Tensor): boolean {
  const r = t.rank;
  return t.strides[r - 1] !== 1 && t.strides[r - 2] === 1 && t.shape[r - 1]! > 1;
}

/**
 * a [...batch, M, K] @ b [...batch, K, N] -> [...batch, M, N]; 1-D operands are treated as a row
 * (a) or column (b) vector and that dim is dropped from the result, as NumPy does.
 */
export function matmul(a: Tensor, b: Tensor, opts: MatmulOptions = {}): Tensor {
  if (!isFloat(a.dtype) || a.dtype !== b.dtype) {
    throw new DTypeError(`matmul: needs two float tensors of one dtype, got ${a.dtype}${fmtShape(a.shape)} and ${b.dtype}${fmtShape(b.shape)}`);
  }
  if (a.rank === 0 || b.rank === 0) throw new ShapeError(`matmul: operands must have rank >= 1, got ${fmtShape(a.shape)} and ${fmtShape(b.shape)}`);
  const made: Tensor[] = [];
  const vecA = a.rank === 1;
  const vecB = b.rank === 1;
  let A = vecA ? track(made, a.unsqueeze(0)) : a;
  let B = vecB ? track(made, b.unsqueeze(1)) : b;
  let transA = !!opts.transA && !vecA;
  let transB = !!opts.transB && !vecB;
  // Present each operand to the backend in the layout its memory has: a transposed view of
  // row-major data becomes the row-major data plus a flag, so kernels see unit inner strides.
  if (storedTransposed(A)) { A = track(made, A.transpose()); transA = !transA; }
  if (storedTransposed(B)) { B = track(made, B.transpose()); transB = !transB; }
  const [M, Ka] = transA ? [A.shape.at(-1)!, A.shape.at(-2)!] : [A.shape.at(-2)!, A.shape.at(-1)!];
  const [Kb, N] = transB ? [B.shape.at(-1)!, B.shape.at(-2)!] : [B.shape.at(-2)!, B.shape.at(-1)!];
  if (Ka !== Kb) {
    throw new ShapeError(`matmul: inner dims differ: ${fmtShape(a.shape)}${opts.transA ? 'ᵀ' : ''} @ ${fmtShape(b.shape)}${opts.transB ? 'ᵀ' : ''} (K ${Ka} vs ${Kb})`);
  }
  const batch = broadcastShapes('matmul (batch dims)', A.shape.slice(0, -2), B.shape.slice(0, -2));
  if (A.shape.length - 2 !== batch.length || A.shape.slice(0, -2).some((d, i) => d !== batch[i])) {
    A = track(made, A.broadcastTo([...batch, ...A.shape.slice(-2)]));
  }
  if (B.shape.length - 2 !== batch.length || B.shape.slice(0, -2).some((d, i) => d !== batch[i])) {
    B = track(made, B.broadcastTo([...batch, ...B.shape.slice(-2)]));
  }
  try {
    const y = dispatch({ op: 'matmul', transA, transB }, [A, B], [{ shape: [...batch, M, N], dtype: a.dtype }])[0]!;
    if (!vecA && !vecB) return y;
    const s = y.squeeze(vecA && vecB ? undefined : vecA ? -2 : -1);
    y.dispose();
    return s;
  } finally {
    for (const t of made) t.dispose();
  }
}

function track(list: Tensor[], t: Tensor): Tensor {
  list.push(t);
  return t;
}

/** y = x @ Wᵀ + bias, with W in the [out, in] layout of PyTorch's Linear. */
export function linear(x: Tensor, weight: Tensor, bias?: Tensor): Tensor {
  const y = matmul(x, weight, { transB: true });
  if (!bias) return y;
  const z = add(y, bias);
  y.dispose();
  return z;
}

/**
 * x [..., K] -> act(x · w + bias) [..., N], with w [K, N] (or [N, K] with transB) and bias [N]:
 * one 'linear' op where the backend prefers it (`prefersFusedLinear`), else matmul, add and unary.
 */
export function fusedLinear(x: Tensor, w: Tensor, bias: Tensor, o: { transB?: boolean; act?: UnaryFn; force?: boolean } = {}): Tensor {
  const transB = !!o.transB;
  const K = x.shape.at(-1)!;
  const N = transB ? w.shape[0]! : w.shape[1]!;
  // `force`: the 'linear' op on any backend (the conformance matrix), while no gradient is asked for
  const fuse = (o.force === true || x.backend.prefersFusedLinear === true) && w.rank === 2 && bias.rank === 1 && bias.shape[0] === N
    && x.dtype === 'f32' && w.dtype === 'f32' && bias.dtype === 'f32' && K === (transB ? w.shape[1] : w.shape[0])
    && !x.requiresGrad && !w.requiresGrad && !bias.requiresGrad; // the tape knows matmul, add and unary
  if (!fuse) {
    const y = matmul(x, w, { transB });
    const z = add(y, bias);
    y.dispose();
    if (!o.act) return z;
    const a = unary(o.act, z);
    z.dispose();
    return a;
  }
  const x2 = x.reshape([-1, K]); // [M, K]
  try {
    const y = dispatch({ op: 'linear', transB, act: o.act ?? null }, [x2, w, bias], [{ shape: [x2.shape[0]!, N], dtype: 'f32' }])[0]!;
    const out = y.reshape([...x.shape.slice(0, -1), N]);
    y.dispose();
    return out;
  } finally {
    x2.dispose();
  }
}
