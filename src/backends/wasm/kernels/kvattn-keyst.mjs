// Pre-RoPE 4-bit keys with per-channel scale and offset, sixteen keys a vector (lanes = keys), for
// the packed KV-cache attention module (kvattn.wat.mjs), where one query head reads each kv head:
//   $planes     once per kv head and call: each channel's own 16-entry table T_c[k] = lut[k] ·
//               scale_c + offset_c (the reference's f32 product and sum, so the same values) as four
//               byte planes, so a key decodes by lookups alone, with no multiply or add;
//   $cs_t       once per sequence and call: cos and sin at the keys' positions, block-major
//               [block of 64 keys][rot][64] (consecutive keys side by side, a block's rows together);
//   $dec_keys_t a block's codes transposed sixteen keys at a time (a 16×16 byte transpose), each
//               channel's sixteen codes looked up in its own planes: kbT [D][64] (channel-major),
//               then the exact entries written over it: from the stream's per-head list where it
//               keeps one (kvattn-lists.mjs, called by the task loop), else $keys_exact (the rows
//               that hold any listed first from the CSR index, loads only, then the stores);
//   $scores_t   the scores eight keys a pass: per pair (i, i + half) q_a·(x_a·cos − x_b·sin) +
//               q_b·(x_b·cos + x_a·sin), the rotation's products as the reference's (the relaxed
//               build fuses them: x_a·cos − x_b·sin and x_b·cos + x_a·sin a multiply and a fused
//               multiply-add each, the q_a and q_b terms fused into accumulators of their own).
// Not for: other layouts (kvattn-rows.mjs decodes them, kvattn-dots.mjs dots them) or the values
// (kvattn-valst.mjs).
import { KVS } from './kvattn-layout.mjs';
import { exactChan, exactVal } from './kvattn-exact.mjs';
import { f4 } from './simd-math.mjs';
import { g, i32, inc, set } from './wat-text.mjs';

/** Byte-shuffle patterns interleaving units of u bytes: lo of the two sources' first halves, hi of their second. */
const lo = (u) => { const p = []; for (let e = 0; e < 8 / u; e++) { for (let k = 0; k < u; k++) p.push(e * u + k); for (let k = 0; k < u; k++) p.push(16 + e * u + k); } return p; };
const hi = (u) => lo(u).map((x) => x + 8);
const shuf = (p, a, b) => `(i8x16.shuffle ${p.join(' ')} ${a} ${b})`;
/**
 * The sixteen rows' code addresses ra0..ra15 (rows r .. r + 15 at codes + row · codesStep): one add
 * apart in a whole group, rows past nb repeating the last in the block's last.
 */
export const rowAddrs = `(if (i32.le_u (i32.add ${g('r')} ${i32(16)}) ${g('nb')})
        (then
          ${set('ra0', `(i32.add ${g('codes')} (i32.mul ${g('r')} ${g('codesStep')}))`)}
          ${Array.from({ length: 15 }, (_, k) => set(`ra${k + 1}`, `(i32.add ${g(`ra${k}`)} ${g('codesStep')})`)).join(' ')})
        (else
          ${Array.from({ length: 16 }, (_, k) => set(`ra${k}`, `(i32.add ${g('codes')} (i32.mul (select (i32.add ${g('r')} ${i32(k)}) (i32.sub ${g('nb')} ${i32(1)}) (i32.lt_u (i32.add ${g('r')} ${i32(k)}) ${g('nb')})) ${g('codesStep')}))`)).join('\n          ')}))`;

/** Output vector i of the 16×16 byte transpose holds byte bitrev4(i) of the sixteen rows, rows in order. */
const bitrev4 = (i) => ((i & 1) << 3) | ((i & 2) << 1) | ((i & 4) >> 1) | ((i & 8) >> 3);

