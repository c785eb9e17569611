// Vectorised f32 math for the wasm kernel generators (not a kernel module itself: build-wasm only
// assembles `*.wat.mjs`). Each helper returns the WAT text of one function `(param v128) (result v128)`
// over four f32 lanes, to be pasted into a module that calls it. Accuracy against the f64 reference:
// exp, log, tanh, sigmoid ~1-2 ulp; erf-based gelu ~1e-7 relative (erfc tail 1e-5 relative, where
// the values are below 1e-8); sin/cos reduce and evaluate in f64, so stay accurate up to |x| ~ 1e7.
// NaN propagates through every function; ±Inf give the limits of the reference.
// Not for: f16/bf16 (callers convert), argument reduction of huge sin/cos arguments.

/** `(v128.const f32x4 c c c c)` */
export const f4 = (c) => `(v128.const f32x4 ${c} ${c} ${c} ${c})`;
export const i4 = (c) => `(v128.const i32x4 ${c} ${c} ${c} ${c})`;
export const d2 = (c) => `(v128.const f64x2 ${c} ${c})`;
const get = (n) => `(local.get $${n})`;
const fmul = (a, b) => `(f32x4.mul ${a} ${b})`;
const fadd = (a, b) => `(f32x4.add ${a} ${b})`;
const fsub = (a, b) => `(f32x4.sub ${a} ${b})`;

/** Horner evaluation c[0]·x^n + ... + c[n] (coefficients highest first). */
export function horner(coeffs, x, add = fadd, mul = fmul, k = f4) {
  let r = k(coeffs[0]);
  for (const c of coeffs.slice(1)) r = add(mul(r, x), k(c));
  return r;
}

// exp(x): n = round(x·log2 e) by the 1.5·2^23 trick (its bits also give n as an integer),
// r = x - n·ln2 (Cody-Waite), Taylor to r^7, times 2^n in two steps so that subnormal results and
// the overflow edge come out right. x is clamped to [-104, 89] first (pmin/pmax keep NaN).
const EXP_TAYLOR = [1 / 5040, 1 / 720, 1 / 120, 1 / 24, 1 / 6, 0.5, 1, 1];
const ROUNDER = 12582912; // 1.5 * 2^23
export const expFn = `
  (func $exp (param $x v128) (result v128) (local $n v128) (local $r v128) (local $ni v128) (local $h v128)
    (local.set $x (f32x4.pmax (f32x4.pmin ${get('x')} ${f4(89)}) ${f4(-104)}))
    (local.set $n ${fadd(fmul(get('x'), f4(1.4426950408889634)), f4(ROUNDER))})
    (local.set $ni (i32x4.sub ${get('n')} ${i4(0x4b400000)}))
    (local.set $n ${fsub(get('n'), f4(ROUNDER))})
    (local.set $r ${fsub(fsub(get('x'), fmul(get('n'), f4(0.693359375))), fmul(get('n'), f4(-2.12194440e-4)))})
    (local.set $h (i32x4.shr_s ${get('ni')} (i32.const 1)))
    ${fmul(fmul(horner(EXP_TAYLOR, get('r')),
      `(i32x4.shl (i32x4.add ${get('h')} ${i4(127)}) (i32.const 23))`),
      `(i32x4.shl (i32x4.add (i32x4.sub ${get('ni')} ${get('h')}) ${i4(127)}) (i32.const 23))`)})`;

