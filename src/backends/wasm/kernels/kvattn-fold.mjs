// Scores straight from 4-bit key codes ($scores_codes) in the packed KV-cache attention module: for
// one query head per kv head, pre-RoPE keys with per-channel scale s and offset o (KVQuant's keys)
// and RoPE in half mode over the whole head. No key is decoded to f32: with k = s ⊙ l + o (l the
// table's values of the codes) and the rotation of pair (a, b) = (i, i + half) by (cos, sin),
//   q · R(p) k = Σ_i cos_i (U_a l_a + U_b l_b + C_i) + sin_i (W_a l_a + W_b l_b + S_i)
// with, per pair and once per query row, U_a = q_a s_a, U_b = q_b s_b, W_a = q_b s_a,
// W_b = −q_a s_b, C = q_a o_a + q_b o_b, S = q_b o_a − q_a o_b. The exact entries of a key (its
// outliers, every value of a sink row) then add (x − dense) times their channel's rotated query
// weight: the dense dot stays dense, the correction sparse. The products are associated otherwise
// than the reference's (decode, rotate, dot), so scores agree with it to rounding, not bit for bit.
// Not for: group params, several query heads per kv head, partial rotary widths (kvattn-rows.mjs,
// kvattn-rope.mjs and kvattn-dots.mjs take those).
import { KVS } from './kvattn-layout.mjs';
import { hsum } from './kvattn-dots.mjs';
import { exactChan, exactVal } from './kvattn-exact.mjs';
import { lut4 } from './kvattn-codes.mjs';
import { f4 } from './simd-math.mjs';
import { F, g, i32, inc, set } from './wat-text.mjs';

/** Bytes of one 4-pair chunk of the folded query: U_a, U_b, W_a, W_b, C, S. */
export const FOLD_CHUNK = 96;

/**
 * True where $scores_codes applies to the key stream at `ks` (WAT i32), for heads of D with the
 * rotary width `rot`: 4-bit codes through the table's byte planes, per-channel params, rot = D a
 * multiple of 32, and either no exact entries or a segment index one head wide.
 */
export const foldApplies = (ks, D, rot) => `(i32.and
      (i32.and (i32.eq (i32.load offset=${KVS.fast} ${ks}) ${i32(4)}) (i32.eqz (i32.load offset=${KVS.params} ${ks})))
      (i32.and (i32.and (i32.eq ${rot} ${D}) (i32.eqz (i32.and ${D} ${i32(31)})))
        (i32.or (i32.eqz (i32.load offset=${KVS.sparse} ${ks}))
          (i32.and (i32.gt_u (i32.load offset=${KVS.segs} ${ks}) ${i32(1)}) (i32.eq (i32.div_u (i32.load offset=${KVS.R} ${ks}) (i32.load offset=${KVS.segs} ${ks})) ${D})))))`;

/** One of $scores_codes' two passes over a key's codes (`ab`: the first or second half of the pairs). */
function pass(ab) {
  const off = (n) => (n ? `offset=${n} ` : '');
  const terms = [0, 1, 2, 3].map((u) => {
    const w = (f) => `(v128.load ${off(u * FOLD_CHUNK + 16 * f)}${g('wp')})`;
    const cosAt = `(v128.load ${off(16 * u)}${F('cs', g('i'))})`;
    const sinAt = `(v128.load ${off(16 * u)}(i32.add ${F('cs', g('i'))} ${g('hb')}))`;
    const l = g(`l${u}`);
    return ab === 'a'
      ? set(`r${u}`, `(f32x4.add (f32x4.mul ${cosAt} (f32x4.add (f32x4.mul ${w(0)} ${l}) ${w(4)})) (f32x4.mul ${sinAt} (f32x4.add (f32x4.mul ${w(2)} ${l}) ${w(5)})))`)
      : set(`r${u}`, `(f32x4.mul ${l} (f32x4.add (f32x4.mul ${w(1)} ${cosAt}) (f32x4.mul ${w(3)} ${sinAt})))`);
  });
  return `${set('wp', g('w'))} ${set('i', i32(0))}
      (block $${ab}d (loop $${ab}l
        (br_if $${ab}d (i32.ge_u ${g('i')} ${g('half')}))
        ${set('c', ab === 'a' ? g('i') : `(i32.add ${g('i')} ${g('half')})`)}
        ${lut4(16, RELAXED.on)}
        ${terms.join('\n        ')}
        ${set('acc', `(f32x4.add ${g('acc')} (f32x4.add (f32x4.add ${g('r0')} ${g('r1')}) (f32x4.add ${g('r2')} ${g('r3')})))`)}
        ${inc('wp', 4 * FOLD_CHUNK)} ${inc('i', 16)}
        (br $${ab}l)))`;
}
const RELAXED = { on: false };

