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
// then the masked softmax numerators of scale · scores (causal prefix with offset tk − tq, u8 key
// mask), and y = Σ e_j v_j / Σ e_j over keys with e_j ≠ 0, each value block decoded the same way
// once for the G heads. Decoded values equal the reference's (codec.ts decodeRow) exactly: the same
// f32 products and sums. Rows are row = j · B + b (position-major).
//   kv_attn_rows(params, task, nTasks)   parameter block KVA below, streams at KVA.k / KVA.v (KVS)
import { expFn, f4 } from './simd-math.mjs';

export const name = 'kvattn';
export const exportNames = ['kv_attn_rows'];

/** One stream's fields (byte offsets inside its sub-block); addresses are absolute. */
export const KVS = {
  main: 0, out: 4, bits: 8, R: 12, rowBytes: 16, params: 20, G: 24, grpBytes: 28,
  oGrp: 32, oRowptr: 36, oPos: 40, oLut: 44, oChan: 48, oVal: 52, sparse: 56,
  /** 0: a value at a time; 4: 4-bit codes through the table's byte planes; 8: 8-bit lut[i] = int8(i); 9: 8-bit lut[i] = i. */
  fast: 60,
  /** Segments per row of the sparse index and its u16 [rows · segs] table (codec.ts). */
  segs: 64, oSeg: 68,
  /** Codes a kv head slice at a time: bytes between slices h and h + 1 of a row ((cap − 1) · rowBytes), and the slice width. rowBytes is then one slice's. */
  hstep: 72, S: 76, BYTES: 96,
};
/** Parameter block (i32 fields at byte offsets); q strides in elements; y contiguous [b, hq, tq, dv]. */
export const KVA = {
  B: 0, HQ: 4, G: 8, TQ: 12, TK: 16, D: 20, DV: 24, q: 28, qsb: 32, qsh: 36, qst: 40, y: 44,
  mask: 48, causal: 52, scaleBits: 56, scratch: 60, scratchStride: 64, tab: 68,
  rope: 72, rot: 76, ropeMode: 80, k: 128, v: 224, BYTES: 320,
};
/** Keys (and values) decoded per block. */
const NB = 64;
export const constants = { KVA, KVS, NB };

const g = (n) => `(local.get $${n})`;
const set = (n, v) => `(local.set $${n} ${v})`;
const inc = (n, by) => set(n, `(i32.add ${g(n)} ${typeof by === 'number' ? `(i32.const ${by})` : by})`);
const i32 = (n) => `(i32.const ${n})`;

// decodes values [c0, c0 + n) of row `row` of the stream at `s` into f32 `out`
const lutAt = (k) => `(f32.load (i32.add ${g('lut')} (i32.shl (i32x4.extract_lane ${k} ${g('cv')}) ${i32(2)})))`;
const DECODE = `
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
      ${set('c', `(i32.sub (i32.load16_u (i32.add ${g('ov')} (i32.shl ${g('e')} ${i32(1)}))) ${g('c0')})`)}
      (if (i32.lt_u ${g('c')} ${g('n')}) (then
        (f32.store (i32.add ${g('out')} (i32.shl ${g('c')} ${i32(2)}))
          (f32.load (i32.add (i32.add ${g('ov')} (i32.load offset=${KVS.oVal} ${g('s')})) (i32.shl ${g('e')} ${i32(2)}))))))
      ${inc('e', 1)}
      (br $el))))`;

// rotates pairs of buf by the angles of position pos (table: cos and sin [position, 2, rot/2]): half
// pairs (i, i + rot/2) or interleaved (2i, 2i + 1)
const ROTATE = `
  (func $rot (param $buf i32) (param $tab i32) (param $pos i32) (param $rot i32) (param $mode i32)
    (local $half i32) (local $i i32) (local $a i32) (local $b i32) (local $cs i32) (local $xa f32) (local $xb f32) (local $co f32) (local $si f32)
    ${set('half', `(i32.shr_u ${g('rot')} ${i32(1)})`)}
    ${set('cs', `(i32.add ${g('tab')} (i32.shl (i32.mul ${g('pos')} ${g('half')}) ${i32(3)}))`)}
    (block $d (loop $l
      (br_if $d (i32.ge_u ${g('i')} ${g('half')}))
      (if ${g('mode')}
        (then ${set('a', `(i32.add ${g('buf')} (i32.shl ${g('i')} ${i32(3)}))`)} ${set('b', `(i32.add ${g('a')} ${i32(4)})`)})
        (else ${set('a', `(i32.add ${g('buf')} (i32.shl ${g('i')} ${i32(2)}))`)} ${set('b', `(i32.add ${g('a')} (i32.shl ${g('half')} ${i32(2)}))`)}))
      ${set('xa', `(f32.load ${g('a')})`)} ${set('xb', `(f32.load ${g('b')})`)}
      ${set('co', `(f32.load ${g('cs')})`)} ${set('si', `(f32.load (i32.add ${g('cs')} (i32.shl ${g('half')} ${i32(2)})))`)}
      (f32.store ${g('a')} (f32.sub (f32.mul ${g('xa')} ${g('co')}) (f32.mul ${g('xb')} ${g('si')})))
      (f32.store ${g('b')} (f32.add (f32.mul ${g('xb')} ${g('co')}) (f32.mul ${g('xa')} ${g('si')})))
      ${inc('cs', 4)} ${inc('i', 1)}
      (br $l))))`;

