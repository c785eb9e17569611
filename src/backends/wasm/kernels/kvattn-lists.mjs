// Exact entries (outliers, a sink row's every value) of the sixteen-a-vector paths of the packed
// KV-cache attention module (kvattn.wat.mjs: kvattn-keyst.mjs's keys, kvattn-valst.mjs's values)
// read from the stream's per-head lists (HeadEntries in src/tensor/packed-kv.ts: one sequence, a
// kv head's entries in row order, each (row · 256 + channel within the head, value)), so nothing is
// looked up row by row:
//   $kx_apply a key block's entries [t0, t1) written over the decoded keys (channel-major [D][64]);
//   $vx_apply y[ch] += p_t · (x − v_t) for each entry at a position below nv, v_t decoded as the
//             reference decodes it (lut[code] · scale + offset, the row's f16 scale and offset).
// Not for: streams without the lists (kvattn-keyst.mjs's $keys_exact and $pv_t list a block's rows
// that hold entries from the CSR index).
import { KVS } from './kvattn-layout.mjs';
import { g, i32, inc, set } from './wat-text.mjs';

/** Entry word: row · 256 + channel. */
const ROW = 8, CH = 255;

// Entries from lp (up to le) at positions below t1 written over a key block decoded channel-major
// at kb [D][64] whose first position is t0; returns the first entry not written.
export const KX_APPLY = `
  (func $kx_apply (param $lp i32) (param $le i32) (param $t0 i32) (param $t1 i32) (param $kb i32) (result i32)
    (local $w i32)
    (block $d (loop $l
      (br_if $d (i32.ge_u ${g('lp')} ${g('le')}))
      ${set('w', `(i32.load ${g('lp')})`)}
      (br_if $d (i32.ge_u (i32.shr_u ${g('w')} ${i32(ROW)}) ${g('t1')}))
      (f32.store (i32.add ${g('kb')} (i32.add (i32.shl (i32.and ${g('w')} ${i32(CH)}) ${i32(8)}) (i32.shl (i32.sub (i32.shr_u ${g('w')} ${i32(ROW)}) ${g('t0')}) ${i32(2)})))
        (f32.load offset=4 ${g('lp')}))
      ${inc('lp', 8)}
      (br $l)))
    ${g('lp')})`;

// y [n] at ya += p_t · (x − v_t) for the entries from lp (up to le) at positions t below nv (one
// sequence: row t), values [c0, c0 + n) of the stream at s (4-bit codes, a group of n values or more
// per row with f16 scale and offset), p_t at w [t].
export const VX_APPLY = `
  (func $vx_apply (param $s i32) (param $lp i32) (param $le i32) (param $nv i32) (param $c0 i32) (param $ya i32) (param $w i32) (param $tab i32)
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
      ${set('t', `(i32.shr_u ${g('x')} ${i32(ROW)})`)}
      (br_if $d (i32.ge_u ${g('t')} ${g('nv')}))
      ${set('ch', `(i32.and ${g('x')} ${i32(CH)})`)}
      ${set('row', g('t'))}
      ${set('o', `(i32.add ${g('gRow')} (i32.mul ${g('row')} ${g('gb')}))`)}
      ${set('v', `(f32.add (f32.mul
        (f32.load (i32.add ${g('lut')} (i32.shl (i32.and (i32.shr_u (i32.load8_u (i32.add (i32.add ${g('codes')} (i32.mul ${g('row')} ${g('rb')})) (i32.shr_u ${g('ch')} ${i32(1)}))) (i32.shl (i32.and ${g('ch')} ${i32(1)}) ${i32(2)})) ${i32(15)}) ${i32(2)})))
        (f32.load (i32.add ${g('tab')} (i32.shl (i32.load16_u ${g('o')}) ${i32(2)}))))
        (f32.load (i32.add ${g('tab')} (i32.shl (i32.load16_u offset=2 ${g('o')}) ${i32(2)}))))`)}
      ${set('ad', `(i32.add ${g('ya')} (i32.shl ${g('ch')} ${i32(2)}))`)}
      (f32.store ${g('ad')} (f32.add (f32.load ${g('ad')}) (f32.mul (f32.load (i32.add ${g('w')} (i32.shl ${g('t')} ${i32(2)}))) (f32.sub (f32.load offset=4 ${g('lp')}) ${g('v')}))))
      ${inc('lp', 8)}
      (br $l))))`;
