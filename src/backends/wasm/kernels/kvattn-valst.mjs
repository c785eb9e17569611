// The weighted sum of 4-bit values with one scale and offset per row (KVQuant's per-token values),
// sixteen rows a vector (lanes = rows), for the packed KV-cache attention module (kvattn.wat.mjs),
// where one query head reads each kv head. With v_j = lut[c_j] · s_j + o_j:
//   y_ch += Σ_j (p_j s_j) lut[c_j,ch] + Σ_j p_j o_j
// a block's codes transposed sixteen rows at a time (kvattn-keyst.mjs's byte transpose), each
// channel's sixteen codes looked up in the table's byte planes (held in registers: one table for
// every channel) and met by the rows' weights p_j s_j, summed per channel across the block in four
// lanes (fused multiply-adds in the relaxed build), then y_ch += the lanes' sum and Σ p_j o_j; each
// exact entry as p_j · (x − v_j), v_j decoded as the reference decodes it (here from the CSR index;
// from the stream's per-head list, x − v_j as stored, where it keeps one: kvattn-lists.mjs). Not the
// reference's order of sums (y within f32 rounding of it).
// Not for: other layouts ($dec_rows and $pv).
import { KVS } from './kvattn-layout.mjs';
import { lutPlanes } from './kvattn-codes.mjs';
import { exactChan, exactVal } from './kvattn-exact.mjs';
import { listRows4, lookup16, rowAddrs, transposeHalf } from './kvattn-keyst.mjs';
import { hsum } from './kvattn-dots.mjs';
import { f4 } from './simd-math.mjs';
import { g, i32, inc, set } from './wat-text.mjs';

/** f32 at the f16 table entry of the u16 at `at`. */
const f16At = (at) => `(f32.load (i32.add ${g('tab')} (i32.shl (i32.load16_u ${at}) ${i32(2)})))`;

/**
 * y at `addr` += p_j · (x − v_j) for entry `e` of row r at channel ch: v_j = lut[code] · s_j + o_j as
 * the reference decodes it (code at oo, the row's codes).
 */
const correct = (addr, e) => `${set('ad', addr)}
      ${set('xv', `(f32.add (f32.mul (f32.load (i32.add ${g('lut')} (i32.shl (i32.and (i32.shr_u (i32.load8_u (i32.add ${g('oo')} (i32.shr_u ${g('ch')} ${i32(1)}))) (i32.shl (i32.and ${g('ch')} ${i32(1)}) ${i32(2)})) ${i32(15)}) ${i32(2)}))) ${g('sc')}) ${g('of')})`)}
      (f32.store ${g('ad')} (f32.add (f32.load ${g('ad')}) (f32.mul ${g('pj')} (f32.sub ${exactVal(e)} ${g('xv')}))))`;

/** A value channel: its sixteen rows' table values times their weights, into the channel's four lanes at acc. */
const valueChannel = (relaxed) => (ch) => `${lookup16(relaxed, [g('p0'), g('p1'), g('p2'), g('p3')])}
        ${set('oo', `(i32.add ${g('acc')} (i32.shl (i32.add ${g('chb')} ${i32(ch)}) ${i32(4)}))`)}
        (v128.store ${g('oo')} ${relaxed
    ? `(f32x4.relaxed_madd ${g('W3')} ${g('l3')} (f32x4.relaxed_madd ${g('W2')} ${g('l2')} (f32x4.relaxed_madd ${g('W1')} ${g('l1')} (f32x4.relaxed_madd ${g('W0')} ${g('l0')} (v128.load ${g('oo')})))))`
    : `(f32x4.add (v128.load ${g('oo')}) (f32x4.add (f32x4.add (f32x4.mul ${g('W0')} ${g('l0')}) (f32x4.mul ${g('W1')} ${g('l1')})) (f32x4.add (f32x4.mul ${g('W2')} ${g('l2')}) (f32x4.mul ${g('W3')} ${g('l3')}))))`})`;

