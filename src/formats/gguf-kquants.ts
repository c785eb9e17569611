// The reference quantisers of GGML's K-quants, as ggml-quants.c's quantize_row_q4_K_ref,
// quantize_row_q5_K_ref and quantize_row_q6_K_ref compute them (no importance matrix): Q4_K and
// Q5_K fit each 32-value sub-block with a scale and a min by a weighted least-squares search
// (make_qkx2_quants: weights rms(x) + |x|), then store both on 6 bits against f16 super-block scales;
// Q6_K fits each 16 values with a signed scale (make_qx_quants, weights x²) stored on 8 bits.
// Arithmetic is rounded to f32 where ggml's is, so files agree with llama-quantize's up to ties.
// The block layouts are those gguf-quants.ts decodes.
import { f16BitsToF32, f32ToF16Bits } from '../tensor/dtype.js';
import { scaleMinK4 } from '../tensor/quantized.js';

const QK_K = 256;
const fr = Math.fround;

/** ggml's nearest_int: round to nearest, ties to even, through the f32 magic-number trick. */
export function nearestInt(v: number): number {
  return fr(fr(v) + 12582912) - 12582912;
}

/** make_qkx2_quants: levels 0..nmax with scale and (negative) min; returns [scale, -min]. */
function makeQkx2(x: Float32Array, o: number, n: number, nmax: number, w: Float32Array, L: Uint8Array, lo: number, aux: Uint8Array,
  rmin: number, rdelta: number, nstep: number): [number, number] {
  let min = x[o]!;
  let max = x[o]!;
  let sumW = w[0]!;
  let sumX = fr(sumW * x[o]!);
  for (let i = 1; i < n; i++) {
    const v = x[o + i]!;
    if (v < min) min = v;
    if (v > max) max = v;
    sumW = fr(sumW + w[i]!);
    sumX = fr(sumX + fr(w[i]! * v));
  }
  if (min > 0) min = 0;
  if (max === min) {
    for (let i = 0; i < n; i++) L[lo + i] = 0;
    return [0, -min];
  }
  let iscale = fr(nmax / fr(max - min));
  let scale = fr(1 / iscale);
  let best = 0;
  for (let i = 0; i < n; i++) {
    const l = Math.max(0, Math.min(nmax, nearestInt(fr(iscale * fr(x[o + i]! - min)))));
    L[lo + i] = l;
    const diff = fr(fr(fr(scale * l) + min) - x[o + i]!);
    best = fr(best + fr(w[i]! * fr(diff * diff)));
  }
  for (let is = 0; is <= nstep; is++) {
    iscale = fr(fr(fr(rmin + fr(rdelta * is)) + nmax) / fr(max - min));
    let sumL = 0, sumL2 = 0, sumXL = 0;
    for (let i = 0; i < n; i++) {
      const l = Math.max(0, Math.min(nmax, nearestInt(fr(iscale * fr(x[o + i]! - min)))));
      aux[i] = l;
      sumL = fr(sumL + fr(w[i]! * l));
      sumL2 = fr(sumL2 + fr(fr(w[i]! * l) * l));
      sumXL = fr(sumXL + fr(fr(w[i]! * l) * x[o + i]!));
    }
    const D = fr(fr(sumW * sumL2) - fr(sumL * sumL));
    if (D > 0) {
      let thisScale = fr(fr(fr(sumW * sumXL) - fr(sumX * sumL)) / D);
      let thisMin = fr(fr(fr(sumL2 * sumX) - fr(sumL * sumXL)) / D);
      if (thisMin > 0) {
        thisMin = 0;
        thisScale = fr(sumXL / sumL2);
      }
      let mad = 0;
      for (let i = 0; i < n; i++) {
        const diff = fr(fr(fr(thisScale * aux[i]!) + thisMin) - x[o + i]!);
        mad = fr(mad + fr(w[i]! * fr(diff * diff)));
      }
      if (mad < best) {
        for (let i = 0; i < n; i++) L[lo + i] = aux[i]!;
        best = mad;
        scale = thisScale;
        min = thisMin;
      }
    }
  }
  return [scale, -min];
}

