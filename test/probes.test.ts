// Probes: logistic and linear (ridge) probes recover a planted linear labelling far above the
// majority baseline; per-layer curves over a store read token identity from the embedding.
import { beforeAll, describe, expect, it } from 'vitest';
import * as al from '../src/index.js';
import { BytesSource } from '../src/io/byte-source.js';
import { MemoryStore } from '../src/io/memory-store.js';
import { randomModel } from '../src/models/random.js';
import { ActivationStore } from '../src/store/reader.js';
import { harvest } from '../src/store/writer.js';
import { probeLayers, trainProbe } from '../src/probes/probe.js';

let wasm: al.Backend;
beforeAll(async () => { wasm = await al.initBackend('wasm'); await al.initBackend('js'); });

describe('probes', () => {
  it('logistic and linear probes recover a planted linear labelling', () => {
    const rng = new al.Rng(3);
    const n = 3000;
    const d = 12;
    const C = 4;
    const Wstar = Float32Array.from({ length: d * C }, () => rng.normal());
    const x = Float32Array.from({ length: n * d }, () => rng.normal() * 2 + 1);
    const y = new Int32Array(n);
    for (let r = 0; r < n; r++) {
      let best = -Infinity;
      for (let c = 0; c < C; c++) { let s = 0; for (let j = 0; j < d; j++) s += x[r * d + j]! * Wstar[j * C + c]!; if (s > best) { best = s; y[r] = c; } }
    }
    const lg = trainProbe(x, y, d, C, { kind: 'logistic', backend: wasm, steps: 200 });
    const ln = trainProbe(x, y, d, C, { kind: 'linear' });
    console.log(`planted 4-class linear labels: logistic test ${lg.testAccuracy.toFixed(3)} (train ${lg.trainAccuracy.toFixed(3)}), ridge test ${ln.testAccuracy.toFixed(3)}, majority baseline ${lg.baselineAccuracy.toFixed(3)}`);
    expect(lg.testAccuracy).toBeGreaterThan(0.9);
    expect(ln.testAccuracy).toBeGreaterThan(0.7);
    expect(lg.testAccuracy - lg.baselineAccuracy).toBeGreaterThan(0.3);
    expect(() => trainProbe(x, Int32Array.from(y, (v) => v + 1), d, C)).toThrow(/label 4 at row \d+ is outside 0..3/);
  }, 60_000);

  it('per-layer curves: the token is linearly readable from the embedding', async () => {
    const js = al.getBackend('js');
    const model = randomModel({ model_type: 'llama', vocab_size: 64, max_position_embeddings: 64, hidden_size: 32, num_attention_heads: 4, num_key_value_heads: 2, num_hidden_layers: 2, intermediate_size: 40 }, js, { seed: 1 });
    const tok = {
      kind: 'hf' as const, vocabSize: 64, bosId: 1, eosId: null, eosIds: [], padId: null, chatTemplate: null,
      encode: (t: string, o?: { addSpecialTokens?: boolean }) => [...(o?.addSpecialTokens === false ? [] : [1]), ...[...t].map((c) => 2 + (c.charCodeAt(0) % 60))],
      decode: () => '', idToToken: () => undefined, tokenToId: () => undefined, applyChatTemplate: () => { throw new Error('none'); },
    };
    const rng = new al.Rng(2);
    const text = Array.from({ length: 80 }, () => Array.from({ length: 40 }, () => 'abcdefghij'[rng.int(10)]).join('')).join('\n\n');
    const store = new MemoryStore();
    await harvest({ model, tokenizer: tok, corpus: new BytesSource(new TextEncoder().encode(text), 'c.txt'), outDir: 's', context: 32, hooks: ['blocks.0.hook_resid_pre', 'blocks.1.hook_resid_post'], store, source: 'random' });
    const s = await ActivationStore.open('s', { store });
    const curve = await probeLayers(s, ['blocks.0.hook_resid_pre', 'blocks.1.hook_resid_post'], { label: 'token', classes: 10, kind: 'logistic', backend: wasm, steps: 150 });
    console.log(`token probe: ${curve.layers.map((l) => `${l.hook} test ${l.testAccuracy.toFixed(3)} (baseline ${l.baselineAccuracy.toFixed(3)})`).join('; ')}`);
    expect(curve.classes).toBe(10);
    expect(curve.layers[0]!.testAccuracy).toBeGreaterThan(0.95);
    const seen = await probeLayers(s, ['blocks.1.hook_resid_post'], { label: 'seen-before', kind: 'linear' });
    expect(seen.classes).toBe(2);
    expect(seen.layers[0]!.test).toBeGreaterThan(0);
  }, 60_000);
});
