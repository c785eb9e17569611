// Generator of the packed KV-cache attention module: attention of f32 queries against a quantized
// KV cache read where it lies (layout and decode rule: src/models/kvquant/codec.ts). A task row is
// (batch b, kv head, query position i); for it, NB keys at a time:
//   the block's key head slices are decoded from their codes into a small f32 buffer (lut[code] ·
//     scale + offset, per channel or per group with f16 params through a 65536-entry table; 4-bit
//     codes through byte shuffles of the table, 8-bit integer ramps by conversion, other widths a
//     value at a time), their exact sparse entries written over them, RoPE applied at each key's
//     stored position when the cache holds pre-RoPE keys (cos and sin table [position, 2, rot/2];
//     with one query head per kv head in half mode, inside the scores: $scores_rope);
//   the G query heads that share the kv head dot the block (four keys at a time, as the f32 kernel);
//   or, with one query head per kv head and 4-bit pre-RoPE keys with per-channel scale and offset
//     (KVQuant's keys), sixteen keys a vector: each channel's codes looked up in its own table, the
//     scores rotated with cos and sin transposed once a call (kvattn-keyst.mjs);
// then the masked softmax numerators of scale · scores (causal prefix with offset tk − tq, u8 key
// mask), and y = Σ e_j v_j / Σ e_j over keys with e_j ≠ 0, each value block decoded the same way
// once for the G heads. Decoded values equal the reference's (codec.ts decodeRow) exactly: the same
// f32 products and sums. Rows are row = j · B + b (position-major).
//   kv_attn_rows(params, task, nTasks)   parameter block KVA below, streams at KVA.k / KVA.v (KVS)
// The module's parts: kvattn-layout.mjs (parameter blocks), kvattn-rows.mjs (the many-row decoder
// with kvattn-codes.mjs and kvattn-exact.mjs), kvattn-decode.mjs (a row a value at a time),
// kvattn-rope.mjs, kvattn-dots.mjs (scores and the weighted sum), kvattn-keyst.mjs (keys sixteen a
// vector), kvattn-valst.mjs (values sixteen rows a vector), kvattn-lists.mjs (their exact entries from
// the streams' per-head lists, one sequence); this file: the task loop.
import { KVA, KVS, NB } from './kvattn-layout.mjs';
import { DECODE } from './kvattn-decode.mjs';
import { HADD4, PV, SCORES, SCORES_ROPE, hsum } from './kvattn-dots.mjs';
import { SPARSE_BLOCK } from './kvattn-exact.mjs';
import { ROPE_ROWS, ROTATE } from './kvattn-rope.mjs';
import { decRows } from './kvattn-rows.mjs';
import { CS_T, DEC_KEYS_T, KEYS_EXACT, PLANES, SCORES_T } from './kvattn-keyst.mjs';
import { PV_T } from './kvattn-valst.mjs';
import { KX_APPLY, VX_APPLY } from './kvattn-lists.mjs';
import { expFn, f4 } from './simd-math.mjs';
import { F, g, i32, inc, set } from './wat-text.mjs';

export const name = 'kvattn';
export const exportNames = ['kv_attn_rows'];
export { KVA, KVS };
export const constants = { KVA, KVS, NB };

