// GGML's K-quants fitted under an importance per input column (llama.cpp's "imatrix" quantisers,
// ggml-quants.c quantize_row_q{4,5,6}_K_impl with quant_weights): each 32-value sub-block of
// Q4_K/Q5_K takes the scale and min that minimise Σ w·(x − ŵ)² with w = imp·sqrt(σ² + x²)
// (make_qkx3_quants, 37 trial scales), the eight 6-bit sub-block scales and mins are then fitted
// to the super-block scales weighted by each sub-block's Σ w (make_qp_quants); Q6_K's 16-value
// sub-blocks take make_qx_quants with w = imp. The importance is the mean x² of the column's input
// over calibration text. Arithmetic is in doubles (ggml's is f32): the blocks are the same format,
// not byte-identical to llama-quantize --imatrix. Also the block grids (value = scale·level +
// offset for each of a super-block's 256 values) that GPTQ rounds onto (src/quantize/gptq-kquants.ts).
import { f16BitsToF32, f32ToF16Bits } from '../tensor/dtype.js';
import { nearestInt, packLevelsK45, packLevelsQ6K, packScaleMinK4, scaleMinK4 } from './gguf-kquants.js';

const QK_K = 256;
export type KQuantType = 'Q4_K' | 'Q5_K' | 'Q6_K';
export const K_BLOCK_BYTES: Record<KQuantType, number> = { Q4_K: 144, Q5_K: 176, Q6_K: 210 };

/** make_qkx3_quants: levels 0..nmax, scale and (negative) min under weights w; returns [scale, -min]. */
function makeQkx3(x: Float64Array, o: number, n: number, nmax: number, w: Float64Array, L: Uint8Array, lo: number, aux: Uint8Array,
  rmin: number, rdelta: number, nstep: number): [number, number] {
  let min = x[o]!, max = x[o]!, sumW = w[0]!, sumX = w[0]! * x[o]!;
  for (let i = 1; i < n; i++) {
    const v = x[o + i]!;
    if (v < min) min = v;
    if (v > max) max = v;
    sumW += w[i]!;
    sumX += w[i]! * v;
  }
  if (min > 0) min = 0;
  if (max <= min) {
    L.fill(0, lo, lo + n);
    return [0, -min];
  }
  let iscale = nmax / (max - min);
  let scale = 1 / iscale;
  let best = 0;
  for (let i = 0; i < n; i++) {
    const l = Math.max(0, Math.min(nmax, nearestInt(iscale * (x[o + i]! - min))));
    L[lo + i] = l;
    const diff = scale * l + min - x[o + i]!;
    best += w[i]! * diff * diff;
  }
  for (let is = 0; is <= nstep; is++) {
    iscale = (rmin + rdelta * is + nmax) / (max - min);
    let sumL = 0, sumL2 = 0, sumXL = 0;
    for (let i = 0; i < n; i++) {
      const v = iscale * (x[o + i]! - min);
      const l = v > 0 ? nearestInt(Math.min(v, nmax)) : 0;
      aux[i] = l;
      sumL += w[i]! * l;
      sumL2 += w[i]! * l * l;
      sumXL += w[i]! * l * x[o + i]!;
    }
    const D = sumW * sumL2 - sumL * sumL;
    if (D > 0) {
      let thisScale = (sumW * sumXL - sumX * sumL) / D;
      let thisMin = (sumL2 * sumX - sumL * sumXL) / D;
      if (thisMin > 0) {
        thisMin = 0;
        thisScale = sumXL / sumL2;
      }
      let err = 0;
      for (let i = 0; i < n; i++) {
        const diff = thisScale * aux[i]! + thisMin - x[o + i]!;
        err += w[i]! * diff * diff;
      }
      if (err < best) {
        for (let i = 0; i < n; i++) L[lo + i] = aux[i]!;
        best = err;
        scale = thisScale;
        min = thisMin;
      }
    }
  }
  return [scale, -min];
}

