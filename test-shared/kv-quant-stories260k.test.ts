// `actlab eval --kv-cache` on stories260K (../shared/data): llama.cpp's q4_0 cache type and
// KVQuant's 4-bit scheme against the f32 cache of the same model, memory per token printed.
import { describe, expect, it } from 'vitest';
import { capture } from '../test/helpers/capture.js';

const DATA = new URL('../../shared/data/', import.meta.url).pathname;
const base = ['eval', '--model', `${DATA}stories260K/stories260K.bin`, '--tokenizer', `${DATA}stories260K/tok512.bin`,
  '--ref', `${DATA}stories260K/stories260K.bin`, '--data', `${DATA}tinyshakespeare/input.txt`, '--ctx', '128', '--chunks', '4', '--backend', 'wasm', '--json'];

describe('actlab eval --kv-cache on stories260K', () => {
  it('kvquant-4 stays closer to the f32 cache than q4_0, at under 0.3x its bytes', async () => {
    const out: Record<string, { kl_divergence: number; top1_agreement: number; kv_cache: { ratio_to_f32: number; bytes_per_token: number } }> = {};
    for (const type of ['q4_0', 'kvquant-4']) {
      const r = await capture([...base, '--kv-cache', type, '--kv-calib-tokens', '1024']);
      expect(r.code, r.err).toBe(0);
      out[type] = JSON.parse(r.out.trim().split('\n').at(-1)!);
      const j = out[type]!;
      console.log(`${type}: KL ${j.kl_divergence.toExponential(3)}, top-1 ${j.top1_agreement}, ${j.kv_cache.bytes_per_token.toFixed(1)} bytes/token = ${j.kv_cache.ratio_to_f32.toFixed(3)}x f32`);
    }
    expect(out['kvquant-4']!.kl_divergence).toBeLessThan(out.q4_0!.kl_divergence);
    expect(out['kvquant-4']!.kv_cache.ratio_to_f32).toBeLessThan(0.3);
    expect(out.q4_0!.kv_cache.ratio_to_f32).toBeCloseTo(4.5 / 32, 3);
  }, 300_000);

  it('bad input: bits out of range, too little calibration text', async () => {
    const r1 = await capture([...base, '--kv-cache', 'kvquant-9']);
    expect(r1.code).toBe(1);
    expect(r1.err).toMatch(/bits: 9 is out of range \(kvquant takes 2\.\.8 bits\)/);
    const r2 = await capture([...base, '--kv-cache', 'kvquant-4', '--kv-calib-tokens', '100']);
    expect(r2.code).toBe(1);
    expect(r2.err).toMatch(/100 calibration tokens are too few; it needs at least 200/);
  }, 300_000);
});
