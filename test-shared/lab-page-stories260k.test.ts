// The lab page, in Chromium and in Firefox (the same cases in each: test/helpers/lab-tab.ts), with
// a real pretrained model from the server's disk: llama2.c's stories260K
// (../shared/data/stories260K) loaded by the lab server and, through its /api/file route, in the
// tab. The attention view's numbers equal runWithCache's, steering alters the streamed text as
// generate() under the intervention does, and the tab gives the server's numbers. The neurons view
// reads an activation store and an SAE from the server's folders: its top contexts and the SAE
// features' activations and logit effects equal topActivatingExamples' and featureViews'.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import '../src/backends/index.js';
import { runWithCache } from '../src/hooks/run.js';
import { withInterventions } from '../src/interventions/apply.js';
import { steeringIntervention, steeringVectors } from '../src/interventions/steering-vectors.js';
import { labModel } from '../src/lab/model.js';
import { runView } from '../src/lab/views.js';
import { generate } from '../src/models/generate.js';
import { loadModel } from '../src/models/load.js';
import { tensor } from '../src/ops/creation.js';
import { topActivatingExamples } from '../src/analysis/neurons.js';
import { featureViews } from '../src/sae/features.js';
import { initSae } from '../src/sae/init.js';
import { saveSaeLens } from '../src/sae/saelens.js';
import { ActivationStore } from '../src/store/reader.js';
import { harvest } from '../src/store/writer.js';
import { BROWSER_LABEL, click, idle, LAB_BROWSERS, labSession, missingBrowser, patternOnPage, shot, type LabBrowserName, type LabTab } from '../test/helpers/lab-page.js';

const DIR = new URL('../../shared/data/stories260K/', import.meta.url).pathname;
const haveModel = existsSync(`${DIR}stories260K.bin`);
if (!haveModel) console.log('stories260K lab page test skipped: ../shared/data/stories260K not found');

const PROMPT = 'Once upon a time, there was a little girl named Lily. She';

for (const b of LAB_BROWSERS) storiesCases(b);

