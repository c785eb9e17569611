// Generator of the copy/cast kernel module. Exports run over the row table of
// src/backends/wasm/ops/rows.ts (entries [len, dst row addr, src row addr], byte strides sy, sx):
//   cp_copy32 / cp_copy16 / cp_copy8   same-size copy (memory.copy when both rows are contiguous)
//   cp_f32_f16, cp_f16_f32, cp_f32_bf16, cp_bf16_f32, cp_f32_i32, cp_i32_f32   conversions
// and the GGML block dequantizers (contiguous raw bytes in, contiguous f32 out, blocks split over tasks):
//   cp_dequant_q8_0 / cp_dequant_q4_0(src, dst, nBlocks)
// Conversions match src/tensor/dtype.ts bit for bit: f32 -> f16/bf16 round to nearest even with
// overflow to Inf and quiet NaNs that keep the top payload bits; f32 -> i32 truncates and saturates
// (NaN -> 0). Contiguous rows convert four lanes at a time, other strides one element at a time.
// Not for: packed 4-bit types, i8/u8 conversions (reference kernels).
import { f4, i4 } from './simd-math.mjs';

export const name = 'copy';
const CASTS = {
  f32_f16: { src: 4, dst: 2 }, f16_f32: { src: 2, dst: 4 }, f32_bf16: { src: 4, dst: 2 },
  bf16_f32: { src: 2, dst: 4 }, f32_i32: { src: 4, dst: 4 }, i32_f32: { src: 4, dst: 4 },
};
export const exportNames = ['cp_copy32', 'cp_copy16', 'cp_copy8', ...Object.keys(CASTS).map((k) => `cp_${k}`), 'cp_dequant_q8_0', 'cp_dequant_q4_0'];

const v = '(local.get $v)';
const a = '(local.get $a)';
const sel = (yes, no, mask) => `(v128.bitselect ${yes} ${no} ${mask})`;
/** Conversion of four lanes in $v (source bits zero-extended to i32) to destination bits. */
const CONVERT = {
  f32_f16: `
    (local.set $s (v128.and ${v} ${i4(-0x80000000)}))
    (local.set $a (v128.xor ${v} (local.get $s)))
    (local.set $r ${sel(
      `(i32x4.sub (f32x4.add ${a} ${f4(0.5)}) ${i4(0x3f000000)})`,
      `(i32x4.shr_u (i32x4.add (i32x4.add ${a} ${i4(-0x38000000 + 0xfff)}) (v128.and (i32x4.shr_u ${a} (i32.const 13)) ${i4(1)})) (i32.const 13))`,
      `(i32x4.lt_s ${a} ${i4(113 << 23)})`)})
    (local.set $r ${sel(i4(0x7c00), '(local.get $r)', `(i32x4.ge_s ${a} ${i4(143 << 23)})`)})
    (local.set $r ${sel(`(v128.or ${i4(0x7e00)} (i32x4.shr_u (v128.and ${a} ${i4(0x7fffff)}) (i32.const 13)))`, '(local.get $r)', `(i32x4.gt_s ${a} ${i4(0x7f800000)})`)})
    (v128.or (local.get $r) (i32x4.shr_u (local.get $s) (i32.const 16)))`,
  f16_f32: `
    (local.set $a (i32x4.shl (v128.and ${v} ${i4(0x7fff)}) (i32.const 13)))
    (local.set $s (v128.and ${a} ${i4(0x0f800000)}))
    (local.set $r (i32x4.add ${a} ${i4(0x38000000)}))
    (local.set $r ${sel(`(i32x4.add (local.get $r) ${i4(0x38000000)})`, '(local.get $r)', `(i32x4.eq (local.get $s) ${i4(0x0f800000)})`)})
    (local.set $r ${sel(`(f32x4.sub (i32x4.add (local.get $r) ${i4(1 << 23)}) ${i4(113 << 23)})`, '(local.get $r)', `(i32x4.eq (local.get $s) ${i4(0)})`)})
    (v128.or (local.get $r) (i32x4.shl (v128.and ${v} ${i4(0x8000)}) (i32.const 16)))`,
  f32_bf16: sel(
    `(v128.and (v128.or (i32x4.shr_u ${v} (i32.const 16)) ${i4(0x40)}) ${i4(0xffff)})`,
    `(i32x4.shr_u (i32x4.add (i32x4.add ${v} ${i4(0x7fff)}) (v128.and (i32x4.shr_u ${v} (i32.const 16)) ${i4(1)})) (i32.const 16))`,
    `(i32x4.gt_s (v128.and ${v} ${i4(0x7fffffff)}) ${i4(0x7f800000)})`),
  bf16_f32: `(i32x4.shl ${v} (i32.const 16))`,
  f32_i32: `(i32x4.trunc_sat_f32x4_s ${v})`,
  i32_f32: `(f32x4.convert_i32x4_s ${v})`,
};

