// Generator of the quantized matrix product module: y [M, N] = x [M, K] · Wᵀ with W [N, K] kept in
// GGML blocks (q8_0, q4_0, q4_k, q6_k), as ggml's CPU backend computes it: the activation is first
// rounded to 8 bits per 32 values (qm_quant_x: scale d = max|x| / 127, q = nearest(x / d), also
// d · Σq per block for the q4_k minimums), then each 32-value unit of a weight row meets each
// activation row in integer dot products (i32x4.dot_i16x8_s over 16-bit copies of both), scaled by
// the two block scales in f32. Exports, each `(params, task, nTasks)`, parameter block P below:
//   qm_quant_x     blocks of x split over tasks -> xq (i16 [M, K]), xq8 (i8 [M, K]), xd, xs
//                  (f32 [M, K/32]), xp (i16 [M, K/2]: 32 · each pair's sum), xm (i16 [M, K/4]:
//                  8 · the sum of values 2i, 2i+1, 16+2i, 17+2i of each 32)
//   qm_quant_xk    256-value blocks of x split over tasks -> xk8 (i8 [M, K]), xkd (f32 [M, K/256]),
//                  xkg (i16 [M, K/16]: sums of 16), xk32 (i16 [M, K/32]: sums of 32); K-quant decode
//   qm_<type>      rows rowBeg..rowEnd of W (W points at row rowBeg: a panel of a larger weight,
//                  y's rows stay N long) split over tasks; per row, x rows in groups of MT (the weight unit is
//                  unpacked once per group: decode is GEMV with MT = 1, prefill is a blocked GEMM)
// f16 scales are read through a 65536-entry f32 table (P.tab) that the runtime fills once.
// The relaxed-SIMD build runs q4_0 and q4_k on i16x8.relaxed_dot_i8x16_i7x16_s instead: an i8
// copy of the activation (xq8) against the raw nibbles (0..15, inside the instruction's 7-bit
// operand, so every implementation gives the exact sum); q4_0's (and int4's) −8 comes off the
// i16 sums through x's 8·(sums of four values) (xm, written by qm_quant_x).
// Q6_K's 6-bit values (0..63) take the same dot; its −32 comes off the i16 pair sums through
// x's 32·(x₀ + x₁) (xp, written by qm_quant_x), then each 16-value scale multiplies in i32.
// Q4_K/Q5_K unpack a block's 8 scales and mins once into f32 vectors (kScales): the scale of
// a unit is a lane broadcast, the mins meet x's unit sums four at a time.
// Block layouts (ggml-common.h): q8_0 [f16 d, 32 x i8]; q4_0 [f16 d, 16 bytes: element j the low
// nibble of byte j, element j + 16 the high one, minus 8]; q4_k [f16 d, f16 dmin, 12 bytes of
// 6-bit scales and mins, 128 bytes of nibbles: sub-block 2p the low nibbles of bytes 32p..32p+31,
// 2p + 1 the high ones; value d·sc·q − dmin·m]; q6_k [128 bytes low nibbles, 64 bytes of 2-bit
// high parts, 16 i8 scales per 16 values, f16 d; value d·sc·(q − 32)].
// q4_1 / q5_1 [f16 d, f16 m, (u32 qh,) nibbles: value d·q + m, m·Σx through x's block sums];
// q5_0 [f16 d, u32 qh (bit e the fifth bit of element e), nibbles: d·(q − 16)]; q5_k [as q4_k, with
// 32 bytes of fifth bits (bit j of byte l: value l of unit j) before the nibbles]; iq4_nl [as q4_0,
// nibbles indexing a 16-level grid, looked up with i8x16.swizzle]. The 5-bit formats run on the
// relaxed dot too (values 0..31); iq4_nl's signed levels take the 16-bit dot everywhere.
// actlab's int8 (per-channel: i8 blocks, the row's f32 scale after them) and int4 groups
// (symmetric like q4_0 over 32-value units, asymmetric with an offset in the min term) run the
// same scheme (src/quant/group.ts has their layouts).
// The code-book formats (NF4, NF4 with double-quantised scales, FP4 E2M1, LLM-FP4's E1M2/E2M1/
// E3M0) run iq4_nl's scheme with their own 16-level tables; FP8 (E4M3, E5M2) has its own kernel
// over the f32 activation (fp8Kernel). Every actlab format stays packed on wasm.
// Q6_K, Q4_K and Q5_K, in both builds, run on x rounded per 256 values as llama.cpp's Q8_K
// (qm_quant_xk: xk8, xkd, xkg, xk32): decode (fewer than MT activation rows) on the kernels of
// qdecode.mjs, two weight rows per pass, prefill on the blocked GEMM of qktile.mjs; one exact
// integer sum per super-block and weight row.
// Not for: other formats (the runtime falls back to the reference kernel).

import { DECODE, kScaleBytes, quantXK } from './qdecode.mjs';
import { TILE_TYPES, UNIT16_BYTES, UNIT_BYTES, tileEntry } from './qtile.mjs';
import { KTILE_BYTES, KTILE_TYPES, ktileEntry } from './qktile.mjs';

export const name = 'qmatmul';
export const TYPES = ['q8_0', 'q4_0', 'q4_k', 'q6_k', 'q4_1', 'q5_0', 'q5_1', 'q5_k', 'iq4_nl', 'int8', 'int4_g32', 'int4_g64', 'int4_g128', 'int4a_g32', 'int4a_g64', 'int4a_g128',
  'nf4', 'nf4_dq', 'fp4', 'llmfp4_e1m2', 'llmfp4_e2m1', 'llmfp4_e3m0', 'fp8_e4m3', 'fp8_e5m2'];
export const exportNames = ['qm_quant_x', 'qm_quant_xk', ...TYPES.map((t) => `qm_${t}`), ...TILE_TYPES.map((t) => `qm_${t}_gemm`)];

/** Parameter block, i32 fields at these byte offsets (pointers are byte addresses). */
export const P = { M: 0, N: 4, K: 8, x: 12, xq: 16, xd: 20, xs: 24, w: 28, y: 32, tab: 36, rowBytes: 40, xq8: 44, rowBeg: 48, rowEnd: 52, xp: 56, xm: 60, xt: 68, xt16: 72, tiled: 76, xk8: 80, xkd: 84, xkg: 88, xk32: 92, xkt: 96 };
/** Activation rows per weight-unit decode in the GEMM path. */
export const MT = 4;
/** Bytes of the parameter block. */
export const P_BYTES = 128;
export const constants = { P, P_BYTES, MT, TYPES, TILE_TYPES, UNIT_BYTES, UNIT16_BYTES, KTILE_TYPES, KTILE_BYTES };

const FORMAT = {
  q8_0: { values: 32, bytes: 34, units: 1 },
  q4_0: { values: 32, bytes: 18, units: 1 },
  q4_k: { values: 256, bytes: 144, units: 8 },
  q6_k: { values: 256, bytes: 210, units: 8 },
  q4_1: { values: 32, bytes: 20, units: 1 },
  q5_0: { values: 32, bytes: 22, units: 1 },
  q5_1: { values: 32, bytes: 24, units: 1 },
  q5_k: { values: 256, bytes: 176, units: 8 },
  iq4_nl: { values: 32, bytes: 18, units: 1 },
  // actlab's formats (src/quant/group.ts): int8 rows of 32-byte blocks of i8 then an f32 scale
  // per row (rowTail); int4 groups [f16 d, (f16 offset,) nibbles of 32 values per unit as q4_0]
  int8: { values: 32, bytes: 32, units: 1, rowTail: true },
  // code-book formats (src/quant/nf4.ts, fp.ts, llm-fp4-formats.ts): 4-bit codes packed as q4_0's
  // nibbles, looked up in a 16-entry table (lut) of the levels times `mul` (integers: FP4 and the
  // LLM-FP4 splits exactly; NF4 rounded to multiples of 2^-14), the scale divided by it. nf4 [f32
  // d, 2 units]; nf4_dq [u8 scale code, 2 units] and the row's f32 low end and step after its
  // blocks; fp4 [f16 d, 1 unit]; llmfp4_* [1 unit], the row's f32 scale after its blocks; fp8_*
  // [32 codes], the row's f32 scale after them (their own kernel: fp8Kernel).
  nf4: { values: 64, bytes: 36, units: 2, lut: 'nf4' },
  nf4_dq: { values: 64, bytes: 33, units: 2, lut: 'nf4', dq: true },
  fp4: { values: 32, bytes: 18, units: 1, lut: 'e2m1' },
  llmfp4_e1m2: { values: 32, bytes: 16, units: 1, rowTail: true, lut: 'e1m2' },
  llmfp4_e2m1: { values: 32, bytes: 16, units: 1, rowTail: true, lut: 'e2m1' },
  llmfp4_e3m0: { values: 32, bytes: 16, units: 1, rowTail: true, lut: 'e3m0' },
  fp8_e4m3: { values: 32, bytes: 32, units: 1, rowTail: true, fp8: { mant: 3, bias: 7 } },
  fp8_e5m2: { values: 32, bytes: 32, units: 1, rowTail: true, fp8: { mant: 2, bias: 15 } },
  ...Object.fromEntries([32, 64, 128].flatMap((gs) => [[`int4_g${gs}`, { values: gs, bytes: 2 + gs / 2, units: gs / 32 }], [`int4a_g${gs}`, { values: gs, bytes: 4 + gs / 2, units: gs / 32 }]])),
};
const INT4 = /^int4(a?)_g\d+$/;
/** Sign-magnitude 4-bit minifloat levels (codes 8..15 the negatives of 0..7), times `mul`. */
const minifloat = (pos, mul) => ({ levels: [...pos, ...pos.map((v) => -v)].map((v) => v * mul), mul });
/** QLoRA's NF4 levels (src/quant/codebook.ts NF4_VALUES, as bitsandbytes ships them). */
const NF4_VALUES = [-1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453, -0.28444138169288635,
  -0.18477343022823334, -0.09105003625154495, 0.0, 0.07958029955625534, 0.16093020141124725,
  0.24611230194568634, 0.33791524171829224, 0.44070982933044434, 0.5626170039176941,
  0.7229568362236023, 1.0];
