// Steering vectors from contrastive data on a small random model with a character tokenizer:
// mean_diff equals the hand difference of means of activations taken from each text run alone
// (so the left-padded batches read the right tokens), PCA finds a planted component with its
// variance share, repeng's sign rule, the layer sweep's separation, ActAdd, and bad input.
import { beforeAll, describe, expect, it } from 'vitest';
import * as al from '../src/index.js';
import { randomModel } from '../src/models/random.js';
import type { CausalLM } from '../src/models/model.js';
import type { Tokenizer } from '../src/tokenizer/tokenizer.js';
import { parseContrastJsonl } from '../src/interventions/contrastive.js';
import { actAdd, firstPrincipalComponent, steeringIntervention, steeringVectors } from '../src/interventions/steering-vectors.js';
import { TINY } from './helpers/tiny-configs.js';

let js: al.Backend;
let model: CausalLM;

/** Characters to ids 2..60 (1 is BOS). */
const tok = {
  kind: 'hf', vocabSize: 61, bosId: 1, eosId: 0, eosIds: [0], padId: null, chatTemplate: null,
  encode: (t: string, o?: { addSpecialTokens?: boolean }) => [...(o?.addSpecialTokens === false ? [] : [1]), ...[...t].map((c) => 2 + (c.charCodeAt(0) % 59))],
  decode: (ids: readonly number[]) => ids.map((i) => String.fromCharCode(i)).join(''),
  idToToken: () => undefined, tokenToId: () => undefined, applyChatTemplate: () => '',
} as unknown as Tokenizer;

beforeAll(async () => {
  js = await al.initBackend('js');
  model = randomModel(TINY.gpt2!, js, { seed: 9, std: 0.2 });
});

const pairs = [
  ['I love the cat', 'I hate the cat'], ['love it', 'hate it'], ['we love you so', 'we hate you so'],
  ['love', 'hate'], ['so much love here', 'so much hate here'], ['love dogs', 'hate dogs'],
];
const jsonl = pairs.map(([p, n]) => JSON.stringify({ positive: p, negative: n })).join('\n');

function actAlone(text: string, hook: string, read: 'last' | number): Float32Array {
  const ids = tok.encode(text);
  const { logits, cache } = al.runWithCache(model, al.tensor(ids, [1, ids.length], 'i32', { backend: js }), { names: [hook] });
  logits.dispose();
  const D = model.dims.dModel;
  const j = read === 'last' ? ids.length - 1 : read < 0 ? ids.length + read : read;
  const row = Float32Array.from((cache.get(hook).dataSync() as Float32Array).subarray(j * D, (j + 1) * D));
  cache.dispose();
  return row;
}

