// WGSL decoders of GGML blocks read from a storage buffer of u32 words (binding `W`), shared by the
// dequantize, GEMV and GEMM kernels of quant.ts. A row of a weight is a run of 32-value units
// (q8_0 / q4_0: one block; q4_k / q6_k: one eighth of a 256-value super-block), addressed by the
// row's byte address `rb` and the unit index `u`:
//   deq8(rb, u, p)  values 8p .. 8p + 7 of unit u, as two vec4<f32> (dequantize, GEMM tiles)
//   unit(rb, u)     the whole unit as value = a · q + b, q 32 integers in 8 vec4<f32> (GEMV:
//                   the scale and the min are applied once per unit, not per value)
// Block layouts are ggml-common.h's, as the reference decodes them (src/formats/gguf-quants.ts):
//   q8_0 34 bytes: f16 d, 32 x i8                              value d·q
//   q4_0 18 bytes: f16 d, 16 bytes; element j = low nibble of byte j, j + 16 the high one; d·(q − 8)
//   q4_k 144 bytes: f16 d, f16 dmin, 12 bytes of 6-bit scales/mins, 128 bytes of nibbles (unit 2i
//        the low nibbles of bytes 32i..32i+31, unit 2i + 1 the high ones); d·sc·q − dmin·m
//   q6_k 210 bytes: 128 bytes low nibbles, 64 bytes of 2-bit high parts, 16 i8 scales, f16 d;
//        d·sc·(q − 32)
//   q4_1 20 bytes: f16 d, f16 m, nibbles as q4_0; d·q + m
//   q5_0 22 bytes: f16 d, u32 qh (bit e the fifth bit of element e), nibbles as q4_0; d·(q − 16)
//   q5_1 24 bytes: f16 d, f16 m, u32 qh, nibbles; d·q + m
//   q5_k 176 bytes: f16 d, f16 dmin, 12 bytes of scales/mins (as q4_k), 32 bytes qh (bit j of byte
//        l the fifth bit of value l of unit j), 128 bytes of nibbles (as q4_k); d·sc·q − dmin·m
//   iq4_nl 18 bytes: f16 d, nibbles as q4_0 indexing a 16-level grid; d·grid[q]
// q8_0, q4_0, q5_0, iq4_nl and q6_k blocks start at even bytes only, so a 32-bit read at
// block offset o is either one word or the upper half of one and the lower half of the next
// (`ww`); q4_1, q5_1, q4_k and q5_k blocks are word-aligned. The kernels require the weight's byte offset to be a
// multiple of 4. deq8 gives the reference's values exactly: every product of an f16 scale and
// small integers is exact in f32, and the one subtraction (q4_k's min) rounds once as it does there.
import type { GgmlQuantType, QuantType } from '../../../tensor/backend.js';

/** Bytes per block and units (32 values) per block. */
export const WGSL_BLOCK: Record<GgmlQuantType, { bytes: number; units: number }> = {
  q8_0: { bytes: 34, units: 1 },
  q4_0: { bytes: 18, units: 1 },
  q4_k: { bytes: 144, units: 8 },
  q6_k: { bytes: 210, units: 8 },
  q4_1: { bytes: 20, units: 1 },
  q5_0: { bytes: 22, units: 1 },
  q5_1: { bytes: 24, units: 1 },
  q5_k: { bytes: 176, units: 8 },
  iq4_nl: { bytes: 18, units: 1 },
};