/**
 * Entry e's term of a key's score: (x − the dense value of its code) times its channel's weight in
 * q · R(p) k, q_a cos + q_b sin for a channel a = i < half, q_b cos − q_a sin for b = i + half.
 * Over $scores_codes' locals; the channel is read inside the slice (an entry out of it reads
 * channel c0, in bounds, for a term the caller drops).
 */
function correction(e) {
  const k = `(select (i32.sub ${exactChan(g(e))} ${g('c0')}) ${i32(0)} (i32.lt_u (i32.sub ${exactChan(g(e))} ${g('c0')}) ${g('D')}))`;
  const ii = `(select ${g('kk')} (i32.sub ${g('kk')} ${g('half')}) (i32.lt_u ${g('kk')} ${g('half')}))`;
  const code = `(i32.and (i32.shr_u (i32.load8_u (i32.add ${g('codes')} (i32.shr_u ${g('kk')} ${i32(1)}))) (i32.shl (i32.and ${g('kk')} ${i32(1)}) ${i32(2)})) ${i32(15)})`;
  const dense = `(f32.add (f32.mul (f32.load (i32.add ${g('lut')} (i32.shl ${code} ${i32(2)}))) (f32.load ${F('chs', g('kk'))})) (f32.load ${F('cho', g('kk'))}))`;
  return `(block (result f32)
            ${set('kk', k)} ${set('ii', ii)}
            ${set('co', `(f32.load ${F('cs', g('ii'))})`)} ${set('si', `(f32.load (i32.add ${F('cs', g('ii'))} ${g('hb')}))`)}
            ${set('xa', `(f32.load ${F('qa', g('ii'))})`)} ${set('xb', `(f32.load (i32.add ${F('qa', g('ii'))} ${g('hb')}))`)}
            (f32.mul (f32.sub ${exactVal(g(e))} ${dense})
              (select (f32.add (f32.mul ${g('xa')} ${g('co')}) (f32.mul ${g('xb')} ${g('si')}))
                      (f32.sub (f32.mul ${g('xb')} ${g('co')}) (f32.mul ${g('xa')} ${g('si')}))
                      (i32.lt_u ${g('kk')} ${g('half')}))))`;
}