// planes of channel c: bytes k of T_c[0..15] for k = 0..3, 64 bytes a channel at P + c · 64
export const PLANES = `
  (func $planes (param $s i32) (param $c0 i32) (param $n i32) (param $P i32)
    (local $main i32) (local $chs i32) (local $cho i32) (local $c i32) (local $sv v128) (local $ov v128)
    (local $L0 v128) (local $L1 v128) (local $L2 v128) (local $L3 v128) (local $T0 v128) (local $T1 v128) (local $T2 v128) (local $T3 v128) (local $a v128) (local $b v128)
    ${set('main', `(i32.load offset=${KVS.main} ${g('s')})`)}
    ${set('chs', `(i32.add (i32.add ${g('main')} (i32.load offset=${KVS.oChan} ${g('s')})) (i32.shl ${g('c0')} ${i32(2)}))`)}
    ${set('cho', `(i32.add ${g('chs')} (i32.shl (i32.load offset=${KVS.R} ${g('s')}) ${i32(2)}))`)}
    ${set('c', `(i32.add ${g('main')} (i32.load offset=${KVS.oLut} ${g('s')}))`)}
    ${set('L0', `(v128.load ${g('c')})`)} ${set('L1', `(v128.load offset=16 ${g('c')})`)} ${set('L2', `(v128.load offset=32 ${g('c')})`)} ${set('L3', `(v128.load offset=48 ${g('c')})`)}
    ${set('c', i32(0))}
    (block $d (loop $l
      (br_if $d (i32.ge_u ${g('c')} ${g('n')}))
      ${set('sv', `(v128.load32_splat (i32.add ${g('chs')} (i32.shl ${g('c')} ${i32(2)})))`)}
      ${set('ov', `(v128.load32_splat (i32.add ${g('cho')} (i32.shl ${g('c')} ${i32(2)})))`)}
      ${[0, 1, 2, 3].map((m) => set(`T${m}`, `(f32x4.add (f32x4.mul ${g(`L${m}`)} ${g('sv')}) ${g('ov')})`)).join(' ')}
      ${set('a', `(i8x16.shuffle 0 4 8 12 16 20 24 28 1 5 9 13 17 21 25 29 ${g('T0')} ${g('T1')})`)}
      ${set('b', `(i8x16.shuffle 0 4 8 12 16 20 24 28 1 5 9 13 17 21 25 29 ${g('T2')} ${g('T3')})`)}
      (v128.store ${g('P')} (i8x16.shuffle 0 1 2 3 4 5 6 7 16 17 18 19 20 21 22 23 ${g('a')} ${g('b')}))
      (v128.store offset=16 ${g('P')} (i8x16.shuffle 8 9 10 11 12 13 14 15 24 25 26 27 28 29 30 31 ${g('a')} ${g('b')}))
      ${set('a', `(i8x16.shuffle 2 6 10 14 18 22 26 30 3 7 11 15 19 23 27 31 ${g('T0')} ${g('T1')})`)}
      ${set('b', `(i8x16.shuffle 2 6 10 14 18 22 26 30 3 7 11 15 19 23 27 31 ${g('T2')} ${g('T3')})`)}
      (v128.store offset=32 ${g('P')} (i8x16.shuffle 0 1 2 3 4 5 6 7 16 17 18 19 20 21 22 23 ${g('a')} ${g('b')}))
      (v128.store offset=48 ${g('P')} (i8x16.shuffle 8 9 10 11 12 13 14 15 24 25 26 27 28 29 30 31 ${g('a')} ${g('b')}))
      ${inc('P', 64)} ${inc('c', 1)}
      (br $l))))`;