const LUTS = {
  // E2M1 ±{0, .5, 1, 1.5, 2, 3, 4, 6}, E1M2 ±{0, .25, ..., 1.75}, E3M0 ±{0, 1, 2, ..., 64} (bias 1)
  e2m1: minifloat([0, 0.5, 1, 1.5, 2, 3, 4, 6], 2),
  e1m2: minifloat([0, 0.25, 0.5, 0.75, 1, 1.25, 1.5, 1.75], 4),
  e3m0: minifloat([0, 1, 2, 4, 8, 16, 32, 64], 1),
  // i16 levels: within 2^-15 of each NF4 value (the activation's 8-bit rounding is ~2^-8)
  nf4: { levels: NF4_VALUES.map((v) => Math.round(v * 16384)), mul: 16384 },
};

/** Formats whose weight values are 0..31 as stored (their offsets go to the min term): the relaxed i8·i7 dot applies. */
const RDOT = new Set(['q4_0', 'q4_k', 'q6_k', 'q4_1', 'q5_0', 'q5_1', 'q5_k', ...[32, 64, 128].flatMap((gs) => [`int4_g${gs}`, `int4a_g${gs}`])]);
/** Formats with a per-unit min term (value = s·q + m): x's block sums are needed. */
const hasMin = (type, rdot) => ['q4_k', 'q4_1', 'q5_1', 'q5_k'].includes(type) || /^int4a_/.test(type) || (rdot && type === 'q5_0');
/** Relaxed-dot formats whose −8 comes off the i16 sums through x's 8·(sums of four), xm. */
const off8 = (type, rdot) => rdot && (type === 'q4_0' || /^int4_g/.test(type));
/** Formats with a super-block scale pair (d, dmin) read once per block. */
const KMIN = new Set(['q4_k', 'q5_k']);
/** IQ4_NL's 16 levels (ggml-common.h kvalues_iq4nl), as a swizzle table. */
const IQ4_NL = [-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113];

const g = (n) => `(local.get $${n})`;
const set = (n, v) => `(local.set $${n} ${v})`;
const i32 = (n) => `(i32.const ${n})`;
const add = (a, b) => `(i32.add ${a} ${b})`;
const mul = (a, b) => `(i32.mul ${a} ${b})`;
const b16 = (c) => `(v128.const i8x16 ${Array(16).fill(c).join(' ')})`;
const bytes16 = (a) => `(v128.const i8x16 ${a.join(' ')})`;
/**
 * The fifth bits of elements 16h .. 16h + 15 of a Q5 block (bit e of the u32 at `addr`) as 0x10
 * or 0 per byte: the two bytes of qh spread over 8 lanes each, one bit tested per lane.
 */
const q5High = (addr, h) => `(v128.and (i8x16.ne (v128.and (i8x16.swizzle (i32x4.splat (i32.load ${addr})) ${bytes16([...Array(8).fill(2 * h), ...Array(8).fill(2 * h + 1)])})
        ${bytes16([1, 2, 4, 8, 16, 32, 64, 128, 1, 2, 4, 8, 16, 32, 64, 128])}) ${b16(0)}) ${b16(16)})`;
const f16 = (addr) => `(f32.load (i32.add ${g('tab')} (i32.shl (i32.load16_u ${addr}) ${i32(2)})))`;
const hsum = (v) => `(f32.add (f32.add (f32x4.extract_lane 0 ${v}) (f32x4.extract_lane 1 ${v})) (f32.add (f32x4.extract_lane 2 ${v}) (f32x4.extract_lane 3 ${v})))`;

/**
 * Q4_K/Q5_K: the 8 six-bit scales and mins of the block at $wp unpacked at once (ggml's utmp
 * masks on three u32 words), as f32x4 d·sc (units 0-3 in $ks0, 4-7 in $ks1) and dmin·m ($km0, $km1).
 */
function kScales() {
  const bytes = kScaleBytes(g('wp'));
  const f = (v, half) => `(f32x4.convert_i32x4_u (i32x4.extend_${half}_i16x8_u ${v}))`;
  return [
    set('kv', bytes),
    set('ks0', `(f32x4.mul ${f(`(i16x8.extend_low_i8x16_u ${g('kv')})`, 'low')} (f32x4.splat ${g('dd')}))`),
    set('ks1', `(f32x4.mul ${f(`(i16x8.extend_low_i8x16_u ${g('kv')})`, 'high')} (f32x4.splat ${g('dd')}))`),
    set('km0', `(f32x4.mul ${f(`(i16x8.extend_high_i8x16_u ${g('kv')})`, 'low')} (f32x4.splat ${g('dmin')}))`),
    set('km1', `(f32x4.mul ${f(`(i16x8.extend_high_i8x16_u ${g('kv')})`, 'high')} (f32x4.splat ${g('dmin')}))`),
  ].map((x) => '        ' + x).join('\n');
}

/** Lane `l` of f32x4 `v` in every lane. */
const bcast = (v, l) => `(i8x16.shuffle ${Array.from({ length: 4 }, () => [0, 1, 2, 3].map((b) => 4 * l + b).join(' ')).join(' ')} ${v} ${v})`;

/** The sum of the 16 i8 lanes of local `v`, as an i32. */
const sum16 = (v) => {
  const s = `(i32x4.extadd_pairwise_i16x8_s (i16x8.extadd_pairwise_i8x16_s ${g(v)}))`;
  return `(i32.add (i32.add (i32x4.extract_lane 0 ${s}) (i32x4.extract_lane 1 ${s})) (i32.add (i32x4.extract_lane 2 ${s}) (i32x4.extract_lane 3 ${s})))`;
};

/**
 * With P.tiled, a block of one of the first M & ~3 rows is also written into its group's tile
 * (qtile.mjs: XT's i8 values, d, Σq, d·Σq, half sums; XT16's i16 values where P.xt16 is not 0).
 */
function tileStores() {
  const at = (o) => `(i32.add ${g('tp')} (i32.add (i32.shl (i32.and ${g('row')} ${i32(3)}) ${i32(2)}) ${i32(o)}))`;
  const unit = `(i32.add (i32.mul (i32.shr_u ${g('row')} ${i32(2)}) ${g('nbRow')}) (i32.sub ${g('b')} (i32.mul ${g('row')} ${g('nbRow')})))`;
  return `(local.set $row (i32.div_u ${g('b')} ${g('nbRow')}))
      (if (i32.lt_u ${g('row')} ${g('M4')}) (then
        (local.set $tp (i32.add ${g('xt')} (i32.mul ${unit} ${i32(UNIT_BYTES)})))
        (v128.store (i32.add ${g('tp')} (i32.shl (i32.and ${g('row')} ${i32(3)}) ${i32(5)})) ${g('v0')})
        (v128.store offset=16 (i32.add ${g('tp')} (i32.shl (i32.and ${g('row')} ${i32(3)}) ${i32(5)})) ${g('v1')})
        (f32.store ${at(128)} ${g('dd')})
        (i32.store ${at(144)} ${g('sq')})
        (f32.store ${at(160)} (f32.mul ${g('dd')} (f32.convert_i32_s ${g('sq')})))
        (i32.store16 ${at(176)} ${sum16('v0')})
        (i32.store16 ${at(178)} ${sum16('v1')})
        (if ${g('xt16')} (then
          (local.set $tp (i32.add (i32.add ${g('xt16')} (i32.mul ${unit} ${i32(UNIT16_BYTES)})) (i32.shl (i32.and ${g('row')} ${i32(3)}) ${i32(6)})))
          ${[0, 1, 2, 3].map((k) => `(v128.store offset=${16 * k} ${g('tp')} ${g(`q${k}`)})`).join(' ')}))))`;
}

