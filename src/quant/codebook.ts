// Code books: the value each code of a format stands for (before its scale), and the nearest code
// to a value. One table per format: integers (int8, int4), QLoRA's NF4, and the minifloats of
// FP8/FP4 built from their exponent/mantissa split (sign-magnitude codes, as the OCP FP8 and MX
// specifications lay out the bits).
// Not for: scales, packing or the choice of range (src/quant/group.ts).

export interface Codebook {
  /** Name for messages and configs ('int4', 'nf4', 'fp8_e4m3', ...). */
  name: string;
  bits: 4 | 8;
  /** Value of each code (NaN for codes that are not numbers, e.g. FP8 E4M3's NaN). */
  lut: Float32Array;
  /** The finite values in ascending order, and the code of each (+0 preferred for zero). */
  sorted: Float32Array;
  sortedCode: Uint8Array;
  /** max |value|: a scale of absmax / maxAbs maps a group's largest value onto the book's largest. */
  maxAbs: number;
  /** min and max value (asymmetric formats put min at the group's minimum). */
  min: number;
  max: number;
}

function fromLut(name: string, bits: 4 | 8, lut: Float32Array): Codebook {
  const pairs: [number, number][] = [];
  const seen = new Set<number>();
  for (let c = 0; c < lut.length; c++) {
    const v = lut[c]!;
    if (!Number.isFinite(v)) continue;
    const key = v === 0 ? 0 : v; // -0 and +0: keep the first (the +0 code comes first)
    if (seen.has(key)) continue;
    seen.add(key);
    pairs.push([key, c]);
  }
  pairs.sort((a, b) => a[0] - b[0]);
  const sorted = Float32Array.from(pairs, (p) => p[0]);
  let maxAbs = 0;
  for (const v of sorted) maxAbs = Math.max(maxAbs, Math.abs(v));
  return { name, bits, lut, sorted, sortedCode: Uint8Array.from(pairs, (p) => p[1]), maxAbs, min: sorted[0]!, max: sorted[sorted.length - 1]! };
}

/** Code of the value nearest to `v` (ties to the larger value; values beyond the ends clamp). */
export function nearestCode(book: Codebook, v: number): number {
  const s = book.sorted;
  if (!(v > s[0]!)) return book.sortedCode[0]!;
  let lo = 0;
  let hi = s.length - 1;
  if (v >= s[hi]!) return book.sortedCode[hi]!;
  while (hi - lo > 1) {
    const mid = (lo + hi) >> 1;
    if (s[mid]! <= v) lo = mid;
    else hi = mid;
  }
  return book.sortedCode[v - s[lo]! < s[hi]! - v ? lo : hi]!;
}

/** Integers lo..hi; `code(v)` is the code that stands for v (two's complement, or v - lo). */
export function intBook(name: string, bits: 4 | 8, lo: number, hi: number, code: (v: number) => number = (v) => v - lo): Codebook {
  const lut = new Float32Array(1 << bits).fill(NaN);
  for (let v = lo; v <= hi; v++) lut[code(v)] = v;
  return fromLut(name, bits, lut);
}

/**
 * NF4, QLoRA's 4-bit NormalFloat (Dettmers et al. 2023, "QLoRA: Efficient Finetuning of Quantized
 * LLMs", §3 and bitsandbytes' `create_normal_map(offset=0.9677083)`): quantiles of N(0, 1)
 * normalised to [-1, 1], with an exact zero; the values as bitsandbytes ships them.
 */
export const NF4_VALUES = [
  -1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453, -0.28444138169288635,
  -0.18477343022823334, -0.09105003625154495, 0.0, 0.07958029955625534, 0.16093020141124725,
  0.24611230194568634, 0.33791524171829224, 0.44070982933044434, 0.5626170039176941,
  0.7229568362236023, 1.0,
] as const;

/**
 * A sign-magnitude minifloat with `e` exponent and `m` mantissa bits (1 + e + m = bits), exponent
 * bias `bias`, subnormals when the exponent field is 0. `special`: 'fn' reserves only the all-ones
 * code for NaN (OCP FP8 E4M3), 'ieee' reserves the top exponent for Inf/NaN (E5M2), 'none' makes
 * every code a number (FP4 formats of the MX specification and LLM-FP4).
 */
export function fpBook(name: string, e: number, m: number, bias: number, special: 'fn' | 'ieee' | 'none'): Codebook {
  const bits = (1 + e + m) as 4 | 8;
  const half = 1 << (e + m);
  const lut = new Float32Array(1 << bits);
  for (let idx = 0; idx < half; idx++) {
    const ef = idx >> m;
    const mf = idx & ((1 << m) - 1);
    let v = ef === 0 ? (mf / (1 << m)) * 2 ** (1 - bias) : (1 + mf / (1 << m)) * 2 ** (ef - bias);
    if (special === 'fn' && idx === half - 1) v = NaN;
    if (special === 'ieee' && ef === (1 << e) - 1) v = mf === 0 ? Infinity : NaN;
    lut[idx] = v;
    lut[half + idx] = -v;
  }
  return fromLut(name, bits, lut);
}

/** The code books of actlab's formats. */
export const BOOKS = {
  /** int8, two's complement (the byte is the signed integer); the encoder keeps to [-127, 127]. */
  int8: intBook('int8', 8, -128, 127, (v) => v & 0xff),
  /** int4 symmetric [-8, 7] (code = q + 8); the encoder keeps to [-7, 7] with absmax scales. */
  int4: intBook('int4', 4, -8, 7),
  /** uint4 [0, 15] for asymmetric (scale and offset) groups. */
  uint4: intBook('uint4', 4, 0, 15),
  nf4: fromLut('nf4', 4, Float32Array.from(NF4_VALUES)),
  /** OCP 8-bit floating point (FP8) formats, v1.0: E4M3 (bias 7, max 448, no Inf) and E5M2 (bias 15, max 57344). */
  fp8_e4m3: fpBook('fp8_e4m3', 4, 3, 7, 'fn'),
  fp8_e5m2: fpBook('fp8_e5m2', 5, 2, 15, 'ieee'),
  /** FP4 E2M1 (OCP MX v1.0): ±{0, 0.5, 1, 1.5, 2, 3, 4, 6}. */
  fp4_e2m1: fpBook('fp4_e2m1', 2, 1, 1, 'none'),
  /** LLM-FP4's other 4-bit splits (their exponent bias is absorbed by the per-channel scale). */
  fp4_e1m2: fpBook('fp4_e1m2', 1, 2, 1, 'none'),
  fp4_e3m0: fpBook('fp4_e3m0', 3, 0, 1, 'none'),
} as const;
