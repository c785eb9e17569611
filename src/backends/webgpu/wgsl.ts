// WGSL building blocks shared by the kernels: every buffer is bound as raw 32-bit words, and
// each binding gets load/store functions for its dtype (f16/bf16/i8/u8/i4/u4 unpacked by bit
// arithmetic, so no shader-f16 feature is needed and conversions round exactly as the reference's
// do); NaN-safe math (the GPU's min/max/sign/log are not specified on NaN); erf, tanh and sin/cos
// with range reduction accurate to ~1e-7. Not for: kernels themselves (kernels/*).
import type { DType } from '../../tensor/dtype.js';

/** Bits of one element. */
export function bitsOf(d: DType): number {
  switch (d) {
    case 'f32': case 'i32': return 32;
    case 'f16': case 'bf16': return 16;
    case 'i8': case 'u8': return 8;
    case 'i4': case 'u4': return 4;
  }
}

export const isFloatDType = (d: DType) => d === 'f32' || d === 'f16' || d === 'bf16';

/** Integer range of a dtype (as i32 literals) for saturating stores. */
function intRange(d: DType): [string, string] {
  switch (d) {
    case 'i8': return ['-128', '127'];
    case 'u8': return ['0', '255'];
    case 'i4': return ['-8', '7'];
    case 'u4': return ['0', '15'];
    default: return ['-2147483647 - 1', '2147483647'];
  }
}

/** A read-only binding of raw words. */
export function inBinding(i: number, name: string): string {
  return `@group(0) @binding(${i}) var<storage, read> ${name}: array<u32>;`;
}

/** A writable binding: atomic words when elements are narrower than 32 bits (neighbours share a word). */
export function outBinding(i: number, name: string, d: DType): string {
  return bitsOf(d) === 32
    ? `@group(0) @binding(${i}) var<storage, read_write> ${name}: array<u32>;`
    : `@group(0) @binding(${i}) var<storage, read_write> ${name}: array<atomic<u32>>;`;
}

/** Raw bits of element e (zero-extended to u32) of a binding of dtype d. */
function rawLoad(name: string, d: DType, atomic: boolean): string {
  const w = (idx: string) => (atomic ? `atomicLoad(&${name}[${idx}])` : `${name}[${idx}]`);
  switch (bitsOf(d)) {
    case 32: return `return ${w('e')};`;
    case 16: return `return (${w('e >> 1u')} >> ((e & 1u) * 16u)) & 0xffffu;`;
    case 8: return `return (${w('e >> 2u')} >> ((e & 3u) * 8u)) & 0xffu;`;
    default: return `return (${w('e >> 3u')} >> ((e & 7u) * 4u)) & 0xfu;`;
  }
}

/**
 * Load functions for a binding: `ldb_<name>(e) -> u32` raw bits, `ldf_<name>(e) -> f32` value as
 * float, `ldi_<name>(e) -> i32` value as integer (floats truncate like a cast).
 */
export function loaders(name: string, d: DType, atomic = false): string {
  const toF = (() => {
    switch (d) {
      case 'f32': return 'bitcast<f32>(b)';
      case 'f16': return 'f16_to_f32(b)';
      case 'bf16': return 'bitcast<f32>(b << 16u)';
      case 'i32': return 'f32(bitcast<i32>(b))';
      case 'i8': return 'f32(bitcast<i32>(b << 24u) >> 24u)';
      case 'i4': return 'f32(bitcast<i32>(b << 28u) >> 28u)';
      default: return 'f32(b)';
    }
  })();
  const toI = (() => {
    switch (d) {
      case 'i32': return 'bitcast<i32>(b)';
      case 'i8': return 'bitcast<i32>(b << 24u) >> 24u';
      case 'i4': return 'bitcast<i32>(b << 28u) >> 28u';
      case 'u8': case 'u4': return 'i32(b)';
      default: return `f32_to_int(${toF}, -2147483647 - 1, 2147483647)`;
    }
  })();
  return `
fn ldb_${name}(e: u32) -> u32 { ${rawLoad(name, d, atomic)} }
fn ldf_${name}(e: u32) -> f32 { let b = ldb_${name}(e); return ${toF}; }
fn ldi_${name}(e: u32) -> i32 { let b = ldb_${name}(e); return ${toI}; }`;
}

