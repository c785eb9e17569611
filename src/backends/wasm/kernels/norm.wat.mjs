// Generator of the row-wise kernel module: softmax (scaled, causal prefix, u8 mask, log variant),
// layernorm, rmsnorm, rotary embedding and last-axis reductions, all f32. Each export runs over a
// table of row addresses built by src/backends/wasm/ops/norm.ts (rows are contiguous; the table
// carries whatever layout the views had) and takes rows [nRows·task/nTasks, nRows·(task+1)/nTasks).
//   nm_softmax(table, nRows, len, log, scaleBits)          entry [x, y, mask or 0, visible prefix]
//   nm_layernorm(table, nRows, d, epsBits, w or 0, b or 0)  entry [x, y]
//   nm_rmsnorm(table, nRows, d, epsBits, offsetBits, w or 0) entry [x, y]
//   nm_rope_half / nm_rope_inter(table, nRows, d, rot)      entry [x, y, cos/sin row of rot/2 each]
//   nm_reduce_<fn>(table, nRows, n)                         entry [x, y]
//   nm_attn_rows(params)                                    attention, one query row at a time (ATTN below)
// Hidden softmax entries give 0 (-Inf for log); a row with nothing visible is all hidden. NaN
// propagates as in the reference (max/min propagate; argmax/argmin return the first NaN).
// Not for: other axes, strided rows or f16/bf16 (reference kernels).
import { expFn, logFn, f4, i4 } from './simd-math.mjs';

export const name = 'norm';
export const REDUCE_FNS = ['sum', 'mean', 'max', 'min', 'argmax', 'argmin'];
export const exportNames = ['nm_softmax', 'nm_layernorm', 'nm_rmsnorm', 'nm_rope_half', 'nm_rope_inter', 'nm_attn_rows', ...REDUCE_FNS.map((f) => `nm_reduce_${f}`)];

const g = (n) => `(local.get $${n})`;
const set = (n, v) => `(local.set $${n} ${v})`;
const inc = (n, by) => set(n, `(i32.add ${g(n)} ${typeof by === 'number' ? `(i32.const ${by})` : by})`);

/** `(loop ...)` over j from $j while j + step <= limit. */
function loop(label, limit, step, body) {
  return `
      (block $${label}_d (loop $${label}_l
        (br_if $${label}_d (i32.gt_u (i32.add ${g('j')} (i32.const ${step})) ${limit}))
        ${body}
        ${inc('j', step)}
        (br $${label}_l)))`;
}

// [sum a, sum b, sum c, sum d] of four vectors (a 4x4 transpose folded into the adds)
const HADD4 = `
  (func $hadd4 (param $a v128) (param $b v128) (param $c v128) (param $d v128) (result v128)
    (local $t v128) (local $u v128)
    (local.set $t (f32x4.add (i8x16.shuffle 0 1 2 3 16 17 18 19 4 5 6 7 20 21 22 23 ${g('a')} ${g('b')}) (i8x16.shuffle 8 9 10 11 24 25 26 27 12 13 14 15 28 29 30 31 ${g('a')} ${g('b')})))
    (local.set $u (f32x4.add (i8x16.shuffle 0 1 2 3 16 17 18 19 4 5 6 7 20 21 22 23 ${g('c')} ${g('d')}) (i8x16.shuffle 8 9 10 11 24 25 26 27 12 13 14 15 28 29 30 31 ${g('c')} ${g('d')})))
    (f32x4.add (i8x16.shuffle 0 1 2 3 4 5 6 7 16 17 18 19 20 21 22 23 ${g('t')} ${g('u')}) (i8x16.shuffle 8 9 10 11 12 13 14 15 24 25 26 27 28 29 30 31 ${g('t')} ${g('u')})))`;

const HORIZONTAL = ['max', 'min', 'add'].map((op) => `
  (func $h${op} (param $v v128) (result f32)
    (local.set $v (f32x4.${op} ${g('v')} (i8x16.shuffle 8 9 10 11 12 13 14 15 0 1 2 3 4 5 6 7 ${g('v')} ${g('v')})))
    (local.set $v (f32x4.${op} ${g('v')} (i8x16.shuffle 4 5 6 7 0 1 2 3 12 13 14 15 8 9 10 11 ${g('v')} ${g('v')})))
    (f32x4.extract_lane 0 ${g('v')}))`).join('\n');

/** Row-range prologue: $r, $end, $p (entry address). */
function rowRange(entryBytes) {
  return `
    ${set('r', `(i32.div_u (i32.mul ${g('nRows')} ${g('task')}) ${g('nTasks')})`)}
    ${set('end', `(i32.div_u (i32.mul ${g('nRows')} (i32.add ${g('task')} (i32.const 1))) ${g('nTasks')})`)}
    ${set('p', `(i32.add ${g('table')} (i32.mul ${g('r')} (i32.const ${entryBytes})))`)}`;
}
function rowsLoop(entryBytes, body) {
  return `${rowRange(entryBytes)}
    (block $rows_d (loop $rows_l
      (br_if $rows_d (i32.ge_u ${g('r')} ${g('end')}))
      ${body}
      ${inc('p', entryBytes)}
      ${inc('r', 1)}
      (br $rows_l)))`;
}