function attnRows() {
  const f = (n) => `(i32.load offset=${KVA[n]} ${g('prm')})`;
  const yAt = (gg) => `(i32.add ${f('y')} (i32.shl (i32.mul (i32.add (i32.mul (i32.add (i32.mul ${g('b')} ${g('HQ')}) (i32.add (i32.mul ${g('kvh')} ${g('G')}) ${gg})) ${g('TQ')}) ${g('i')}) ${g('DV')}) ${i32(2)}))`;
  const qAt = (gg) => `(i32.add ${f('q')} (i32.shl (i32.add (i32.add (i32.mul ${g('b')} ${f('qsb')}) (i32.mul (i32.add (i32.mul ${g('kvh')} ${g('G')}) ${gg}) ${f('qsh')})) (i32.mul ${g('i')} ${f('qst')})) ${i32(2)}))`;
  const forG = (body) => `
      ${set('gg', i32(0))}
      (block $gd (loop $gl
        (br_if $gd (i32.ge_u ${g('gg')} ${g('G')}))
        ${body}
        ${inc('gg', 1)}
        (br $gl)))`;
  return `
  (func $kv_attn_rows (param $prm i32) (param $task i32) (param $nTasks i32)
    (local $r i32) (local $end i32) (local $nRows i32) (local $i i32) (local $b i32) (local $bk i32) (local $G i32) (local $gg i32)
    (local $B i32) (local $TQ i32) (local $TK i32) (local $TKp i32) (local $D i32) (local $DV i32) (local $HQ i32) (local $HKV i32) (local $kvh i32)
    (local $s i32) (local $sg i32) (local $dm i32) (local $pa i32) (local $fr i32) (local $kb i32) (local $vb i32) (local $mx i32) (local $sm i32) (local $m i32) (local $nv i32)
    (local $j i32) (local $j0 i32) (local $nb i32) (local $ks i32) (local $vs i32) (local $tab i32) (local $rope i32) (local $ya i32) (local $c i32)
    (local $ft i32) (local $fv i32) (local $lk i32) (local $lb i32) (local $pl i32) (local $cst i32) (local $ex i32)
    (local $sS i32) (local $sO i32) (local $kx i32) (local $vx i32) (local $kc i32) (local $ke i32) (local $vc i32) (local $ve i32)
    (local $t f32) (local $scv v128) (local $acc v128) (local $mv v128) (local $sv v128)
    ${set('B', f('B'))} ${set('TQ', f('TQ'))} ${set('TK', f('TK'))} ${set('D', f('D'))} ${set('DV', f('DV'))} ${set('HQ', f('HQ'))} ${set('G', f('G'))}
    ${set('TKp', `(i32.and (i32.add ${g('TK')} ${i32(3)}) ${i32(-4)})`)}
    ${set('HKV', `(i32.div_u ${g('HQ')} ${g('G')})`)}
    ${set('ks', `(i32.add ${g('prm')} ${i32(KVA.k)})`)} ${set('vs', `(i32.add ${g('prm')} ${i32(KVA.v)})`)}
    ${set('tab', f('tab'))} ${set('rope', f('rope'))}
    ;; RoPE inside the scores where one query head reads each kv head (half mode, whole 4-pair chunks)
    ${set('fr', `(i32.and (i32.and (i32.ne ${g('rope')} ${i32(0)}) (i32.eq ${g('G')} ${i32(1)})) (i32.and (i32.eqz ${f('ropeMode')}) (i32.eqz (i32.or (i32.and ${f('rot')} ${i32(7)}) (i32.and ${g('D')} ${i32(3)})))))`)}
    ;; and there, 4-bit per-channel keys whose head slice is one segment of the index (or have none): sixteen keys a vector (kvattn-keyst.mjs)
    ${set('ft', `(i32.and ${g('fr')} (i32.and (i32.and (i32.eq (i32.load offset=${KVS.fast} ${g('ks')}) ${i32(4)}) (i32.eqz (i32.load offset=${KVS.params} ${g('ks')})))
      (i32.and (i32.eqz (i32.and ${g('D')} ${i32(31)})) (i32.or (i32.eqz (i32.load offset=${KVS.sparse} ${g('ks')}))
        (i32.and (i32.gt_u (i32.load offset=${KVS.segs} ${g('ks')}) ${i32(1)}) (i32.eq (i32.div_u (i32.load offset=${KVS.R} ${g('ks')}) (i32.load offset=${KVS.segs} ${g('ks')})) ${g('D')}))))))`)}
    ;; one query head per kv head, 4-bit values with a scale and offset per row whose head slice is one segment of the index (or have none): sixteen rows a vector (kvattn-valst.mjs)
    ${set('fv', `(i32.and (i32.and (i32.eq ${g('G')} ${i32(1)}) (i32.and (i32.eq (i32.load offset=${KVS.fast} ${g('vs')}) ${i32(4)}) (i32.eq (i32.load offset=${KVS.grpBytes} ${g('vs')}) ${i32(4)})))
      (i32.and (i32.and (i32.eqz (i32.and ${g('DV')} ${i32(31)})) (i32.and (i32.ne (i32.load offset=${KVS.params} ${g('vs')}) ${i32(0)}) (i32.eqz (i32.rem_u (i32.load offset=${KVS.G} ${g('vs')}) ${g('DV')}))))
        (i32.or (i32.eqz (i32.load offset=${KVS.sparse} ${g('vs')}))
          (i32.and (i32.gt_u (i32.load offset=${KVS.segs} ${g('vs')}) ${i32(1)}) (i32.eq (i32.div_u (i32.load offset=${KVS.R} ${g('vs')}) (i32.load offset=${KVS.segs} ${g('vs')})) ${g('DV')})))))`)}
    ${set('lk', i32(-1))} ${set('lb', i32(-1))}
    ${set('scv', `(f32x4.splat (f32.reinterpret_i32 ${f('scaleBits')}))`)}
    ;; this task's scratch: scores [G, TKp], NB decoded keys [NB, D] and values [NB, DV], max [G], sum [G], a dummy f32 slot
    ${set('s', `(i32.add ${f('scratch')} (i32.mul ${g('task')} ${f('scratchStride')}))`)}
    ${set('kb', F('s', `(i32.mul ${g('G')} ${g('TKp')})`))}
    ${set('vb', F('kb', `(i32.mul ${i32(NB)} ${g('D')})`))}
    ${set('mx', F('vb', `(i32.mul ${i32(NB)} ${g('DV')})`))}
    ${set('sm', F('mx', g('G')))}
    ${set('dm', F('sm', g('G')))}
    ;; the sixteen-keys path's rows that hold exact entries [NB, 12 bytes], channel planes [D, 64
    ;; bytes], cos and sin [TK / 64 blocks, rot, 64]
    ${set('ex', `(i32.and (i32.add ${g('dm')} ${i32(19)}) ${i32(-16)})`)}
    ${set('pl', `(i32.add ${g('ex')} ${i32(12 * NB)})`)}
    ${set('cst', `(i32.add ${g('pl')} (i32.shl ${g('D')} ${i32(6)}))`)}
    ;; a task row is (batch, kv head, query position): each key and value is decoded once for the G query heads that read it
    ${set('nRows', `(i32.mul (i32.mul ${g('B')} ${g('HKV')}) ${g('TQ')})`)}
    ${set('r', `(i32.div_u (i32.mul ${g('nRows')} ${g('task')}) ${g('nTasks')})`)}
    ${set('end', `(i32.div_u (i32.mul ${g('nRows')} (i32.add ${g('task')} ${i32(1)})) ${g('nTasks')})`)}
    ;; the sixteen-a-vector values of one sequence with one group a row (the same scale and offset for
    ;; every head): the rows' f16 scales and offsets in f32 once a call, sS [TK] and sO [TK] after the
    ;; cos/sin rows
    (if (i32.and (i32.and ${g('fv')} (i32.eq ${g('B')} ${i32(1)})) (i32.eq (i32.load offset=${KVS.G} ${g('vs')}) (i32.load offset=${KVS.R} ${g('vs')}))) (then
      ${set('sS', `(i32.and (i32.add (i32.add ${g('cst')} (i32.shl (i32.mul ${f('rot')} (i32.and (i32.add ${g('TK')} ${i32(63)}) ${i32(-64)})) ${i32(2)})) ${i32(15)}) ${i32(-16)})`)}
      ${set('sO', `(i32.add ${g('sS')} (i32.shl (i32.and (i32.add ${g('TK')} ${i32(3)}) ${i32(-4)}) ${i32(2)}))`)}
      ${set('c', `(i32.add (i32.load offset=${KVS.main} ${g('vs')}) (i32.load offset=${KVS.oGrp} ${g('vs')}))`)} ${set('j', i32(0))}
      (block $fd (loop $fl
        (br_if $fd (i32.ge_u ${g('j')} ${g('TK')}))
        (f32.store ${F('sS', g('j'))} (f32.load (i32.add ${g('tab')} (i32.shl (i32.load16_u ${g('c')}) ${i32(2)}))))
        (f32.store ${F('sO', g('j'))} (f32.load (i32.add ${g('tab')} (i32.shl (i32.load16_u offset=2 ${g('c')}) ${i32(2)}))))
        ${inc('c', 4)} ${inc('j', 1)}
        (br $fl)))))
    ;; the sixteen-a-vector paths' exact entries from the streams' per-head lists where they keep them (kvattn-lists.mjs)
    ${set('kx', `(i32.and ${g('ft')} (i32.ne (i32.load offset=${KVS.hx} ${g('ks')}) ${i32(0)}))`)}
    ${set('vx', `(i32.and ${g('fv')} (i32.ne (i32.load offset=${KVS.hx} ${g('vs')}) ${i32(0)}))`)}
    (block $rows_d (loop $rows_l
      (br_if $rows_d (i32.ge_u ${g('r')} ${g('end')}))
      ${set('i', `(i32.rem_u ${g('r')} ${g('TQ')})`)} ${set('bk', `(i32.div_u ${g('r')} ${g('TQ')})`)}
      ${set('kvh', `(i32.rem_u ${g('bk')} ${g('HKV')})`)} ${set('b', `(i32.div_u ${g('bk')} ${g('HKV')})`)}
      ${set('nv', g('TK'))}
      (if ${f('causal')} (then
        ${set('nv', `(i32.add ${g('i')} (i32.sub ${g('TK')} (i32.sub ${g('TQ')} ${i32(1)})))`)}
        (if (i32.lt_s ${g('nv')} ${i32(0)}) (then ${set('nv', i32(0))}))
        (if (i32.gt_s ${g('nv')} ${g('TK')}) (then ${set('nv', g('TK'))}))))
      ${set('m', `(select (i32.add ${f('mask')} (i32.mul ${g('b')} ${g('TK')})) ${i32(0)} (i32.ne ${f('mask')} ${i32(0)}))`)}
      ${forG(`(f32.store ${F('mx', g('gg'))} (f32.const -inf))`)}
      (if ${g('kx')} (then
        ${set('kc', `(i32.add (i32.add (i32.load offset=${KVS.hx} ${g('ks')}) (i32.load offset=${KVS.hat} ${g('ks')})) (i32.shl (i32.mul ${g('kvh')} (i32.load offset=${KVS.hcap} ${g('ks')})) ${i32(3)}))`)}
        ${set('ke', `(i32.add ${g('kc')} (i32.shl (i32.load (i32.add (i32.load offset=${KVS.hx} ${g('ks')}) (i32.shl ${g('kvh')} ${i32(2)}))) ${i32(3)}))`)}))
      (if ${g('vx')} (then
        ${set('vc', `(i32.add (i32.add (i32.load offset=${KVS.hx} ${g('vs')}) (i32.load offset=${KVS.hat} ${g('vs')})) (i32.shl (i32.mul ${g('kvh')} (i32.load offset=${KVS.hcap} ${g('vs')})) ${i32(3)}))`)}
        ${set('ve', `(i32.add ${g('vc')} (i32.shl (i32.load (i32.add (i32.load offset=${KVS.hx} ${g('vs')}) (i32.shl ${g('kvh')} ${i32(2)}))) ${i32(3)}))`)}))
      (if ${g('ft')} (then
        (if (i32.ne ${g('kvh')} ${g('lk')}) (then (call $planes ${g('ks')} (i32.mul ${g('kvh')} ${g('D')}) ${g('D')} ${g('pl')}) ${set('lk', g('kvh'))}))
        (if (i32.ne ${g('b')} ${g('lb')}) (then
          (call $cs_t (i32.add (i32.add (i32.load offset=${KVS.main} ${g('ks')}) (i32.load offset=${KVS.oPos} ${g('ks')})) (i32.shl ${g('b')} ${i32(2)})) (i32.shl ${g('B')} ${i32(2)})
            ${g('TK')} ${g('rope')} ${f('rot')} ${i32(64)} ${g('cst')})
          ${set('lb', g('b'))}))))
      ;; scores (scaled), NB keys at a time: decode the block, rotate it, dot it with the G queries
      ${set('j0', i32(0))}
      (block $kd (loop $kl
        (br_if $kd (i32.ge_u ${g('j0')} ${g('nv')}))
        ${set('nb', `(i32.sub ${g('nv')} ${g('j0')})`)}
        (if (i32.gt_u ${g('nb')} ${i32(NB)}) (then ${set('nb', i32(NB))}))
        (if ${g('ft')} (then
          (call $dec_keys_t ${g('ks')} (i32.add (i32.mul ${g('j0')} ${g('B')}) ${g('b')}) ${g('B')} ${g('nb')} (i32.mul ${g('kvh')} ${g('D')}) ${g('D')} ${g('kb')} ${g('pl')} ${g('dm')} ${g('ex')})
          (if ${g('kx')} (then ${set('kc', `(call $kx_apply ${g('kc')} ${g('ke')} ${g('j0')} (i32.add ${g('j0')} ${g('nb')}) ${g('kb')})`)}))
          (f32.store ${g('mx')} (f32.max (f32.load ${g('mx')})
            (call $scores_t ${qAt(i32(0))} ${g('kb')} ${g('D')} ${g('nb')} ${F('s', g('j0'))} ${g('scv')}
              (select (i32.add ${g('m')} ${g('j0')}) ${i32(0)} ${g('m')}) ${F('cst', `(i32.mul ${g('j0')} ${f('rot')})`)} ${i32(64)} ${f('rot')})))
          ${inc('j0', NB)}
          (br $kl)))
        (call $dec_rows ${g('ks')} (i32.add (i32.mul ${g('j0')} ${g('B')}) ${g('b')}) ${g('B')} ${g('nb')} (i32.mul ${g('kvh')} ${g('D')}) ${g('D')} ${g('kb')} ${g('tab')} ${g('dm')})
        ${set('pa', `(i32.add (i32.add (i32.load offset=${KVS.main} ${g('ks')}) (i32.load offset=${KVS.oPos} ${g('ks')})) (i32.shl (i32.add (i32.mul ${g('j0')} ${g('B')}) ${g('b')}) ${i32(2)}))`)}
        (if ${g('fr')} (then
          ;; one query head per kv head: rotated as the scores read them
          (f32.store ${g('mx')} (f32.max (f32.load ${g('mx')})
            (call $scores_rope ${qAt(i32(0))} ${g('kb')} ${g('D')} ${g('nb')} ${F('s', g('j0'))} ${g('scv')}
              (select (i32.add ${g('m')} ${g('j0')}) ${i32(0)} ${g('m')}) ${g('pa')} (i32.shl ${g('B')} ${i32(2)}) ${g('rope')} ${f('rot')})))
          ${inc('j0', NB)}
          (br $kl)))
        (if ${g('rope')} (then
          (call $rope_rows ${g('kb')} ${g('D')} ${g('nb')} ${g('pa')} (i32.shl ${g('B')} ${i32(2)}) ${g('rope')} ${f('rot')} ${f('ropeMode')})))
        ${forG(`
        (f32.store ${F('mx', g('gg'))} (f32.max (f32.load ${F('mx', g('gg'))})
          (call $scores ${qAt(g('gg'))} ${g('kb')} ${g('D')} ${g('nb')} ${F('s', `(i32.add (i32.mul ${g('gg')} ${g('TKp')}) ${g('j0')})`)} ${g('scv')}
            (select (i32.add ${g('m')} ${g('j0')}) ${i32(0)} ${g('m')}))))`)}
        ${inc('j0', NB)}
        (br $kl)))
      ;; softmax numerators exp(s − max) (0 where masked) and their sums; y rows zeroed
      ${forG(`
        ${set('sg', F('s', `(i32.mul ${g('gg')} ${g('TKp')})`))}
        ${set('j', i32(0))}
        ${set('mv', `(f32x4.splat (f32.load ${F('mx', g('gg'))}))`)} ${set('acc', f4(0))}
        (block $e4d (loop $e4l
          (br_if $e4d (i32.gt_u (i32.add ${g('j')} ${i32(4)}) ${g('nv')}))
          ${set('sv', `(v128.load ${F('sg', g('j'))})`)}
          ${set('sv', `(v128.andnot (call $exp (f32x4.sub ${g('sv')} ${g('mv')})) (f32x4.eq ${g('sv')} ${f4('-inf')}))`)}
          (v128.store ${F('sg', g('j'))} ${g('sv')})
          ${set('acc', `(f32x4.add ${g('acc')} ${g('sv')})`)}
          ${inc('j', 4)}
          (br $e4l)))
        ${set('t', `${hsum('acc')}`)}
        (block $ed (loop $el
          (br_if $ed (i32.ge_u ${g('j')} ${g('nv')}))
          ${set('sv', `(f32x4.splat (f32.load ${F('sg', g('j'))}))`)}
          ${set('sv', `(v128.andnot (call $exp (f32x4.sub ${g('sv')} ${g('mv')})) (f32x4.eq ${g('sv')} ${f4('-inf')}))`)}
          (f32.store ${F('sg', g('j'))} (f32x4.extract_lane 0 ${g('sv')}))
          ${set('t', `(f32.add ${g('t')} (f32x4.extract_lane 0 ${g('sv')}))`)}
          ${inc('j', 1)}
          (br $el)))
        (f32.store ${F('sm', g('gg'))} ${g('t')})
        (memory.fill ${yAt(g('gg'))} ${i32(0)} (i32.shl ${g('DV')} ${i32(2)}))`)}
      ;; y_h = Σ_j e_hj v_j, NB values at a time, each value block decoded once for the G heads
      ${set('j0', i32(0))}
      (block $vd (loop $vl
        (br_if $vd (i32.ge_u ${g('j0')} ${g('nv')}))
        ${set('nb', `(i32.sub ${g('nv')} ${g('j0')})`)}
        (if (i32.gt_u ${g('nb')} ${i32(NB)}) (then ${set('nb', i32(NB))}))
        (if ${g('fv')} (then
          (call $pv_t ${g('vs')} (i32.add (i32.mul ${g('j0')} ${g('B')}) ${g('b')}) ${g('B')} ${g('nb')} (i32.mul ${g('kvh')} ${g('DV')}) ${g('DV')} ${yAt(i32(0))} ${F('s', g('j0'))} ${g('tab')} ${g('vb')} ${g('ex')}
            (i32.or (i32.eqz ${g('j0')}) (i32.shl (i32.ge_u (i32.add ${g('j0')} ${i32(NB)}) ${g('nv')}) ${i32(1)})) ${g('sS')} ${g('sO')})
          ${inc('j0', NB)}
          (br $vl)))
        (call $dec_rows ${g('vs')} (i32.add (i32.mul ${g('j0')} ${g('B')}) ${g('b')}) ${g('B')} ${g('nb')} (i32.mul ${g('kvh')} ${g('DV')}) ${g('DV')} ${g('vb')} ${g('tab')} ${g('dm')})
        ${forG(`(call $pv ${yAt(g('gg'))} ${g('vb')} ${g('DV')} ${g('nb')} ${F('s', `(i32.add (i32.mul ${g('gg')} ${g('TKp')}) ${g('j0')})`)})`)}
        ${inc('j0', NB)}
        (br $vl)))
      (if ${g('vx')} (then (call $vx_apply ${g('vc')} ${g('ve')} ${g('nv')} ${yAt(i32(0))} ${g('s')})))
      ;; / sum (a row that sees nothing stays 0)
      ${forG(`
        ${set('t', `(f32.load ${F('sm', g('gg'))})`)}
        (if (f32.gt ${g('t')} (f32.const 0)) (then
          ${set('ya', yAt(g('gg')))}
          ${set('sv', `(f32x4.splat (f32.div (f32.const 1) ${g('t')}))`)} ${set('c', i32(0))}
          (block $nd (loop $nl
            (br_if $nd (i32.gt_u (i32.add ${g('c')} ${i32(4)}) ${g('DV')}))
            (v128.store ${F('ya', g('c'))} (f32x4.mul (v128.load ${F('ya', g('c'))}) ${g('sv')}))
            ${inc('c', 4)}
            (br $nl)))
          (block $n1d (loop $n1l
            (br_if $n1d (i32.ge_u ${g('c')} ${g('DV')}))
            (f32.store ${F('ya', g('c'))} (f32.mul (f32.load ${F('ya', g('c'))}) (f32x4.extract_lane 0 ${g('sv')})))
            ${inc('c', 1)}
            (br $n1l)))))`)}
      ${inc('r', 1)}
      (br $rows_l))))`;
}

/** @param {{relaxed: boolean}} variant  relaxed: byte shuffles of the 4-bit decode without the out-of-range fix-up (the same results); the sixteen-a-vector paths' multiply-adds fused (results within rounding) */
export function generate(variant) {
  const out = ['(module', '  (import "env" "memory" (memory 1 65536 shared))', expFn, DECODE, ROTATE, SPARSE_BLOCK, decRows(variant.relaxed), ROPE_ROWS, PLANES, CS_T, KEYS_EXACT, DEC_KEYS_T(variant.relaxed), SCORES_T(variant.relaxed), PV_T(variant.relaxed), KX_APPLY, VX_APPLY, HADD4, SCORES, SCORES_ROPE, PV, attnRows()];
  for (const e of exportNames) out.push(`  (export "${e}" (func $${e}))`);
  out.push(')');
  return out.join('\n');
}