/** Readers of bytes, even halves and even-aligned words of W (byte addresses). */
const READERS = /* wgsl */ `
fn wb(o: u32) -> u32 { return (W[o >> 2u] >> ((o & 3u) * 8u)) & 0xffu; }
fn wh(o: u32) -> u32 { return (W[o >> 2u] >> ((o & 2u) * 8u)) & 0xffffu; }
fn ww(o: u32) -> u32 {
  let i = o >> 2u; let lo = W[i];
  return select((lo >> 16u) | (W[i + 1u] << 16u), lo, (o & 2u) == 0u);
}
/**
 * The four bytes of w as unsigned / signed values, exact: each byte is placed in the mantissa of
 * 2^23 and 2^23 subtracted (full-rate bit operations and one add instead of an int-to-float
 * conversion, which runs at a quarter rate on some GPUs); signed bytes are biased by 128 first.
 */
fn u8x4(w: u32) -> vec4<f32> {
  return bitcast<vec4<f32>>(((vec4<u32>(w) >> vec4<u32>(0u, 8u, 16u, 24u)) & vec4<u32>(0xffu)) | vec4<u32>(0x4b000000u)) - 8388608.0;
}
fn i8x4(w: u32) -> vec4<f32> {
  return bitcast<vec4<f32>>(((vec4<u32>(w ^ 0x80808080u) >> vec4<u32>(0u, 8u, 16u, 24u)) & vec4<u32>(0xffu)) | vec4<u32>(0x4b000000u)) - 8388736.0;
}
const NIB: u32 = 0x0f0f0f0fu;
/** Bits 0..3 of h moved to bit 4 of bytes 0..3 (the fifth bits of Q5 values). */
fn spread4(h: u32) -> u32 { return ((h & 1u) | ((h & 2u) << 7u) | ((h & 4u) << 14u) | ((h & 8u) << 21u)) << 4u; }
struct Unit { q: array<vec4<f32>, 8>, a: f32, b: f32 }
`;