// ---- softmax ------------------------------------------------------------------------------
const keepVec = (masked) => masked
  ? `(i32x4.ne (i32x4.extend_low_i16x8_u (i16x8.extend_low_i8x16_u (v128.load32_zero (i32.add ${g('m')} ${g('j')})))) ${i4(0)})`
  : i4(-1);
const keepOne = (masked) => masked ? `(i32.ne (i32.load8_u (i32.add ${g('m')} ${g('j')})) (i32.const 0))` : '(i32.const 1)';
const xAt = (k) => `(i32.add ${g('x')} (i32.shl ${g('j')} (i32.const 2)))`.replace('$x', `$${k}`);

function softmaxRow(masked) {
  const sfx = masked ? 'm' : 'p';
  const vx = `(f32x4.mul (v128.load ${xAt('x')}) ${g('sc')})`;
  const sx = `(f32x4.mul (v128.load32_splat ${xAt('x')}) ${g('sc')})`;
  return `
  (func $softmax_${sfx} (param $x i32) (param $y i32) (param $m i32) (param $nv i32) (param $len i32) (param $log i32) (param $sc v128)
    (local $j i32) (local $vmax v128) (local $any v128) (local $k v128) (local $v v128) (local $e v128) (local $sum v128) (local $ts f32)
    (local $mx v128) (local $lse v128) (local $hid v128) (local $inv v128)
    ${set('hid', `(select ${f4('-inf')} ${f4(0)} ${g('log')})`)}
    ${set('vmax', f4('-inf'))} ${set('any', i4(0))} ${set('j', '(i32.const 0)')}
    ${loop('a', g('nv'), 4, `${set('k', keepVec(masked))}
        ${set('vmax', `(f32x4.max ${g('vmax')} (v128.bitselect ${vx} ${f4('-inf')} ${g('k')}))`)}
        ${set('any', `(v128.or ${g('any')} ${g('k')})`)}`)}
    ${loop('at', g('nv'), 1, `(if ${keepOne(masked)} (then
        ${set('vmax', `(f32x4.max ${g('vmax')} ${sx})`)} ${set('any', i4(-1))}))`)}
    (if (i32.eqz (v128.any_true ${g('any')})) (then ${set('nv', '(i32.const 0)')}))
    ${set('mx', `(f32x4.splat (call $hmax ${g('vmax')}))`)}
    ;; exp and sum over the visible prefix (kept entries only)
    ${set('sum', f4(0))} ${set('ts', '(f32.const 0)')} ${set('j', '(i32.const 0)')}
    ${loop('b', g('nv'), 4, `${set('e', `(v128.and (call $exp (f32x4.sub ${vx} ${g('mx')})) ${keepVec(masked)})`)}
        ${set('sum', `(f32x4.add ${g('sum')} ${g('e')})`)}
        (if (i32.eqz ${g('log')}) (then (v128.store ${xAt('y')} ${g('e')})))`)}
    ${loop('bt', g('nv'), 1, `${set('e', `(v128.and (call $exp (f32x4.sub ${sx} ${g('mx')})) (i32x4.splat (i32.sub (i32.const 0) ${keepOne(masked)})))`)}
        ${set('ts', `(f32.add ${g('ts')} (f32x4.extract_lane 0 ${g('e')}))`)}
        (if (i32.eqz ${g('log')}) (then (f32.store ${xAt('y')} (f32x4.extract_lane 0 ${g('e')}))))`)}
    ${set('sum', `(f32x4.splat (f32.add (call $hadd ${g('sum')}) ${g('ts')}))`)}
    ${set('j', '(i32.const 0)')}
    (if ${g('log')} (then
      ${set('lse', `(f32x4.add ${g('mx')} (call $log ${g('sum')}))`)}
      ${loop('c', g('nv'), 4, `(v128.store ${xAt('y')} (v128.bitselect (f32x4.sub ${vx} ${g('lse')}) ${g('hid')} ${keepVec(masked)}))`)}
      ${loop('ct', g('nv'), 1, `(f32.store ${xAt('y')} (select (f32x4.extract_lane 0 (f32x4.sub ${sx} ${g('lse')})) (f32.const -inf) ${keepOne(masked)}))`)})
    (else
      ${set('inv', g('sum'))}
      ${loop('d', g('nv'), 4, `(v128.store ${xAt('y')} (v128.and (f32x4.div (v128.load ${xAt('y')}) ${g('inv')}) ${keepVec(masked)}))`)}
      ${loop('dt', g('nv'), 1, `(f32.store ${xAt('y')} (select (f32.div (f32.load ${xAt('y')}) (f32x4.extract_lane 0 ${g('inv')})) (f32.const 0) ${keepOne(masked)}))`)}))
    ;; hidden tail
    ${loop('h', g('len'), 4, `(v128.store ${xAt('y')} ${g('hid')})`)}
    ${loop('ht', g('len'), 1, `(f32.store ${xAt('y')} (f32x4.extract_lane 0 ${g('hid')}))`)})`;
}

