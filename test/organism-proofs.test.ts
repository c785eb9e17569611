// Proofs on the trained organisms (models/organisms): the induction heads carry the in-context
// loss drop (ablation removes it, patching restores it; RelP / attribution / activation patching
// of the heads compared), and modular addition runs on its key Fourier frequencies (ablating them
// destroys held-out accuracy, ablating all the others does not).
import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import * as al from '../src/index.js';
import { loadModel } from '../src/models/load.js';
import { inductionProof, fourierAblation, fourierDirectionAblation } from '../src/organisms/proofs.js';
import { fourierAnalysis, modularAdditionData, P } from '../src/organisms/modular-addition.js';

const MODELS = new URL('../models/organisms/', import.meta.url).pathname;
const f3 = (x: number) => x.toFixed(3);

describe.skipIf(!existsSync(`${MODELS}induction/model.safetensors`))('induction organism: interventions', () => {
  it('ablating the induction heads removes the in-context loss drop; patching them back restores it', async () => {
    await al.initBackend('js');
    const { model } = await loadModel(`${MODELS}induction`, { backend: 'js' });
    const r = inductionProof(model, { sequences: 32, patchSequences: 8 });
    const show = (k: string, d: { first: number; second: number; drop: number }) => `${k.padEnd(40)} first repeat ${f3(d.first)}  second ${f3(d.second)}  drop ${f3(d.drop)} nats`;
    console.log([
      `induction heads: ${r.heads.map((h) => `L${h.layer}H${h.head} (${f3(h.score)})`).join(', ')}`,
      show('[BOS] r r, intact', r.intact), show('[BOS] r r, induction heads zeroed', r.ablated),
      show("[BOS] r' r", r.corrupted), show("[BOS] r' r, clean induction heads patched in", r.restored),
      `head effects on −NLL(second repeat), mean over sequences (activation | attribution | RelP):`,
      ...[0, 1].map((l) => `  L${l}: ${[0, 1, 2, 3].map((h) => {
        const m = (k: 'activation' | 'attribution' | 'relp') => r.patching[k].filter((_, i) => i % 2 === l).reduce((s, row) => s + row[h]!, 0) / (r.patching[k].length / 2);
        return `H${h} ${f3(m('activation'))} | ${f3(m('attribution'))} | ${f3(m('relp'))}`;
      }).join('   ')}`),
      `correlation with activation patching over heads × sequences: attribution ${f3(r.correlation.attribution)}, RelP ${f3(r.correlation.relp)}`,
      ...r.correlation.byLayer.map((c) => `  layer ${c.layer} heads only: attribution ${f3(c.attribution)}, RelP ${f3(c.relp)}`),
    ].join('\n'));
    expect(r.heads.every((h) => h.layer === 1)).toBe(true);
    expect(r.intact.drop).toBeGreaterThan(2);
    expect(r.ablated.drop).toBeLessThan(0.25 * r.intact.drop);
    // Scrambling the first repeat makes the second unpredictable (the heads copy the wrong tokens).
    expect(r.corrupted.second).toBeGreaterThan(r.intact.second + 2);
    // Patching only the induction heads' clean outputs brings the second-repeat loss back.
    expect(r.restored.second).toBeLessThan(r.intact.second + 0.1 * (r.corrupted.second - r.intact.second));
    // On the induction heads' layer both approximations track activation patching; RelP's
    // attention rule gives layer 0 (which acts through layer 1's keys) almost no relevance.
    expect(r.correlation.byLayer[1]!.attribution).toBeGreaterThan(0.4);
    expect(r.correlation.byLayer[1]!.relp).toBeGreaterThan(0.4);
    model.dispose();
  }, 240_000);
});

describe.skipIf(!existsSync(`${MODELS}modular-addition/model.safetensors`))('modular-addition organism: Fourier ablation', () => {
  it('projecting out the key frequencies\' directions destroys held-out accuracy; the next strongest frequencies\' directions do not', async () => {
    await al.initBackend('wasm');
    const { model } = await loadModel(`${MODELS}modular-addition`, { backend: 'wasm' });
    const { test } = modularAdditionData();
    const f = fourierAnalysis(model);
    const key = f.keyFrequencies;
    const next = f.embedding.map((e) => e.k).filter((k) => !key.includes(k)).slice(0, key.length);
    const base = fourierDirectionAblation(model, [], test);
    const noKey = fourierDirectionAblation(model, key, test);
    const noNext = fourierDirectionAblation(model, next, test);
    console.log([
      `key frequencies ${key.join(', ')}; the next strongest ${next.join(', ')}; held-out pairs ${test.length}`,
      `intact:                                           accuracy ${f3(base.accuracy)}  loss ${f3(base.loss)}`,
      `key frequencies' ${noKey.directions} directions projected out:        accuracy ${f3(noKey.accuracy)}  loss ${f3(noKey.loss)}`,
      `next frequencies' ${noNext.directions} directions projected out:       accuracy ${f3(noNext.accuracy)}  loss ${f3(noNext.loss)}`,
    ].join('\n'));
    expect(base.accuracy).toBeGreaterThan(0.99);
    expect(noKey.accuracy).toBeLessThan(0.05);
    expect(noNext.accuracy).toBeGreaterThan(0.99);
    model.dispose();
  }, 240_000);

  it('removing the key frequencies from the embedding destroys held-out accuracy; removing all the others does not', async () => {
    await al.initBackend('wasm');
    const { model } = await loadModel(`${MODELS}modular-addition`, { backend: 'wasm' });
    const { test } = modularAdditionData();
    const key = fourierAnalysis(model).keyFrequencies;
    const others = Array.from({ length: (P - 1) / 2 }, (_, i) => i + 1).filter((k) => !key.includes(k));
    const base = fourierAblation(model, [], test);
    const noKey = fourierAblation(model, key, test);
    const noOthers = fourierAblation(model, others, test);
    const oneKey = key.map((k) => ({ k, ...fourierAblation(model, [k], test) }));
    console.log([
      `key frequencies ${key.join(', ')}; held-out pairs ${test.length}`,
      `intact:                          accuracy ${f3(base.accuracy)}  loss ${f3(base.loss)}`,
      `key frequencies ablated:         accuracy ${f3(noKey.accuracy)}  loss ${f3(noKey.loss)}`,
      `the other ${others.length} frequencies ablated: accuracy ${f3(noOthers.accuracy)}  loss ${f3(noOthers.loss)}`,
      ...oneKey.map((o) => `only k=${o.k} ablated: accuracy ${f3(o.accuracy)}  loss ${f3(o.loss)}`),
    ].join('\n'));
    expect(base.accuracy).toBeGreaterThan(0.99);
    expect(noKey.accuracy).toBeLessThan(0.05);
    expect(noOthers.accuracy).toBeGreaterThan(0.95);
    model.dispose();
  }, 240_000);
});
