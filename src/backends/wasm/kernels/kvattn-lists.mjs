// Exact entries (outliers, a sink row's every value) of the sixteen-a-vector paths of the packed
// KV-cache attention module (kvattn.wat.mjs: kvattn-keyst.mjs's keys, kvattn-valst.mjs's values)
// read from the stream's per-head lists (HeadEntries in src/tensor/packed-kv.ts: one sequence, a
// kv head's entries in row order, each (row · 256 + channel within the head, value)), so nothing is
// looked up row by row:
//   $kx_apply a key block's entries [t0, t1) written over the decoded keys (channel-major [D][64]);
//   $vx_apply y[ch] += p_t · (x − v_t) for each entry at a position below nv, x − v_t as the list
//             holds it (the encoder subtracts the dense value lut[code] · scale + offset, f32 as the
//             reference decodes it).
// Not for: streams without the lists (kvattn-keyst.mjs's $keys_exact and $pv_t list a block's rows
// that hold entries from the CSR index).
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

// y [n] at ya += p_t · d for the entries (t, channel, d) from lp (up to le) at positions t below nv
// (one sequence: row t), d the exact value less the dense one (the encoder stores it so), p_t at w [t].
export const VX_APPLY = `
  (func $vx_apply (param $lp i32) (param $le i32) (param $nv i32) (param $ya i32) (param $w i32)
    (local $x i32) (local $t i32) (local $ad i32)
    (block $d (loop $l
      (br_if $d (i32.ge_u ${g('lp')} ${g('le')}))
      ${set('x', `(i32.load ${g('lp')})`)}
      ${set('t', `(i32.shr_u ${g('x')} ${i32(ROW)})`)}
      (br_if $d (i32.ge_u ${g('t')} ${g('nv')}))
      ${set('ad', `(i32.add ${g('ya')} (i32.shl (i32.and ${g('x')} ${i32(CH)}) ${i32(2)}))`)}
      (f32.store ${g('ad')} (f32.add (f32.load ${g('ad')}) (f32.mul (f32.load (i32.add ${g('w')} (i32.shl ${g('t')} ${i32(2)}))) (f32.load offset=4 ${g('lp')}))))
      ${inc('lp', 8)}
      (br $l))))`;