function softmax() {
  return `${softmaxRow(false)}
${softmaxRow(true)}
  (func $nm_softmax (param $table i32) (param $nRows i32) (param $len i32) (param $log i32) (param $scale i32) (param $task i32) (param $nTasks i32)
    (local $r i32) (local $end i32) (local $p i32) (local $sc v128) (local $m i32) (local $nv i32)
    ${set('sc', `(f32x4.splat (f32.reinterpret_i32 ${g('scale')}))`)}
    ${rowsLoop(16, `
      ${set('m', `(i32.load offset=8 ${g('p')})`)}
      ${set('nv', `(i32.load offset=12 ${g('p')})`)}
      (if ${g('m')}
        (then (call $softmax_m (i32.load ${g('p')}) (i32.load offset=4 ${g('p')}) ${g('m')} ${g('nv')} ${g('len')} ${g('log')} ${g('sc')}))
        (else (call $softmax_p (i32.load ${g('p')}) (i32.load offset=4 ${g('p')}) ${g('m')} ${g('nv')} ${g('len')} ${g('log')} ${g('sc')})))`)})`;
}

// ---- layernorm / rmsnorm ------------------------------------------------------------------
function norms() {
  const vx = `(v128.load ${xAt('x')})`;
  const sx = `(v128.load32_splat ${xAt('x')})`;
  const param = (base) => `(v128.load (i32.add ${g(base)} (i32.shl ${g('j')} (i32.const 2))))`;
  const paramOne = (base) => `(v128.load32_splat (i32.add ${g(base)} (i32.shl ${g('j')} (i32.const 2))))`;
  const common = '(local $r i32) (local $end i32) (local $p i32) (local $x i32) (local $y i32) (local $j i32) (local $acc v128) (local $ts f32) (local $mean v128) (local $inv v128) (local $t v128)';
  // sum over the row of f(x) into $acc (vector) + $ts (tail), then to an f32
  const rowSum = (f) => `
      ${set('acc', f4(0))} ${set('ts', '(f32.const 0)')} ${set('j', '(i32.const 0)')}
      ${loop('s', g('d'), 4, set('acc', `(f32x4.add ${g('acc')} ${f(vx)})`))}
      ${loop('st', g('d'), 1, set('ts', `(f32.add ${g('ts')} (f32x4.extract_lane 0 ${f(sx)}))`))}
      (f32.add (call $hadd ${g('acc')}) ${g('ts')})`;
  const apply = (f) => `
      ${set('j', '(i32.const 0)')}
      ${loop('w', g('d'), 4, `(v128.store ${xAt('y')} ${f(vx, param)})`)}
      ${loop('wt', g('d'), 1, `(f32.store ${xAt('y')} (f32x4.extract_lane 0 ${f(sx, paramOne)}))`)}`;
  const rowHead = `${set('x', `(i32.load ${g('p')})`)} ${set('y', `(i32.load offset=4 ${g('p')})`)}`;
  const ln = (v, P) => {
    let e = `(f32x4.mul (f32x4.sub ${v} ${g('mean')}) ${g('inv')})`;
    e = `(if (result v128) ${g('w')} (then (f32x4.mul ${e} ${P('w')})) (else ${e}))`;
    return `(if (result v128) ${g('b')} (then (f32x4.add ${e} ${P('b')})) (else ${e}))`;
  };
  const rms = (v, P) => `(if (result v128) ${g('w')} (then (f32x4.mul (f32x4.mul ${v} ${g('inv')}) (f32x4.add ${g('off')} ${P('w')}))) (else (f32x4.mul ${v} ${g('inv')})))`;
  return `
  (func $nm_layernorm (param $table i32) (param $nRows i32) (param $d i32) (param $eps i32) (param $w i32) (param $b i32) (param $task i32) (param $nTasks i32)
    ${common}
    ${rowsLoop(8, `${rowHead}
      ${set('mean', `(f32x4.splat (f32.div ${rowSum((v) => v)} (f32.convert_i32_u ${g('d')})))`)}
      ${set('inv', `(f32x4.splat (f32.div (f32.const 1) (f32.sqrt (f32.add (f32.div ${rowSum((v) => `(f32x4.mul (f32x4.sub ${v} ${g('mean')}) (f32x4.sub ${v} ${g('mean')}))`)} (f32.convert_i32_u ${g('d')})) (f32.reinterpret_i32 ${g('eps')})))))`)}
      ${apply(ln)}`)})
  (func $nm_rmsnorm (param $table i32) (param $nRows i32) (param $d i32) (param $eps i32) (param $offset i32) (param $w i32) (param $task i32) (param $nTasks i32)
    ${common} (local $off v128)
    ${set('off', `(f32x4.splat (f32.reinterpret_i32 ${g('offset')}))`)}
    ${rowsLoop(8, `${rowHead}
      ${set('inv', `(f32x4.splat (f32.div (f32.const 1) (f32.sqrt (f32.add (f32.div ${rowSum((v) => `(f32x4.mul ${v} ${v})`)} (f32.convert_i32_u ${g('d')})) (f32.reinterpret_i32 ${g('eps')})))))`)}
      ${apply(rms)}`)})`;
}