// cos and sin of the keys' positions (i32 at pos, pstep bytes apart, tk of them) from the table
// [position, 2, half] into out [tk / 64 blocks][rot][64] (a block's cos rows, then its sin rows;
// TKp = 64); four keys by four pairs a 4×4 transpose. Positions past tk repeat the last one. half a
// multiple of 4.
export const CS_T = `
  (func $cs_t (param $pos i32) (param $pstep i32) (param $tk i32) (param $tab i32) (param $rot i32) (param $TKp i32) (param $out i32)
    (local $j i32) (local $i i32) (local $half i32) (local $hb i32) (local $cb i32) (local $rs i32) (local $o i32)
    (local $a0 i32) (local $a1 i32) (local $a2 i32) (local $a3 i32) (local $k i32)
    (local $r0 v128) (local $r1 v128) (local $r2 v128) (local $r3 v128) (local $t0 v128) (local $t1 v128) (local $t2 v128) (local $t3 v128)
    ${set('half', `(i32.shr_u ${g('rot')} ${i32(1)})`)} ${set('hb', `(i32.shl ${g('half')} ${i32(2)})`)} ${set('cb', `(i32.shl ${g('hb')} ${i32(1)})`)}
    ${set('rs', `(i32.shl ${g('TKp')} ${i32(2)})`)}
    (block $jd (loop $jl
      (br_if $jd (i32.ge_u ${g('j')} ${g('tk')}))
      ${[0, 1, 2, 3].map((u) => `${set('k', `(i32.add ${g('j')} ${i32(u)})`)} ${set(`a${u}`, `(i32.add ${g('tab')} (i32.mul (i32.load (i32.add ${g('pos')} (i32.mul (select ${g('k')} (i32.sub ${g('tk')} ${i32(1)}) (i32.lt_u ${g('k')} ${g('tk')})) ${g('pstep')}))) ${g('cb')}))`)}`).join('\n      ')}
      ${set('i', i32(0))} ${set('o', `(i32.add ${g('out')} (i32.add (i32.mul (i32.shr_u ${g('j')} ${i32(6)}) (i32.shl ${g('rot')} ${i32(8)})) (i32.shl (i32.and ${g('j')} ${i32(63)}) ${i32(2)})))`)}
      (block $id (loop $il
        (br_if $id (i32.ge_u ${g('i')} ${g('rot')}))
        ;; i < half: cos entries i..i+3; half <= i: sin entries (the table's sin row follows its cos row)
        ${[0, 1, 2, 3].map((u) => set(`r${u}`, `(v128.load (i32.add ${g(`a${u}`)} (i32.shl ${g('i')} ${i32(2)})))`)).join(' ')}
        ${set('t0', shuf(lo(4), g('r0'), g('r1')))} ${set('t1', shuf(hi(4), g('r0'), g('r1')))}
        ${set('t2', shuf(lo(4), g('r2'), g('r3')))} ${set('t3', shuf(hi(4), g('r2'), g('r3')))}
        (v128.store ${g('o')} ${shuf(lo(8), g('t0'), g('t2'))})
        (v128.store (i32.add ${g('o')} ${g('rs')}) ${shuf(hi(8), g('t0'), g('t2'))})
        (v128.store (i32.add ${g('o')} (i32.shl ${g('rs')} ${i32(1)})) ${shuf(lo(8), g('t1'), g('t3'))})
        (v128.store (i32.add ${g('o')} (i32.mul ${g('rs')} ${i32(3)})) ${shuf(hi(8), g('t1'), g('t3'))})
        ${inc('o', `(i32.shl ${g('rs')} ${i32(2)})`)} ${inc('i', 4)}
        (br $il)))
      ${inc('j', 4)}
      (br $jl))))`;

/**
 * Sixteen rows' 16 code bytes at hoff in their slice (channels chb .. chb + 31) transposed (16
 * vectors, one byte of every row each), then for each of the 32 channels its nibble index vector
 * (cv) handed to `body(ch)`, ch the channel within these 32.
 */
export function transposeHalf(body) {
  const V = Array.from({ length: 16 }, (_, k) => `(v128.load (i32.add ${g(`ra${k}`)} ${g('hoff')}))`);
  let cur = V.map((_, k) => `v${k}`);
  const out = [];
  out.push(...V.map((v, k) => set(`v${k}`, v)));
  for (const [dist, u] of [[1, 1], [2, 2], [4, 4], [8, 8]]) {
    const names = [];
    const stage = [];
    for (let i = 0; i < 16; i++) {
      if (i & dist) continue;
      const A = `w${i}`, B = `w${i + dist}`;
      stage.push(set(A, shuf(lo(u), g(cur[i]), g(cur[i + dist]))), set(B, shuf(hi(u), g(cur[i]), g(cur[i + dist]))));
      names[i] = A; names[i + dist] = B;
    }
    out.push(...stage);
    // copy back so the next stage reads v*
    out.push(...names.map((n, i) => set(`v${i}`, g(n))));
    cur = names.map((_, i) => `v${i}`);
  }
  // v_i holds byte bitrev4(i) of the rows: channels 2b (low nibble) and 2b + 1 (high nibble)
  for (let i = 0; i < 16; i++) {
    const b = bitrev4(i);
    for (const [hiN, idx] of [[0, `(v128.and ${g(`v${i}`)} ${g('mlo')})`], [1, `(v128.and (i16x8.shr_u ${g(`v${i}`)} ${i32(4)}) ${g('mlo')})`]]) {
      out.push(`${set('cv', idx)}
        ${body(2 * b + hiN)}`);
    }
  }
  return out.join('\n        ');
}

/**
 * cv's sixteen codes looked up in the planes at P0..P3 (WAT operands): f32 of the sixteen rows in
 * l0..l3 (rows 0–3, 4–7, 8–11, 12–15). The indices are nibbles: relaxed swizzle gives the same bytes.
 */
