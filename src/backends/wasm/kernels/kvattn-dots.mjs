// The dot products of the packed KV-cache attention module over decoded f32 blocks: scaled,
// masked scores of a block of keys against one query ($scores; $scores_rope rotating pre-RoPE keys
// as it reads them) and the weighted sum of a block of values into y ($pv). Not for: decoding the
// codes (kvattn-rows.mjs) or the softmax (kvattn.wat.mjs).
import { f4 } from './simd-math.mjs';
import { F, g, i32, inc, set } from './wat-text.mjs';

export const HADD4 = `
  (func $hadd4 (param $a v128) (param $b v128) (param $c v128) (param $d v128) (result v128)
    (local $t v128) (local $u v128)
    (local.set $t (f32x4.add (i8x16.shuffle 0 1 2 3 16 17 18 19 4 5 6 7 20 21 22 23 ${g('a')} ${g('b')}) (i8x16.shuffle 8 9 10 11 24 25 26 27 12 13 14 15 28 29 30 31 ${g('a')} ${g('b')})))
    (local.set $u (f32x4.add (i8x16.shuffle 0 1 2 3 16 17 18 19 4 5 6 7 20 21 22 23 ${g('c')} ${g('d')}) (i8x16.shuffle 8 9 10 11 24 25 26 27 12 13 14 15 28 29 30 31 ${g('c')} ${g('d')})))
    (f32x4.add (i8x16.shuffle 0 1 2 3 4 5 6 7 16 17 18 19 20 21 22 23 ${g('t')} ${g('u')}) (i8x16.shuffle 8 9 10 11 12 13 14 15 24 25 26 27 28 29 30 31 ${g('t')} ${g('u')})))`;

// Fragments shared by $scores and $scores_rope (over their locals: q at qa, four keys from kr,
// kst bytes apart, partial sums b0..b3, channel c, d4 = D rounded down to 4).
/** Address of channel c of key u of the four. */
const keyAt = (u) => (u === 0 ? F('kr', g('c')) : `(i32.add ${F('kr', g('c'))} (i32.mul ${g('kst')} ${i32(u)}))`);
/** b_u += q[c..] · k_u[c..] for the four keys, four channels at a time from c to d4. */
const DOT4 = `(block $e4d (loop $e4l
        (br_if $e4d (i32.ge_u ${g('c')} ${g('d4')}))
        ${set('a0', `(v128.load ${F('qa', g('c'))})`)}
        ${[0, 1, 2, 3].map((u) => set(`b${u}`, `(f32x4.add ${g(`b${u}`)} (f32x4.mul ${g('a0')} (v128.load ${keyAt(u)})))`)).join('\n        ')}
        ${inc('c', 4)}
        (br $e4l)))`;
/** The four scaled scores a0 of keys j..j+3: −inf where masked, stored, into the running max mx. */
const PUT4 = `(if ${g('m')} (then
        ${set('a0', `(v128.bitselect ${g('a0')} ${f4('-inf')} (i32x4.extend_low_i16x8_s (i16x8.extend_low_i8x16_s (i8x16.ne (v128.load32_zero (i32.add ${g('m')} ${g('j')})) (v128.const i32x4 0 0 0 0)))))`)}))
      (v128.store ${F('out', g('j'))} ${g('a0')})
      ${set('mx', `(f32x4.max ${g('mx')} ${g('a0')})`)}`;
/** Key j's dot t: scaled, −inf where masked, stored, into the running max mt. */
const PUT1 = `${set('t', `(f32.mul ${g('t')} (f32x4.extract_lane 0 ${g('sc')}))`)}
      (if ${g('m')} (then (if (i32.eqz (i32.load8_u (i32.add ${g('m')} ${g('j')}))) (then ${set('t', '(f32.const -inf)')}))))
      (f32.store ${F('out', g('j'))} ${g('t')})
      ${set('mt', `(f32.max ${g('mt')} ${g('t')})`)}`;
/** The block's maximum score. */
const MAX_OUT = `(f32.max ${g('mt')} (f32.max (f32.max (f32x4.extract_lane 0 ${g('mx')}) (f32x4.extract_lane 1 ${g('mx')})) (f32.max (f32x4.extract_lane 2 ${g('mx')}) (f32x4.extract_lane 3 ${g('mx')}))))`;
/** Sum of the four lanes of v. */
export const hsum = (v) => `(f32.add (f32.add (f32x4.extract_lane 0 ${g(v)}) (f32x4.extract_lane 1 ${g(v)})) (f32.add (f32x4.extract_lane 2 ${g(v)}) (f32x4.extract_lane 3 ${g(v)})))`;