/** Activation quantisation: 32 f32 -> 32 i16 in [-127, 127], d and d·Σq. */
function quantX() {
  const loads = Array.from({ length: 8 }, (_, i) => set(`v${i}`, `(v128.load offset=${16 * i} ${g('x')})`)).join('\n      ');
  const abs = (i) => `(f32x4.abs ${g(`v${i}`)})`;
  const q = (i) => `(i32x4.trunc_sat_f32x4_s (f32x4.nearest (f32x4.mul ${g(`v${i}`)} ${g('ids')})))`;
  const stores = [0, 1, 2, 3].map((k) => set(`q${k}`, `(i16x8.narrow_i32x4_s ${q(2 * k)} ${q(2 * k + 1)})`) + `\n      (v128.store offset=${16 * k} ${g('q')} ${g(`q${k}`)})`).join('\n      ');
  return `
  (func $qm_quant_x (param $p i32) (param $task i32) (param $nTasks i32)
    (local $b i32) (local $end i32) (local $n i32) (local $x i32) (local $q i32) (local $d i32) (local $s i32) (local $q8 i32)
    ${Array.from({ length: 8 }, (_, i) => `(local $v${i} v128)`).join(' ')} (local $m v128) (local $ids v128)
    (local $q0 v128) (local $q1 v128) (local $q2 v128) (local $q3 v128) (local $am f32) (local $dd f32) (local $sum v128) (local $xp i32) (local $xm i32)
    (local $sq i32) (local $nbRow i32) (local $M4 i32) (local $row i32) (local $tp i32) (local $xt i32) (local $xt16 i32)
    (local.set $n (i32.div_u (i32.mul (i32.load offset=${P.M} ${g('p')}) (i32.load offset=${P.K} ${g('p')})) ${i32(32)}))
    (local.set $b (i32.div_u (i32.mul ${g('n')} ${g('task')}) ${g('nTasks')}))
    (local.set $end (i32.div_u (i32.mul ${g('n')} (i32.add ${g('task')} ${i32(1)})) ${g('nTasks')}))
    (local.set $x (i32.add (i32.load offset=${P.x} ${g('p')}) (i32.shl ${g('b')} ${i32(7)})))
    (local.set $q (i32.add (i32.load offset=${P.xq} ${g('p')}) (i32.shl ${g('b')} ${i32(6)})))
    (local.set $d (i32.add (i32.load offset=${P.xd} ${g('p')}) (i32.shl ${g('b')} ${i32(2)})))
    (local.set $s (i32.add (i32.load offset=${P.xs} ${g('p')}) (i32.shl ${g('b')} ${i32(2)})))
    (local.set $q8 (i32.add (i32.load offset=${P.xq8} ${g('p')}) (i32.shl ${g('b')} ${i32(5)})))
    (local.set $xp (i32.add (i32.load offset=${P.xp} ${g('p')}) (i32.shl ${g('b')} ${i32(5)})))
    (local.set $xm (i32.add (i32.load offset=${P.xm} ${g('p')}) (i32.shl ${g('b')} ${i32(4)})))
    (local.set $nbRow (i32.shr_u (i32.load offset=${P.K} ${g('p')}) ${i32(5)}))
    (local.set $M4 (select (i32.and (i32.load offset=${P.M} ${g('p')}) ${i32(-4)}) ${i32(0)} (i32.load offset=${P.tiled} ${g('p')})))
    (local.set $xt (i32.load offset=${P.xt} ${g('p')})) (local.set $xt16 (i32.load offset=${P.xt16} ${g('p')}))
    (block $done (loop $blocks
      (br_if $done (i32.ge_u ${g('b')} ${g('end')}))
      ${loads}
      (local.set $m (f32x4.max (f32x4.max (f32x4.max ${abs(0)} ${abs(1)}) (f32x4.max ${abs(2)} ${abs(3)}))
                               (f32x4.max (f32x4.max ${abs(4)} ${abs(5)}) (f32x4.max ${abs(6)} ${abs(7)}))))
      (local.set $am (f32.max (f32.max (f32x4.extract_lane 0 ${g('m')}) (f32x4.extract_lane 1 ${g('m')}))
                              (f32.max (f32x4.extract_lane 2 ${g('m')}) (f32x4.extract_lane 3 ${g('m')}))))
      (local.set $dd (f32.div ${g('am')} (f32.const 127)))
      (local.set $ids (f32x4.splat (select (f32.div (f32.const 127) ${g('am')}) (f32.const 0) (f32.gt ${g('am')} (f32.const 0)))))
      ${stores}
      (local.set $sum (i32x4.extadd_pairwise_i16x8_s (i16x8.add (i16x8.add ${g('q0')} ${g('q1')}) (i16x8.add ${g('q2')} ${g('q3')}))))
      (local.set $v0 (i8x16.narrow_i16x8_s ${g('q0')} ${g('q1')}))
      (local.set $v1 (i8x16.narrow_i16x8_s ${g('q2')} ${g('q3')}))
      (v128.store ${g('q8')} ${g('v0')})
      (v128.store offset=16 ${g('q8')} ${g('v1')})
      (v128.store ${g('xp')} (i16x8.shl (i16x8.extadd_pairwise_i8x16_s ${g('v0')}) ${i32(5)}))
      (v128.store offset=16 ${g('xp')} (i16x8.shl (i16x8.extadd_pairwise_i8x16_s ${g('v1')}) ${i32(5)}))
      (v128.store ${g('xm')} (i16x8.shl (i16x8.add (i16x8.extadd_pairwise_i8x16_s ${g('v0')}) (i16x8.extadd_pairwise_i8x16_s ${g('v1')})) ${i32(3)}))
      (f32.store ${g('d')} ${g('dd')})
      (local.set $sq (i32.add (i32.add (i32x4.extract_lane 0 ${g('sum')}) (i32x4.extract_lane 1 ${g('sum')}))
                              (i32.add (i32x4.extract_lane 2 ${g('sum')}) (i32x4.extract_lane 3 ${g('sum')}))))
      (f32.store ${g('s')} (f32.mul ${g('dd')} (f32.convert_i32_s ${g('sq')})))
      ${tileStores()}
      (local.set $x (i32.add ${g('x')} ${i32(128)}))
      (local.set $q (i32.add ${g('q')} ${i32(64)}))
      (local.set $q8 (i32.add ${g('q8')} ${i32(32)}))
      (local.set $xp (i32.add ${g('xp')} ${i32(32)}))
      (local.set $xm (i32.add ${g('xm')} ${i32(16)}))
      (local.set $d (i32.add ${g('d')} ${i32(4)}))
      (local.set $s (i32.add ${g('s')} ${i32(4)}))
      (local.set $b (i32.add ${g('b')} ${i32(1)}))
      (br $blocks))))`;
}

/**
 * Code that leaves unit `j` of the block at $wp in $w0..$w3 (i16x8, values 0..31 of the unit in
 * order) and its f32 scale in $ws (and q4_k's min scale in $wm).
 */