// ---- fast decode of many rows -----------------------------------------------------------------
// Four-bit codes meet their lookup table through byte shuffles: the table's 16 f32 entries split
// into four byte planes (byte k of every entry), each code picks its byte from each plane
// (i8x16.swizzle) and zips rebuild the f32 lanes, so any table (uniform, q4_0's i − 8, a
// calibrated codebook) decodes sixteen values in sixteen SIMD ops. Eight-bit codes whose table is
// the integers (q8_0's int8(i), uniform i) convert directly by sign or zero extension.
const zipLo = '0 16 1 17 2 18 3 19 4 20 5 21 6 22 7 23';
const zipHi = '8 24 9 25 10 26 11 27 12 28 13 29 14 30 15 31';
const pairLo = '0 1 16 17 2 3 18 19 4 5 20 21 6 7 22 23';
const pairHi = '8 9 24 25 10 11 26 27 12 13 28 29 14 15 30 31';
/** 8 or 16 codes from `codes` + c → f32 lanes l0..l(w/4 − 1). */
function lut4(w) {
  const load = w === 16 ? `(v128.load64_zero (i32.add ${g('codes')} (i32.shr_u ${g('c')} ${i32(1)})))` : `(v128.load32_zero (i32.add ${g('codes')} (i32.shr_u ${g('c')} ${i32(1)})))`;
  const sw = (p) => `(i8x16.swizzle ${g(p)} ${g('cv')})`;
  let out = `
          ${set('cv', load)}
          ${set('cv', `(i8x16.shuffle ${zipLo} (v128.and ${g('cv')} ${g('mlo')}) (i8x16.shr_u ${g('cv')} ${i32(4)}))`)}
          ${set('a', sw('p0'))} ${set('b', sw('p1'))} ${set('z0', `(i8x16.shuffle ${zipLo} ${g('a')} ${g('b')})`)}`;
  if (w === 16) out += ` ${set('z2', `(i8x16.shuffle ${zipHi} ${g('a')} ${g('b')})`)}`;
  out += `
          ${set('a', sw('p2'))} ${set('b', sw('p3'))} ${set('z1', `(i8x16.shuffle ${zipLo} ${g('a')} ${g('b')})`)}`;
  if (w === 16) out += ` ${set('z3', `(i8x16.shuffle ${zipHi} ${g('a')} ${g('b')})`)}`;
  out += `
          ${set('l0', `(i8x16.shuffle ${pairLo} ${g('z0')} ${g('z1')})`)} ${set('l1', `(i8x16.shuffle ${pairHi} ${g('z0')} ${g('z1')})`)}`;
  if (w === 16) out += ` ${set('l2', `(i8x16.shuffle ${pairLo} ${g('z2')} ${g('z3')})`)} ${set('l3', `(i8x16.shuffle ${pairHi} ${g('z2')} ${g('z3')})`)}`;
  return out;
}
/** sign: 's' (q8_0's int8(i)) or 'u' (uniform i). */
function lut8(w, sign) {
  const cvt = (lane, ext) => set(lane, `(f32x4.convert_i32x4_s (i32x4.${ext}_i16x8_${sign} ${g('cv')}))`);
  let out = `
          ${set('cv', `(i16x8.extend_low_i8x16_${sign} (v128.load64_zero (i32.add ${g('codes')} ${g('c')})))`)}
          ${cvt('l0', 'extend_low')} ${cvt('l1', 'extend_high')}`;
  if (w === 16) {
    out += `
          ${set('cv', `(i16x8.extend_low_i8x16_${sign} (v128.load64_zero offset=8 (i32.add ${g('codes')} ${g('c')})))`)}
          ${cvt('l2', 'extend_low')} ${cvt('l3', 'extend_high')}`;
  }
  return out;
}
/** Scale (and offset) of the decoded lanes: per channel (vectors at c), or the group's f16 scale (and offset). */
function apply(pk, w) {
  const lanes = w / 4;
  const out = [];
  for (let u = 0; u < lanes; u++) {
    const l = g(`l${u}`);
    const off = u ? `offset=${16 * u} ` : '';
    if (pk === 'ch') out.push(set(`l${u}`, `(f32x4.add (f32x4.mul ${l} (v128.load ${off}(i32.add ${g('chs')} (i32.shl ${g('c')} ${i32(2)})))) (v128.load ${off}(i32.add ${g('cho')} (i32.shl ${g('c')} ${i32(2)}))))`));
    else if (pk === 'g2') out.push(set(`l${u}`, `(f32x4.mul ${l} ${g('scv')})`));
    else out.push(set(`l${u}`, `(f32x4.add (f32x4.mul ${l} ${g('scv')}) ${g('ofv')})`));
  }
  return out.join(' ');
}
/** w values at a time over [c, cEnd) of one row: codes -> lanes -> scaled -> out. */
const chunkLoop = (bits, pk, w) => `
          (block $d${bits}${pk}${w} (loop $l${bits}${pk}${w}
            (br_if $d${bits}${pk}${w} (i32.gt_u (i32.add ${g('c')} ${i32(w)}) ${g('cEnd')}))
            ${bits === 4 ? lut4(w) : lut8(w, bits === 8 ? 's' : 'u')}
            ${apply(pk, w)}
            ${Array.from({ length: w / 4 }, (_, u) => `(v128.store ${u ? `offset=${16 * u} ` : ''}${g('o')} ${g(`l${u}`)})`).join(' ')}
            ${inc('o', 4 * w)} ${inc('c', w)}
            (br $l${bits}${pk}${w})))`;
/**
 * The rows of one (bits, params) kind: each row's slice is whole spans of `span` values (a group,
 * or the slice inside one group; per channel the whole slice) with one scale (and offset) each.
 */
