// Activation fake quantization at any hook point: each activation is replaced, during the forward
// pass, by the values a quantizer gives back. Formats int8 / int4 (symmetric, [-127, 127] /
// [-7, 7]), FP8 E4M3 / E5M2 and FP4 E2M1; granularity per tensor (one static scale), per channel
// (a static scale per feature) or per token (a dynamic scale per position: its absmax times a
// calibrated clip ratio). Static ranges are calibrated on calibration tokens by min-max, a
// percentile of |x|, or the clip ratio of least squared error (the whitepaper's range settings:
// Nagel et al. 2021, arXiv:2106.08295, §3.4). With `expBias` (LLM-FP4, Liu et al. 2023,
// arXiv:2310.16836, §4.2) a per-tensor scale is refined per channel by a power of two 2^ρc,
// ρc = ⌈log2(absmax_c / absmax)⌉ ≤ 0: channels of small range get a finer grid — the per-channel
// exponent bias that src/quant/fold.ts can move into the next layer's weights.
// The rounding runs on the host (no backend has a round op); activations are read and written
// once per hook call. Channels: every dim after [batch, pos] flattened (heads × d_head for hook_z).
// Not for: weights (src/quant/formats.ts).
import type { CausalLM } from '../models/model.js';
import type { HookFn } from '../models/hook-point.js';
import { tensor } from '../ops/creation.js';
import type { Tensor } from '../tensor/tensor.js';
import { BOOKS, nearestCode, type Codebook } from '../quant/codebook.js';
import { collectInputs } from './calibrate.js';
import { MSE_RATIOS } from '../quant/group.js';

export const ACT_FORMATS = ['int8', 'int4', 'fp8_e4m3', 'fp8_e5m2', 'fp4'] as const;
export type ActFormat = (typeof ACT_FORMATS)[number];
export type ActGranularity = 'tensor' | 'channel' | 'token';
export type ActRange = 'minmax' | 'percentile' | 'mse';

export interface ActQuantOptions {
  format: ActFormat;
  granularity: ActGranularity;
  range: ActRange;
  /** Percentile of |x| for range 'percentile' (default 99.99). */
  percentile?: number;
  /** LLM-FP4's per-channel exponent bias (per-tensor granularity only). */
  expBias?: boolean;
}

const BOOK: Record<ActFormat, { book: Codebook; qmax: number }> = {
  int8: { book: BOOKS.int8, qmax: 127 },
  int4: { book: BOOKS.int4, qmax: 7 },
  fp8_e4m3: { book: BOOKS.fp8_e4m3, qmax: 448 },
  fp8_e5m2: { book: BOOKS.fp8_e5m2, qmax: 57344 },
  fp4: { book: BOOKS.fp4_e2m1, qmax: 6 },
};

export function parseActFormat(s: string, where: string): ActFormat {
  const n = s.toLowerCase() === 'fp8' ? 'fp8_e4m3' : s.toLowerCase();
  if (!(ACT_FORMATS as readonly string[]).includes(n)) throw new Error(`${where}: unknown activation format '${s}' (have ${ACT_FORMATS.join(', ')}, fp8 = fp8_e4m3)`);
  return n as ActFormat;
}

/** The calibrated quantizer of one hook point. */
export interface ActCalibration {
  hook: string;
  channels: number;
  /** Static scales: 1 (tensor) or `channels` (channel, or tensor with expBias); empty for token. */
  scale: Float32Array;
  /** Clip ratio of each token's absmax (token granularity). */
  clip: number;
  /** Range seen in calibration: min and max. */
  min: number;
  max: number;
  /** Calibration error: sum of squared differences over sum of squares (NMSE). */
  nmse: number;
}

/** Fake-quantizes `x` [tokens, channels] in place with one calibration. */
export function fakeQuantRows(x: Float32Array, channels: number, c: ActCalibration, o: ActQuantOptions): Float32Array {
  const { book } = BOOK[o.format];
  const lut = book.lut;
  const tokens = x.length / channels;
  const qmax = BOOK[o.format].qmax;
  for (let t = 0; t < tokens; t++) {
    let tokScale = 0;
    if (o.granularity === 'token') {
      let am = 0;
      for (let k = 0; k < channels; k++) am = Math.max(am, Math.abs(x[t * channels + k]!));
      tokScale = (c.clip * am) / qmax;
    }
    for (let k = 0; k < channels; k++) {
      const i = t * channels + k;
      const s = o.granularity === 'token' ? tokScale : c.scale.length === 1 ? c.scale[0]! : c.scale[k]!;
      x[i] = s > 0 ? s * lut[nearestCode(book, x[i]! / s)]! : 0;
    }
  }
  return x;
}

function nmseOf(x: Float32Array, channels: number, c: ActCalibration, o: ActQuantOptions): number {
  const q = fakeQuantRows(x.slice(), channels, c, o);
  let e = 0, n = 0;
  for (let i = 0; i < x.length; i++) { e += (x[i]! - q[i]!) ** 2; n += x[i]! ** 2; }
  return n > 0 ? e / n : 0;
}

