// The lab's neurons view: the unit's top-activating contexts and facets (`topActivatingExamples`)
// over an activation store: one on disk (`store`: a folder `actlab cache` wrote; the server checks
// it lies inside the folders it serves), or a corpus given in the request, harvested into a store in
// memory (the library's `harvest`). The unit's effect on the prompt's next-token logits comes from
// zeroing it (`withInterventions`).
// Not for: SAE features (features.ts).
import { topActivatingExamples } from '../analysis/neurons.js';
import { softmax, topIndices } from '../analysis/stats.js';
import { collectAsync, tokenLabel } from '../analysis/acts.js';
import { withInterventions } from '../interventions/apply.js';
import { BytesSource } from '../io/byte-source.js';
import { MemoryStore } from '../io/memory-store.js';
import { ActivationStore } from '../store/reader.js';
import { harvest } from '../store/writer.js';
import { LabRequestError, int, str } from './request.js';
import { LabCancelledError, type LabContext, type LabModel } from './views.js';

/** Bytes of corpus one request may send. */
export const CORPUS_BYTES = 48 * 1024;

export async function neuronsView(m: LabModel, a: Record<string, unknown>, ctx: LabContext = {}): Promise<Record<string, unknown>> {
  if (!m.textTokenizer && a.store === undefined) throw new LabRequestError('the neurons view reads a text corpus; this model has no tokenizer (give an activation store instead)');
  const { nLayers: L, dMlp, dModel, nCtx } = m.model.dims;
  const layer = int(a.layer, 'layer', 0, L - 1);
  const site = a.site ?? (dMlp > 0 ? 'mlp' : 'resid');
  if (site !== 'mlp' && site !== 'resid') throw new LabRequestError(`site: expected mlp or resid, got ${JSON.stringify(site)}`);
  if (site === 'mlp' && dMlp === 0) throw new LabRequestError('site: this model has no MLP neurons');
  const hook = site === 'mlp' ? `blocks.${layer}.mlp.hook_post` : `blocks.${layer}.hook_resid_post`;
  const neuron = int(a.neuron, 'neuron', 0, (site === 'mlp' ? dMlp : dModel) - 1);
  const k = int(a.k ?? 10, 'k', 1, 50);
  const source = await storeOf(m, a, [hook], ctx);
  ctx.progress?.(1, 2, 'top-activating contexts');
  const r = await topActivatingExamples(source, { hook, neuron, k, tokenizer: m.tokenizer, backend: m.model.backend, facets: int(a.facets ?? 3, 'facets', 0, 8) });
  ctx.progress?.(2, 2, 'top-activating contexts');
  let effect: Record<string, unknown> | null = null;
  if (typeof a.prompt === 'string' && a.prompt !== '') {
    // The unit's effect on the prompt's last-position logits: zero it and compare.
    const ids = m.tokenizer.encode(a.prompt);
    if (ids.length > 0 && ids.length <= nCtx) {
      const last = async () => { const lg = (await collectAsync(m.model, ids, [])).logits!; const V = lg.shape[2]!; return lg.data.slice((ids.length - 1) * V, ids.length * V); };
      const unit = site === 'mlp' ? { neurons: [neuron] } : { dims: [neuron] };
      const before = await last();
      const after = await withInterventions(m.model, [{ hook, op: 'zero', unit }], last);
      const diff = after.map((x, i) => x - before[i]!);
      const pb = softmax(before);
      const row = (id: number) => ({ id, token: tokenLabel(id, m.tokenizer), change: diff[id]!, prob_before: pb[id]! });
      effect = { promoted: topIndices(diff.map((x) => -x), 8).map(row), suppressed: topIndices(diff, 8).map(row) };
    }
  }
  return { hook, neuron, source: a.store !== undefined ? 'store' : 'corpus', contexts: source.contexts, scanned: r.scanned, examples: r.examples, facets: r.facets, effect };
}

/**
 * The activation store a view reads: `a.store` (a folder on disk, which must hold every hook of
 * `hooks`), else `a.corpus` harvested into memory at `hooks` with contexts of `a.context` tokens.
 */
export async function storeOf(m: LabModel, a: Record<string, unknown>, hooks: string[], ctx: LabContext): Promise<ActivationStore> {
  if (a.store !== undefined) {
    const dir = str(a.store, 'store', 4096);
    let s: ActivationStore;
    try {
      s = await ActivationStore.open(dir);
    } catch (e) {
      throw new LabRequestError(`store: ${(e as Error).message}`, 422);
    }
    for (const h of hooks) if (!s.hooks.includes(h)) throw new LabRequestError(`store: ${dir} holds no '${h}' (it has ${s.hooks.join(', ') || 'no hooks'})`);
    const made = s.manifest.model.dims;
    if (made.vocabSize !== m.model.dims.vocabSize || made.dModel !== m.model.dims.dModel || made.nLayers !== m.model.dims.nLayers) {
      throw new LabRequestError(`store: ${dir} was made by ${s.manifest.model.source} (${made.nLayers} layers, d_model ${made.dModel}, vocabulary ${made.vocabSize}), not by a model like the loaded one (${m.model.dims.nLayers}, ${m.model.dims.dModel}, ${m.model.dims.vocabSize})`);
    }
    return s;
  }
  const nCtx = m.model.dims.nCtx;
  const corpus = str(a.corpus, 'corpus', CORPUS_BYTES);
  const context = int(a.context ?? Math.min(32, nCtx), 'context', 4, Math.min(256, nCtx));
  const store = new MemoryStore();
  const dir = '/lab-store';
  ctx.progress?.(0, 2, 'harvesting the corpus');
  const h = await harvest({
    model: m.model, tokenizer: m.tokenizer, corpus: new BytesSource(new TextEncoder().encode(corpus), 'corpus.txt'),
    corpusOptions: { split: 'line' }, hooks, outDir: dir, context, store, batchSize: 4, source: m.name,
  });
  if (h.manifest.contexts === 0) throw new LabRequestError(`corpus: not one full context of ${context} tokens; give more text or a shorter context`);
  if (ctx.signal?.aborted) throw new LabCancelledError();
  return ActivationStore.open(dir, { store });
}