// ---- rope ---------------------------------------------------------------------------------
// y = x rotated on the first `rot` channels by (cos, sin) of the row's position; the rest copied.
function rope(mode) {
  const half = mode === 'half';
  const at = (base, idx) => `(i32.add ${g(base)} (i32.shl ${idx} (i32.const 2)))`;
  const j = g('j');
  const jh = `(i32.add ${j} ${g('h')})`;
  const c = (k) => `(${k === 4 ? 'v128.load' : 'v128.load32_splat'} ${at('cs', j)})`;
  const s = (k) => `(${k === 4 ? 'v128.load' : 'v128.load32_splat'} ${at('cs', jh)})`;
  // pairs (j, j + h) for 'half'; (2j, 2j + 1) for 'interleaved'
  const body = half
    ? (k) => {
      const ld = k === 4 ? 'v128.load' : 'v128.load32_splat';
      const st = (addr, v) => (k === 4 ? `(v128.store ${addr} ${v})` : `(f32.store ${addr} (f32x4.extract_lane 0 ${v}))`);
      return `${set('a', `(${ld} ${at('x', j)})`)} ${set('b', `(${ld} ${at('x', jh)})`)}
        ${st(at('y', j), `(f32x4.sub (f32x4.mul ${g('a')} ${c(k)}) (f32x4.mul ${g('b')} ${s(k)}))`)}
        ${st(at('y', jh), `(f32x4.add (f32x4.mul ${g('b')} ${c(k)}) (f32x4.mul ${g('a')} ${s(k)}))`)}`;
    }
    : (k) => {
      const j2 = `(i32.shl ${j} (i32.const 1))`;
      if (k === 1) {
        return `${set('a', `(v128.load32_splat ${at('x', j2)})`)} ${set('b', `(v128.load32_splat offset=4 ${at('x', j2)})`)}
        (f32.store ${at('y', j2)} (f32x4.extract_lane 0 (f32x4.sub (f32x4.mul ${g('a')} ${c(1)}) (f32x4.mul ${g('b')} ${s(1)}))))
        (f32.store offset=4 ${at('y', j2)} (f32x4.extract_lane 0 (f32x4.add (f32x4.mul ${g('b')} ${c(1)}) (f32x4.mul ${g('a')} ${s(1)}))))`;
      }
      return `${set('u', `(v128.load ${at('x', j2)})`)} ${set('t', `(v128.load offset=16 ${at('x', j2)})`)}
        ${set('a', `(i8x16.shuffle 0 1 2 3 8 9 10 11 16 17 18 19 24 25 26 27 ${g('u')} ${g('t')})`)}
        ${set('b', `(i8x16.shuffle 4 5 6 7 12 13 14 15 20 21 22 23 28 29 30 31 ${g('u')} ${g('t')})`)}
        ${set('u', `(f32x4.sub (f32x4.mul ${g('a')} ${c(4)}) (f32x4.mul ${g('b')} ${s(4)}))`)}
        ${set('t', `(f32x4.add (f32x4.mul ${g('b')} ${c(4)}) (f32x4.mul ${g('a')} ${s(4)}))`)}
        (v128.store ${at('y', j2)} (i8x16.shuffle 0 1 2 3 16 17 18 19 4 5 6 7 20 21 22 23 ${g('u')} ${g('t')}))
        (v128.store offset=16 ${at('y', j2)} (i8x16.shuffle 8 9 10 11 24 25 26 27 12 13 14 15 28 29 30 31 ${g('u')} ${g('t')}))`;
    };
  return `
  (func $nm_rope_${half ? 'half' : 'inter'} (param $table i32) (param $nRows i32) (param $d i32) (param $rot i32) (param $task i32) (param $nTasks i32)
    (local $r i32) (local $end i32) (local $p i32) (local $x i32) (local $y i32) (local $cs i32) (local $j i32) (local $h i32)
    (local $a v128) (local $b v128) (local $u v128) (local $t v128)
    ${set('h', `(i32.shr_u ${g('rot')} (i32.const 1))`)}
    ${rowsLoop(12, `${set('x', `(i32.load ${g('p')})`)} ${set('y', `(i32.load offset=4 ${g('p')})`)} ${set('cs', `(i32.load offset=8 ${g('p')})`)}
      ${set('j', '(i32.const 0)')}
      ${loop('v', g('h'), 4, body(4))}
      ${loop('s', g('h'), 1, body(1))}
      (if (i32.lt_u ${g('rot')} ${g('d')}) (then
        (memory.copy ${at('y', g('rot'))} ${at('x', g('rot'))} (i32.shl (i32.sub ${g('d')} ${g('rot')}) (i32.const 2)))))`)})`;
}