function decodeUnit(type, j, rdot) {
  const L = [];
  if (rdot && type === 'q4_0') {
    // nibbles as they are (0..15, the 7-bit operand of the relaxed dot); the −8 comes off the sums (off8)
    L.push(set('ws', f16(g('wp'))));
    L.push(set('t', `(v128.load offset=2 ${g('wp')})`), set('w0', `(v128.and ${g('t')} ${b16(15)})`), set('w1', `(v128.and (i16x8.shr_u ${g('t')} ${i32(4)}) ${b16(15)})`));
    return L.map((x) => '        ' + x).join('\n');
  }
  const ext = (dst0, dst1, v, sign) => `${set(dst0, `(i16x8.extend_low_i8x16_${sign} ${v})`)} ${set(dst1, `(i16x8.extend_high_i8x16_${sign} ${v})`)}`;
  if (type === 'q4_1' || type === 'q5_0' || type === 'q5_1') {
    // lo: elements 0..15 (low nibbles), hi: 16..31 (high nibbles), with the fifth bits for q5_*
    const q5 = type !== 'q4_1';
    const qs = { q4_1: 4, q5_0: 6, q5_1: 8 }[type];
    L.push(set('ws', f16(g('wp'))));
    if (type === 'q5_0') L.push(set('wm', `(f32.mul ${g('ws')} (f32.const 16))`));
    else L.push(set('wm', `(f32.neg ${f16(add(g('wp'), i32(2)))})`));
    const qh = add(g('wp'), i32(type === 'q5_0' ? 2 : 4));
    L.push(set('t', `(v128.load offset=${qs} ${g('wp')})`));
    L.push(set('t2', q5 ? `(v128.or (v128.and ${g('t')} ${b16(15)}) ${q5High(qh, 0)})` : `(v128.and ${g('t')} ${b16(15)})`));
    L.push(set('t3', q5 ? `(v128.or (v128.and (i16x8.shr_u ${g('t')} ${i32(4)}) ${b16(15)}) ${q5High(qh, 1)})` : `(v128.and (i16x8.shr_u ${g('t')} ${i32(4)}) ${b16(15)})`));
    if (rdot) {
      L.push(set('w0', g('t2')), set('w1', g('t3')));
    } else if (type === 'q5_0') {
      // signed values q − 16; the min term is not used on this path
      L.push(set('wm', '(f32.const 0)'));
      L.push(ext('w0', 'w1', `(i8x16.sub ${g('t2')} ${b16(16)})`, 's'), ext('w2', 'w3', `(i8x16.sub ${g('t3')} ${b16(16)})`, 's'));
    } else {
      L.push(ext('w0', 'w1', g('t2'), 'u'), ext('w2', 'w3', g('t3'), 'u'));
    }
    return L.map((x) => '        ' + x).join('\n');
  }
  if (FORMAT[type].lut) {
    const F = FORMAT[type];
    const { levels, mul } = LUTS[F.lut];
    const inv = `(f32.const ${1 / mul})`;
    // scale of the unit (row-scaled formats apply theirs after the row)
    if (type === 'fp4') L.push(set('ws', `(f32.mul ${f16(g('wp'))} ${inv})`));
    else if (type === 'nf4') L.push(set('ws', `(f32.mul (f32.load ${g('wp')}) ${inv})`));
    else if (F.dq) L.push(set('ws', `(f32.mul (f32.add ${g('qlo')} (f32.mul ${g('qst')} (f32.convert_i32_u (i32.load8_u ${g('wp')})))) ${inv})`));
    else L.push(set('ws', '(f32.const 1)'));
    const at = (type === 'fp4' ? 2 : type === 'nf4' ? 4 : F.dq ? 1 : 0) + 16 * j;
    L.push(set('t', `(v128.load offset=${at} ${g('wp')})`));
    const nib = [`(v128.and ${g('t')} ${b16(15)})`, `(v128.and (i16x8.shr_u ${g('t')} ${i32(4)}) ${b16(15)})`];
    if (levels.every((v) => v >= -128 && v <= 127)) {
      for (const h of [0, 1]) L.push(set('t2', `(i8x16.swizzle ${bytes16(levels)} ${nib[h]})`), ext(`w${2 * h}`, `w${2 * h + 1}`, g('t2'), 's'));
    } else {
      // i16 levels: low and high bytes looked up apart, then interleaved into 16-bit lanes
      const lo = bytes16(levels.map((v) => v & 0xff));
      const hi = bytes16(levels.map((v) => (v >> 8) & 0xff));
      const zip = (k) => Array.from({ length: 8 }, (_, i) => `${8 * k + i} ${16 + 8 * k + i}`).join(' ');
      for (const h of [0, 1]) {
        L.push(set('t2', `(i8x16.swizzle ${lo} ${nib[h]})`), set('t3', `(i8x16.swizzle ${hi} ${nib[h]})`));
        L.push(set(`w${2 * h}`, `(i8x16.shuffle ${zip(0)} ${g('t2')} ${g('t3')})`), set(`w${2 * h + 1}`, `(i8x16.shuffle ${zip(1)} ${g('t2')} ${g('t3')})`));
      }
    }
    return L.map((x) => '        ' + x).join('\n');
  }
  if (type === 'iq4_nl') {
    L.push(set('ws', f16(g('wp'))));
    L.push(set('t', `(v128.load offset=2 ${g('wp')})`));
    L.push(set('t2', `(i8x16.swizzle ${bytes16(IQ4_NL)} (v128.and ${g('t')} ${b16(15)}))`), ext('w0', 'w1', g('t2'), 's'));
    L.push(set('t2', `(i8x16.swizzle ${bytes16(IQ4_NL)} (v128.and (i16x8.shr_u ${g('t')} ${i32(4)}) ${b16(15)}))`), ext('w2', 'w3', g('t2'), 's'));
    return L.map((x) => '        ' + x).join('\n');
  }
  const i4 = type.match(INT4);
  if (i4) {
    // value d·(q − 8) (symmetric) or d·q + m (asymmetric: m enters through the min term as −m)
    const asym = i4[1] === 'a';
    const off = (asym ? 4 : 2) + 16 * j;
    L.push(set('ws', f16(g('wp'))));
    if (asym) L.push(set('wm', `(f32.neg ${f16(`(i32.add ${g('wp')} ${i32(2)})`)})`));
    L.push(set('t', `(v128.load offset=${off} ${g('wp')})`));
    if (rdot) {
      L.push(set('w0', `(v128.and ${g('t')} ${b16(15)})`), set('w1', `(v128.and (i16x8.shr_u ${g('t')} ${i32(4)}) ${b16(15)})`));
    } else if (asym) {
      L.push(set('t2', `(v128.and ${g('t')} ${b16(15)})`), ext('w0', 'w1', g('t2'), 'u'));
      L.push(set('t2', `(v128.and (i16x8.shr_u ${g('t')} ${i32(4)}) ${b16(15)})`), ext('w2', 'w3', g('t2'), 'u'));
    } else {
      L.push(set('t2', `(i8x16.sub (v128.and ${g('t')} ${b16(15)}) ${b16(8)})`), ext('w0', 'w1', g('t2'), 's'));
      L.push(set('t2', `(i8x16.sub (v128.and (i16x8.shr_u ${g('t')} ${i32(4)}) ${b16(15)}) ${b16(8)})`), ext('w2', 'w3', g('t2'), 's'));
    }
    return L.map((x) => '        ' + x).join('\n');
  }
  if (type === 'int8') {
    // the row's f32 scale is applied once after the row (rowTail): units carry scale 1
    L.push(set('ws', '(f32.const 1)'));
    L.push(set('t', `(v128.load ${g('wp')})`), ext('w0', 'w1', g('t'), 's'));
    L.push(set('t', `(v128.load offset=16 ${g('wp')})`), ext('w2', 'w3', g('t'), 's'));
  } else if (type === 'q8_0') {
    L.push(set('ws', f16(g('wp'))));
    L.push(set('t', `(v128.load offset=2 ${g('wp')})`), ext('w0', 'w1', g('t'), 's'));
    L.push(set('t', `(v128.load offset=18 ${g('wp')})`), ext('w2', 'w3', g('t'), 's'));
  } else if (type === 'q4_0') {
    L.push(set('ws', f16(g('wp'))));
    L.push(set('t', `(v128.load offset=2 ${g('wp')})`));
    L.push(set('t2', `(i8x16.sub (v128.and ${g('t')} ${b16(15)}) ${b16(8)})`), ext('w0', 'w1', g('t2'), 's'));
    L.push(set('t2', `(i8x16.sub (v128.and (i16x8.shr_u ${g('t')} ${i32(4)}) ${b16(15)}) ${b16(8)})`), ext('w2', 'w3', g('t2'), 's'));
  } else if (type === 'q4_k' || type === 'q5_k') {
    // 6-bit scale and min of sub-block j (ggml's get_scale_min_k4)
    const s = (i) => `(i32.load8_u offset=${4 + i} ${g('wp')})`;
    const sc = j < 4 ? `(i32.and ${s(j)} ${i32(63)})` : `(i32.or (i32.and ${s(j + 4)} ${i32(15)}) (i32.shl (i32.shr_u ${s(j - 4)} ${i32(6)}) ${i32(4)}))`;
    const mn = j < 4 ? `(i32.and ${s(j + 4)} ${i32(63)})` : `(i32.or (i32.shr_u ${s(j + 4)} ${i32(4)}) (i32.shl (i32.shr_u ${s(j)} ${i32(6)}) ${i32(4)}))`;
    // (the scales of all 8 units are unpacked once per block by kScales; sc and mn here are ggml's
    // get_scale_min_k4 per unit, kept as the specification of that unpacking)
    void sc, void mn;
    const p = j >> 1;
    const qs = type === 'q5_k' ? 48 : 16;
    const nib = (v) => (j & 1 ? `(v128.and (i16x8.shr_u ${v} ${i32(4)}) ${b16(15)})` : `(v128.and ${v} ${b16(15)})`);
    // q5_k: bit j of each of the 32 qh bytes, moved to bit 4
    const high = (k) => (j <= 4 ? `(v128.and (i16x8.shl (v128.load offset=${16 + 16 * k} ${g('wp')}) ${i32(4 - j)}) ${b16(16)})`
      : `(v128.and (i16x8.shr_u (v128.load offset=${16 + 16 * k} ${g('wp')}) ${i32(j - 4)}) ${b16(16)})`);
    const val = (k) => (type === 'q5_k' ? `(v128.or ${nib(`(v128.load offset=${qs + 32 * p + 16 * k} ${g('wp')})`)} ${high(k)})` : nib(`(v128.load offset=${qs + 32 * p + 16 * k} ${g('wp')})`));
    if (rdot) {
      L.push(set('w0', val(0)), set('w1', val(1)));
    } else {
      L.push(set('t', val(0)), ext('w0', 'w1', g('t'), 'u'));
      L.push(set('t', val(1)), ext('w2', 'w3', g('t'), 'u'));
    }
  } else if (type === 'q6_k') {
    const h = j >> 2;
    const t = j & 3;
    const qlBase = 64 * h + (t & 1 ? 32 : 0);
    const qhBase = 128 + 32 * h;
    const nib = (v) => (t < 2 ? `(v128.and ${v} ${b16(15)})` : `(v128.and (i16x8.shr_u ${v} ${i32(4)}) ${b16(15)})`);
    // bits 2t, 2t + 1 of each qh byte moved to bits 4, 5 by one 16-bit shift (bits that cross
    // into the neighbouring byte land outside 0x30 and are masked off)
    const sh = 4 - 2 * t;
    const hi = (v) => `(v128.and ${sh > 0 ? `(i16x8.shl ${v} ${i32(sh)})` : sh < 0 ? `(i16x8.shr_u ${v} ${i32(-sh)})` : v} ${b16(0x30)})`;
    const val = (k) => `(i8x16.sub (v128.or ${nib(`(v128.load offset=${qlBase + 16 * k} ${g('wp')})`)} ${hi(`(v128.load offset=${qhBase + 16 * k} ${g('wp')})`)}) ${b16(32)})`;
    const scale = (k) => `(i16x8.splat (i32.load8_s offset=${192 + 8 * h + 2 * t + k} ${g('wp')}))`;
    L.push(set('ws', g('dd')));
    if (rdot) {
      // the 6-bit values as stored (0..63, the relaxed dot's 7-bit operand) and the two 16-value
      // scales as i16 splats; the −32 is taken off the pair sums with x's precomputed 32·(x₀ + x₁)
      const raw = (k) => `(v128.or ${nib(`(v128.load offset=${qlBase + 16 * k} ${g('wp')})`)} ${hi(`(v128.load offset=${qhBase + 16 * k} ${g('wp')})`)})`;
      L.push(set('w0', raw(0)), set('w1', raw(1)), set('w2', scale(0)), set('w3', scale(1)));
      return L.map((x) => '        ' + x).join('\n');
    }
    for (const k of [0, 1]) {
      L.push(set('t', val(k)), set('t2', scale(k)));
      L.push(set(`w${2 * k}`, `(i16x8.mul (i16x8.extend_low_i8x16_s ${g('t')}) ${g('t2')})`));
      L.push(set(`w${2 * k + 1}`, `(i16x8.mul (i16x8.extend_high_i8x16_s ${g('t')}) ${g('t2')})`));
    }
  }
  return L.map((x) => '        ' + x).join('\n');
}

