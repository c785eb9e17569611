// Decode kernels of the quantized matrix product for the K-quants (Q4_K, Q5_K, Q6_K): fewer than
// MT activation rows against a weight in super-blocks of 256, two weight rows per pass (not a
// kernel module itself: qmatmul.wat.mjs pastes these functions in).
// The activation is rounded as llama.cpp's Q8_K does for these formats: one f32 scale per 256
// values (qm_quant_xk: xk8 i8 [K], xkd f32 [K/256], xkg i16 [K/16] sums of 16, xk32 i16 [K/32]
// sums of 32), so that a whole super-block of a weight row is one exact integer sum and costs
// one f32 multiply-add:
// - the weight values as stored (0..15, 0..31, 0..63) meet x in the relaxed i8 x i7 dot (exact:
//   inside the instruction's 7-bit operand), 16 pair sums per instruction; the plain-SIMD build
//   (browsers without relaxed SIMD) takes two i8 x i8 -> i16 extending multiplies and an add
//   instead (`i8dot`): its i16 lanes pair other values (j with j + 8), and every use multiplies all
//   lanes by one scale and sums them, so the result is the same integer;
// - each sub-block's scale multiplies its pair sums in i32 (i32x4.dot_i16x8_s against the scale's
//   splat) into one i32x4 per row and block; Q6_K's −32 and the Q4_K/Q5_K minimums come off
//   through x's sums of 16 (32) values, one dot per block;
// - the loop over a block runs per half (128 values): one iteration's vectors fit the 16 SIMD
//   registers of x64, where a whole unrolled block made V8 hoist its loads and spill.
// Bounds: Q6_K's pair sums ≤ 2·63·127 < 2^15, times an i8 scale summed over a block ≤ 2^26;
// Q4_K/Q5_K's two halves of a unit added in i16 ≤ 4·31·127 < 2^15.

import { KTILE_BYTES } from './qktile.mjs';

const g = (n) => `(local.get $${n})`;
const set = (n, v) => `(local.set $${n} ${v})`;
const i32 = (n) => `(i32.const ${n})`;
const add = (a, b) => `(i32.add ${a} ${b})`;
const b16 = (c) => `(v128.const i8x16 ${Array(16).fill(c).join(' ')})`;
/** i16 lane `l` of `v` in every lane. */
const splat16 = (v, l) => `(i8x16.shuffle ${Array(8).fill(`${2 * l} ${2 * l + 1}`).join(' ')} ${v} ${v})`;
const hsum = (x) => `(f32.add (f32.add (f32x4.extract_lane 0 ${x}) (f32x4.extract_lane 1 ${x})) (f32.add (f32x4.extract_lane 2 ${x}) (f32x4.extract_lane 3 ${x})))`;
const f16 = (addr) => `(f32.load (i32.add ${g('tab')} (i32.shl (i32.load16_u ${addr}) ${i32(2)})))`;
/**
 * A branch never taken ($nb, the count of blocks, is never negative; each fence compares it with a
 * different constant, so that V8 can neither prove it nor merge two fences): V8 schedules a basic
 * block's loads at its top, so that a long block keeps more vectors alive than x64 has registers
 * and spills; loads after this branch stay after it, next to their use.
 */
let fences = 0;
const fence = () => `(br_if $fence (i32.eq ${g('nb')} ${i32(-1 - fences++)}))`;
const vlocals = (names) => names.map((n) => `(local $${n} v128)`).join(' ');

/**
 * Sums of products of x's i8 values `a` with weight values `b` (0..63) in eight i16 lanes, each
 * lane the sum of two products: the relaxed i8 x i7 dot (lanes pair values 2j, 2j + 1) or, without
 * relaxed SIMD, the low and high halves' i16 products added (lanes pair j, j + 8; the function
 * needs the v128 locals `$da` and `$db`, see DOT_LOCALS). Callers only ever scale all eight lanes
 * alike and sum them, where both give the same integer.
 */