const rowLoop = (bits, pk) => `
      (block $rd${bits}${pk} (loop $rl${bits}${pk}
        (br_if $rd${bits}${pk} (i32.ge_u ${g('r')} ${g('nr')}))
        ${set('c', i32(0))} ${set('ga', g('gRow'))}
        (block $sd${bits}${pk} (loop $sl${bits}${pk}
          (br_if $sd${bits}${pk} (i32.ge_u ${g('c')} ${g('n')}))
          ${set('cEnd', `(i32.add ${g('c')} ${g('span')})`)}
          ${pk === 'ch' ? '' : set('scv', `(f32x4.splat (f32.load (i32.add ${g('tab')} (i32.shl (i32.load16_u ${g('ga')}) ${i32(2)}))))`)}
          ${pk === 'g4' ? set('ofv', `(f32x4.splat (f32.load (i32.add ${g('tab')} (i32.shl (i32.load16_u offset=2 ${g('ga')}) ${i32(2)}))))`) : ''}
          ${chunkLoop(bits, pk, 16)}
          ${chunkLoop(bits, pk, 8)}
          ${inc('ga', g('gb'))}
          (br $sl${bits}${pk})))
        ;; exact sparse entries of this row inside [c0, c0 + n): a row's entries are in channel
        ;; order, so a count (or, in long runs, a binary search) finds the first, and the run ends at
        ;; the first past the slice
        (if (i32.and ${g('sparse')} (i32.eqz ${g('blk')})) (then
          ${set('e', `(i32.load ${g('rp')})`)} ${set('e1', `(i32.load offset=4 ${g('rp')})`)}
          (if ${g('segx')} (then
            ;; the slice is one segment: its entries are exactly [rowptr + seg[h], the next segment's
            ;; start). A slice holds 0, 1 or 2 of them nearly always: those two are written without a
            ;; branch on the count (a store to the dummy slot where there is none; index 0 is read
            ;; then, always inside the buffer), a loop takes the rare rest
            (if ${g('s1b')} (then ${set('e1', `(i32.add ${g('e')} (i32.load16_u (i32.add ${g('sp')} ${g('s1b')})))`)}))
            ${set('e', `(i32.add ${g('e')} (i32.load16_u (i32.add ${g('sp')} ${g('s0b')})))`)}
            ${set('len', `(i32.sub ${g('e1')} ${g('e')})`)}
            ${set('lt', `(i32.sub ${g('o')} (i32.shl ${g('n')} ${i32(2)}))`)}
            ${[0, 1].map((u) => `
            ${set('k', `(select ${u ? `(i32.add ${g('e')} ${i32(u)})` : g('e')} ${i32(0)} (i32.gt_u ${g('len')} ${i32(u)}))`)}
            (f32.store (select (i32.add ${g('lt')} (i32.shl (i32.sub (i32.load16_u (i32.add ${g('ov')} (i32.shl ${g('k')} ${i32(1)}))) ${g('c0')}) ${i32(2)})) ${g('dm')} (i32.gt_u ${g('len')} ${i32(u)}))
              (f32.load (i32.add ${g('oval')} (i32.shl ${g('k')} ${i32(2)}))))`).join('')}
            (if (i32.gt_u ${g('len')} ${i32(2)}) (then
              ${inc('e', 2)}
              (block $xd (loop $xl
                (br_if $xd (i32.ge_u ${g('e')} ${g('e1')}))
                (f32.store (i32.add ${g('lt')} (i32.shl (i32.sub (i32.load16_u (i32.add ${g('ov')} (i32.shl ${g('e')} ${i32(1)}))) ${g('c0')}) ${i32(2)})) (f32.load (i32.add ${g('oval')} (i32.shl ${g('e')} ${i32(2)}))))
                ${inc('e', 1)}
                (br $xl)))))
)
          (else
          ;; with a segment index the slice's segments bound the run (no scan of the row's others)
          (if ${g('segs')} (then
            (if ${g('s1b')} (then ${set('e1', `(i32.add ${g('e')} (i32.load16_u (i32.add ${g('sp')} ${g('s1b')})))`)}))
            ${set('e', `(i32.add ${g('e')} (i32.load16_u (i32.add ${g('sp')} ${g('s0b')})))`)}))
          ${set('len', `(i32.sub ${g('e1')} ${g('e')})`)}
          ;; a short run: count the entries before the slice (independent loads, no chain of them)
          (if (i32.le_u ${g('len')} ${i32(32)}) (then
            ${set('k', g('e'))}
            (block $cd (loop $cl
              (br_if $cd (i32.ge_u ${g('k')} ${g('e1')}))
              ${set('e', `(i32.add ${g('e')} (i32.lt_u (i32.load16_u (i32.add ${g('ov')} (i32.shl ${g('k')} ${i32(1)}))) ${g('c0')}))`)}
              ${inc('k', 1)}
              (br $cl)))
            ${set('len', i32(0))}))
          (block $bd (loop $bl
            (br_if $bd (i32.eqz ${g('len')}))
            ${set('k', `(i32.add ${g('e')} (i32.shr_u ${g('len')} ${i32(1)}))`)}
            ${set('lt', `(i32.lt_u (i32.load16_u (i32.add ${g('ov')} (i32.shl ${g('k')} ${i32(1)}))) ${g('c0')})`)}
            ${set('e', `(select (i32.add ${g('k')} ${i32(1)}) ${g('e')} ${g('lt')})`)}
            ${set('len', `(select (i32.sub (i32.sub ${g('len')} (i32.shr_u ${g('len')} ${i32(1)})) ${i32(1)}) (i32.shr_u ${g('len')} ${i32(1)}) ${g('lt')})`)}
            (br $bl)))
          (block $ed (loop $el
            (br_if $ed (i32.ge_u ${g('e')} ${g('e1')}))
            ${set('k', `(i32.sub (i32.load16_u (i32.add ${g('ov')} (i32.shl ${g('e')} ${i32(1)}))) ${g('c0')})`)}
            (br_if $ed (i32.ge_u ${g('k')} ${g('n')}))
            (f32.store (i32.add (i32.sub ${g('o')} (i32.shl ${g('n')} ${i32(2)})) (i32.shl ${g('k')} ${i32(2)})) (f32.load (i32.add ${g('oval')} (i32.shl ${g('e')} ${i32(2)}))))
            ${inc('e', 1)}
            (br $el)))))))
        ${inc('codes', g('codesStep'))} ${inc('gRow', g('gStep'))} ${inc('rp', g('rpStep'))} ${inc('sp', g('spStep'))}
        ${inc('r', 1)}
        (br $rl${bits}${pk})))`;
const perParams = (bits) => `
    (if (i32.eqz ${g('params')})
      (then ${rowLoop(bits, 'ch')})
      (else (if (i32.eq ${g('gb')} ${i32(4)}) (then ${rowLoop(bits, 'g4')}) (else ${rowLoop(bits, 'g2')}))))`;

/** Scale (and offset) of two rows of 8 values in lanes l0, l1 (row A) and l2, l3 (row B). */
function apply2(pk, rows) {
  const out = [];
  for (let u = 0; u < 2 * rows; u++) {
    const l = g(`l${u}`), half = u & 1, row = u >> 1 ? 'B' : 'A';
    if (pk === 'ch') out.push(set(`l${u}`, `(f32x4.add (f32x4.mul ${l} ${g(`cs${half}`)}) ${g(`co${half}`)})`));
    else if (pk === 'g2') out.push(set(`l${u}`, `(f32x4.mul ${l} ${g(`sc${row}`)})`));
    else out.push(set(`l${u}`, `(f32x4.add (f32x4.mul ${l} ${g(`sc${row}`)}) ${g(`of${row}`)})`));
  }
  return out.join(' ');
}
const groupParams = (pk, row, at) => pk === 'ch' ? '' : `
          ${set(`sc${row}`, `(f32x4.splat (f32.load (i32.add ${g('tab')} (i32.shl (i32.load16_u ${at}) ${i32(2)}))))`)}
          ${pk === 'g4' ? set(`of${row}`, `(f32x4.splat (f32.load (i32.add ${g('tab')} (i32.shl (i32.load16_u offset=2 ${at}) ${i32(2)}))))`) : ''}`;
/**
 * Heads of 8 values whose rows lie back to back (codes a head slice at a time, one sequence): the
 * block's codes are one run, decoded two rows (16 values) per pass, with no per-row work but the
 * rows' group scale (and offset).
 */
const run8 = (bits, pk) => {
  const dec = (w) => (bits === 4 ? lut4(w) : lut8(w, bits === 8 ? 's' : 'u'));
  const stepCodes = bits === 4 ? 4 : 8; // bytes of one row's 8 codes
  return `
      (block $qd${bits}${pk} (loop $ql${bits}${pk}
        (br_if $qd${bits}${pk} (i32.gt_u (i32.add ${g('r')} ${i32(2)}) ${g('nr')}))
        ${dec(16)}
        ${groupParams(pk, 'A', g('gRow'))} ${groupParams(pk, 'B', `(i32.add ${g('gRow')} ${g('gStep')})`)}
        ${apply2(pk, 2)}
        (v128.store ${g('o')} ${g('l0')}) (v128.store offset=16 ${g('o')} ${g('l1')}) (v128.store offset=32 ${g('o')} ${g('l2')}) (v128.store offset=48 ${g('o')} ${g('l3')})
        ${inc('o', 64)} ${inc('codes', 2 * stepCodes)} ${inc('gRow', `(i32.shl ${g('gStep')} ${i32(1)})`)} ${inc('r', 2)}
        (br $ql${bits}${pk})))
      (if (i32.lt_u ${g('r')} ${g('nr')}) (then
        ${dec(8)}
        ${groupParams(pk, 'A', g('gRow'))}
        ${apply2(pk, 1)}
        (v128.store ${g('o')} ${g('l0')}) (v128.store offset=16 ${g('o')} ${g('l1')})))`;
};
const runParams = (bits) => `
        (if (i32.eqz ${g('params')})
          (then ${run8(bits, 'ch')})
          (else (if (i32.eq ${g('gb')} ${i32(4)}) (then ${run8(bits, 'g4')}) (else ${run8(bits, 'g2')}))))`;