export const lookup16 = (relaxed, P) => {
  const sw = (k) => `(i8x16.${relaxed ? 'relaxed_swizzle' : 'swizzle'} ${P[k]} ${g('cv')})`;
  return `${set('a', sw(0))} ${set('b', sw(1))}
        ${set('z0', shuf(lo(1), g('a'), g('b')))} ${set('z2', shuf(hi(1), g('a'), g('b')))}
        ${set('a', sw(2))} ${set('b', sw(3))}
        ${set('z1', shuf(lo(1), g('a'), g('b')))} ${set('z3', shuf(hi(1), g('a'), g('b')))}
        ${set('l0', shuf(lo(2), g('z0'), g('z1')))} ${set('l1', shuf(hi(2), g('z0'), g('z1')))} ${set('l2', shuf(lo(2), g('z2'), g('z3')))} ${set('l3', shuf(hi(2), g('z2'), g('z3')))}`;
};

/** A key channel: looked up in its own planes, stored as its row of kbT. */
const keyChannel = (relaxed) => (ch) => `${set('pp', `(i32.add ${g('P')} (i32.shl (i32.add ${g('chb')} ${i32(ch)}) ${i32(6)}))`)}
        ${lookup16(relaxed, [`(v128.load ${g('pp')})`, `(v128.load offset=16 ${g('pp')})`, `(v128.load offset=32 ${g('pp')})`, `(v128.load offset=48 ${g('pp')})`])}
        ${set('oo', `(i32.add ${g('ob')} (i32.shl (i32.add ${g('chb')} ${i32(ch)}) ${i32(8)}))`)}
        (v128.store ${g('oo')} ${g('l0')}) (v128.store offset=16 ${g('oo')} ${g('l1')}) (v128.store offset=32 ${g('oo')} ${g('l2')}) (v128.store offset=48 ${g('oo')} ${g('l3')})`;

// Keys [c0, c0 + n) of rows row0, row0 + rstep, ... (nb ≤ 64 rows) into out [n][64] (channel-major,
// 64 keys a channel row), 4-bit per-channel codes, n a multiple of 32, planes at P ($planes). Rows
// past nb repeat the last (their columns are not read). Each sixteen rows' exact entries (the slice
// one segment of the index) written over their columns after their lookups; dm a dummy f32 slot,
// ex 12 bytes a row of scratch.
export const DEC_KEYS_T = (relaxed) => `
  (func $dec_keys_t (param $s i32) (param $row0 i32) (param $rstep i32) (param $nb i32) (param $c0 i32) (param $n i32) (param $out i32) (param $P i32) (param $dm i32) (param $ex i32)
    (local $main i32) (local $codes i32) (local $codesStep i32) (local $r i32) (local $hoff i32) (local $chb i32) (local $ob i32) (local $pp i32) (local $oo i32)
    ${Array.from({ length: 16 }, (_, k) => `(local $ra${k} i32)`).join(' ')}
    ${Array.from({ length: 16 }, (_, k) => `(local $v${k} v128) (local $w${k} v128)`).join(' ')}
    (local $cv v128) (local $mlo v128) (local $a v128) (local $b v128) (local $z0 v128) (local $z1 v128) (local $z2 v128) (local $z3 v128)
    (local $l0 v128) (local $l1 v128) (local $l2 v128) (local $l3 v128)
    (local $e i32) (local $e1 i32) (local $rp i32) (local $sp i32) (local $segs i32) (local $k i32) (local $s0b i32) (local $s1b i32) (local $ov i32) (local $oval i32) (local $row i32) (local $len i32) (local $ch i32) (local $cx i32)
    ${set('main', `(i32.load offset=${KVS.main} ${g('s')})`)}
    ${set('codesStep', `(i32.mul ${g('rstep')} (i32.load offset=${KVS.rowBytes} ${g('s')}))`)}
    ${set('codes', `(i32.add (i32.add (i32.add ${g('main')} (i32.mul ${g('row0')} (i32.load offset=${KVS.rowBytes} ${g('s')}))) (i32.mul (i32.div_u ${g('c0')} (i32.load offset=${KVS.S} ${g('s')})) (i32.load offset=${KVS.hstep} ${g('s')}))) (i32.shr_u ${g('c0')} ${i32(1)}))`)}
    ${set('mlo', '(v128.const i32x4 0x0f0f0f0f 0x0f0f0f0f 0x0f0f0f0f 0x0f0f0f0f)')}
    (block $gd (loop $gl
      (br_if $gd (i32.ge_u ${g('r')} ${g('nb')}))
      ${rowAddrs}
      ${set('ob', `(i32.add ${g('out')} (i32.shl ${g('r')} ${i32(2)}))`)}
      ${set('hoff', i32(0))} ${set('chb', i32(0))}
      (block $hd (loop $hl
        (br_if $hd (i32.ge_u ${g('chb')} ${g('n')}))
        ${transposeHalf(keyChannel(relaxed))}
        ${inc('hoff', 16)} ${inc('chb', 32)}
        (br $hl)))
      ;; the group's exact entries now: the next group's decode lies between these stores and the scores' loads
      (if (i32.and (i32.ne (i32.load offset=${KVS.sparse} ${g('s')}) ${i32(0)}) (i32.eqz (i32.load offset=${KVS.hx} ${g('s')}))) (then
        (call $keys_exact ${g('s')} ${g('row0')} ${g('rstep')} ${g('r')} (select (i32.add ${g('r')} ${i32(16)}) ${g('nb')} (i32.lt_u (i32.add ${g('r')} ${i32(16)}) ${g('nb')})) ${g('c0')} ${g('n')} ${g('out')} ${g('dm')} ${g('ex')} ${i32(64)} ${i32(1)})))
      ${inc('r', 16)}
      (br $gl))))`;