/** make_qx_quants with rmse_type 1 (weights x²), levels -nmax..nmax-1 stored + nmax. */
function makeQx(x: Float32Array, o: number, n: number, nmax: number, L: Int8Array, lo: number): number {
  let max = 0;
  let amax = 0;
  for (let i = 0; i < n; i++) {
    const ax = Math.abs(x[o + i]!);
    if (ax > amax) { amax = ax; max = x[o + i]!; }
  }
  if (amax < 1e-15) {
    for (let i = 0; i < n; i++) L[lo + i] = 0;
    return 0;
  }
  const fit = (iscale: number, store: boolean): [number, number] => {
    let sumlx = 0, suml2 = 0;
    for (let i = 0; i < n; i++) {
      const v = x[o + i]!;
      const l = Math.max(-nmax, Math.min(nmax - 1, nearestInt(fr(iscale * v))));
      if (store) L[lo + i] = l + nmax;
      const w = fr(v * v);
      sumlx = fr(sumlx + fr(fr(w * v) * l));
      suml2 = fr(suml2 + fr(fr(w * l) * l));
    }
    return [sumlx, suml2];
  };
  let [sumlx, suml2] = fit(fr(-nmax / max), true);
  let scale = suml2 ? fr(sumlx / suml2) : 0;
  let best = fr(scale * sumlx);
  for (let is = -9; is <= 9; is++) {
    if (is === 0) continue;
    const iscale = fr(-fr(nmax + fr(0.1 * is)) / max);
    [sumlx, suml2] = fit(iscale, false);
    if (suml2 > 0 && fr(sumlx * sumlx) > fr(best * suml2)) {
      fit(iscale, true);
      scale = fr(sumlx / suml2);
      best = fr(scale * sumlx);
    }
  }
  return scale;
}

const f16 = (v: number): number => f32ToF16Bits(v);
const f16v = (h: number): number => f16BitsToF32(h);

function check(x: ArrayLike<number>, type: string): Float32Array {
  if (x.length % QK_K) throw new Error(`${type}: ${x.length} values are not a whole number of ${QK_K}-value super-blocks`);
  return x instanceof Float32Array ? x : Float32Array.from(x);
}

/** quantize_row_q4_K_ref: 144-byte super-blocks [f16 d, f16 dmin, 12 bytes of 6-bit scales/mins, 128 bytes of nibbles]. */
export function quantizeQ4K(values: ArrayLike<number>): Uint8Array {
  return quantizeK45(check(values, 'Q4_K'), 4);
}

/** quantize_row_q5_K_ref: 176-byte super-blocks [f16 d, f16 dmin, 12 bytes of 6-bit scales/mins, 32 bytes of fifth bits, 128 bytes of nibbles]. */
export function quantizeQ5K(values: ArrayLike<number>): Uint8Array {
  return quantizeK45(check(values, 'Q5_K'), 5);
}

/** Packs the 6-bit scale and min of sub-block j into Q4_K/Q5_K's 12 scale bytes (ggml's layout, the inverse of get_scale_min_k4). */
export function packScaleMinK4(sc: Uint8Array, j: number, ls: number, lm: number): void {
  if (j < 4) {
    sc[j] = ls;
    sc[j + 4] = lm;
  } else {
    sc[j + 4] = (ls & 0xf) | ((lm & 0xf) << 4);
    sc[j - 4]! |= (ls >> 4) << 6;
    sc[j]! |= (lm >> 4) << 6;
  }
}

export { scaleMinK4 };

/** Writes 256 levels (0..15 or 0..31) into the quant bytes of a Q4_K (bits 4) or Q5_K (bits 5) super-block at `o`. */
export function packLevelsK45(out: Uint8Array, o: number, L: ArrayLike<number>, bits: 4 | 5): void {
  if (bits === 4) {
    for (let j = 0, q = o + 16; j < QK_K; j += 64, q += 32) {
      for (let l = 0; l < 32; l++) out[q + l] = L[j + l]! | (L[j + l + 32]! << 4);
    }
    return;
  }
  const qh = o + 16;
  out.fill(0, qh, qh + 32);
  for (let n = 0, ql = o + 48, m1 = 1, m2 = 2; n < QK_K; n += 64, ql += 32, m1 <<= 2, m2 <<= 2) {
    for (let j = 0; j < 32; j++) {
      let l1 = L[n + j]!;
      if (l1 > 15) { l1 -= 16; out[qh + j]! |= m1; }
      let l2 = L[n + j + 32]!;
      if (l2 > 15) { l2 -= 16; out[qh + j]! |= m2; }
      out[ql + j] = l1 | (l2 << 4);
    }
  }
}

