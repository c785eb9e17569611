// Exact entries (outliers, a sink row's every value) of the sixteen-a-vector paths of the packed
// KV-cache attention module (kvattn.wat.mjs: kvattn-keyst.mjs's keys, kvattn-valst.mjs's values),
// sorted once a call into one list per (sequence, kv head) instead of being looked up row by row:
//   $bucket   one pass over the rows' segment index gives each list's start (the entries of heads
//             before h in a row are seg[row][h], so a list starts at the sum of those over its
//             sequence's rows), then one pass over the entries, in row order, appends each to its
//             list as (position t << 10 | channel in the head, value); only lists of the task's
//             (sequence, kv head) range [bk0, bk1] are written;
//   $kx_apply a key block's entries [t0, t1) written over the decoded keys (channel-major [D][64]);
//   $vx_apply y[ch] += p_t · (x − v_t) for each entry at a position below nv, v_t decoded as the
//             reference decodes it (lut[code] · scale + offset, the row's f16 scale and offset).
// A list of a stream whose heads are one segment of the index each (R / segs = the head's width,
// at most 1024 channels). Scratch at st: st i32 [B · HKV + 1] (each list's first entry), cur i32
// [B · HKV] (its end), then the lists, 8 bytes an entry (as many as the rows below TK · B hold).
// Not for: other layouts (kvattn-exact.mjs writes their entries row by row).
import { KVS } from './kvattn-layout.mjs';
import { g, i32, inc, set } from './wat-text.mjs';

/** The lists' entries from `st` (st, cur, then 8-byte aligned): address of the first entry. */
export const listBase = (st, nbk) => `(i32.and (i32.add (i32.add ${st} (i32.shl (i32.add (i32.shl ${nbk} ${i32(1)}) ${i32(1)}) ${i32(2)})) ${i32(7)}) ${i32(-8)})`;