// y [n] at ya += Σ_r w[r] · v_r over rows row0 + r · rstep (r < nb ≤ 64), values [c0, c0 + n) of the
// stream at s: 4-bit codes, a group of n values or more per row with f16 scale and offset, n a
// multiple of 32, the slice one segment of the index (or no index). ws: 65 + 4 · n f32 of scratch
// (the rows' weights, then each channel's four lanes, then Σ p_j o_j), kept from block to block of
// one row of the task: fl bit 0, the first block (lanes and sum zeroed first), bit 1, the last (y +=
// the lanes' sums and Σ p_j o_j after it); ex: 12 bytes a row.
export const PV_T = (relaxed) => `
  (func $pv_t (param $s i32) (param $row0 i32) (param $rstep i32) (param $nb i32) (param $c0 i32) (param $n i32) (param $ya i32) (param $w i32) (param $tab i32) (param $ws i32) (param $ex i32) (param $fl i32) (param $sS i32) (param $sO i32)
    (local $main i32) (local $codes i32) (local $codesStep i32) (local $gRow i32) (local $gStep i32) (local $r i32) (local $k i32) (local $acc i32)
    (local $hoff i32) (local $chb i32) (local $oo i32) (local $lut i32) (local $x i32) (local $xe i32) (local $c i32)
    ${Array.from({ length: 16 }, (_, k) => `(local $ra${k} i32)`).join(' ')}
    ${Array.from({ length: 16 }, (_, k) => `(local $v${k} v128) (local $w${k} v128)`).join(' ')}
    (local $cv v128) (local $mlo v128) (local $a v128) (local $b v128) (local $z0 v128) (local $z1 v128) (local $z2 v128) (local $z3 v128)
    (local $l0 v128) (local $l1 v128) (local $l2 v128) (local $l3 v128) (local $p0 v128) (local $p1 v128) (local $p2 v128) (local $p3 v128)
    (local $W0 v128) (local $W1 v128) (local $W2 v128) (local $W3 v128) (local $cs v128)
    (local $C f32) (local $pj f32) (local $sc f32) (local $of f32) (local $xv f32)
    (local $e i32) (local $e1 i32) (local $rp i32) (local $sp i32) (local $segs i32) (local $s0b i32) (local $s1b i32) (local $ov i32) (local $oval i32) (local $ch i32) (local $rpS i32) (local $spS i32) (local $len i32) (local $ok i32) (local $ad i32) (local $qw v128) (local $qn v128) (local $qe v128)
    ${set('main', `(i32.load offset=${KVS.main} ${g('s')})`)}
    ${set('codesStep', `(i32.mul ${g('rstep')} (i32.load offset=${KVS.rowBytes} ${g('s')}))`)}
    ${set('codes', `(i32.add (i32.add (i32.add ${g('main')} (i32.mul ${g('row0')} (i32.load offset=${KVS.rowBytes} ${g('s')}))) (i32.mul (i32.div_u ${g('c0')} (i32.load offset=${KVS.S} ${g('s')})) (i32.load offset=${KVS.hstep} ${g('s')}))) (i32.shr_u ${g('c0')} ${i32(1)}))`)}
    ${set('k', `(i32.div_u (i32.load offset=${KVS.R} ${g('s')}) (i32.load offset=${KVS.G} ${g('s')}))`)}
    ${set('gStep', `(i32.shl (i32.mul ${g('rstep')} ${g('k')}) ${i32(2)})`)}
    ${set('gRow', `(i32.add (i32.add ${g('main')} (i32.load offset=${KVS.oGrp} ${g('s')})) (i32.shl (i32.add (i32.mul ${g('row0')} ${g('k')}) (i32.div_u ${g('c0')} (i32.load offset=${KVS.G} ${g('s')}))) ${i32(2)}))`)}
    ;; the rows' weights p_j s_j (0 past nb: those rows repeat the last one's codes), and Σ p_j o_j:
    ;; four rows a vector where the rows' scales and offsets are at hand in f32 (sS, sO: [row],
    ;; rows one apart), then a row at a time
    ${set('cs', f4(0))}
    (if ${g('sS')} (then
      ${set('sS', `(i32.add ${g('sS')} (i32.shl ${g('row0')} ${i32(2)}))`)} ${set('sO', `(i32.add ${g('sO')} (i32.shl ${g('row0')} ${i32(2)}))`)}
      (block $p4d (loop $p4l
        (br_if $p4d (i32.gt_u (i32.add ${g('r')} ${i32(4)}) ${g('nb')}))
        ${set('W2', `(v128.load (i32.add ${g('w')} (i32.shl ${g('r')} ${i32(2)})))`)}
        (v128.store (i32.add ${g('ws')} (i32.shl ${g('r')} ${i32(2)})) (f32x4.mul ${g('W2')} (v128.load (i32.add ${g('sS')} (i32.shl ${g('r')} ${i32(2)})))))
        ${set('cs', `(f32x4.add ${g('cs')} (f32x4.mul ${g('W2')} (v128.load (i32.add ${g('sO')} (i32.shl ${g('r')} ${i32(2)})))))`)}
        ${inc('gRow', `(i32.shl ${g('gStep')} ${i32(2)})`)} ${inc('r', 4)}
        (br $p4l)))))
    (block $pd (loop $pl
      (br_if $pd (i32.ge_u ${g('r')} ${i32(64)}))
      (if (i32.lt_u ${g('r')} ${g('nb')})
        (then
          ${set('pj', `(f32.load (i32.add ${g('w')} (i32.shl ${g('r')} ${i32(2)})))`)}
          (f32.store (i32.add ${g('ws')} (i32.shl ${g('r')} ${i32(2)})) (f32.mul ${g('pj')} ${f16At(g('gRow'))}))
          ${set('C', `(f32.add ${g('C')} (f32.mul ${g('pj')} ${f16At(`(i32.add ${g('gRow')} ${i32(2)})`)}))`)}
          ${inc('gRow', g('gStep'))})
        (else (f32.store (i32.add ${g('ws')} (i32.shl ${g('r')} ${i32(2)})) (f32.const 0))))
      ${inc('r', 1)}
      (br $pl)))
    ${set('gRow', `(i32.sub ${g('gRow')} (i32.mul ${g('gStep')} ${g('nb')}))`)}
    ${set('C', `(f32.add ${hsum('cs')} ${g('C')})`)}
    ;; each channel's four lanes and Σ p_j o_j, zeroed at the first block
    ${set('acc', `(i32.add ${g('ws')} ${i32(256)})`)}
    ${set('oo', `(i32.add ${g('acc')} (i32.shl ${g('n')} ${i32(4)}))`)}
    (if (i32.and ${g('fl')} ${i32(1)}) (then (memory.fill ${g('acc')} ${i32(0)} (i32.add (i32.shl ${g('n')} ${i32(4)}) ${i32(4)}))))
    ${set('C', `(f32.add (f32.load ${g('oo')}) ${g('C')})`)}
    (f32.store ${g('oo')} ${g('C')})
    ;; the 16-entry table as four byte planes
    ${set('lut', `(i32.add ${g('main')} (i32.load offset=${KVS.oLut} ${g('s')}))`)}
    ${lutPlanes(g('lut'))}
    ${set('mlo', '(v128.const i32x4 0x0f0f0f0f 0x0f0f0f0f 0x0f0f0f0f 0x0f0f0f0f)')}
    ${set('r', i32(0))}
    (block $gd (loop $gl
      (br_if $gd (i32.ge_u ${g('r')} ${g('nb')}))
      ${rowAddrs}
      ${[0, 1, 2, 3].map((u) => set(`W${u}`, `(v128.load offset=${16 * u} (i32.add ${g('ws')} (i32.shl ${g('r')} ${i32(2)})))`)).join(' ')}
      ${set('hoff', i32(0))} ${set('chb', i32(0))}
      (block $hd (loop $hl
        (br_if $hd (i32.ge_u ${g('chb')} ${g('n')}))
        ${transposeHalf(valueChannel(relaxed))}
        ${inc('hoff', 16)} ${inc('chb', 32)}
        (br $hl)))
      ${inc('r', 16)}
      (br $gl)))
    ;; at the last block, y += the lanes' sums + Σ p_j o_j
    ${set('cs', `(f32x4.splat ${g('C')})`)} ${set('c', i32(0))}
    (if (i32.eqz (i32.and ${g('fl')} ${i32(2)})) (then ${set('c', g('n'))}))
    (block $yd (loop $yl
      (br_if $yd (i32.ge_u ${g('c')} ${g('n')}))
      ${set('oo', `(i32.add ${g('acc')} (i32.shl ${g('c')} ${i32(4)}))`)}
      (v128.store (i32.add ${g('ya')} (i32.shl ${g('c')} ${i32(2)})) (f32x4.add (v128.load (i32.add ${g('ya')} (i32.shl ${g('c')} ${i32(2)})))
        (f32x4.add (call $hadd4 (v128.load ${g('oo')}) (v128.load offset=16 ${g('oo')}) (v128.load offset=32 ${g('oo')}) (v128.load offset=48 ${g('oo')})) ${g('cs')})))
      ${inc('c', 4)}
      (br $yl)))
    (if (i32.or (i32.eqz (i32.load offset=${KVS.sparse} ${g('s')})) (i32.ne (i32.load offset=${KVS.hx} ${g('s')}) ${i32(0)})) (then (return)))
    ;; exact entries, y[ch] += p_j · (x − v_j): the rows that hold any listed first (loads only), then their entries
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
    ${set('r', i32(0))} ${set('x', g('ex'))}
    ${listRows4(g('nb'), 'e1', 'spS')}
    (block $rd (loop $rl
      (br_if $rd (i32.ge_u ${g('r')} ${g('nb')}))
      ${set('e', `(i32.load ${g('rp')})`)}
      ${set('e1', `(select (i32.add ${g('e')} (i32.load16_u (i32.add ${g('sp')} ${g('s1b')}))) (i32.load offset=4 ${g('rp')}) ${g('s1b')})`)}
      ${set('e', `(i32.add ${g('e')} (i32.load16_u (i32.add ${g('sp')} ${g('s0b')})))`)}
      (i32.store ${g('x')} ${g('r')}) (i32.store offset=4 ${g('x')} ${g('e')}) (i32.store offset=8 ${g('x')} ${g('e1')})
      ${inc('x', `(select ${i32(12)} ${i32(0)} (i32.lt_u ${g('e')} ${g('e1')}))`)}
      ${inc('rp', g('rpS'))} ${inc('sp', g('spS'))} ${inc('r', 1)}
      (br $rl)))
    ${set('xe', g('x'))} ${set('x', g('ex'))}
    (block $wd (loop $wl
      (br_if $wd (i32.ge_u ${g('x')} ${g('xe')}))
      ${set('r', `(i32.load ${g('x')})`)} ${set('e', `(i32.load offset=4 ${g('x')})`)} ${set('e1', `(i32.load offset=8 ${g('x')})`)} ${inc('x', 12)}
      ${set('pj', `(f32.load (i32.add ${g('w')} (i32.shl ${g('r')} ${i32(2)})))`)}
      ${set('oo', `(i32.add ${g('gRow')} (i32.mul ${g('gStep')} ${g('r')}))`)}
      ${set('sc', f16At(g('oo')))} ${set('of', f16At(`(i32.add ${g('oo')} ${i32(2)})`))}
      ${set('oo', `(i32.add ${g('codes')} (i32.mul ${g('codesStep')} ${g('r')}))`)}
      ;; the first two entries without a branch on the count (the second's sum to the dummy slot ws
      ;; where there is none), a loop for the rare rest
      ${set('len', `(i32.sub ${g('e1')} ${g('e')})`)}
      ${[0, 1].map((u) => `${set('k', u ? `(select (i32.add ${g('e')} ${i32(1)}) ${g('e')} (i32.gt_u ${g('len')} ${i32(1)}))` : g('e'))}
      ${set('ch', `(i32.sub ${exactChan(g('k'))} ${g('c0')})`)}
      ${set('ok', u ? `(i32.and (i32.gt_u ${g('len')} ${i32(1)}) (i32.lt_u ${g('ch')} ${g('n')}))` : `(i32.lt_u ${g('ch')} ${g('n')})`)}
      ${set('ch', `(select ${g('ch')} ${i32(0)} ${g('ok')})`)}
      ${correct(`(select (i32.add ${g('ya')} (i32.shl ${g('ch')} ${i32(2)})) ${g('ws')} ${g('ok')})`, g('k'))}`).join('\n      ')}
      (if (i32.gt_u ${g('len')} ${i32(2)}) (then
        ${inc('e', 2)}
        (block $ed (loop $el
          (br_if $ed (i32.ge_u ${g('e')} ${g('e1')}))
          ${set('ch', `(i32.sub ${exactChan(g('e'))} ${g('c0')})`)}
          (if (i32.lt_u ${g('ch')} ${g('n')}) (then ${correct(`(i32.add ${g('ya')} (i32.shl ${g('ch')} ${i32(2)}))`, g('e'))}))
          ${inc('e', 1)}
          (br $el)))))
      (br $wl))))`;