// Scaled scores q·k_j of nb decoded keys kb [nb, D] into out [nb] (−inf where the u8 mask `m`,
// when not 0, is 0); returns their maximum. Four keys at a time (one load of q serves them all).
export const SCORES = `
  (func $scores (param $qa i32) (param $kb i32) (param $D i32) (param $nb i32) (param $out i32) (param $sc v128) (param $m i32) (result f32)
    (local $j i32) (local $c i32) (local $d4 i32) (local $kr i32) (local $kst i32) (local $a0 v128) (local $b0 v128) (local $b1 v128) (local $b2 v128) (local $b3 v128)
    (local $t f32) (local $mx v128) (local $mt f32)
    ${set('d4', `(i32.and ${g('D')} ${i32(-4)})`)} ${set('kst', `(i32.shl ${g('D')} ${i32(2)})`)}
    ${set('mx', f4('-inf'))} ${set('mt', '(f32.const -inf)')} ${set('kr', g('kb'))}
    (block $s4d (loop $s4l
      (br_if $s4d (i32.gt_u (i32.add ${g('j')} ${i32(4)}) ${g('nb')}))
      ${[0, 1, 2, 3].map((u) => set(`b${u}`, f4(0))).join(' ')} ${set('c', i32(0))}
      ${DOT4}
      ${set('a0', `(call $hadd4 ${g('b0')} ${g('b1')} ${g('b2')} ${g('b3')})`)}
      (block $e1d (loop $e1l
        (br_if $e1d (i32.ge_u ${g('c')} ${g('D')}))
        ${set('t', `(f32.load ${F('qa', g('c'))})`)}
        ${[0, 1, 2, 3].map((u) => set('a0', `(f32x4.replace_lane ${u} ${g('a0')} (f32.add (f32x4.extract_lane ${u} ${g('a0')}) (f32.mul ${g('t')} (f32.load ${keyAt(u)}))))`)).join('\n        ')}
        ${inc('c', 1)}
        (br $e1l)))
      ${set('a0', `(f32x4.mul ${g('a0')} ${g('sc')})`)}
      ${PUT4}
      ${inc('kr', `(i32.shl ${g('kst')} ${i32(2)})`)} ${inc('j', 4)}
      (br $s4l)))
    (block $sd (loop $sl
      (br_if $sd (i32.ge_u ${g('j')} ${g('nb')}))
      ${set('a0', f4(0))} ${set('c', i32(0))}
      (block $d4d (loop $d4l
        (br_if $d4d (i32.ge_u ${g('c')} ${g('d4')}))
        ${set('a0', `(f32x4.add ${g('a0')} (f32x4.mul (v128.load ${F('qa', g('c'))}) (v128.load ${F('kr', g('c'))})))`)}
        ${inc('c', 4)}
        (br $d4l)))
      ${set('t', `${hsum('a0')}`)}
      (block $d1d (loop $d1l
        (br_if $d1d (i32.ge_u ${g('c')} ${g('D')}))
        ${set('t', `(f32.add ${g('t')} (f32.mul (f32.load ${F('qa', g('c'))}) (f32.load ${F('kr', g('c'))})))`)}
        ${inc('c', 1)}
        (br $d1l)))
      ${PUT1}
      ${inc('kr', g('kst'))} ${inc('j', 1)}
      (br $sl)))
    ${MAX_OUT})`;