export function i8dot(a, b, relaxed) {
  if (relaxed) return `(i16x8.relaxed_dot_i8x16_i7x16_s ${a} ${b})`;
  return `(i16x8.add (i16x8.extmul_low_i8x16_s (local.tee $da ${a}) (local.tee $db ${b})) (i16x8.extmul_high_i8x16_s (local.get $da) (local.get $db)))`;
}
/** The locals `i8dot` needs in a function that uses it. */
export const DOT_LOCALS = ['da', 'db'];

/**
 * `$qm_quant_xk (p task nTasks)`: the activation rows (P.x, M x K, K a multiple of 256) rounded
 * per 256 values to i8 with one f32 scale (amax / 127, ties to even), split over tasks by blocks.
 * `P` the parameter block's offsets.
 */
export function quantXK(P) {
  const ld = (f) => `(i32.load offset=${P[f]} ${g('p')})`;
  const q = (k) => `(i32x4.trunc_sat_f32x4_s (f32x4.nearest (f32x4.mul (v128.load offset=${16 * k} ${g('xp')}) ${g('ids')})))`;
  const s16 = `(i32x4.extadd_pairwise_i16x8_s (i16x8.extadd_pairwise_i8x16_s ${g('v')}))`;
  const sum16 = `(i32.add (i32.add (i32x4.extract_lane 0 ${g('s')}) (i32x4.extract_lane 1 ${g('s')})) (i32.add (i32x4.extract_lane 2 ${g('s')}) (i32x4.extract_lane 3 ${g('s')})))`;
  return `
  (func $qm_quant_xk (param $p i32) (param $task i32) (param $nTasks i32)
    (local $n i32) (local $b i32) (local $end i32) (local $x i32) (local $xp i32) (local $q8 i32) (local $xg i32) (local $x32 i32) (local $j i32) (local $prev i32) (local $cur i32)
    (local $m v128) (local $ids v128) (local $v v128) (local $s v128) (local $am f32) (local $nbRow i32) (local $row i32) (local $tp i32) (local $tq i32) (local $tg i32)
    ${set('nbRow', `(i32.shr_u ${ld('K')} ${i32(8)})`)}
    ${set('n', `(i32.div_u (i32.mul ${ld('M')} ${ld('K')}) ${i32(256)})`)}
    ${set('b', `(i32.div_u (i32.mul ${g('n')} ${g('task')}) ${g('nTasks')})`)}
    ${set('end', `(i32.div_u (i32.mul ${g('n')} (i32.add ${g('task')} ${i32(1)})) ${g('nTasks')})`)}
    (block $done (loop $blocks
      (br_if $done (i32.ge_u ${g('b')} ${g('end')}))
      ${set('x', add(ld('x'), `(i32.shl ${g('b')} ${i32(10)})`))}
      ${set('q8', add(ld('xk8'), `(i32.shl ${g('b')} ${i32(8)})`))}
      ${set('xg', add(ld('xkg'), `(i32.shl ${g('b')} ${i32(5)})`))}
      ${set('x32', add(ld('xk32'), `(i32.shl ${g('b')} ${i32(4)})`))}
      ${set('m', '(v128.const i32x4 0 0 0 0)')} ${set('xp', g('x'))} ${set('j', i32(0))}
      (loop $amax
        ${set('m', `(f32x4.max (f32x4.max ${g('m')} (f32x4.abs (v128.load ${g('xp')}))) (f32x4.max (f32x4.abs (v128.load offset=16 ${g('xp')})) (f32x4.abs (v128.load offset=32 ${g('xp')}))))`)}
        ${set('m', `(f32x4.max ${g('m')} (f32x4.abs (v128.load offset=48 ${g('xp')})))`)}
        ${set('xp', add(g('xp'), i32(64)))} ${set('j', add(g('j'), i32(1)))}
        (br_if $amax (i32.lt_u ${g('j')} ${i32(16)})))
      ${set('am', `(f32.max (f32.max (f32x4.extract_lane 0 ${g('m')}) (f32x4.extract_lane 1 ${g('m')})) (f32.max (f32x4.extract_lane 2 ${g('m')}) (f32x4.extract_lane 3 ${g('m')})))`)}
      (f32.store (i32.add ${ld('xkd')} (i32.shl ${g('b')} ${i32(2)})) (f32.div ${g('am')} (f32.const 127)))
      ;; with P.xkt, a block of one of the first M & ~3 rows also goes into its tile (qktile.mjs): $tp the tile, $tq row r's values
      ${set('row', `(i32.div_u ${g('b')} ${g('nbRow')})`)} ${set('tp', i32(0))}
      (if (i32.and (i32.ne ${ld('xkt')} ${i32(0)}) (i32.lt_u ${g('row')} (i32.and ${ld('M')} ${i32(-4)}))) (then
        ${set('tp', `(i32.add ${ld('xkt')} (i32.mul (i32.add (i32.mul (i32.shr_u ${g('row')} ${i32(2)}) ${g('nbRow')}) (i32.sub ${g('b')} (i32.mul ${g('row')} ${g('nbRow')}))) ${i32(KTILE_BYTES)}))`)}
        ${set('tq', `(i32.add ${g('tp')} (i32.shl (i32.and ${g('row')} ${i32(3)}) ${i32(8)}))`)}
        (f32.store offset=1024 (i32.add ${g('tp')} (i32.shl (i32.and ${g('row')} ${i32(3)}) ${i32(2)})) (f32.div ${g('am')} (f32.const 127)))
        ${set('tg', `(i32.add ${g('tp')} (i32.shl (i32.and ${g('row')} ${i32(3)}) ${i32(5)}))`)}
        ${set('tp', `(i32.add ${g('tp')} (i32.shl (i32.and ${g('row')} ${i32(3)}) ${i32(4)}))`)}))
      ${set('ids', `(f32x4.splat (select (f32.div (f32.const 127) ${g('am')}) (f32.const 0) (f32.gt ${g('am')} (f32.const 0))))`)}
      ${set('xp', g('x'))} ${set('j', i32(0))}
      (loop $quant
        ${set('v', `(i8x16.narrow_i16x8_s (i16x8.narrow_i32x4_s ${q(0)} ${q(1)}) (i16x8.narrow_i32x4_s ${q(2)} ${q(3)}))`)}
        (v128.store ${g('q8')} ${g('v')})
        ${set('s', s16)} ${set('cur', sum16)}
        (i32.store16 ${g('xg')} ${g('cur')})
        (if ${g('tp')} (then
          (v128.store (i32.add ${g('tq')} (i32.shl ${g('j')} ${i32(4)})) ${g('v')})
          (i32.store16 offset=1040 (i32.add ${g('tg')} (i32.shl ${g('j')} ${i32(1)})) ${g('cur')})))
        (if (i32.and ${g('j')} ${i32(1)}) (then
          (i32.store16 ${g('x32')} (i32.add ${g('prev')} ${g('cur')})) ${set('x32', add(g('x32'), i32(2)))}
          (if ${g('tp')} (then (i32.store16 offset=1168 (i32.add ${g('tp')} (i32.sub ${g('j')} ${i32(1)})) (i32.add ${g('prev')} ${g('cur')}))))))
        ${set('prev', g('cur'))}
        ${set('xp', add(g('xp'), i32(64)))} ${set('q8', add(g('q8'), i32(16)))} ${set('xg', add(g('xg'), i32(2)))} ${set('j', add(g('j'), i32(1)))}
        (br_if $quant (i32.lt_u ${g('j')} ${i32(16)})))
      ${set('b', add(g('b'), i32(1)))}
      (br $blocks))))`;
}