/**
 * The i32x4 partial sums of one unit on the relaxed i8 dot: `x8(k)` and `xp(k)` the 16-value
 * halves of the activation's i8 copy and its 32·(pair sums), `w` the unit's locals' prefix.
 * Q6_K: (pairs of x·q) − 32·(x₀ + x₁) = pairs of x·(q − 32), times each half's scale (w2, w3).
 */
function rdotSum(type, x8, xp, w, xm) {
  const rd = (k) => `(i16x8.relaxed_dot_i8x16_i7x16_s ${x8(k)} ${g(`${w}${k}`)})`;
  if (type === 'q6_k') {
    const half = (k) => `(i32x4.dot_i16x8_s (i16x8.sub ${rd(k)} ${xp(k)}) ${g(`${w}${k + 2}`)})`;
    return `(i32x4.add ${half(0)} ${half(1)})`;
  }
  // the two halves' pair sums added in i16 first (values ≤ 31: 4·31·127 < 32768), one widening
  const sum = `(i16x8.add ${rd(0)} ${rd(1)})`;
  return `(i32x4.extadd_pairwise_i16x8_s ${xm ? `(i16x8.sub ${sum} ${xm})` : sum})`;
}

/** The dot products of the unpacked unit j with `mt` activation rows, accumulated. */
function unitDots(type, j, mt, madd, rdot) {
  const L = [];
  for (let r = 0; r < mt; r++) {
    if (rdot) {
      // i8 activations · 7-bit nibbles, 16 products per instruction (pmaddubsw + pmaddwd on x64)
      const half = `(i32.shr_u ${g('xo')} ${i32(1)})`;
      const x8 = (k) => `(v128.load offset=${32 * j + 16 * k} ${add(g(`xb${r}`), half)})`;
      const xp = (k) => `(v128.load offset=${32 * j + 16 * k} ${add(g(`xpb${r}`), half)})`;
      // (pairs of u7·i8 products stay within i16: 2·127·128 < 32768). Not the fused
      // i32x4.relaxed_dot_i8x16_i7x16_add_s: V8 11.3 (Node 20) returns twice the dot and drops the addend.
      const xm = off8(type, rdot) ? `(v128.load offset=${16 * j} ${add(g(`xmb${r}`), `(i32.shr_u ${g('xo')} ${i32(2)})`)})` : null;
      L.push(set('isum', rdotSum(type, x8, xp, 'w', xm)));
    } else {
      const xa = add(g(`xr${r}`), g('xo'));
      const dot = (k) => `(i32x4.dot_i16x8_s ${g(`w${k}`)} (v128.load offset=${64 * j + 16 * k} ${xa}))`;
      L.push(set('isum', `(i32x4.add (i32x4.add ${dot(0)} ${dot(1)}) (i32x4.add ${dot(2)} ${dot(3)}))`));
    }
    const dx = `(f32.load offset=${4 * j} ${add(g(`dr${r}`), g('do'))})`;
    const scale = KMIN.has(type) ? bcast(g(`sv${r}_${j >> 2}`), j & 3) : `(f32x4.splat (f32.mul ${g('ws')} ${dx}))`;
    L.push(set(`acc${r}`, madd(`(f32x4.convert_i32x4_s ${g('isum')})`, scale, g(`acc${r}`))));
    if (hasMin(type, rdot) && !KMIN.has(type)) L.push(set(`mn${r}`, `(f32.add ${g(`mn${r}`)} (f32.mul ${g('wm')} (f32.load offset=${4 * j} ${add(g(`sr${r}`), g('do'))})))`));
  }
  return L.map((x) => '        ' + x).join('\n');
}