// Scaled scores of keys row0, row0 + rstep, ... (nb of them, head slice [c0, c0 + D)) of the key
// stream at `s` against the query at qa, −inf where the u8 mask `m` (when not 0) is 0, into out [nb];
// returns their maximum. Positions i32 at `pos`, `pstep` bytes apart; rope table cos and sin
// [position, 2, D/2]; `w` scratch of D/8 folded chunks (FOLD_CHUNK bytes each).
export const scoresCodes = (relaxed) => (RELAXED.on = relaxed, `
  (func $scores_codes (param $s i32) (param $row0 i32) (param $rstep i32) (param $nb i32) (param $c0 i32) (param $D i32)
    (param $qa i32) (param $out i32) (param $sc v128) (param $m i32) (param $pos i32) (param $pstep i32) (param $tab i32) (param $w i32) (result f32)
    (local $main i32) (local $codes i32) (local $codesStep i32) (local $chs i32) (local $cho i32) (local $lut i32) (local $half i32) (local $hb i32)
    (local $i i32) (local $c i32) (local $j i32) (local $wp i32) (local $cs i32) (local $k i32) (local $ii i32) (local $kk i32)
    (local $sparse i32) (local $rp i32) (local $rpStep i32) (local $sp i32) (local $spStep i32) (local $s0b i32) (local $s1b i32)
    (local $ov i32) (local $oval i32) (local $e i32) (local $e1 i32)
    (local $t f32) (local $mt f32) (local $x f32) (local $co f32) (local $si f32) (local $xa f32) (local $xb f32)
    (local $cv v128) (local $mlo v128) (local $p0 v128) (local $p1 v128) (local $p2 v128) (local $p3 v128) (local $a v128) (local $b v128)
    (local $z0 v128) (local $z1 v128) (local $z2 v128) (local $z3 v128) (local $l0 v128) (local $l1 v128) (local $l2 v128) (local $l3 v128)
    (local $acc v128) (local $r0 v128) (local $r1 v128) (local $r2 v128) (local $r3 v128)
    (local $qv v128) (local $qw v128) (local $sa v128) (local $sb v128) (local $oa v128) (local $ob v128)
    ${set('main', `(i32.load offset=${KVS.main} ${g('s')})`)}
    ${set('codesStep', `(i32.mul ${g('rstep')} (i32.load offset=${KVS.rowBytes} ${g('s')}))`)}
    ${set('codes', `(i32.add (i32.add (i32.add ${g('main')} (i32.mul ${g('row0')} (i32.load offset=${KVS.rowBytes} ${g('s')}))) (i32.mul (i32.div_u ${g('c0')} (i32.load offset=${KVS.S} ${g('s')})) (i32.load offset=${KVS.hstep} ${g('s')}))) (i32.shr_u ${g('c0')} ${i32(1)}))`)}
    ${set('chs', `(i32.add (i32.add ${g('main')} (i32.load offset=${KVS.oChan} ${g('s')})) (i32.shl ${g('c0')} ${i32(2)}))`)}
    ${set('cho', `(i32.add ${g('chs')} (i32.shl (i32.load offset=${KVS.R} ${g('s')}) ${i32(2)}))`)}
    ${set('lut', `(i32.add ${g('main')} (i32.load offset=${KVS.oLut} ${g('s')}))`)}
    ${set('half', `(i32.shr_u ${g('D')} ${i32(1)})`)} ${set('hb', `(i32.shl ${g('half')} ${i32(2)})`)}
    ;; the query folded with the channels' scale and offset, four pairs a chunk
    ${set('wp', g('w'))}
    (block $fd (loop $fl
      (br_if $fd (i32.ge_u ${g('i')} ${g('half')}))
      ${set('qv', `(v128.load ${F('qa', g('i'))})`)} ${set('qw', `(v128.load (i32.add ${F('qa', g('i'))} ${g('hb')}))`)}
      ${set('sa', `(v128.load ${F('chs', g('i'))})`)} ${set('sb', `(v128.load (i32.add ${F('chs', g('i'))} ${g('hb')}))`)}
      ${set('oa', `(v128.load ${F('cho', g('i'))})`)} ${set('ob', `(v128.load (i32.add ${F('cho', g('i'))} ${g('hb')}))`)}
      (v128.store ${g('wp')} (f32x4.mul ${g('qv')} ${g('sa')}))
      (v128.store offset=16 ${g('wp')} (f32x4.mul ${g('qw')} ${g('sb')}))
      (v128.store offset=32 ${g('wp')} (f32x4.mul ${g('qw')} ${g('sa')}))
      (v128.store offset=48 ${g('wp')} (f32x4.neg (f32x4.mul ${g('qv')} ${g('sb')})))
      (v128.store offset=64 ${g('wp')} (f32x4.add (f32x4.mul ${g('qv')} ${g('oa')}) (f32x4.mul ${g('qw')} ${g('ob')})))
      (v128.store offset=80 ${g('wp')} (f32x4.sub (f32x4.mul ${g('qw')} ${g('oa')}) (f32x4.mul ${g('qv')} ${g('ob')})))
      ${inc('wp', 96)} ${inc('i', 4)}
      (br $fl)))
    ;; the table as four byte planes (as $dec_rows)
    ${set('k', g('lut'))}
    ${set('a', `(i8x16.shuffle 0 4 8 12 16 20 24 28 1 5 9 13 17 21 25 29 (v128.load ${g('k')}) (v128.load offset=16 ${g('k')}))`)}
    ${set('b', `(i8x16.shuffle 0 4 8 12 16 20 24 28 1 5 9 13 17 21 25 29 (v128.load offset=32 ${g('k')}) (v128.load offset=48 ${g('k')}))`)}
    ${set('p0', `(i8x16.shuffle 0 1 2 3 4 5 6 7 16 17 18 19 20 21 22 23 ${g('a')} ${g('b')})`)}
    ${set('p1', `(i8x16.shuffle 8 9 10 11 12 13 14 15 24 25 26 27 28 29 30 31 ${g('a')} ${g('b')})`)}
    ${set('a', `(i8x16.shuffle 2 6 10 14 18 22 26 30 3 7 11 15 19 23 27 31 (v128.load ${g('k')}) (v128.load offset=16 ${g('k')}))`)}
    ${set('b', `(i8x16.shuffle 2 6 10 14 18 22 26 30 3 7 11 15 19 23 27 31 (v128.load offset=32 ${g('k')}) (v128.load offset=48 ${g('k')}))`)}
    ${set('p2', `(i8x16.shuffle 0 1 2 3 4 5 6 7 16 17 18 19 20 21 22 23 ${g('a')} ${g('b')})`)}
    ${set('p3', `(i8x16.shuffle 8 9 10 11 12 13 14 15 24 25 26 27 28 29 30 31 ${g('a')} ${g('b')})`)}
    ${set('mlo', '(v128.const i32x4 0x0f0f0f0f 0x0f0f0f0f 0x0f0f0f0f 0x0f0f0f0f)')}
    ;; exact entries: the slice is one segment of the index, so its entries are [rowptr + seg[h], the next segment's start)
    ${set('sparse', `(i32.load offset=${KVS.sparse} ${g('s')})`)}
    (if ${g('sparse')} (then
      ${set('rp', `(i32.add (i32.add ${g('main')} (i32.load offset=${KVS.oRowptr} ${g('s')})) (i32.shl ${g('row0')} ${i32(2)}))`)}
      ${set('rpStep', `(i32.shl ${g('rstep')} ${i32(2)})`)}
      ${set('k', `(i32.load offset=${KVS.segs} ${g('s')})`)}
      ${set('sp', `(i32.add (i32.add ${g('main')} (i32.load offset=${KVS.oSeg} ${g('s')})) (i32.shl (i32.mul ${g('row0')} ${g('k')}) ${i32(1)}))`)}
      ${set('spStep', `(i32.shl (i32.mul ${g('rstep')} ${g('k')}) ${i32(1)})`)}
      ${set('s0b', `(i32.div_u ${g('c0')} ${g('D')})`)}
      ${set('s1b', `(select (i32.shl (i32.add ${g('s0b')} ${i32(1)}) ${i32(1)}) ${i32(0)} (i32.lt_u (i32.add ${g('s0b')} ${i32(1)}) ${g('k')}))`)}
      ${set('s0b', `(i32.shl ${g('s0b')} ${i32(1)})`)}
      ${set('ov', `(i32.load offset=${KVS.out} ${g('s')})`)}
      ${set('oval', `(i32.add ${g('ov')} (i32.load offset=${KVS.oVal} ${g('s')}))`)}))
    ${set('mt', '(f32.const -inf)')}
    (block $jd (loop $jl
      (br_if $jd (i32.ge_u ${g('j')} ${g('nb')}))
      ${set('cs', `(i32.add ${g('tab')} (i32.mul (i32.load ${g('pos')}) (i32.shl ${g('hb')} ${i32(1)})))`)}
      ${set('acc', f4(0))}
      ;; channels a = i < half, sixteen a pass: cos ⊙ (U_a l + C) + sin ⊙ (W_a l + S); then channels
      ;; b = i + half: l ⊙ (U_b cos + W_b sin). One chunk of codes at a time (few live registers)
      ${pass('a')}
      ${pass('b')}
      ${set('t', hsum('acc'))}
      (if ${g('sparse')} (then
        ${set('e', `(i32.load ${g('rp')})`)} ${set('e1', `(i32.load offset=4 ${g('rp')})`)}
        (if ${g('s1b')} (then ${set('e1', `(i32.add ${g('e')} (i32.load16_u (i32.add ${g('sp')} ${g('s1b')})))`)}))
        ${set('e', `(i32.add ${g('e')} (i32.load16_u (i32.add ${g('sp')} ${g('s0b')})))`)}
        ${set('e1', `(i32.sub ${g('e1')} ${g('e')})`)}
        ;; each exact entry: (x − its dense value) times its channel's weight in q · R(p) k. A slice
        ;; holds 0, 1 or 2 of them nearly always: those two are added without a branch on the count
        ;; (entry 0 read and its term dropped by a select where there is none), a loop takes the rest
        ${[0, 1].map((u) => `
        ${set('k', `(select ${u ? `(i32.add ${g('e')} ${i32(u)})` : g('e')} ${i32(0)} (i32.gt_u ${g('e1')} ${i32(u)}))`)}
        ${set('t', `(f32.add ${g('t')} (select ${correction('k')} (f32.const 0) (i32.gt_u ${g('e1')} ${i32(u)})))`)}`).join('')}
        (if (i32.gt_u ${g('e1')} ${i32(2)}) (then
          ${set('e1', `(i32.add ${g('e')} ${g('e1')})`)} ${inc('e', 2)}
          (block $ed (loop $el
            (br_if $ed (i32.ge_u ${g('e')} ${g('e1')}))
            ${set('t', `(f32.add ${g('t')} ${correction('e')})`)}
            ${inc('e', 1)}
            (br $el)))))
        ${inc('rp', g('rpStep'))} ${inc('sp', g('spStep'))}))
      ${set('t', `(f32.mul ${g('t')} (f32x4.extract_lane 0 ${g('sc')}))`)}
      (if ${g('m')} (then (if (i32.eqz (i32.load8_u (i32.add ${g('m')} ${g('j')}))) (then ${set('t', '(f32.const -inf)')}))))
      (f32.store ${F('out', g('j'))} ${g('t')})
      ${set('mt', `(f32.max ${g('mt')} ${g('t')})`)}
      ${inc('codes', g('codesStep'))} ${inc('pos', g('pstep'))} ${inc('j', 1)}
      (br $jl)))
    ${g('mt')})`);