const DECODERS: Record<GgmlQuantType, string> = {
  q8_0: /* wgsl */ `
fn deq8(rb: u32, u: u32, p: u32) -> array<vec4<f32>, 2> {
  let at = rb + u * 34u;
  let d = f16_to_f32(wh(at));
  return array<vec4<f32>, 2>(d * i8x4(ww(at + 2u + 8u * p)), d * i8x4(ww(at + 6u + 8u * p)));
}
fn unit(rb: u32, u: u32) -> Unit {
  let at = rb + u * 34u; let i = at >> 2u; let al = (at & 2u) == 0u;
  var w: array<u32, 9>;
  for (var k = 0u; k < 9u; k++) { w[k] = W[i + k]; }
  var r: Unit;
  r.a = f16_to_f32(select(w[0] >> 16u, w[0] & 0xffffu, al));
  r.b = 0.0;
  for (var k = 0u; k < 8u; k++) { r.q[k] = i8x4(select(w[k + 1u], (w[k] >> 16u) | (w[k + 1u] << 16u), al)); }
  return r;
}`,
  q4_0: /* wgsl */ `
fn deq8(rb: u32, u: u32, p: u32) -> array<vec4<f32>, 2> {
  let at = rb + u * 18u;
  let d = f16_to_f32(wh(at));
  let o = at + 2u + 8u * (p & 1u); let sh = (p >> 1u) * 4u;
  return array<vec4<f32>, 2>(d * (u8x4((ww(o) >> sh) & NIB) - 8.0), d * (u8x4((ww(o + 4u) >> sh) & NIB) - 8.0));
}
fn unit(rb: u32, u: u32) -> Unit {
  let at = rb + u * 18u; let i = at >> 2u; let al = (at & 2u) == 0u;
  let w0 = W[i]; let w1 = W[i + 1u]; let w2 = W[i + 2u]; let w3 = W[i + 3u]; let w4 = W[i + 4u];
  let q0 = select(w1, (w0 >> 16u) | (w1 << 16u), al);
  let q1 = select(w2, (w1 >> 16u) | (w2 << 16u), al);
  let q2 = select(w3, (w2 >> 16u) | (w3 << 16u), al);
  let q3 = select(w4, (w3 >> 16u) | (w4 << 16u), al);
  var r: Unit;
  r.a = f16_to_f32(select(w0 >> 16u, w0 & 0xffffu, al));
  r.b = 0.0;
  r.q = array<vec4<f32>, 8>(u8x4(q0 & NIB) - 8.0, u8x4(q1 & NIB) - 8.0, u8x4(q2 & NIB) - 8.0, u8x4(q3 & NIB) - 8.0,
    u8x4((q0 >> 4u) & NIB) - 8.0, u8x4((q1 >> 4u) & NIB) - 8.0, u8x4((q2 >> 4u) & NIB) - 8.0, u8x4((q3 >> 4u) & NIB) - 8.0);
  return r;
}`,
  q4_k: /* wgsl */ `
/** Sub-block j's 6-bit scale and min from the 12 bytes at sb (ggml's get_scale_min_k4). */
fn scale_min_k4(sb: u32, j: u32) -> vec2<u32> {
  let qa = wb(sb + j); let qb = wb(sb + j + 4u); let qc = wb(sb + (j & 3u));
  if (j < 4u) { return vec2<u32>(qa & 63u, qb & 63u); }
  return vec2<u32>((qb & 15u) | ((qc >> 6u) << 4u), (qb >> 4u) | ((qa >> 6u) << 4u));
}
fn deq8(rb: u32, u: u32, p: u32) -> array<vec4<f32>, 2> {
  let at = rb + (u >> 3u) * 144u; let j = u & 7u;
  let h = W[at >> 2u];
  let sm = scale_min_k4(at + 4u, j);
  let d1 = f16_to_f32(h & 0xffffu) * f32(sm.x); let m1 = f16_to_f32(h >> 16u) * f32(sm.y);
  let o = (at + 16u + 32u * (j >> 1u) + 8u * p) >> 2u; let sh = (j & 1u) * 4u;
  return array<vec4<f32>, 2>(d1 * u8x4((W[o] >> sh) & NIB) - m1, d1 * u8x4((W[o + 1u] >> sh) & NIB) - m1);
}
fn unit(rb: u32, u: u32) -> Unit {
  let at = rb + (u >> 3u) * 144u; let j = u & 7u;
  let h = W[at >> 2u];
  let sm = scale_min_k4(at + 4u, j);
  var r: Unit;
  r.a = f16_to_f32(h & 0xffffu) * f32(sm.x);
  r.b = -(f16_to_f32(h >> 16u) * f32(sm.y));
  let o = (at + 16u + 32u * (j >> 1u)) >> 2u; let sh = (j & 1u) * 4u;
  for (var k = 0u; k < 8u; k++) { r.q[k] = u8x4((W[o + k] >> sh) & NIB); }
  return r;
}`,
  q6_k: /* wgsl */ `
fn deq8(rb: u32, u: u32, p: u32) -> array<vec4<f32>, 2> {
  let at = rb + (u >> 3u) * 210u; let j = u & 7u;
  let h = j >> 2u; let t = j & 3u;
  let sc = f32(bitcast<i32>(wb(at + 192u + 8u * h + (p >> 1u) + 2u * t) << 24u) >> 24u);
  let ds = f16_to_f32(wh(at + 208u)) * sc;
  let ql = at + 64u * h + 32u * (t & 1u) + 8u * p; let qh = at + 128u + 32u * h + 8u * p;
  let ns = (t >> 1u) * 4u; let hs = 2u * t;
  let a = ((ww(ql) >> ns) & NIB) | (((ww(qh) >> hs) & 0x03030303u) << 4u);
  let b = ((ww(ql + 4u) >> ns) & NIB) | (((ww(qh + 4u) >> hs) & 0x03030303u) << 4u);
  return array<vec4<f32>, 2>(ds * (u8x4(a) - 32.0), ds * (u8x4(b) - 32.0));
}
fn unit(rb: u32, u: u32) -> Unit {
  let at = rb + (u >> 3u) * 210u; let j = u & 7u;
  let h = j >> 2u; let t = j & 3u;
  let s0 = f32(bitcast<i32>(wb(at + 192u + 8u * h + 2u * t) << 24u) >> 24u);
  let s1 = f32(bitcast<i32>(wb(at + 193u + 8u * h + 2u * t) << 24u) >> 24u);
  let ql = at + 64u * h + 32u * (t & 1u); let qh = at + 128u + 32u * h;
  let ns = (t >> 1u) * 4u; let hs = 2u * t;
  var r: Unit;
  r.a = f16_to_f32(wh(at + 208u));
  r.b = 0.0;
  for (var k = 0u; k < 8u; k++) {
    let q = ((ww(ql + 4u * k) >> ns) & NIB) | (((ww(qh + 4u * k) >> hs) & 0x03030303u) << 4u);
    r.q[k] = (u8x4(q) - 32.0) * select(s1, s0, k < 4u);
  }
  return r;
}`,
  q4_1: /* wgsl */ `
fn deq8(rb: u32, u: u32, p: u32) -> array<vec4<f32>, 2> {
  let at = (rb + u * 20u) >> 2u;
  let h = W[at]; let d = f16_to_f32(h & 0xffffu); let m = f16_to_f32(h >> 16u);
  let o = at + 1u + 2u * (p & 1u); let sh = (p >> 1u) * 4u;
  return array<vec4<f32>, 2>(d * u8x4((W[o] >> sh) & NIB) + m, d * u8x4((W[o + 1u] >> sh) & NIB) + m);
}
fn unit(rb: u32, u: u32) -> Unit {
  let at = (rb + u * 20u) >> 2u;
  let h = W[at];
  var r: Unit;
  r.a = f16_to_f32(h & 0xffffu); r.b = f16_to_f32(h >> 16u);
  for (var k = 0u; k < 8u; k++) { r.q[k] = u8x4((W[at + 1u + (k & 3u)] >> ((k >> 2u) * 4u)) & NIB); }
  return r;
}`,
  q5_0: /* wgsl */ `
/** Elements 4k..4k+3 (k < 8) of a Q5 block: nibbles of the 16 bytes at qs, fifth bits from qh. */
fn q5x4(qs: u32, qh: u32, k: u32) -> vec4<f32> { return u8x4(((ww(qs + 4u * (k & 3u)) >> ((k >> 2u) * 4u)) & NIB) | spread4(qh >> (4u * k))); }
fn deq8(rb: u32, u: u32, p: u32) -> array<vec4<f32>, 2> {
  let at = rb + u * 22u;
  let d = f16_to_f32(wh(at)); let qh = ww(at + 2u);
  return array<vec4<f32>, 2>(d * (q5x4(at + 6u, qh, 2u * p) - 16.0), d * (q5x4(at + 6u, qh, 2u * p + 1u) - 16.0));
}
fn unit(rb: u32, u: u32) -> Unit {
  let at = rb + u * 22u;
  let qh = ww(at + 2u);
  var r: Unit;
  r.a = f16_to_f32(wh(at)); r.b = 0.0;
  for (var k = 0u; k < 8u; k++) { r.q[k] = q5x4(at + 6u, qh, k) - 16.0; }
  return r;
}`,
  q5_1: /* wgsl */ `
fn q5x4(qs: u32, qh: u32, k: u32) -> vec4<f32> { return u8x4(((W[(qs >> 2u) + (k & 3u)] >> ((k >> 2u) * 4u)) & NIB) | spread4(qh >> (4u * k))); }
fn deq8(rb: u32, u: u32, p: u32) -> array<vec4<f32>, 2> {
  let at = rb + u * 24u;
  let h = W[at >> 2u]; let d = f16_to_f32(h & 0xffffu); let m = f16_to_f32(h >> 16u); let qh = W[(at >> 2u) + 1u];
  return array<vec4<f32>, 2>(d * q5x4(at + 8u, qh, 2u * p) + m, d * q5x4(at + 8u, qh, 2u * p + 1u) + m);
}
fn unit(rb: u32, u: u32) -> Unit {
  let at = rb + u * 24u;
  let h = W[at >> 2u]; let qh = W[(at >> 2u) + 1u];
  var r: Unit;
  r.a = f16_to_f32(h & 0xffffu); r.b = f16_to_f32(h >> 16u);
  for (var k = 0u; k < 8u; k++) { r.q[k] = q5x4(at + 8u, qh, k); }
  return r;
}`,
  q5_k: /* wgsl */ `
fn scale_min_k4(sb: u32, j: u32) -> vec2<u32> {
  let qa = wb(sb + j); let qb = wb(sb + j + 4u); let qc = wb(sb + (j & 3u));
  if (j < 4u) { return vec2<u32>(qa & 63u, qb & 63u); }
  return vec2<u32>((qb & 15u) | ((qc >> 6u) << 4u), (qb >> 4u) | ((qa >> 6u) << 4u));
}
/** Values 4i..4i+3 of unit j of the super-block at word aw: nibbles, and bit j of the qh bytes. */
fn q5k4(aw: u32, j: u32, i: u32) -> vec4<f32> {
  let n = (W[aw + 12u + 8u * (j >> 1u) + i] >> ((j & 1u) * 4u)) & NIB;
  return u8x4(n | (((W[aw + 4u + i] >> j) & 0x01010101u) << 4u));
}
fn deq8(rb: u32, u: u32, p: u32) -> array<vec4<f32>, 2> {
  let at = rb + (u >> 3u) * 176u; let j = u & 7u; let aw = at >> 2u;
  let h = W[aw];
  let sm = scale_min_k4(at + 4u, j);
  let d1 = f16_to_f32(h & 0xffffu) * f32(sm.x); let m1 = f16_to_f32(h >> 16u) * f32(sm.y);
  return array<vec4<f32>, 2>(d1 * q5k4(aw, j, 2u * p) - m1, d1 * q5k4(aw, j, 2u * p + 1u) - m1);
}
fn unit(rb: u32, u: u32) -> Unit {
  let at = rb + (u >> 3u) * 176u; let j = u & 7u; let aw = at >> 2u;
  let h = W[aw];
  let sm = scale_min_k4(at + 4u, j);
  var r: Unit;
  r.a = f16_to_f32(h & 0xffffu) * f32(sm.x);
  r.b = -(f16_to_f32(h >> 16u) * f32(sm.y));
  for (var k = 0u; k < 8u; k++) { r.q[k] = q5k4(aw, j, k); }
  return r;
}`,
  iq4_nl: /* wgsl */ `
var<private> IQ4NL: array<f32, 16> = array<f32, 16>(-127.0, -104.0, -83.0, -65.0, -49.0, -35.0, -22.0, -10.0, 1.0, 13.0, 25.0, 38.0, 53.0, 69.0, 89.0, 113.0);
fn grid4(n: u32) -> vec4<f32> { return vec4<f32>(IQ4NL[n & 15u], IQ4NL[(n >> 8u) & 15u], IQ4NL[(n >> 16u) & 15u], IQ4NL[(n >> 24u) & 15u]); }
fn deq8(rb: u32, u: u32, p: u32) -> array<vec4<f32>, 2> {
  let at = rb + u * 18u;
  let d = f16_to_f32(wh(at));
  let o = at + 2u + 8u * (p & 1u); let sh = (p >> 1u) * 4u;
  return array<vec4<f32>, 2>(d * grid4(ww(o) >> sh), d * grid4(ww(o + 4u) >> sh));
}
fn unit(rb: u32, u: u32) -> Unit {
  let at = rb + u * 18u;
  var r: Unit;
  r.a = f16_to_f32(wh(at)); r.b = 0.0;
  for (var k = 0u; k < 8u; k++) { r.q[k] = grid4(ww(at + 2u + 4u * (k & 3u)) >> ((k >> 2u) * 4u)); }
  return r;
}`,
};

/** The readers and the decoders of `type`, over a read-only binding `W: array<u32>` declared by the kernel. */
export function quantDecoders(type: QuantType): string {
  return READERS + DECODERS[type as GgmlQuantType];
}