// $scores with RoPE (half mode) applied as the keys are read: for one query head per kv head the
// separate rotation pass stored each key and read it back once more; here each pair chunk is
// rotated in registers (the same products as $rot: xa·cos − xb·sin, xb·cos + xa·sin) and dotted
// at once. Pairs (i, i + half) for i < half = rot / 2 (half a multiple of 4), channels from rot on
// unrotated; four keys at a time, positions i32 at `pos`, `pstep` bytes apart.
export const SCORES_ROPE = `
  (func $scores_rope (param $qa i32) (param $kb i32) (param $D i32) (param $nb i32) (param $out i32) (param $sc v128) (param $m i32)
    (param $pos i32) (param $pstep i32) (param $tab i32) (param $rot i32) (result f32)
    (local $j i32) (local $c i32) (local $d4 i32) (local $kr i32) (local $kst i32) (local $half i32) (local $hb i32) (local $cb i32)
    (local $c0 i32) (local $c1 i32) (local $c2 i32) (local $c3 i32)
    (local $qa4 v128) (local $qb4 v128) (local $xa v128) (local $xb v128) (local $co v128) (local $si v128)
    (local $a0 v128) (local $b0 v128) (local $b1 v128) (local $b2 v128) (local $b3 v128) (local $t f32) (local $mx v128) (local $mt f32)
    ${set('d4', `(i32.and ${g('D')} ${i32(-4)})`)} ${set('kst', `(i32.shl ${g('D')} ${i32(2)})`)}
    ${set('half', `(i32.shr_u ${g('rot')} ${i32(1)})`)} ${set('hb', `(i32.shl ${g('half')} ${i32(2)})`)} ${set('cb', `(i32.shl ${g('hb')} ${i32(1)})`)}
    ${set('mx', f4('-inf'))} ${set('mt', '(f32.const -inf)')} ${set('kr', g('kb'))}
    (block $s4d (loop $s4l
      (br_if $s4d (i32.gt_u (i32.add ${g('j')} ${i32(4)}) ${g('nb')}))
      ${[0, 1, 2, 3].map((u) => `${set(`b${u}`, f4(0))} ${set(`c${u}`, `(i32.add ${g('tab')} (i32.mul (i32.load ${u ? `(i32.add ${g('pos')} (i32.mul ${g('pstep')} ${i32(u)}))` : g('pos')}) ${g('cb')}))`)}`).join(' ')}
      ${set('c', i32(0))}
      (block $r4d (loop $r4l
        (br_if $r4d (i32.ge_u ${g('c')} ${g('half')}))
        ${set('qa4', `(v128.load ${F('qa', g('c'))})`)} ${set('qb4', `(v128.load (i32.add ${F('qa', g('c'))} ${g('hb')}))`)}
        ${[0, 1, 2, 3].map((u) => {
          const kr = keyAt(u);
          return `${set('xa', `(v128.load ${kr})`)} ${set('xb', `(v128.load (i32.add ${kr} ${g('hb')}))`)}
        ${set('co', `(v128.load ${F(`c${u}`, g('c'))})`)} ${set('si', `(v128.load (i32.add ${F(`c${u}`, g('c'))} ${g('hb')}))`)}
        ${set(`b${u}`, `(f32x4.add ${g(`b${u}`)} (f32x4.add (f32x4.mul ${g('qa4')} (f32x4.sub (f32x4.mul ${g('xa')} ${g('co')}) (f32x4.mul ${g('xb')} ${g('si')}))) (f32x4.mul ${g('qb4')} (f32x4.add (f32x4.mul ${g('xb')} ${g('co')}) (f32x4.mul ${g('xa')} ${g('si')})))))`)}`;
        }).join('\n        ')}
        ${inc('c', 4)}
        (br $r4l)))
      ${set('c', g('rot'))}
      ${DOT4}
      ${set('a0', `(f32x4.mul (call $hadd4 ${g('b0')} ${g('b1')} ${g('b2')} ${g('b3')}) ${g('sc')})`)}
      ${PUT4}
      ${inc('kr', `(i32.shl ${g('kst')} ${i32(2)})`)} ${inc('pos', `(i32.shl ${g('pstep')} ${i32(2)})`)} ${inc('j', 4)}
      (br $s4l)))
    ;; the last keys one at a time
    (block $sd (loop $sl
      (br_if $sd (i32.ge_u ${g('j')} ${g('nb')}))
      ${set('b0', f4(0))} ${set('c0', `(i32.add ${g('tab')} (i32.mul (i32.load ${g('pos')}) ${g('cb')}))`)} ${set('c', i32(0))}
      (block $r1d (loop $r1l
        (br_if $r1d (i32.ge_u ${g('c')} ${g('half')}))
        ${set('xa', `(v128.load ${F('kr', g('c'))})`)} ${set('xb', `(v128.load (i32.add ${F('kr', g('c'))} ${g('hb')}))`)}
        ${set('co', `(v128.load ${F('c0', g('c'))})`)} ${set('si', `(v128.load (i32.add ${F('c0', g('c'))} ${g('hb')}))`)}
        ${set('b0', `(f32x4.add ${g('b0')} (f32x4.add (f32x4.mul (v128.load ${F('qa', g('c'))}) (f32x4.sub (f32x4.mul ${g('xa')} ${g('co')}) (f32x4.mul ${g('xb')} ${g('si')}))) (f32x4.mul (v128.load (i32.add ${F('qa', g('c'))} ${g('hb')})) (f32x4.add (f32x4.mul ${g('xb')} ${g('co')}) (f32x4.mul ${g('xa')} ${g('si')})))))`)}
        ${inc('c', 4)}
        (br $r1l)))
      ${set('c', g('rot'))}
      (block $d4d (loop $d4l
        (br_if $d4d (i32.ge_u ${g('c')} ${g('d4')}))
        ${set('b0', `(f32x4.add ${g('b0')} (f32x4.mul (v128.load ${F('qa', g('c'))}) (v128.load ${F('kr', g('c'))})))`)}
        ${inc('c', 4)}
        (br $d4l)))
      ${set('t', `${hsum('b0')}`)}
      ${PUT1}
      ${inc('kr', g('kst'))} ${inc('pos', g('pstep'))} ${inc('j', 1)}
      (br $sl)))
    ${MAX_OUT})`;