/**
 * First pass of the exact entries, four rows a vector where rows are consecutive (rstep 1) and the
 * slice's segment has a next one (seg[h] and seg[h + 1] one i32): each row's run start (rowptr +
 * seg[h]) and count, and the rows that hold any appended to the list at x as (row, start, third),
 * third the count or the end. Rows from r while r + 4 ≤ end; locals rp, sp stepped (by 4 and 4 ·
 * spS bytes); the scalar loop after it takes the rest.
 */
export const listRows4 = (end, third, spS) => `(if (i32.and (i32.eq ${g('rstep')} ${i32(1)}) (i32.ne ${g('s1b')} ${i32(0)})) (then
      (block $qd (loop $ql
        (br_if $qd (i32.gt_u (i32.add ${g('r')} ${i32(4)}) ${end}))
        ${set('qw', `(i32x4.replace_lane 3 (i32x4.replace_lane 2 (i32x4.replace_lane 1 (i32x4.splat (i32.load (i32.add ${g('sp')} ${g('s0b')})))
          (i32.load (i32.add (i32.add ${g('sp')} ${g(spS)}) ${g('s0b')}))) (i32.load (i32.add (i32.add ${g('sp')} (i32.shl ${g(spS)} ${i32(1)})) ${g('s0b')})))
          (i32.load (i32.add (i32.add ${g('sp')} (i32.mul ${g(spS)} ${i32(3)})) ${g('s0b')})))`)}
        ${set('qn', `(i32x4.sub (i32x4.shr_u ${g('qw')} ${i32(16)}) (v128.and ${g('qw')} (v128.const i32x4 0xffff 0xffff 0xffff 0xffff)))`)}
        ${set('qe', `(i32x4.add (v128.load ${g('rp')}) (v128.and ${g('qw')} (v128.const i32x4 0xffff 0xffff 0xffff 0xffff)))`)}
        ${third === 'e1' ? set('qw', `(i32x4.add ${g('qe')} ${g('qn')})`) : set('qw', g('qn'))}
        ${[0, 1, 2, 3].map((u) => `(i32.store ${g('x')} (i32.add ${g('r')} ${i32(u)})) (i32.store offset=4 ${g('x')} (i32x4.extract_lane ${u} ${g('qe')})) (i32.store offset=8 ${g('x')} (i32x4.extract_lane ${u} ${g('qw')}))
        ${inc('x', `(select ${i32(12)} ${i32(0)} (i32.gt_s (i32x4.extract_lane ${u} ${g('qn')}) ${i32(0)}))`)}`).join('\n        ')}
        ${inc('rp', i32(16))} ${inc('sp', `(i32.shl ${g(spS)} ${i32(2)})`)} ${inc('r', 4)}
        (br $ql)))))`;