function rowLoop(fnName, entryBody) {
  return `
  (func $${fnName} (param $table i32) (param $nRows i32) (param $sy i32) (param $sx i32) (param $task i32) (param $nTasks i32)
    (local $row i32) (local $end i32) (local $p i32) (local $n i32) (local $i i32) (local $y i32) (local $x i32)
    (local $v v128) (local $a v128) (local $s v128) (local $r v128)
    (local.set $row (i32.div_u (i32.mul (local.get $nRows) (local.get $task)) (local.get $nTasks)))
    (local.set $end (i32.div_u (i32.mul (local.get $nRows) (i32.add (local.get $task) (i32.const 1))) (local.get $nTasks)))
    (local.set $p (i32.add (local.get $table) (i32.mul (local.get $row) (i32.const 12))))
    (block $rows_done (loop $rows
      (br_if $rows_done (i32.ge_u (local.get $row) (local.get $end)))
      (local.set $n (i32.load (local.get $p)))
      (local.set $y (i32.load offset=4 (local.get $p)))
      (local.set $x (i32.load offset=8 (local.get $p)))
      (local.set $i (i32.const 0))
${entryBody}
      (local.set $p (i32.add (local.get $p) (i32.const 12)))
      (local.set $row (i32.add (local.get $row) (i32.const 1)))
      (br $rows))))`;
}

const LOAD = { 1: 'i32.load8_u', 2: 'i32.load16_u', 4: 'i32.load' };
const STORE = { 1: 'i32.store8', 2: 'i32.store16', 4: 'i32.store' };

function plainCopy(size) {
  return rowLoop(`cp_copy${size * 8}`, `
      (if (i32.and (i32.eq (local.get $sx) (i32.const ${size})) (i32.eq (local.get $sy) (i32.const ${size}))) (then
        (memory.copy (local.get $y) (local.get $x) (i32.mul (local.get $n) (i32.const ${size}))))
      (else
        (block $sd (loop $sl
          (br_if $sd (i32.ge_u (local.get $i) (local.get $n)))
          (${STORE[size]} (local.get $y) (${LOAD[size]} (local.get $x)))
          (local.set $x (i32.add (local.get $x) (local.get $sx)))
          (local.set $y (i32.add (local.get $y) (local.get $sy)))
          (local.set $i (i32.add (local.get $i) (i32.const 1)))
          (br $sl)))))`);
}

function cast(key) {
  const { src, dst } = CASTS[key];
  const body = CONVERT[key];
  const loadVec = src === 4 ? '(v128.load (local.get $x))' : '(i32x4.extend_low_i16x8_u (v128.load64_zero (local.get $x)))';
  const storeVec = dst === 4
    ? `(v128.store (local.get $y) (local.get $v))`
    : `(v128.store64_lane 0 (local.get $y) (i16x8.narrow_i32x4_u (local.get $v) (local.get $v)))`;
  return rowLoop(`cp_${key}`, `
      (if (i32.and (i32.eq (local.get $sx) (i32.const ${src})) (i32.eq (local.get $sy) (i32.const ${dst}))) (then
        (block $vd (loop $vl
          (br_if $vd (i32.gt_u (i32.add (local.get $i) (i32.const 4)) (local.get $n)))
          (local.set $v ${loadVec})
          (local.set $v (block (result v128) ${body}))
          ${storeVec}
          (local.set $x (i32.add (local.get $x) (i32.const ${4 * src})))
          (local.set $y (i32.add (local.get $y) (i32.const ${4 * dst})))
          (local.set $i (i32.add (local.get $i) (i32.const 4)))
          (br $vl)))))
      (block $sd (loop $sl
        (br_if $sd (i32.ge_u (local.get $i) (local.get $n)))
        (local.set $v (i32x4.splat (${LOAD[src]} (local.get $x))))
        (local.set $v (block (result v128) ${body}))
        (${STORE[dst]} (local.get $y) (i32x4.extract_lane 0 (local.get $v)))
        (local.set $x (i32.add (local.get $x) (local.get $sx)))
        (local.set $y (i32.add (local.get $y) (local.get $sy)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $sl)))`);
}