/** One weight row against `mt` activation rows: y[r] = Σ over the row's blocks. */
function rowKernel(type, mt, madd, relaxed) {
  const F = FORMAT[type];
  const rdot = relaxed && RDOT.has(type);
  const rows = [...Array(mt).keys()];
  const locals = [
    ...rows.flatMap((r) => [`(local $xb${r} i32)`, `(local $xpb${r} i32)`, `(local $xmb${r} i32)`, `(local $xr${r} i32)`, `(local $dr${r} i32)`, `(local $sr${r} i32)`, `(local $acc${r} v128)`, `(local $mn${r} f32)`, `(local $sv${r}_0 v128)`, `(local $sv${r}_1 v128)`, `(local $mv${r} v128)`]),
    '(local $kv v128) (local $ks0 v128) (local $ks1 v128) (local $km0 v128) (local $km1 v128) (local $qlo f32) (local $qst f32)',
    '(local $w0 v128) (local $w1 v128) (local $w2 v128) (local $w3 v128) (local $t v128) (local $t2 v128) (local $t3 v128) (local $isum v128)',
    '(local $ws f32) (local $wm f32) (local $dd f32) (local $dmin f32) (local $rs f32) (local $xo i32) (local $do i32) (local $i i32)',
  ];
  const init = rows.map((r) => `${set(`xb${r}`, add(g('x8'), mul(`(i32.shr_u ${g('xrs')} ${i32(1)})`, i32(r))))} ${set(`xpb${r}`, add(g('xp'), mul(`(i32.shr_u ${g('xrs')} ${i32(1)})`, i32(r))))} ${set(`xmb${r}`, add(g('xm'), mul(`(i32.shr_u ${g('xrs')} ${i32(2)})`, i32(r))))} ${set(`xr${r}`, add(g('x'), mul(g('xrs'), i32(r))))} ${set(`dr${r}`, add(g('d'), mul(g('drs'), i32(r))))} ${set(`sr${r}`, add(g('s'), mul(g('drs'), i32(r))))}`);
  const perBlock = [];
  if (KMIN.has(type)) {
    perBlock.push(`        ${set('dd', f16(g('wp')))} ${set('dmin', f16(`(i32.add ${g('wp')} ${i32(2)})`))}`, kScales());
    // per activation row: d·sc times x's 8 unit scales; dmin·m against x's 8 unit sums
    for (const r of rows) {
      const xd = (o) => `(v128.load offset=${o} ${add(g(`dr${r}`), g('do'))})`;
      const xs = (o) => `(v128.load offset=${o} ${add(g(`sr${r}`), g('do'))})`;
      perBlock.push(`        ${set(`sv${r}_0`, `(f32x4.mul ${g('ks0')} ${xd(0)})`)} ${set(`sv${r}_1`, `(f32x4.mul ${g('ks1')} ${xd(16)})`)}`);
      perBlock.push(`        ${set(`mv${r}`, madd(g('km0'), xs(0), madd(g('km1'), xs(16), g(`mv${r}`))))}`);
    }
  }
  if (type === 'q6_k') perBlock.push(`        ${set('dd', f16(`(i32.add ${g('wp')} ${i32(208)})`))}`);
  for (let j = 0; j < F.units; j++) perBlock.push(decodeUnit(type, j, rdot), unitDots(type, j, mt, madd, rdot));
  // rowTail: $wp ends on the row's f32 scale
  const tailMul = F.lut ? 1 / LUTS[F.lut].mul : 1;
  const rowScale = tailMul === 1 ? `(f32.load ${g('wp')})` : `(f32.mul (f32.load ${g('wp')}) (f32.const ${tailMul}))`;
  const scaled = (v) => (F.rowTail ? `(f32.mul ${v} ${rowScale})` : v);
  // nf4_dq: the row's scale low end and step, after its blocks
  const dqInit = F.dq ? `${set('qlo', `(f32.load (i32.add ${g('wp')} ${mul(g('nb'), i32(F.bytes))}))`)} ${set('qst', `(f32.load offset=4 (i32.add ${g('wp')} ${mul(g('nb'), i32(F.bytes))}))`)}` : '';
  const mins = (r) => (KMIN.has(type) ? hsum(g(`mv${r}`)) : g(`mn${r}`));
  const stores = rows.map((r) => `    (f32.store ${add(g('y'), mul(g('ldy'), i32(r)))} ${scaled(`(f32.sub ${hsum(g(`acc${r}`))} ${mins(r)})`)})`);
  return `
  (func $qm_${type}_r${mt} (param $wp i32) (param $nb i32) (param $x i32) (param $xrs i32) (param $d i32) (param $drs i32) (param $s i32) (param $tab i32) (param $y i32) (param $ldy i32) (param $x8 i32) (param $xp i32) (param $xm i32)
    ${locals.join(' ')}
    ${init.join('\n    ')}
    ${dqInit}
    (block $done (loop $blocks
      (br_if $done (i32.ge_u ${g('i')} ${g('nb')}))
${perBlock.join('\n')}
      ${set('wp', add(g('wp'), i32(F.bytes)))} ${set('xo', add(g('xo'), i32(64 * F.units)))} ${set('do', add(g('do'), i32(4 * F.units)))}
      ${set('i', add(g('i'), i32(1)))}
      (br $blocks)))
${stores.join('\n')})`;
}

/** Blocks per iteration of the two-row decode loop for one-unit formats (Q4_0 ...): 2 cut V8's x64 code per weight by a quarter; 4 spills. */
const PAIR_UNROLL = 2;
/**
 * Decode (fewer than MT activation rows): two weight rows against one activation row, so that the
 * activation's loads and scale are shared and the two rows' chains run side by side.
 */