// Exact entries of block rows [r, r1) (rows row0 + r · rstep) inside [c0, c0 + n) written over out:
// value (row r, channel k) at out + (k · cs + r · rs) · 4 (channel-major [n][64]: cs 64, rs 1; row-major
// [nr][n]: cs 1, rs n). The slice is one segment of the index. ex: 12 bytes a row of scratch.
export const KEYS_EXACT = `
  (func $keys_exact (param $s i32) (param $row0 i32) (param $rstep i32) (param $r i32) (param $r1 i32) (param $c0 i32) (param $n i32) (param $out i32) (param $dm i32) (param $ex i32) (param $cs i32) (param $rs i32)
    (local $qw v128) (local $qn v128) (local $qe v128) (local $r0 i32) (local $x i32) (local $main i32) (local $e i32) (local $e1 i32) (local $rp i32) (local $sp i32) (local $segs i32) (local $k i32) (local $s0b i32) (local $s1b i32) (local $ov i32) (local $oval i32) (local $row i32) (local $len i32) (local $ch i32) (local $cx i32)
    ${set('main', `(i32.load offset=${KVS.main} ${g('s')})`)}
    ;; exact entries: the slice is one segment of the index (or the row has no index: its entries, those inside the slice)
    ${set('segs', `(i32.load offset=${KVS.segs} ${g('s')})`)}
    ${set('ov', `(i32.load offset=${KVS.out} ${g('s')})`)}
    ${set('oval', `(i32.add ${g('ov')} (i32.load offset=${KVS.oVal} ${g('s')}))`)}
    (if (i32.gt_u ${g('segs')} ${i32(1)}) (then
      ${set('k', `(i32.div_u (i32.load offset=${KVS.R} ${g('s')}) ${g('segs')})`)}
      ${set('s0b', `(i32.shl (i32.div_u ${g('c0')} ${g('k')}) ${i32(1)})`)}
      ${set('s1b', `(i32.div_u (i32.add ${g('c0')} ${g('n')}) ${g('k')})`)}
      ${set('s1b', `(select (i32.shl ${g('s1b')} ${i32(1)}) ${i32(0)} (i32.lt_u ${g('s1b')} ${g('segs')}))`)}))
    ;; row pointers and segment entries of row0, stepped by rstep rows (no parameter read inside the loop)
    ${set('rp', `(i32.add (i32.add ${g('main')} (i32.load offset=${KVS.oRowptr} ${g('s')})) (i32.shl (i32.add ${g('row0')} (i32.mul ${g('r')} ${g('rstep')})) ${i32(2)}))`)}
    ${set('row', `(i32.shl ${g('rstep')} ${i32(2)})`)}
    ${set('sp', `(i32.add (i32.add ${g('main')} (i32.load offset=${KVS.oSeg} ${g('s')})) (i32.shl (i32.mul (i32.add ${g('row0')} (i32.mul ${g('r')} ${g('rstep')})) ${g('segs')}) ${i32(1)}))`)}
    ${set('ch', `(i32.shl (i32.mul ${g('rstep')} ${g('segs')}) ${i32(1)})`)}
    ${set('x', g('ex'))}
    ${listRows4(g('r1'), 'len', 'ch')}
    (block $rd (loop $rl
      (br_if $rd (i32.ge_u ${g('r')} ${g('r1')}))
      ${set('e', `(i32.load ${g('rp')})`)} ${set('e1', `(i32.load offset=4 ${g('rp')})`)}
      (if (i32.gt_u ${g('segs')} ${i32(1)}) (then
        (if ${g('s1b')} (then ${set('e1', `(i32.add ${g('e')} (i32.load16_u (i32.add ${g('sp')} ${g('s1b')})))`)}))
        ${set('e', `(i32.add ${g('e')} (i32.load16_u (i32.add ${g('sp')} ${g('s0b')})))`)}))
      ${inc('rp', g('row'))} ${inc('sp', g('ch'))}
      ;; first pass, loads only: the rows that hold entries (row, first entry, count) listed in ex
      (i32.store ${g('x')} ${g('r')}) (i32.store offset=4 ${g('x')} ${g('e')}) (i32.store offset=8 ${g('x')} (i32.sub ${g('e1')} ${g('e')}))
      ${inc('x', `(select ${i32(12)} ${i32(0)} (i32.lt_u ${g('e')} ${g('e1')}))`)} ${inc('r', 1)}
      (br $rl)))
    ;; second pass: the stores
    ${set('r0', g('x'))} ${set('x', g('ex'))}
    (block $wd (loop $wl
      (br_if $wd (i32.ge_u ${g('x')} ${g('r0')}))
      ${set('r', `(i32.load ${g('x')})`)} ${set('e', `(i32.load offset=4 ${g('x')})`)} ${set('len', `(i32.load offset=8 ${g('x')})`)} ${set('e1', `(i32.add ${g('e')} ${g('len')})`)} ${inc('x', 12)}
      ;; the first two entries without a branch on the count (a store to the dummy slot dm where
      ;; there is none; entry 0 read then, always inside the buffer), a loop for the rare rest
      ${[0, 1].map((u) => `
      ${set('k', `(select ${u ? `(i32.add ${g('e')} ${i32(u)})` : g('e')} ${i32(0)} (i32.gt_u ${g('len')} ${i32(u)}))`)}
      ${set('cx', `(i32.sub ${exactChan(g('k'))} ${g('c0')})`)}
      (f32.store (select (i32.add ${g('out')} (i32.shl (i32.add (i32.mul ${g('cx')} ${g('cs')}) (i32.mul ${g('r')} ${g('rs')})) ${i32(2)})) ${g('dm')} (i32.and (i32.gt_u ${g('len')} ${i32(u)}) (i32.lt_u ${g('cx')} ${g('n')})))
        ${exactVal(g('k'))})`).join('')}
      ${inc('e', 2)}
      (block $ed (loop $el
        (br_if $ed (i32.ge_s ${g('e')} ${g('e1')}))
        ${set('k', `(i32.sub ${exactChan(g('e'))} ${g('c0')})`)}
        (if (i32.lt_u ${g('k')} ${g('n')}) (then
          (f32.store (i32.add ${g('out')} (i32.shl (i32.add (i32.mul ${g('k')} ${g('cs')}) (i32.mul ${g('r')} ${g('rs')})) ${i32(2)})) ${exactVal(g('e'))})))
        ${inc('e', 1)}
        (br $el)))
      (br $wl))))`;