// q8_0: 34-byte blocks (f16 scale, 32 x i8); q4_0: 18-byte blocks (f16 scale, 16 bytes: element j
// is the low nibble of byte j, element j + 16 the high nibble, value (nibble - 8)). value = d · q.
function dequant(type) {
  const q8 = type === 'q8_0';
  const bytes = q8 ? 34 : 18;
  const toF32 = (i16, half, off) => `(v128.store offset=${off} (local.get $y) (f32x4.mul (local.get $d) (f32x4.convert_i32x4_s (i32x4.extend_${half}_i16x8_s ${i16}))))`;
  // four stores of 4 values from 16 signed bytes in $q, at byte offset base
  const sixteen = (base) => ['low', 'high'].map((h8, a) => ['low', 'high'].map((h16, b) =>
    toF32(`(i16x8.extend_${h8}_i8x16_s (local.get $q))`, h16, base + 32 * a + 16 * b)).join('\n        ')).join('\n        ');
  const body = q8
    ? `(local.set $q (v128.load offset=2 (local.get $x)))
        ${sixteen(0)}
        (local.set $q (v128.load offset=18 (local.get $x)))
        ${sixteen(64)}`
    : `(local.set $w (v128.load offset=2 (local.get $x)))
        (local.set $q (i8x16.sub (v128.and (local.get $w) ${i4(0x0f0f0f0f)}) ${i4(0x08080808)}))
        ${sixteen(0)}
        (local.set $q (i8x16.sub (i8x16.shr_u (local.get $w) (i32.const 4)) ${i4(0x08080808)}))
        ${sixteen(64)}`;
  return `
  (func $cp_dequant_${type} (param $src i32) (param $dst i32) (param $nBlocks i32) (param $task i32) (param $nTasks i32)
    (local $b i32) (local $end i32) (local $x i32) (local $y i32) (local $d v128) (local $q v128) (local $w v128)
    (local $v v128) (local $a v128) (local $s v128) (local $r v128)
    (local.set $b (i32.div_u (i32.mul (local.get $nBlocks) (local.get $task)) (local.get $nTasks)))
    (local.set $end (i32.div_u (i32.mul (local.get $nBlocks) (i32.add (local.get $task) (i32.const 1))) (local.get $nTasks)))
    (local.set $x (i32.add (local.get $src) (i32.mul (local.get $b) (i32.const ${bytes}))))
    (local.set $y (i32.add (local.get $dst) (i32.mul (local.get $b) (i32.const 128))))
    (block $done (loop $blocks
      (br_if $done (i32.ge_u (local.get $b) (local.get $end)))
      (local.set $v (i32x4.splat (i32.load16_u (local.get $x))))
      (local.set $d (block (result v128) ${CONVERT.f16_f32}))
      ${body}
      (local.set $x (i32.add (local.get $x) (i32.const ${bytes})))
      (local.set $y (i32.add (local.get $y) (i32.const 128)))
      (local.set $b (i32.add (local.get $b) (i32.const 1)))
      (br $blocks))))`;
}

/** @param {{relaxed: boolean}} _variant  (identical builds) */
export function generate(_variant) {
  const out = ['(module', '  (import "env" "memory" (memory 1 65536 shared))'];
  for (const s of [4, 2, 1]) out.push(plainCopy(s));
  for (const k of Object.keys(CASTS)) out.push(cast(k));
  out.push(dequant('q8_0'), dequant('q4_0'));
  for (const e of exportNames) out.push(`  (export "${e}" (func $${e}))`);
  out.push(')');
  return out.join('\n');
}
