// Prefill (M >= 4) kernels of the quantized matrix product for the K-quants (Q4_K, Q5_K, Q6_K) on
// the activation rounded as llama.cpp's Q8_K: one f32 scale per 256 values, laid out in tiles of 4
// rows (not a kernel module itself: qmatmul.wat.mjs pastes these functions in and qm_quant_xk
// writes the tiles). Per weight row, each super-block is unpacked once per tile and meets the
// tile's 4 rows in relaxed i8 x i7 dots (without relaxed SIMD, qdecode.mjs's `i8dot` substitute); the sub-block scales multiply in i32, so that a row's whole
// super-block is one exact integer sum: the 4 rows' sums are reduced into one i32x4 (lane r = row
// r) once per block, not once per 32 values as with a scale per 32 (qtile.mjs), and one f32
// multiply-add applies d_w · d_x to the four rows. Rows past the last full tile take the two-row
// decode kernels of qdecode.mjs on the same rounding. Loop order as qtile.mjs: tile of rows outer,
// this task's weight rows inner, so that the tile stays in L1.
//
// Tile layout (XKT, per group of 4 rows, per super-block of 256, KTILE_BYTES = 1232):
//   [0, 1024)     the 4 rows' i8 values (row r at 256r)
//   [1024, 1040)  f32 scale d_x of each row
//   [1040, 1168)  i16 sums of each 16 values (row r at 1040 + 32r)
//   [1168, 1232)  i16 sums of each 32 values (row r at 1168 + 16r)
// Bounds as qdecode.mjs: Q6_K's pair sums ≤ 2·63·127 < 2^15; Q4_K/Q5_K's two halves of a unit
// added in i16 ≤ 4·31·127 < 2^15; a block's i32 sum per row < 2^27.

import { DOT_LOCALS, i8dot, kScaleBytes } from './qdecode.mjs';

export const KTILE_BYTES = 1232;
/** Formats with a Q8_K tiled kernel here (both builds). */
export const KTILE_TYPES = ['q4_k', 'q5_k', 'q6_k'];

const g = (n) => `(local.get $${n})`;
const set = (n, v) => `(local.set $${n} ${v})`;
const i32 = (n) => `(i32.const ${n})`;
const add = (a, b) => `(i32.add ${a} ${b})`;
const b16 = (c) => `(v128.const i8x16 ${Array(16).fill(c).join(' ')})`;
const lanes32 = (lanes) => lanes.flatMap((l) => [0, 1, 2, 3].map((b) => 4 * l + b)).join(' ');
const splat16 = (v, l) => `(i8x16.shuffle ${Array(8).fill(`${2 * l} ${2 * l + 1}`).join(' ')} ${v} ${v})`;
const f16 = (addr) => `(f32.load (i32.add ${g('tab')} (i32.shl (i32.load16_u ${addr}) ${i32(2)})))`;
const vlocals = (names) => names.map((n) => `(local $${n} v128)`).join(' ');
/** Lane r: the sum of the four i32 lanes of `v(r)`, r = 0..3. */
const reduce4 = (v) => {
  const t0 = `(i32x4.add (i8x16.shuffle ${lanes32([0, 4, 1, 5])} ${v(0)} ${v(1)}) (i8x16.shuffle ${lanes32([2, 6, 3, 7])} ${v(0)} ${v(1)}))`;
  const t1 = `(i32x4.add (i8x16.shuffle ${lanes32([0, 4, 1, 5])} ${v(2)} ${v(3)}) (i8x16.shuffle ${lanes32([2, 6, 3, 7])} ${v(2)} ${v(3)}))`;
  return [set('t0', t0), set('t1', t1),
    set('t0', `(i32x4.add (i8x16.shuffle ${lanes32([0, 1, 4, 5])} ${g('t0')} ${g('t1')}) (i8x16.shuffle ${lanes32([2, 3, 6, 7])} ${g('t0')} ${g('t1')}))`)];
};
/** A never-taken branch that keeps V8 from hoisting the loads after it (see qdecode.mjs). */
let fences = 0;
const fence = () => `(br_if $fence (i32.eq ${g('nb')} ${i32(-1 - fences++)}))`;

