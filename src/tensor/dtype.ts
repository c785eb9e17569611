// Element types of the engine: names, sizes, and the exact conversions between them.
// Not for: arithmetic on tensors (that is the backends' job).

/** Every element type a tensor can hold. `i4`/`u4` are packed two per byte, low nibble first. */
export type DType = 'f32' | 'f16' | 'bf16' | 'i32' | 'i8' | 'u8' | 'i4' | 'u4';

export const DTYPES: readonly DType[] = ['f32', 'f16', 'bf16', 'i32', 'i8', 'u8', 'i4', 'u4'];

/** Bits per element. */
export function dtypeBits(d: DType): number {
  switch (d) {
    case 'f32': case 'i32': return 32;
    case 'f16': case 'bf16': return 16;
    case 'i8': case 'u8': return 8;
    case 'i4': case 'u4': return 4;
  }
}

export function isFloat(d: DType): boolean {
  return d === 'f32' || d === 'f16' || d === 'bf16';
}

export function isPacked(d: DType): boolean {
  return d === 'i4' || d === 'u4';
}

/** Bytes needed for `n` contiguous elements of `d` (packed types round up to whole bytes). */
export function byteSize(d: DType, n: number): number {
  return Math.ceil((n * dtypeBits(d)) / 8);
}

export function assertDType(d: string, where: string): DType {
  if (!(DTYPES as readonly string[]).includes(d)) {
    throw new TypeError(`${where}: unknown dtype '${d}' (expected one of ${DTYPES.join(', ')})`);
  }
  return d as DType;
}

// ---- f16 / bf16 <-> f32, round to nearest even (IEEE 754), NaN and Inf preserved ----

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

export function f32ToF16Bits(x: number): number {
  f32[0] = x;
  const b = u32[0]!;
  const sign = (b >>> 16) & 0x8000;
  const exp = (b >>> 23) & 0xff;
  let mant = b & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 | (mant >>> 13) : 0); // Inf / NaN (quiet)
  let e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00; // overflow -> Inf
  if (e <= 0) {
    // subnormal half (or zero)
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    const half = 1 << (shift - 1);
    let m = mant >>> shift;
    const rest = mant & ((1 << shift) - 1);
    if (rest > half || (rest === half && (m & 1))) m++;
    return sign | m;
  }
  let m = mant >>> 13;
  const rest = mant & 0x1fff;
  if (rest > 0x1000 || (rest === 0x1000 && (m & 1))) {
    m++;
    if (m === 0x400) { m = 0; e++; if (e >= 0x1f) return sign | 0x7c00; }
  }
  return sign | (e << 10) | m;
}

export function f16BitsToF32(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >>> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 0x1f) return mant ? NaN : sign * Infinity;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}

export function f32ToBf16Bits(x: number): number {
  f32[0] = x;
  const b = u32[0]!;
  if ((b & 0x7f800000) === 0x7f800000 && (b & 0x7fffff)) return ((b >>> 16) | 0x40) & 0xffff; // quiet NaN
  const rounded = b + 0x7fff + ((b >>> 16) & 1);
  return (rounded >>> 16) & 0xffff;
}

export function bf16BitsToF32(h: number): number {
  u32[0] = (h & 0xffff) << 16;
  return f32[0]!;
}

/** `x` rounded to float dtype `d`, as a tensor of that dtype stores it. */
export function roundToFloat(x: number, d: 'f32' | 'f16' | 'bf16'): number {
  if (d === 'f16') return f16BitsToF32(f32ToF16Bits(x));
  if (d === 'bf16') return bf16BitsToF32(f32ToBf16Bits(x));
  return Math.fround(x);
}

/** Saturating conversion of a real number to an integer dtype, truncating toward zero; NaN -> 0 (as a cast does). */
export function toIntDType(x: number, d: 'i32' | 'i8' | 'u8' | 'i4' | 'u4'): number {
  if (Number.isNaN(x)) return 0;
  const [lo, hi] = intRange(d);
  if (x <= lo) return lo;
  if (x >= hi) return hi;
  return Math.trunc(x);
}

export function intRange(d: 'i32' | 'i8' | 'u8' | 'i4' | 'u4'): [number, number] {
  switch (d) {
    case 'i32': return [-2147483648, 2147483647];
    case 'i8': return [-128, 127];
    case 'u8': return [0, 255];
    case 'i4': return [-8, 7];
    case 'u4': return [0, 15];
  }
}