/**
 * `$qm_q6_k_k<R> (wp wq nb x8 xd xg tab y)`: y[0..R) = rows at $wp (and $wq for R = 2), nb
 * super-blocks each, · the Q8_K activation row ($x8 i8, $xd f32 per 256, $xg i16 sums of 16).
 * Q6_K (ggml-common.h): ql [128] low nibbles, qh [64] two high bits, 16 i8 scales, f16 d; value
 * d·sc·(q − 32). Per half h (128 values): unit t (32 values) at 32t, its 16-value pieces k from
 * ql bytes 64h + 32(t & 1) + 16k (low nibbles for t < 2, high ones after) and bits 2t, 2t + 1 of
 * qh bytes 128 + 32h + 16k, with the scale 8h + 2t + k.
 */
export function q6kDecode(madd, R, relaxed) {
  const rows = [...Array(R).keys()];
  const W = (r) => g(r ? 'wq' : 'wp');
  const L = [];
  for (const r of rows) {
    // d_w · d_x, and 32 · Σ sc · (sum of 16 x) for the −32 of every value
    L.push(set(`d${r}`, `(f32x4.splat (f32.mul ${f16(add(W(r), i32(208)))} (f32.load ${g('xd')})))`));
    const corr = `(i32x4.add (i32x4.dot_i16x8_s (v128.load8x8_s offset=192 ${W(r)}) (v128.load ${g('xg')})) (i32x4.dot_i16x8_s (v128.load8x8_s offset=200 ${W(r)}) (v128.load offset=16 ${g('xg')})))`;
    L.push(set(`i${r}`, `(i32x4.sub (v128.const i32x4 0 0 0 0) (i32x4.shl ${corr} ${i32(5)}))`));
  }
  L.push(set('h', i32(0)));
  const H = [];
  for (const r of rows) H.push(set(`s${r}`, `(v128.load8x8_s offset=192 (i32.add ${W(r)} (i32.shl ${g('h')} ${i32(3)})))`));
  H.push(set('o', `(i32.shl ${g('h')} ${i32(6)})`), set('xh', add(g('x8'), `(i32.shl ${g('h')} ${i32(7)})`)));
  for (let k = 0; k < 2; k++) {
    for (const r of rows) {
      H.push(fence());
      const base = add(W(r), g('o'));
      H.push(set('qa', `(v128.load offset=${16 * k} ${base})`), set('qb', `(v128.load offset=${32 + 16 * k} ${base})`));
      H.push(set('qh', `(v128.load offset=${128 + 16 * k} (i32.add ${W(r)} (i32.shr_u ${g('o')} ${i32(1)})))`));
      for (let t = 0; t < 4; t++) {
        const ql = g(t & 1 ? 'qb' : 'qa');
        const nib = t < 2 ? `(v128.and ${ql} ${b16(15)})` : `(v128.and (i16x8.shr_u ${ql} ${i32(4)}) ${b16(15)})`;
        const sh = 4 - 2 * t;
        const qh = g('qh');
        // bits 2t, 2t + 1 of each qh byte to bits 4, 5 by one 16-bit shift (bits crossing bytes fall outside 0x30)
        const hi = `(v128.and ${sh > 0 ? `(i16x8.shl ${qh} ${i32(sh)})` : sh < 0 ? `(i16x8.shr_u ${qh} ${i32(-sh)})` : qh} ${b16(0x30)})`;
        const x8 = `(v128.load offset=${32 * t + 16 * k} ${g('xh')})`;
        H.push(set(`i${r}`, `(i32x4.add ${g(`i${r}`)} (i32x4.dot_i16x8_s ${i8dot(x8, `(v128.or ${nib} ${hi})`, relaxed)} ${splat16(g(`s${r}`), 2 * t + k)}))`));
      }
    }
  }
  return decodeFunc({ name: 'q6_k', R, madd, bytes: 210, sums: 'xg', sumsBytes: 32, vectors: ['qa', 'qb', 'qh'], perRow: ['s'], L, H });
}

