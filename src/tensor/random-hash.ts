// The counter-based random numbers of the `random` op: element i of a draw with seed s is a pure
// function of (s, i), so every backend (the js reference, wasm, a WGSL kernel) produces the same
// numbers, a draw needs no state, and a large draw costs one pass on the device instead of a
// transfer from the host. Hand-written because the op is defined by this exact function; the
// mixer is Wellons' "lowbias32" integer hash (bijective on u32), applied as
// mix(mix(i) ^ mix(s + golden)), so draws of different seeds are unrelated permutations rather
// than shifted copies of one sequence. 24 bits per number (exact in f32).

/** Wellons' lowbias32 mixer on a u32. */
export function mix32(x: number): number {
  x = (x ^ (x >>> 16)) >>> 0;
  x = Math.imul(x, 0x7feb352d) >>> 0;
  x = (x ^ (x >>> 15)) >>> 0;
  x = Math.imul(x, 0x846ca68b) >>> 0;
  return (x ^ (x >>> 16)) >>> 0;
}

/** The u32 seed word a draw's kernel receives (`seed` taken mod 2^32). */
export function randomKey(seed: number): number {
  return mix32((seed + 0x9e3779b9) >>> 0);
}

/** Element `i` of the uniform [0, 1) draw with `seed`. */
export function randomUniformAt(seed: number, i: number): number {
  return (mix32((mix32(i >>> 0) ^ randomKey(seed)) >>> 0) >>> 8) / 16777216;
}

/** The same function in WGSL: `rand_uniform(i, key)` with key = randomKey(seed). */
export const WGSL_RANDOM = `
fn mix32(v: u32) -> u32 {
  var x = v;
  x = x ^ (x >> 16u);
  x = x * 0x7feb352du;
  x = x ^ (x >> 15u);
  x = x * 0x846ca68bu;
  return x ^ (x >> 16u);
}
fn rand_uniform(i: u32, key: u32) -> f32 {
  return f32(mix32(mix32(i) ^ key) >> 8u) * (1.0 / 16777216.0);
}
`;
