// Ops on GGML block-quantized data: `dequantize` (raw blocks -> f32), `qmatmul` (x · Wᵀ with W
// kept in its blocks), `qlinear` (qmatmul with bias and activation), `qembedding` (rows of a quantized table, dequantized) and `qdequantize`
// (a whole QuantizedTensor to f32). Block sizes: src/tensor/quantized.ts.
import type { QuantType, UnaryFn } from '../tensor/backend.js';
import { DTypeError, ShapeError } from '../tensor/errors.js';
import { dispatch } from '../tensor/engine.js';
import { QUANT_BLOCK, QUANT_TYPES, QuantizedTensor } from '../tensor/quantized.js';
import { fmtShape, numel } from '../tensor/shape.js';
import type { Tensor } from '../tensor/tensor.js';
import { gather } from './nn.js';
import { matmul } from './linalg.js';
import { add, unary } from './elementwise.js';

export { QUANT_BLOCK };

/** Raw blocks (u8) -> f32 of `shape` (its last dim a whole number of blocks: the rows). */
export function dequantize(raw: Tensor, type: QuantType, shape: readonly number[]): Tensor {
  const spec = QUANT_BLOCK[type];
  if (!spec) throw new DTypeError(`dequantize: unknown quant type '${type}' (have ${QUANT_TYPES.join(', ')})`);
  if (raw.dtype !== 'u8' || raw.rank !== 1) throw new DTypeError(`dequantize: raw must be u8[bytes], got ${raw.dtype}${fmtShape(raw.shape)}`);
  const n = numel(shape);
  // GGML's formats are flat runs of blocks; actlab's rows end in a tail, so the rows matter.
  const cols = spec.tail ? shape.at(-1) ?? 0 : spec.values;
  const rows = cols ? n / cols : 0;
  if (n % spec.values || cols % spec.values || !Number.isInteger(rows) || raw.size !== rows * ((cols / spec.values) * spec.bytes + spec.tail)) {
    throw new ShapeError(`dequantize(${type}): ${raw.size} bytes do not hold ${fmtShape(shape)} (${n} values in blocks of ${spec.values} values = ${spec.bytes} bytes${spec.tail ? `, plus ${spec.tail} bytes per row of ${cols}` : ''})`);
  }
  const y = dispatch({ op: 'dequantize', type }, [raw], [{ shape: [rows, cols], dtype: 'f32' }])[0]!;
  const r = y.reshape(shape);
  y.dispose();
  return r;
}

/** The whole matrix as f32 [rows, cols] (a new tensor the caller owns). */
export function qdequantize(w: QuantizedTensor): Tensor {
  return dequantize(w.raw, w.type, w.shape);
}

/**
 * x [..., K] · Wᵀ with W a quantized [N, K] matrix -> f32 [..., N]. Runs the backend's `qmatmul`;
 * a backend without one gets W dequantized for this call (memory of one f32 copy while it runs).
 */
export function qmatmul(x: Tensor, w: QuantizedTensor): Tensor {
  const [N, K] = w.shape;
  if (x.dtype !== 'f32') throw new DTypeError(`qmatmul: x must be f32, got ${x.dtype}${fmtShape(x.shape)}`);
  if (x.rank < 1 || x.shape.at(-1) !== K) {
    throw new ShapeError(`qmatmul: x ${fmtShape(x.shape)} does not end in the weight's ${K} input features (${w.type}[${N}, ${K}])`);
  }
  const op = { op: 'qmatmul', type: w.type } as const;
  return overRows(x, K, N, (xc, M) => {
    const probe = [xc.view(), w.raw.view()];
    if (!x.backend.supportsOp(op, probe, [{ ...probe[0]!, shape: [M, N], strides: [N, 1] }])) {
      const wf = qdequantize(w);
      try {
        return matmul(xc, wf, { transB: true });
      } finally {
        wf.dispose();
      }
    }
    return dispatch(op, [xc, w.raw], [{ shape: [M, N], dtype: 'f32' }])[0]!;
  });
}

/**
 * act(x [..., K] · Wᵀ + bias) with W a quantized [N, K] matrix and bias f32 [N] -> f32 [..., N]: one
 * 'qlinear' op where the backend has it and no gradient is asked for (the tape knows qmatmul, add
 * and unary), else those three ops. The same values either way on the wasm backend.
 */
export function qlinear(x: Tensor, w: QuantizedTensor, bias: Tensor, act?: UnaryFn): Tensor {
  const [N, K] = w.shape;
  if (bias.dtype !== 'f32' || bias.rank !== 1 || bias.shape[0] !== N) {
    throw new ShapeError(`qlinear: bias must be f32 [${N}] for the weight ${w.type}[${N}, ${K}], got ${bias.dtype}${fmtShape(bias.shape)}`);
  }
  const unfused = () => {
    const y = qmatmul(x, w);
    const z = add(y, bias);
    y.dispose();
    if (!act) return z;
    const a = unary(act, z);
    z.dispose();
    return a;
  };
  if (x.requiresGrad || bias.requiresGrad || x.dtype !== 'f32' || x.rank < 1 || x.shape.at(-1) !== K || x.backend !== bias.backend) return unfused();
  const op = { op: 'qlinear', type: w.type, act: act ?? null } as const;
  const probe = (xc: Tensor, M: number) => {
    const views = [xc.view(), w.raw.view(), bias.view()];
    return x.backend.supportsOp(op, views, [{ ...views[0]!, shape: [M, N], strides: [N, 1] }]);
  };
  const fused = overRows(x, K, N, (xc, M) => (probe(xc, M) ? dispatch(op, [xc, w.raw, bias], [{ shape: [M, N], dtype: 'f32' }])[0]! : null));
  return fused ?? unfused();
}

/**
 * x [..., K] as contiguous rows [M, K] for `f`, whose [M, N] result (owned by this function) comes
 * back as [..., N]; null from `f` passes through. Temporaries are freed here.
 */
function overRows<R extends Tensor | null>(x: Tensor, K: number, N: number, f: (xc: Tensor, M: number) => R): R {
  const lead = x.shape.slice(0, -1);
  const M = numel(lead);
  const x2 = x.reshape([M, K]);
  const xc = x2.isContiguous ? x2 : x2.contiguous();
  try {
    const y = f(xc, M);
    if (!y) return y;
    const r = y.reshape([...lead, N]);
    y.dispose();
    return r as R;
  } finally {
    if (xc !== x2) xc.dispose();
    x2.dispose();
  }
}

/** Rows `ids` (i32, any shape) of a quantized table [n, d] -> f32 [...ids, d]; only those rows are dequantized. */
export function qembedding(table: QuantizedTensor, ids: Tensor): Tensor {
  const [n, d] = table.shape;
  const rows = table.raw.reshape([n, table.rowBytes]); // [n, rowBytes] u8
  try {
    const picked = gather(rows, ids.reshape([ids.size])); // [m, rowBytes]
    try {
      const flat = picked.reshape([picked.size]);
      const y = dequantize(flat, table.type, [...ids.shape, d]);
      flat.dispose();
      return y;
    } finally {
      picked.dispose();
    }
  } finally {
    rows.dispose();
  }
}