/** make_qp_quants: non-negative x on levels 0..nmax under weights qw; returns the scale, levels in L. */
function makeQp(x: Float64Array, nmax: number, L: Uint8Array, qw: Float64Array): number {
  const n = x.length;
  let max = 0;
  for (let i = 0; i < n; i++) max = Math.max(max, x[i]!);
  if (max < 1e-15) {
    L.fill(0);
    return 0;
  }
  let iscale = nmax / max;
  for (let i = 0; i < n; i++) L[i] = nearestInt(iscale * x[i]!);
  const scale = 1 / iscale;
  let bestMse = 0;
  for (let i = 0; i < n; i++) { const diff = x[i]! - scale * L[i]!; bestMse += qw[i]! * diff * diff; }
  for (let is = -4; is <= 4; is++) {
    if (is === 0) continue;
    const iscaleIs = (0.1 * is + nmax) / max;
    const scaleIs = 1 / iscaleIs;
    let mse = 0;
    for (let i = 0; i < n; i++) {
      const l = Math.min(nmax, nearestInt(iscaleIs * x[i]!));
      const diff = x[i]! - scaleIs * l;
      mse += qw[i]! * diff * diff;
    }
    if (mse < bestMse) { bestMse = mse; iscale = iscaleIs; }
  }
  let sumlx = 0, suml2 = 0;
  for (let i = 0; i < n; i++) {
    const l = Math.min(nmax, nearestInt(iscale * x[i]!));
    L[i] = l;
    sumlx += qw[i]! * x[i]! * l;
    suml2 += qw[i]! * l * l;
  }
  for (let itry = 0; itry < 5; itry++) {
    let changed = 0;
    for (let i = 0; i < n; i++) {
      const w = qw[i]!;
      let slx = sumlx - w * x[i]! * L[i]!;
      let sl2 = suml2 - w * L[i]! * L[i]!;
      if (slx > 0 && sl2 > 0) {
        const nl = Math.min(nmax, nearestInt(x[i]! * sl2 / slx));
        if (nl !== L[i]) {
          slx += w * x[i]! * nl;
          sl2 += w * nl * nl;
          if (slx * slx * suml2 > sumlx * sumlx * sl2) { L[i] = nl; sumlx = slx; suml2 = sl2; changed++; }
        }
      }
    }
    if (!changed) break;
  }
  return suml2 > 0 ? sumlx / suml2 : 0;
}

/** make_qx_quants with rmse_type 1 and weights qw: signed levels -nmax..nmax-1; returns the scale. */
function makeQx(x: Float64Array, o: number, n: number, nmax: number, qw: Float64Array, qo: number): number {
  let max = 0, amax = 0;
  for (let i = 0; i < n; i++) { const ax = Math.abs(x[o + i]!); if (ax > amax) { amax = ax; max = x[o + i]!; } }
  if (amax < 1e-15) return 0;
  const fit = (iscale: number): [number, number] => {
    let sumlx = 0, suml2 = 0;
    for (let i = 0; i < n; i++) {
      const l = Math.max(-nmax, Math.min(nmax - 1, nearestInt(iscale * x[o + i]!)));
      sumlx += qw[qo + i]! * x[o + i]! * l;
      suml2 += qw[qo + i]! * l * l;
    }
    return [sumlx, suml2];
  };
  let [sumlx, suml2] = fit(-nmax / max);
  let scale = suml2 ? sumlx / suml2 : 0;
  let best = scale * sumlx;
  for (let is = -9; is <= 9; is++) {
    if (is === 0) continue;
    [sumlx, suml2] = fit(-(nmax + 0.1 * is) / max);
    if (suml2 > 0 && sumlx * sumlx > best * suml2) { scale = sumlx / suml2; best = scale * sumlx; }
  }
  return scale;
}

const h16 = (v: number): number => f32ToF16Bits(v);
const v16 = (h: number): number => f16BitsToF32(h);

/**
 * One super-block of 256 values `x` (at `xo`) with importance `imp` (at `io`, ≥ 0, one per value)
 * written as `type` at out[o..]. An importance that is zero over a whole super-block counts as
 * uniform (a column no calibration token excited still has to be stored).
 */
export function quantizeKBlockWeighted(type: KQuantType, x: Float64Array, xo: number, imp: Float64Array, io: number, out: Uint8Array, o: number): void {
  let impSum = 0;
  for (let i = 0; i < QK_K; i++) impSum += imp[io + i]!;
  const qw = new Float64Array(QK_K);
  for (let i = 0; i < QK_K; i++) qw[i] = impSum > 0 ? imp[io + i]! : 1;
  let sumX2 = 0;
  for (let l = 0; l < QK_K; l++) sumX2 += x[xo + l]! * x[xo + l]!;
  out.fill(0, o, o + K_BLOCK_BYTES[type]);
  if (type === 'Q6_K') {
    const scales = new Float64Array(16);
    let maxScale = 0, maxAbs = 0;
    for (let ib = 0; ib < 16; ib++) {
      scales[ib] = makeQx(x, xo + 16 * ib, 16, 32, qw, 16 * ib);
      if (Math.abs(scales[ib]!) > maxAbs) { maxAbs = Math.abs(scales[ib]!); maxScale = scales[ib]!; }
    }
    if (maxAbs < 1e-15) return;
    const iscale = -128 / maxScale;
    const dh = h16(1 / iscale);
    out[o + 208] = dh & 0xff; out[o + 209] = dh >> 8;
    for (let ib = 0; ib < 16; ib++) out[o + 192 + ib] = Math.min(127, nearestInt(iscale * scales[ib]!)) & 0xff;
    const L = new Uint8Array(QK_K);
    for (let j = 0; j < 16; j++) {
      const d = v16(dh) * ((out[o + 192 + j]! << 24) >> 24);
      for (let ii = 0; ii < 16; ii++) L[16 * j + ii] = d ? Math.max(-32, Math.min(31, nearestInt(x[xo + 16 * j + ii]! / d))) + 32 : 32;
    }
    packLevelsQ6K(out, o, L);
    return;
  }
  const nmax = type === 'Q4_K' ? 15 : 31;
  const sigma2 = 2 * sumX2 / QK_K;
  const L = new Uint8Array(QK_K);
  const aux = new Uint8Array(32);
  const w = new Float64Array(32);
  const sw = new Float64Array(8), scales = new Float64Array(8), mins = new Float64Array(8);
  for (let j = 0; j < 8; j++) {
    let s = 0;
    for (let l = 0; l < 32; l++) { const v = x[xo + 32 * j + l]!; w[l] = qw[32 * j + l]! * Math.sqrt(sigma2 + v * v); s += w[l]!; }
    sw[j] = s;
    [scales[j], mins[j]] = makeQkx3(x, xo + 32 * j, 32, nmax, w, L, 32 * j, aux, -0.9, 0.05, 36);
  }
  const Ls = new Uint8Array(8), Lm = new Uint8Array(8);
  const dBlock = makeQp(scales, 63, Ls, sw);
  const mBlock = makeQp(mins, 63, Lm, sw);
  const sc = out.subarray(o + 4, o + 16);
  for (let j = 0; j < 8; j++) packScaleMinK4(sc, j, Math.min(63, Ls[j]!), Math.min(63, Lm[j]!));
  const dh = h16(dBlock), mh = h16(mBlock);
  out[o] = dh & 0xff; out[o + 1] = dh >> 8;
  out[o + 2] = mh & 0xff; out[o + 3] = mh >> 8;
  for (let j = 0; j < 8; j++) {
    const [s, m] = scaleMinK4(sc, j);
    const d = v16(dh) * s;
    if (!d) continue;
    const dm = v16(mh) * m;
    for (let ii = 0; ii < 32; ii++) L[32 * j + ii] = Math.max(0, Math.min(nmax, nearestInt((x[xo + 32 * j + ii]! + dm) / d)));
  }
  packLevelsK45(out, o, L, type === 'Q4_K' ? 4 : 5);
}

