// Neuron top-activating examples and facets over an activation store, with planted ground truth:
// a random Llama whose embedding gives unit 7 the value 50 on byte 'Q' and 40 on byte 'Z' (and
// otherwise-different directions, 3 for 'Q' and 5 for 'Z'). The top examples of hook_embed unit 7
// must be every 'Q' and then every 'Z' of the corpus, and two facets must split them exactly.
import { describe, expect, it } from 'vitest';
import * as al from '../src/index.js';
import { ARCHITECTURES } from '../src/models/registry.js';
import { WeightMap } from '../src/models/weights.js';
import { Rng } from '../src/ops/creation.js';
import { MemoryStore } from '../src/io/memory-store.js';
import { ActivationStore } from '../src/store/reader.js';
import { harvest } from '../src/store/writer.js';
import { topActivatingExamples } from '../src/analysis/neurons.js';
import type { Tokenizer } from '../src/tokenizer/tokenizer.js';

const CONFIG = { model_type: 'llama', vocab_size: 260, max_position_embeddings: 64, hidden_size: 32, num_attention_heads: 4, num_key_value_heads: 2, num_hidden_layers: 2, intermediate_size: 40, rope_theta: 10000 };
const Q = 81;
const Z = 90;

class Weights extends WeightMap {
  private made = new Map<string, al.Tensor>();
  private seed = 1;
  constructor(private backend: al.Backend) { super(new Map(), 'planted'); }
  override has(name: string): boolean { return this.made.has(name); }
  override get(name: string, shape?: readonly number[]): al.Tensor {
    const have = this.made.get(name);
    if (have) return have;
    const rng = new Rng(this.seed++);
    const isNorm = /norm/.test(name);
    const data = Float32Array.from({ length: shape!.reduce((a, b) => a * b, 1) }, () => (isNorm ? 1 : 0) + rng.normal() * (isNorm ? 0.1 : 0.2));
    if (name === 'model.embed_tokens.weight') {
      const d = shape![1]!;
      data[Q * d + 7] = 50; data[Q * d + 3] = 30;
      data[Z * d + 7] = 40; data[Z * d + 5] = 30;
    }
    const t = al.tensor(data, shape!, 'f32', { backend: this.backend });
    this.made.set(name, t);
    return t;
  }
  override maybe(): al.Tensor | undefined { return undefined; }
  override dispose(): void { for (const t of this.made.values()) t.dispose(); }
}

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
    const model = new ARCHITECTURES.llama!(CONFIG, new Weights(backend), backend);
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
