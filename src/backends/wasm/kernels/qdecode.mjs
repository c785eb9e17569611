// Decode kernels of the quantized matrix product (one activation row against one weight row),
// for formats whose general kernel in qmatmul.wat.mjs spends most of its work on scales rather than
// on the dot products (not a kernel module itself: qmatmul.wat.mjs pastes these functions in).
// The activation is the one qm_quant_x writes: i8 values (x8), an f32 scale per 32 values (d) and
// the i16 sum of each 16 values (xg).
//
// Q6_K, per super-block of 256 (ggml-common.h: ql [128], qh [64], 16 i8 scales, f16 d):
// - the 6-bit values are rebuilt per 16 with one 16-bit shift and one mask for the two high bits
//   (bits that cross into the neighbouring byte fall outside the mask), and meet x in the relaxed
//   i8 x i7 dot (values 0..63 as stored);
// - each 16-value scale multiplies its pair sums in i32 (i32x4.dot_i16x8_s against the scale
//   splat from the block's scales, sign-extended once per block);
// - the −32 of every value comes off once per block: scales · x's 16-value sums (two
//   i32x4.dot_i16x8_s give the eight units' corrections);
// - the four units of a half block are reduced to one i32x4 (one lane per unit) by two rounds of
//   interleaves, so that x's four unit scales multiply as one f32x4: one conversion and one fused
//   multiply-add per 128 values instead of one per unit.
// Bounds: a pair sum is at most 2·63·127 < 2^15; a unit's sum at most 4·2·16002·128 < 2^31.

const g = (n) => `(local.get $${n})`;
const set = (n, v) => `(local.set $${n} ${v})`;
const i32 = (n) => `(i32.const ${n})`;
const b16 = (c) => `(v128.const i8x16 ${Array(16).fill(c).join(' ')})`;
/** i8x16.shuffle byte indices taking i32 lanes `lanes` (0-3 of a, 4-7 of b). */
const lanes32 = (lanes) => lanes.flatMap((l) => [0, 1, 2, 3].map((b) => 4 * l + b)).join(' ');
/** i16 lane `l` of `v` in every lane. */
const splat16 = (v, l) => `(i8x16.shuffle ${Array(8).fill(`${2 * l} ${2 * l + 1}`).join(' ')} ${v} ${v})`;

/** After reduce4Pre: the lane sums of locals $u0..$u3 as one i32x4 (lane i: Σ lanes of $ui). */
function reduce4() {
  return `(i32x4.add (i8x16.shuffle ${lanes32([0, 1, 4, 5])} ${g('t0')} ${g('t1')}) (i8x16.shuffle ${lanes32([2, 3, 6, 7])} ${g('t0')} ${g('t1')}))`;
}
/** First round of the four-vector reduction: $t0 = pairs of $u0, $u1 interleaved and added; $t1 of $u2, $u3. */
function reduce4Pre() {
  return [
    set('t0', `(i32x4.add (i8x16.shuffle ${lanes32([0, 4, 1, 5])} ${g('u0')} ${g('u1')}) (i8x16.shuffle ${lanes32([2, 6, 3, 7])} ${g('u0')} ${g('u1')}))`),
    set('t1', `(i32x4.add (i8x16.shuffle ${lanes32([0, 4, 1, 5])} ${g('u2')} ${g('u3')}) (i8x16.shuffle ${lanes32([2, 6, 3, 7])} ${g('u2')} ${g('u3')}))`),
  ];
}

/**
 * `$qm_q6_k_d1 (wp nb x8 d tab y xg)`: y[0] = row at $wp (nb blocks) · the activation row.
 * $x8 i8 [K], $d f32 [K/32], $xg i16 [K/16]; $tab the f16 -> f32 table.
 */
