// Quantized weights outside the wasm memory: with a cap on the memory (maxBytes) smaller than the
// model's weights, the weights live in host memory (heapWeightBytes) and qmatmul streams them in
// by row panels; the model runs and gives the logits and tokens of the same model held inside the
// memory. (The real limit this lifts is the 4 GiB of a wasm32 memory; a model that large does not
// fit a test, so the cap stands in for it.)
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as al from '../src/index.js';
import { createWasmBackend } from '../src/backends/wasm/backend.js';
import { convertToGguf } from '../src/formats/gguf-convert.js';
import { tensorWeights } from '../src/formats/weight-source.js';
import { NodeFileStore } from '../src/io/node/file-store.js';
import { randomModel } from '../src/models/random.js';
import { QuantizedTensor } from '../src/tensor/quantized.js';
import { quantizeQ8_0 } from '../src/formats/gguf-quants.js';
import { qdequantize, qembedding } from '../src/ops/quant.js';
import { Rng } from '../src/ops/creation.js';

const CONFIG = {
  model_type: 'llama', hidden_size: 256, intermediate_size: 1024, num_hidden_layers: 4, vocab_size: 4096,
  num_attention_heads: 4, num_key_value_heads: 2, head_dim: 64, rms_norm_eps: 1e-6, max_position_embeddings: 128,
  tie_word_embeddings: false, attention_bias: false, rope_theta: 10000,
};
const CAP = 4 << 20;

let tmp = '';
let path = '';
beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'actlab-host-weights-'));
  path = join(tmp, 'llama-q8_0.gguf');
  const js = await al.initBackend('js');
  const model = randomModel(CONFIG, js, { seed: 3, std: 0.05 });
  const params = new Map(model.parameters());
  const source = tensorWeights(params);
  await convertToGguf(new NodeFileStore(), path, source, CONFIG, js, { type: 'Q8_0', metadata: { 'general.name': 'random llama' } });
  model.dispose();
}, 120_000);
afterAll(async () => { await rm(tmp, { recursive: true, force: true }); al.disposeBackends(); });

describe('weights outside the wasm memory', () => {
  it('a model whose quantized weights exceed the memory cap runs from host memory, with the in-memory logits and tokens', async () => {
    const inside = await createWasmBackend({ threads: 2 });
    // small panels: every matrix is copied in several pieces
    const capped = await createWasmBackend({ threads: 2, maxBytes: CAP, heapWeightBytes: 0, weightPanelBytes: 40_000 });
    try {
      const a = await al.loadModel(path, { backend: inside });
      const b = await al.loadModel(path, { backend: capped });
      const wa = a.model.weightMemory();
      const info = capped.info();
      console.log(`weights ${(wa.bytes / 2 ** 20).toFixed(2)} MiB (${wa.quantized} matrices Q8_0); capped backend: memory ${(Number(info.memoryBytes) / 2 ** 20).toFixed(2)} MiB of a ${CAP / 2 ** 20} MiB cap, ${(Number(info.hostWeightBytes) / 2 ** 20).toFixed(2)} MiB of weights in host memory`);
      expect(wa.quantized).toBe(4 * 7 + 2);
      expect(wa.bytes).toBeGreaterThan(CAP);
      expect(Number(info.hostWeightBytes)).toBeGreaterThan(CAP);
      const ids = [1, 17, 300, 4000, 52, 9, 77, 1024];
      const la = a.model.forward(al.tensor(ids, [1, ids.length], 'i32', { backend: inside }));
      const lb = b.model.forward(al.tensor(ids, [1, ids.length], 'i32', { backend: capped }));
      const da = la.dataSync();
      const db = lb.dataSync();
      let err = 0;
      for (let i = 0; i < da.length; i++) err = Math.max(err, Math.abs(da[i]! - db[i]!));
      console.log(`prefill logits, host weights vs in memory: max |difference| ${err}`);
      expect(err).toBe(0);
      const ga = al.generate(a.model, [ids], { maxNewTokens: 6 });
      const gb = al.generate(b.model, [ids], { maxNewTokens: 6 });
      expect(gb.ids).toEqual(ga.ids);
      expect(Number(capped.info().memoryBytes)).toBeLessThanOrEqual(CAP);
      for (const t of [la, lb]) t.dispose();
      a.model.dispose();
      b.model.dispose();
      expect(Number(capped.info().hostWeightBytes)).toBe(0);
    } finally {
      inside.dispose();
      capped.dispose();
    }
    // the cap is real: the same weights kept inside that memory do not fit
    const tight = await createWasmBackend({ threads: 1, maxBytes: CAP, heapWeightBytes: Infinity });
    try {
      await expect(al.loadModel(path, { backend: tight })).rejects.toThrow(/bytes this backend may use \(maxBytes\)/);
    } finally {
      tight.dispose();
    }
  }, 120_000);

  it('heapWeightBytes splits weights between the memory and host memory; other ops read host weights through the reference', async () => {
    const js = await al.initBackend('js');
    const be = await createWasmBackend({ threads: 2, heapWeightBytes: 10_000 });
    try {
      const r = new Rng(5);
      const raw = quantizeQ8_0(Float32Array.from({ length: 64 * 256 }, () => r.normal())); // 17408 bytes: past the cap
      const small = QuantizedTensor.fromBytes(quantizeQ8_0(Float32Array.from({ length: 8 * 256 }, () => r.normal())), 'q8_0', [8, 256], be);
      const w = QuantizedTensor.fromBytes(raw, 'q8_0', [64, 256], be);
      expect(be.info().hostWeightBytes).toBe(raw.byteLength); // the small one went inside
      const wj = QuantizedTensor.fromBytes(raw, 'q8_0', [64, 256], js);
      const ids = al.tensor([3, 63, 0], [3], 'i32', { backend: be });
      const e = qembedding(w, ids);
      const ej = qembedding(wj, al.tensor([3, 63, 0], [3], 'i32', { backend: js }));
      expect(Array.from(e.dataSync())).toEqual(Array.from(ej.dataSync()));
      const f = qdequantize(w);
      expect(Array.from(f.dataSync())).toEqual(Array.from(qdequantize(wj).dataSync()));
      for (const t of [ids, e, ej, f]) t.dispose();
      for (const q of [small, w, wj]) q.dispose();
      expect(be.info().hostWeightBytes).toBe(0);
    } finally {
      be.dispose();
    }
  });
});
