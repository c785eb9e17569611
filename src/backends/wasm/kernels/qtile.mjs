// Prefill (M >= 4) kernels of the quantized matrix product for Q8_0 and Q4_0: a blocked GEMM over
// the activation laid out in tiles of 4 rows (not a kernel module itself: qmatmul.wat.mjs pastes
// these functions in and qm_quant_x writes the tiles; the K-quants' GEMM is qktile.mjs, on tiles
// with one scale per 256 values). Per weight row, 4·RG activation rows go through the row's blocks
// in one pass: each 32-value unit of the weight is unpacked once and meets every row of the tile in
// integer dot products; the four rows' i32 sums are reduced into one i32x4 (lane r = row r, two
// rounds of interleaves), so that the scales, the offsets and the f32 accumulation cost one vector
// operation per unit for four rows instead of one per row. RG = 2 for Q4_0 (Q8_0's i16 values
// leave no registers for a second group). Loop order: tile of rows outer, this task's weight rows
// inner, so the tile (RG · K · 1.5 bytes, Q8_0 3.5) stays in L1 and the weight streams once per
// tile from L2.
//
// Tile layout (XT, per group of 4 rows, per 32-value unit u, UNIT_BYTES = 192):
//   [0, 128)   the 4 rows' i8 values (row r at 32r)
//   [128, 144) f32 scale d_x of each row
//   [144, 160) i32 Σq of each row's unit
//   [160, 176) f32 d_x · Σq of each row
//   [176, 192) i16 pairs: the sums of the unit's two 16-value halves, per row
// XT16 (Q8_0 only, UNIT16_BYTES = 256): the 4 rows' values as i16 (row r at 64r).
// Formats (layouts in qmatmul.wat.mjs): Q8_0 on i32x4.dot_i16x8_s; Q4_0 on the relaxed i8 x i7
// dot with the nibbles as stored (0..15), its −8 taken off after the reduction (8·Σq), so one f32
// multiply-add per unit and tile remains. In the plain-SIMD build Q4_0 and the K-quants run their
// row kernels.

export const UNIT_BYTES = 192;
export const UNIT16_BYTES = 256;
/** Formats with a `_gemm` entry (Q4_K, Q5_K, Q6_K's tiled kernels are in qktile.mjs). */
export const TILE_TYPES = ['q8_0', 'q4_0', 'q4_k', 'q5_k', 'q6_k'];
/** Formats whose tiled kernel needs the relaxed i8 dot. */
const RELAXED_ONLY = new Set(['q4_0', 'q4_k', 'q5_k', 'q6_k']);
const BLOCK = { q8_0: { bytes: 34, units: 1 }, q4_0: { bytes: 18, units: 1 } };

const g = (n) => `(local.get $${n})`;
const set = (n, v) => `(local.set $${n} ${v})`;
const i32 = (n) => `(i32.const ${n})`;
const b16 = (c) => `(v128.const i8x16 ${Array(16).fill(c).join(' ')})`;
const lanes32 = (lanes) => lanes.flatMap((l) => [0, 1, 2, 3].map((b) => 4 * l + b)).join(' ');
const f16 = (addr) => `(f32.load (i32.add ${g('tab')} (i32.shl (i32.load16_u ${addr}) ${i32(2)})))`;

/** Lane r of the result: the sum of the four i32 lanes of $u<r>. */
const reduce = () => [
  set('t0', `(i32x4.add (i8x16.shuffle ${lanes32([0, 4, 1, 5])} ${g('u0')} ${g('u1')}) (i8x16.shuffle ${lanes32([2, 6, 3, 7])} ${g('u0')} ${g('u1')}))`),
  set('t1', `(i32x4.add (i8x16.shuffle ${lanes32([0, 4, 1, 5])} ${g('u2')} ${g('u3')}) (i8x16.shuffle ${lanes32([2, 6, 3, 7])} ${g('u2')} ${g('u3')}))`),
  set('s', `(i32x4.add (i8x16.shuffle ${lanes32([0, 1, 4, 5])} ${g('t0')} ${g('t1')}) (i8x16.shuffle ${lanes32([2, 3, 6, 7])} ${g('t0')} ${g('t1')}))`),
];

