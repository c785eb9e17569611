// GGUF models with their matrices kept in blocks on the WebGPU backend: prefill (the block GEMM,
// x as it is, in f32) gives the logits of the same file loaded dequantized on the reference
// backend; decode one token at a time (the block GEMV, which rounds x to 8 bits per 32 values for
// Q8_0 / Q4_0 as ggml does) gives the step logits of the same file on wasm, whose kernels round x
// the same way, and is as far from the reference's as wasm's are.
// Runs wherever an adapter exists (SwiftShader locally, see webgpu-helpers.ts); skips elsewhere.
import { mkdtemp, rm } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as al from '../src/index.js';
import { convertToGguf } from '../src/formats/gguf-convert.js';
import { SafetensorsFile } from '../src/formats/safetensors.js';
import { NodeFileSource } from '../src/io/node/file-source.js';
import { NodeFileStore } from '../src/io/node/file-store.js';
import type { Backend } from '../src/tensor/backend.js';
import { openWebGpu } from './webgpu-helpers.js';

const { backend, reason } = await openWebGpu();
if (!backend) console.log(`webgpu quantized-model tests skipped: ${reason}`);
const ROOT = new URL('../fixtures/hf/', import.meta.url).pathname;

let tmp = '';
let js: Backend;
beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'actlab-webgpu-quant-'));
  js = await al.initBackend('js');
});
afterAll(async () => { await rm(tmp, { recursive: true, force: true }); backend?.dispose(); });

describe.skipIf(!backend)('quantized GGUF models on webgpu', () => {
  it.each(['Q8_0', 'Q4_0'] as const)('llama3 %s: prefill logits equal the dequantized load on the reference, decode steps those of wasm', async (type) => {
    const gpu = backend as Backend;
    const st = await SafetensorsFile.open(await NodeFileSource.open(`${ROOT}llama3/model.safetensors`));
    const path = join(tmp, `llama3-${type}.gguf`);
    const config = JSON.parse(readFileSync(`${ROOT}llama3/config.json`, 'utf8')) as Record<string, unknown>;
    await convertToGguf(new NodeFileStore(), path, st, config, js, { type, metadata: { 'general.name': 'llama3' } });
    await st.close();
    const g = await al.loadModel(path, { backend: gpu });
    const r = await al.loadModel(path, { backend: js, quantized: 'dequantize' });
    expect(g.model.weightMemory().quantized).toBeGreaterThan(0);
    const ids = [1, 5, 9, 2, 7, 3, 11, 4, 30, 31, 40, 2];
    const lg = g.model.forward(al.tensor(ids, [1, ids.length], 'i32', { backend: gpu }));
    const lr = r.model.forward(al.tensor(ids, [1, ids.length], 'i32', { backend: js }));
    const a = lr.dataSync();
    const b = await lg.data();
    let num = 0; let den = 0;
    for (let i = 0; i < a.length; i++) { num += (a[i]! - b[i]!) ** 2; den += a[i]! ** 2; }
    console.log(`llama3 ${type} on webgpu (blocks kept) vs dequantized on js: logits NMSE ${(num / den).toExponential(2)}`);
    expect(num / den).toBeLessThan(1e-9);
    const w = await al.loadModel(path, { backend: 'wasm' });
    // teacher-forced decode: one position per step through a KV cache (M = 1: the GEMV)
    const steps = async (m: typeof w.model) => {
      const cache = new al.KVCache();
      const out: number[] = [];
      for (const id of ids) {
        const y = m.forward(al.tensor([id], [1, 1], 'i32', { backend: m.backend }), { cache });
        out.push(...((await y.data()) as Float32Array));
        y.dispose();
      }
      cache.dispose();
      return out;
    };
    const [sg, sw, sr] = [await steps(g.model), await steps(w.model), await steps(r.model)];
    const nmse = (x: number[], ref: number[]) => { let e = 0, d = 0; for (let i = 0; i < ref.length; i++) { e += (x[i]! - ref[i]!) ** 2; d += ref[i]! ** 2; } return e / d; };
    console.log(`llama3 ${type} decode steps on webgpu: logits NMSE ${nmse(sg, sw).toExponential(2)} to wasm (same rounding of x), ${nmse(sg, sr).toExponential(2)} to the reference (wasm's ${nmse(sw, sr).toExponential(2)})`);
    expect(nmse(sg, sw)).toBeLessThan(1e-8);
    // over the layers the per-product rounding adds up (the op budget is 3e-4 per product): as on wasm
    expect(nmse(sg, sr)).toBeLessThan(1.01 * nmse(sw, sr) + 1e-9);
    expect(nmse(sg, sr)).toBeLessThan(1e-2);
    lg.dispose();
    lr.dispose();
    g.model.dispose();
    r.model.dispose();
    w.model.dispose();
  }, 600_000);
});