function pairKernel(type, madd, relaxed) {
  const F = FORMAT[type];
  const rdot = relaxed && RDOT.has(type);
  const kmin = KMIN.has(type);
  const mins = hasMin(type, rdot) && !kmin;
  // the second row's decode: the first row's code on $wq into its own locals
  const second = (code) => code.replace(/\$w([0-3])\b/g, '$v$1').replace(/\$wp\b/g, '$wq').replace(/\$ws\b/g, '$vs')
    .replace(/\$wm\b/g, '$vm').replace(/\$dmin\b/g, '$emin').replace(/\$dd\b/g, '$ed')
    .replace(/\$ks([01])\b/g, '$ls$1').replace(/\$km([01])\b/g, '$lm$1').replace(/\$kv\b/g, '$lv');
  const perBlock = [];
  if (KMIN.has(type)) {
    perBlock.push(`        ${set('dd', f16(g('wp')))} ${set('dmin', f16(`(i32.add ${g('wp')} ${i32(2)})`))}`);
    perBlock.push(`        ${set('ed', f16(g('wq')))} ${set('emin', f16(`(i32.add ${g('wq')} ${i32(2)})`))}`);
    perBlock.push(kScales(), second(kScales()));
    const xd = (o) => `(v128.load offset=${o} ${add(g('d'), g('do'))})`;
    const xs = (o) => `(v128.load offset=${o} ${add(g('s'), g('do'))})`;
    perBlock.push(`        ${set('xv0', xd(0))} ${set('xv1', xd(16))} ${set('xv2', xs(0))} ${set('xv3', xs(16))}`);
    for (const [R, k, m] of [['A', 'ks', 'km'], ['B', 'ls', 'lm']]) {
      perBlock.push(`        ${set(`sv${R}0`, `(f32x4.mul ${g(`${k}0`)} ${g('xv0')})`)} ${set(`sv${R}1`, `(f32x4.mul ${g(`${k}1`)} ${g('xv1')})`)}`);
      perBlock.push(`        ${set(`mv${R}`, madd(g(`${m}0`), g('xv2'), madd(g(`${m}1`), g('xv3'), g(`mv${R}`))))}`);
    }
  }
  if (type === 'q6_k') perBlock.push(`        ${set('dd', f16(`(i32.add ${g('wp')} ${i32(208)})`))} ${set('ed', f16(`(i32.add ${g('wq')} ${i32(208)})`))}`);
  for (let j = 0; j < F.units; j++) {
    const dec = decodeUnit(type, j, rdot);
    perBlock.push(dec, second(dec));
    const L = [];
    if (rdot) {
      for (const k of [0, 1]) L.push(set(`xv${k}`, `(v128.load offset=${32 * j + 16 * k} ${add(g('x8'), `(i32.shr_u ${g('xo')} ${i32(1)})`)})`));
      if (off8(type, rdot)) L.push(set('xv2', `(v128.load offset=${16 * j} ${add(g('xm'), `(i32.shr_u ${g('xo')} ${i32(2)})`)})`));
      if (type === 'q6_k') for (const k of [0, 1]) L.push(set(`xv${k + 2}`, `(v128.load offset=${32 * j + 16 * k} ${add(g('xp'), `(i32.shr_u ${g('xo')} ${i32(1)})`)})`));
    } else {
      for (const k of [0, 1, 2, 3]) L.push(set(`xv${k}`, `(v128.load offset=${64 * j + 16 * k} ${add(g('x'), g('xo'))})`));
    }
    if (!kmin) L.push(set('dx', `(f32.load offset=${4 * j} ${add(g('d'), g('do'))})`));
    if (mins) L.push(set('xs', `(f32.load offset=${4 * j} ${add(g('s'), g('do'))})`));
    for (const [w, acc, sc, mn, msc, R] of [['w', 'accA', 'ws', 'mnA', 'wm', 'A'], ['v', 'accB', 'vs', 'mnB', 'vm', 'B']]) {
      if (rdot) {
        L.push(set('isum', rdotSum(type, (k) => g(`xv${k}`), (k) => g(`xv${k + 2}`), w, off8(type, rdot) ? g('xv2') : null)));
      } else {
        const dot = (k) => `(i32x4.dot_i16x8_s ${g(`${w}${k}`)} ${g(`xv${k}`)})`;
        L.push(set('isum', `(i32x4.add (i32x4.add ${dot(0)} ${dot(1)}) (i32x4.add ${dot(2)} ${dot(3)}))`));
      }
      const scale = kmin ? bcast(g(`sv${R}${j >> 2}`), j & 3) : `(f32x4.splat (f32.mul ${g(sc)} ${g('dx')}))`;
      L.push(set(acc, madd(`(f32x4.convert_i32x4_s ${g('isum')})`, scale, g(acc))));
      if (mins) L.push(set(mn, `(f32.add ${g(mn)} (f32.mul ${g(msc)} ${g('xs')}))`));
    }
    perBlock.push(L.map((x) => '        ' + x).join('\n'));
  }
  const v = (n, t) => n.map((x) => `(local $${x} ${t})`).join(' ');
  const advance = `${set('wp', add(g('wp'), i32(F.bytes)))} ${set('wq', add(g('wq'), i32(F.bytes)))} ${set('xo', add(g('xo'), i32(64 * F.units)))} ${set('do', add(g('do'), i32(4 * F.units)))}`;
  // one-unit formats: U blocks per loop iteration (fewer loop overheads per block), the rest singly
  const U = F.units === 1 ? PAIR_UNROLL : 1;
  return `
  (func $qm_${type}_p2 (param $wp i32) (param $wq i32) (param $nb i32) (param $x i32) (param $d i32) (param $s i32) (param $tab i32) (param $y i32) (param $x8 i32) (param $xp i32) (param $xm i32)
    ${v(['w0', 'w1', 'w2', 'w3', 'v0', 'v1', 'v2', 'v3', 'xv0', 'xv1', 'xv2', 'xv3', 't', 't2', 't3', 'isum', 'accA', 'accB'], 'v128')}
    ${v(['kv', 'ks0', 'ks1', 'km0', 'km1', 'lv', 'ls0', 'ls1', 'lm0', 'lm1', 'svA0', 'svA1', 'svB0', 'svB1', 'mvA', 'mvB'], 'v128')}
    ${v(['ws', 'wm', 'vs', 'vm', 'dd', 'dmin', 'ed', 'emin', 'dx', 'xs', 'mnA', 'mnB'], 'f32')} ${v(['xo', 'do', 'i'], 'i32')}
    ${U > 1 ? `(block $done${U} (loop $blocks${U}
      (br_if $done${U} (i32.gt_u (i32.add ${g('i')} ${i32(U)}) ${g('nb')}))
${Array(U).fill(`${perBlock.join('\n')}\n      ${advance}`).join('\n')}
      ${set('i', add(g('i'), i32(U)))}
      (br $blocks${U})))` : ''}
    (block $done (loop $blocks
      (br_if $done (i32.ge_u ${g('i')} ${g('nb')}))
${perBlock.join('\n')}
      ${advance}
      ${set('i', add(g('i'), i32(1)))}
      (br $blocks)))
    (f32.store ${g('y')} (f32.sub ${hsum(g('accA'))} ${kmin ? hsum(g('mvA')) : g('mnA')}))
    (f32.store offset=4 ${g('y')} (f32.sub ${hsum(g('accB'))} ${kmin ? hsum(g('mvB')) : g('mnB')})))`;
}

/**
 * Entry: this task's rows of W, each against every activation row (MT at a time, then singly; with
 * `pair`, fewer than MT rows take two weight rows at a time; with `decode`, fewer than MT rows take
 * the format's decode kernel from qdecode.mjs).
 */
function entry(type, pair, decode) {
  const F = FORMAT[type];
  const ld = (f) => `(i32.load offset=${P[f]} ${g('p')})`;
  const call = (mt) => `(call $qm_${type}_r${mt} ${g('wp')} ${g('nb')} (i32.add ${g('xq')} (i32.mul ${g('m')} ${g('xrs')})) ${g('xrs')}
              (i32.add ${g('xd')} (i32.mul ${g('m')} ${g('drs')})) ${g('drs')} (i32.add ${g('xs')} (i32.mul ${g('m')} ${g('drs')})) ${g('tab')}
              (i32.add ${g('y')} (i32.shl (i32.add (i32.mul ${g('m')} ${g('N')}) ${g('n')}) ${i32(2)})) (i32.shl ${g('N')} ${i32(2)})
              (i32.add ${g('xq8')} (i32.mul ${g('m')} ${g('K')})) (i32.add ${g('xp')} (i32.mul ${g('m')} ${g('K')})) (i32.add ${g('xm')} (i32.mul ${g('m')} (i32.shr_u ${g('K')} ${i32(1)}))))`;
  const pairBlock = !pair ? '' : `      (if (i32.and (i32.lt_u ${g('M')} ${i32(MT)}) (i32.lt_u (i32.add ${g('n')} ${i32(1)}) ${g('end')})) (then
        ${set('m', i32(0))}
        (block $pairs_done (loop $pairs
          (br_if $pairs_done (i32.ge_u ${g('m')} ${g('M')}))
          (call $qm_${type}_p2 ${g('wp')} (i32.add ${g('wp')} ${g('rb')}) ${g('nb')} (i32.add ${g('xq')} (i32.mul ${g('m')} ${g('xrs')}))
            (i32.add ${g('xd')} (i32.mul ${g('m')} ${g('drs')})) (i32.add ${g('xs')} (i32.mul ${g('m')} ${g('drs')})) ${g('tab')}
            (i32.add ${g('y')} (i32.shl (i32.add (i32.mul ${g('m')} ${g('N')}) ${g('n')}) ${i32(2)})) (i32.add ${g('xq8')} (i32.mul ${g('m')} ${g('K')}))
            (i32.add ${g('xp')} (i32.mul ${g('m')} ${g('K')})) (i32.add ${g('xm')} (i32.mul ${g('m')} (i32.shr_u ${g('K')} ${i32(1)}))))
          ${set('m', add(g('m'), i32(1)))}
          (br $pairs)))
        ${set('n', add(g('n'), i32(2)))}
        (br $rows)))
`;
  // decode on the Q8_K activation (qm_quant_xk): two weight rows per pass, the last odd one alone
  const dcall = (R) => `(call $qm_${type}_k${R} ${g('wp')} (i32.add ${g('wp')} ${g('rb')}) ${g('nb')} (i32.add ${g('xk8')} (i32.mul ${g('m')} ${g('K')}))
              (i32.add ${g('xkd')} (i32.shl (i32.mul ${g('m')} ${g('nb')}) ${i32(2)})) (i32.add ${g('xks')} (i32.mul ${g('m')} (i32.shr_u ${g('K')} ${i32(decode.sums === 'xkg' ? 3 : 4)}))) ${g('tab')}
              (i32.add ${g('y')} (i32.shl (i32.add (i32.mul ${g('m')} ${g('N')}) ${g('n')}) ${i32(2)})))`;
  const decodeBlock = !decode ? '' : `      (if (i32.lt_u ${g('M')} ${i32(MT)}) (then
        ${set('R', `(select ${i32(2)} ${i32(1)} (i32.lt_u (i32.add ${g('n')} ${i32(1)}) ${g('end')}))`)}
        ${set('m', i32(0))}
        (block $dec_done (loop $dec
          (br_if $dec_done (i32.ge_u ${g('m')} ${g('M')}))
          (if (i32.eq ${g('R')} ${i32(2)}) (then ${dcall(2)}) (else ${dcall(1)}))
          ${set('m', add(g('m'), i32(1)))}
          (br $dec)))
        ${set('n', add(g('n'), g('R')))}
        (br $rows)))
`;
  return `
  (func $qm_${type} (param $p i32) (param $task i32) (param $nTasks i32)
    (local $M i32) (local $N i32) (local $K i32) (local $n i32) (local $end i32) (local $m i32) (local $nb i32) (local $wp i32)
    (local $xq i32) (local $xq8 i32) (local $xd i32) (local $xs i32) (local $y i32) (local $tab i32) (local $xrs i32) (local $drs i32) (local $w i32) (local $rb i32)
    (local $r0 i32) (local $r1 i32) (local $xp i32) (local $xm i32) (local $xk8 i32) (local $xkd i32) (local $xks i32) (local $R i32)
    ${set('r0', ld('rowBeg'))} ${set('r1', ld('rowEnd'))}
    ${set('M', ld('M'))} ${set('N', ld('N'))} ${set('K', ld('K'))}
    ${set('xq', ld('xq'))} ${set('xq8', ld('xq8'))} ${set('xd', ld('xd'))} ${set('xs', ld('xs'))} ${set('y', ld('y'))} ${set('tab', ld('tab'))} ${set('w', ld('w'))} ${set('rb', ld('rowBytes'))} ${set('xp', ld('xp'))} ${set('xm', ld('xm'))}
    ${set('xk8', ld('xk8'))} ${set('xkd', ld('xkd'))} ${set('xks', decode ? ld(decode.sums) : i32(0))}
    ${set('nb', `(i32.div_u ${g('K')} ${i32(F.values)})`)}
    ${set('xrs', `(i32.shl ${g('K')} ${i32(1)})`)} ${set('drs', `(i32.shl (i32.shr_u ${g('K')} ${i32(5)}) ${i32(2)})`)}
    ${set('n', add(g('r0'), `(i32.div_u (i32.mul (i32.sub ${g('r1')} ${g('r0')}) ${g('task')}) ${g('nTasks')})`))}
    ${set('end', add(g('r0'), `(i32.div_u (i32.mul (i32.sub ${g('r1')} ${g('r0')}) (i32.add ${g('task')} ${i32(1)})) ${g('nTasks')})`))}
    (block $rows_done (loop $rows
      (br_if $rows_done (i32.ge_u ${g('n')} ${g('end')}))
      ${set('wp', add(g('w'), mul(`(i32.sub ${g('n')} ${g('r0')})`, g('rb'))))}
${pairBlock}${decodeBlock}      ${set('m', i32(0))}
      (block $tiles_done (loop $tiles
        (br_if $tiles_done (i32.gt_u (i32.add ${g('m')} ${i32(MT)}) ${g('M')}))
        ${call(MT)}
        ${set('m', add(g('m'), i32(MT)))}
        (br $tiles)))
      (block $single_done (loop $single
        (br_if $single_done (i32.ge_u ${g('m')} ${g('M')}))
        ${call(1)}
        ${set('m', add(g('m'), i32(1)))}
        (br $single)))
      ${set('n', add(g('n'), i32(1)))}
      (br $rows))))`;
}