export function q6kDecode(madd) {
  const L = [];
  L.push(set('dv', `(f32x4.splat (f32.load (i32.add ${g('tab')} (i32.shl (i32.load16_u offset=208 ${g('wp')}) ${i32(2)}))))`));
  L.push(set('sv', `(v128.load offset=192 ${g('wp')})`));
  L.push(set('s0', `(i16x8.extend_low_i8x16_s ${g('sv')})`), set('s1', `(i16x8.extend_high_i8x16_s ${g('sv')})`));
  for (let h = 0; h < 2; h++) {
    const s = g(`s${h}`);
    // per 16-byte half k: ql of units 4h, 4h + 1 (their high nibbles: 4h + 2, 4h + 3) and their qh
    for (let k = 0; k < 2; k++) {
      L.push(set('qa', `(v128.load offset=${64 * h + 16 * k} ${g('wp')})`), set('qb', `(v128.load offset=${64 * h + 32 + 16 * k} ${g('wp')})`));
      L.push(set('qh', `(v128.load offset=${128 + 32 * h + 16 * k} ${g('wp')})`));
      for (let t = 0; t < 4; t++) {
        const j = 4 * h + t;
        const ql = g(t & 1 ? 'qb' : 'qa');
        const nib = t < 2 ? `(v128.and ${ql} ${b16(15)})` : `(v128.and (i16x8.shr_u ${ql} ${i32(4)}) ${b16(15)})`;
        const sh = 4 - 2 * t;
        const qh = g('qh');
        const hi = `(v128.and ${sh > 0 ? `(i16x8.shl ${qh} ${i32(sh)})` : sh < 0 ? `(i16x8.shr_u ${qh} ${i32(-sh)})` : qh} ${b16(0x30)})`;
        const x8 = `(v128.load offset=${32 * j + 16 * k} ${g('x8')})`;
        const dot = `(i32x4.dot_i16x8_s (i16x8.relaxed_dot_i8x16_i7x16_s ${x8} (v128.or ${nib} ${hi})) ${splat16(s, 2 * t + k)})`;
        L.push(set(`u${t}`, k ? `(i32x4.add ${g(`u${t}`)} ${dot})` : dot));
      }
    }
    L.push(...reduce4Pre());
    const sums = reduce4();
    // −32 · Σ scale · (sum of 16 x) per unit: lane i pairs the scales and sums of unit 4h + i
    const corr = `(i32x4.shl (i32x4.dot_i16x8_s ${s} (v128.load offset=${16 * h} ${g('xg')})) ${i32(5)})`;
    const scale = `(f32x4.mul ${g('dv')} (v128.load offset=${16 * h} ${g('d')}))`;
    L.push(set('acc', madd(`(f32x4.convert_i32x4_s (i32x4.sub ${sums} ${corr}))`, scale, g('acc'))));
  }
  const v = (names) => names.map((n) => `(local $${n} v128)`).join(' ');
  return `
  (func $qm_q6_k_d1 (param $wp i32) (param $nb i32) (param $x8 i32) (param $d i32) (param $tab i32) (param $y i32) (param $xg i32)
    ${v(['acc', 'dv', 'sv', 's0', 's1', 'u0', 'u1', 'u2', 'u3', 't0', 't1', 'qa', 'qb', 'qh'])} (local $i i32)
    (block $done (loop $blocks
      (br_if $done (i32.ge_u ${g('i')} ${g('nb')}))
${L.map((x) => '        ' + x).join('\n')}
      ${set('wp', `(i32.add ${g('wp')} ${i32(210)})`)} ${set('x8', `(i32.add ${g('x8')} ${i32(256)})`)} ${set('d', `(i32.add ${g('d')} ${i32(32)})`)} ${set('xg', `(i32.add ${g('xg')} ${i32(32)})`)}
      ${set('i', `(i32.add ${g('i')} ${i32(1)})`)}
      (br $blocks)))
    (f32.store ${g('y')} (f32.add (f32.add (f32x4.extract_lane 0 ${g('acc')}) (f32x4.extract_lane 1 ${g('acc')})) (f32.add (f32x4.extract_lane 2 ${g('acc')}) (f32x4.extract_lane 3 ${g('acc')})))))`;
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
 * `$qm_q4_k_d1 (wp nb x8 d tab y xs)`: Q4_K (f16 d, f16 dmin, 12 bytes of scales and mins, 128
 * bytes of nibbles: unit 2p the low nibbles of bytes 32p..32p+31, 2p + 1 the high ones) against
 * the activation row; with `q5`, `$qm_q5_k_d1` over Q5_K (32 bytes of fifth bits before the
 * nibbles: bit j of byte l the fifth bit of value l of unit j, moved to bit 4 by one 16-bit shift
 * and a mask; values 0..31, pair sums of both halves at most 4·31·127 in i16). Per unit: the relaxed dot of the nibbles (0..15) with x, the two halves'
 * pair sums added in i16 (at most 4·15·127), times the unit's 6-bit scale in i32 (dot against its
 * splat); four units reduced to one i32x4 and scaled by d · x's four unit scales at once. The
 * minimums: dmin · m of the 8 units (f32) against x's unit sums ($xs: d_x · Σq per 32), per block.
 */