function storiesCases(browser: LabBrowserName): void {
  const missing = missingBrowser(browser);
  if (missing && haveModel) console.log(`stories260K lab page test skipped in ${BROWSER_LABEL[browser]}: ${missing}`);

  describe.skipIf(!haveModel || missing !== null)(`lab page with stories260K (${BROWSER_LABEL[browser]})`, () => {
    const session = labSession(browser, [DIR], async () => labModel(await loadModel(`${DIR}stories260K.bin`, { backend: 'js', tokenizerPath: `${DIR}tok512.bin` }), 'stories260K'));

    async function numbers(page: LabTab): Promise<{ loss: string | null; pattern: number[][]; change: string | null; chips: string[] }> {
      await click(page, 'tab-tokens');
      await click(page, 'run-tokens');
      const loss = await page.attr('[data-testid="mean-loss"]', 'data-value');
      const chips = await page.evalAll('[data-testid="token-chips"] .chip', (s) => s.map((x) => x.getAttribute('data-loss') ?? ''));
      await click(page, 'tab-attention');
      await click(page, 'run-attention');
      await click(page, 'head-3-1');
      const pattern = await patternOnPage(page);
      await click(page, 'ablate-head');
      const change = await page.attr('[data-testid="head-ablation-result"]', 'data-change');
      await idle(page);
      return { loss, pattern, change, chips };
    }

    it('runs on the server and in the tab with the same numbers, equal to the library', async () => {
      const { page } = session.lp;
      await page.select('[data-testid="server-model"]', `${DIR}stories260K.bin`);
      await click(page, 'load-server-model');
      expect(await page.text('[data-testid="model-info"]')).toMatch(/stories260K.*5 layers × 8 heads.*server/);
      await page.fill('[data-testid="prompt"]', PROMPT);
      const served = await numbers(page);
      await click(page, 'tab-tokens');
      await shot(page, 'stories-tokens');

      const ids = session.ref.tokenizer.encode(PROMPT);
      const x = tensor(ids, [1, ids.length], 'i32', { backend: session.ref.model.backend });
      const { logits, cache } = runWithCache(session.ref.model, x, { names: ['blocks.3.attn.hook_pattern'] });
      const pat = cache.get('blocks.3.attn.hook_pattern').dataSync() as Float32Array; // [1, head, q, k]
      logits.dispose(); cache.dispose(); x.dispose();
      const T = ids.length;
      let maxDiff = 0;
      for (let q = 0; q < T; q++) for (let k = 0; k <= q; k++) maxDiff = Math.max(maxDiff, Math.abs(served.pattern[q]![k]! - pat[(1 * T + q) * T + k]!));
      console.log(`stories260K attention L3H1 (${T} tokens): page vs runWithCache max |diff| ${maxDiff}`);
      expect(served.pattern.length).toBe(T);
      expect(maxDiff).toBe(0);

      await page.select('[data-testid="mode"]', 'tab');
      await page.select('[data-testid="server-model"]', `${DIR}stories260K.bin`);
      await click(page, 'load-server-model');
      expect(await page.text('[data-testid="model-info"]')).toMatch(/5 layers × 8 heads.*tab on js/);
      await page.fill('[data-testid="prompt"]', PROMPT);
      const inTab = await numbers(page);
      console.log(`stories260K in-tab vs served: mean loss ${inTab.loss} vs ${served.loss}; ablation L3H1 ${inTab.change} vs ${served.change}`);
      expect(inTab).toEqual(served);
      expect(session.lp.logs).toEqual([]);
    }, 300_000);

    it('steering alters the streamed story as the library does', async () => {
      const { page } = session.lp;
      await page.select('[data-testid="mode"]', 'server');
      await page.select('[data-testid="server-model"]', `${DIR}stories260K.bin`);
      await click(page, 'load-server-model');
      await page.fill('[data-testid="prompt"]', PROMPT);
      await click(page, 'tab-steer');
      const layer = 2;
      const n = 24;
      const strength = 6;
      await page.select('[data-testid="steer-layer"]', String(layer));
      await page.fill('[data-testid="steer-max"]', String(n));
      await page.evalOne('[data-testid="steer-strength"]', (el, v) => { (el as HTMLInputElement).value = String(v); el.dispatchEvent(new Event('input', { bubbles: true })); }, strength);
      await click(page, 'run-steer');
      await page.waitForSelector('[data-testid="steer-done"]');
      const base = (await page.text('[data-testid="stream-base"]'))!;
      const steered = (await page.text('[data-testid="stream-steered"]'))!;
      await shot(page, 'stories-steering');
      console.log(`stories260K steering at layer ${layer} × ${strength}:\n  unsteered: ${JSON.stringify(base)}\n  steered:   ${JSON.stringify(steered)}`);
      expect(steered).not.toBe(base);
      const pos = (await page.value('[data-testid="steer-pos"]')).split('\n');
      const neg = (await page.value('[data-testid="steer-neg"]')).split('\n');
      const sv = steeringVectors(session.ref.model, session.ref.tokenizer, { pairs: pos.map((p, i) => ({ positive: p, negative: neg[i]! })), positives: [], negatives: [] }, { layers: [layer], method: 'mean_diff' });
      const ids = session.ref.tokenizer.encode(PROMPT);
      const lib = (s: number) => {
        const r = withInterventions(session.ref.model, [steeringIntervention(sv, layer, s)], () => generate(session.ref.model, [ids], { maxNewTokens: n, eosTokenIds: session.ref.tokenizer.eosIds as number[] }));
        return r.newIds[0]!;
      };
      const tokensOf = (list: number[]) => list.map((i) => session.ref.tokenizer.idToToken(i)!.replace(/\u2581|Ġ/g, ' ').replace(/\n|Ċ/g, '\\n')).join('');
      expect(steered).toBe(tokensOf(lib(strength)));
      expect(base).toBe(tokensOf(lib(0)));
    }, 300_000);

    it('lists a neuron\'s top-activating contexts from a pasted corpus, as the library does', async () => {
      const { page } = session.lp;
      await page.select('[data-testid="mode"]', 'server');
      await page.select('[data-testid="server-model"]', `${DIR}stories260K.bin`);
      await click(page, 'load-server-model');
      await page.fill('[data-testid="prompt"]', PROMPT);
      await click(page, 'tab-neurons');
      await page.fill('[data-testid="neurons-layer"]', '2');
      await page.fill('[data-testid="neurons-unit"]', '17');
      await click(page, 'run-neurons');
      await shot(page, 'stories-neurons');
      const values = await page.evalAll('[data-testid="neurons-examples"] tbody tr', (rows) => rows.map((r) => Number(r.getAttribute('data-value'))));
      const corpus = await page.value('[data-testid="neurons-corpus"]');
      const lib = await runView(session.ref, 'neurons', { site: 'mlp', layer: 2, neuron: 17, context: 16, corpus, prompt: PROMPT, k: 10 });
      const want = (lib.examples as { value: number }[]).map((e) => e.value);
      console.log(`neurons L2 #17: page top ${values.slice(0, 3).join(', ')}; library ${want.slice(0, 3).join(', ')}`);
      expect(values.length).toBe(10);
      expect(values).toEqual(want);
      for (let i = 1; i < values.length; i++) expect(values[i]!).toBeLessThanOrEqual(values[i - 1]!);
    }, 300_000);

    it('reads an activation store and an SAE from the server\'s folders: neurons and features as the library gives them', async () => {
      const { page } = session.lp;
      // A store of 24 contexts of 32 tokens at layer 2 (made by the library, as `actlab cache` makes one) and an SAE on its residual stream.
      const story = 'Once upon a time, there was a little girl named Lily. She loved to play outside in the sun. One day, she saw a big red ball in the park.\nTom and his dog went to the shop. The dog was happy and wagged its tail. Tom bought a cake for his mom.\n';
      const corpus = join(session.work, 'corpus.txt');
      (await import('node:fs')).writeFileSync(corpus, story.repeat(20));
      const storeDir = join(session.work, 'store');
      await harvest({ model: session.ref.model, tokenizer: session.ref.tokenizer, corpus, hooks: ['blocks.2.mlp.hook_post', 'blocks.2.hook_resid_post'], outDir: storeDir, context: 32, maxTokens: 24 * 32 });
      const saeDir = join(session.work, 'sae');
      const sae = initSae({ architecture: 'standard', d_in: 64, d_sae: 128, apply_b_dec_to_input: true, normalize_activations: 'none', dtype: 'float32', metadata: { hook_name: 'blocks.2.hook_resid_post' } }, { seed: 7 });
      await saveSaeLens(sae, saeDir);
      const store = await ActivationStore.open(storeDir);

      await page.select('[data-testid="mode"]', 'server');
      await page.select('[data-testid="server-model"]', `${DIR}stories260K.bin`);
      await click(page, 'load-server-model');
      await click(page, 'tab-neurons');
      await page.select('[data-testid="neurons-units"]', 'neurons');
      await page.select('[data-testid="neurons-source"]', 'store');
      await page.fill('[data-testid="neurons-store"]', storeDir);
      await page.fill('[data-testid="neurons-layer"]', '2');
      await page.fill('[data-testid="neurons-unit"]', '17');
      await click(page, 'run-neurons');
      const values = await page.evalAll('[data-testid="neurons-examples"] tbody tr', (rows) => rows.map((r) => Number(r.getAttribute('data-value'))));
      const lib = await topActivatingExamples(store, { hook: 'blocks.2.mlp.hook_post', neuron: 17, k: 10, tokenizer: session.ref.tokenizer, backend: session.ref.model.backend });
      console.log(`store neuron L2 #17: page ${values.slice(0, 3).join(', ')}; library ${lib.examples.slice(0, 3).map((e) => e.value).join(', ')}`);
      expect(values).toEqual(lib.examples.map((e) => e.value));

      await page.select('[data-testid="neurons-units"]', 'sae');
      await page.fill('[data-testid="features-sae"]', saeDir);
      await page.fill('[data-testid="features-list"]', '3,40');
      await click(page, 'run-features');
      await shot(page, 'stories-features');
      const want = await featureViews(sae, store, { features: [3, 40], examples: 8, model: session.ref.model, tokenizer: session.ref.tokenizer });
      for (const f of want.features) {
        const acts = await page.evalAll(`[data-testid="feature-${f.feature}-examples"] tbody tr`, (rows) => rows.map((r) => Number(r.getAttribute('data-value'))));
        const logits = await page.evalAll(`[data-testid="feature-${f.feature}-promoted"] tr`, (rows) => rows.map((r) => [Number(r.getAttribute('data-token')), Number(r.getAttribute('data-logit'))]));
        console.log(`feature ${f.feature}: density ${f.density.toFixed(3)}; page top ${acts.slice(0, 2).join(', ')} library ${f.examples.slice(0, 2).map((e) => e.activation).join(', ')}; promotes ${logits.slice(0, 3).map((l) => l[0]).join(',')}`);
        expect(acts.length).toBeGreaterThan(0);
        expect(acts).toEqual(f.examples.map((e) => e.activation));
        expect(logits).toEqual(f.logits!.promoted.map((l) => [l.token, l.logit]));
      }
      // A folder outside the served ones is refused by the server, and the page says so.
      await page.fill('[data-testid="features-sae"]', '/etc');
      await page.click('[data-testid="run-features"]');
      await page.waitForSelector('[data-testid="error"]', 30_000);
      expect(await page.text('[data-testid="error"]')).toMatch(/outside the folders this lab serves/);
      sae.dispose();
    }, 300_000);
  });
}