/**
 * Q4_K/Q5_K: the 8 six-bit scales (bytes 0-7) and mins (bytes 8-15) of the block at `wp`, unpacked
 * at once (ggml's get_scale_min_k4 as its utmp masks on three u32 words).
 */
export function kScaleBytes(wp) {
  const u = (o) => `(i32.load offset=${o} ${wp})`;
  const m6 = i32(0x3f3f3f3f);
  const m4 = i32(0x0f0f0f0f);
  const m2 = i32(0x03030303);
  const hi2 = (w) => `(i32.shl (i32.and (i32.shr_u ${w} ${i32(6)}) ${m2}) ${i32(4)})`;
  return `(i32x4.replace_lane 3 (i32x4.replace_lane 2 (i32x4.replace_lane 1 (i32x4.splat (i32.and ${u(4)} ${m6}))
          (i32.or (i32.and ${u(12)} ${m4}) ${hi2(u(4))}))
          (i32.and ${u(8)} ${m6}))
          (i32.or (i32.and (i32.shr_u ${u(12)} ${i32(4)}) ${m4}) ${hi2(u(8))}))`;
}

/**
 * `$qm_q4_k_k<R> (wp wq nb x8 xd x32 tab y)`: Q4_K (f16 d, f16 dmin, 12 bytes of scales and mins,
 * 128 bytes of nibbles: unit 2p the low nibbles of bytes 32p..32p+31, 2p + 1 the high ones; value
 * d·sc·q − dmin·m) against the Q8_K activation row ($x32: x's sums of 32). With `q5`,
 * `$qm_q5_k_k<R>` over Q5_K (32 bytes of fifth bits before the nibbles: bit j of byte l the fifth
 * bit of value l of unit j). Per half h: units 4h..4h+3; a unit's two 16-value pair sums added in
 * i16, times its 6-bit scale in i32; the mins: dmin·d_x · Σ m · (x's sums of 32), one dot per block.
 */