/**
 * Store functions for an output binding: `stb_<name>(e, bits)`, `stf_<name>(e, f32)` (rounds to
 * nearest even for f16/bf16, truncates and saturates for integers, NaN -> 0), `sti_<name>(e, i32)`.
 */
export function storers(name: string, d: DType): string {
  const bits = bitsOf(d);
  const stb = bits === 32
    ? `${name}[e] = bits;`
    : (() => {
      const per = 32 / bits;
      const mask = bits === 16 ? '0xffffu' : bits === 8 ? '0xffu' : '0xfu';
      const shift = `(e & ${per - 1}u) * ${bits}u`;
      return `let w = e / ${per}u; let s = ${shift};
  atomicAnd(&${name}[w], ~(${mask} << s)); atomicOr(&${name}[w], (bits & ${mask}) << s);`;
    })();
  const [lo, hi] = intRange(d);
  const fromF = (() => {
    switch (d) {
      case 'f32': return 'bitcast<u32>(v)';
      case 'f16': return 'f32_to_f16(v)';
      case 'bf16': return 'f32_to_bf16(v)';
      default: return `bitcast<u32>(f32_to_int(v, ${lo}, ${hi}))`;
    }
  })();
  const fromI = isFloatDType(d) ? `stf_${name}(e, f32(v));` : `stb_${name}(e, bitcast<u32>(clamp(v, ${lo}, ${hi})));`;
  // two neighbours at once: one whole-word store when a 16-bit pair shares an aligned word
  const stf2 = bits === 16
    ? `if ((e & 1u) == 0u) { atomicStore(&${name}[e >> 1u], ${fromF.replace('(v)', '(v0)')} | (${fromF.replace('(v)', '(v1)')} << 16u)); } else { stf_${name}(e, v0); stf_${name}(e + 1u, v1); }`
    : `stf_${name}(e, v0); stf_${name}(e + 1u, v1);`;
  return `
fn stb_${name}(e: u32, bits: u32) { ${stb} }
fn stf_${name}(e: u32, v: f32) { stb_${name}(e, ${fromF}); }
fn stf2_${name}(e: u32, v0: f32, v1: f32) { ${stf2} }
fn sti_${name}(e: u32, v: i32) { ${fromI} }`;
}

/** Conversions and NaN-safe helpers every kernel includes. */
export const PRELUDE = /* wgsl */ `
var<private> NAN_BITS: u32 = 0x7fc00000u;
var<private> INF_BITS: u32 = 0x7f800000u;
fn nan_f32() -> f32 { return bitcast<f32>(NAN_BITS); }
fn inf_f32() -> f32 { return bitcast<f32>(INF_BITS); }
fn is_nan(x: f32) -> bool { return (bitcast<u32>(x) & 0x7fffffffu) > 0x7f800000u; }
fn is_inf(x: f32) -> bool { return (bitcast<u32>(x) & 0x7fffffffu) == 0x7f800000u; }

fn f16_to_f32(h: u32) -> f32 {
  let s = (h & 0x8000u) << 16u;
  let e = (h >> 10u) & 0x1fu;
  let m = h & 0x3ffu;
  if (e == 0u) { return bitcast<f32>(bitcast<u32>(f32(m) * 5.9604644775390625e-8) | s); }
  if (e == 31u) { return bitcast<f32>(s | 0x7f800000u | (m << 13u)); }
  return bitcast<f32>(s | ((e + 112u) << 23u) | (m << 13u));
}

fn f32_to_f16(x: f32) -> u32 {
  let b = bitcast<u32>(x);
  let sign = (b >> 16u) & 0x8000u;
  let ex = i32((b >> 23u) & 0xffu);
  var mant = b & 0x7fffffu;
  if (ex == 255) { return sign | 0x7c00u | select(0u, 0x200u | (mant >> 13u), mant != 0u); }
  var e = ex - 112;
  if (e >= 31) { return sign | 0x7c00u; }
  if (e <= 0) {
    if (e < -10) { return sign; }
    mant = mant | 0x800000u;
    let shift = u32(14 - e);
    let half = 1u << (shift - 1u);
    var m = mant >> shift;
    let rest = mant & ((1u << shift) - 1u);
    if (rest > half || (rest == half && (m & 1u) == 1u)) { m = m + 1u; }
    return sign | m;
  }
  var m = mant >> 13u;
  let rest = mant & 0x1fffu;
  if (rest > 0x1000u || (rest == 0x1000u && (m & 1u) == 1u)) {
    m = m + 1u;
    if (m == 0x400u) { m = 0u; e = e + 1; if (e >= 31) { return sign | 0x7c00u; } }
  }
  return sign | (u32(e) << 10u) | m;
}

fn f32_to_bf16(x: f32) -> u32 {
  let b = bitcast<u32>(x);
  if (is_nan(x)) { return ((b >> 16u) | 0x40u) & 0xffffu; }
  return ((b + 0x7fffu + ((b >> 16u) & 1u)) >> 16u) & 0xffffu;
}

/** Truncates toward zero and saturates to [lo, hi]; NaN gives 0 (as the reference's cast). */
fn f32_to_int(x: f32, lo: i32, hi: i32) -> i32 {
  if (is_nan(x)) { return 0; }
  if (x <= f32(lo)) { return lo; }
  if (x >= f32(hi)) { return hi; }
  return i32(trunc(x));
}

fn max_nan(a: f32, b: f32) -> f32 { if (is_nan(a) || is_nan(b)) { return nan_f32(); } return select(b, a, a > b); }
fn min_nan(a: f32, b: f32) -> f32 { if (is_nan(a) || is_nan(b)) { return nan_f32(); } return select(b, a, a < b); }
`;

