// The packed KV-cache attention module's many-row decoder ($dec_rows): a block of rows' head
// slices of one stream decoded into f32, with the fast paths of the common layouts (4-bit codes
// through the table's byte planes, 8-bit integer ramps; per channel or per group params; heads of
// 8 as one run of codes) and each row's exact entries written over it. Other layouts go through
// $dec (kvattn-decode.mjs) a row at a time.
import { KVS } from './kvattn-layout.mjs';
import { chunkLoop, lutPlanes, runParams } from './kvattn-codes.mjs';
import { EXACT_ROW } from './kvattn-exact.mjs';
import { g, i32, inc, set } from './wat-text.mjs';

/**
 * The rows of one (bits, params) kind: each row's slice is whole spans of `span` values (a group,
 * or the slice inside one group; per channel the whole slice) with one scale (and offset) each.
 */
const rowLoop = (bits, pk, relaxed) => `
      (block $rd${bits}${pk} (loop $rl${bits}${pk}
        (br_if $rd${bits}${pk} (i32.ge_u ${g('r')} ${g('nr')}))
        ${set('c', i32(0))} ${set('ga', g('gRow'))}
        (block $sd${bits}${pk} (loop $sl${bits}${pk}
          (br_if $sd${bits}${pk} (i32.ge_u ${g('c')} ${g('n')}))
          ${set('cEnd', `(i32.add ${g('c')} ${g('span')})`)}
          ${pk === 'ch' ? '' : set('scv', `(f32x4.splat (f32.load (i32.add ${g('tab')} (i32.shl (i32.load16_u ${g('ga')}) ${i32(2)}))))`)}
          ${pk === 'g4' ? set('ofv', `(f32x4.splat (f32.load (i32.add ${g('tab')} (i32.shl (i32.load16_u offset=2 ${g('ga')}) ${i32(2)}))))`) : ''}
          ${chunkLoop(bits, pk, 16, relaxed)}
          ${chunkLoop(bits, pk, 8, relaxed)}
          ${inc('ga', g('gb'))}
          (br $sl${bits}${pk})))
        ${EXACT_ROW}
        ${inc('codes', g('codesStep'))} ${inc('gRow', g('gStep'))} ${inc('rp', g('rpStep'))} ${inc('sp', g('spStep'))}
        ${inc('r', 1)}
        (br $rl${bits}${pk})))`;
const perParams = (bits, relaxed) => `
    (if (i32.eqz ${g('params')})
      (then ${rowLoop(bits, 'ch', relaxed)})
      (else (if (i32.eq ${g('gb')} ${i32(4)}) (then ${rowLoop(bits, 'g4', relaxed)}) (else ${rowLoop(bits, 'g2', relaxed)}))))`;