// Exact entries of rows row0 .. row0 + nr − 1 (one sequence: consecutive rows) inside [c0, c0 + n),
// written over out [nr, n]: the block's entries are one run from rowptr[row0] to rowptr[row0 + nr];
// each one in the slice finds its row by a cursor that only moves forward.
const SPARSE_BLOCK = `
  (func $sparse_block (param $rp i32) (param $nr i32) (param $ov i32) (param $oval i32) (param $c0 i32) (param $n i32) (param $out i32)
    (local $e i32) (local $e1 i32) (local $k i32) (local $r i32)
    ${set('e', `(i32.load ${g('rp')})`)} ${set('e1', `(i32.load (i32.add ${g('rp')} (i32.shl ${g('nr')} ${i32(2)})))`)}
    (block $ed (loop $el
      (br_if $ed (i32.ge_u ${g('e')} ${g('e1')}))
      ${set('k', `(i32.sub (i32.load16_u (i32.add ${g('ov')} (i32.shl ${g('e')} ${i32(1)}))) ${g('c0')})`)}
      (if (i32.lt_u ${g('k')} ${g('n')}) (then
        (block $rd (loop $rl
          (br_if $rd (i32.gt_u (i32.load offset=4 (i32.add ${g('rp')} (i32.shl ${g('r')} ${i32(2)}))) ${g('e')}))
          ${inc('r', 1)}
          (br $rl)))
        (f32.store (i32.add ${g('out')} (i32.shl (i32.add (i32.mul ${g('r')} ${g('n')}) ${g('k')}) ${i32(2)}))
          (f32.load (i32.add ${g('oval')} (i32.shl ${g('e')} ${i32(2)}))))))
      ${inc('e', 1)}
      (br $el))))`;

// Values [c0, c0 + n) of rows row0, row0 + rstep, ... (nr rows) of the stream at `s` into f32
// out [nr, n]. The fast paths need n (and so c0 = kv_head · n) a multiple of 8 and, for group
// params, n a multiple of the group or the group a multiple of n (the glue sets KVS.fast only
// then); everything else goes through $dec a row at a time.
const DEC_ROWS = `
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
        ${set('a', `(i8x16.shuffle 0 4 8 12 16 20 24 28 1 5 9 13 17 21 25 29 (v128.load ${g('k')}) (v128.load offset=16 ${g('k')}))`)}
        ${set('b', `(i8x16.shuffle 0 4 8 12 16 20 24 28 1 5 9 13 17 21 25 29 (v128.load offset=32 ${g('k')}) (v128.load offset=48 ${g('k')}))`)}
        ${set('p0', `(i8x16.shuffle 0 1 2 3 4 5 6 7 16 17 18 19 20 21 22 23 ${g('a')} ${g('b')})`)}
        ${set('p1', `(i8x16.shuffle 8 9 10 11 12 13 14 15 24 25 26 27 28 29 30 31 ${g('a')} ${g('b')})`)}
        ${set('a', `(i8x16.shuffle 2 6 10 14 18 22 26 30 3 7 11 15 19 23 27 31 (v128.load ${g('k')}) (v128.load offset=16 ${g('k')}))`)}
        ${set('b', `(i8x16.shuffle 2 6 10 14 18 22 26 30 3 7 11 15 19 23 27 31 (v128.load offset=32 ${g('k')}) (v128.load offset=48 ${g('k')}))`)}
        ${set('p2', `(i8x16.shuffle 0 1 2 3 4 5 6 7 16 17 18 19 20 21 22 23 ${g('a')} ${g('b')})`)}
        ${set('p3', `(i8x16.shuffle 8 9 10 11 12 13 14 15 24 25 26 27 28 29 30 31 ${g('a')} ${g('b')})`)}
        ${set('mlo', '(v128.const i32x4 0x0f0f0f0f 0x0f0f0f0f 0x0f0f0f0f 0x0f0f0f0f)')}))
    ;; heads of 8 whose rows lie back to back (a head slice per row, one sequence): one run of codes
    (if (i32.and (i32.eq ${g('n')} ${i32(8)}) (i32.and (i32.eq ${g('rstep')} ${i32(1)}) (i32.eq (i32.load offset=${KVS.S} ${g('s')}) ${i32(8)})))
      (then
        (if (i32.eqz ${g('params')}) (then
          ${set('cs0', `(v128.load ${g('chs')})`)} ${set('cs1', `(v128.load offset=16 ${g('chs')})`)}
          ${set('co0', `(v128.load ${g('cho')})`)} ${set('co1', `(v128.load offset=16 ${g('cho')})`)}))
        ${set('c', i32(0))}
        (if (i32.eq ${g('fast')} ${i32(4)}) (then ${runParams(4)})
          (else (if (i32.eq ${g('fast')} ${i32(8)}) (then ${runParams(8)}) (else ${runParams(9)}))))
        (if ${g('blk')} (then (call $sparse_block ${g('rp')} ${g('nr')} ${g('ov')} ${g('oval')} ${g('c0')} ${g('n')} ${g('out')})))
        (return)))
    (if (i32.eq ${g('fast')} ${i32(4)}) (then ${perParams(4)})
      (else (if (i32.eq ${g('fast')} ${i32(8)}) (then ${perParams(8)}) (else ${perParams(9)}))))
    (if ${g('blk')} (then (call $sparse_block (i32.add (i32.add ${g('main')} (i32.load offset=${KVS.oRowptr} ${g('s')})) (i32.shl ${g('row0')} ${i32(2)})) ${g('nr')} ${g('ov')} ${g('oval')} ${g('c0')} ${g('n')} ${g('out')}))))`;