export const BUCKET = `
  (func $bucket (param $s i32) (param $TKB i32) (param $B i32) (param $HKV i32) (param $D i32) (param $bk0 i32) (param $bk1 i32) (param $st i32)
    (local $main i32) (local $rp i32) (local $sp i32) (local $nbk i32) (local $cur i32) (local $list i32) (local $ov i32) (local $oval i32)
    (local $j i32) (local $b i32) (local $t i32) (local $h i32) (local $e i32) (local $e1 i32) (local $c i32) (local $bk i32) (local $a i32) (local $x i32)
    (local $sr i32) (local $base i32) (local $lg i32) (local $pw i32) (local $bkb i32) (local $segB i32) (local $sv v128)
    ${set('main', `(i32.load offset=${KVS.main} ${g('s')})`)}
    ${set('rp', `(i32.add ${g('main')} (i32.load offset=${KVS.oRowptr} ${g('s')}))`)}
    ${set('sp', `(i32.add ${g('main')} (i32.load offset=${KVS.oSeg} ${g('s')}))`)}
    ${set('ov', `(i32.load offset=${KVS.out} ${g('s')})`)}
    ${set('oval', `(i32.add ${g('ov')} (i32.load offset=${KVS.oVal} ${g('s')}))`)}
    ${set('nbk', `(i32.mul ${g('B')} ${g('HKV')})`)}
    ${set('cur', `(i32.add ${g('st')} (i32.shl (i32.add ${g('nbk')} ${i32(1)}) ${i32(2)}))`)}
    ${set('list', listBase(g('st'), g('nbk')))}
    ${set('segB', `(i32.shl ${g('HKV')} ${i32(1)})`)}
    (memory.fill ${g('st')} ${i32(0)} (i32.shl (i32.add (i32.shl ${g('nbk')} ${i32(1)}) ${i32(1)}) ${i32(2)}))
    ;; st[b, h] = Σ over b's rows of seg[row][h]; cur[b] = b's entries (both before the bases are added)
    (block $jd (loop $jl
      (br_if $jd (i32.ge_u ${g('j')} ${g('TKB')}))
      ${set('a', `(i32.add ${g('cur')} (i32.shl ${g('b')} ${i32(2)}))`)}
      (i32.store ${g('a')} (i32.add (i32.load ${g('a')}) (i32.sub (i32.load offset=4 ${g('rp')}) (i32.load ${g('rp')}))))
      ${set('a', `(i32.add ${g('st')} (i32.shl (i32.mul ${g('b')} ${g('HKV')}) ${i32(2)}))`)}
      ${set('sr', g('sp'))} ${set('h', i32(0))}
      (block $hd (loop $hl
        (br_if $hd (i32.gt_u (i32.add ${g('h')} ${i32(8)}) ${g('HKV')}))
        ${set('sv', `(v128.load ${g('sr')})`)}
        (v128.store ${g('a')} (i32x4.add (v128.load ${g('a')}) (i32x4.extend_low_i16x8_u ${g('sv')})))
        (v128.store offset=16 ${g('a')} (i32x4.add (v128.load offset=16 ${g('a')}) (i32x4.extend_high_i16x8_u ${g('sv')})))
        ${inc('a', 32)} ${inc('sr', 16)} ${inc('h', 8)}
        (br $hl)))
      (block $h1d (loop $h1l
        (br_if $h1d (i32.ge_u ${g('h')} ${g('HKV')}))
        (i32.store ${g('a')} (i32.add (i32.load ${g('a')}) (i32.load16_u ${g('sr')})))
        ${inc('a', 4)} ${inc('sr', 2)} ${inc('h', 1)}
        (br $h1l)))
      ${inc('rp', 4)} ${inc('sp', g('segB'))} ${inc('j', 1)} ${inc('b', 1)}
      (if (i32.eq ${g('b')} ${g('B')}) (then ${set('b', i32(0))}))
      (br $jl)))
    ;; each sequence's lists after the previous sequences' entries; cur = st (the lists are empty)
    ${set('b', i32(0))} ${set('a', g('st'))}
    (block $bd (loop $bl
      (br_if $bd (i32.ge_u ${g('b')} ${g('B')}))
      ${set('x', `(i32.load (i32.add ${g('cur')} (i32.shl ${g('b')} ${i32(2)})))`)}
      ${set('h', i32(0))}
      (block $pd (loop $pl
        (br_if $pd (i32.ge_u ${g('h')} ${g('HKV')}))
        (i32.store ${g('a')} (i32.add (i32.load ${g('a')}) ${g('base')}))
        ${inc('a', 4)} ${inc('h', 1)}
        (br $pl)))
      ${inc('base', g('x'))} ${inc('b', 1)}
      (br $bl)))
    (i32.store ${g('a')} ${g('base')})
    (memory.copy ${g('cur')} ${g('st')} (i32.shl ${g('nbk')} ${i32(2)}))
    ;; the entries in row order, each to its list (heads of a power-of-two width by a shift)
    ${set('pw', `(i32.eqz (i32.and ${g('D')} (i32.sub ${g('D')} ${i32(1)})))`)} ${set('lg', `(i32.ctz ${g('D')})`)}
    ${set('rp', `(i32.add ${g('main')} (i32.load offset=${KVS.oRowptr} ${g('s')}))`)}
    ${set('j', i32(0))} ${set('b', i32(0))} ${set('t', i32(0))} ${set('bkb', i32(0))}
    ${set('e', `(i32.load ${g('rp')})`)}
    (block $rd (loop $rl
      (br_if $rd (i32.ge_u ${g('j')} ${g('TKB')}))
      ${set('e1', `(i32.load offset=4 ${g('rp')})`)}
      (block $ed (loop $el
        (br_if $ed (i32.ge_u ${g('e')} ${g('e1')}))
        ${set('c', `(i32.load16_u (i32.add ${g('ov')} (i32.shl ${g('e')} ${i32(1)})))`)}
        (if ${g('pw')} (then ${set('h', `(i32.shr_u ${g('c')} ${g('lg')})`)}) (else ${set('h', `(i32.div_u ${g('c')} ${g('D')})`)}))
        ${set('bk', `(i32.add ${g('bkb')} ${g('h')})`)}
        (if (i32.le_u (i32.sub ${g('bk')} ${g('bk0')}) (i32.sub ${g('bk1')} ${g('bk0')})) (then
          ${set('a', `(i32.add ${g('cur')} (i32.shl ${g('bk')} ${i32(2)}))`)}
          ${set('x', `(i32.load ${g('a')})`)}
          (i32.store ${g('a')} (i32.add ${g('x')} ${i32(1)}))
          ${set('x', `(i32.add ${g('list')} (i32.shl ${g('x')} ${i32(3)}))`)}
          (i32.store ${g('x')} (i32.or (i32.shl ${g('t')} ${i32(10)}) (i32.sub ${g('c')} (i32.mul ${g('h')} ${g('D')}))))
          (i32.store offset=4 ${g('x')} (i32.load (i32.add ${g('oval')} (i32.shl ${g('e')} ${i32(2)}))))))
        ${inc('e', 1)}
        (br $el)))
      ${inc('rp', 4)} ${inc('j', 1)} ${inc('b', 1)} ${inc('bkb', g('HKV'))}
      (if (i32.eq ${g('b')} ${g('B')}) (then ${set('b', i32(0))} ${set('bkb', i32(0))} ${inc('t', 1)}))
      (br $rl))))`;