// log(x) = e·ln2 + log(m), m in [sqrt(1/2), sqrt(2)), log m = 2 atanh(s), s = (m-1)/(m+1), series to s^9.
// Subnormal x are scaled by 2^23 first. x = 0 -> -Inf, x < 0 or NaN -> NaN, +Inf -> +Inf.
export const logFn = `
  (func $log (param $x v128) (result v128) (local $y v128) (local $e v128) (local $m v128) (local $s v128) (local $z v128) (local $sub v128) (local $big v128)
    (local.set $sub (f32x4.lt ${get('x')} ${f4(1.1754943508222875e-38)}))
    (local.set $y (v128.bitselect ${fmul(get('x'), f4(8388608))} ${get('x')} ${get('sub')}))
    (local.set $e (i32x4.sub (i32x4.shr_u ${get('y')} (i32.const 23)) (v128.and ${get('sub')} ${i4(23)})))
    (local.set $e (i32x4.sub ${get('e')} ${i4(127)}))
    (local.set $m (v128.or (v128.and ${get('y')} ${i4(0x7fffff)}) ${i4(0x3f800000)}))
    (local.set $big (f32x4.gt ${get('m')} ${f4(1.4142135623730951)}))
    (local.set $m (v128.bitselect ${fmul(get('m'), f4(0.5))} ${get('m')} ${get('big')}))
    (local.set $e (f32x4.convert_i32x4_s (i32x4.sub ${get('e')} ${get('big')})))
    (local.set $s (f32x4.div ${fsub(get('m'), f4(1))} ${fadd(get('m'), f4(1))}))
    (local.set $z ${fmul(get('s'), get('s'))})
    (local.set $y ${fadd(fmul(get('e'), f4(0.693359375)),
      fadd(fadd(get('s'), get('s')), fadd(fmul(fmul(get('s'), get('z')), horner([2 / 9, 2 / 7, 2 / 5, 2 / 3], get('z'))),
        fmul(get('e'), f4(-2.12194440e-4)))))})
    (local.set $y (v128.bitselect ${f4('-inf')} ${get('y')} (f32x4.eq ${get('x')} ${f4(0)})))
    (local.set $y (v128.bitselect ${get('x')} ${get('y')} (f32x4.eq ${get('x')} ${f4('inf')})))
    (v128.bitselect ${f4('nan')} ${get('y')} (v128.or (f32x4.lt ${get('x')} ${f4(0)}) (f32x4.ne ${get('x')} ${get('x')}))))`;

// tanh: odd polynomial below 0.625 (Cephes tanhf), else sign(x)·(1 - 2/(exp(2|x|) + 1)).
export const tanhFn = `
  (func $tanh (param $x v128) (result v128) (local $a v128) (local $z v128) (local $big v128)
    (local.set $a (f32x4.abs ${get('x')}))
    (local.set $z ${fmul(get('x'), get('x'))})
    (local.set $big (f32x4.sub ${f4(1)} (f32x4.div ${f4(2)} ${fadd(`(call $exp ${fadd(get('a'), get('a'))})`, f4(1))})))
    (local.set $big (v128.or (v128.and ${get('big')} ${i4(0x7fffffff)}) (v128.and ${get('x')} ${i4(-0x80000000)})))
    (v128.bitselect
      ${fadd(fmul(fmul(horner([-5.70498872745e-3, 2.06390887954e-2, -5.37397155531e-2, 1.33314422036e-1, -3.33332819422e-1], get('z')), get('z')), get('x')), get('x'))}
      ${get('big')}
      (f32x4.lt ${get('a')} ${f4(0.625)})))`;

// sigmoid: e = exp(-|x|); 1/(1+e) for x >= 0, e/(1+e) below (no cancellation on either side).
export const sigmoidFn = `
  (func $sigmoid (param $x v128) (result v128) (local $e v128) (local $r v128)
    (local.set $e (call $exp (f32x4.neg (f32x4.abs ${get('x')}))))
    (local.set $r (f32x4.div ${f4(1)} ${fadd(f4(1), get('e'))}))
    (v128.bitselect ${fmul(get('e'), get('r'))} ${get('r')} (f32x4.lt ${get('x')} ${f4(0)})))`;

// 1 + erf(z): below |z| = 0.9 z·P(z²); above, erfc(|z|) = t·exp(-z² + Q(t)), t = 1/(1 + |z|/2)
// (Q fitted to log erfc, 4e-8), giving 2 - erfc for z > 0 and erfc(|z|) (no cancellation) for z < 0.
const ERF_SMALL = [8.531629592208734e-05, -0.0008177877148730198, 0.005203810177569041, -0.026860346925310957,
  0.11283707906531527, -0.37612633930602274, 1.128379166384349];
const ERFC_Q = [-0.2555570677121049, 0.7047877155987775, -0.5502821487842394, 0.0244995559248933,
  -0.12138731228778929, 0.08750539202019685, 0.37475375000446015, 1.0000056253191278, -1.265512145078339];
export const onePlusErfFn = `
  (func $one_plus_erf (param $z v128) (result v128) (local $a v128) (local $t v128) (local $c v128) (local $s v128)
    (local.set $a (f32x4.abs ${get('z')}))
    (local.set $t (f32x4.div ${f4(1)} ${fadd(f4(1), fmul(get('a'), f4(0.5)))}))
    (local.set $c ${fmul(get('t'), `(call $exp ${fadd(fmul(f4(-1), fmul(get('a'), get('a'))), horner(ERFC_Q, get('t')))})`)})
    (local.set $c (v128.bitselect ${get('c')} ${fsub(f4(2), get('c'))} (f32x4.lt ${get('z')} ${f4(0)})))
    (local.set $s ${fmul(get('z'), get('z'))})
    (v128.bitselect ${fadd(f4(1), fmul(get('z'), horner(ERF_SMALL, get('s'))))} ${get('c')} (f32x4.lt ${get('a')} ${f4(0.9)})))`;