// RoPE of nb decoded keys buf [nb, D] at their stored positions (i32 at `pos`, `pstep` bytes
// apart), four pairs at a time where the rotary width allows (the same f32 products and sums as
// $rot, so the same values); $rot a key at a time otherwise. Table: cos and sin [position, 2, half].
const ROPE_ROWS = `
  (func $rope_rows (param $buf i32) (param $D i32) (param $nb i32) (param $pos i32) (param $pstep i32) (param $tab i32) (param $rot i32) (param $mode i32)
    (local $half i32) (local $j i32) (local $i i32) (local $a i32) (local $cs i32) (local $hb i32) (local $xa v128) (local $xb v128) (local $co v128) (local $si v128) (local $x v128)
    ${set('half', `(i32.shr_u ${g('rot')} ${i32(1)})`)} ${set('hb', `(i32.shl ${g('half')} ${i32(2)})`)}
    (if (i32.and (i32.eqz ${g('mode')}) (i32.eq ${g('half')} ${i32(4)})) (then
      ;; four pairs a key (heads of 8): no inner loop
      (block $jd (loop $jl
        (br_if $jd (i32.ge_u ${g('j')} ${g('nb')}))
        ${set('cs', `(i32.add ${g('tab')} (i32.shl (i32.load ${g('pos')}) ${i32(5)}))`)}
        ${set('co', `(v128.load ${g('cs')})`)} ${set('si', `(v128.load offset=16 ${g('cs')})`)}
        ${set('xa', `(v128.load ${g('buf')})`)} ${set('xb', `(v128.load offset=16 ${g('buf')})`)}
        (v128.store ${g('buf')} (f32x4.sub (f32x4.mul ${g('xa')} ${g('co')}) (f32x4.mul ${g('xb')} ${g('si')})))
        (v128.store offset=16 ${g('buf')} (f32x4.add (f32x4.mul ${g('xb')} ${g('co')}) (f32x4.mul ${g('xa')} ${g('si')})))
        ${inc('buf', `(i32.shl ${g('D')} ${i32(2)})`)} ${inc('pos', g('pstep'))} ${inc('j', 1)}
        (br $jl)))
      (return)))
    (if (i32.and (i32.eqz ${g('mode')}) (i32.eqz (i32.and ${g('half')} ${i32(3)}))) (then
      (block $jd (loop $jl
        (br_if $jd (i32.ge_u ${g('j')} ${g('nb')}))
        ${set('cs', `(i32.add ${g('tab')} (i32.mul (i32.load ${g('pos')}) (i32.shl ${g('hb')} ${i32(1)})))`)}
        ${set('a', g('buf'))} ${set('i', i32(0))}
        (block $d (loop $l
          (br_if $d (i32.ge_u ${g('i')} ${g('half')}))
          ${set('co', `(v128.load ${g('cs')})`)} ${set('si', `(v128.load (i32.add ${g('cs')} ${g('hb')}))`)}
          ${set('xa', `(v128.load ${g('a')})`)} ${set('xb', `(v128.load (i32.add ${g('a')} ${g('hb')}))`)}
          (v128.store ${g('a')} (f32x4.sub (f32x4.mul ${g('xa')} ${g('co')}) (f32x4.mul ${g('xb')} ${g('si')})))
          (v128.store (i32.add ${g('a')} ${g('hb')}) (f32x4.add (f32x4.mul ${g('xb')} ${g('co')}) (f32x4.mul ${g('xa')} ${g('si')})))
          ${inc('cs', 16)} ${inc('a', 16)} ${inc('i', 4)}
          (br $l)))
        ${inc('buf', `(i32.shl ${g('D')} ${i32(2)})`)} ${inc('pos', g('pstep'))} ${inc('j', 1)}
        (br $jl)))
      (return)))
    (if (i32.and (i32.ne ${g('mode')} ${i32(0)}) (i32.eqz (i32.and ${g('half')} ${i32(1)}))) (then
      ;; interleaved pairs (x0, x1), (x2, x3): x·(c0, c0, c1, c1) + (−x1·s0, x0·s0, −x3·s1, x2·s1)
      (block $jd (loop $jl
        (br_if $jd (i32.ge_u ${g('j')} ${g('nb')}))
        ${set('cs', `(i32.add ${g('tab')} (i32.mul (i32.load ${g('pos')}) (i32.shl ${g('hb')} ${i32(1)})))`)}
        ${set('a', g('buf'))} ${set('i', i32(0))}
        (block $d (loop $l
          (br_if $d (i32.ge_u ${g('i')} ${g('half')}))
          ${set('x', `(v128.load ${g('a')})`)}
          ${set('co', `(v128.load64_zero ${g('cs')})`)} ${set('si', `(v128.load64_zero (i32.add ${g('cs')} ${g('hb')}))`)}
          ${set('si', `(v128.xor (f32x4.mul (i8x16.shuffle 4 5 6 7 0 1 2 3 12 13 14 15 8 9 10 11 ${g('x')} ${g('x')}) (i8x16.shuffle 0 1 2 3 0 1 2 3 4 5 6 7 4 5 6 7 ${g('si')} ${g('si')})) (v128.const i32x4 0x80000000 0 0x80000000 0))`)}
          (v128.store ${g('a')} (f32x4.add (f32x4.mul ${g('x')} (i8x16.shuffle 0 1 2 3 0 1 2 3 4 5 6 7 4 5 6 7 ${g('co')} ${g('co')})) ${g('si')}))
          ${inc('cs', 8)} ${inc('a', 16)} ${inc('i', 2)}
          (br $l)))
        ${inc('buf', `(i32.shl ${g('D')} ${i32(2)})`)} ${inc('pos', g('pstep'))} ${inc('j', 1)}
        (br $jl)))
      (return)))
    (block $jd (loop $jl
      (br_if $jd (i32.ge_u ${g('j')} ${g('nb')}))
      (call $rot ${g('buf')} ${g('tab')} (i32.load ${g('pos')}) ${g('rot')} ${g('mode')})
      ${inc('buf', `(i32.shl ${g('D')} ${i32(2)})`)} ${inc('pos', g('pstep'))} ${inc('j', 1)}
      (br $jl))))`;

const HADD4 = `
  (func $hadd4 (param $a v128) (param $b v128) (param $c v128) (param $d v128) (result v128)
    (local $t v128) (local $u v128)
    (local.set $t (f32x4.add (i8x16.shuffle 0 1 2 3 16 17 18 19 4 5 6 7 20 21 22 23 ${g('a')} ${g('b')}) (i8x16.shuffle 8 9 10 11 24 25 26 27 12 13 14 15 28 29 30 31 ${g('a')} ${g('b')})))
    (local.set $u (f32x4.add (i8x16.shuffle 0 1 2 3 16 17 18 19 4 5 6 7 20 21 22 23 ${g('c')} ${g('d')}) (i8x16.shuffle 8 9 10 11 24 25 26 27 12 13 14 15 28 29 30 31 ${g('c')} ${g('d')})))
    (f32x4.add (i8x16.shuffle 0 1 2 3 4 5 6 7 16 17 18 19 20 21 22 23 ${g('t')} ${g('u')}) (i8x16.shuffle 8 9 10 11 12 13 14 15 24 25 26 27 28 29 30 31 ${g('t')} ${g('u')})))`;

const F = (base, idx) => `(i32.add ${g(base)} (i32.shl ${idx} ${i32(2)}))`; // f32 address base[idx]

