// The weighted sum of values straight from 4-bit codes with one scale and offset per row (KVQuant's
// per-token values), for the packed KV-cache attention module (kvattn.wat.mjs), where one query
// head reads each kv head: with v_j = lut[c_j] · s_j + o_j,
//   y += Σ_j (p_j s_j) lut[c_j] + Σ_j p_j o_j,
// sixteen channels of y in registers over the block's rows (the codes looked up through the
// table's byte planes, one multiply and add per four values), and each exact entry as the
// correction p_j · (x − v_j) with v_j decoded as the reference decodes it. Not the reference's
// order of sums (y within f32 rounding of it), and not for other layouts (kvattn-rows.mjs, $pv).
import { KVS } from './kvattn-layout.mjs';
import { lut4 } from './kvattn-codes.mjs';
import { exactChan, exactVal } from './kvattn-exact.mjs';
import { f4 } from './simd-math.mjs';
import { g, i32, inc, set } from './wat-text.mjs';

/** f32 at the f16 table entry of the u16 at `at`. */
const f16At = (at) => `(f32.load (i32.add ${g('tab')} (i32.shl (i32.load16_u ${at}) ${i32(2)})))`;

// y [n] at ya += Σ_r w[r] · v_r over rows row0 + r · rstep (r < nb), values [c0, c0 + n) of the
// stream at s (4-bit codes, a group of at least n values per row with scale and offset, n a
// multiple of 16, its slice one segment of the index or no index); ws: nb f32 of scratch.
export const PV_CODES = (relaxed) => `
  (func $pv_codes (param $s i32) (param $row0 i32) (param $rstep i32) (param $nb i32) (param $c0 i32) (param $n i32) (param $ya i32) (param $w i32) (param $tab i32) (param $ws i32)
    (local $main i32) (local $codes i32) (local $codes0 i32) (local $codesStep i32) (local $gRow i32) (local $gStep i32) (local $r i32) (local $c i32) (local $k i32)
    (local $C f32) (local $pj f32) (local $sc f32) (local $of f32) (local $x f32)
    (local $e i32) (local $e1 i32) (local $rp i32) (local $sp i32) (local $segs i32) (local $s0b i32) (local $s1b i32) (local $ov i32) (local $oval i32) (local $ch i32) (local $lut i32) (local $rpS i32) (local $spS i32)
    (local $cv v128) (local $mlo v128) (local $a v128) (local $b v128) (local $p0 v128) (local $p1 v128) (local $p2 v128) (local $p3 v128)
    (local $z0 v128) (local $z1 v128) (local $z2 v128) (local $z3 v128) (local $l0 v128) (local $l1 v128) (local $l2 v128) (local $l3 v128)
    (local $y0 v128) (local $y1 v128) (local $y2 v128) (local $y3 v128) (local $wv v128)
    ${set('main', `(i32.load offset=${KVS.main} ${g('s')})`)}
    ${set('codesStep', `(i32.mul ${g('rstep')} (i32.load offset=${KVS.rowBytes} ${g('s')}))`)}
    ${set('codes0', `(i32.add (i32.add (i32.add ${g('main')} (i32.mul ${g('row0')} (i32.load offset=${KVS.rowBytes} ${g('s')}))) (i32.mul (i32.div_u ${g('c0')} (i32.load offset=${KVS.S} ${g('s')})) (i32.load offset=${KVS.hstep} ${g('s')}))) (i32.shr_u ${g('c0')} ${i32(1)}))`)}
    ${set('k', `(i32.div_u (i32.load offset=${KVS.R} ${g('s')}) (i32.load offset=${KVS.G} ${g('s')}))`)}
    ${set('gStep', `(i32.shl (i32.mul ${g('rstep')} ${g('k')}) ${i32(2)})`)}
    ${set('gRow', `(i32.add (i32.add ${g('main')} (i32.load offset=${KVS.oGrp} ${g('s')})) (i32.shl (i32.add (i32.mul ${g('row0')} ${g('k')}) (i32.div_u ${g('c0')} (i32.load offset=${KVS.G} ${g('s')}))) ${i32(2)}))`)}
    ;; the rows' weights p_j s_j, and Σ p_j o_j
    (block $pd (loop $pl
      (br_if $pd (i32.ge_u ${g('r')} ${g('nb')}))
      ${set('pj', `(f32.load (i32.add ${g('w')} (i32.shl ${g('r')} ${i32(2)})))`)}
      (f32.store (i32.add ${g('ws')} (i32.shl ${g('r')} ${i32(2)})) (f32.mul ${g('pj')} ${f16At(g('gRow'))}))
      ${set('C', `(f32.add ${g('C')} (f32.mul ${g('pj')} ${f16At(`(i32.add ${g('gRow')} ${i32(2)})`)}))`)}
      ${inc('gRow', g('gStep'))} ${inc('r', 1)}
      (br $pl)))
    ;; the 16-entry table as four byte planes
    ${set('lut', `(i32.add ${g('main')} (i32.load offset=${KVS.oLut} ${g('s')}))`)}
    ${set('a', `(i8x16.shuffle 0 4 8 12 16 20 24 28 1 5 9 13 17 21 25 29 (v128.load ${g('lut')}) (v128.load offset=16 ${g('lut')}))`)}
    ${set('b', `(i8x16.shuffle 0 4 8 12 16 20 24 28 1 5 9 13 17 21 25 29 (v128.load offset=32 ${g('lut')}) (v128.load offset=48 ${g('lut')}))`)}
    ${set('p0', `(i8x16.shuffle 0 1 2 3 4 5 6 7 16 17 18 19 20 21 22 23 ${g('a')} ${g('b')})`)}
    ${set('p1', `(i8x16.shuffle 8 9 10 11 12 13 14 15 24 25 26 27 28 29 30 31 ${g('a')} ${g('b')})`)}
    ${set('a', `(i8x16.shuffle 2 6 10 14 18 22 26 30 3 7 11 15 19 23 27 31 (v128.load ${g('lut')}) (v128.load offset=16 ${g('lut')}))`)}
    ${set('b', `(i8x16.shuffle 2 6 10 14 18 22 26 30 3 7 11 15 19 23 27 31 (v128.load offset=32 ${g('lut')}) (v128.load offset=48 ${g('lut')}))`)}
    ${set('p2', `(i8x16.shuffle 0 1 2 3 4 5 6 7 16 17 18 19 20 21 22 23 ${g('a')} ${g('b')})`)}
    ${set('p3', `(i8x16.shuffle 8 9 10 11 12 13 14 15 24 25 26 27 28 29 30 31 ${g('a')} ${g('b')})`)}
    ${set('mlo', '(v128.const i32x4 0x0f0f0f0f 0x0f0f0f0f 0x0f0f0f0f 0x0f0f0f0f)')}
    ;; sixteen channels of y at a time over every row; c stays the chunk's first channel
    (block $cd (loop $cl
      (br_if $cd (i32.ge_u ${g('c')} ${g('n')}))
      ${[0, 1, 2, 3].map((u) => set(`y${u}`, `(v128.load offset=${16 * u} (i32.add ${g('ya')} (i32.shl ${g('c')} ${i32(2)})))`)).join(' ')}
      ${set('codes', g('codes0'))} ${set('r', i32(0))}
      (block $rd (loop $rl
        (br_if $rd (i32.ge_u ${g('r')} ${g('nb')}))
        ${set('wv', `(v128.load32_splat (i32.add ${g('ws')} (i32.shl ${g('r')} ${i32(2)})))`)}
        ${lut4(16, relaxed)}
        ${[0, 1, 2, 3].map((u) => set(`y${u}`, `(f32x4.add ${g(`y${u}`)} (f32x4.mul ${g('wv')} ${g(`l${u}`)}))`)).join(' ')}
        ${inc('codes', g('codesStep'))} ${inc('r', 1)}
        (br $rl)))
      ${[0, 1, 2, 3].map((u) => `(v128.store offset=${16 * u} (i32.add ${g('ya')} (i32.shl ${g('c')} ${i32(2)})) (f32x4.add ${g(`y${u}`)} (f32x4.splat ${g('C')})))`).join(' ')}
      ${inc('c', 16)}
      (br $cl)))
    (if (i32.eqz (i32.load offset=${KVS.sparse} ${g('s')})) (then (return)))
    ;; exact entries: y[ch] += p_j · (x − v_j), v_j decoded as the reference does
    ${set('segs', `(i32.load offset=${KVS.segs} ${g('s')})`)}
    ${set('ov', `(i32.load offset=${KVS.out} ${g('s')})`)}
    ${set('oval', `(i32.add ${g('ov')} (i32.load offset=${KVS.oVal} ${g('s')}))`)}
    ${set('k', `(i32.div_u (i32.load offset=${KVS.R} ${g('s')}) ${g('segs')})`)}
    ${set('s0b', `(i32.shl (i32.div_u ${g('c0')} ${g('k')}) ${i32(1)})`)}
    ${set('s1b', `(i32.div_u (i32.add ${g('c0')} ${g('n')}) ${g('k')})`)}
    ${set('s1b', `(select (i32.shl ${g('s1b')} ${i32(1)}) ${i32(0)} (i32.lt_u ${g('s1b')} ${g('segs')}))`)}
    ${set('rp', `(i32.add (i32.add ${g('main')} (i32.load offset=${KVS.oRowptr} ${g('s')})) (i32.shl ${g('row0')} ${i32(2)}))`)}
    ${set('rpS', `(i32.shl ${g('rstep')} ${i32(2)})`)}
    ${set('sp', `(i32.add (i32.add ${g('main')} (i32.load offset=${KVS.oSeg} ${g('s')})) (i32.shl (i32.mul ${g('row0')} ${g('segs')}) ${i32(1)}))`)}
    ${set('spS', `(i32.shl (i32.mul ${g('rstep')} ${g('segs')}) ${i32(1)})`)}
    ${set('gRow', `(i32.sub ${g('gRow')} (i32.mul ${g('gStep')} ${g('nb')}))`)}
    ${set('codes', g('codes0'))} ${set('r', i32(0))}
    (block $xd (loop $xl
      (br_if $xd (i32.ge_u ${g('r')} ${g('nb')}))
      ${set('e', `(i32.load ${g('rp')})`)}
      ${set('e1', `(select (i32.add ${g('e')} (i32.load16_u (i32.add ${g('sp')} ${g('s1b')}))) (i32.load offset=4 ${g('rp')}) ${g('s1b')})`)}
      ${set('e', `(i32.add ${g('e')} (i32.load16_u (i32.add ${g('sp')} ${g('s0b')})))`)}
      (if (i32.lt_u ${g('e')} ${g('e1')}) (then
        ${set('pj', `(f32.load (i32.add ${g('w')} (i32.shl ${g('r')} ${i32(2)})))`)}
        ${set('sc', f16At(g('gRow')))} ${set('of', f16At(`(i32.add ${g('gRow')} ${i32(2)})`))}
        (block $ed (loop $el
          (br_if $ed (i32.ge_u ${g('e')} ${g('e1')}))
          ${set('ch', `(i32.sub ${exactChan(g('e'))} ${g('c0')})`)}
          (if (i32.lt_u ${g('ch')} ${g('n')}) (then
            ${set('x', `(f32.add (f32.mul (f32.load (i32.add ${g('lut')} (i32.shl (i32.and (i32.shr_u (i32.load8_u (i32.add ${g('codes')} (i32.shr_u ${g('ch')} ${i32(1)}))) (i32.shl (i32.and ${g('ch')} ${i32(1)}) ${i32(2)})) ${i32(15)}) ${i32(2)}))) ${g('sc')}) ${g('of')})`)}
            (f32.store (i32.add ${g('ya')} (i32.shl ${g('ch')} ${i32(2)}))
              (f32.add (f32.load (i32.add ${g('ya')} (i32.shl ${g('ch')} ${i32(2)}))) (f32.mul ${g('pj')} (f32.sub ${exactVal(g('e'))} ${g('x')}))))))
          ${inc('e', 1)}
          (br $el)))))
      ${inc('rp', g('rpS'))} ${inc('sp', g('spS'))} ${inc('gRow', g('gStep'))} ${inc('codes', g('codesStep'))} ${inc('r', 1)}
      (br $xl))))`;
