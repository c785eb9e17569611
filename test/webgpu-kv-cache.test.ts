// The q8_0 / q4_0 KV cache held on the WebGPU device (src/backends/webgpu/kernels/kv-cache.ts):
// rows rounded by the append kernel against the host encoder (ggml's rounding; codes and f16
// scales compared byte by byte), attention and the dequantized views against the js reference
// on the device's own bytes, and whole models against the same cache on wasm. Skips where no
// WebGPU adapter exists.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as al from '../src/index.js';
import { initBackend } from '../src/tensor/engine.js';
import { KVCacheQuant } from '../src/models/kvquant/cache.js';
import { codeBase, getCode } from '../src/models/kvquant/codec.js';
import { dequantizeStream, kvAttentionReference, type HostStream } from '../src/models/kvquant/reference.js';
import type { KVCacheSpec } from '../src/models/kvquant/spec.js';
import { kvGreedy, kvLogitErrors, kvTestModels, maxAbs, maxDiffNaN, openWebGpu, randomRow } from './webgpu-helpers.js';
import { KV_TUNING } from '../src/backends/webgpu/kernels/kv-cache.js';

const { backend, reason } = await openWebGpu();
if (!backend) console.log(`webgpu KV-cache tests skipped: ${reason}`);

interface Stream { layout: HostStream['layout']; main: al.Tensor; out: al.Tensor }
/** A layer's streams (the cache's own, for reading their bytes back). */
const streams = (c: KVCacheQuant, layer: number) => (c as unknown as { qlayers: { k: Stream; v: Stream }[] }).qlayers[layer]!;
async function hostStream(s: Stream): Promise<HostStream> {
  return { layout: s.layout, bytes: { main: await s.main.bytes(), out: await s.out.bytes() } };
}

