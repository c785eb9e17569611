// Dequantisation of GGML block-quantised weights (Q8_0, Q4_0: 32 values per block).
import type { QuantType } from '../tensor/backend.js';
import { DTypeError, ShapeError } from '../tensor/errors.js';
import { dispatch } from '../tensor/engine.js';
import { fmtShape, numel } from '../tensor/shape.js';
import type { Tensor } from '../tensor/tensor.js';

export const QUANT_BLOCK: Record<QuantType, { values: number; bytes: number }> = {
  q8_0: { values: 32, bytes: 34 },
  q4_0: { values: 32, bytes: 18 },
};

/** Raw blocks (u8) -> f32 of `shape` (numel must be a whole number of blocks). */
export function dequantize(raw: Tensor, type: QuantType, shape: readonly number[]): Tensor {
  const spec = QUANT_BLOCK[type];
  if (!spec) throw new DTypeError(`dequantize: unknown quant type '${type}' (have ${Object.keys(QUANT_BLOCK).join(', ')})`);
  if (raw.dtype !== 'u8' || raw.rank !== 1) throw new DTypeError(`dequantize: raw must be u8[bytes], got ${raw.dtype}${fmtShape(raw.shape)}`);
  const n = numel(shape);
  if (n % spec.values || raw.size !== (n / spec.values) * spec.bytes) {
    throw new ShapeError(`dequantize(${type}): ${raw.size} bytes do not hold ${fmtShape(shape)} (${n} values = ${n / spec.values} blocks of ${spec.bytes} bytes)`);
  }
  const y = dispatch({ op: 'dequantize', type }, [raw], [{ shape: [n], dtype: 'f32' }])[0]!;
  const r = y.reshape(shape);
  y.dispose();
  return r;
}