/** `$qm_<type>_kt (wp nb xt tab y ldy)`: the weight row at $wp against the 4 rows of the tile at $xt; y[r] at $y + r·ldy. */
function ktileKernel(type, madd, relaxed) {
  const q6 = type === 'q6_k';
  const q5 = type === 'q5_k';
  const bytes = { q4_k: 144, q5_k: 176, q6_k: 210 }[type];
  const rows = [0, 1, 2, 3];
  const xr = (r, o) => `(v128.load offset=${256 * r + o} ${g('xh')})`;
  const L = [];
  const H = [];
  if (q6) {
    L.push(set('dv', `(f32x4.mul (f32x4.splat ${f16(add(g('wp'), i32(208)))}) (v128.load offset=1024 ${g('xt')}))`));
    L.push(set('s0', `(v128.load8x8_s offset=192 ${g('wp')})`), set('s1', `(v128.load8x8_s offset=200 ${g('wp')})`));
    for (const r of rows) {
      const corr = `(i32x4.add (i32x4.dot_i16x8_s ${g('s0')} (v128.load offset=${1040 + 32 * r} ${g('xt')})) (i32x4.dot_i16x8_s ${g('s1')} (v128.load offset=${1056 + 32 * r} ${g('xt')})))`;
      L.push(set(`u${r}`, `(i32x4.sub (v128.const i32x4 0 0 0 0) (i32x4.shl ${corr} ${i32(5)}))`));
    }
    H.push(set('sc', `(v128.load8x8_s offset=192 (i32.add ${g('wp')} (i32.shl ${g('h')} ${i32(3)})))`));
    H.push(set('o', `(i32.add ${g('wp')} (i32.shl ${g('h')} ${i32(6)}))`), set('xh', add(g('xt'), `(i32.shl ${g('h')} ${i32(7)})`)));
    H.push(set('qp', `(i32.add ${g('wp')} (i32.shl ${g('h')} ${i32(5)}))`));
    for (let k = 0; k < 2; k++) {
      H.push(fence());
      H.push(set('qa', `(v128.load offset=${16 * k} ${g('o')})`), set('qb', `(v128.load offset=${32 + 16 * k} ${g('o')})`), set('qh', `(v128.load offset=${128 + 16 * k} ${g('qp')})`));
      for (let t = 0; t < 4; t++) {
        const ql = g(t & 1 ? 'qb' : 'qa');
        const nib = t < 2 ? `(v128.and ${ql} ${b16(15)})` : `(v128.and (i16x8.shr_u ${ql} ${i32(4)}) ${b16(15)})`;
        const sh = 4 - 2 * t;
        const hi = `(v128.and ${sh > 0 ? `(i16x8.shl ${g('qh')} ${i32(sh)})` : sh < 0 ? `(i16x8.shr_u ${g('qh')} ${i32(-sh)})` : g('qh')} ${b16(0x30)})`;
        H.push(set('w0', `(v128.or ${nib} ${hi})`), set('sp', splat16(g('sc'), 2 * t + k)));
        for (const r of rows) H.push(set(`u${r}`, `(i32x4.add ${g(`u${r}`)} (i32x4.dot_i16x8_s ${i8dot(xr(r, 32 * t + 16 * k), g('w0'), relaxed)} ${g('sp')}))`));
      }
    }
  } else {
    const qs = q5 ? 48 : 16;
    L.push(set('kv', kScaleBytes(g('wp'))), set('s0', `(i16x8.extend_low_i8x16_u ${g('kv')})`));
    L.push(set('s1', `(i8x16.shuffle ${[...Array(8).keys()].map((i) => 8 + i).join(' ')} ${[...Array(8).keys()].map((i) => 8 + i).join(' ')} ${g('s0')} ${g('s0')})`));
    L.push(set('dv', `(v128.load offset=1024 ${g('xt')})`));
    // −dmin·d_x · Σ m · (sums of 32), the four rows at once
    for (const r of rows) L.push(set(`u${r}`, `(i32x4.dot_i16x8_s (i16x8.extend_high_i8x16_u ${g('kv')}) (v128.load offset=${1168 + 16 * r} ${g('xt')}))`));
    L.push(...reduce4((r) => g(`u${r}`)));
    L.push(set('acc', madd(`(f32x4.convert_i32x4_s ${g('t0')})`, `(f32x4.mul (f32x4.splat (f32.neg ${f16(add(g('wp'), i32(2)))})) ${g('dv')})`, g('acc'))));
    L.push(set('dv', `(f32x4.mul (f32x4.splat ${f16(g('wp'))}) ${g('dv')})`));
    for (const r of rows) L.push(set(`u${r}`, '(v128.const i32x4 0 0 0 0)'));
    H.push(set('sc', `(select ${g('s1')} ${g('s0')} ${g('h')})`));
    H.push(set('o', `(i32.add ${g('wp')} (i32.shl ${g('h')} ${i32(6)}))`), set('xh', add(g('xt'), `(i32.shl ${g('h')} ${i32(7)})`)));
    if (q5) for (const k of [0, 1]) H.push(set(`f${k}`, `(i16x8.shr_u (v128.load offset=${16 + 16 * k} ${g('wp')}) (i32.shl ${g('h')} ${i32(2)}))`));
    for (let pp = 0; pp < 2; pp++) {
      H.push(set('qa', `(v128.load offset=${qs + 32 * pp} ${g('o')})`), set('qb', `(v128.load offset=${qs + 16 + 32 * pp} ${g('o')})`));
      for (const hiNib of [0, 1]) {
        H.push(fence());
        const u = 2 * pp + hiNib;
        const nib4 = (q) => (hiNib ? `(v128.and (i16x8.shr_u ${g(q)} ${i32(4)}) ${b16(15)})` : `(v128.and ${g(q)} ${b16(15)})`);
        const nib = (q, k) => (q5 ? `(v128.or ${nib4(q)} (v128.and (i16x8.shl ${g(`f${k}`)} ${i32(4 - u)}) ${b16(16)}))` : nib4(q));
        H.push(set('w0', nib('qa', 0)), set('w1', nib('qb', 1)), set('sp', splat16(g('sc'), u)));
        const rd = (r, k) => i8dot(xr(r, 32 * u + 16 * k), g(`w${k}`), relaxed);
        for (const r of rows) H.push(set(`u${r}`, `(i32x4.add ${g(`u${r}`)} (i32x4.dot_i16x8_s (i16x8.add ${rd(r, 0)} ${rd(r, 1)}) ${g('sp')}))`));
      }
    }
  }
  H.push(set('h', add(g('h'), i32(1))));
  const tail = [...reduce4((r) => g(`u${r}`)), set('acc', madd(`(f32x4.convert_i32x4_s ${g('t0')})`, g('dv'), g('acc')))];
  return `
  (func $qm_${type}_kt (param $wp i32) (param $nb i32) (param $xt i32) (param $tab i32) (param $y i32) (param $ldy i32)
    ${vlocals(['acc', 'dv', 'kv', 's0', 's1', 'sc', 'sp', 'qa', 'qb', 'qh', 'w0', 'w1', 'f0', 'f1', 't0', 't1', 'u0', 'u1', 'u2', 'u3', ...DOT_LOCALS])}
    (local $b i32) (local $h i32) (local $o i32) (local $qp i32) (local $xh i32)
    (block $done (loop $blocks
      (br_if $done (i32.ge_u ${g('b')} ${g('nb')}))
${L.map((x) => '      ' + x).join('\n')}
      ${set('h', i32(0))}
      (loop $halves (block $fence
${H.map((x) => '        ' + x).join('\n')})
        (br_if $halves (i32.lt_u ${g('h')} ${i32(2)})))
${tail.map((x) => '      ' + x).join('\n')}
      ${set('wp', add(g('wp'), i32(bytes)))} ${set('xt', add(g('xt'), i32(KTILE_BYTES)))}
      ${set('b', add(g('b'), i32(1)))}
      (br $blocks)))
    ${rows.map((r) => `(f32.store (i32.add ${g('y')} (i32.mul ${g('ldy')} ${i32(r)})) (f32x4.extract_lane ${r} ${g('acc')}))`).join(' ')})`;
}