/** Special functions (included by kernels that need them). */
export const MATH = /* wgsl */ `
fn exp_safe(x: f32) -> f32 {
  if (is_nan(x)) { return x; }
  if (x > 88.72284) { return inf_f32(); }
  if (x < -103.9721) { return 0.0; }
  return exp(x);
}

fn log_safe(x: f32) -> f32 {
  if (is_nan(x) || x < 0.0) { return nan_f32(); }
  if (x == 0.0) { return -inf_f32(); }
  if (is_inf(x)) { return x; }
  return log(x);
}

fn sqrt_safe(x: f32) -> f32 {
  if (is_nan(x) || x < 0.0) { return nan_f32(); }
  if (is_inf(x)) { return x; }
  return sqrt(x);
}

fn tanh_acc(x: f32) -> f32 {
  if (is_nan(x)) { return x; }
  let a = abs(x);
  var t: f32;
  if (a > 9.0) { t = 1.0; }
  else if (a < 0.0625) { let a2 = a * a; t = a * (1.0 + a2 * (-0.33333334 + a2 * (0.13333334 + a2 * (-0.05396825)))); }
  else { let e = exp(2.0 * a); t = (e - 1.0) / (e + 1.0); }
  return select(t, -t, x < 0.0);
}

/**
 * gelu with the tanh approximation, 0.5·x·(1 + tanh u) with u = √(2/π)·(x + 0.044715·x³), written
 * x / (1 + e^{-2u}): past e^{88} the value is below |x|·1e-38 and is 0; x = +inf gives x.
 */
fn gelu_tanh_acc(x: f32) -> f32 {
  let t = -1.5957691216057308 * (x + 0.044715 * x * x * x);
  let y = x / (1.0 + exp(min(t, 88.0)));
  return select(select(y, 0.0, t > 88.0), x, is_inf(x) && x > 0.0);
}

fn sigmoid_acc(x: f32) -> f32 {
  if (x >= 0.0) { return 1.0 / (1.0 + exp_safe(-x)); }
  let e = exp_safe(x);
  return e / (1.0 + e);
}

/** erfc with fractional error < 1.2e-7 (Numerical Recipes' erfcc). */
fn erfc_acc(x: f32) -> f32 {
  let z = abs(x);
  let t = 1.0 / (1.0 + 0.5 * z);
  let p = -z * z - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (-0.18628806 +
    t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277))))))));
  let r = t * exp_safe(p);
  return select(2.0 - r, r, x >= 0.0);
}

/** x - 2 pi k for the nearest k, accurate for |x| up to ~1e5 (the constant split keeps k * C1 exact). */
fn reduce_2pi(x: f32) -> f32 {
  let k = round(x * 0.15915494309189535);
  return (x - k * 6.28125) - k * 0.0019353071795864769;
}

/** sin and cos of x: quadrant reduction by pi/2 (three-part constant), then Cephes' polynomials. */
fn sincos_acc(x: f32) -> vec2<f32> {
  if (is_inf(x) || is_nan(x)) { return vec2<f32>(nan_f32(), nan_f32()); }
  let k = round(x * 0.6366197723675814);
  let r = ((x - k * 1.5703125) - k * 4.837512969970703125e-4) - k * 7.54978995489188216e-8;
  let z = r * r;
  let s = r + r * z * (-1.6666654611e-1 + z * (8.3321608736e-3 + z * (-1.9515295891e-4)));
  let c = 1.0 - 0.5 * z + z * z * (4.166664568298827e-2 + z * (-1.388731625493765e-3 + z * 2.443315711809948e-5));
  let q = i32(k - 4.0 * floor(k * 0.25));
  if (q == 0) { return vec2<f32>(s, c); }
  if (q == 1) { return vec2<f32>(c, -s); }
  if (q == 2) { return vec2<f32>(-s, -c); }
  return vec2<f32>(-c, s);
}
fn sin_acc(x: f32) -> f32 { return sincos_acc(x).x; }
fn cos_acc(x: f32) -> f32 { return sincos_acc(x).y; }

/**
 * The angle p * f reduced to about [-2pi, 2pi], from the exact product: p (an integer < 2^24) and
 * f are split into 12-bit halves so each partial product is exact in f32 and reduced on its own.
 */
fn angle_pf(p: i32, f: f32) -> f32 {
  let pf = f32(p);
  let p_hi = f32(p & ~0xfff);
  let p_lo = pf - p_hi;
  let f_hi = bitcast<f32>(bitcast<u32>(f) & 0xfffff000u);
  let f_lo = f - f_hi;
  let s = reduce_2pi(p_hi * f_hi) + reduce_2pi(p_hi * f_lo) + reduce_2pi(p_lo * f_hi) + reduce_2pi(p_lo * f_lo);
  return reduce_2pi(s);
}

/** a^b with JavaScript's Math.pow semantics (negative bases with integer exponents, NaN cases). */
fn pow_js(a: f32, b: f32) -> f32 {
  if (is_nan(b)) { return nan_f32(); }
  if (b == 0.0) { return 1.0; }
  if (is_nan(a)) { return nan_f32(); }
  let aa = abs(a);
  if (aa == 1.0 && is_inf(b)) { return nan_f32(); }
  var r: f32;
  if (aa == 0.0) { r = select(inf_f32(), 0.0, b > 0.0); }
  else if (is_inf(aa)) { r = select(0.0, inf_f32(), b > 0.0); }
  else if (is_inf(b)) { r = select(0.0, inf_f32(), (aa > 1.0) == (b > 0.0)); }
  else if (aa == 1.0) { r = 1.0; }
  else {
    let bi = round(b);
    if (bi == b && abs(b) <= 64.0) {
      // repeated squaring: exact-ish for small integer powers (x^2, x^3 as the reference computes them)
      var n = u32(abs(bi)); var base = aa; var acc = 1.0;
      loop { if (n == 0u) { break; } if ((n & 1u) == 1u) { acc = acc * base; } base = base * base; n = n >> 1u; }
      r = select(acc, 1.0 / acc, b < 0.0);
    } else {
      r = exp2(b * log2(aa));
    }
  }
  if ((bitcast<u32>(a) & 0x80000000u) != 0u) {
    let bi = round(b);
    let isInt = bi == b && !is_inf(b);
    if (isInt) {
      if (abs(b) < 16777216.0 && (i32(bi) & 1) == 1) { r = -r; }
    } else if (aa != 0.0 && !is_inf(aa)) { return nan_f32(); }
  }
  return r;
}
`;

/** `f(0)`, ..., `f(n - 1)` joined by newlines: the unrolled lines of a generated kernel. */
export const lines = (n: number, f: (i: number) => string) => Array.from({ length: n }, (_, i) => f(i)).join('\n');

/** Ceil division. */
export const cdiv = (a: number, b: number) => Math.floor((a + b - 1) / b);
