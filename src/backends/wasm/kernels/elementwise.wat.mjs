// Generator of the elementwise kernel module: f32 unary functions, f32 binary functions (f32 out,
// or u8 0/1 for comparisons) and a 32-bit `where`. Every export runs over a row table built by
// src/backends/wasm/ops/rows.ts: entries of i32 [len, addr of each operand's row] and one byte
// stride per operand along the row; this thread takes rows [nRows·task/nTasks, nRows·(task+1)/nTasks).
// Unit-stride rows (and a stride-0 operand of a binary op: scalar or row-vector broadcast) run four
// lanes at a time; any other stride, and the last len % 4 elements, go one element at a time
// through the same vector code (splat in, lane 0 out), so every element gets identical math.
// Not for: pow (its special cases stay with the reference), integer or f16/bf16 arithmetic.
import { MATH_FNS, f4, i4 } from './simd-math.mjs';

export const name = 'elementwise';

export const UNARY_FNS = ['neg', 'exp', 'log', 'sqrt', 'rsqrt', 'tanh', 'abs', 'sign', 'relu', 'sigmoid', 'silu',
  'gelu_tanh', 'gelu_erf', 'square', 'recip', 'sin', 'cos'];
export const BINARY_FNS = ['add', 'sub', 'mul', 'div', 'maximum', 'minimum', 'eq', 'ne', 'lt', 'le', 'gt', 'ge'];
const CMP = { eq: 'eq', ne: 'ne', lt: 'lt', le: 'le', gt: 'gt', ge: 'ge' };

export const exportNames = [...UNARY_FNS.map((f) => `ew_unary_${f}`), ...BINARY_FNS.map((f) => `ew_binary_${f}`), 'ew_where32'];

const v = '(local.get $v)';
const negInfToZero = (expr) => `(v128.bitselect ${f4(0)} ${expr} (f32x4.eq ${v} ${f4('-inf')}))`;
/** f(v) for each unary function, as an expression over the local $v. */
const UNARY = {
  neg: `(f32x4.neg ${v})`,
  exp: `(call $exp ${v})`,
  log: `(call $log ${v})`,
  sqrt: `(f32x4.sqrt ${v})`,
  rsqrt: `(f32x4.div ${f4(1)} (f32x4.sqrt ${v}))`,
  tanh: `(call $tanh ${v})`,
  abs: `(f32x4.abs ${v})`,
  sign: `(v128.bitselect ${v} (v128.or (v128.and (f32x4.gt ${v} ${f4(0)}) ${f4(1)}) (v128.and (f32x4.lt ${v} ${f4(0)}) ${f4(-1)})) (f32x4.ne ${v} ${v}))`,
  relu: `(f32x4.max ${v} ${f4(0)})`,
  sigmoid: `(call $sigmoid ${v})`,
  silu: negInfToZero(`(f32x4.mul ${v} (call $sigmoid ${v}))`),
  // 0.5 x (1 + tanh u) = x sigmoid(2u), u = sqrt(2/pi) (x + 0.044715 x^3)
  gelu_tanh: negInfToZero(`(f32x4.mul ${v} (call $sigmoid (f32x4.mul ${f4(2 * 0.7978845608028654)} (f32x4.add ${v} (f32x4.mul ${f4(0.044715)} (f32x4.mul ${v} (f32x4.mul ${v} ${v})))))))`),
  gelu_erf: negInfToZero(`(f32x4.mul (f32x4.mul ${f4(0.5)} ${v}) (call $one_plus_erf (f32x4.mul ${v} ${f4(0.7071067811865476)})))`),
  square: `(f32x4.mul ${v} ${v})`,
  recip: `(f32x4.div ${f4(1)} ${v})`,
  sin: `(call $sin ${v})`,
  cos: `(call $cos ${v})`,
};

const a = '(local.get $va)';
const b = '(local.get $vb)';
/** f(a, b) for each binary function over locals $va, $vb (comparisons give an i32x4 mask). */
const BINARY = {
  add: `(f32x4.add ${a} ${b})`, sub: `(f32x4.sub ${a} ${b})`, mul: `(f32x4.mul ${a} ${b})`, div: `(f32x4.div ${a} ${b})`,
  maximum: `(f32x4.max ${a} ${b})`, minimum: `(f32x4.min ${a} ${b})`,
  ...Object.fromEntries(Object.entries(CMP).map(([k, op]) => [k, `(f32x4.${op} ${a} ${b})`])),
};

/** Row-range prologue shared by every export: sets $r (first row), $end, $p (entry address). */
function rowRange(entryInts) {
  return `
    (local.set $r (i32.div_u (i32.mul (local.get $nRows) (local.get $task)) (local.get $nTasks)))
    (local.set $end (i32.div_u (i32.mul (local.get $nRows) (i32.add (local.get $task) (i32.const 1))) (local.get $nTasks)))
    (local.set $p (i32.add (local.get $table) (i32.mul (local.get $r) (i32.const ${entryInts * 4}))))`;
}

