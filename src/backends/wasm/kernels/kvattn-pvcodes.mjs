// The weighted sum of values straight from 4-bit codes ($pv_codes) in the packed KV-cache attention
// module: for one query head per kv head and values with one scale (and offset) per row over the
// head slice (KVQuant's per-token values), y += Σ_j p_j v_j with v_j = s_j l_j + o_j (l_j the
// table's values of row j's codes) is summed as Σ_j (p_j s_j) l_j plus Σ_j p_j o_j on every
// channel, sixteen channels at a time held in registers over the block's rows: no value is decoded
// to memory and read back. Each exact entry (x at channel c of row j: outliers, a sink row) then adds
// p_j (x − its dense value) to y[c]. Sums are associated otherwise than the reference's (decode,
// then p · v), so y agrees with it to rounding. Not for: per-channel params, several query heads
// per kv head, slices across groups ($dec_rows and $pv take those).
import { KVS } from './kvattn-layout.mjs';
import { lut4 } from './kvattn-codes.mjs';
import { exactChan, exactVal } from './kvattn-exact.mjs';
import { F, g, i32, inc, set } from './wat-text.mjs';

/**
 * True where $pv_codes applies to the value stream at `vs` (WAT i32) for heads of DV: 4-bit codes
 * through the table's byte planes, group params with the slice inside one group, DV a multiple of
 * 16, and either no exact entries or a segment index one head wide.
 */
export const pvCodesApplies = (vs, DV) => `(i32.and
      (i32.and (i32.eq (i32.load offset=${KVS.fast} ${vs}) ${i32(4)}) (i32.ne (i32.load offset=${KVS.params} ${vs}) ${i32(0)}))
      (i32.and (i32.and (i32.eqz (i32.rem_u (i32.load offset=${KVS.G} ${vs}) ${DV})) (i32.eqz (i32.and ${DV} ${i32(15)})))
        (i32.or (i32.eqz (i32.load offset=${KVS.sparse} ${vs}))
          (i32.and (i32.gt_u (i32.load offset=${KVS.segs} ${vs}) ${i32(1)}) (i32.eq (i32.div_u (i32.load offset=${KVS.R} ${vs}) (i32.load offset=${KVS.segs} ${vs})) ${DV})))))`;

/**
 * y[kk] += p (x − (lut[code] · scale + offset)) for entry e (the dense value as $dec_rows makes
 * it), over $pv_codes' locals; with `valid` (a WAT i32), a term of 0 where it is 0.
 */
function addTerm(e, valid) {
  const code = `(i32.and (i32.shr_u (i32.load8_u (i32.add ${g('codes')} (i32.shr_u ${g('kk')} ${i32(1)}))) (i32.shl (i32.and ${g('kk')} ${i32(1)}) ${i32(2)})) ${i32(15)})`;
  const term = `(f32.mul ${g('p')} (f32.sub ${exactVal(e)} (f32.add (f32.mul (f32.load (i32.add ${g('lut')} (i32.shl ${code} ${i32(2)}))) ${g('sc')}) ${g('of')})))`;
  return `(f32.store ${F('ya', g('kk'))} (f32.add (f32.load ${F('ya', g('kk'))}) ${valid ? `(select ${term} (f32.const 0) ${valid})` : term}))`;
}