describe('steering vectors', () => {
  it('mean_diff equals the hand difference of means (texts run alone) at the last and a given token', () => {
    const set = parseContrastJsonl(jsonl);
    for (const read of ['last', -2] as const) {
      const sv = steeringVectors(model, tok, set, { method: 'mean_diff', read, batchSize: 4 });
      for (const layer of [0, 1]) {
        const hook = `blocks.${layer}.hook_resid_post`;
        const D = model.dims.dModel;
        const want = new Float64Array(D);
        for (const [p, n] of pairs) {
          const a = actAlone(p!, hook, read);
          const b = actAlone(n!, hook, read);
          for (let i = 0; i < D; i++) want[i]! += (a[i]! - b[i]!) / pairs.length;
        }
        let err = 0;
        sv.vectors.get(layer)!.forEach((x, i) => { err = Math.max(err, Math.abs(x - want[i]!)); });
        console.log(`mean_diff read ${read} layer ${layer}: max |batched - alone| = ${err.toExponential(2)}`);
        expect(err).toBeLessThan(1e-5);
      }
      expect(sv.sweep.map((s) => s.layer)).toEqual([0, 1]);
      for (const s of sv.sweep) {
        expect(s.accuracy).toBe(1); // the mean difference separates its own training pairs here
        expect(s.heldOutAccuracy).not.toBeNull();
        expect(s.diffNorm).toBeGreaterThan(0);
      }
    }
  });

  it('PCA finds a planted component and its variance share (hand computation)', () => {
    // Rows ±3·u ± 1·w for orthonormal u, w in 8-D: the first component is ±u, explaining 9/10.
    const u = Float32Array.from([1, 2, 0, -1, 0, 3, 1, 0]);
    const w = Float32Array.from([2, -1, 1, 0, 0, 0, 0, 1]);
    const nu = Math.hypot(...u);
    u.forEach((x, i) => { u[i] = x / nu; });
    const dot = [...u].reduce((s, x, i) => s + x * w[i]!, 0);
    w.forEach((x, i) => { w[i] = x - dot * u[i]!; });
    const nw = Math.hypot(...w);
    w.forEach((x, i) => { w[i] = x / nw; });
    const rows = [[3, 1], [3, -1], [-3, 1], [-3, -1]].map(([a, b]) => Float32Array.from(u, (x, i) => a! * x + b! * w[i]! + 0.5));
    const { direction, explained } = firstPrincipalComponent(rows);
    const cos = Math.abs([...direction].reduce((s, x, i) => s + x * u[i]!, 0));
    console.log(`PCA: |cos(direction, u)| = ${cos.toFixed(8)}, explained ${explained.toFixed(6)} (hand 0.9)`);
    expect(cos).toBeGreaterThan(1 - 1e-6);
    expect(explained).toBeCloseTo(0.9, 5);
  });

  it('pca_diff and pca_center: unit vectors, signed so positives project higher (repeng)', () => {
    const set = parseContrastJsonl(jsonl);
    for (const method of ['pca_diff', 'pca_center'] as const) {
      const sv = steeringVectors(model, tok, set, { method, layers: [1] });
      const v = sv.vectors.get(1)!;
      expect(Math.hypot(...v)).toBeCloseTo(1, 5);
      const s = sv.sweep[0]!;
      expect(s.accuracy).toBeGreaterThanOrEqual(0.5);
      expect(s.explainedVariance).toBeGreaterThan(0);
      console.log(`${method}: pair accuracy ${s.accuracy}, held-out ${s.heldOutAccuracy}, d ${s.cohenD.toFixed(2)}, explained ${s.explainedVariance!.toFixed(3)}`);
    }
  });

  it('a steering vector becomes an add intervention that changes the logits as adding by hand', () => {
    const sv = steeringVectors(model, tok, parseContrastJsonl(jsonl), { layers: [0] });
    const iv = steeringIntervention(sv, 0, 4);
    const ids = tok.encode('the cat');
    const input = al.tensor(ids, [1, ids.length], 'i32', { backend: js });
    const a = al.withInterventions(model, [iv], () => model.forward(input));
    const v = sv.vectors.get(0)!;
    const b = al.runWithHooks(model, input, { hooks: [['blocks.0.hook_resid_post', (t) => al.add(t, al.tensor(v.map((x) => 4 * x), [v.length], 'f32', { backend: js }))]] });
    let err = 0;
    const ad = a.dataSync();
    b.dataSync().forEach((x, i) => { err = Math.max(err, Math.abs(x - ad[i]!)); });
    expect(err).toBeLessThan(1e-5);
  });

  it('ActAdd: per-position differences of resid_pre, padded with spaces', () => {
    const ivs = actAdd(model, tok, 'love', 'hate it', { layer: 1, coefficient: 5 });
    expect(ivs.length).toBe(8); // BOS + 7 characters
    const a = actAlone('love   ', 'blocks.1.hook_resid_pre', 3);
    const b = actAlone('hate it', 'blocks.1.hook_resid_pre', 3);
    const v = ivs[3]! as { vector: number[]; positions: number[]; strength: number };
    expect(v.positions).toEqual([3]);
    expect(v.strength).toBe(5);
    v.vector.forEach((x, i) => expect(x).toBeCloseTo(a[i]! - b[i]!, 5));
    expect((ivs[0]! as { vector: number[] }).vector.every((x) => x === 0)).toBe(true); // BOS is shared
  });

  it('bad input: empty sets, one-sided sets, malformed lines, PCA on unpaired data, layers out of range', () => {
    expect(() => parseContrastJsonl('\n\n')).toThrow(/is empty/);
    expect(() => parseContrastJsonl('{"text": "a", "label": 1}')).toThrow(/no negative examples/);
    expect(() => parseContrastJsonl('{"positive": "a", "negative": ""}', 'pairs.jsonl')).toThrow(/pairs.jsonl:1: 'negative' must be a non-empty string/);
    expect(() => parseContrastJsonl('{"positive": "a"')).toThrow(/:1: not valid JSON/);
    const unpaired = parseContrastJsonl('{"text": "love", "label": "positive"}\n{"text": "hate", "label": "negative"}\n{"text": "hate it", "label": 0}');
    expect(() => steeringVectors(model, tok, unpaired, { method: 'pca_diff' })).toThrow(/needs paired items/);
    expect(steeringVectors(model, tok, unpaired, { layers: [1] }).sweep[0]!.accuracy).toBeGreaterThanOrEqual(0);
    expect(() => steeringVectors(model, tok, parseContrastJsonl(jsonl), { layers: [2] })).toThrow(/layer 2 is out of range; this gpt2 model has 2 blocks/);
    expect(() => steeringVectors(model, tok, { pairs: [], positives: [], negatives: [] })).toThrow(/is empty/);
  });
});
