// qlinear: a quantized product with its linear layer's bias and activation in one op. On wasm it
// must give exactly the values of the three ops it replaces (qmatmul, add, unary), run natively
// (1 and 2 threads, weights in the memory or streamed from host memory), fall back to the three
// ops where a gradient is asked for, and stay within the q8-activation budget of the reference.
import { mkdtemp, rm } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SafetensorsFile } from '../src/formats/safetensors.js';
import { convertToGguf } from '../src/formats/gguf-convert.js';
import { NodeFileSource } from '../src/io/node/file-source.js';
import { NodeFileStore } from '../src/io/node/file-store.js';
import { KVCache } from '../src/models/layers/kv-cache.js';
import { assign } from '../src/ops/layout.js';
import * as al from '../src/index.js';
import { createWasmBackend, type WasmBackend } from '../src/backends/wasm/backend.js';
import { quantizeQ4_0, quantizeQ8_0 } from '../src/formats/gguf-quants.js';
import { quantizeQ6K } from '../src/formats/gguf-kquants.js';
import { qlinear, qmatmul } from '../src/ops/quant.js';
import { Rng } from '../src/ops/creation.js';
import { QuantizedTensor } from '../src/tensor/quantized.js';
import type { QuantType, UnaryFn } from '../src/tensor/backend.js';

const normal = (n: number, seed: number, std = 1) => { const r = new Rng(seed); return Float32Array.from({ length: n }, () => r.normal() * std); };
const ENCODE: [QuantType, (w: Float32Array) => Uint8Array][] = [['q8_0', quantizeQ8_0], ['q4_0', quantizeQ4_0], ['q6_k', quantizeQ6K]];

let js: al.Backend;
const backends: WasmBackend[] = [];
beforeAll(async () => {
  js = await al.initBackend('js');
  backends.push(await createWasmBackend({ threads: 1, nativeGemm: false }));
  backends.push(await createWasmBackend({ threads: 2, nativeGemm: false }));
  backends.push(await createWasmBackend({ threads: 2, nativeGemm: false, heapWeightBytes: 0 })); // weights in host memory
});
afterAll(() => { for (const b of backends) b.dispose(); al.disposeBackends(); });

/** act(x · Wᵀ + b) on `be`, fused and as three ops, and on the reference backend. */
function run(be: al.Backend, type: QuantType, raw: Uint8Array, M: number, N: number, K: number, act: UnaryFn | undefined) {
  const x = al.tensor(normal(M * K, 5), [M, K], 'f32', { backend: be });
  const b = al.tensor(normal(N, 6, 0.5), [N], 'f32', { backend: be });
  const w = QuantizedTensor.fromBytes(raw, type, [N, K], be);
  const fused = qlinear(x, w, b, act);
  const y = qmatmul(x, w);
  const z = al.add(y, b);
  const three = act ? al.unary(act, z) : z.share();
  const out = { fused: fused.dataSync() as Float32Array, three: three.dataSync() as Float32Array };
  for (const t of [x, b, fused, y, z, three]) t.dispose();
  w.dispose();
  return out;
}

describe('qlinear', () => {
  it('equals qmatmul, add and unary exactly on wasm (1 and 2 threads, host weights), and the reference within the q8 budget', () => {
    const [N, K] = [300, 512];
    for (const [type, enc] of ENCODE) {
      const raw = enc(normal(N * K, 7, 0.05));
      for (const act of ['gelu_tanh', 'silu', undefined] as const) {
        for (const M of [1, 3]) {
          const ref = run(js, type, raw, M, N, K, act).fused;
          for (const [i, be] of backends.entries()) {
            const { fused, three } = run(be, type, raw, M, N, K, act);
            let same = 0;
            let err = 0;
            let norm = 0;
            for (let i = 0; i < fused.length; i++) {
              if (Object.is(fused[i], three[i])) same++;
              err += (fused[i]! - ref[i]!) ** 2;
              norm += ref[i]! ** 2;
            }
            const nmse = err / norm;
            console.log(`qlinear ${type} M=${M} ${act ?? 'none'} wasm ${['1 thread', '2 threads', '2 threads, host weights'][i]}: NMSE vs reference ${nmse.toExponential(2)}`);
            expect(same).toBe(fused.length);
            expect(nmse).toBeLessThan(3e-4);
          }
        }
      }
    }
  }, 120_000);

  it('runs natively on wasm as one op, and as three ops where x requires grad', () => {
    const be = backends[1]!;
    const [N, K] = [64, 256];
    const w = QuantizedTensor.fromBytes(quantizeQ8_0(normal(N * K, 8, 0.05)), 'q8_0', [N, K], be);
    const x = al.tensor(normal(K, 9), [1, 1, K], 'f32', { backend: be });
    const b = al.tensor(normal(N, 10), [N], 'f32', { backend: be });
    const y = al.Tensor.empty([1, N], 'f32', be);
    const op = { op: 'qlinear', type: 'q8_0', act: 'gelu_tanh' } as const;
    const x2 = x.reshape([1, K]);
    expect(be.isNative(op, [x2.view(), w.raw.view(), b.view()], [y.view()])).toBe(true);
    const fused = qlinear(x, w, b, 'gelu_tanh'); // [1, 1, N]
    expect(fused.shape).toEqual([1, 1, N]);
    const xg = al.tensor(x.dataSync(), [1, 1, K], 'f32', { backend: be }).requireGrad();
    const viaTape = qlinear(xg, w, b, 'gelu_tanh');
    expect(Array.from(viaTape.dataSync())).toEqual(Array.from(fused.dataSync()));
    const short = al.tensor([1, 2], [2], 'f32', { backend: be });
    expect(() => qlinear(x, w, short, 'gelu_tanh')).toThrow(/qlinear: bias must be f32 \[64\]/);
    for (const t of [x, x2, b, y, fused, xg, viaTape, short]) t.dispose();
    w.dispose();
  }, 60_000);
});

