// Reading and writing strided views of raw bytes as float64 arrays in logical row-major order.
// This is how the reference kernels see memory: every op reads dense f64 copies of its inputs and
// writes its results back through `writeView`, which does the dtype conversion (rounding,
// saturation). Not for: speed; fast kernels work on the bytes directly.
import { viewIsContiguous } from '../../tensor/backend.js';
import type { View } from '../../tensor/backend.js';
import { describeView } from '../../tensor/backend.js';
import {
  bf16BitsToF32, byteSize, f16BitsToF32, f32ToBf16Bits, f32ToF16Bits, toIntDType,
} from '../../tensor/dtype.js';
import { contiguousStrides, numel } from '../../tensor/shape.js';

export { contiguousStrides, numel };

/** Row-major contiguous from its offset (the contract's definition). */
export const isContiguous = viewIsContiguous;

/**
 * Element offsets (in elements, `offset` included) of every logical element of the view, in
 * row-major order. Checks that all of them fall inside `byteLength`.
 */
export function elementOffsets(v: View, byteLength: number): Float64Array {
  const { shape, strides } = v;
  if (shape.length !== strides.length) {
    throw new Error(`view ${describeView(v)}: ${strides.length} strides for ${shape.length} dims`);
  }
  const n = numel(shape);
  const out = new Float64Array(n);
  if (n === 0) return out;
  let lo = v.offset;
  let hi = v.offset;
  for (let d = 0; d < shape.length; d++) {
    const span = (shape[d]! - 1) * strides[d]!;
    if (span < 0) lo += span; else hi += span;
  }
  if (lo < 0 || byteSize(v.dtype, hi + 1) > byteLength) {
    throw new Error(
      `view ${describeView(v)} (strides [${strides.join(',')}], offset ${v.offset}) reaches elements ` +
        `${lo}..${hi}, outside its buffer of ${byteLength} bytes`,
    );
  }
  if (isContiguous(v)) {
    for (let i = 0; i < n; i++) out[i] = v.offset + i;
    return out;
  }
  const rank = shape.length;
  const idx = new Array<number>(rank).fill(0);
  let off = v.offset;
  for (let i = 0; i < n; i++) {
    out[i] = off;
    // odometer increment, last dim fastest
    for (let d = rank - 1; d >= 0; d--) {
      idx[d]!++;
      off += strides[d]!;
      if (idx[d]! < shape[d]!) break;
      off -= idx[d]! * strides[d]!;
      idx[d] = 0;
    }
  }
  return out;
}

function dataView(bytes: Uint8Array): DataView {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** The view's elements in logical row-major order, converted exactly to float64. */
export function readView(bytes: Uint8Array, v: View): Float64Array {
  const offs = elementOffsets(v, bytes.byteLength);
  const n = offs.length;
  const out = new Float64Array(n);
  const dv = dataView(bytes);
  switch (v.dtype) {
    case 'f32': for (let i = 0; i < n; i++) out[i] = dv.getFloat32(offs[i]! * 4, true); break;
    case 'f16': for (let i = 0; i < n; i++) out[i] = f16BitsToF32(dv.getUint16(offs[i]! * 2, true)); break;
    case 'bf16': for (let i = 0; i < n; i++) out[i] = bf16BitsToF32(dv.getUint16(offs[i]! * 2, true)); break;
    case 'i32': for (let i = 0; i < n; i++) out[i] = dv.getInt32(offs[i]! * 4, true); break;
    case 'i8': for (let i = 0; i < n; i++) out[i] = dv.getInt8(offs[i]!); break;
    case 'u8': for (let i = 0; i < n; i++) out[i] = bytes[offs[i]!]!; break;
    case 'u4':
    case 'i4': {
      const signed = v.dtype === 'i4';
      for (let i = 0; i < n; i++) {
        const e = offs[i]!;
        const byte = bytes[Math.floor(e / 2)]!;
        const nib = e % 2 === 1 ? byte >>> 4 : byte & 0xf;
        out[i] = signed && nib >= 8 ? nib - 16 : nib;
      }
      break;
    }
  }
  return out;
}

/**
 * Writes `values` (logical row-major order) into the view, converting to its dtype: floats round
 * to nearest even, integers truncate toward zero and saturate (NaN -> 0).
 */
export function writeView(bytes: Uint8Array, v: View, values: ArrayLike<number>): void {
  const offs = elementOffsets(v, bytes.byteLength);
  const n = offs.length;
  if (values.length !== n) {
    throw new Error(`writeView ${describeView(v)}: got ${values.length} values for ${n} elements`);
  }
  const dv = dataView(bytes);
  switch (v.dtype) {
    case 'f32': for (let i = 0; i < n; i++) dv.setFloat32(offs[i]! * 4, values[i]!, true); break;
    case 'f16': for (let i = 0; i < n; i++) dv.setUint16(offs[i]! * 2, f32ToF16Bits(values[i]!), true); break;
    case 'bf16': for (let i = 0; i < n; i++) dv.setUint16(offs[i]! * 2, f32ToBf16Bits(values[i]!), true); break;
    case 'i32': for (let i = 0; i < n; i++) dv.setInt32(offs[i]! * 4, toIntDType(values[i]!, 'i32'), true); break;
    case 'i8': for (let i = 0; i < n; i++) dv.setInt8(offs[i]!, toIntDType(values[i]!, 'i8')); break;
    case 'u8': for (let i = 0; i < n; i++) bytes[offs[i]!] = toIntDType(values[i]!, 'u8'); break;
    case 'u4':
    case 'i4': {
      const d = v.dtype;
      for (let i = 0; i < n; i++) {
        const e = offs[i]!;
        const nib = toIntDType(values[i]!, d) & 0xf;
        const at = Math.floor(e / 2);
        const byte = bytes[at]!;
        bytes[at] = e % 2 === 1 ? (byte & 0x0f) | (nib << 4) : (byte & 0xf0) | nib;
      }
      break;
    }
  }
}

/** A contiguous view description (handy for tests and for backends building their own views). */
export function contiguousView(buffer: View['buffer'], dtype: View['dtype'], shape: readonly number[], offset = 0): View {
  return { buffer, dtype, shape: [...shape], strides: contiguousStrides(shape), offset };
}
