// Neuron top-activating examples over a corpus, from an activation store (`actlab cache`): the k
// positions where one unit of one hook is largest, with their context windows; and facets, after
// Multifaceted Feature Visualization (Nguyen, Yosinski & Clune 2016, §2): the unit's top examples
// (default 50) clustered with k-means (default 3 facets) on the whole hook's activation vector at
// each example (the paper clusters fc7 codes), so each facet is one kind of input that drives the
// unit; for text a facet is shown as its examples and their most common tokens.
// Not for: harvesting the store (src/store/writer.ts).
import { ActivationStore } from '../store/reader.js';
import type { Analysis } from './registry.js';
import type { Backend } from '../tensor/backend.js';
import type { Tokenizer } from '../tokenizer/tokenizer.js';
import { tokenLabel } from './acts.js';
import { kmeans } from './stats.js';

export interface NeuronOptions {
  hook: string;
  neuron: number;
  /** Examples listed (default 10). */
  k?: number;
  /** Tokens of context before and after each example (default 8 and 2). */
  before?: number;
  after?: number;
  /** Top examples clustered into facets (default 50) and the number of facets (default 3; 0 skips). */
  facetPool?: number;
  facets?: number;
  /** Contexts read per batch (default 16). */
  batchContexts?: number;
  tokenizer?: Tokenizer;
  seed?: number;
  /** Where the stored batches are read into (default: the default backend). */
  backend?: Backend;
}

export interface NeuronExample {
  value: number;
  context: number;
  pos: number;
  token: string;
  /** Token ids of the window and the index of the example within it. */
  window: number[];
  at: number;
  text: string;
}

export interface NeuronResult {
  hook: string;
  neuron: number;
  examples: NeuronExample[];
  facets: { size: number; top_tokens: string[]; examples: NeuronExample[] }[];
  /** Rows (positions) scanned. */
  scanned: number;
}

export async function topActivatingExamples(store: ActivationStore, o: NeuronOptions): Promise<NeuronResult> {
  const row = store.rowShape(o.hook, 'tokens');
  if (row.length !== 1) throw new Error(`neurons: '${o.hook}' rows are [${row.join(', ')}]; pick a hook with one vector per position (residual or MLP)`);
  const units = row[0]!;
  if (!Number.isInteger(o.neuron) || o.neuron < 0 || o.neuron >= units) throw new RangeError(`neurons: unit ${o.neuron} out of range for ${o.hook} (0..${units - 1})`);
  const k = o.k ?? 10;
  const pool = Math.max(k, o.facetPool ?? 50);
  const P = store.manifest.context;
  const bc = o.batchContexts ?? 16;
  // Candidates kept sorted, largest first; each with its full activation vector (for facets).
  const best: { value: number; context: number; pos: number; vec: Float32Array }[] = [];
  const acts = store.batches({ hook: o.hook, batchSize: bc, flatten: 'contexts', backend: o.backend });
  const toks = store.batches({ hook: 'tokens', batchSize: bc, flatten: 'contexts', backend: o.backend });
  const tokens: Int32Array[] = [];
  let context = 0;
  for (;;) {
    const [a, t] = await Promise.all([acts.next(), toks.next()]);
    if (a.done || t.done) break;
    const data = a.value.dataSync() as Float32Array; // [contexts, pos, units]
    const ids = t.value.dataSync() as Int32Array; // [contexts, pos]
    const n = a.value.shape[0]!;
    a.value.dispose();
    t.value.dispose();
    for (let c = 0; c < n; c++) {
      tokens.push(ids.slice(c * P, (c + 1) * P));
      for (let p = 0; p < P; p++) {
        const v = data[(c * P + p) * units + o.neuron]!;
        if (best.length >= pool && v <= best[best.length - 1]!.value) continue;
        const off = (c * P + p) * units;
        const item = { value: v, context: context + c, pos: p, vec: data.slice(off, off + units) };
        let i = best.length;
        while (i > 0 && best[i - 1]!.value < v) i--;
        best.splice(i, 0, item);
        if (best.length > pool) best.pop();
      }
    }
    context += n;
  }
  const before = o.before ?? 8;
  const after = o.after ?? 2;
  const example = (b: (typeof best)[number]): NeuronExample => {
    const ctx = tokens[b.context]!;
    const lo = Math.max(0, b.pos - before);
    const window = Array.from(ctx.subarray(lo, Math.min(P, b.pos + after + 1)));
    const text = o.tokenizer
      ? `${o.tokenizer.decode(window.slice(0, b.pos - lo))}[[${o.tokenizer.decode([ctx[b.pos]!])}]]${o.tokenizer.decode(window.slice(b.pos - lo + 1))}`
      : window.map((id, i) => (i === b.pos - lo ? `[[${id}]]` : String(id))).join(' ');
    return { value: b.value, context: b.context, pos: b.pos, token: tokenLabel(ctx[b.pos]!, o.tokenizer), window, at: b.pos - lo, text };
  };
  const nf = o.facets ?? 3;
  const facets: NeuronResult['facets'] = [];
  if (nf > 0 && best.length > 0) {
    const { assign, sizes } = kmeans(best.map((b) => b.vec), nf, o.seed ?? 0);
    sizes.forEach((size, f) => {
      const members = best.filter((_, i) => assign[i] === f);
      const count = new Map<string, number>();
      for (const m of members) { const tk = tokenLabel(tokens[m.context]![m.pos]!, o.tokenizer); count.set(tk, (count.get(tk) ?? 0) + 1); }
      const top = [...count.entries()].sort((x, y) => y[1] - x[1]).slice(0, 5).map(([tk, c]) => `${tk}×${c}`);
      facets.push({ size, top_tokens: top, examples: members.slice(0, Math.min(5, k)).map(example) });
    });
    facets.sort((x, y) => y.size - x.size);
  }
  return { hook: o.hook, neuron: o.neuron, examples: best.slice(0, k).map(example), facets, scanned: context * P };
}

export const neuronsAnalysis: Analysis = {
  name: 'neurons',
  options: [
    { flags: '--top-k <k>', help: 'examples', type: 'int', min: 1 },
    { flags: '--seed <n>', help: 'random seed', type: 'int', min: 0, shared: true },
    { flags: '--store <dir>', help: 'activation store (actlab cache)' },
    { flags: '--hook <name>', help: 'stored hook' },
    { flags: '--neuron <n>', help: 'unit index', type: 'int', min: 0 },
    { flags: '--facets <k>', help: 'facets (3; 0 for none)', type: 'int', min: 0 },
  ],
  input: 'custom',
  run: async (env) => {
    const a = env.args as { store?: string; hook?: string; neuron?: number; topK?: number; facets?: number; seed?: number; model?: string };
    if (!a.store || !a.hook || a.neuron === undefined) throw new Error('neurons: give --store DIR --hook NAME --neuron N');
    // --model only decodes the examples' tokens; without it the examples are token ids.
    const m = a.model ? await env.load(a.model) : undefined;
    try {
      const store = await ActivationStore.open(a.store);
      const backend = m?.model.backend ?? await env.backend();
      return await topActivatingExamples(store, { hook: a.hook, neuron: a.neuron, k: a.topK, facets: a.facets, tokenizer: m?.tokenizer, seed: a.seed, backend });
    } finally {
      m?.model.dispose();
    }
  },
};
