// The --kv-cache flags shared by `actlab eval` and `actlab generate`: which quantized KV cache
// (src/models/kvquant) the model runs over, and for KVQuant's types the calibration text (offline
// calibration: per-channel key ranges, outlier thresholds, the Fisher-weighted nuq codebooks).
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { calibrateKV, calibrateKVAsync, minCalibrationTokens } from '../kvquant/calibrate.js';
import type { KVMemory } from '../models/kvquant/cache.js';
import { needsCalibration, parseKVCacheType, resolveKVSpec, KV_CACHE_TYPES, type KVCacheSpec } from '../models/kvquant/spec.js';
import type { LoadedModel } from '../models/load.js';
import { inputIds } from './common.js';
import { int } from './options.js';

export interface KVCacheArgs {
  kvCache?: string;
  kvCalibData?: string;
  kvCalibTokens?: number;
}

export function kvCacheOptions(c: Command): Command {
  return c
    .option('--kv-cache <type>', `KV cache type: f32 (default), ${KV_CACHE_TYPES.join(', ')}`)
    .option('--kv-calib-data <file>', 'kvquant types: calibration text (eval default: the end of --data, after the evaluated chunks)')
    .option('--kv-calib-tokens <n>', 'kvquant types: calibration tokens (default 2048)', int(1));
}

/** Checks --kv-cache before anything is loaded (unknown types and bit widths fail at once). */
export function checkKVCacheArg(a: KVCacheArgs): void {
  if (a.kvCache !== undefined && a.kvCache !== 'f32') resolveKVSpec(parseKVCacheType(a.kvCache), '--kv-cache');
}

/**
 * The spec for --kv-cache (undefined for f32), calibrated where the type needs it: on
 * --kv-calib-data, else on `fallback` (token ids the caller set aside), printing what it does.
 */
export function kvCacheSpec(a: KVCacheArgs, m: LoadedModel, fallback?: () => number[], log: (s: string) => void = (s) => process.stderr.write(s + '\n')): KVCacheSpec | undefined {
  const c = calibrationIds(a, m, fallback, log);
  return c && (c.ids ? { ...c.spec, calibration: calibrateKV(m.model, c.ids, resolveKVSpec(c.spec)) } : c.spec);
}

/** kvCacheSpec for models on a backend that reads its buffers asynchronously (webgpu). */
export async function kvCacheSpecAsync(a: KVCacheArgs, m: LoadedModel, fallback?: () => number[], log: (s: string) => void = (s) => process.stderr.write(s + '\n')): Promise<KVCacheSpec | undefined> {
  const c = calibrationIds(a, m, fallback, log);
  return c && (c.ids ? { ...c.spec, calibration: await calibrateKVAsync(m.model, c.ids, resolveKVSpec(c.spec)) } : c.spec);
}

/** The parsed --kv-cache and, where it needs a calibration, the token ids to calibrate on. */
function calibrationIds(a: KVCacheArgs, m: LoadedModel, fallback: (() => number[]) | undefined, log: (s: string) => void): { spec: KVCacheSpec; ids?: number[] } | undefined {
  if (a.kvCache === undefined || a.kvCache === 'f32') return undefined;
  const spec = parseKVCacheType(a.kvCache);
  const r = resolveKVSpec(spec, '--kv-cache');
  if (!needsCalibration(r)) return { spec };
  const want = a.kvCalibTokens ?? 2048;
  let ids: number[];
  if (a.kvCalibData !== undefined) {
    let text: string;
    try {
      text = readFileSync(a.kvCalibData, 'utf8');
    } catch (e) {
      throw new Error(`--kv-calib-data: cannot read ${a.kvCalibData} (${(e as Error).message})`);
    }
    ids = inputIds({ prompt: text.slice(0, want * 12) }, m, false).slice(0, want);
  } else if (fallback) ids = fallback().slice(-want);
  else throw new Error(`--kv-cache ${a.kvCache}: needs calibration text (--kv-calib-data FILE; at least ${minCalibrationTokens(r.outliers)} tokens)`);
  const need = minCalibrationTokens(r.outliers);
  if (ids.length < need) {
    throw new RangeError(`--kv-cache ${a.kvCache}: ${ids.length} calibration tokens are too few; it needs at least ${need} (give --kv-calib-data, --kv-calib-tokens or fewer --chunks)`);
  }
  log(`kv cache ${a.kvCache}: calibrating on ${ids.length} tokens (keys, values and their Fisher information)`);
  return { spec, ids };
}

export function kvMemoryText(type: string, k: KVMemory): string {
  return `KV cache ${type}: ${k.bytesPerToken.toFixed(1)} bytes/token (${(k.bytesPerToken / k.f32BytesPerToken).toFixed(3)}x f32) + ${k.fixedBytes} bytes of tables, ${(100 * k.sparseShare).toFixed(2)}% of values kept exact`;
}