export function q4kDecode(madd, R, relaxed, q5 = false) {
  const qs = q5 ? 48 : 16;
  const rows = [...Array(R).keys()];
  const W = (r) => g(r ? 'wq' : 'wp');
  const L = [];
  for (const r of rows) {
    L.push(set('kv', kScaleBytes(W(r))));
    L.push(set(`s${r}`, `(i16x8.extend_low_i8x16_u ${g('kv')})`), set(`t${r}`, `(i8x16.shuffle ${[...Array(8).keys()].map((i) => 8 + i).join(' ')} ${[...Array(8).keys()].map((i) => 8 + i).join(' ')} ${g(`s${r}`)} ${g(`s${r}`)})`));
    const mins = `(f32x4.convert_i32x4_s (i32x4.dot_i16x8_s (i16x8.extend_high_i8x16_u ${g('kv')}) (v128.load ${g('x32')})))`;
    L.push(set(`d${r}`, `(f32x4.splat (f32.mul ${f16(W(r))} (f32.load ${g('xd')})))`));
    L.push(set(`a${r}`, madd(mins, `(f32x4.splat (f32.neg (f32.mul ${f16(add(W(r), i32(2)))} (f32.load ${g('xd')}))))`, g(`a${r}`))));
    L.push(set(`i${r}`, '(v128.const i32x4 0 0 0 0)'));
  }
  L.push(set('h', i32(0)));
  const H = [];
  H.push(set('o', `(i32.shl ${g('h')} ${i32(6)})`), set('xh', add(g('x8'), `(i32.shl ${g('h')} ${i32(7)})`)));
  for (const r of rows) {
    // this half's four unit scales in lanes 0-3
    H.push(set('sc', `(select ${g(`t${r}`)} ${g(`s${r}`)} ${g('h')})`));
    if (q5) for (const k of [0, 1]) H.push(set(`f${k}`, `(i16x8.shr_u (v128.load offset=${16 + 16 * k} ${W(r)}) (i32.shl ${g('h')} ${i32(2)}))`));
    for (let pp = 0; pp < 2; pp++) {
      H.push(fence());
      const base = add(W(r), g('o'));
      H.push(set('qa', `(v128.load offset=${qs + 32 * pp} ${base})`), set('qb', `(v128.load offset=${qs + 16 + 32 * pp} ${base})`));
      for (const hiNib of [0, 1]) {
        const u = 2 * pp + hiNib; // unit 4h + u
        const nib4 = (q) => (hiNib ? `(v128.and (i16x8.shr_u ${g(q)} ${i32(4)}) ${b16(15)})` : `(v128.and ${g(q)} ${b16(15)})`);
        // q5: bit 4h + u of each qh byte (already shifted by 4h) to bit 4
        const nib = (q, k) => (q5 ? `(v128.or ${nib4(q)} (v128.and (i16x8.shl ${g(`f${k}`)} ${i32(4 - u)}) ${b16(16)}))` : nib4(q));
        const rd = (k, q) => i8dot(`(v128.load offset=${32 * u + 16 * k} ${g('xh')})`, nib(q, k), relaxed);
        H.push(set(`i${r}`, `(i32x4.add ${g(`i${r}`)} (i32x4.dot_i16x8_s (i16x8.add ${rd(0, 'qa')} ${rd(1, 'qb')}) ${splat16(g('sc'), u)}))`));
      }
    }
  }
  return decodeFunc({
    name: q5 ? 'q5_k' : 'q4_k', R, madd, bytes: q5 ? 176 : 144, sums: 'x32', sumsBytes: 16,
    vectors: ['qa', 'qb', 'kv', 'sc', 'f0', 'f1'], perRow: ['s', 't'], L, H,
  });
}