/**
 * `$qm_<type>_gemm (params task nTasks)` of a K-quant: this task's rows of W
 * against the activation's full Q8_K tiles, then the rows past the last tile through the decode
 * kernels `$qm_<type>_k2`/`_k1` (qdecode.mjs; `sums` the x-side sums they take, xkg or xk32).
 */
export function ktileEntry(type, P, sums, madd, relaxed) {
  const ld = (f) => `(i32.load offset=${P[f]} ${g('p')})`;
  const yAt = (m) => `(i32.add ${g('y')} (i32.shl (i32.add (i32.mul ${m} ${g('N')}) ${g('n')}) ${i32(2)}))`;
  const dcall = (R) => `(call $qm_${type}_k${R} ${g('wp')} (i32.add ${g('wp')} ${g('rb')}) ${g('nb')} (i32.add ${g('xk8')} (i32.mul ${g('m')} ${g('K')}))
              (i32.add ${g('xkd')} (i32.shl (i32.mul ${g('m')} ${g('nb')}) ${i32(2)})) (i32.add ${g('xks')} (i32.mul ${g('m')} (i32.shr_u ${g('K')} ${i32(sums === 'xkg' ? 3 : 4)}))) ${g('tab')} ${yAt(g('m'))})`;
  const wpAt = set('wp', `(i32.add ${g('w')} (i32.mul (i32.sub ${g('n')} ${g('r0')}) ${g('rb')}))`);
  return `${ktileKernel(type, madd, relaxed)}
  (func $qm_${type}_gemm (param $p i32) (param $task i32) (param $nTasks i32)
    (local $M i32) (local $N i32) (local $K i32) (local $M4 i32) (local $n i32) (local $n0 i32) (local $end i32) (local $m i32) (local $nb i32) (local $wp i32)
    (local $w i32) (local $rb i32) (local $r0 i32) (local $r1 i32) (local $xkt i32) (local $gs i32) (local $tab i32) (local $y i32) (local $ldy i32)
    (local $xk8 i32) (local $xkd i32) (local $xks i32)
    ${set('r0', ld('rowBeg'))} ${set('r1', ld('rowEnd'))} ${set('M', ld('M'))} ${set('N', ld('N'))} ${set('K', ld('K'))}
    ${set('w', ld('w'))} ${set('rb', ld('rowBytes'))} ${set('xkt', ld('xkt'))} ${set('tab', ld('tab'))} ${set('y', ld('y'))}
    ${set('xk8', ld('xk8'))} ${set('xkd', ld('xkd'))} ${set('xks', ld(sums))}
    ${set('M4', `(i32.and ${g('M')} ${i32(-4)})`)} ${set('nb', `(i32.shr_u ${g('K')} ${i32(8)})`)} ${set('ldy', `(i32.shl ${g('N')} ${i32(2)})`)}
    ${set('gs', `(i32.mul ${g('nb')} ${i32(KTILE_BYTES)})`)}
    ${set('n0', `(i32.add ${g('r0')} (i32.div_u (i32.mul (i32.sub ${g('r1')} ${g('r0')}) ${g('task')}) ${g('nTasks')}))`)}
    ${set('end', `(i32.add ${g('r0')} (i32.div_u (i32.mul (i32.sub ${g('r1')} ${g('r0')}) (i32.add ${g('task')} ${i32(1)})) ${g('nTasks')}))`)}
    (block $tiles_done (loop $tiles
      (br_if $tiles_done (i32.ge_u ${g('m')} ${g('M4')}))
      ${set('n', g('n0'))}
      (block $rows_done (loop $rows
        (br_if $rows_done (i32.ge_u ${g('n')} ${g('end')}))
        ${wpAt}
        (call $qm_${type}_kt ${g('wp')} ${g('nb')} (i32.add ${g('xkt')} (i32.mul ${g('gs')} (i32.shr_u ${g('m')} ${i32(2)}))) ${g('tab')} ${yAt(g('m'))} ${g('ldy')})
        ${set('n', `(i32.add ${g('n')} ${i32(1)})`)}
        (br $rows)))
      ${set('m', `(i32.add ${g('m')} ${i32(4)})`)}
      (br $tiles)))
    (block $single_done (loop $single
      (br_if $single_done (i32.ge_u ${g('m')} ${g('M')}))
      ${set('n', g('n0'))}
      (block $pairs_done (loop $pairs
        (br_if $pairs_done (i32.ge_u ${g('n')} ${g('end')}))
        ${wpAt}
        (if (i32.lt_u (i32.add ${g('n')} ${i32(1)}) ${g('end')})
          (then ${dcall(2)} ${set('n', `(i32.add ${g('n')} ${i32(2)})`)})
          (else ${dcall(1)} ${set('n', `(i32.add ${g('n')} ${i32(1)})`)}))
        (br $pairs)))
      ${set('m', `(i32.add ${g('m')} ${i32(1)})`)}
      (br $single))))`;
}