// Scaled scores q·k_j of nb decoded keys kb [nb, D] into out [nb] (−inf where the u8 mask `m`,
// when not 0, is 0); returns their maximum. Four keys at a time (one load of q serves them all).
const SCORES = `
  (func $scores (param $qa i32) (param $kb i32) (param $D i32) (param $nb i32) (param $out i32) (param $sc v128) (param $m i32) (result f32)
    (local $j i32) (local $c i32) (local $d4 i32) (local $kr i32) (local $kst i32) (local $a0 v128) (local $b0 v128) (local $b1 v128) (local $b2 v128) (local $b3 v128)
    (local $t f32) (local $mx v128) (local $mt f32)
    ${set('d4', `(i32.and ${g('D')} ${i32(-4)})`)} ${set('kst', `(i32.shl ${g('D')} ${i32(2)})`)}
    ${set('mx', f4('-inf'))} ${set('mt', '(f32.const -inf)')} ${set('kr', g('kb'))}
    (block $s4d (loop $s4l
      (br_if $s4d (i32.gt_u (i32.add ${g('j')} ${i32(4)}) ${g('nb')}))
      ${[0, 1, 2, 3].map((u) => set(`b${u}`, f4(0))).join(' ')} ${set('c', i32(0))}
      (block $e4d (loop $e4l
        (br_if $e4d (i32.ge_u ${g('c')} ${g('d4')}))
        ${set('a0', `(v128.load ${F('qa', g('c'))})`)}
        ${[0, 1, 2, 3].map((u) => set(`b${u}`, `(f32x4.add ${g(`b${u}`)} (f32x4.mul ${g('a0')} (v128.load ${u === 0 ? F('kr', g('c')) : `(i32.add ${F('kr', g('c'))} (i32.mul ${g('kst')} ${i32(u)}))`})))`)).join('\n        ')}
        ${inc('c', 4)}
        (br $e4l)))
      ${set('a0', `(call $hadd4 ${g('b0')} ${g('b1')} ${g('b2')} ${g('b3')})`)}
      (block $e1d (loop $e1l
        (br_if $e1d (i32.ge_u ${g('c')} ${g('D')}))
        ${set('t', `(f32.load ${F('qa', g('c'))})`)}
        ${[0, 1, 2, 3].map((u) => set('a0', `(f32x4.replace_lane ${u} ${g('a0')} (f32.add (f32x4.extract_lane ${u} ${g('a0')}) (f32.mul ${g('t')} (f32.load ${u === 0 ? F('kr', g('c')) : `(i32.add ${F('kr', g('c'))} (i32.mul ${g('kst')} ${i32(u)}))`}))))`)).join('\n        ')}
        ${inc('c', 1)}
        (br $e1l)))
      ${set('a0', `(f32x4.mul ${g('a0')} ${g('sc')})`)}
      (if ${g('m')} (then
        ${set('a0', `(v128.bitselect ${g('a0')} ${f4('-inf')} (i32x4.extend_low_i16x8_s (i16x8.extend_low_i8x16_s (i8x16.ne (v128.load32_zero (i32.add ${g('m')} ${g('j')})) (v128.const i32x4 0 0 0 0)))))`)}))
      (v128.store ${F('out', g('j'))} ${g('a0')})
      ${set('mx', `(f32x4.max ${g('mx')} ${g('a0')})`)}
      ${inc('kr', `(i32.shl ${g('kst')} ${i32(2)})`)} ${inc('j', 4)}
      (br $s4l)))
    (block $sd (loop $sl
      (br_if $sd (i32.ge_u ${g('j')} ${g('nb')}))
      ${set('a0', f4(0))} ${set('c', i32(0))}
      (block $d4d (loop $d4l
        (br_if $d4d (i32.ge_u ${g('c')} ${g('d4')}))
        ${set('a0', `(f32x4.add ${g('a0')} (f32x4.mul (v128.load ${F('qa', g('c'))}) (v128.load ${F('kr', g('c'))})))`)}
        ${inc('c', 4)}
        (br $d4l)))
      ${set('t', `(f32.add (f32.add (f32x4.extract_lane 0 ${g('a0')}) (f32x4.extract_lane 1 ${g('a0')})) (f32.add (f32x4.extract_lane 2 ${g('a0')}) (f32x4.extract_lane 3 ${g('a0')})))`)}
      (block $d1d (loop $d1l
        (br_if $d1d (i32.ge_u ${g('c')} ${g('D')}))
        ${set('t', `(f32.add ${g('t')} (f32.mul (f32.load ${F('qa', g('c'))}) (f32.load ${F('kr', g('c'))})))`)}
        ${inc('c', 1)}
        (br $d1l)))
      ${set('t', `(f32.mul ${g('t')} (f32x4.extract_lane 0 ${g('sc')}))`)}
      (if ${g('m')} (then (if (i32.eqz (i32.load8_u (i32.add ${g('m')} ${g('j')}))) (then ${set('t', '(f32.const -inf)')}))))
      (f32.store ${F('out', g('j'))} ${g('t')})
      ${set('mt', `(f32.max ${g('mt')} ${g('t')})`)}
      ${inc('kr', g('kst'))} ${inc('j', 1)}
      (br $sl)))
    (f32.max ${g('mt')} (f32.max (f32.max (f32x4.extract_lane 0 ${g('mx')}) (f32x4.extract_lane 1 ${g('mx')})) (f32.max (f32x4.extract_lane 2 ${g('mx')}) (f32x4.extract_lane 3 ${g('mx')})))))`;