function percentileAbs(v: Float32Array, p: number): number {
  const a = Float32Array.from(v, Math.abs).sort();
  return a[Math.min(a.length - 1, Math.floor((p / 100) * a.length))] ?? 0;
}

/** Calibrates the quantizer of one hook from its activations [tokens, channels]. */
export function calibrateRows(hook: string, x: Float32Array, channels: number, o: ActQuantOptions): ActCalibration {
  if (o.expBias && o.granularity !== 'tensor') throw new Error(`${hook}: the LLM-FP4 exponent bias refines a per-tensor scale; use granularity 'tensor'`);
  const { qmax } = BOOK[o.format];
  let min = Infinity, max = -Infinity;
  for (const v of x) { if (v < min) min = v; if (v > max) max = v; }
  const c: ActCalibration = { hook, channels, scale: new Float32Array(0), clip: 1, min, max, nmse: 0 };
  const chanAbs = new Float32Array(channels);
  for (let i = 0; i < x.length; i++) chanAbs[i % channels] = Math.max(chanAbs[i % channels]!, Math.abs(x[i]!));
  const absmax = Math.max(-min, max);
  // the static range before clipping: per tensor one number, per channel one per feature
  const ranges = o.granularity === 'channel' ? chanAbs : Float32Array.of(o.range === 'percentile' ? percentileAbs(x, o.percentile ?? 99.99) : absmax);
  if (o.granularity === 'channel' && o.range === 'percentile') {
    const col = new Float32Array(x.length / channels);
    for (let k = 0; k < channels; k++) {
      for (let t = 0; t < col.length; t++) col[t] = x[t * channels + k]!;
      ranges[k] = percentileAbs(col, o.percentile ?? 99.99);
    }
  }
  const withRatio = (a: number): void => {
    if (o.granularity === 'token') { c.clip = a; return; }
    if (o.expBias) {
      // per channel: the tensor scale times 2^ρ, ρ = ⌈log2(absmax_c / absmax)⌉ ≤ 0
      c.scale = Float32Array.from(chanAbs, (m) => (a * ranges[0]! / qmax) * 2 ** Math.min(0, m > 0 && absmax > 0 ? Math.ceil(Math.log2(m / absmax)) : 0));
    } else {
      c.scale = Float32Array.from(ranges, (r) => (a * r) / qmax);
    }
  };
  withRatio(1);
  if (o.range === 'mse') {
    let best = 1, bestErr = nmseOf(x, channels, c, o);
    for (const a of MSE_RATIOS.slice(1)) {
      withRatio(a);
      const e = nmseOf(x, channels, c, o);
      if (e < bestErr) { bestErr = e; best = a; }
    }
    withRatio(best);
  }
  c.nmse = nmseOf(x, channels, c, o);
  return c;
}

/** Channels of an activation: every dim after [batch, pos]. */
const channelsOf = (shape: readonly number[]): number => shape.slice(2).reduce((a, b) => a * b, 1);

/**
 * Calibrates fake quantizers at `hooks` on `model` over `ids` (their activations kept as
 * [tokens, channels]); throws when there are fewer than `minTokens` tokens.
 */
export function calibrateActivations(model: CausalLM, ids: readonly number[], hooks: readonly string[], o: ActQuantOptions, minTokens = 32): Map<string, ActCalibration> {
  if (ids.length < minTokens) throw new Error(`activation calibration: ${ids.length} tokens; it needs at least ${minTokens} (pass a longer calibration text)`);
  const acts = collectInputs(model, ids, hooks);
  const out = new Map<string, ActCalibration>();
  const widths = new Map(model.hookPoints().map((h) => [h.name, h]));
  for (const [hook, x] of acts) {
    const channels = x.length / ids.length;
    if (!Number.isInteger(channels) || !widths.has(hook)) throw new Error(`activation calibration: '${hook}' is not a per-position hook point of this model`);
    out.set(hook, calibrateRows(hook, x, channels, o));
  }
  return out;
}

/** Hook functions that fake-quantize each calibrated hook point (use with `model.withHooks`). */
export function actQuantHooks(cal: ReadonlyMap<string, ActCalibration>, o: ActQuantOptions): [string, HookFn][] {
  return [...cal.values()].map((c) => [c.hook, (x: Tensor): Tensor => {
    const channels = channelsOf(x.shape);
    if (channels !== c.channels) throw new Error(`${c.hook}: activation of ${channels} channels, calibrated on ${c.channels}`);
    const v = fakeQuantRows((x.dataSync() as Float32Array).slice(), channels, c, o);
    return tensor(v, x.shape, 'f32', { backend: x.backend });
  }]);
}

/** One row per hook of the per-layer report: range, scale(s), clip, calibration error. */
export function actReport(cal: ReadonlyMap<string, ActCalibration>): Record<string, unknown>[] {
  return [...cal.values()].map((c) => {
    const s = Array.from(c.scale);
    return {
      hook: c.hook, channels: c.channels, min: c.min, max: c.max, clip: c.clip, nmse: c.nmse,
      ...(s.length ? { scale_min: Math.min(...s), scale_max: Math.max(...s) } : {}),
    };
  });
}
