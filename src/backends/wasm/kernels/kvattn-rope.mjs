// RoPE in the packed KV-cache attention module: $rot rotates one decoded key at its stored
// position, $rope_rows a block of them (four pairs at a time where the rotary width allows). With
// one query head per kv head the rotation happens inside the scores instead ($scores_rope,
// kvattn-dots.mjs). Table: cos and sin [position, 2, rot/2].
import { g, i32, inc, set } from './wat-text.mjs';

// rotates pairs of buf by the angles of position pos (table: cos and sin [position, 2, rot/2]): half
// pairs (i, i + rot/2) or interleaved (2i, 2i + 1)
export const ROTATE = `
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

// RoPE of nb decoded keys buf [nb, D] at their stored positions (i32 at `pos`, `pstep` bytes
// apart), four pairs at a time where the rotary width allows (the same f32 products and sums as
// $rot, so the same values); $rot a key at a time otherwise. Table: cos and sin [position, 2, half].
export const ROPE_ROWS = `
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