/**
 * The function `$qm_<name>_k<R>` around a decode kernel's per-block code `L` and per-half code `H`
 * (the loop over two halves of 128 values, fenced): per row r, the f32 accumulator $a<r>, the
 * block's f32 scale $d<r> and its i32 sum $i<r> (set by L and H) with `perRow` vectors besides;
 * `sums` the x-side sums parameter ($xg or $x32, `sumsBytes` per block), `bytes` per weight block.
 */
function decodeFunc({ name, R, madd, bytes, sums, sumsBytes, vectors, perRow, L, H }) {
  const rows = [...Array(R).keys()];
  const tail = rows.map((r) => set(`a${r}`, madd(`(f32x4.convert_i32x4_s ${g(`i${r}`)})`, g(`d${r}`), g(`a${r}`))));
  return `
  (func $qm_${name}_k${R} (param $wp i32) (param $wq i32) (param $nb i32) (param $x8 i32) (param $xd i32) (param $${sums} i32) (param $tab i32) (param $y i32)
    ${vlocals([...vectors, ...DOT_LOCALS, ...rows.flatMap((r) => ['a', 'd', 'i', ...perRow].map((v) => `${v}${r}`))])} (local $b i32) (local $h i32) (local $o i32) (local $xh i32)
    (block $done (loop $blocks
      (br_if $done (i32.ge_u ${g('b')} ${g('nb')}))
${L.map((x) => '      ' + x).join('\n')}
      (loop $halves (block $fence
${H.map((x) => '        ' + x).join('\n')}
        ${set('h', add(g('h'), i32(1)))})
        (br_if $halves (i32.lt_u ${g('h')} ${i32(2)})))
      ${tail.join(' ')}
      ${set('wp', add(g('wp'), i32(bytes)))} ${R > 1 ? set('wq', add(g('wq'), i32(bytes))) : ''} ${set('x8', add(g('x8'), i32(256)))} ${set('xd', add(g('xd'), i32(4)))} ${set(sums, add(g(sums), i32(sumsBytes)))}
      ${set('b', add(g('b'), i32(1)))}
      (br $blocks)))
    ${rows.map((r) => `(f32.store offset=${4 * r} ${g('y')} ${hsum(g(`a${r}`))})`).join(' ')})`;
}

/**
 * Formats with a Q8_K decode kernel here (both builds: `i8dot` picks the instruction), each
 * `fn(madd, R, relaxed)` for R = 1, 2 weight rows per pass, and the x-side sums it takes (xkg, xk32).
 */
export const DECODE = {
  q6_k: { fn: q6kDecode, sums: 'xkg' },
  q4_k: { fn: (madd, R, relaxed) => q4kDecode(madd, R, relaxed), sums: 'xk32' },
  q5_k: { fn: (madd, R, relaxed) => q4kDecode(madd, R, relaxed, true), sums: 'xk32' },
};