function quantizeK45(x: Float32Array, bits: 4 | 5): Uint8Array {
  const nmax = bits === 4 ? 15 : 31;
  const bytes = bits === 4 ? 144 : 176;
  // make_qkx2_quants' search: Q4_K tries 21 steps from -1 by 0.1, Q5_K 16 steps from -0.5 by 0.1
  const [rmin, rdelta, nstep] = bits === 4 ? [-1, 0.1, 20] : [-0.5, 0.1, 15];
  const nb = x.length / QK_K;
  const out = new Uint8Array(nb * bytes);
  const L = new Uint8Array(QK_K);
  const aux = new Uint8Array(32);
  const w = new Float32Array(32);
  const scales = new Float32Array(8);
  const mins = new Float32Array(8);
  for (let i = 0; i < nb; i++) {
    const xo = i * QK_K;
    const o = i * bytes;
    let maxScale = 0;
    let maxMin = 0;
    for (let j = 0; j < 8; j++) {
      let sumX2 = 0;
      for (let l = 0; l < 32; l++) sumX2 = fr(sumX2 + fr(x[xo + 32 * j + l]! * x[xo + 32 * j + l]!));
      const av = fr(Math.sqrt(fr(sumX2 / 32)));
      for (let l = 0; l < 32; l++) w[l] = fr(av + Math.abs(x[xo + 32 * j + l]!));
      [scales[j], mins[j]] = makeQkx2(x, xo + 32 * j, 32, nmax, w, L, 32 * j, aux, rmin, rdelta, nstep);
      if (scales[j]! > maxScale) maxScale = scales[j]!;
      if (mins[j]! > maxMin) maxMin = mins[j]!;
    }
    const invScale = maxScale > 0 ? fr(63 / maxScale) : 0;
    const invMin = maxMin > 0 ? fr(63 / maxMin) : 0;
    const sc = out.subarray(o + 4, o + 16);
    for (let j = 0; j < 8; j++) {
      packScaleMinK4(sc, j, Math.min(63, nearestInt(fr(invScale * scales[j]!))), Math.min(63, nearestInt(fr(invMin * mins[j]!))));
    }
    const dh = f16(fr(maxScale / 63));
    const mh = f16(fr(maxMin / 63));
    out[o] = dh & 0xff; out[o + 1] = dh >> 8;
    out[o + 2] = mh & 0xff; out[o + 3] = mh >> 8;
    for (let j = 0; j < 8; j++) {
      const [s, m] = scaleMinK4(sc, j);
      const d = fr(f16v(dh) * s);
      if (!d) continue;
      const dm = fr(f16v(mh) * m);
      for (let ii = 0; ii < 32; ii++) L[32 * j + ii] = Math.max(0, Math.min(nmax, nearestInt(fr(fr(x[xo + 32 * j + ii]! + dm) / d))));
    }
    packLevelsK45(out, o, L, bits);
  }
  return out;
}

/** quantize_row_q6_K_ref: 210-byte super-blocks [128 bytes low nibbles, 64 bytes high 2 bits, 16 i8 scales, f16 d]. */
export function quantizeQ6K(values: ArrayLike<number>): Uint8Array {
  const x = check(values, 'Q6_K');
  const nb = x.length / QK_K;
  const out = new Uint8Array(nb * 210);
  const L = new Int8Array(QK_K);
  const scales = new Float32Array(16);
  for (let i = 0; i < nb; i++) {
    const xo = i * QK_K;
    const o = i * 210;
    let maxScale = 0;
    let maxAbs = 0;
    for (let ib = 0; ib < 16; ib++) {
      const s = makeQx(x, xo + 16 * ib, 16, 32, L, 16 * ib);
      scales[ib] = s;
      if (Math.abs(s) > maxAbs) { maxAbs = Math.abs(s); maxScale = s; }
    }
    if (maxAbs < 1e-15) continue; // all zero: the block stays zero bytes (d = 0)
    const iscale = fr(-128 / maxScale);
    const dh = f16(fr(1 / iscale));
    out[o + 208] = dh & 0xff; out[o + 209] = dh >> 8;
    for (let ib = 0; ib < 16; ib++) out[o + 192 + ib] = Math.min(127, nearestInt(fr(iscale * scales[ib]!))) & 0xff;
    for (let j = 0; j < 16; j++) {
      const d = fr(f16v(dh) * ((out[o + 192 + j]! << 24) >> 24));
      if (!d) continue;
      for (let ii = 0; ii < 16; ii++) L[16 * j + ii] = Math.max(-32, Math.min(31, nearestInt(fr(x[xo + 16 * j + ii]! / d)))) + 32;
    }
    packLevelsQ6K(out, o, L);
  }
  return out;
}

/** Writes 256 levels (0..63) into the quant bytes (ql, qh) of a Q6_K super-block at `o`. */
export function packLevelsQ6K(out: Uint8Array, o: number, L: ArrayLike<number>): void {
  for (let j = 0, ql = o, qh = o + 128; j < QK_K; j += 128, ql += 64, qh += 32) {
    for (let l = 0; l < 32; l++) {
      const q1 = L[j + l]!, q2 = L[j + l + 32]!, q3 = L[j + l + 64]!, q4 = L[j + l + 96]!;
      out[ql + l] = (q1 & 0xf) | ((q3 & 0xf) << 4);
      out[ql + l + 32] = (q2 & 0xf) | ((q4 & 0xf) << 4);
      out[qh + l] = (q1 >> 4) | ((q2 >> 4) << 2) | ((q3 >> 4) << 4) | ((q4 >> 4) << 6);
    }
  }
}