// sin / cos in f64 pairs: n = round(x·2/π), r = x - n·π/2 in three parts (exact products for
// |n| < 2^23), Taylor polynomials on |r| <= π/4 (error < 1e-11), quadrant from n.
const PIO2 = Math.PI / 2;
const PIO2_ERR = 6.123233995736766e-17; // π/2 - f64(π/2)
const hi30 = (x) => { const e = Math.floor(Math.log2(Math.abs(x))); const q = 2 ** (29 - e); return Math.round(x * q) / q; };
const C1 = hi30(PIO2);
const C2 = hi30(PIO2 - C1);
const C3 = PIO2 - C1 - C2 + PIO2_ERR;
const SIN_T = [-1 / 39916800, 1 / 362880, -1 / 5040, 1 / 120, -1 / 6];
const COS_T = [1 / 479001600, -1 / 3628800, 1 / 40320, -1 / 720, 1 / 24, -0.5, 1];
const dmul = (a, b) => `(f64x2.mul ${a} ${b})`;
const dadd = (a, b) => `(f64x2.add ${a} ${b})`;
const dsub = (a, b) => `(f64x2.sub ${a} ${b})`;
/** `$sincos2 (x f64x2, cosine i32) -> f64x2`: sin(x), or cos(x) when `cosine` is 1. */
export const sincosFn = `
  (func $sincos2 (param $x v128) (param $cosine i32) (result v128) (local $n v128) (local $r v128) (local $z v128) (local $q v128) (local $s v128) (local $c v128)
    (local.set $n (f64x2.nearest ${dmul(get('x'), d2(2 / Math.PI))}))
    (local.set $r ${dsub(dsub(dsub(get('x'), dmul(get('n'), d2(C1))), dmul(get('n'), d2(C2))), dmul(get('n'), d2(C3)))})
    (local.set $z ${dmul(get('r'), get('r'))})
    (local.set $s ${dadd(get('r'), dmul(dmul(get('r'), get('z')), horner(SIN_T, get('z'), dadd, dmul, d2)))})
    (local.set $c ${horner(COS_T, get('z'), dadd, dmul, d2)})
    ;; quadrant q = (n + cosine) mod 4, as 64-bit lanes
    (local.set $q (i64x2.extend_low_i32x4_s (i32x4.add (i32x4.trunc_sat_f64x2_s_zero (f64x2.sub ${get('n')} (f64x2.mul (f64x2.floor (f64x2.mul ${get('n')} ${d2(0.25)})) ${d2(4)}))) (i32x4.splat ${get('cosine')}))))
    (local.set $s (v128.bitselect ${get('c')} ${get('s')} (i64x2.ne (v128.and ${get('q')} (v128.const i64x2 1 1)) (v128.const i64x2 0 0))))
    (v128.xor ${get('s')} (i64x2.shl (i64x2.shr_u ${get('q')} (i32.const 1)) (i32.const 63))))`;
/** `$sin` / `$cos` over f32x4 through two f64x2 halves. */
export const sinCosF32Fns = ['sin', 'cos'].map((f, k) => `
  (func $${f} (param $x v128) (result v128) (local $lo v128) (local $hi v128)
    (local.set $lo (f32x4.demote_f64x2_zero (call $sincos2 (f64x2.promote_low_f32x4 ${get('x')}) (i32.const ${k}))))
    (local.set $hi (f32x4.demote_f64x2_zero (call $sincos2 (f64x2.promote_low_f32x4 (i8x16.shuffle 8 9 10 11 12 13 14 15 0 1 2 3 4 5 6 7 ${get('x')} ${get('x')})) (i32.const ${k}))))
    (i8x16.shuffle 0 1 2 3 4 5 6 7 16 17 18 19 20 21 22 23 ${get('lo')} ${get('hi')}))`).join('\n');

/** Every function above, for a module that needs some of them (unused ones cost little). */
export const MATH_FNS = [expFn, logFn, tanhFn, sigmoidFn, onePlusErfFn, sincosFn, sinCosF32Fns].join('\n');