describe('qmatmul on wasm rounds x to 8 bits once per unchanged x', () => {
  it('reuses the rounding for products of the same x, and redoes it after x is written in place or another x came between', () => {
    const be = backends[1]!;
    const [N, K] = [48, 256];
    const ws = [11, 12].map((seed) => QuantizedTensor.fromBytes(quantizeQ8_0(normal(N * K, seed, 0.05)), 'q8_0', [N, K], be));
    const wj = [11, 12].map((seed) => QuantizedTensor.fromBytes(quantizeQ8_0(normal(N * K, seed, 0.05)), 'q8_0', [N, K], js));
    const on = (data: Float32Array, b: al.Backend) => al.tensor(data, [1, K], 'f32', { backend: b });
    const calls: string[] = [];
    const run0 = be.pool.run.bind(be.pool);
    be.pool.run = (k: string, a: readonly number[], n?: number) => { calls.push(k); run0(k, a, n); };
    try {
      const xa = normal(K, 13);
      const xb = normal(K, 14);
      const x = on(xa, be);
      const other = on(xb, be);
      const products = (t: al.Tensor) => ws.map((w) => qmatmul(t, w));
      const check = (ys: al.Tensor[], data: Float32Array) => {
        const xr = on(data, js);
        ys.forEach((y, i) => {
          const r = qmatmul(xr, wj[i]!); // the reference: no rounding of x at all
          let e = 0;
          let n = 0;
          const a = y.dataSync();
          const b = r.dataSync();
          for (let j = 0; j < N; j++) { e += (a[j]! - b[j]!) ** 2; n += b[j]! ** 2; }
          expect(e / n).toBeLessThan(3e-4);
          r.dispose();
          y.dispose();
        });
        xr.dispose();
      };
      calls.length = 0;
      check(products(x), xa); // two products of x: one rounding
      expect(calls.filter((k) => k === 'qm_quant_x')).toHaveLength(1);
      calls.length = 0;
      check(products(other), xb); // another x: rounded again
      check(products(x), xa); // x again after another came between: rounded again
      expect(calls.filter((k) => k === 'qm_quant_x')).toHaveLength(2);
      calls.length = 0;
      assign(x, other); // x written in place: same buffer, new contents
      check(products(x), xb);
      expect(calls.filter((k) => k === 'qm_quant_x')).toHaveLength(1);
      x.dispose();
      other.dispose();
    } finally {
      be.pool.run = run0;
      for (const w of [...ws, ...wj]) w.dispose();
    }
  }, 60_000);
});

describe('a quantized GPT-2 on wasm', () => {
  it('decodes to the same logits with the MLP hooked (product and activation apart) as without (one qlinear), and hook_post = gelu(hook_pre)', async () => {
    const tmp = await mkdtemp(join(tmpdir(), 'actlab-qlinear-'));
    const fx = new URL('../fixtures/hf/gpt2/', import.meta.url).pathname;
    const st = await SafetensorsFile.open(await NodeFileSource.open(`${fx}model.safetensors`));
    const path = join(tmp, 'gpt2-Q8_0.gguf');
    await convertToGguf(new NodeFileStore(), path, st, JSON.parse(readFileSync(`${fx}config.json`, 'utf8')) as Record<string, unknown>, js, { type: 'Q8_0' });
    await st.close();
    const be = backends[1]!;
    const { model } = await al.loadModel(path, { backend: be });
    try {
      const ids = [3, 9, 1, 4, 7];
      const decode = (withHooks: boolean) => {
        const kv = new KVCache();
        const out: Float32Array[] = [];
        const cached: Record<string, Float32Array>[] = [];
        for (const id of ids) {
          const t = al.tensor([id], [1, 1], 'i32', { backend: be });
          if (withHooks) {
            const { logits, cache } = al.runWithCache(model, t, { cache: kv, names: /mlp\.hook_(pre|post)$/ });
            out.push(logits.dataSync() as Float32Array);
            cached.push({ pre: cache.get('blocks.0.mlp.hook_pre').dataSync() as Float32Array, post: cache.get('blocks.0.mlp.hook_post').dataSync() as Float32Array });
            logits.dispose();
            cache.dispose();
          } else {
            const logits = model.forward(t, { cache: kv });
            out.push(logits.dataSync() as Float32Array);
            logits.dispose();
          }
          t.dispose();
        }
        kv.dispose();
        return { out, cached };
      };
      const plain = decode(false);
      const hooked = decode(true);
      for (let s = 0; s < ids.length; s++) {
        expect(Array.from(hooked.out[s]!)).toEqual(Array.from(plain.out[s]!));
        const pre = al.tensor(hooked.cached[s]!.pre, [hooked.cached[s]!.pre.length], 'f32', { backend: be });
        const g = al.unary('gelu_tanh', pre);
        expect(Array.from(g.dataSync())).toEqual(Array.from(hooked.cached[s]!.post));
        pre.dispose();
        g.dispose();
      }
    } finally {
      model.dispose();
      await rm(tmp, { recursive: true, force: true });
    }
  }, 120_000);
});
