// Activation sparsity on a real pretrained model, llama2.c's stories260K, on text it samples
// itself: CHESS's channel-wise thresholds cost less KL than one threshold per layer (CATS) and
// than top-k at the same sparsity, as the CHESS paper reports for its models, and chess:0.3 stays
// near the 0.05-nat budget docs/sparsity.md records (0.037).
import { describe, expect, it } from 'vitest';
import * as al from '../src/index.js';
import { evaluateLM } from '../src/models/evaluate.js';

const DIR = new URL('../../shared/data/stories260K/', import.meta.url).pathname;

describe('stories260K sparsity', () => {
  it('chess < cats < top-k in KL at sparsity 0.3; chess:0.3 within 0.05 nats', async () => {
    const backend = await al.initBackend('wasm');
    const load = () => al.loadModel(`${DIR}stories260K.bin`, { backend, tokenizerPath: `${DIR}tok512.bin` });
    const a = await load();
    const ref = await load();
    const g = al.generate(ref.model, [[1], [1], [1]], { maxNewTokens: 511, temperature: 1, seed: 7 });
    const seqs = g.ids.map((x) => x.slice(0, 512));
    const kl: Record<string, number> = {};
    for (const spec of ['chess:0.3', 'cats:0.3', 'topk:0.3']) {
      const plan = al.planSparsity(a.model, al.parseSparsity(spec), seqs[0]!);
      const mode = al.applySparsity(a.model, plan);
      try {
        kl[spec] = evaluateLM(a.model, seqs.slice(1).flat(), { ctx: 512, ref: ref.model }).kl!;
      } finally {
        mode.remove();
      }
    }
    console.log(`stories260K KL at sparsity 0.3: ${Object.entries(kl).map(([k, v]) => `${k} ${v.toFixed(4)}`).join(', ')}`);
    expect(kl['chess:0.3']!).toBeLessThan(kl['cats:0.3']!);
    expect(kl['cats:0.3']!).toBeLessThan(kl['topk:0.3']!);
    expect(kl['chess:0.3']!).toBeLessThan(0.05);
    a.model.dispose();
    ref.model.dispose();
  }, 300_000);
});
