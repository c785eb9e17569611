// SIMD decoders of runs of codes for the packed KV-cache attention module: WAT fragments pasted
// into $dec_rows (kvattn-rows.mjs), over its locals. Not functions of their own: each fragment
// reads codes at `codes` + c and leaves f32 lanes l0..l3, scaled per channel or per group.
import { g, i32, inc, set } from './wat-text.mjs';

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
/**
 * The 16-entry f32 table at `ptr` (a WAT expression) as four byte planes p0..p3 (plane k holds byte
 * k of the sixteen entries, for byte shuffles), through the v128 locals a and b.
 */
export const lutPlanes = (ptr) => `
        ${set('a', `(i8x16.shuffle 0 4 8 12 16 20 24 28 1 5 9 13 17 21 25 29 (v128.load ${ptr}) (v128.load offset=16 ${ptr}))`)}
        ${set('b', `(i8x16.shuffle 0 4 8 12 16 20 24 28 1 5 9 13 17 21 25 29 (v128.load offset=32 ${ptr}) (v128.load offset=48 ${ptr}))`)}
        ${set('p0', `(i8x16.shuffle 0 1 2 3 4 5 6 7 16 17 18 19 20 21 22 23 ${g('a')} ${g('b')})`)}
        ${set('p1', `(i8x16.shuffle 8 9 10 11 12 13 14 15 24 25 26 27 28 29 30 31 ${g('a')} ${g('b')})`)}
        ${set('a', `(i8x16.shuffle 2 6 10 14 18 22 26 30 3 7 11 15 19 23 27 31 (v128.load ${ptr}) (v128.load offset=16 ${ptr}))`)}
        ${set('b', `(i8x16.shuffle 2 6 10 14 18 22 26 30 3 7 11 15 19 23 27 31 (v128.load offset=32 ${ptr}) (v128.load offset=48 ${ptr}))`)}
        ${set('p2', `(i8x16.shuffle 0 1 2 3 4 5 6 7 16 17 18 19 20 21 22 23 ${g('a')} ${g('b')})`)}
        ${set('p3', `(i8x16.shuffle 8 9 10 11 12 13 14 15 24 25 26 27 28 29 30 31 ${g('a')} ${g('b')})`)}`;

/**
 * 8 or 16 codes from `codes` + c → f32 lanes l0..l(w/4 − 1). The byte indices are nibbles (< 16),
 * so relaxed SIMD's swizzle (one byte shuffle, no out-of-range fix-up) gives the same bytes. High
 * nibbles by a 16-bit shift and the nibble mask (x64 has no byte shift: i8x16.shr_u costs a shift,
 * a mask made afresh and an and).
 */
export function lut4(w, relaxed) {
  const load = w === 16 ? `(v128.load64_zero (i32.add ${g('codes')} (i32.shr_u ${g('c')} ${i32(1)})))` : `(v128.load32_zero (i32.add ${g('codes')} (i32.shr_u ${g('c')} ${i32(1)})))`;
  const sw = (p) => `(i8x16.${relaxed ? 'relaxed_swizzle' : 'swizzle'} ${g(p)} ${g('cv')})`;
  let out = `
          ${set('cv', load)}
          ${set('cv', `(i8x16.shuffle ${zipLo} (v128.and ${g('cv')} ${g('mlo')}) (v128.and (i16x8.shr_u ${g('cv')} ${i32(4)}) ${g('mlo')}))`)}
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
export const chunkLoop = (bits, pk, w, relaxed) => `
          (block $d${bits}${pk}${w} (loop $l${bits}${pk}${w}
            (br_if $d${bits}${pk}${w} (i32.gt_u (i32.add ${g('c')} ${i32(w)}) ${g('cEnd')}))
            ${bits === 4 ? lut4(w, relaxed) : lut8(w, bits === 8 ? 's' : 'u')}
            ${apply(pk, w)}
            ${Array.from({ length: w / 4 }, (_, u) => `(v128.store ${u ? `offset=${16 * u} ` : ''}${g('o')} ${g(`l${u}`)})`).join(' ')}
            ${inc('o', 4 * w)} ${inc('c', w)}
            (br $l${bits}${pk}${w})))`;

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
const run8 = (bits, pk, relaxed) => {
  const dec = (w) => (bits === 4 ? lut4(w, relaxed) : lut8(w, bits === 8 ? 's' : 'u'));
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
export const runParams = (bits, relaxed) => `
        (if (i32.eqz ${g('params')})
          (then ${run8(bits, 'ch', relaxed)})
          (else (if (i32.eq ${g('gb')} ${i32(4)}) (then ${run8(bits, 'g4', relaxed)}) (else ${run8(bits, 'g2', relaxed)}))))`;