/** Unit j's weight values into $w0, $w1 (i8 16 each, as stored) or $w0..$w3 (Q8_0, i16). */
function decode(type, j) {
  const L = [];
  const nibLo = (v) => `(v128.and ${v} ${b16(15)})`;
  const nibHi = (v) => `(v128.and (i16x8.shr_u ${v} ${i32(4)}) ${b16(15)})`;
  if (type === 'q8_0') {
    L.push(set('t0', `(v128.load offset=2 ${g('wp')})`), set('w0', `(i16x8.extend_low_i8x16_s ${g('t0')})`), set('w1', `(i16x8.extend_high_i8x16_s ${g('t0')})`));
    L.push(set('t0', `(v128.load offset=18 ${g('wp')})`), set('w2', `(i16x8.extend_low_i8x16_s ${g('t0')})`), set('w3', `(i16x8.extend_high_i8x16_s ${g('t0')})`));
  } else if (type === 'q4_0') {
    L.push(set('t0', `(v128.load offset=2 ${g('wp')})`), set('w0', nibLo(g('t0'))), set('w1', nibHi(g('t0'))));
  }
  return L;
}

/** Row r's i32x4 partial sums of unit j of the tile at $x<gi> (and $y<gi> for Q8_0's i16 values). */
function rowDot(type, j, gi, r) {
  const x8 = (k) => `(v128.load offset=${192 * j + 32 * r + 16 * k} ${g(`x${gi}`)})`;
  const rd = (k) => `(i16x8.relaxed_dot_i8x16_i7x16_s ${x8(k)} ${g(`w${k}`)})`;
  if (type === 'q8_0') {
    const dot = (k) => `(i32x4.dot_i16x8_s ${g(`w${k}`)} (v128.load offset=${256 * j + 64 * r + 16 * k} ${g(`z${gi}`)}))`;
    return `(i32x4.add (i32x4.add ${dot(0)} ${dot(1)}) (i32x4.add ${dot(2)} ${dot(3)}))`;
  }
  return `(i32x4.extadd_pairwise_i16x8_s (i16x8.add ${rd(0)} ${rd(1)}))`; // q4_0
}

/**
 * `$qm_<type>_t<rg> (wp nb x z tab y ldy gs gs16)`: the weight row at $wp (nb blocks) against the
 * 4·rg rows of the tiles at $x (XT) and $z (XT16; group strides gs, gs16 bytes); y [4·rg rows] at
 * $y, rows ldy bytes apart.
 */
