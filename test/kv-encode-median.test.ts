// The wasm KV encoder's median (src/backends/wasm/kernels/kvenc.wat.mjs, $select in
// kvenc-rules.mjs): the per-token outlier rule |x − median(row)| > τ needs the row's median as
// codec.ts computes it (the m-th smallest, and for an even row the mean with the (m − 1)-th). The
// encoder selects it by branch-free three-way partitions; rows full of ties (the median repeated,
// its neighbour equal or not, a constant row), odd and even lengths, must give codec.ts's codes
// and exact entries.
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

/** kvquant-`bits` uniform with per-token keys and values, outliers at |x − median| > 0.6, no sink. */
const spec = (bits: number): KVCacheSpec => ({
  type: 'kvquant', bits, keys: 'per-token', nuq: false, sink: false, preRope: false,
  calibration: { bits, keys: 'per-token', preRope: false, nuq: false, outliers: 0.01, tokens: 1000, layers: [{ keys: { tau: 0.6 }, values: { tau: 0.6 } }] },
});

describe('wasm KV encoder: the median of the outlier rule', () => {
  let wasm: al.Backend, js: al.Backend;
  beforeAll(async () => { wasm = await initBackend('wasm'); js = await initBackend('js'); });

  // rows of R = hkv · d values: few distinct levels (ties everywhere), constant rows, a row whose
  // two middle values are equal, one whose middle values differ
  // (odd rows at 8 bits: 4-bit codes need an even row)
  it.each([['even rows (R = 64), 4 bits', 2, 32, 4], ['odd rows (R = 15), 8 bits', 3, 5, 8]] as const)('%s', (_name, hkv, d, bits) => {
    const R = hkv * d, tk = 12;
    const data = new Float32Array(R * tk);
    for (let t = 0; t < tk; t++) {
      for (let c = 0; c < R; c++) {
        const i = t * R + c;
        data[i] = t === 0 ? 0.25 // constant
          : t === 1 ? (c < R / 2 ? -1 : 1) // two levels: the middle values differ (even R) or sit on one level
          : t === 2 ? (c % 3) - 1 // three levels, the median repeated
          : Math.round(4 * Math.sin(c * 1.7 + t * 3.1)) / 4 + (c === t ? 3 : 0); // a few levels and one far value
      }
    }
    const encoded = (backend: al.Backend) => {
      // the cache takes [batch, kv_head, t, d]: row t's head h is data[t · R + h · d ..]
      const x = Float32Array.from({ length: R * tk }, (_, i) => {
        const h = Math.floor(i / (tk * d)), t = Math.floor(i / d) % tk, c = i % d;
        return data[t * R + h * d + c]!;
      });
      const k = al.tensor(x, [1, hkv, tk, d], 'f32', { backend }), v = al.tensor(x, [1, hkv, tk, d], 'f32', { backend });
      const cache = new KVCacheQuant(spec(bits), backend);
      cache.store(0, k, v);
      cache.commit();
      const dq = cache.dequantized(0);
      const out = { k: dq.k.dataSync().slice(), v: dq.v.dataSync().slice(), exact: cache.memory().sparseShare };
      for (const t of [k, v, dq.k, dq.v]) t.dispose();
      cache.dispose();
      return out;
    };
    const [w, j] = [encoded(wasm), encoded(js)];
    const err = Math.max(maxDiff(w.k, j.k), maxDiff(w.v, j.v));
    console.log(`${_name}: max |wasm − codec.ts| of the decoded keys and values ${err}, exact share ${w.exact.toFixed(4)} vs ${j.exact.toFixed(4)}`);
    expect(err).toBe(0);
    expect(w.exact).toBe(j.exact);
    expect(j.exact).toBeGreaterThan(0);
  });
});