export function q4kDecode(madd, q5 = false) {
  const qs = q5 ? 48 : 16;
  const L = [];
  const f16 = (o) => `(f32.load (i32.add ${g('tab')} (i32.shl (i32.load16_u offset=${o} ${g('wp')}) ${i32(2)})))`;
  L.push(set('dv', `(f32x4.splat ${f16(0)})`), set('mv', `(f32x4.splat ${f16(2)})`));
  L.push(set('kv', kScaleBytes(g('wp'))));
  L.push(set('sc', `(i16x8.extend_low_i8x16_u ${g('kv')})`));
  const mins = (half) => `(f32x4.mul (f32x4.convert_i32x4_u (i32x4.extend_${half}_i16x8_u (i16x8.extend_high_i8x16_u ${g('kv')}))) ${g('mv')})`;
  L.push(set('macc', madd(mins('low'), `(v128.load ${g('xs')})`, madd(mins('high'), `(v128.load offset=16 ${g('xs')})`, g('macc')))));
  for (let h = 0; h < 2; h++) {
    for (let pp = 0; pp < 2; pp++) {
      const p = 2 * h + pp;
      L.push(set('qa', `(v128.load offset=${qs + 32 * p} ${g('wp')})`), set('qb', `(v128.load offset=${qs + 16 + 32 * p} ${g('wp')})`));
      for (const hiNib of [0, 1]) {
        const j = 2 * p + hiNib;
        const nib4 = (q) => (hiNib ? `(v128.and (i16x8.shr_u ${g(q)} ${i32(4)}) ${b16(15)})` : `(v128.and ${g(q)} ${b16(15)})`);
        const fifth = (k) => {
          const qh = `(v128.load offset=${16 + 16 * k} ${g('wp')})`;
          return `(v128.and ${j < 4 ? `(i16x8.shl ${qh} ${i32(4 - j)})` : j > 4 ? `(i16x8.shr_u ${qh} ${i32(j - 4)})` : qh} ${b16(16)})`;
        };
        const nib = (q, k) => (q5 ? `(v128.or ${nib4(q)} ${fifth(k)})` : nib4(q));
        const rd = (k, q) => `(i16x8.relaxed_dot_i8x16_i7x16_s (v128.load offset=${32 * j + 16 * k} ${g('x8')}) ${nib(q, k)})`;
        L.push(set(`u${j & 3}`, `(i32x4.dot_i16x8_s (i16x8.add ${rd(0, 'qa')} ${rd(1, 'qb')}) ${splat16(g('sc'), j)})`));
      }
    }
    L.push(...reduce4Pre());
    L.push(set('acc', madd(`(f32x4.convert_i32x4_s ${reduce4()})`, `(f32x4.mul ${g('dv')} (v128.load offset=${16 * h} ${g('d')}))`, g('acc'))));
  }
  const v = (names) => names.map((n) => `(local $${n} v128)`).join(' ');
  const hsum = (x) => `(f32.add (f32.add (f32x4.extract_lane 0 ${x}) (f32x4.extract_lane 1 ${x})) (f32.add (f32x4.extract_lane 2 ${x}) (f32x4.extract_lane 3 ${x})))`;
  return `
  (func $qm_${q5 ? 'q5_k' : 'q4_k'}_d1 (param $wp i32) (param $nb i32) (param $x8 i32) (param $d i32) (param $tab i32) (param $y i32) (param $xs i32)
    ${v(['acc', 'macc', 'dv', 'mv', 'kv', 'sc', 'u0', 'u1', 'u2', 'u3', 't0', 't1', 'qa', 'qb'])} (local $i i32)
    (block $done (loop $blocks
      (br_if $done (i32.ge_u ${g('i')} ${g('nb')}))
${L.map((x) => '        ' + x).join('\n')}
      ${set('wp', `(i32.add ${g('wp')} ${i32(q5 ? 176 : 144)})`)} ${set('x8', `(i32.add ${g('x8')} ${i32(256)})`)} ${set('d', `(i32.add ${g('d')} ${i32(32)})`)} ${set('xs', `(i32.add ${g('xs')} ${i32(32)})`)}
      ${set('i', `(i32.add ${g('i')} ${i32(1)})`)}
      (br $blocks)))
    (f32.store ${g('y')} (f32.sub ${hsum(g('acc'))} ${hsum(g('macc'))})))`;
}

/**
 * Formats with a decode kernel here (relaxed-SIMD builds only: they use the i8 x i7 dot), and
 * the x-side array each takes last: q6_k x's 16-value sums (xg), q4_k and q5_k x's unit sums (xs).
 */
export const DECODE = {
  q6_k: { fn: q6kDecode, last: 'xg' },
  q4_k: { fn: q4kDecode, last: 'xs' },
  q5_k: { fn: (madd) => q4kDecode(madd, true), last: 'xs' },
};