function tileKernel(type, rg, madd) {
  const F = BLOCK[type];
  const groups = [...Array(rg).keys()];
  const L = [set('dv', `(f32x4.splat ${f16(g('wp'))})`)];
  for (let j = 0; j < F.units; j++) {
    L.push(...decode(type, j));
    for (const gi of groups) {
      for (let r = 0; r < 4; r++) L.push(set(`u${r}`, rowDot(type, j, gi, r)));
      L.push(...reduce());
      const meta = (o) => `(v128.load offset=${192 * j + o} ${g(`x${gi}`)})`;
      if (type === 'q4_0') L.push(set('s', `(i32x4.sub ${g('s')} (i32x4.shl ${meta(144)} ${i32(3)}))`));
      L.push(set(`acc${gi}`, madd(`(f32x4.convert_i32x4_s ${g('s')})`, `(f32x4.mul ${g('dv')} ${meta(128)})`, g(`acc${gi}`))));
    }
  }
  const stores = groups.flatMap((gi) => [0, 1, 2, 3].map((r) =>
    `(f32.store (i32.add ${g('y')} (i32.mul ${g('ldy')} ${i32(4 * gi + r)})) (f32x4.extract_lane ${r} ${g(`acc${gi}`)}))`));
  const v = (names) => names.map((n) => `(local $${n} v128)`).join(' ');
  const advance = [set('wp', `(i32.add ${g('wp')} ${i32(F.bytes)})`), ...groups.flatMap((gi) => [
    set(`x${gi}`, `(i32.add ${g(`x${gi}`)} ${i32(192 * F.units)})`), set(`z${gi}`, `(i32.add ${g(`z${gi}`)} ${i32(256 * F.units)})`)])];
  return `
  (func $qm_${type}_t${rg} (param $wp i32) (param $nb i32) (param $x i32) (param $z i32) (param $tab i32) (param $y i32) (param $ldy i32) (param $gs i32) (param $gs16 i32)
    ${v(['w0', 'w1', 'w2', 'w3', 'u0', 'u1', 'u2', 'u3', 't0', 't1', 's', 'dv', ...groups.map((gi) => `acc${gi}`)])}
    ${groups.map((gi) => `(local $x${gi} i32) (local $z${gi} i32)`).join(' ')} (local $i i32)
    ${groups.map((gi) => `${set(`x${gi}`, `(i32.add ${g('x')} (i32.mul ${g('gs')} ${i32(gi)}))`)} ${set(`z${gi}`, `(i32.add ${g('z')} (i32.mul ${g('gs16')} ${i32(gi)}))`)}`).join(' ')}
    (block $done (loop $blocks
      (br_if $done (i32.ge_u ${g('i')} ${g('nb')}))
${L.map((x) => '        ' + x).join('\n')}
      ${advance.join(' ')}
      ${set('i', `(i32.add ${g('i')} ${i32(1)})`)}
      (br $blocks)))
    ${stores.join('\n    ')})`;
}

/**
 * `$qm_<type>_gemm (params task nTasks)`: this task's rows of W (P.rowBeg..rowEnd split over
 * tasks, as qm_<type>) against the activation's full tiles, 4·RG rows at a time (a last group of 4
 * alone), then the rows past the last tile singly through the row kernel `$qm_<type>_r1`.
 * `P` the parameter block's offsets, `values` the format's values per block. Without a tiled
 * kernel in this build (`relaxed` false for the i8 formats) it is `$qm_<type>` itself.
 */