// Scaled scores of nb keys (eight a pass) decoded channel-major at kb [D][64] against the query at qa, RoPE (half
// mode, pairs (i, i + half) for i < half = rot / 2) from cs [rot][TKp] at the block's first key;
// channels from rot on unrotated. −inf where the u8 mask m (when not 0) is 0; into out [nb]; returns
// the block's maximum.
export const SCORES_T = (relaxed) => `
  (func $scores_t (param $qa i32) (param $kb i32) (param $D i32) (param $nb i32) (param $out i32) (param $sc v128) (param $m i32) (param $cs i32) (param $TKp i32) (param $rot i32) (result f32)
    (local $j i32) (local $i i32) (local $half i32) (local $ka i32) (local $kh i32) (local $ca i32) (local $rs i32) (local $hs i32) (local $n8 i32) (local $jj i32)
    (local $acc v128) (local $ac1 v128) (local $ad0 v128) (local $ad1 v128) (local $t1 v128) (local $t2 v128) (local $xa v128) (local $xb v128) (local $co v128) (local $si v128) (local $qa4 v128) (local $qb4 v128) (local $mx v128) (local $mt f32) (local $t f32)
    ${set('half', `(i32.shr_u ${g('rot')} ${i32(1)})`)} ${set('rs', `(i32.shl ${g('TKp')} ${i32(2)})`)}
    ${set('hs', `(i32.mul ${g('half')} ${g('rs')})`)}
    ${set('mx', f4('-inf'))} ${set('mt', '(f32.const -inf)')}
    ${set('n8', `(i32.and (i32.add ${g('nb')} ${i32(7)}) ${i32(-8)})`)}
    (block $jd (loop $jl
      (br_if $jd (i32.ge_u ${g('j')} ${g('n8')}))
      ${set('acc', f4(0))} ${set('ac1', f4(0))} ${set('ad0', f4(0))} ${set('ad1', f4(0))}
      ${set('ka', `(i32.add ${g('kb')} (i32.shl ${g('j')} ${i32(2)}))`)} ${set('kh', `(i32.add ${g('ka')} (i32.shl ${g('half')} ${i32(8)}))`)}
      ${set('ca', `(i32.add ${g('cs')} (i32.shl ${g('j')} ${i32(2)}))`)}
      ${set('i', i32(0))}
      (block $id (loop $il
        (br_if $id (i32.ge_u ${g('i')} ${g('half')}))
        ${set('qa4', `(v128.load32_splat (i32.add ${g('qa')} (i32.shl ${g('i')} ${i32(2)})))`)}
        ${set('qb4', `(v128.load32_splat (i32.add ${g('qa')} (i32.shl (i32.add ${g('i')} ${g('half')}) ${i32(2)})))`)}
        ${[['acc', 'ad0', ''], ['ac1', 'ad1', 'offset=16 ']].map(([A, A2, o]) => `${set('xa', `(v128.load ${o}${g('ka')})`)} ${set('xb', `(v128.load ${o}${g('kh')})`)}
        ${set('co', `(v128.load ${o}${g('ca')})`)} ${set('si', `(v128.load ${o}(i32.add ${g('ca')} ${g('hs')}))`)}
        ${relaxed
    // fused: the rotation's two sums each a multiply and a fused multiply-add, the a and b terms into accumulators of their own
    ? `${set('t1', `(f32x4.relaxed_nmadd ${g('xb')} ${g('si')} (f32x4.mul ${g('xa')} ${g('co')}))`)} ${set('t2', `(f32x4.relaxed_madd ${g('xa')} ${g('si')} (f32x4.mul ${g('xb')} ${g('co')}))`)}
        ${set(A, `(f32x4.relaxed_madd ${g('qa4')} ${g('t1')} ${g(A)})`)} ${set(A2, `(f32x4.relaxed_madd ${g('qb4')} ${g('t2')} ${g(A2)})`)}`
    : set(A, `(f32x4.add ${g(A)} (f32x4.add (f32x4.mul ${g('qa4')} (f32x4.sub (f32x4.mul ${g('xa')} ${g('co')}) (f32x4.mul ${g('xb')} ${g('si')}))) (f32x4.mul ${g('qb4')} (f32x4.add (f32x4.mul ${g('xb')} ${g('co')}) (f32x4.mul ${g('xa')} ${g('si')})))))`)}`).join('\n        ')}
        ${inc('ka', 256)} ${inc('kh', 256)} ${inc('ca', g('rs'))} ${inc('i', 1)}
        (br $il)))
      ${set('acc', `(f32x4.add ${g('acc')} ${g('ad0')})`)} ${set('ac1', `(f32x4.add ${g('ac1')} ${g('ad1')})`)}
      ${set('i', g('rot'))} ${set('ka', `(i32.add ${g('kb')} (i32.add (i32.shl ${g('j')} ${i32(2)}) (i32.shl ${g('rot')} ${i32(8)})))`)}
      (block $ud (loop $ul
        (br_if $ud (i32.ge_u ${g('i')} ${g('D')}))
        ${set('qa4', `(v128.load32_splat (i32.add ${g('qa')} (i32.shl ${g('i')} ${i32(2)})))`)}
        ${set('acc', `(f32x4.add ${g('acc')} (f32x4.mul ${g('qa4')} (v128.load ${g('ka')})))`)}
        ${set('ac1', `(f32x4.add ${g('ac1')} (f32x4.mul ${g('qa4')} (v128.load offset=16 ${g('ka')})))`)}
        ${inc('ka', 256)} ${inc('i', 1)}
        (br $ul)))
      ${[['acc', 0], ['ac1', 4]].map(([A, d]) => `${set('jj', `(i32.add ${g('j')} ${i32(d)})`)} ${set('acc', `(f32x4.mul ${g(A)} ${g('sc')})`)}
      (if (i32.le_u (i32.add ${g('jj')} ${i32(4)}) ${g('nb')})
        (then
          (if ${g('m')} (then
            ${set('acc', `(v128.bitselect ${g('acc')} ${f4('-inf')} (i32x4.extend_low_i16x8_s (i16x8.extend_low_i8x16_s (i8x16.ne (v128.load32_zero (i32.add ${g('m')} ${g('jj')})) (v128.const i32x4 0 0 0 0)))))`)}))
          (v128.store (i32.add ${g('out')} (i32.shl ${g('jj')} ${i32(2)})) ${g('acc')})
          ${set('mx', `(f32x4.max ${g('mx')} ${g('acc')})`)})
        (else
          ;; the last zero to three keys
          ${[0, 1, 2].map((u) => `(if (i32.lt_u (i32.add ${g('jj')} ${i32(u)}) ${g('nb')}) (then
            ${set('t', `(f32x4.extract_lane ${u} ${g('acc')})`)}
            (if ${g('m')} (then (if (i32.eqz (i32.load8_u (i32.add ${g('m')} (i32.add ${g('jj')} ${i32(u)})))) (then ${set('t', '(f32.const -inf)')}))))
            (f32.store (i32.add ${g('out')} (i32.shl (i32.add ${g('jj')} ${i32(u)}) ${i32(2)})) ${g('t')})
            ${set('mt', `(f32.max ${g('mt')} ${g('t')})`)}))`).join('\n          ')}))`).join('\n      ')}
      ${inc('j', 8)}
      (br $jl)))
    (f32.max ${g('mt')} (f32.max (f32.max (f32x4.extract_lane 0 ${g('mx')}) (f32x4.extract_lane 1 ${g('mx')})) (f32.max (f32x4.extract_lane 2 ${g('mx')}) (f32x4.extract_lane 3 ${g('mx')})))))`;