// y [n] += Σ_j w[j] v_j over rows row0, row0 + rstep, ... (nb of them, head slice [c0, c0 + n)) of
// the value stream at `s`; `tab` the f16 table; `wb` scratch of 3 · nb f32 (p s, s, o per row).
export const pvCodes = (relaxed) => `
  (func $pv_codes (param $s i32) (param $row0 i32) (param $rstep i32) (param $nb i32) (param $c0 i32) (param $n i32)
    (param $ya i32) (param $w i32) (param $tab i32) (param $wb i32)
    (local $main i32) (local $codes0 i32) (local $codes i32) (local $codesStep i32) (local $lut i32) (local $gb i32) (local $ga i32) (local $gStep i32) (local $ng i32)
    (local $j i32) (local $c i32) (local $k i32) (local $kk i32) (local $sp i32) (local $spStep i32) (local $rp i32) (local $rpStep i32) (local $s0b i32) (local $s1b i32)
    (local $ov i32) (local $oval i32) (local $e i32) (local $e1 i32)
    (local $p f32) (local $sc f32) (local $of f32) (local $osum f32)
    (local $cv v128) (local $mlo v128) (local $p0 v128) (local $p1 v128) (local $p2 v128) (local $p3 v128) (local $a v128) (local $b v128)
    (local $z0 v128) (local $z1 v128) (local $z2 v128) (local $z3 v128) (local $l0 v128) (local $l1 v128) (local $l2 v128) (local $l3 v128)
    (local $y0 v128) (local $y1 v128) (local $y2 v128) (local $y3 v128) (local $wv v128) (local $t0 v128) (local $t1 v128) (local $t2 v128) (local $t3 v128)
    ${set('main', `(i32.load offset=${KVS.main} ${g('s')})`)}
    ${set('codesStep', `(i32.mul ${g('rstep')} (i32.load offset=${KVS.rowBytes} ${g('s')}))`)}
    ${set('codes0', `(i32.add (i32.add (i32.add ${g('main')} (i32.mul ${g('row0')} (i32.load offset=${KVS.rowBytes} ${g('s')}))) (i32.mul (i32.div_u ${g('c0')} (i32.load offset=${KVS.S} ${g('s')})) (i32.load offset=${KVS.hstep} ${g('s')}))) (i32.shr_u ${g('c0')} ${i32(1)}))`)}
    ${set('lut', `(i32.add ${g('main')} (i32.load offset=${KVS.oLut} ${g('s')}))`)}
    ${set('gb', `(i32.load offset=${KVS.grpBytes} ${g('s')})`)}
    ${set('ng', `(i32.div_u (i32.load offset=${KVS.R} ${g('s')}) (i32.load offset=${KVS.G} ${g('s')}))`)}
    ${set('gStep', `(i32.mul (i32.mul ${g('rstep')} ${g('ng')}) ${g('gb')})`)}
    ${set('ga', `(i32.add (i32.add ${g('main')} (i32.load offset=${KVS.oGrp} ${g('s')})) (i32.mul (i32.add (i32.mul ${g('row0')} ${g('ng')}) (i32.div_u ${g('c0')} (i32.load offset=${KVS.G} ${g('s')}))) ${g('gb')}))`)}
    ;; each row's scale and offset (f16 through the table), p · scale, and Σ p · offset
    (block $qd (loop $ql
      (br_if $qd (i32.ge_u ${g('j')} ${g('nb')}))
      ${set('sc', `(f32.load (i32.add ${g('tab')} (i32.shl (i32.load16_u ${g('ga')}) ${i32(2)})))`)}
      ${set('of', `(select (f32.load (i32.add ${g('tab')} (i32.shl (i32.load16_u offset=2 ${g('ga')}) ${i32(2)}))) (f32.const 0) (i32.eq ${g('gb')} ${i32(4)}))`)}
      ${set('p', `(f32.load ${F('w', g('j'))})`)}
      (f32.store ${F('wb', g('j'))} (f32.mul ${g('p')} ${g('sc')}))
      (f32.store ${F('wb', `(i32.add ${g('j')} ${g('nb')})`)} ${g('sc')})
      (f32.store ${F('wb', `(i32.add ${g('j')} (i32.shl ${g('nb')} ${i32(1)}))`)} ${g('of')})
      ${set('osum', `(f32.add ${g('osum')} (f32.mul ${g('p')} ${g('of')}))`)}
      ${inc('ga', g('gStep'))} ${inc('j', 1)}
      (br $ql)))
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
    ;; sixteen channels at a time: y in registers over the block's rows, plus Σ p · offset
    ${set('k', i32(0))}
    (block $sd (loop $sl
      (br_if $sd (i32.ge_u ${g('k')} ${g('n')}))
      ${[0, 1, 2, 3].map((u) => set(`y${u}`, `(v128.load ${u ? `offset=${16 * u} ` : ''}${F('ya', g('k'))})`)).join(' ')}
      ${set('codes', g('codes0'))} ${set('c', g('k'))} ${set('j', i32(0))}
      ;; four rows a pass: their terms summed before they meet y (a dependency chain a quarter as long)
      (block $jd (loop $jl
        (br_if $jd (i32.gt_u (i32.add ${g('j')} ${i32(4)}) ${g('nb')}))
        ${[0, 1, 2, 3].map((r) => `
        ${lut4(16, relaxed)}
        ${set('wv', `(v128.load32_splat ${r ? `offset=${4 * r} ` : ''}${F('wb', g('j'))})`)}
        ${[0, 1, 2, 3].map((u) => set(`t${u}`, r ? `(f32x4.add ${g(`t${u}`)} (f32x4.mul ${g('wv')} ${g(`l${u}`)}))` : `(f32x4.mul ${g('wv')} ${g(`l${u}`)})`)).join(' ')}
        ${inc('codes', g('codesStep'))}`).join('')}
        ${[0, 1, 2, 3].map((u) => set(`y${u}`, `(f32x4.add ${g(`y${u}`)} ${g(`t${u}`)})`)).join(' ')}
        ${inc('j', 4)}
        (br $jl)))
      (block $kd (loop $kl
        (br_if $kd (i32.ge_u ${g('j')} ${g('nb')}))
        ${lut4(16, relaxed)}
        ${set('wv', `(v128.load32_splat ${F('wb', g('j'))})`)}
        ${[0, 1, 2, 3].map((u) => set(`y${u}`, `(f32x4.add ${g(`y${u}`)} (f32x4.mul ${g('wv')} ${g(`l${u}`)}))`)).join(' ')}
        ${inc('codes', g('codesStep'))} ${inc('j', 1)}
        (br $kl)))
      ${set('wv', `(f32x4.splat ${g('osum')})`)}
      ${[0, 1, 2, 3].map((u) => `(v128.store ${u ? `offset=${16 * u} ` : ''}${F('ya', g('k'))} (f32x4.add ${g(`y${u}`)} ${g('wv')}))`).join(' ')}
      ${inc('k', 16)}
      (br $sl)))
    ;; exact entries: the slice is one segment of the index, so its entries are [rowptr + seg[h], the next segment's start)
    (if (i32.eqz (i32.load offset=${KVS.sparse} ${g('s')})) (then (return)))
    ${set('rp', `(i32.add (i32.add ${g('main')} (i32.load offset=${KVS.oRowptr} ${g('s')})) (i32.shl ${g('row0')} ${i32(2)}))`)}
    ${set('rpStep', `(i32.shl ${g('rstep')} ${i32(2)})`)}
    ${set('k', `(i32.load offset=${KVS.segs} ${g('s')})`)}
    ${set('sp', `(i32.add (i32.add ${g('main')} (i32.load offset=${KVS.oSeg} ${g('s')})) (i32.shl (i32.mul ${g('row0')} ${g('k')}) ${i32(1)}))`)}
    ${set('spStep', `(i32.shl (i32.mul ${g('rstep')} ${g('k')}) ${i32(1)})`)}
    ${set('s0b', `(i32.div_u ${g('c0')} ${g('n')})`)}
    ${set('s1b', `(select (i32.shl (i32.add ${g('s0b')} ${i32(1)}) ${i32(1)}) ${i32(0)} (i32.lt_u (i32.add ${g('s0b')} ${i32(1)}) ${g('k')}))`)}
    ${set('s0b', `(i32.shl ${g('s0b')} ${i32(1)})`)}
    ${set('ov', `(i32.load offset=${KVS.out} ${g('s')})`)}
    ${set('oval', `(i32.add ${g('ov')} (i32.load offset=${KVS.oVal} ${g('s')}))`)}
    ${set('codes', g('codes0'))} ${set('j', i32(0))}
    (block $rd (loop $rl
      (br_if $rd (i32.ge_u ${g('j')} ${g('nb')}))
      ${set('e', `(i32.load ${g('rp')})`)} ${set('e1', `(i32.load offset=4 ${g('rp')})`)}
      (if ${g('s1b')} (then ${set('e1', `(i32.add ${g('e')} (i32.load16_u (i32.add ${g('sp')} ${g('s1b')})))`)}))
      ${set('e', `(i32.add ${g('e')} (i32.load16_u (i32.add ${g('sp')} ${g('s0b')})))`)}
      ${set('p', `(f32.load ${F('w', g('j'))})`)}
      ${set('sc', `(f32.load ${F('wb', `(i32.add ${g('j')} ${g('nb')})`)})`)}
      ${set('of', `(f32.load ${F('wb', `(i32.add ${g('j')} (i32.shl ${g('nb')} ${i32(1)}))`)})`)}
      ;; a slice holds 0 or 1 entries nearly always: the first is added without a branch on the count
      ;; (entry 0 read, in bounds, and its term dropped by a select where there is none), a loop takes the rest
      ${set('e1', `(i32.sub ${g('e1')} ${g('e')})`)}
      ${set('kk', `(select (i32.sub ${exactChan(`(select ${g('e')} ${i32(0)} ${g('e1')})`)} ${g('c0')}) ${i32(0)} ${g('e1')})`)}
      ${addTerm(`(select ${g('e')} ${i32(0)} ${g('e1')})`, `(i32.ne ${g('e1')} ${i32(0)})`)}
      (if (i32.gt_u ${g('e1')} ${i32(1)}) (then
        ${set('e1', `(i32.add ${g('e')} ${g('e1')})`)} ${inc('e', 1)}
        (block $ed (loop $el
          ${set('kk', `(i32.sub ${exactChan(g('e'))} ${g('c0')})`)}
          ${addTerm(g('e'), '')}
          ${inc('e', 1)}
          (br_if $el (i32.lt_u ${g('e')} ${g('e1')}))))))
      ${inc('codes', g('codesStep'))} ${inc('rp', g('rpStep'))} ${inc('sp', g('spStep'))} ${inc('j', 1)}
      (br $rl))))`;