/**
 * FP8 rows (E4M3, E5M2) against the f32 activation as it is: each code's sign and exponent/mantissa
 * bits are placed in an f32's (sign at bit 31, the rest below the f32 exponent's top) and the
 * result scaled by 2^(127 − bias), which also turns the format's subnormals into the right values;
 * the row's f32 scale multiplies the sum. No FP8 code that is Inf or NaN occurs in actlab's files
 * (the encoder clips to the largest finite value); such a code would read as a large finite value.
 */
function fp8Kernel(type, madd) {
  const { mant, bias } = FORMAT[type].fp8;
  const ld = (f) => `(i32.load offset=${P[f]} ${g('p')})`;
  const c32 = (v) => `(f32x4.mul (v128.or (i32x4.shl (v128.and ${v} (i32x4.splat ${i32(0x80)})) ${i32(24)})
            (i32x4.shl (v128.and ${v} (i32x4.splat ${i32(0x7f)})) ${i32(23 - mant)})) (f32x4.splat (f32.const 0x1p${127 - bias})))`;
  const quarter = (q) => `(i32x4.extend_${q & 1 ? 'high' : 'low'}_i16x8_u (i16x8.extend_${q & 2 ? 'high' : 'low'}_i8x16_u ${g('t')}))`;
  const dots = [0, 1, 2, 3].map((q) => set(`acc${q & 1}`, madd(c32(quarter(q)), `(v128.load offset=${16 * q} (i32.add ${g('xa')} (i32.shl ${g('i')} ${i32(2)})))`, g(`acc${q & 1}`)))).join('\n          ');
  return `
  (func $qm_${type} (param $p i32) (param $task i32) (param $nTasks i32)
    (local $M i32) (local $N i32) (local $K i32) (local $n i32) (local $end i32) (local $m i32) (local $wp i32) (local $x i32) (local $xa i32)
    (local $y i32) (local $w i32) (local $rb i32) (local $r0 i32) (local $r1 i32) (local $i i32) (local $acc0 v128) (local $acc1 v128) (local $t v128)
    ${set('r0', ld('rowBeg'))} ${set('r1', ld('rowEnd'))} ${set('M', ld('M'))} ${set('N', ld('N'))} ${set('K', ld('K'))}
    ${set('x', ld('x'))} ${set('y', ld('y'))} ${set('w', ld('w'))} ${set('rb', ld('rowBytes'))}
    ${set('n', add(g('r0'), `(i32.div_u (i32.mul (i32.sub ${g('r1')} ${g('r0')}) ${g('task')}) ${g('nTasks')})`))}
    ${set('end', add(g('r0'), `(i32.div_u (i32.mul (i32.sub ${g('r1')} ${g('r0')}) (i32.add ${g('task')} ${i32(1)})) ${g('nTasks')})`))}
    (block $rows_done (loop $rows
      (br_if $rows_done (i32.ge_u ${g('n')} ${g('end')}))
      ${set('wp', add(g('w'), mul(`(i32.sub ${g('n')} ${g('r0')})`, g('rb'))))}
      ${set('m', i32(0))}
      (block $ms_done (loop $ms
        (br_if $ms_done (i32.ge_u ${g('m')} ${g('M')}))
        ${set('xa', add(g('x'), `(i32.shl ${mul(g('m'), g('K'))} ${i32(2)})`))}
        ${set('acc0', `(v128.const i32x4 0 0 0 0)`)} ${set('acc1', `(v128.const i32x4 0 0 0 0)`)} ${set('i', i32(0))}
        (block $k_done (loop $k
          (br_if $k_done (i32.ge_u ${g('i')} ${g('K')}))
          ${set('t', `(v128.load ${add(g('wp'), g('i'))})`)}
          ${dots}
          ${set('i', add(g('i'), i32(16)))}
          (br $k)))
        (f32.store (i32.add ${g('y')} (i32.shl (i32.add ${mul(g('m'), g('N'))} ${g('n')}) ${i32(2)}))
          (f32.mul ${hsum(`(f32x4.add ${g('acc0')} ${g('acc1')})`)} (f32.load ${add(g('wp'), g('K'))})))
        ${set('m', add(g('m'), i32(1)))}
        (br $ms)))
      ${set('n', add(g('n'), i32(1)))}
      (br $rows))))`;
}

/** @param {{relaxed: boolean}} variant */
export function generate({ relaxed }) {
  const madd = (a, b, c) => (relaxed ? `(f32x4.relaxed_madd ${a} ${b} ${c})` : `(f32x4.add (f32x4.mul ${a} ${b}) ${c})`);
  const out = ['(module', '  (import "env" "memory" (memory 1 65536 shared))', quantX(), quantXK(P)];
  for (const t of TYPES) {
    if (FORMAT[t].fp8) { out.push(fp8Kernel(t, madd)); continue; }
    // the two-row decode kernel pays off where the unpacked unit is small (the i8 relaxed dot on
    // nibbles); with 16-bit operands its two rows' vectors no longer fit the registers
    const decode = DECODE[t];
    const pair = relaxed && RDOT.has(t) && !decode;
    out.push(rowKernel(t, MT, madd, relaxed), rowKernel(t, 1, madd, relaxed));
    if (pair) out.push(pairKernel(t, madd, relaxed));
    if (decode) out.push(decode.fn(madd, 1, relaxed), decode.fn(madd, 2, relaxed));
    out.push(entry(t, pair, decode));
    if (KTILE_TYPES.includes(t)) out.push(ktileEntry(t, P, DECODE[t].sums, madd, relaxed));
    else if (TILE_TYPES.includes(t)) out.push(tileEntry(t, P, FORMAT[t].values, relaxed, madd));
  }
  for (const e of exportNames) out.push(`  (export "${e}" (func $${e}))`);
  out.push(')');
  return out.join('\n');
}