export function tileEntry(type, P, values, relaxed, madd) {
  if (!relaxed && RELAXED_ONLY.has(type)) {
    return `
  (func $qm_${type}_gemm (param $p i32) (param $task i32) (param $nTasks i32) (call $qm_${type} ${g('p')} ${g('task')} ${g('nTasks')}))`;
  }
  const rg = type === 'q4_0' ? 2 : 1;
  const ld = (f) => `(i32.load offset=${P[f]} ${g('p')})`;
  const tile = (k, m) => `(call $qm_${type}_t${k} ${g('wp')} ${g('nb')} (i32.add ${g('xt')} (i32.mul ${g('gs')} (i32.shr_u ${m} ${i32(2)})))
            (i32.add ${g('xt16')} (i32.mul ${g('gs16')} (i32.shr_u ${m} ${i32(2)}))) ${g('tab')}
            (i32.add ${g('y')} (i32.shl (i32.add (i32.mul ${m} ${g('N')}) ${g('n')}) ${i32(2)})) ${g('ldy')} ${g('gs')} ${g('gs16')})`;
  const rows = (body) => `${set('n', g('n0'))}
      (block $rows_done (loop $rows
        (br_if $rows_done (i32.ge_u ${g('n')} ${g('end')}))
        ${set('wp', `(i32.add ${g('w')} (i32.mul (i32.sub ${g('n')} ${g('r0')}) ${g('rb')}))`)}
        ${body}
        ${set('n', `(i32.add ${g('n')} ${i32(1)})`)}
        (br $rows)))`;
  const single = `(call $qm_${type}_r1 ${g('wp')} ${g('nb')} (i32.add ${g('xq')} (i32.mul ${g('m')} ${g('xrs')})) ${g('xrs')}
            (i32.add ${g('xd')} (i32.mul ${g('m')} ${g('drs')})) ${g('drs')} (i32.add ${g('xs')} (i32.mul ${g('m')} ${g('drs')})) ${g('tab')}
            (i32.add ${g('y')} (i32.shl (i32.add (i32.mul ${g('m')} ${g('N')}) ${g('n')}) ${i32(2)})) ${g('ldy')}
            (i32.add ${g('xq8')} (i32.mul ${g('m')} ${g('K')})) (i32.add ${g('xp')} (i32.mul ${g('m')} ${g('K')})) (i32.add ${g('xm')} (i32.mul ${g('m')} (i32.shr_u ${g('K')} ${i32(1)}))))`;
  return `${tileKernel(type, rg, madd)}${rg > 1 ? tileKernel(type, 1, madd) : ''}
  (func $qm_${type}_gemm (param $p i32) (param $task i32) (param $nTasks i32)
    (local $M i32) (local $N i32) (local $K i32) (local $M4 i32) (local $n i32) (local $n0 i32) (local $end i32) (local $m i32) (local $nb i32) (local $wp i32)
    (local $w i32) (local $rb i32) (local $r0 i32) (local $r1 i32) (local $xt i32) (local $xt16 i32) (local $gs i32) (local $gs16 i32) (local $tab i32) (local $y i32) (local $ldy i32)
    (local $xq i32) (local $xq8 i32) (local $xd i32) (local $xs i32) (local $xp i32) (local $xm i32) (local $xrs i32) (local $drs i32)
    ${set('r0', ld('rowBeg'))} ${set('r1', ld('rowEnd'))} ${set('M', ld('M'))} ${set('N', ld('N'))} ${set('K', ld('K'))}
    ${set('w', ld('w'))} ${set('rb', ld('rowBytes'))} ${set('xt', ld('xt'))} ${set('xt16', ld('xt16'))} ${set('tab', ld('tab'))} ${set('y', ld('y'))}
    ${set('xq', ld('xq'))} ${set('xq8', ld('xq8'))} ${set('xd', ld('xd'))} ${set('xs', ld('xs'))} ${set('xp', ld('xp'))} ${set('xm', ld('xm'))}
    ${set('M4', `(i32.and ${g('M')} ${i32(-4)})`)} ${set('nb', `(i32.div_u ${g('K')} ${i32(values)})`)} ${set('ldy', `(i32.shl ${g('N')} ${i32(2)})`)}
    ${set('gs', `(i32.mul (i32.shr_u ${g('K')} ${i32(5)}) ${i32(UNIT_BYTES)})`)} ${set('gs16', `(i32.mul (i32.shr_u ${g('K')} ${i32(5)}) ${i32(UNIT16_BYTES)})`)}
    ${set('xrs', `(i32.shl ${g('K')} ${i32(1)})`)} ${set('drs', `(i32.shl (i32.shr_u ${g('K')} ${i32(5)}) ${i32(2)})`)}
    ${set('n0', `(i32.add ${g('r0')} (i32.div_u (i32.mul (i32.sub ${g('r1')} ${g('r0')}) ${g('task')}) ${g('nTasks')}))`)}
    ${set('end', `(i32.add ${g('r0')} (i32.div_u (i32.mul (i32.sub ${g('r1')} ${g('r0')}) (i32.add ${g('task')} ${i32(1)})) ${g('nTasks')}))`)}
    (block $tiles_done (loop $tiles
      (br_if $tiles_done (i32.gt_u (i32.add ${g('m')} ${i32(4 * rg)}) ${g('M4')}))
      ${rows(tile(rg, g('m')))}
      ${set('m', `(i32.add ${g('m')} ${i32(4 * rg)})`)}
      (br $tiles)))
    ${rg > 1 ? `(if (i32.lt_u ${g('m')} ${g('M4')}) (then
      ${rows(tile(1, g('m')))}
      ${set('m', `(i32.add ${g('m')} ${i32(4)})`)}))` : ''}
    (block $single_done (loop $single
      (br_if $single_done (i32.ge_u ${g('m')} ${g('M')}))
      ${rows(single)}
      ${set('m', `(i32.add ${g('m')} ${i32(1)})`)}
      (br $single))))`;
}