// y [DV] += Σ_j w_j v_j over nb decoded values vb [nb, DV] with weights w [nb]; keys of weight 0
// are skipped (as the reference), four at a time while none of the four is 0.
export const PV = `
  (func $pv (param $ya i32) (param $vb i32) (param $DV i32) (param $nb i32) (param $w i32)
    (local $j i32) (local $c i32) (local $dv4 i32) (local $kr i32) (local $vst i32) (local $pv v128) (local $b0 v128) (local $b1 v128) (local $b2 v128) (local $b3 v128) (local $pj f32)
    ${set('dv4', `(i32.and ${g('DV')} ${i32(-4)})`)} ${set('vst', `(i32.shl ${g('DV')} ${i32(2)})`)} ${set('kr', g('vb'))}
    (block $v4d (loop $v4l
      (br_if $v4d (i32.gt_u (i32.add ${g('j')} ${i32(4)}) ${g('nb')}))
      ${set('pv', `(v128.load ${F('w', g('j'))})`)}
      (br_if $v4d (i32.eqz (i32x4.all_true (f32x4.ne ${g('pv')} ${f4(0)}))))
      ${[0, 1, 2, 3].map((u) => set(`b${u}`, `(f32x4.splat (f32x4.extract_lane ${u} ${g('pv')}))`)).join(' ')}
      ${set('c', i32(0))}
      (block $w4d (loop $w4l
        (br_if $w4d (i32.ge_u ${g('c')} ${g('dv4')}))
        (v128.store ${F('ya', g('c'))} (f32x4.add (v128.load ${F('ya', g('c'))})
          (f32x4.add (f32x4.add (f32x4.mul ${g('b0')} (v128.load ${F('kr', g('c'))})) (f32x4.mul ${g('b1')} (v128.load (i32.add ${F('kr', g('c'))} ${g('vst')}))))
                     (f32x4.add (f32x4.mul ${g('b2')} (v128.load (i32.add ${F('kr', g('c'))} (i32.mul ${g('vst')} ${i32(2)})))) (f32x4.mul ${g('b3')} (v128.load (i32.add ${F('kr', g('c'))} (i32.mul ${g('vst')} ${i32(3)}))))))))
        ${inc('c', 4)}
        (br $w4l)))
      (block $w1d (loop $w1l
        (br_if $w1d (i32.ge_u ${g('c')} ${g('DV')}))
        (f32.store ${F('ya', g('c'))} (f32.add (f32.load ${F('ya', g('c'))})
          (f32.add (f32.add (f32.mul (f32x4.extract_lane 0 ${g('pv')}) (f32.load ${F('kr', g('c'))})) (f32.mul (f32x4.extract_lane 1 ${g('pv')}) (f32.load (i32.add ${F('kr', g('c'))} ${g('vst')}))))
                   (f32.add (f32.mul (f32x4.extract_lane 2 ${g('pv')}) (f32.load (i32.add ${F('kr', g('c'))} (i32.mul ${g('vst')} ${i32(2)})))) (f32.mul (f32x4.extract_lane 3 ${g('pv')}) (f32.load (i32.add ${F('kr', g('c'))} (i32.mul ${g('vst')} ${i32(3)}))))))))
        ${inc('c', 1)}
        (br $w1l)))
      ${inc('kr', `(i32.shl ${g('vst')} ${i32(2)})`)} ${inc('j', 4)}
      (br $v4l)))
    (block $vd (loop $vl
      (br_if $vd (i32.ge_u ${g('j')} ${g('nb')}))
      ${set('pj', `(f32.load ${F('w', g('j'))})`)}
      (if (f32.ne ${g('pj')} (f32.const 0)) (then
        ${set('pv', `(f32x4.splat ${g('pj')})`)} ${set('c', i32(0))}
        (block $yd (loop $yl
          (br_if $yd (i32.ge_u ${g('c')} ${g('dv4')}))
          (v128.store ${F('ya', g('c'))} (f32x4.add (v128.load ${F('ya', g('c'))}) (f32x4.mul ${g('pv')} (v128.load ${F('kr', g('c'))}))))
          ${inc('c', 4)}
          (br $yl)))
        (block $y1d (loop $y1l
          (br_if $y1d (i32.ge_u ${g('c')} ${g('DV')}))
          (f32.store ${F('ya', g('c'))} (f32.add (f32.load ${F('ya', g('c'))}) (f32.mul ${g('pj')} (f32.load ${F('kr', g('c'))}))))
          ${inc('c', 1)}
          (br $y1l)))))
      ${inc('kr', g('vst'))} ${inc('j', 1)}
      (br $vl))))`;