function unaryFn(fn) {
  const body = UNARY[fn];
  return `
  (func $ew_unary_${fn} (param $table i32) (param $nRows i32) (param $sy i32) (param $sx i32) (param $task i32) (param $nTasks i32)
    (local $r i32) (local $end i32) (local $p i32) (local $n i32) (local $i i32) (local $y i32) (local $x i32) (local $v v128)
    ${rowRange(3)}
    (block $rows_done (loop $rows
      (br_if $rows_done (i32.ge_u (local.get $r) (local.get $end)))
      (local.set $n (i32.load (local.get $p)))
      (local.set $y (i32.load offset=4 (local.get $p)))
      (local.set $x (i32.load offset=8 (local.get $p)))
      (local.set $i (i32.const 0))
      (if (i32.and (i32.eq (local.get $sx) (i32.const 4)) (i32.eq (local.get $sy) (i32.const 4))) (then
        (block $vd (loop $vl
          (br_if $vd (i32.gt_u (i32.add (local.get $i) (i32.const 4)) (local.get $n)))
          (local.set $v (v128.load (local.get $x)))
          (v128.store (local.get $y) ${body})
          (local.set $x (i32.add (local.get $x) (i32.const 16)))
          (local.set $y (i32.add (local.get $y) (i32.const 16)))
          (local.set $i (i32.add (local.get $i) (i32.const 4)))
          (br $vl)))))
      (block $sd (loop $sl
        (br_if $sd (i32.ge_u (local.get $i) (local.get $n)))
        (local.set $v (v128.load32_splat (local.get $x)))
        (f32.store (local.get $y) (f32x4.extract_lane 0 ${body}))
        (local.set $x (i32.add (local.get $x) (local.get $sx)))
        (local.set $y (i32.add (local.get $y) (local.get $sy)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $sl)))
      (local.set $p (i32.add (local.get $p) (i32.const 12)))
      (local.set $r (i32.add (local.get $r) (i32.const 1)))
      (br $rows))))`;
}

/** Stores a result vector: f32, or the low byte of each mask lane for comparisons. */
function storeVec(cmp, expr) {
  return cmp
    ? `(v128.store32_lane 0 (local.get $y) (i8x16.narrow_i16x8_u (i16x8.narrow_i32x4_u (v128.and ${expr} ${i4(1)}) ${i4(0)}) ${i4(0)}))`
    : `(v128.store (local.get $y) ${expr})`;
}
function storeOne(cmp, expr) {
  return cmp
    ? `(i32.store8 (local.get $y) (i32x4.extract_lane 0 (v128.and ${expr} ${i4(1)})))`
    : `(f32.store (local.get $y) (f32x4.extract_lane 0 ${expr}))`;
}

function binaryFn(fn) {
  const body = BINARY[fn];
  const cmp = fn in CMP;
  const oy = cmp ? 1 : 4;
  // vector loops: both operands unit-stride, or one of them a broadcast scalar along the row
  const loop = (label, sa, sb) => `
        (block $${label}_d (loop $${label}_l
          (br_if $${label}_d (i32.gt_u (i32.add (local.get $i) (i32.const 4)) (local.get $n)))
          ${sa ? '(local.set $va (v128.load (local.get $a)))' : ''}
          ${sb ? '(local.set $vb (v128.load (local.get $b)))' : ''}
          ${storeVec(cmp, body)}
          (local.set $a (i32.add (local.get $a) (i32.const ${sa ? 16 : 0})))
          (local.set $b (i32.add (local.get $b) (i32.const ${sb ? 16 : 0})))
          (local.set $y (i32.add (local.get $y) (i32.const ${4 * oy})))
          (local.set $i (i32.add (local.get $i) (i32.const 4)))
          (br $${label}_l)))`;
  return `
  (func $ew_binary_${fn} (param $table i32) (param $nRows i32) (param $sy i32) (param $sa i32) (param $sb i32) (param $task i32) (param $nTasks i32)
    (local $r i32) (local $end i32) (local $p i32) (local $n i32) (local $i i32) (local $y i32) (local $a i32) (local $b i32) (local $va v128) (local $vb v128)
    ${rowRange(4)}
    (block $rows_done (loop $rows
      (br_if $rows_done (i32.ge_u (local.get $r) (local.get $end)))
      (local.set $n (i32.load (local.get $p)))
      (local.set $y (i32.load offset=4 (local.get $p)))
      (local.set $a (i32.load offset=8 (local.get $p)))
      (local.set $b (i32.load offset=12 (local.get $p)))
      (local.set $i (i32.const 0))
      (if (i32.eq (local.get $sy) (i32.const ${oy})) (then
        (if (i32.and (i32.eq (local.get $sa) (i32.const 4)) (i32.eq (local.get $sb) (i32.const 4))) (then ${loop('uu', true, true)})
        (else (if (i32.and (i32.eq (local.get $sa) (i32.const 4)) (i32.eqz (local.get $sb))) (then
          (local.set $vb (v128.load32_splat (local.get $b))) ${loop('us', true, false)})
        (else (if (i32.and (i32.eqz (local.get $sa)) (i32.eq (local.get $sb) (i32.const 4))) (then
          (local.set $va (v128.load32_splat (local.get $a))) ${loop('su', false, true)}))))))))
      (block $sd (loop $sl
        (br_if $sd (i32.ge_u (local.get $i) (local.get $n)))
        (local.set $va (v128.load32_splat (local.get $a)))
        (local.set $vb (v128.load32_splat (local.get $b)))
        ${storeOne(cmp, body)}
        (local.set $a (i32.add (local.get $a) (local.get $sa)))
        (local.set $b (i32.add (local.get $b) (local.get $sb)))
        (local.set $y (i32.add (local.get $y) (local.get $sy)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $sl)))
      (local.set $p (i32.add (local.get $p) (i32.const 16)))
      (local.set $r (i32.add (local.get $r) (i32.const 1)))
      (br $rows))))`;
}