// ---- reductions over a contiguous row ------------------------------------------------------
function reduce(fn) {
  const vx = `(v128.load ${xAt('x')})`;
  const sx = `(v128.load32_splat ${xAt('x')})`;
  const head = `${set('x', `(i32.load ${g('p')})`)} ${set('y', `(i32.load offset=4 ${g('p')})`)} ${set('j', '(i32.const 0)')}`;
  let body;
  if (fn === 'sum' || fn === 'mean') {
    body = `${head} ${set('acc', f4(0))} ${set('ts', '(f32.const 0)')}
      ${loop('s', g('n'), 4, set('acc', `(f32x4.add ${g('acc')} ${vx})`))}
      ${loop('st', g('n'), 1, set('ts', `(f32.add ${g('ts')} (f32.load ${xAt('x')}))`))}
      ${set('ts', `(f32.add (call $hadd ${g('acc')}) ${g('ts')})`)}
      (f32.store ${g('y')} ${fn === 'mean' ? `(f32.div ${g('ts')} (f32.convert_i32_u ${g('n')}))` : g('ts')})`;
  } else {
    const op = fn.endsWith('max') ? 'max' : 'min';
    // best value with NaN propagation (n >= 1 is guaranteed by the glue)
    body = `${head} ${set('acc', sx)}
      ${loop('s', g('n'), 4, set('acc', `(f32x4.${op} ${g('acc')} ${vx})`))}
      ${loop('st', g('n'), 1, set('acc', `(f32x4.${op} ${g('acc')} ${sx})`))}
      ${set('ts', `(call $h${op} ${g('acc')})`)}`;
    if (fn === 'max' || fn === 'min') body += `\n      (f32.store ${g('y')} ${g('ts')})`;
    else {
      // first index holding the best value (or the first NaN)
      body += `
      ${set('j', '(i32.const 0)')}
      (block $f_d (loop $f_l
        (br_if $f_d (i32.ge_u ${g('j')} ${g('n')}))
        ${set('t', `(f32.load ${xAt('x')})`)}
        (br_if $f_d (i32.or (f32.eq ${g('t')} ${g('ts')}) (f32.ne ${g('t')} ${g('t')})))
        ${inc('j', 1)}
        (br $f_l)))
      (i32.store ${g('y')} ${g('j')})`;
    }
  }
  return `
  (func $nm_reduce_${fn} (param $table i32) (param $nRows i32) (param $n i32) (param $task i32) (param $nTasks i32)
    (local $r i32) (local $end i32) (local $p i32) (local $x i32) (local $y i32) (local $j i32) (local $acc v128) (local $ts f32) (local $t f32)
    ${rowsLoop(8, body)})`;
}


// ---- attention, one query row at a time ------------------------------------------------------
/**
 * Parameter block of nm_attn_rows, i32 fields at these byte offsets. Strides are in elements
 * (q/k/v/y per batch, head, position; the last axis is contiguous); q, k, v, y, probs, mask,
 * scratch are byte addresses. probs (0: none) is [b, hq, tq, tk] contiguous; mask (0: none) is
 * u8 [b, tk] contiguous; scratch holds tk floats per task, `scratchStride` bytes apart; touch
 * (0/1): read one word per cache line of a row's visible keys and values before computing.
 */
export const ATTN = {
  B: 0, HQ: 4, G: 8, TQ: 12, TK: 16, D: 20, DV: 24,
  q: 28, qsb: 32, qsh: 36, qst: 40, k: 44, ksb: 48, ksh: 52, kst: 56,
  v: 60, vsb: 64, vsh: 68, vst: 72, y: 76, ysb: 80, ysh: 84, yst: 88,
  probs: 92, mask: 96, causal: 100, scaleBits: 104, scratch: 108, scratchStride: 112, touch: 116, BYTES: 128,
};