// $scores with RoPE (half mode) applied as the keys are read: for one query head per kv head the
// separate rotation pass stored each key and read it back once more; here each pair chunk is
// rotated in registers (the same products as $rot: xa·cos − xb·sin, xb·cos + xa·sin) and dotted
// at once. Pairs (i, i + half) for i < half = rot / 2 (half a multiple of 4), channels from rot on
// unrotated; four keys at a time, positions i32 at `pos`, `pstep` bytes apart.
const SCORES_ROPE = `
  (func $scores_rope (param $qa i32) (param $kb i32) (param $D i32) (param $nb i32) (param $out i32) (param $sc v128) (param $m i32)
    (param $pos i32) (param $pstep i32) (param $tab i32) (param $rot i32) (result f32)
    (local $j i32) (local $c i32) (local $d4 i32) (local $kr i32) (local $kst i32) (local $half i32) (local $hb i32) (local $cb i32)
    (local $c0 i32) (local $c1 i32) (local $c2 i32) (local $c3 i32)
    (local $qa4 v128) (local $qb4 v128) (local $xa v128) (local $xb v128) (local $co v128) (local $si v128)
    (local $a0 v128) (local $b0 v128) (local $b1 v128) (local $b2 v128) (local $b3 v128) (local $t f32) (local $mx v128) (local $mt f32)
    ${set('d4', `(i32.and ${g('D')} ${i32(-4)})`)} ${set('kst', `(i32.shl ${g('D')} ${i32(2)})`)}
    ${set('half', `(i32.shr_u ${g('rot')} ${i32(1)})`)} ${set('hb', `(i32.shl ${g('half')} ${i32(2)})`)} ${set('cb', `(i32.shl ${g('hb')} ${i32(1)})`)}
    ${set('mx', f4('-inf'))} ${set('mt', '(f32.const -inf)')} ${set('kr', g('kb'))}
    (block $s4d (loop $s4l
      (br_if $s4d (i32.gt_u (i32.add ${g('j')} ${i32(4)}) ${g('nb')}))
      ${[0, 1, 2, 3].map((u) => `${set(`b${u}`, f4(0))} ${set(`c${u}`, `(i32.add ${g('tab')} (i32.mul (i32.load ${u ? `(i32.add ${g('pos')} (i32.mul ${g('pstep')} ${i32(u)}))` : g('pos')}) ${g('cb')}))`)}`).join(' ')}
      ${set('c', i32(0))}
      (block $r4d (loop $r4l
        (br_if $r4d (i32.ge_u ${g('c')} ${g('half')}))
        ${set('qa4', `(v128.load ${F('qa', g('c'))})`)} ${set('qb4', `(v128.load (i32.add ${F('qa', g('c'))} ${g('hb')}))`)}
        ${[0, 1, 2, 3].map((u) => {
          const kr = u === 0 ? F('kr', g('c')) : `(i32.add ${F('kr', g('c'))} (i32.mul ${g('kst')} ${i32(u)}))`;
          return `${set('xa', `(v128.load ${kr})`)} ${set('xb', `(v128.load (i32.add ${kr} ${g('hb')}))`)}
        ${set('co', `(v128.load ${F(`c${u}`, g('c'))})`)} ${set('si', `(v128.load (i32.add ${F(`c${u}`, g('c'))} ${g('hb')}))`)}
        ${set(`b${u}`, `(f32x4.add ${g(`b${u}`)} (f32x4.add (f32x4.mul ${g('qa4')} (f32x4.sub (f32x4.mul ${g('xa')} ${g('co')}) (f32x4.mul ${g('xb')} ${g('si')}))) (f32x4.mul ${g('qb4')} (f32x4.add (f32x4.mul ${g('xb')} ${g('co')}) (f32x4.mul ${g('xa')} ${g('si')})))))`)}`;
        }).join('\n        ')}
        ${inc('c', 4)}
        (br $r4l)))
      ${set('c', g('rot'))}
      (block $e4d (loop $e4l
        (br_if $e4d (i32.ge_u ${g('c')} ${g('d4')}))
        ${set('a0', `(v128.load ${F('qa', g('c'))})`)}
        ${[0, 1, 2, 3].map((u) => set(`b${u}`, `(f32x4.add ${g(`b${u}`)} (f32x4.mul ${g('a0')} (v128.load ${u === 0 ? F('kr', g('c')) : `(i32.add ${F('kr', g('c'))} (i32.mul ${g('kst')} ${i32(u)}))`})))`)).join('\n        ')}
        ${inc('c', 4)}
        (br $e4l)))
      ${set('a0', `(f32x4.mul (call $hadd4 ${g('b0')} ${g('b1')} ${g('b2')} ${g('b3')}) ${g('sc')})`)}
      (if ${g('m')} (then
        ${set('a0', `(v128.bitselect ${g('a0')} ${f4('-inf')} (i32x4.extend_low_i16x8_s (i16x8.extend_low_i8x16_s (i8x16.ne (v128.load32_zero (i32.add ${g('m')} ${g('j')})) (v128.const i32x4 0 0 0 0)))))`)}))
      (v128.store ${F('out', g('j'))} ${g('a0')})
      ${set('mx', `(f32x4.max ${g('mx')} ${g('a0')})`)}
      ${inc('kr', `(i32.shl ${g('kst')} ${i32(2)})`)} ${inc('pos', `(i32.shl ${g('pstep')} ${i32(2)})`)} ${inc('j', 4)}
      (br $s4l)))
    ;; the last keys one at a time
    (block $sd (loop $sl
      (br_if $sd (i32.ge_u ${g('j')} ${g('nb')}))
      ${set('b0', f4(0))} ${set('c0', `(i32.add ${g('tab')} (i32.mul (i32.load ${g('pos')}) ${g('cb')}))`)} ${set('c', i32(0))}
      (block $r1d (loop $r1l
        (br_if $r1d (i32.ge_u ${g('c')} ${g('half')}))
        ${set('xa', `(v128.load ${F('kr', g('c'))})`)} ${set('xb', `(v128.load (i32.add ${F('kr', g('c'))} ${g('hb')}))`)}
        ${set('co', `(v128.load ${F('c0', g('c'))})`)} ${set('si', `(v128.load (i32.add ${F('c0', g('c'))} ${g('hb')}))`)}
        ${set('b0', `(f32x4.add ${g('b0')} (f32x4.add (f32x4.mul (v128.load ${F('qa', g('c'))}) (f32x4.sub (f32x4.mul ${g('xa')} ${g('co')}) (f32x4.mul ${g('xb')} ${g('si')}))) (f32x4.mul (v128.load (i32.add ${F('qa', g('c'))} ${g('hb')})) (f32x4.add (f32x4.mul ${g('xb')} ${g('co')}) (f32x4.mul ${g('xa')} ${g('si')})))))`)}
        ${inc('c', 4)}
        (br $r1l)))
      ${set('c', g('rot'))}
      (block $d4d (loop $d4l
        (br_if $d4d (i32.ge_u ${g('c')} ${g('d4')}))
        ${set('b0', `(f32x4.add ${g('b0')} (f32x4.mul (v128.load ${F('qa', g('c'))}) (v128.load ${F('kr', g('c'))})))`)}
        ${inc('c', 4)}
        (br $d4l)))
      ${set('t', `(f32.add (f32.add (f32x4.extract_lane 0 ${g('b0')}) (f32x4.extract_lane 1 ${g('b0')})) (f32.add (f32x4.extract_lane 2 ${g('b0')}) (f32x4.extract_lane 3 ${g('b0')})))`)}
      ${set('t', `(f32.mul ${g('t')} (f32x4.extract_lane 0 ${g('sc')}))`)}
      (if ${g('m')} (then (if (i32.eqz (i32.load8_u (i32.add ${g('m')} ${g('j')}))) (then ${set('t', '(f32.const -inf)')}))))
      (f32.store ${F('out', g('j'))} ${g('t')})
      ${set('mt', `(f32.max ${g('mt')} ${g('t')})`)}
      ${inc('kr', g('kst'))} ${inc('pos', g('pstep'))} ${inc('j', 1)}
      (br $sl)))
    (f32.max ${g('mt')} (f32.max (f32.max (f32x4.extract_lane 0 ${g('mx')}) (f32x4.extract_lane 1 ${g('mx')})) (f32.max (f32x4.extract_lane 2 ${g('mx')}) (f32x4.extract_lane 3 ${g('mx')})))))`;

