// The wasm KV encoder's codebook search (src/backends/wasm/kernels/kvenc.wat.mjs): a sorted
// 16-entry codebook is searched without branches (a count of the midpoints below the value), any
// other through the binary search of codec.ts's nearest. Both must give codec.ts's codes: values
// exactly on the midpoints (ties go to the lower entry), next to them, past both ends; and a
// codebook out of order, where only the binary search defines the answer.
import { beforeAll, describe, expect, it } from 'vitest';
import * as al from '../src/index.js';
import { KVCacheQuant } from '../src/models/kvquant/cache.js';
import type { KVCacheSpec } from '../src/models/kvquant/spec.js';
import { initBackend } from '../src/tensor/engine.js';

const maxDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
};

/** kvquant-4 keys per channel over [−1, 1] (scale 1, offset 0: the code domain is the value's), no outliers, no sink. */
function spec(lut: number[], R: number): KVCacheSpec {
  return {
    type: 'kvquant', bits: 4, outliers: 0, sink: false, preRope: false,
    calibration: {
      bits: 4, keys: 'per-channel', preRope: false, nuq: true, outliers: 0, tokens: 1000,
      layers: [{ keys: { lo: new Array(R).fill(-1), hi: new Array(R).fill(1), lut }, values: { lut } }],
    },
  };
}

describe('wasm KV encoder: codebook search', () => {
  let wasm: al.Backend, js: al.Backend;
  beforeAll(async () => { wasm = await initBackend('wasm'); js = await initBackend('js'); });

  const sorted = Array.from({ length: 16 }, (_, i) => Math.fround(Math.sign(i - 7.5) * (Math.abs(i - 7.5) / 7.5) ** 1.3));
  const shuffled = [...sorted].sort((a, b) => Math.sin(a * 97) - Math.sin(b * 97));
  it.each([['sorted (branch-free count)', sorted], ['out of order (binary search)', shuffled]] as const)('%s', (_name, lut) => {
    const mids = lut.slice(0, 15).map((x, i) => (x + lut[i + 1]!) / 2);
    // every midpoint, each one float step either side, the entries themselves, and past both ends
    const probe = [...mids, ...mids.map((m) => m + 1e-7), ...mids.map((m) => m - 1e-7), ...lut, -3, 3, 0];
    const d = 16, hkv = 2, R = hkv * d, tk = Math.ceil(probe.length / R);
    const data = Float32Array.from({ length: R * tk }, (_, i) => probe[i % probe.length]!);
    const decoded = (backend: al.Backend) => {
      const k = al.tensor(data, [1, hkv, tk, d], 'f32', { backend }), v = al.tensor(data, [1, hkv, tk, d], 'f32', { backend });
      const cache = new KVCacheQuant(spec(lut, R), backend);
      cache.store(0, k, v);
      cache.commit();
      const dq = cache.dequantized(0);
      const out = [dq.k.dataSync().slice(), dq.v.dataSync().slice()];
      for (const t of [k, v, dq.k, dq.v]) t.dispose();
      cache.dispose();
      return out;
    };
    const [w, j] = [decoded(wasm), decoded(js)];
    const err = Math.max(maxDiff(w[0]!, j[0]!), maxDiff(w[1]!, j[1]!));
    console.log(`codebook ${_name}: ${probe.length} probes, max |wasm − codec.ts| of the decoded keys and values ${err}`);
    expect(err).toBe(0);
  });
});