/**
 * A [rows, cols] matrix (row-major, cols a multiple of 256) as `type` with importance `imp` per
 * column (llama.cpp's quantize with an imatrix).
 */
export function quantizeKWeighted(type: KQuantType, values: ArrayLike<number>, cols: number, imp: ArrayLike<number>): Uint8Array {
  if (cols % QK_K) throw new Error(`${type}: rows of ${cols} values are not a whole number of ${QK_K}-value super-blocks`);
  if (values.length % cols) throw new Error(`${type}: ${values.length} values are not whole rows of ${cols}`);
  if (imp.length !== cols) throw new Error(`${type}: the importance has ${imp.length} values for rows of ${cols}`);
  const x = Float64Array.from(values);
  const qw = Float64Array.from(imp);
  const bad = qw.findIndex((v) => !(v >= 0) || !Number.isFinite(v));
  if (bad >= 0) throw new Error(`${type}: importance ${bad} is ${qw[bad]} (it must be finite and >= 0)`);
  const rows = x.length / cols, nb = cols / QK_K, bytes = K_BLOCK_BYTES[type];
  const out = new Uint8Array(rows * nb * bytes);
  for (let r = 0; r < rows; r++) for (let b = 0; b < nb; b++) quantizeKBlockWeighted(type, x, r * cols + b * QK_K, qw, b * QK_K, out, (r * nb + b) * bytes);
  return out;
}

/**
 * The grid of a written super-block: value i is scale[i]·level + offset[i] for a level 0..nmax
 * (Q4_K: d·sc·q − dmin·m; Q5_K the same with 32 levels; Q6_K: d·sc·(q − 32)). Returns nmax.
 */
export function kBlockGrid(type: KQuantType, raw: Uint8Array, o: number, scale: Float64Array, offset: Float64Array, at = 0): number {
  if (type === 'Q6_K') {
    const d = v16(raw[o + 208]! | (raw[o + 209]! << 8));
    for (let i = 0; i < QK_K; i++) {
      const s = d * ((raw[o + 192 + (i >> 4)]! << 24) >> 24);
      scale[at + i] = s;
      offset[at + i] = -32 * s;
    }
    return 63;
  }
  const d = v16(raw[o]! | (raw[o + 1]! << 8)), dmin = v16(raw[o + 2]! | (raw[o + 3]! << 8));
  const sc = raw.subarray(o + 4, o + 16);
  for (let j = 0; j < 8; j++) {
    const [s, m] = scaleMinK4(sc, j);
    for (let l = 0; l < 32; l++) { scale[at + 32 * j + l] = d * s; offset[at + 32 * j + l] = -dmin * m; }
  }
  return type === 'Q4_K' ? 15 : 31;
}

/** Writes 256 levels (0..nmax of kBlockGrid) into the written super-block at raw[o..], keeping its scales. */
export function setKBlockLevels(type: KQuantType, raw: Uint8Array, o: number, L: ArrayLike<number>): void {
  if (type === 'Q6_K') packLevelsQ6K(raw, o, L);
  else packLevelsK45(raw, o, L, type === 'Q4_K' ? 4 : 5);
}