// Entries from lp (up to le) at positions below t1 written over a key block decoded channel-major
// at kb [D][64] whose first position is t0; returns the first entry not written.
export const KX_APPLY = `
  (func $kx_apply (param $lp i32) (param $le i32) (param $t0 i32) (param $t1 i32) (param $kb i32) (result i32)
    (local $w i32)
    (block $d (loop $l
      (br_if $d (i32.ge_u ${g('lp')} ${g('le')}))
      ${set('w', `(i32.load ${g('lp')})`)}
      (br_if $d (i32.ge_u (i32.shr_u ${g('w')} ${i32(10)}) ${g('t1')}))
      (f32.store (i32.add ${g('kb')} (i32.add (i32.shl (i32.and ${g('w')} ${i32(1023)}) ${i32(8)}) (i32.shl (i32.sub (i32.shr_u ${g('w')} ${i32(10)}) ${g('t0')}) ${i32(2)})))
        (f32.load offset=4 ${g('lp')}))
      ${inc('lp', 8)}
      (br $l)))
    ${g('lp')})`;

// y [n] at ya += p_t · (x − v_t) for the entries from lp (up to le) at positions t below nv of
// sequence b (rows t · B + b), values [c0, c0 + n) of the stream at s (4-bit codes, a group of n
// values or more per row with f16 scale and offset), p_t at w [t].
export const VX_APPLY = `
  (func $vx_apply (param $s i32) (param $lp i32) (param $le i32) (param $nv i32) (param $b i32) (param $B i32) (param $c0 i32) (param $ya i32) (param $w i32) (param $tab i32)
    (local $main i32) (local $codes i32) (local $rb i32) (local $gRow i32) (local $gb i32) (local $lut i32) (local $x i32) (local $t i32) (local $ch i32) (local $row i32) (local $o i32) (local $ad i32)
    (local $v f32)
    ${set('main', `(i32.load offset=${KVS.main} ${g('s')})`)}
    ${set('rb', `(i32.load offset=${KVS.rowBytes} ${g('s')})`)}
    ${set('codes', `(i32.add (i32.add ${g('main')} (i32.mul (i32.div_u ${g('c0')} (i32.load offset=${KVS.S} ${g('s')})) (i32.load offset=${KVS.hstep} ${g('s')}))) (i32.shr_u ${g('c0')} ${i32(1)}))`)}
    ;; the row's group: k = R / G groups a row, this slice's is c0 / G
    ${set('gb', `(i32.shl (i32.div_u (i32.load offset=${KVS.R} ${g('s')}) (i32.load offset=${KVS.G} ${g('s')})) ${i32(2)})`)}
    ${set('gRow', `(i32.add (i32.add ${g('main')} (i32.load offset=${KVS.oGrp} ${g('s')})) (i32.shl (i32.div_u ${g('c0')} (i32.load offset=${KVS.G} ${g('s')})) ${i32(2)}))`)}
    ${set('lut', `(i32.add ${g('main')} (i32.load offset=${KVS.oLut} ${g('s')}))`)}
    (block $d (loop $l
      (br_if $d (i32.ge_u ${g('lp')} ${g('le')}))
      ${set('x', `(i32.load ${g('lp')})`)}
      ${set('t', `(i32.shr_u ${g('x')} ${i32(10)})`)}
      (br_if $d (i32.ge_u ${g('t')} ${g('nv')}))
      ${set('ch', `(i32.and ${g('x')} ${i32(1023)})`)}
      ${set('row', `(i32.add (i32.mul ${g('t')} ${g('B')}) ${g('b')})`)}
      ${set('o', `(i32.add ${g('gRow')} (i32.mul ${g('row')} ${g('gb')}))`)}
      ${set('v', `(f32.add (f32.mul
        (f32.load (i32.add ${g('lut')} (i32.shl (i32.and (i32.shr_u (i32.load8_u (i32.add (i32.add ${g('codes')} (i32.mul ${g('row')} ${g('rb')})) (i32.shr_u ${g('ch')} ${i32(1)}))) (i32.shl (i32.and ${g('ch')} ${i32(1)}) ${i32(2)})) ${i32(15)}) ${i32(2)})))
        (f32.load (i32.add ${g('tab')} (i32.shl (i32.load16_u ${g('o')}) ${i32(2)}))))
        (f32.load (i32.add ${g('tab')} (i32.shl (i32.load16_u offset=2 ${g('o')}) ${i32(2)}))))`)}
      ${set('ad', `(i32.add ${g('ya')} (i32.shl ${g('ch')} ${i32(2)}))`)}
      (f32.store ${g('ad')} (f32.add (f32.load ${g('ad')}) (f32.mul (f32.load (i32.add ${g('w')} (i32.shl ${g('t')} ${i32(2)}))) (f32.sub (f32.load offset=4 ${g('lp')}) ${g('v')}))))
      ${inc('lp', 8)}
      (br $l))))`;
