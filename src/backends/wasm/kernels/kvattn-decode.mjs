// The packed KV-cache attention module's general decoder ($dec): values [c0, c0 + n) of one row
// of a stream, a value at a time or four at a time where the slice and groups are 4-aligned, then
// the row's exact entries in that range. Any code width and params; the fast many-row decoders
// (kvattn-rows.mjs) take the common layouts. Decode rule: src/models/kvquant/codec.ts decodeRow.
import { KVS } from './kvattn-layout.mjs';
import { exactChan, putExact } from './kvattn-exact.mjs';
import { g, i32, inc, set } from './wat-text.mjs';

// decodes values [c0, c0 + n) of row `row` of the stream at `s` into f32 `out`
const lutAt = (k) => `(f32.load (i32.add ${g('lut')} (i32.shl (i32x4.extract_lane ${k} ${g('cv')}) ${i32(2)})))`;
export const DECODE = `
  (func $dec (param $s i32) (param $row i32) (param $c0 i32) (param $n i32) (param $out i32) (param $tab i32)
    (local $main i32) (local $bits i32) (local $msk i32) (local $codes i32) (local $lut i32) (local $c i32) (local $end i32)
    (local $bit i32) (local $l f32) (local $ch i32) (local $ga i32) (local $gb i32) (local $G i32) (local $ng i32) (local $ov i32)
    (local $e i32) (local $e1 i32) (local $o i32) (local $sc f32) (local $of f32) (local $mul v128) (local $mskv v128) (local $cv v128) (local $lv v128)
    ${set('main', `(i32.load offset=${KVS.main} ${g('s')})`)}
    ${set('bits', `(i32.load offset=${KVS.bits} ${g('s')})`)}
    ${set('msk', `(i32.sub (i32.shl ${i32(1)} ${g('bits')}) ${i32(1)})`)}
    ${set('codes', `(i32.add (i32.add ${g('main')} (i32.mul ${g('row')} (i32.load offset=${KVS.rowBytes} ${g('s')}))) (i32.mul (i32.div_u ${g('c0')} (i32.load offset=${KVS.S} ${g('s')})) (i32.load offset=${KVS.hstep} ${g('s')})))`)}
    ${set('lut', `(i32.add ${g('main')} (i32.load offset=${KVS.oLut} ${g('s')}))`)}
    ${set('c', g('c0'))} ${set('end', `(i32.add ${g('c0')} ${g('n')})`)} ${set('o', g('out'))}
    (block $dense
    ;; four values at a time when the slice is 4-aligned (and groups are): the 4·bits bits of four
    ;; codes (4·bits + the in-byte offset ≤ 32 for bits ≤ 8) split into lanes by a multiply and shift
    (if (i32.and (i32.eqz (i32.and (i32.or ${g('n')} ${g('c0')}) ${i32(3)}))
                 (i32.or (i32.eqz (i32.load offset=${KVS.params} ${g('s')})) (i32.eqz (i32.and (i32.load offset=${KVS.G} ${g('s')}) ${i32(3)}))))
      (then
        ${set('mul', `(i32x4.replace_lane 0 (i32x4.replace_lane 1 (i32x4.replace_lane 2 (i32x4.splat ${i32(1)}) (i32.shl ${i32(1)} ${g('bits')})) (i32.shl ${i32(1)} (i32.shl ${g('bits')} ${i32(1)}))) (i32.shl ${i32(1)} (i32.mul ${g('bits')} ${i32(3)})))`)}
        ${set('mskv', `(i32x4.splat ${g('msk')})`)}
        ${set('ch', `(i32.add ${g('main')} (i32.load offset=${KVS.oChan} ${g('s')}))`)}
        ${set('ov', `(i32.shl (i32.load offset=${KVS.R} ${g('s')}) ${i32(2)})`)}
        ${set('G', `(i32.load offset=${KVS.G} ${g('s')})`)}
        ${set('gb', `(i32.load offset=${KVS.grpBytes} ${g('s')})`)}
        ${set('ng', `(i32.div_u (i32.load offset=${KVS.R} ${g('s')}) ${g('G')})`)}
        (block $vd (loop $vl
          (br_if $vd (i32.ge_u ${g('c')} ${g('end')}))
          ${set('bit', `(i32.mul ${g('c')} ${g('bits')})`)}
          ${set('cv', `(v128.and (i32x4.shr_u (i32x4.mul (i32x4.splat (i32.shr_u (i32.load align=1 (i32.add ${g('codes')} (i32.shr_u ${g('bit')} ${i32(3)}))) (i32.and ${g('bit')} ${i32(7)}))) ${g('mul')}) (i32.mul ${g('bits')} ${i32(3)})) ${g('mskv')})`)}
          ${set('lv', `(f32x4.replace_lane 3 (f32x4.replace_lane 2 (f32x4.replace_lane 1 (f32x4.splat ${lutAt(0)}) ${lutAt(1)}) ${lutAt(2)}) ${lutAt(3)})`)}
          (if (i32.eqz (i32.load offset=${KVS.params} ${g('s')}))
            (then
              (v128.store ${g('o')} (f32x4.add (f32x4.mul ${g('lv')} (v128.load (i32.add ${g('ch')} (i32.shl ${g('c')} ${i32(2)}))))
                                               (v128.load (i32.add (i32.add ${g('ch')} ${g('ov')}) (i32.shl ${g('c')} ${i32(2)}))))))
            (else
              ${set('ga', `(i32.add (i32.add ${g('main')} (i32.load offset=${KVS.oGrp} ${g('s')})) (i32.mul (i32.add (i32.mul ${g('row')} ${g('ng')}) (i32.div_u ${g('c')} ${g('G')})) ${g('gb')}))`)}
              ${set('lv', `(f32x4.mul ${g('lv')} (f32x4.splat (f32.load (i32.add ${g('tab')} (i32.shl (i32.load16_u ${g('ga')}) ${i32(2)})))))`)}
              (if (i32.eq ${g('gb')} ${i32(4)}) (then
                ${set('lv', `(f32x4.add ${g('lv')} (f32x4.splat (f32.load (i32.add ${g('tab')} (i32.shl (i32.load16_u offset=2 ${g('ga')}) ${i32(2)})))))`)}))
              (v128.store ${g('o')} ${g('lv')})))
          ${inc('o', 16)} ${inc('c', 4)}
          (br $vl)))
        (br $dense)))
    (if (i32.eqz (i32.load offset=${KVS.params} ${g('s')}))
      (then
        ${set('ch', `(i32.add ${g('main')} (i32.load offset=${KVS.oChan} ${g('s')}))`)}
        ${set('ov', `(i32.shl (i32.load offset=${KVS.R} ${g('s')}) ${i32(2)})`)}
        (block $cd (loop $cl
          (br_if $cd (i32.ge_u ${g('c')} ${g('end')}))
          ${set('bit', `(i32.mul ${g('c')} ${g('bits')})`)}
          ${set('l', `(f32.load (i32.add ${g('lut')} (i32.shl (i32.and (i32.shr_u (i32.load align=1 (i32.add ${g('codes')} (i32.shr_u ${g('bit')} ${i32(3)}))) (i32.and ${g('bit')} ${i32(7)})) ${g('msk')}) ${i32(2)})))`)}
          (f32.store ${g('o')} (f32.add (f32.mul ${g('l')} (f32.load (i32.add ${g('ch')} (i32.shl ${g('c')} ${i32(2)}))))
                                        (f32.load (i32.add (i32.add ${g('ch')} ${g('ov')}) (i32.shl ${g('c')} ${i32(2)})))))
          ${inc('o', 4)} ${inc('c', 1)}
          (br $cl))))
      (else
        ${set('G', `(i32.load offset=${KVS.G} ${g('s')})`)}
        ${set('gb', `(i32.load offset=${KVS.grpBytes} ${g('s')})`)}
        ${set('ng', `(i32.div_u (i32.load offset=${KVS.R} ${g('s')}) ${g('G')})`)}
        ;; a group at a time: its scale (and offset) read once
        (block $gd (loop $gl
          (br_if $gd (i32.ge_u ${g('c')} ${g('end')}))
          ${set('e', `(i32.div_u ${g('c')} ${g('G')})`)}
          ${set('ga', `(i32.add (i32.add ${g('main')} (i32.load offset=${KVS.oGrp} ${g('s')})) (i32.mul (i32.add (i32.mul ${g('row')} ${g('ng')}) ${g('e')}) ${g('gb')}))`)}
          ${set('e1', `(i32.mul (i32.add ${g('e')} ${i32(1)}) ${g('G')})`)}
          (if (i32.gt_u ${g('e1')} ${g('end')}) (then ${set('e1', g('end'))}))
          ${set('sc', `(f32.load (i32.add ${g('tab')} (i32.shl (i32.load16_u ${g('ga')}) ${i32(2)})))`)}
          ${set('of', `(select (f32.load (i32.add ${g('tab')} (i32.shl (i32.load16_u offset=2 ${g('ga')}) ${i32(2)}))) (f32.const 0) (i32.eq ${g('gb')} ${i32(4)}))`)}
          (if (i32.eq ${g('gb')} ${i32(4)})
            (then
              (block $id (loop $il
                (br_if $id (i32.ge_u ${g('c')} ${g('e1')}))
                ${set('bit', `(i32.mul ${g('c')} ${g('bits')})`)}
                (f32.store ${g('o')} (f32.add (f32.mul (f32.load (i32.add ${g('lut')} (i32.shl (i32.and (i32.shr_u (i32.load align=1 (i32.add ${g('codes')} (i32.shr_u ${g('bit')} ${i32(3)}))) (i32.and ${g('bit')} ${i32(7)})) ${g('msk')}) ${i32(2)}))) ${g('sc')}) ${g('of')}))
                ${inc('o', 4)} ${inc('c', 1)}
                (br $il))))
            (else
              ;; no offset: lut · scale alone (keeps ggml's −0 where it has one)
              (block $jd (loop $jl
                (br_if $jd (i32.ge_u ${g('c')} ${g('e1')}))
                ${set('bit', `(i32.mul ${g('c')} ${g('bits')})`)}
                (f32.store ${g('o')} (f32.mul (f32.load (i32.add ${g('lut')} (i32.shl (i32.and (i32.shr_u (i32.load align=1 (i32.add ${g('codes')} (i32.shr_u ${g('bit')} ${i32(3)}))) (i32.and ${g('bit')} ${i32(7)})) ${g('msk')}) ${i32(2)}))) ${g('sc')}))
                ${inc('o', 4)} ${inc('c', 1)}
                (br $jl)))))
          (br $gl))))))
    ;; exact sparse entries of this row inside [c0, c0 + n)
    (if (i32.eqz (i32.load offset=${KVS.sparse} ${g('s')})) (then (return)))
    ${set('e', `(i32.load (i32.add (i32.add ${g('main')} (i32.load offset=${KVS.oRowptr} ${g('s')})) (i32.shl ${g('row')} ${i32(2)})))`)}
    ${set('e1', `(i32.load offset=4 (i32.add (i32.add ${g('main')} (i32.load offset=${KVS.oRowptr} ${g('s')})) (i32.shl ${g('row')} ${i32(2)})))`)}
    ${set('ov', `(i32.load offset=${KVS.out} ${g('s')})`)}
    (block $ed (loop $el
      (br_if $ed (i32.ge_u ${g('e')} ${g('e1')}))
      ${set('c', `(i32.sub ${exactChan(g('e'))} ${g('c0')})`)}
      (if (i32.lt_u ${g('c')} ${g('n')}) (then
        ${putExact(g('out'), g('c'), g('e'), `(i32.add ${g('ov')} (i32.load offset=${KVS.oVal} ${g('s')}))`)}))
      ${inc('e', 1)}
      (br $el))))`;
