// What a quantized KV cache is asked to be: llama.cpp's cache types (q8_0, q4_0: ggml's blocks of
// 32 values with one f16 scale) or KVQuant's scheme (Hooper et al. 2024, "KVQuant: Towards 10
// Million Context Length LLM Inference with KV Cache Quantization") with each component switchable
// for ablations: keys per channel (offline-calibrated ranges) or per token, keys quantized before
// or after RoPE, the nuq datatype (a per-layer Fisher-weighted k-means codebook) or uniform
// levels, a share of outliers kept exact and sparse, the first token kept exact (attention sink).
// Not for: the packed layout and encoding (codec.ts), fitting the calibration (src/kvquant/calibrate.ts).

/** What the offline calibration (src/kvquant/calibrate.ts) fits, per layer. */
export interface KVStreamCalibration {
  /** Per-channel keys: the range [lo, hi] of each channel. */
  lo?: number[];
  hi?: number[];
  /** Per-token rows: outlier threshold on |x − median(row)| (absent: no outliers). */
  tau?: number;
  /** nuq: sorted codebook in [−1, 1]. */
  lut?: number[];
}

export interface KVCalibration {
  bits: number;
  keys: 'per-channel' | 'per-token';
  preRope: boolean;
  nuq: boolean;
  outliers: number;
  tokens: number;
  layers: { keys: KVStreamCalibration; values: KVStreamCalibration }[];
}

export interface KVCacheSpec {
  /** 'q8_0' | 'q4_0' (ggml's blocks) or 'kvquant'. */
  type: 'q8_0' | 'q4_0' | 'kvquant';
  /** kvquant: bits per value, 2..8 (default 4). */
  bits?: number;
  /** kvquant: how keys share their ranges (default 'per-channel', as the paper). Values are always per token. */
  keys?: 'per-channel' | 'per-token';
  /** kvquant: quantize keys before the rotary embedding; RoPE is applied on read (default true). */
  preRope?: boolean;
  /** kvquant: non-uniform codebook from calibration (default true); false: uniform 2^bits levels. */
  nuq?: boolean;
  /** kvquant: share of values kept exact in a sparse list (default 0.01 = 1%; 0 turns off). */
  outliers?: number;
  /** kvquant: keep each sequence's first token exact (default true). */
  sink?: boolean;
  /** kvquant: the offline calibration (calibrateKV); needed by per-channel keys, nuq and outliers. */
  calibration?: KVCalibration;
}

/** A spec with every kvquant default filled in. */
export interface ResolvedKVSpec {
  type: 'q8_0' | 'q4_0' | 'kvquant';
  bits: number;
  keys: 'per-channel' | 'per-token';
  preRope: boolean;
  nuq: boolean;
  outliers: number;
  sink: boolean;
  calibration?: KVCalibration;
}

export const KV_CACHE_TYPES = ['q8_0', 'q4_0', 'kvquant-4', 'kvquant-3', 'kvquant-2'] as const;

/** CLI names -> spec: q8_0, q4_0, kvquant-<bits> (the paper's defaults). */
export function parseKVCacheType(name: string, what = '--kv-cache'): KVCacheSpec {
  if (name === 'q8_0' || name === 'q4_0') return { type: name };
  const m = /^kvquant-(\d+)$/.exec(name);
  if (m) return { type: 'kvquant', bits: Number(m[1]) };
  throw new RangeError(`${what}: unknown KV cache type '${name}' (have f32, ${KV_CACHE_TYPES.join(', ')})`);
}

/** Fills the defaults and checks the ranges; throws a RangeError naming the bad field. */
export function resolveKVSpec(s: KVCacheSpec, what = 'kvCache'): ResolvedKVSpec {
  if (s.type !== 'q8_0' && s.type !== 'q4_0' && s.type !== 'kvquant') {
    throw new RangeError(`${what}.type: unknown '${String(s.type)}' (have q8_0, q4_0, kvquant)`);
  }
  if (s.type !== 'kvquant') {
    return { type: s.type, bits: s.type === 'q8_0' ? 8 : 4, keys: 'per-token', preRope: false, nuq: false, outliers: 0, sink: false };
  }
  const bits = s.bits ?? 4;
  if (!Number.isInteger(bits) || bits < 2 || bits > 8) throw new RangeError(`${what}.bits: ${bits} is out of range (kvquant takes 2..8 bits)`);
  const outliers = s.outliers ?? 0.01;
  if (!(outliers >= 0 && outliers < 0.5)) throw new RangeError(`${what}.outliers: ${outliers} is out of range (a share in [0, 0.5), e.g. 0.01)`);
  const keys = s.keys ?? 'per-channel';
  if (keys !== 'per-channel' && keys !== 'per-token') throw new RangeError(`${what}.keys: '${String(keys)}' (have per-channel, per-token)`);
  return { type: 'kvquant', bits, keys, preRope: s.preRope ?? true, nuq: s.nuq ?? true, outliers, sink: s.sink ?? true, calibration: s.calibration };
}

/** Whether the spec needs an offline calibration. */
export function needsCalibration(s: ResolvedKVSpec): boolean {
  return s.type === 'kvquant' && (s.keys === 'per-channel' || s.nuq || s.outliers > 0);
}

/** A short name for tables: kvquant-4 (per-token keys, post-RoPE, uniform, 0% outliers, no sink). */
export function kvSpecLabel(s: KVCacheSpec): string {
  const r = resolveKVSpec(s);
  if (r.type !== 'kvquant') return r.type;
  const off: string[] = [];
  if (r.keys !== 'per-channel') off.push('per-token keys');
  if (!r.preRope) off.push('post-RoPE');
  if (!r.nuq) off.push('uniform');
  if (r.outliers !== 0.01) off.push(`${+(100 * r.outliers).toFixed(2)}% outliers`);
  if (!r.sink) off.push('no sink');
  return `kvquant-${r.bits}${off.length ? ` (${off.join(', ')})` : ''}`;
}