describe.skipIf(!backend)('the q8_0 / q4_0 KV cache on webgpu', () => {
  let gpu: al.Backend;
  let wasm: al.Backend;
  beforeAll(async () => { gpu = backend!; wasm = await initBackend('wasm'); });
  afterAll(() => gpu?.dispose());

  const cases: { name: string; type: 'q8_0' | 'q4_0'; hq: number; hkv: number; d: number; tk: number; tq: number; batch: number; steps: number }[] = [
    { name: 'q4_0, heads of 8 inside a 32-value group', type: 'q4_0', hq: 8, hkv: 4, d: 8, tk: 150, tq: 1, batch: 1, steps: 3 },
    { name: 'q8_0, heads of 64 = two whole groups, 2 queries', type: 'q8_0', hq: 4, hkv: 2, d: 64, tk: 70, tq: 2, batch: 1, steps: 2 },
    { name: 'q4_0, heads of 32, left-padded batch of 2', type: 'q4_0', hq: 2, hkv: 2, d: 32, tk: 65, tq: 1, batch: 2, steps: 2 },
    { name: 'q8_0, heads of 12, an odd number of groups per row', type: 'q8_0', hq: 8, hkv: 8, d: 12, tk: 40, tq: 3, batch: 1, steps: 3 },
  ];

  it.each(cases)('$name: append, attention and dequantize against the host encoder and the reference', async (c) => {
    const R = c.hkv * c.d;
    const cg = new KVCacheQuant({ type: c.type }, gpu), cw = new KVCacheQuant({ type: c.type }, wasm);
    const pad = c.batch > 1 ? 5 : 0;
    const mask = Uint8Array.from({ length: c.batch * c.tk }, (_, i) => (i < c.tk && i % c.tk < pad ? 0 : 1));
    // the keys arrive in `steps` appends (the first one long, as a prompt), so the streams grow on the device
    const kx = randomRow(c.batch * R * c.tk, 21, 13), vx = randomRow(c.batch * R * c.tk, 22, 17);
    const cuts = [0, ...Array.from({ length: c.steps - 1 }, (_, i) => c.tk - c.steps + 1 + i), c.tk];
    for (let s = 0; s + 1 < cuts.length; s++) {
      const [t0, t1] = [cuts[s]!, cuts[s + 1]!];
      const part = (x: Float32Array) => {
        const out = new Float32Array(c.batch * c.hkv * (t1 - t0) * c.d);
        for (let bh = 0; bh < c.batch * c.hkv; bh++) out.set(x.subarray((bh * c.tk + t0) * c.d, (bh * c.tk + t1) * c.d), bh * (t1 - t0) * c.d);
        return out;
      };
      for (const [cache, be] of [[cg, gpu], [cw, wasm]] as const) {
        const k = al.tensor(part(kx), [c.batch, c.hkv, t1 - t0, c.d], 'f32', { backend: be });
        const v = al.tensor(part(vx), [c.batch, c.hkv, t1 - t0, c.d], 'f32', { backend: be });
        cache.store(0, k, v);
        cache.commit();
        k.dispose(); v.dispose();
      }
    }
    // codes and scales: the device's rounding against the host encoder's
    for (const which of ['k', 'v'] as const) {
      const [g, w] = [await hostStream(streams(cg, 0)[which]), await hostStream(streams(cw, 0)[which])];
      const L = g.layout, W = w.layout, rows = c.tk * c.batch;
      // code by code, each at its own layout's place (the host cache may store a kv head's codes at a time)
      let codeDiff = 0, scaleDiff = 0;
      for (let r = 0; r < rows; r++) {
        for (let ch = 0; ch < L.R; ch++) codeDiff += getCode(g.bytes.main, codeBase(L, r, ch), ch, L.bits) !== getCode(w.bytes.main, codeBase(W, r, ch), ch, W.bits) ? 1 : 0;
      }
      const gs = rows * (L.R / 32) * 2;
      for (let i = 0; i < gs; i++) scaleDiff += g.bytes.main[L.oGrp + i] !== w.bytes.main[W.oGrp + i] ? 1 : 0;
      console.log(`${c.name}, ${which}: ${codeDiff} of ${rows * L.R} codes and ${scaleDiff} of ${gs} scale bytes differ from the host encoder`);
      expect(scaleDiff).toBe(0);
      expect(codeDiff).toBeLessThanOrEqual(Math.ceil(rows * L.R * 1e-3));
    }
    const q = randomRow(c.batch * c.hq * c.tq * c.d, 23);
    const qg = al.tensor(q, [c.batch, c.hq, c.tq, c.d], 'f32', { backend: gpu });
    const keyMask = c.batch > 1 ? al.tensor(mask, [c.batch, c.tk], 'u8', { backend: gpu }) : undefined;
    const y = cg.attend(0, qg, { scale: 1 / Math.sqrt(c.d), keyMask, keyMaskHost: c.batch > 1 ? mask : undefined });
    const got = (await y.data()) as Float32Array;
    const [ks, vs] = [await hostStream(streams(cg, 0).k), await hostStream(streams(cg, 0).v)];
    const ref = kvAttentionReference(q, [c.batch, c.hq, c.tq, c.d], ks, vs, { hkv: c.hkv, tk: c.tk, dv: c.d, scale: 1 / Math.sqrt(c.d), causal: true, mask: c.batch > 1 ? mask : undefined });
    const err = maxDiffNaN(got, ref) / maxAbs(ref);
    console.log(`${c.name}: webgpu kernel vs js reference on the device's bytes over ${c.tk} keys, max relative error ${err.toExponential(2)}`);
    expect(err).toBeLessThan(1e-5);
    // the same in chunks of 3 query rows
    // (and keys split in runs of 16 over workgroups: the sums in another order)
    const saved = { ...KV_TUNING };
    Object.assign(KV_TUNING, { split: 16, scoreBytes: 3 * 4 * c.tk });
    const y3 = cg.attend(0, qg, { scale: 1 / Math.sqrt(c.d), keyMask, keyMaskHost: c.batch > 1 ? mask : undefined });
    Object.assign(KV_TUNING, saved);
    expect(maxDiffNaN((await y3.data()) as Float32Array, got) / maxAbs(got)).toBeLessThan(1e-5);
    y3.dispose();
    const dq = cg.dequantized(0);
    const dk = (await dq.k.data()) as Float32Array;
    expect(maxDiffNaN(dk, dequantizeStream(ks, c.batch, c.hkv, c.tk, c.d))).toBe(0);
    const m = cg.memory();
    console.log(`${c.name}: ${m.bytesPerToken} bytes per token (f32 cache ${m.f32BytesPerToken}, ${(m.bytesPerToken / m.f32BytesPerToken).toFixed(3)}x)`);
    expect(m.bytesPerToken / m.f32BytesPerToken).toBeLessThan(c.type === 'q4_0' ? 0.16 : 0.28);
    for (const t of [qg, y, dq.k, dq.v, ...(keyMask ? [keyMask] : [])]) t.dispose();
    cg.dispose(); cw.dispose();
  }, 120_000);

  it('a model on webgpu with the cache: logits as on wasm, the pattern hook path, greedy generation', async () => {
    const m = kvTestModels(gpu, wasm);
    for (const spec of [{ type: 'q4_0' }, { type: 'q8_0' }] as KVCacheSpec[]) {
      const { vsWasm: e1, vsHookPath: e2 } = await kvLogitErrors(m, spec);
      console.log(`${spec.type}: webgpu vs wasm logits, max relative error ${e1.toExponential(2)}; kernel vs the pattern-hook path on webgpu ${e2.toExponential(2)}`);
      expect(e1).toBeLessThan(1e-3);
      expect(e2).toBeLessThan(1e-4);
    }
    const g = await kvGreedy(m, { type: 'q8_0' });
    console.log('greedy q8_0 cache: webgpu', g.gpu.join(','), '| wasm', g.wasm.join(','));
    expect(g.gpu).toEqual(g.wasm);
    expect(g.leaked).toBe(0);
    m.mg.dispose(); m.mw.dispose();
  }, 180_000);
});
