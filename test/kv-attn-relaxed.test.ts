// The packed KV-cache attention kernel's two builds (src/backends/wasm/kernels/kvattn*.mjs): the
// relaxed-SIMD build decodes 4-bit codes with relaxed byte shuffles, whose indices are nibbles, so
// where it decodes alone its outputs must equal the plain SIMD128 build's bit for bit; on the
// sixteen-a-vector paths (KVQuant's keys and values on heads of 64) it also fuses the scores' and
// the weighted sum's multiply-adds (relaxed_madd), so there the two builds differ by rounding only
// (within 1e-6 of the output's scale). Both against the js reference on the same packed bytes.
// Layouts: per-channel keys on heads of 64 (RoPE inside the scores), heads of 8 as one run of codes,
// q4_0's groups on heads of 32.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as al from '../src/index.js';
import { createWasmBackend, type WasmBackend } from '../src/backends/wasm/backend.js';
import { KVCacheQuant } from '../src/models/kvquant/cache.js';
import type { KVCacheSpec } from '../src/models/kvquant/spec.js';
import { Rng } from '../src/ops/creation.js';
import { initBackend } from '../src/tensor/engine.js';

const maxDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
};
const maxAbs = (a: ArrayLike<number>) => { let m = 0; for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]!)); return m; };

/** kvquant-4 with per-channel ranges at ±2.3 (a few percent of N(0, 1) values exact) and a 16-level codebook. */
function kvquant4(R: number): KVCacheSpec {
  const lut = Array.from({ length: 16 }, (_, i) => Math.sign(i - 7.5) * ((Math.abs(i - 7.5) / 7.5) ** 1.5));
  return {
    type: 'kvquant', bits: 4,
    calibration: {
      bits: 4, keys: 'per-channel', preRope: true, nuq: true, outliers: 0.01, tokens: 1000,
      layers: [{ keys: { lo: Array.from({ length: R }, (_, i) => -2.3 - 0.01 * (i % 7)), hi: Array.from({ length: R }, (_, i) => 2.3 + 0.01 * (i % 5)), lut }, values: { tau: 2.3, lut } }],
    },
  };
}

describe('packed KV attention: relaxed-SIMD and plain builds', () => {
  let plain: WasmBackend, relaxed: WasmBackend, js: al.Backend;
  beforeAll(async () => {
    plain = await createWasmBackend({ relaxed: false, threads: 1 });
    relaxed = await createWasmBackend({ threads: 1 });
    js = await initBackend('js');
  });
  afterAll(() => { plain.dispose(); relaxed.dispose(); });

  const cases = [
    { name: 'kvquant-4, heads of 64, one query head per kv head', spec: kvquant4, hq: 3, hkv: 3, d: 64, tk: 150, fused: true },
    { name: 'kvquant-4, heads of 8, one run of codes', spec: kvquant4, hq: 8, hkv: 4, d: 8, tk: 97, fused: false },
    { name: 'q4_0, heads of 32', spec: (): KVCacheSpec => ({ type: 'q4_0' }), hq: 4, hkv: 2, d: 32, tk: 70, fused: false },
  ];

  it.each(cases)('$name', (c) => {
    const R = c.hkv * c.d;
    const rng = new Rng(5);
    const kd = Float32Array.from({ length: R * c.tk }, () => rng.normal());
    const vd = Float32Array.from({ length: R * c.tk }, () => rng.normal());
    const qd = Float32Array.from({ length: c.hq * c.d }, () => rng.normal());
    const positions = Int32Array.from({ length: c.tk }, (_, i) => i);
    const run = (backend: al.Backend, reference: boolean) => {
      const k = al.tensor(kd, [1, c.hkv, c.tk, c.d], 'f32', { backend }), v = al.tensor(vd, [1, c.hkv, c.tk, c.d], 'f32', { backend });
      const q = al.tensor(qd, [1, c.hq, 1, c.d], 'f32', { backend });
      const inv = al.tensor(Array.from({ length: c.d / 2 }, (_, i) => 1 / 10000 ** ((2 * i) / c.d)), [c.d / 2], 'f32', { backend });
      const cache = new KVCacheQuant(c.spec(R), backend);
      cache.store(0, k, v, positions);
      cache.commit();
      const y = cache.attend(0, q, { scale: 1 / Math.sqrt(c.d), rope: { invFreq: inv, rotaryDim: c.d, mode: 'half' }, reference });
      const out = y.dataSync().slice();
      for (const t of [k, v, q, inv, y]) t.dispose();
      cache.dispose();
      return out;
    };
    const [yp, yr, yj] = [run(plain, false), run(relaxed, false), run(js, true)];
    const dBuilds = maxDiff(yp, yr), err = maxDiff(yr, yj) / maxAbs(yj), errPlain = maxDiff(yp, yj) / maxAbs(yj);
    console.log(`${c.name}: relaxed build ${relaxed.features.relaxed ? 'on' : `off (${relaxed.features.relaxedNote})`}; max |relaxed − plain| ${dBuilds}, max relative error to the js reference: relaxed ${err.toExponential(2)}, plain ${errPlain.toExponential(2)}`);
    if (c.fused) expect(dBuilds / maxAbs(yj)).toBeLessThan(1e-6);
    else expect(dBuilds).toBe(0);
    expect(err).toBeLessThan(1e-5);
    expect(errPlain).toBeLessThan(1e-5);
  });
});