// y = cond ? a : b on 32-bit elements (f32 or i32: the bits are copied); cond is u8.
function where32() {
  return `
  (func $ew_where32 (param $table i32) (param $nRows i32) (param $sy i32) (param $sc i32) (param $sa i32) (param $sb i32) (param $task i32) (param $nTasks i32)
    (local $r i32) (local $end i32) (local $p i32) (local $n i32) (local $i i32) (local $y i32) (local $c i32) (local $a i32) (local $b i32) (local $m v128)
    ${rowRange(5)}
    (block $rows_done (loop $rows
      (br_if $rows_done (i32.ge_u (local.get $r) (local.get $end)))
      (local.set $n (i32.load (local.get $p)))
      (local.set $y (i32.load offset=4 (local.get $p)))
      (local.set $c (i32.load offset=8 (local.get $p)))
      (local.set $a (i32.load offset=12 (local.get $p)))
      (local.set $b (i32.load offset=16 (local.get $p)))
      (local.set $i (i32.const 0))
      (if (i32.and (i32.and (i32.eq (local.get $sy) (i32.const 4)) (i32.eq (local.get $sc) (i32.const 1)))
                   (i32.and (i32.eq (local.get $sa) (i32.const 4)) (i32.eq (local.get $sb) (i32.const 4)))) (then
        (block $vd (loop $vl
          (br_if $vd (i32.gt_u (i32.add (local.get $i) (i32.const 4)) (local.get $n)))
          (local.set $m (i32x4.extend_low_i16x8_u (i16x8.extend_low_i8x16_u (v128.load32_zero (local.get $c)))))
          (v128.store (local.get $y) (v128.bitselect (v128.load (local.get $b)) (v128.load (local.get $a)) (i32x4.eq (local.get $m) ${i4(0)})))
          (local.set $y (i32.add (local.get $y) (i32.const 16)))
          (local.set $c (i32.add (local.get $c) (i32.const 4)))
          (local.set $a (i32.add (local.get $a) (i32.const 16)))
          (local.set $b (i32.add (local.get $b) (i32.const 16)))
          (local.set $i (i32.add (local.get $i) (i32.const 4)))
          (br $vl)))))
      (block $sd (loop $sl
        (br_if $sd (i32.ge_u (local.get $i) (local.get $n)))
        (i32.store (local.get $y) (select (i32.load (local.get $a)) (i32.load (local.get $b)) (i32.load8_u (local.get $c))))
        (local.set $y (i32.add (local.get $y) (local.get $sy)))
        (local.set $c (i32.add (local.get $c) (local.get $sc)))
        (local.set $a (i32.add (local.get $a) (local.get $sa)))
        (local.set $b (i32.add (local.get $b) (local.get $sb)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $sl)))
      (local.set $p (i32.add (local.get $p) (i32.const 20)))
      (local.set $r (i32.add (local.get $r) (i32.const 1)))
      (br $rows))))`;
}

/** @param {{relaxed: boolean}} _variant  (no relaxed instructions here: both builds are the same) */
export function generate(_variant) {
  const out = ['(module', '  (import "env" "memory" (memory 1 65536 shared))', MATH_FNS];
  for (const fn of UNARY_FNS) out.push(unaryFn(fn));
  for (const fn of BINARY_FNS) out.push(binaryFn(fn));
  out.push(where32());
  for (const e of exportNames) out.push(`  (export "${e}" (func $${e}))`);
  out.push(')');
  return out.join('\n');
}

export const constants = { UNARY_FNS, BINARY_FNS };
