// Neuron top-activating examples and facets over an activation store, with planted ground truth:
// a random Llama whose embedding gives unit 7 the value 50 on byte 'Q' and 40 on byte 'Z' (and
// otherwise-different directions, 3 for 'Q' and 5 for 'Z'). The top examples of hook_embed unit 7
// must be every 'Q' and then every 'Z' of the corpus, and two facets must split them exactly.
import { describe, expect, it } from 'vitest';
import * as al from '../src/index.js';
import { ARCHITECTURES } from '../src/models/registry.js';
import { MemoryStore } from '../src/io/memory-store.js';
import { ActivationStore } from '../src/store/reader.js';
import { harvest } from '../src/store/writer.js';
import { topActivatingExamples } from '../src/analysis/neurons.js';
import type { Tokenizer } from '../src/tokenizer/tokenizer.js';
import { PlantedWeights, plantedLlamaConfig } from './helpers/planted-weights.js';

const CONFIG = plantedLlamaConfig(260);
const Q = 81;
const Z = 90;

/** Planted: the embedding rows of 'Q' and 'Z' are large in dimensions 7 and 3 (Q), 7 and 5 (Z). */
const weights = (backend: al.Backend) => new PlantedWeights(backend, {
  normStd: 0.1,
  plant: (name, data, shape) => {
    if (name !== 'model.embed_tokens.weight') return;
    const d = shape[1]!;
    data[Q * d + 7] = 50; data[Q * d + 3] = 30;
    data[Z * d + 7] = 40; data[Z * d + 5] = 30;
  },
});

function byteTokenizer(): Tokenizer {
  return {
    kind: 'hf', vocabSize: 258, bosId: 256, eosId: 257, eosIds: [257], padId: null, chatTemplate: null,
    encode: (text, o) => [...(o?.addSpecialTokens === false ? [] : [256]), ...new TextEncoder().encode(text)],
    decode: (ids) => new TextDecoder().decode(Uint8Array.from(ids.filter((i) => i < 256))),
    idToToken: (id) => (id < 256 ? String.fromCharCode(id) : id === 256 ? '<s>' : undefined),
    tokenToId: () => undefined,
    applyChatTemplate: () => { throw new Error('no chat template'); },
  };
}

describe('neuron top-activating examples', () => {
  it('finds every planted token, largest first, with context windows; facets split Q from Z', async () => {
    const backend = await al.initBackend('js');
    const model = new ARCHITECTURES.llama!(CONFIG, weights(backend), backend);
    const text = Array.from({ length: 12 }, (_, i) => `line ${i} has ${i % 2 ? 'Z' : 'Q'} in it and more words here\n\n`).join('');
    const store = new MemoryStore();
    const tokenizer = byteTokenizer();
    await harvest({ model, tokenizer, corpus: new al.BytesSource(new TextEncoder().encode(text), 'c.txt'), hooks: ['hook_embed'], outDir: 'out', context: 16, store, contextsPerShard: 3 });
    const s = await ActivationStore.open('out', { store });
    const r = await topActivatingExamples(s, { hook: 'hook_embed', neuron: 7, k: 12, facetPool: 12, facets: 2, tokenizer, before: 4, after: 1 });
    expect(r.scanned).toBe(s.tokenCount);
    expect(r.examples.map((e) => e.token)).toEqual([...'QQQQQQZZZZZZ']);
    expect(r.examples.slice(0, 6).every((e) => Math.abs(e.value - 50) < 1e-4)).toBe(true);
    expect(r.examples[0]!.text).toMatch(/\[\[Q\]\]/);
    expect(r.examples[0]!.window[r.examples[0]!.at]).toBe(Q);
    expect(r.facets.map((f) => f.size)).toEqual([6, 6]);
    expect(r.facets.map((f) => f.top_tokens[0]).sort()).toEqual(['Q×6', 'Z×6']);
    model.dispose();
  });
});