// For each query row (b, h, i) of this task: scores against the visible keys (causal prefix with
// offset tk - tq) as dot products, the masked softmax of the softmax kernel, then y = sum p_j v_j
// over the keys with p_j != 0 (as the reference). Keys and values are read front to back, so a
// decode step streams its cache once; prefill-sized queries use the GEMM path instead.
function attnRows() {
  const f = (n) => `(i32.load offset=${ATTN[n]} ${g('prm')})`;
  const at = (base, ...terms) => `(i32.add ${g(base)} (i32.shl ${terms.reduce((a, t) => `(i32.add ${a} ${t})`)} (i32.const 2)))`;
  return `
  (func $nm_attn_rows (param $prm i32) (param $task i32) (param $nTasks i32)
    (local $r i32) (local $end i32) (local $nRows i32) (local $i i32) (local $h i32) (local $b i32) (local $bh i32)
    (local $TQ i32) (local $TK i32) (local $D i32) (local $DV i32) (local $HQ i32)
    (local $qa i32) (local $ka i32) (local $va i32) (local $ya i32) (local $s i32) (local $m i32) (local $nv i32)
    (local $kst i32) (local $vst i32) (local $kr i32) (local $j i32) (local $c i32) (local $d4 i32) (local $dv4 i32)
    (local $tch i32) (local $a0 v128) (local $a1 v128) (local $b0 v128) (local $b1 v128) (local $b2 v128) (local $b3 v128) (local $pj f32) (local $pv v128) (local $t f32) (local $sc v128)
    ${set('TQ', f('TQ'))} ${set('TK', f('TK'))} ${set('D', f('D'))} ${set('DV', f('DV'))} ${set('HQ', f('HQ'))}
    ${set('kst', `(i32.shl ${f('kst')} (i32.const 2))`)} ${set('vst', `(i32.shl ${f('vst')} (i32.const 2))`)}
    ${set('d4', `(i32.and ${g('D')} (i32.const -4))`)} ${set('dv4', `(i32.and ${g('DV')} (i32.const -4))`)}
    ${set('sc', `(f32x4.splat (f32.reinterpret_i32 ${f('scaleBits')}))`)}
    ${set('nRows', `(i32.mul (i32.mul ${f('B')} ${g('HQ')}) ${g('TQ')})`)}
    ${set('r', `(i32.div_u (i32.mul ${g('nRows')} ${g('task')}) ${g('nTasks')})`)}
    ${set('end', `(i32.div_u (i32.mul ${g('nRows')} (i32.add ${g('task')} (i32.const 1))) ${g('nTasks')})`)}
    (block $rows_d (loop $rows_l
      (br_if $rows_d (i32.ge_u ${g('r')} ${g('end')}))
      ${set('i', `(i32.rem_u ${g('r')} ${g('TQ')})`)} ${set('bh', `(i32.div_u ${g('r')} ${g('TQ')})`)}
      ${set('h', `(i32.rem_u ${g('bh')} ${g('HQ')})`)} ${set('b', `(i32.div_u ${g('bh')} ${g('HQ')})`)}
      ${set('qa', `(i32.add ${f('q')} (i32.shl (i32.add (i32.add (i32.mul ${g('b')} ${f('qsb')}) (i32.mul ${g('h')} ${f('qsh')})) (i32.mul ${g('i')} ${f('qst')})) (i32.const 2)))`)}
      ${set('ya', `(i32.add ${f('y')} (i32.shl (i32.add (i32.add (i32.mul ${g('b')} ${f('ysb')}) (i32.mul ${g('h')} ${f('ysh')})) (i32.mul ${g('i')} ${f('yst')})) (i32.const 2)))`)}
      ${set('ka', `(i32.add ${f('k')} (i32.shl (i32.add (i32.mul ${g('b')} ${f('ksb')}) (i32.mul (i32.div_u ${g('h')} ${f('G')}) ${f('ksh')})) (i32.const 2)))`)}
      ${set('va', `(i32.add ${f('v')} (i32.shl (i32.add (i32.mul ${g('b')} ${f('vsb')}) (i32.mul (i32.div_u ${g('h')} ${f('G')}) ${f('vsh')})) (i32.const 2)))`)}
      ${set('nv', g('TK'))}
      (if ${f('causal')} (then
        ${set('nv', `(i32.add ${g('i')} (i32.sub ${g('TK')} (i32.sub ${g('TQ')} (i32.const 1))))`)}
        (if (i32.lt_s ${g('nv')} (i32.const 0)) (then ${set('nv', '(i32.const 0)')}))
        (if (i32.gt_s ${g('nv')} ${g('TK')}) (then ${set('nv', g('TK'))}))))
      ${set('s', `(select (i32.add ${f('probs')} (i32.shl (i32.mul ${g('r')} ${g('TK')}) (i32.const 2))) (i32.add ${f('scratch')} (i32.mul ${g('task')} ${f('scratchStride')})) (i32.ne ${f('probs')} (i32.const 0)))`)}
      ${set('m', `(select (i32.add ${f('mask')} (i32.mul ${g('b')} ${g('TK')})) (i32.const 0) (i32.ne ${f('mask')} (i32.const 0)))`)}
      ;; touch one word per cache line of the visible keys and values first: independent loads the
      ;; core keeps many of in flight, where the loops below wait on one stream at a time (a
      ;; decode step finds the cache in DRAM: the weights streamed since evicted it)
      (if (i32.ne ${f('touch')} (i32.const 0)) (then
        ${set('kr', '(i32.const 0)')} ${set('j', '(i32.const 0)')}
        (block $pd (loop $pl
          (br_if $pd (i32.ge_u ${g('j')} ${g('nv')}))
          ${set('c', '(i32.const 0)')}
          (loop $pcl
            ${set('tch', `(i32.or ${g('tch')} (i32.or (i32.load (i32.add (i32.add ${g('ka')} ${g('kr')}) ${g('c')})) (i32.load (i32.add (i32.add ${g('va')} (i32.mul ${g('j')} ${g('vst')})) ${g('c')}))))`)}
            ${inc('c', 64)}
            (br_if $pcl (i32.lt_u ${g('c')} (i32.shl ${g('D')} (i32.const 2)))))
          ${inc('kr', g('kst'))} ${inc('j', 1)}
          (br $pl)))))
      ;; scores of the visible prefix, four keys at a time (one load of q serves them all)
      ${set('kr', g('ka'))} ${set('j', '(i32.const 0)')}
      (block $s4d (loop $s4l
        (br_if $s4d (i32.gt_u (i32.add ${g('j')} (i32.const 4)) ${g('nv')}))
        ${[0, 1, 2, 3].map((u) => set(`b${u}`, f4(0))).join(' ')} ${set('c', '(i32.const 0)')}
        (block $e4d (loop $e4l
          (br_if $e4d (i32.ge_u ${g('c')} ${g('d4')}))
          ${set('a0', `(v128.load ${at('qa', g('c'))})`)}
          ${[0, 1, 2, 3].map((u) => set(`b${u}`, `(f32x4.add ${g(`b${u}`)} (f32x4.mul ${g('a0')} (v128.load ${u === 0 ? at('kr', g('c')) : `(i32.add ${at('kr', g('c'))} (i32.mul ${g('kst')} (i32.const ${u})))`})))`)).join('\n          ')}
          ${inc('c', 4)}
          (br $e4l)))
        ${set('a0', `(call $hadd4 ${g('b0')} ${g('b1')} ${g('b2')} ${g('b3')})`)}
        (block $e1d (loop $e1l
          (br_if $e1d (i32.ge_u ${g('c')} ${g('D')}))
          ${set('t', `(f32.load ${at('qa', g('c'))})`)}
          ${[0, 1, 2, 3].map((u) => set('a0', `(f32x4.replace_lane ${u} ${g('a0')} (f32.add (f32x4.extract_lane ${u} ${g('a0')}) (f32.mul ${g('t')} (f32.load ${u === 0 ? at('kr', g('c')) : `(i32.add ${at('kr', g('c'))} (i32.mul ${g('kst')} (i32.const ${u})))`}))))`)).join('\n          ')}
          ${inc('c', 1)}
          (br $e1l)))
        (v128.store ${at('s', g('j'))} ${g('a0')})
        ${inc('kr', `(i32.shl ${g('kst')} (i32.const 2))`)} ${inc('j', 4)}
        (br $s4l)))
      (block $sd (loop $sl
        (br_if $sd (i32.ge_u ${g('j')} ${g('nv')}))
        ${set('a0', f4(0))} ${set('a1', f4(0))} ${set('c', '(i32.const 0)')}
        (block $d8d (loop $d8l
          (br_if $d8d (i32.gt_u (i32.add ${g('c')} (i32.const 8)) ${g('d4')}))
          ${set('a0', `(f32x4.add ${g('a0')} (f32x4.mul (v128.load ${at('qa', g('c'))}) (v128.load ${at('kr', g('c'))})))`)}
          ${set('a1', `(f32x4.add ${g('a1')} (f32x4.mul (v128.load offset=16 ${at('qa', g('c'))}) (v128.load offset=16 ${at('kr', g('c'))})))`)}
          ${inc('c', 8)}
          (br $d8l)))
        (block $d4d (loop $d4l
          (br_if $d4d (i32.ge_u ${g('c')} ${g('d4')}))
          ${set('a0', `(f32x4.add ${g('a0')} (f32x4.mul (v128.load ${at('qa', g('c'))}) (v128.load ${at('kr', g('c'))})))`)}
          ${inc('c', 4)}
          (br $d4l)))
        ${set('t', `(call $hadd (f32x4.add ${g('a0')} ${g('a1')}))`)}
        (block $d1d (loop $d1l
          (br_if $d1d (i32.ge_u ${g('c')} ${g('D')}))
          ${set('t', `(f32.add ${g('t')} (f32.mul (f32.load ${at('qa', g('c'))}) (f32.load ${at('kr', g('c'))})))`)}
          ${inc('c', 1)}
          (br $d1l)))
        (f32.store ${at('s', g('j'))} ${g('t')})
        ${inc('kr', g('kst'))} ${inc('j', 1)}
        (br $sl)))
      (if ${g('m')}
        (then (call $softmax_m ${g('s')} ${g('s')} ${g('m')} ${g('nv')} ${g('TK')} (i32.const 0) ${g('sc')}))
        (else (call $softmax_p ${g('s')} ${g('s')} ${g('m')} ${g('nv')} ${g('TK')} (i32.const 0) ${g('sc')})))
      ;; y = sum over kept keys of p_j v_j
      (memory.fill ${g('ya')} (i32.const 0) (i32.shl ${g('DV')} (i32.const 2)))
      ${set('kr', g('va'))} ${set('j', '(i32.const 0)')}
      ;; four keys at a time while none of the four is dropped (p = 0 keys are skipped below)
      (block $v4d (loop $v4l
        (br_if $v4d (i32.gt_u (i32.add ${g('j')} (i32.const 4)) ${g('nv')}))
        ${set('pv', `(v128.load ${at('s', g('j'))})`)}
        (br_if $v4d (i32.eqz (i32x4.all_true (f32x4.ne ${g('pv')} ${f4(0)}))))
        ${[0, 1, 2, 3].map((u) => set(`b${u}`, `(f32x4.splat (f32x4.extract_lane ${u} ${g('pv')}))`)).join(' ')}
        ${set('c', '(i32.const 0)')}
        (block $w4d (loop $w4l
          (br_if $w4d (i32.ge_u ${g('c')} ${g('dv4')}))
          (v128.store ${at('ya', g('c'))} (f32x4.add (v128.load ${at('ya', g('c'))})
            (f32x4.add (f32x4.add (f32x4.mul ${g('b0')} (v128.load ${at('kr', g('c'))})) (f32x4.mul ${g('b1')} (v128.load (i32.add ${at('kr', g('c'))} ${g('vst')}))))
                       (f32x4.add (f32x4.mul ${g('b2')} (v128.load (i32.add ${at('kr', g('c'))} (i32.mul ${g('vst')} (i32.const 2))))) (f32x4.mul ${g('b3')} (v128.load (i32.add ${at('kr', g('c'))} (i32.mul ${g('vst')} (i32.const 3)))))))))
          ${inc('c', 4)}
          (br $w4l)))
        (block $w1d (loop $w1l
          (br_if $w1d (i32.ge_u ${g('c')} ${g('DV')}))
          (f32.store ${at('ya', g('c'))} (f32.add (f32.load ${at('ya', g('c'))})
            (f32.add (f32.add (f32.mul (f32x4.extract_lane 0 ${g('pv')}) (f32.load ${at('kr', g('c'))})) (f32.mul (f32x4.extract_lane 1 ${g('pv')}) (f32.load (i32.add ${at('kr', g('c'))} ${g('vst')}))))
                     (f32.add (f32.mul (f32x4.extract_lane 2 ${g('pv')}) (f32.load (i32.add ${at('kr', g('c'))} (i32.mul ${g('vst')} (i32.const 2))))) (f32.mul (f32x4.extract_lane 3 ${g('pv')}) (f32.load (i32.add ${at('kr', g('c'))} (i32.mul ${g('vst')} (i32.const 3)))))))))
          ${inc('c', 1)}
          (br $w1l)))
        ${inc('kr', `(i32.shl ${g('vst')} (i32.const 2))`)} ${inc('j', 4)}
        (br $v4l)))
      (block $vd (loop $vl
        (br_if $vd (i32.ge_u ${g('j')} ${g('nv')}))
        ${set('pj', `(f32.load ${at('s', g('j'))})`)}
        (if (f32.ne ${g('pj')} (f32.const 0)) (then
          ${set('pv', `(f32x4.splat ${g('pj')})`)} ${set('c', '(i32.const 0)')}
          (block $yd (loop $yl
            (br_if $yd (i32.ge_u ${g('c')} ${g('dv4')}))
            (v128.store ${at('ya', g('c'))} (f32x4.add (v128.load ${at('ya', g('c'))}) (f32x4.mul ${g('pv')} (v128.load ${at('kr', g('c'))}))))
            ${inc('c', 4)}
            (br $yl)))
          (block $y1d (loop $y1l
            (br_if $y1d (i32.ge_u ${g('c')} ${g('DV')}))
            (f32.store ${at('ya', g('c'))} (f32.add (f32.load ${at('ya', g('c'))}) (f32.mul ${g('pj')} (f32.load ${at('kr', g('c'))}))))
            ${inc('c', 1)}
            (br $y1l)))))
        ${inc('kr', g('vst'))} ${inc('j', 1)}
        (br $vl)))
      ${inc('r', 1)}
      (br $rows_l)))
    ;; keep the touch loads alive: their OR goes to this task's own scratch slot, which no other
    ;; task uses (task 0's slot, as before, raced with task 0 still scoring a row)
    (i32.store (i32.add ${f('scratch')} (i32.mul ${g('task')} ${f('scratchStride')})) ${g('tch')}))`;
}

/** @param {{relaxed: boolean}} _variant  (identical builds) */
export function generate(_variant) {
  const out = ['(module', '  (import "env" "memory" (memory 1 65536 shared))', expFn, logFn, HORIZONTAL, HADD4, softmax(), norms(),
    rope('half'), rope('interleaved'), attnRows()];
  for (const fn of REDUCE_FNS) out.push(reduce(fn));
  for (const e of exportNames) out.push(`  (export "${e}" (func $${e}))`);
  out.push(')');
  return out.join('\n');
}

/** What the runtime needs to know about this module (written into generated/kernels.ts). */
export const constants = { ATTN };