// Values [c0, c0 + n) of rows row0, row0 + rstep, ... (nr rows) of the stream at `s` into f32
// out [nr, n]. The fast paths need n (and so c0 = kv_head · n) a multiple of 8 and, for group
// params, n a multiple of the group or the group a multiple of n (the glue sets KVS.fast only
// then); everything else goes through $dec a row at a time. `relaxed`: the relaxed-SIMD build.
export const decRows = (relaxed) => `
  (func $dec_rows (param $s i32) (param $row0 i32) (param $rstep i32) (param $nr i32) (param $c0 i32) (param $n i32) (param $out i32) (param $tab i32) (param $dm i32)
    (local $fast i32) (local $main i32) (local $r i32) (local $codes i32) (local $codesStep i32) (local $c i32) (local $cEnd i32) (local $o i32)
    (local $params i32) (local $gb i32) (local $G i32) (local $ng i32) (local $span i32) (local $ga i32) (local $gRow i32) (local $gStep i32)
    (local $chs i32) (local $cho i32) (local $sparse i32) (local $rp i32) (local $rpStep i32) (local $ov i32) (local $oval i32) (local $e i32) (local $e1 i32) (local $k i32) (local $len i32) (local $lt i32)
    (local $segs i32) (local $sp i32) (local $spStep i32) (local $s0b i32) (local $s1b i32) (local $blk i32) (local $segx i32)
    (local $cs0 v128) (local $cs1 v128) (local $co0 v128) (local $co1 v128) (local $scA v128) (local $scB v128) (local $ofA v128) (local $ofB v128)
    (local $cv v128) (local $mlo v128) (local $p0 v128) (local $p1 v128) (local $p2 v128) (local $p3 v128) (local $z0 v128) (local $z1 v128) (local $z2 v128) (local $z3 v128)
    (local $l0 v128) (local $l1 v128) (local $l2 v128) (local $l3 v128) (local $scv v128) (local $ofv v128) (local $a v128) (local $b v128)
    ${set('fast', `(i32.load offset=${KVS.fast} ${g('s')})`)}
    (if (i32.eqz ${g('fast')}) (then
      (block $gd (loop $gl
        (br_if $gd (i32.ge_u ${g('r')} ${g('nr')}))
        (call $dec ${g('s')} (i32.add ${g('row0')} (i32.mul ${g('r')} ${g('rstep')})) ${g('c0')} ${g('n')} (i32.add ${g('out')} (i32.shl (i32.mul ${g('r')} ${g('n')}) ${i32(2)})) ${g('tab')})
        ${inc('r', 1)}
        (br $gl)))
      (return)))
    ${set('main', `(i32.load offset=${KVS.main} ${g('s')})`)}
    ${set('codesStep', `(i32.mul ${g('rstep')} (i32.load offset=${KVS.rowBytes} ${g('s')}))`)}
    ${set('codes', `(i32.add (i32.add (i32.add ${g('main')} (i32.mul ${g('row0')} (i32.load offset=${KVS.rowBytes} ${g('s')}))) (i32.mul (i32.div_u ${g('c0')} (i32.load offset=${KVS.S} ${g('s')})) (i32.load offset=${KVS.hstep} ${g('s')}))) (i32.shr_u (i32.mul ${g('c0')} (i32.load offset=${KVS.bits} ${g('s')})) ${i32(3)}))`)}
    ${set('params', `(i32.load offset=${KVS.params} ${g('s')})`)}
    ${set('gb', `(i32.load offset=${KVS.grpBytes} ${g('s')})`)}
    ${set('G', `(i32.load offset=${KVS.G} ${g('s')})`)}
    ${set('ng', `(i32.div_u (i32.load offset=${KVS.R} ${g('s')}) ${g('G')})`)}
    ${set('span', `(select ${g('n')} (select ${g('G')} ${g('n')} (i32.lt_u ${g('G')} ${g('n')})) (i32.eqz ${g('params')}))`)}
    ${set('gStep', `(i32.mul (i32.mul ${g('rstep')} ${g('ng')}) ${g('gb')})`)}
    ${set('gRow', `(i32.add (i32.add ${g('main')} (i32.load offset=${KVS.oGrp} ${g('s')})) (i32.mul (i32.add (i32.mul ${g('row0')} ${g('ng')}) (i32.div_u ${g('c0')} ${g('G')})) ${g('gb')}))`)}
    ${set('chs', `(i32.add (i32.add ${g('main')} (i32.load offset=${KVS.oChan} ${g('s')})) (i32.shl ${g('c0')} ${i32(2)}))`)}
    ${set('cho', `(i32.add ${g('chs')} (i32.shl (i32.load offset=${KVS.R} ${g('s')}) ${i32(2)}))`)}
    ${set('sparse', `(i32.load offset=${KVS.sparse} ${g('s')})`)}
    ${set('rp', `(i32.add (i32.add ${g('main')} (i32.load offset=${KVS.oRowptr} ${g('s')})) (i32.shl ${g('row0')} ${i32(2)}))`)}
    ${set('rpStep', `(i32.shl ${g('rstep')} ${i32(2)})`)}
    ;; segment index (segs > 1): the u16 entries of segment c0 / S (the run's start) and of the
    ;; segment after the slice's last (its end; 0 when the slice reaches the row's end)
    ${set('segs', `(i32.load offset=${KVS.segs} ${g('s')})`)}
    (if (i32.gt_u ${g('segs')} ${i32(1)})
      (then
        ${set('k', `(i32.div_u (i32.load offset=${KVS.R} ${g('s')}) ${g('segs')})`)}
        ${set('sp', `(i32.add (i32.add ${g('main')} (i32.load offset=${KVS.oSeg} ${g('s')})) (i32.shl (i32.mul ${g('row0')} ${g('segs')}) ${i32(1)}))`)}
        ${set('spStep', `(i32.shl (i32.mul ${g('rstep')} ${g('segs')}) ${i32(1)})`)}
        ${set('s0b', `(i32.shl (i32.div_u ${g('c0')} ${g('k')}) ${i32(1)})`)}
        ${set('s1b', `(i32.div_u (i32.sub (i32.add ${g('c0')} (i32.add ${g('n')} ${g('k')})) ${i32(1)}) ${g('k')})`)}
        ${set('s1b', `(select (i32.shl ${g('s1b')} ${i32(1)}) ${i32(0)} (i32.lt_u ${g('s1b')} ${g('segs')}))`)}
        ;; the slice is exactly one segment (heads as wide as the segments): no search inside it
        ${set('segx', `(i32.and (i32.eq ${g('k')} ${g('n')}) (i32.eqz (i32.rem_u ${g('c0')} ${g('k')})))`)})
      (else ${set('segs', i32(0))}))
    ${set('ov', `(i32.load offset=${KVS.out} ${g('s')})`)}
    ${set('oval', `(i32.add ${g('ov')} (i32.load offset=${KVS.oVal} ${g('s')}))`)}
    ${set('o', g('out'))}
    ;; one sequence without a segment index: the block's exact entries in one pass after the decode
    ${set('blk', `(i32.and ${g('sparse')} (i32.and (i32.eq ${g('rstep')} ${i32(1)}) (i32.eqz ${g('segs')})))`)}
    (if (i32.eq ${g('fast')} ${i32(4)})
      (then
        ;; the 16-entry table as four byte planes
        ${set('k', `(i32.add ${g('main')} (i32.load offset=${KVS.oLut} ${g('s')}))`)}
        ${lutPlanes(g('k'))}
        ${set('mlo', '(v128.const i32x4 0x0f0f0f0f 0x0f0f0f0f 0x0f0f0f0f 0x0f0f0f0f)')}))
    ;; heads of 8 whose rows lie back to back (a head slice per row, one sequence): one run of codes
    (if (i32.and (i32.eq ${g('n')} ${i32(8)}) (i32.and (i32.eq ${g('rstep')} ${i32(1)}) (i32.eq (i32.load offset=${KVS.S} ${g('s')}) ${i32(8)})))
      (then
        (if (i32.eqz ${g('params')}) (then
          ${set('cs0', `(v128.load ${g('chs')})`)} ${set('cs1', `(v128.load offset=16 ${g('chs')})`)}
          ${set('co0', `(v128.load ${g('cho')})`)} ${set('co1', `(v128.load offset=16 ${g('cho')})`)}))
        ${set('c', i32(0))}
        (if (i32.eq ${g('fast')} ${i32(4)}) (then ${runParams(4, relaxed)})
          (else (if (i32.eq ${g('fast')} ${i32(8)}) (then ${runParams(8, relaxed)}) (else ${runParams(9, relaxed)}))))
        (if ${g('blk')} (then (call $sparse_block ${g('rp')} ${g('nr')} ${g('ov')} ${g('oval')} ${g('c0')} ${g('n')} ${g('out')})))
        (return)))
    (if (i32.eq ${g('fast')} ${i32(4)}) (then ${perParams(4, relaxed)})
      (else (if (i32.eq ${g('fast')} ${i32(8)}) (then ${perParams(8, relaxed)}) (else ${perParams(9, relaxed)}))))
    (if ${g('blk')} (then (call $sparse_block (i32.add (i32.add ${g('main')} (i32.load offset=${KVS.oRowptr} ${g('s')})) (i32.shl ${g('row0')} ${i32(2)})) ${g('nr')} ${g('ov')} ${g('oval')} ${g('c0')} ${g('n')} ${g('out')}))))`;
