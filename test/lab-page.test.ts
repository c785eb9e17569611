// The lab page, driven in Debian's Chromium (playwright-core) and in Debian's Firefox ESR
// (puppeteer-core over WebDriver BiDi) against the lab server, with the induction organism; the
// same cases run in each browser (test/helpers/lab-tab.ts): every view runs and is photographed; the attention view's numbers equal
// runWithCache's hook_pattern; an ablation click shows the logit change the library computes;
// steering alters the streamed continuation exactly as generate() under the steering intervention
// does; the neurons view reads an activation store and an SAE from the server's folders and shows
// the numbers topActivatingExamples and featureViews give; and the same views run in the tab (the
// worker) give the same numbers as on the server.
// Each browser's cases skip, saying so, where it is absent (apt-get install chromium firefox-esr).
import { createReadStream, existsSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { extname, join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import '../src/backends/index.js';
import { collect } from '../src/analysis/acts.js';
import { argmax } from '../src/analysis/stats.js';
import { organismDir, startLabServer } from '../src/cli/lab-server.js';
import { runWithCache } from '../src/hooks/run.js';
import { withInterventions } from '../src/interventions/apply.js';
import { steeringIntervention, steeringVectors } from '../src/interventions/steering-vectors.js';
import { labModel } from '../src/lab/model.js';
import { IdTokenizer } from '../src/lab/id-tokenizer.js';
import { runView } from '../src/lab/views.js';
import { generate } from '../src/models/generate.js';
import { loadModel } from '../src/models/load.js';
import { Rng, tensor } from '../src/ops/creation.js';
import { topActivatingExamples } from '../src/analysis/neurons.js';
import { featureViews } from '../src/sae/features.js';
import { initSae } from '../src/sae/init.js';
import { saveSaeLens } from '../src/sae/saelens.js';
import { ActivationStore } from '../src/store/reader.js';
import { harvest } from '../src/store/writer.js';
import { BROWSER_LABEL, click, idle, LAB_BROWSERS, labSession, missingBrowser, patternOnPage, shot, type LabBrowserName } from './helpers/lab-page.js';

const PROMPT = '1 5 9 12 30 7 41 5 9 12 30 7';
const IDS = PROMPT.split(' ').map(Number);

for (const b of LAB_BROWSERS) labPageCases(b);

function labPageCases(browser: LabBrowserName): void {
  const missing = missingBrowser(browser);
  if (missing) console.log(`lab page tests skipped in ${BROWSER_LABEL[browser]}: ${missing}`);

  describe.skipIf(missing !== null)(`lab page (${BROWSER_LABEL[browser]})`, () => {
    const session = labSession(browser, [], async () => labModel(await loadModel(organismDir('induction'), { backend: 'js' }), 'induction'));

    async function setPrompt(p: string): Promise<void> {
      await session.lp.page.fill('[data-testid="prompt"]', p);
    }

    /** The largest difference between the page's L1H2 pattern (the causal half) and runWithCache's hook_pattern. */
    /** Loads the organism in the tab on `backend` and returns the tokens view's mean loss there and the library's (js). */
    async function tabLoss(backend: string): Promise<{ tab: number; js: number }> {
      const { page } = session.lp;
      await page.select('[data-testid="mode"]', 'tab');
      await page.select('[data-testid="backend"]', backend);
      await click(page, 'load-organism');
      expect(await page.text('[data-testid="model-info"]')).toMatch(new RegExp(`tab on ${backend}`));
      await page.fill('[data-testid="prompt"]', PROMPT);
      await click(page, 'tab-tokens');
      await click(page, 'run-tokens');
      const tab = Number(await page.attr('[data-testid="mean-loss"]', 'data-value'));
      return { tab, js: (await runView(session.ref, 'tokens', { prompt: PROMPT })).mean_loss as number };
    }

    /** Moves the steering view's strength slider to `v` (an input event, as a drag sends). */
    async function setSteerStrength(v: number): Promise<void> {
      await session.lp.page.evalOne('[data-testid="steer-strength"]', (el, val) => {
        (el as HTMLInputElement).value = String(val);
        el.dispatchEvent(new Event('input', { bubbles: true }));
      }, v);
    }

    /** The patching view on the prompt against a corruption of one token: a heatmap is drawn. */
    async function runPatch(): Promise<void> {
      const { page } = session.lp;
      await click(page, 'tab-patch');
      await page.fill('[data-testid="patch-clean"]', PROMPT);
      await page.fill('[data-testid="patch-corrupt"]', '1 5 9 12 30 7 43 5 9 12 30 7');
      await page.fill('[data-testid="patch-answer"]', '41');
      await page.fill('[data-testid="patch-wrong"]', '43');
      await click(page, 'run-patch');
      // the job may start after click() has looked for it on a loaded machine: wait for the drawing
      await page.waitForSelector('[data-testid="patch-heatmap"] svg');
      await idle(page);
      expect(await page.count('[data-testid="patch-heatmap"] svg')).toBeGreaterThan(0);
    }

    function patternDiff(onPage: number[][]): number {
      const x = tensor(IDS, [1, IDS.length], 'i32', { backend: session.ref.model.backend });
      const { logits: lg, cache } = runWithCache(session.ref.model, x, { names: ['blocks.1.attn.hook_pattern'] });
      const pat = cache.get('blocks.1.attn.hook_pattern').dataSync() as Float32Array; // [1, head, q, k]
      lg.dispose(); cache.dispose(); x.dispose();
      const T = IDS.length;
      let maxDiff = 0;
      for (let q = 0; q < T; q++) for (let k = 0; k <= q; k++) maxDiff = Math.max(maxDiff, Math.abs(onPage[q]![k]! - pat[(2 * T + q) * T + k]!));
      return maxDiff;
    }

    it('runs every view on the server and matches the library', async () => {
      const { page } = session.lp;
      await click(page, 'load-organism');
      expect(await page.text('[data-testid="model-info"]')).toMatch(/induction.*2 layers × 4 heads.*server/);
      await setPrompt(PROMPT);

      await click(page, 'run-tokens');
      await shot(page, 'tokens');
      const chips = await page.evalAll('[data-testid="token-chips"] .chip', (s) => s.map((x) => Number(x.getAttribute('data-loss') || NaN)));
      const logits = collect(session.ref.model, IDS, []).logits!;
      const V = logits.shape[2]!;
      // Loss of the token after position 5, from the library's logits.
      const row = Array.from(logits.data.subarray(5 * V, 6 * V));
      const mx = Math.max(...row);
      const lse = mx + Math.log(row.reduce((s, x) => s + Math.exp(x - mx), 0));
      console.log(`loss at 5: page ${chips[5]} library ${lse - row[IDS[6]!]!}`);
      expect(Math.abs(chips[5]! - (lse - row[IDS[6]!]!))).toBeLessThan(1e-6);

      // Attention: the enlarged head's numbers are runWithCache's hook_pattern.
      await click(page, 'tab-attention');
      await click(page, 'run-attention');
      await shot(page, 'attention-grid');
      await click(page, 'head-1-2');
      const onPage = await patternOnPage(page);
      const T = IDS.length;
      const maxDiff = patternDiff(onPage);
      console.log(`attention L1H2: page vs runWithCache max |diff| ${maxDiff}`);
      expect(onPage.length).toBe(T);
      expect(maxDiff).toBe(0);
      await page.click('.enlarged summary'); // open the values
      await shot(page, 'attention-head');

      // Ablation: a click zeroes the head; the page shows the library's logit change.
      await click(page, 'ablate-head');
      const shown = Number(await page.attr('[data-testid="head-ablation-result"]', 'data-change'));
      const last = () => { const a = collect(session.ref.model, IDS, []).logits!; return a.data.slice((T - 1) * V, T * V); };
      const before = last();
      const after = withInterventions(session.ref.model, [{ hook: 'blocks.1.attn.hook_z', op: 'zero', unit: { heads: [2] } }], last);
      const target = argmax(before);
      console.log(`ablate L1H2: page logit change ${shown}, library ${after[target]! - before[target]!}`);
      expect(shown).toBe(after[target]! - before[target]!);
      expect(shown).not.toBe(0);
      await click(page, 'tab-ablate');
      await click(page, 'ablate-0-1');
      const other = Number(await page.attr('[data-testid="ablation-result"]', 'data-change'));
      expect(other).not.toBe(shown);
      await shot(page, 'ablation');

      await click(page, 'tab-lens');
      await click(page, 'run-lens');
      expect(await page.text('[data-testid="lens-final"]')).toMatch(/^#\d+$/);
      await shot(page, 'logit-lens');

      await click(page, 'tab-activations');
      await click(page, 'run-activations');
      expect(await page.count('[data-testid="massive-heatmap"] svg')).toBeGreaterThan(0);
      await shot(page, 'activations');

      await runPatch();
      await shot(page, 'patching');
    }, 300_000);

    it('reads an activation store and an SAE from the server\'s folders, with the library\'s numbers', async () => {
      const { page } = session.lp;
      // A store of the organism's residual stream over repeated random sequences, and an SAE on it.
      const r = new Rng(3);
      const lines = Array.from({ length: 40 }, () => { const seq = Array.from({ length: 8 }, () => 2 + r.int(60)); return [...seq, ...seq].join(' '); });
      const corpus = join(session.work, 'ids.txt');
      writeFileSync(corpus, `${lines.join('\n')}\n`);
      const storeDir = join(session.work, 'store');
      // The organism has no tokenizer: its corpus is lines of ids, and the store's tokenizer identity
      // (the ids of a probe sentence) is recorded as empty.
      class IdsOnly extends IdTokenizer { override encode(t: string): number[] { return /^[\d\s,#]*$/.test(t) ? super.encode(t) : []; } }
      await harvest({ model: session.ref.model, tokenizer: new IdsOnly(64), corpus, corpusOptions: { split: 'line' }, hooks: ['blocks.1.hook_resid_post'], outDir: storeDir, context: 16, bos: false });
      const sae = initSae({ architecture: 'standard', d_in: 64, d_sae: 96, apply_b_dec_to_input: true, normalize_activations: 'none', dtype: 'float32', metadata: { hook_name: 'blocks.1.hook_resid_post' } }, { seed: 5 });
      const saeDir = join(session.work, 'sae');
      await saveSaeLens(sae, saeDir);
      const store = await ActivationStore.open(storeDir);

      await click(page, 'tab-neurons');
      await page.select('[data-testid="neurons-units"]', 'neurons');
      await page.select('[data-testid="neurons-source"]', 'store');
      await page.fill('[data-testid="neurons-store"]', storeDir);
      await page.fill('[data-testid="neurons-layer"]', '1');
      await page.fill('[data-testid="neurons-unit"]', '5');
      await click(page, 'run-neurons');
      await shot(page, 'neurons-store');
      const values = await page.evalAll('[data-testid="neurons-examples"] tbody tr', (rows) => rows.map((x) => Number(x.getAttribute('data-value'))));
      const lib = await topActivatingExamples(store, { hook: 'blocks.1.hook_resid_post', neuron: 5, k: 10, tokenizer: session.ref.tokenizer, backend: session.ref.model.backend });
      console.log(`store: resid L1 dim 5 top ${values.slice(0, 3).join(', ')} (library ${lib.examples.slice(0, 3).map((e) => e.value).join(', ')})`);
      expect(values.length).toBe(10);
      expect(values).toEqual(lib.examples.map((e) => e.value));

      await page.select('[data-testid="neurons-units"]', 'sae');
      await page.fill('[data-testid="features-sae"]', saeDir);
      await page.fill('[data-testid="features-list"]', '');
      await click(page, 'run-features');
      await shot(page, 'sae-features');
      const want = await featureViews(sae, store, { top: 4, examples: 8, model: session.ref.model, tokenizer: session.ref.tokenizer });
      const shown = await page.evalAll('[data-testid^="feature-"][data-testid$="-examples"]', (ts) => ts.map((t) => Number(t.getAttribute('data-testid')!.split('-')[1])));
      expect(shown).toEqual(want.features.map((f) => f.feature));
      for (const f of want.features) {
        const acts = await page.evalAll(`[data-testid="feature-${f.feature}-examples"] tbody tr`, (rows) => rows.map((x) => Number(x.getAttribute('data-value'))));
        const logits = await page.evalAll(`[data-testid="feature-${f.feature}-promoted"] tr`, (rows) => rows.map((x) => [Number(x.getAttribute('data-token')), Number(x.getAttribute('data-logit'))]));
        expect(acts).toEqual(f.examples.map((e) => e.activation));
        expect(logits).toEqual(f.logits!.promoted.map((l) => [l.token, l.logit]));
      }
      console.log(`SAE features (most frequent first): ${want.features.map((f) => `#${f.feature} density ${f.density.toFixed(2)} max ${f.maxActivation.toFixed(2)}`).join('; ')}`);
      sae.dispose();
    }, 300_000);

    it('steering changes the streamed continuation exactly as the library does', async () => {
      const { page } = session.lp;
      await click(page, 'tab-steer');
      const layer = 1;
      const n = 12;
      await page.select('[data-testid="steer-layer"]', String(layer));
      await page.fill('[data-testid="steer-max"]', String(n));
      const streams = async (strength: number) => {
        await setSteerStrength(strength);
        await click(page, 'run-steer');
        await page.waitForSelector('[data-testid="steer-done"]');
        return { base: (await page.text('[data-testid="stream-base"]'))!, steered: (await page.text('[data-testid="stream-steered"]'))! };
      };
      const zero = await streams(0);
      expect(zero.steered).toBe(zero.base);
      const strong = await streams(8);
      await shot(page, 'steering');
      console.log(`steering: unsteered "${strong.base}" | steered ×8 "${strong.steered}"`);
      expect(strong.base).toBe(zero.base);
      expect(strong.steered).not.toBe(strong.base);
      // The library: the vector from the same sets, the same intervention, generate().
      const pos = (await page.value('[data-testid="steer-pos"]')).split('\n');
      const neg = (await page.value('[data-testid="steer-neg"]')).split('\n');
      const sv = steeringVectors(session.ref.model, session.ref.tokenizer, { pairs: pos.map((p, i) => ({ positive: p, negative: neg[i]! })), positives: [], negatives: [] }, { layers: [layer], method: 'mean_diff' });
      const lib = (strength: number) => withInterventions(session.ref.model, [steeringIntervention(sv, layer, strength)], () => generate(session.ref.model, [IDS], { maxNewTokens: n, eosTokenIds: [] }))
        .newIds[0]!.map((i) => `#${i}`).join(' ');
      expect(strong.steered).toBe(lib(8));
      expect(strong.base).toBe(lib(0));
    }, 300_000);

    it('cancels long work from the page', async () => {
      const { page } = session.lp;
      await page.fill('[data-testid="steer-max"]', '200');
      await setPrompt('1 5 9');
      await page.click('[data-testid="run-steer"]');
      await page.waitFor(() => (document.querySelector('[data-testid="stream-steered"]')?.textContent ?? '').length > 0, 60_000);
      await page.click('[data-testid="cancel"]');
      await page.waitFor(() => !document.querySelector('[data-testid="busy"]'), 60_000);
      expect(await page.text('[data-testid="error"]')).toMatch(/cancelled/);
      const got = (await page.text('[data-testid="stream-steered"]'))!.split(' ').length;
      console.log(`cancelled after ${got} of 200 tokens`);
      expect(got).toBeLessThan(200);
      await setPrompt(PROMPT);
    }, 120_000);

    it('gives the same numbers in the tab (worker) as on the server', async () => {
      const { page } = session.lp;
      const served = await numbers();
      await page.select('[data-testid="mode"]', 'tab');
      await click(page, 'load-organism');
      expect(await page.text('[data-testid="model-info"]')).toMatch(/induction.*tab on js/);
      await setPrompt(PROMPT);
      const inTab = await numbers();
      console.log(`in-tab vs served: mean loss ${inTab.loss} vs ${served.loss}; ablation ${inTab.change} vs ${served.change}`);
      expect(inTab).toEqual(served);
      await shot(page, 'attention-in-tab');
      expect(session.lp.logs).toEqual([]);

      async function numbers(): Promise<{ loss: string | null; pattern: number[][]; change: string | null }> {
        await click(page, 'tab-tokens');
        await click(page, 'run-tokens');
        const loss = await page.text('[data-testid="mean-loss"]');
        await click(page, 'tab-attention');
        await click(page, 'run-attention');
        await click(page, 'head-1-2');
        const pattern = await patternOnPage(page);
        await click(page, 'ablate-head');
        const change = await page.attr('[data-testid="head-ablation-result"]', 'data-change');
        await idle(page);
        return { loss, pattern, change };
      }
    }, 300_000);

    it('runs on the wasm backend in the tab, close to the reference', async () => {
      const { page } = session.lp;
      const { tab: wasm, js } = await tabLoss('wasm');
      // The lab server on wasm (as `actlab lab` picks by default) gives the tab's wasm numbers.
      const served = await startLabServer({ port: 0, staticDir: session.pageDir, backend: 'wasm', model: 'induction' });
      let onServer: number;
      try {
        const r = await fetch(`http://127.0.0.1:${served.port}/api/view/tokens?token=${served.token}`, { method: 'POST', body: JSON.stringify({ prompt: PROMPT }) });
        onServer = (JSON.parse((await r.text()).trim().split('\n').at(-1)!) as { value: { mean_loss: number } }).value.mean_loss;
      } finally {
        await served.close();
      }
      console.log(`wasm in the tab: mean loss ${wasm}, wasm on the server ${onServer}, js ${js} (|wasm − js| ${Math.abs(wasm - js).toExponential(2)}, |tab − server| ${Math.abs(wasm - onServer).toExponential(2)})`);
      expect(Math.abs(wasm - js)).toBeLessThan(1e-4);
      // the same kernels as the server's; bit for bit only where the browser's wasm runs the same
      // build and thread split as Node's (Firefox 140 ESR's tab differs by 2e-7)
      expect(Math.abs(wasm - onServer)).toBeLessThan(1e-6);
      await page.select('[data-testid="backend"]', 'js');
    }, 120_000);

    // Chromium's WebGPU on its SwiftShader adapter (test/helpers/lab-tab.ts starts it so); Firefox
    // ESR offers no WebGPU headless
    it.skipIf(browser !== 'chromium')('runs every view on the webgpu backend in the tab, with the library\'s loss, attention, ablation and steered tokens', async () => {
      const { page } = session.lp;
      const { tab: gpu, js } = await tabLoss('webgpu');
      console.log(`webgpu in the tab: mean loss ${gpu}, js ${js} (|webgpu − js| ${Math.abs(gpu - js).toExponential(2)})`);
      expect(Math.abs(gpu - js)).toBeLessThan(1e-4);
      await click(page, 'tab-attention');
      await click(page, 'run-attention');
      await click(page, 'head-1-2');
      const pattern = await patternOnPage(page);
      const T = IDS.length;
      const err = patternDiff(pattern);
      console.log(`webgpu in the tab: L1H2 pattern, max difference to the library ${err.toExponential(2)}`);
      expect(pattern.length).toBe(T);
      expect(err).toBeLessThan(1e-5);
      // zeroing the head: the logit change the library computes
      await click(page, 'ablate-head');
      const shown = Number(await page.attr('[data-testid="head-ablation-result"]', 'data-change'));
      const V = session.ref.model.dims.vocabSize;
      const last = () => { const a = collect(session.ref.model, IDS, []).logits!; return a.data.slice((T - 1) * V, T * V); };
      const before = last();
      const after = withInterventions(session.ref.model, [{ hook: 'blocks.1.attn.hook_z', op: 'zero', unit: { heads: [2] } }], last);
      const target = argmax(before);
      console.log(`webgpu in the tab: ablate L1H2 logit change ${shown}, library ${after[target]! - before[target]!}`);
      expect(Math.abs(shown - (after[target]! - before[target]!))).toBeLessThan(1e-4);
      // the other views run on the device without an error (click() fails on one shown)
      await click(page, 'tab-lens');
      await click(page, 'run-lens');
      await page.waitForSelector('[data-testid="lens-final"]');
      await idle(page);
      expect(await page.text('[data-testid="lens-final"]')).toMatch(/^#\d+$/);
      await click(page, 'tab-activations');
      await click(page, 'run-activations');
      await page.waitForSelector('[data-testid="massive-heatmap"] svg');
      await idle(page);
      expect(await page.count('[data-testid="massive-heatmap"] svg')).toBeGreaterThan(0);
      await runPatch();
      // steering: the vector made on the device, the streams the library's greedy tokens
      await click(page, 'tab-steer');
      await page.select('[data-testid="steer-layer"]', '1');
      await page.fill('[data-testid="steer-max"]', '6');
      await setSteerStrength(8);
      await click(page, 'run-steer');
      await page.waitForSelector('[data-testid="steer-done"]');
      const steered = (await page.text('[data-testid="stream-steered"]'))!;
      const pos = (await page.value('[data-testid="steer-pos"]')).split('\n');
      const neg = (await page.value('[data-testid="steer-neg"]')).split('\n');
      const sv = steeringVectors(session.ref.model, session.ref.tokenizer, { pairs: pos.map((p, i) => ({ positive: p, negative: neg[i]! })), positives: [], negatives: [] }, { layers: [1], method: 'mean_diff' });
      const lib = (strength: number) => withInterventions(session.ref.model, [steeringIntervention(sv, 1, strength)], () => generate(session.ref.model, [IDS], { maxNewTokens: 6, eosTokenIds: [] })).newIds[0]!.map((i) => `#${i}`).join(' ');
      const base = (await page.text('[data-testid="stream-base"]'))!;
      console.log(`webgpu in the tab: unsteered "${base}", steered "${steered}"; library "${lib(0)}", "${lib(8)}"`);
      expect(base).toBe(lib(0));
      expect(steered).toBe(lib(8));
      expect(steered).not.toBe(base);
      await click(page, 'tab-tokens');
      await page.select('[data-testid="backend"]', 'js');
    }, 300_000);

    it('works from a plain static host: an organism, picked files or a URL, in the tab', async () => {
      // A bare file server: no token, no API, no cross-origin isolation headers.
      const types: Record<string, string> = { '.html': 'text/html', '.js': 'text/javascript', '.css': 'text/css' };
      const organisms = resolve(organismDir('induction'), '..');
      const server = createServer((req, res) => {
        const path = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
        const file = path.startsWith('/models/') ? join(organisms, path.slice('/models/'.length)) : join(session.pageDir, path === '/' ? 'index.html' : path);
        if (!existsSync(file) || !statSync(file).isFile()) { res.writeHead(404).end('not found'); return; }
        res.writeHead(200, { 'Content-Type': types[extname(file)] ?? 'application/octet-stream' });
        createReadStream(file).pipe(res);
      });
      await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
      const port = (server.address() as { port: number }).port;
      const page = await session.lp.newTab();
      try {
        await page.goto(`http://127.0.0.1:${port}/`);
        expect(await page.text('header')).toMatch(/Runs in this tab/);
        const mean = async () => {
          await click(page, 'tab-tokens');
          await click(page, 'run-tokens');
          return page.attr('[data-testid="mean-loss"]', 'data-value');
        };
        await click(page, 'load-organism');
        await page.fill('[data-testid="prompt"]', PROMPT);
        const fromOrganism = await mean();
        await page.setFiles('[data-testid="files"]', [join(organismDir('induction'), 'config.json'), join(organismDir('induction'), 'model.safetensors')]);
        await idle(page);
        expect(await page.text('[data-testid="model-info"]')).toMatch(/config.json, model.safetensors/);
        await page.fill('[data-testid="prompt"]', PROMPT);
        const fromFiles = await mean();
        await page.fill('[data-testid="url"]', `http://127.0.0.1:${port}/models/induction`);
        await click(page, 'load-url');
        await page.fill('[data-testid="prompt"]', PROMPT);
        const fromUrl = await mean();
        const here = (await runView(session.ref, 'tokens', { prompt: PROMPT })).mean_loss;
        console.log(`static host: mean loss organism ${fromOrganism}, files ${fromFiles}, URL ${fromUrl}; in Node ${here}`);
        expect(Number(fromOrganism)).toBe(here);
        expect(fromOrganism).not.toBeNull();
        expect(fromFiles).toBe(fromOrganism);
        expect(fromUrl).toBe(fromOrganism);
      } finally {
        await page.close();
        server.close();
      }
    }, 300_000);
  });
}