// y [DV] += Σ_j w_j v_j over nb decoded values vb [nb, DV] with weights w [nb]; keys of weight 0
// are skipped (as the reference), four at a time while none of the four is 0.
const PV = `
  (func $pv (param $ya i32) (param $vb i32) (param $DV i32) (param $nb i32) (param $w i32)
    (local $j i32) (local $c i32) (local $dv4 i32) (local $kr i32) (local $vst i32) (local $pv v128) (local $b0 v128) (local $b1 v128) (local $b2 v128) (local $b3 v128) (local $pj f32)
    ${set('dv4', `(i32.and ${g('DV')} ${i32(-4)})`)} ${set('vst', `(i32.shl ${g('DV')} ${i32(2)})`)} ${set('kr', g('vb'))}
    (block $v4d (loop $v4l
      (br_if $v4d (i32.gt_u (i32.add ${g('j')} ${i32(4)}) ${g('nb')}))
      ${set('pv', `(v128.load ${F('w', g('j'))})`)}
      (br_if $v4d (i32.eqz (i32x4.all_true (f32x4.ne ${g('pv')} ${f4(0)}))))
      ${[0, 1, 2, 3].map((u) => set(`b${u}`, `(f32x4.splat (f32x4.extract_lane ${u} ${g('pv')}))`)).join(' ')}
      ${set('c', i32(0))}
      (block $w4d (loop $w4l
        (br_if $w4d (i32.ge_u ${g('c')} ${g('dv4')}))
        (v128.store ${F('ya', g('c'))} (f32x4.add (v128.load ${F('ya', g('c'))})
          (f32x4.add (f32x4.add (f32x4.mul ${g('b0')} (v128.load ${F('kr', g('c'))})) (f32x4.mul ${g('b1')} (v128.load (i32.add ${F('kr', g('c'))} ${g('vst')}))))
                     (f32x4.add (f32x4.mul ${g('b2')} (v128.load (i32.add ${F('kr', g('c'))} (i32.mul ${g('vst')} ${i32(2)})))) (f32x4.mul ${g('b3')} (v128.load (i32.add ${F('kr', g('c'))} (i32.mul ${g('vst')} ${i32(3)}))))))))
        ${inc('c', 4)}
        (br $w4l)))
      (block $w1d (loop $w1l
        (br_if $w1d (i32.ge_u ${g('c')} ${g('DV')}))
        (f32.store ${F('ya', g('c'))} (f32.add (f32.load ${F('ya', g('c'))})
          (f32.add (f32.add (f32.mul (f32x4.extract_lane 0 ${g('pv')}) (f32.load ${F('kr', g('c'))})) (f32.mul (f32x4.extract_lane 1 ${g('pv')}) (f32.load (i32.add ${F('kr', g('c'))} ${g('vst')}))))
                   (f32.add (f32.mul (f32x4.extract_lane 2 ${g('pv')}) (f32.load (i32.add ${F('kr', g('c'))} (i32.mul ${g('vst')} ${i32(2)})))) (f32.mul (f32x4.extract_lane 3 ${g('pv')}) (f32.load (i32.add ${F('kr', g('c'))} (i32.mul ${g('vst')} ${i32(3)}))))))))
        ${inc('c', 1)}
        (br $w1l)))
      ${inc('kr', `(i32.shl ${g('vst')} ${i32(2)})`)} ${inc('j', 4)}
      (br $v4l)))
    (block $vd (loop $vl
      (br_if $vd (i32.ge_u ${g('j')} ${g('nb')}))
      ${set('pj', `(f32.load ${F('w', g('j'))})`)}
      (if (f32.ne ${g('pj')} (f32.const 0)) (then
        ${set('pv', `(f32x4.splat ${g('pj')})`)} ${set('c', i32(0))}
        (block $yd (loop $yl
          (br_if $yd (i32.ge_u ${g('c')} ${g('dv4')}))
          (v128.store ${F('ya', g('c'))} (f32x4.add (v128.load ${F('ya', g('c'))}) (f32x4.mul ${g('pv')} (v128.load ${F('kr', g('c'))}))))
          ${inc('c', 4)}
          (br $yl)))
        (block $y1d (loop $y1l
          (br_if $y1d (i32.ge_u ${g('c')} ${g('DV')}))
          (f32.store ${F('ya', g('c'))} (f32.add (f32.load ${F('ya', g('c'))}) (f32.mul ${g('pj')} (f32.load ${F('kr', g('c'))}))))
          ${inc('c', 1)}
          (br $y1l)))))
      ${inc('kr', g('vst'))} ${inc('j', 1)}
      (br $vl))))`;

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
    (local $t f32) (local $scv v128) (local $acc v128) (local $mv v128) (local $sv v128)
    ${set('B', f('B'))} ${set('TQ', f('TQ'))} ${set('TK', f('TK'))} ${set('D', f('D'))} ${set('DV', f('DV'))} ${set('HQ', f('HQ'))} ${set('G', f('G'))}
    ${set('TKp', `(i32.and (i32.add ${g('TK')} ${i32(3)}) ${i32(-4)})`)}
    ${set('HKV', `(i32.div_u ${g('HQ')} ${g('G')})`)}
    ${set('ks', `(i32.add ${g('prm')} ${i32(KVA.k)})`)} ${set('vs', `(i32.add ${g('prm')} ${i32(KVA.v)})`)}
    ${set('tab', f('tab'))} ${set('rope', f('rope'))}
    ;; RoPE inside the scores where one query head reads each kv head (half mode, whole 4-pair chunks)
    ${set('fr', `(i32.and (i32.and (i32.ne ${g('rope')} ${i32(0)}) (i32.eq ${g('G')} ${i32(1)})) (i32.and (i32.eqz ${f('ropeMode')}) (i32.eqz (i32.or (i32.and ${f('rot')} ${i32(7)}) (i32.and ${g('D')} ${i32(3)})))))`)}
    ${set('scv', `(f32x4.splat (f32.reinterpret_i32 ${f('scaleBits')}))`)}
    ;; this task's scratch: scores [G, TKp], NB decoded keys [NB, D] and values [NB, DV], max [G], sum [G], a dummy f32 slot
    ${set('s', `(i32.add ${f('scratch')} (i32.mul ${g('task')} ${f('scratchStride')}))`)}
    ${set('kb', F('s', `(i32.mul ${g('G')} ${g('TKp')})`))}
    ${set('vb', F('kb', `(i32.mul ${i32(NB)} ${g('D')})`))}
    ${set('mx', F('vb', `(i32.mul ${i32(NB)} ${g('DV')})`))}
    ${set('sm', F('mx', g('G')))}
    ${set('dm', F('sm', g('G')))}
    ;; a task row is (batch, kv head, query position): each key and value is decoded once for the G query heads that read it
    ${set('nRows', `(i32.mul (i32.mul ${g('B')} ${g('HKV')}) ${g('TQ')})`)}
    ${set('r', `(i32.div_u (i32.mul ${g('nRows')} ${g('task')}) ${g('nTasks')})`)}
    ${set('end', `(i32.div_u (i32.mul ${g('nRows')} (i32.add ${g('task')} ${i32(1)})) ${g('nTasks')})`)}
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
      ;; scores (scaled), NB keys at a time: decode the block, rotate it, dot it with the G queries
      ${set('j0', i32(0))}
      (block $kd (loop $kl
        (br_if $kd (i32.ge_u ${g('j0')} ${g('nv')}))
        ${set('nb', `(i32.sub ${g('nv')} ${g('j0')})`)}
        (if (i32.gt_u ${g('nb')} ${i32(NB)}) (then ${set('nb', i32(NB))}))
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
        ${set('t', `(f32.add (f32.add (f32x4.extract_lane 0 ${g('acc')}) (f32x4.extract_lane 1 ${g('acc')})) (f32.add (f32x4.extract_lane 2 ${g('acc')}) (f32x4.extract_lane 3 ${g('acc')})))`)}
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
        (call $dec_rows ${g('vs')} (i32.add (i32.mul ${g('j0')} ${g('B')}) ${g('b')}) ${g('B')} ${g('nb')} (i32.mul ${g('kvh')} ${g('DV')}) ${g('DV')} ${g('vb')} ${g('tab')} ${g('dm')})
        ${forG(`(call $pv ${yAt(g('gg'))} ${g('vb')} ${g('DV')} ${g('nb')} ${F('s', `(i32.add (i32.mul ${g('gg')} ${g('TKp')}) ${g('j0')})`)})`)}
        ${inc('j0', NB)}
        (br $vl)))
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

/** @param {{relaxed: boolean}} _variant  (identical builds) */
export function generate(_variant) {
  const out = ['(module', '  (import "env" "memory" (memory 1 65536 shared))', expFn, DECODE, ROTATE, SPARSE_BLOCK, DEC_ROWS, ROPE_ROWS, HADD4, SCORES, SCORES_ROPE, PV, attnRows()];
  for (const e of exportNames) out.push(`  (export "${e}" (func $${e}))`);
  out.push(')');
  return out.join('\n');
}
