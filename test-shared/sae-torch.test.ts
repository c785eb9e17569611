// SAE proof on real activations: TopK and ReLU-L1 SAEs trained by actlab and by PyTorch
// (bench/sae_torch.py) from the same store, initial weights and batch order reach FVU and L0 within
// 5% of each other, on stories260K's residual stream and on the induction organism; and a TopK SAE
// spliced into stories260K: CE loss recovered and greedy text beside the clean model's.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as al from '../src/index.js';
import { loadModel, type LoadedModel } from '../src/models/load.js';
import { generate } from '../src/models/generate.js';
import { ActivationStore } from '../src/store/reader.js';
import { harvest } from '../src/store/writer.js';
import { storeSource } from '../src/sae/data.js';
import { evaluateSae } from '../src/sae/eval.js';
import { saeHooks } from '../src/sae/splice.js';
import { trainSae } from '../src/sae/train.js';
import { compareWithTorch, findTorch, inductionStore } from '../bench/sae-run.js';

const DIR = new URL('../../shared/data/stories260K/', import.meta.url).pathname;
const CORPUS = new URL('../../shared/data/tinyshakespeare/input.txt', import.meta.url).pathname;
const HOOK = 'blocks.2.hook_resid_post';
let wasm: al.Backend;
let work: string;
let stories: LoadedModel;
const storeDir = () => join(work, 'stories-store');

beforeAll(async () => {
  wasm = await al.initBackend('wasm');
  work = mkdtempSync(join(tmpdir(), 'actlab-sae-torch-'));
  stories = await loadModel(`${DIR}stories260K.bin`, { backend: wasm, tokenizerPath: `${DIR}tok512.bin` });
  await harvest({
    model: stories.model, tokenizer: stories.tokenizer!, corpus: CORPUS, outDir: storeDir(), context: 128,
    maxTokens: 128 * 900, source: 'stories260K', hooks: [HOOK, 'blocks.2.ln2.hook_normalized', 'blocks.2.hook_mlp_out'],
  });
}, 300_000);
afterAll(() => { stories?.model.dispose(); rmSync(work, { recursive: true, force: true }); });

const torch = findTorch();

describe.skipIf(!torch)('actlab SAE training = PyTorch (same data, init and order)', () => {
  const cases = [
    { what: 'stories260K blocks.2.hook_resid_post', store: () => storeDir(), hook: HOOK },
    { what: 'induction organism blocks.1.hook_resid_post', store: () => join(work, 'induction-store'), hook: 'blocks.1.hook_resid_post' },
  ];
  for (const c of cases) {
    for (const arch of ['topk', 'standard'] as const) {
      it(`${arch === 'standard' ? 'relu-l1' : arch} on ${c.what}: FVU and L0 within 5%`, async () => {
        if (c.what.startsWith('induction')) await inductionStore(c.store(), wasm, 2048);
        const [a, t] = await compareWithTorch({
          store: c.store(), hook: c.hook, arch, k: 16, coefficient: 5, coefficientWarmup: 5, dSae: 256, tokens: 2048 * 40, batchSize: 2048,
          lr: 1e-3, lrWarmup: 3, lrDecay: 8, deadWindow: 10, workDir: work, backend: wasm,
        });
        const dF = Math.abs(a!.fvu - t!.fvu) / t!.fvu;
        const dL = Math.abs(a!.l0 - t!.l0) / t!.l0;
        console.log(`${arch} on ${c.what}: actlab FVU ${a!.fvu.toFixed(5)} L0 ${a!.l0.toFixed(3)} (${Math.round(a!.tokens_per_s)} tok/s) | PyTorch FVU ${t!.fvu.toFixed(5)} L0 ${t!.l0.toFixed(3)} (${Math.round(t!.tokens_per_s)} tok/s) | differ ${(dF * 100).toFixed(3)}% / ${(dL * 100).toFixed(3)}%`);
        expect(dF).toBeLessThan(0.05);
        expect(dL).toBeLessThan(0.05);
        expect(a!.fvu).toBeLessThan(1);
      }, 600_000);
    }
  }
});

describe('a TopK SAE spliced into stories260K', () => {
  it('recovers most of the CE loss; greedy text beside the clean model', async () => {
    const store = await ActivationStore.open(storeDir());
    const r = await trainSae(storeSource(store, { hook: HOOK, batchSize: 2048, seed: 1, backend: wasm }), {
      architecture: 'topk', dSae: 512, k: 32, tokens: 2048 * 60, batchSize: 2048, lr: 1e-3, backend: wasm,
      normalizeActivations: 'expected_average_only_in', metadata: { hook_name: HOOK },
    });
    const ev = await evaluateSae(stories.model, r.sae, store, { contexts: 32 });
    const tok = stories.tokenizer!;
    const ids = tok.encode('Once upon a time, there was a little girl');
    const clean = generate(stories.model, [ids], { maxNewTokens: 40 });
    const spliced = stories.model.withHooks(saeHooks(r.sae), () => generate(stories.model, [ids], { maxNewTokens: 40 }));
    const a = clean.ids[0]!;
    const b = spliced.ids[0]!;
    let same = 0;
    while (same < Math.min(a.length, b.length) && a[same] === b[same]) same++;
    console.log(`stories260K + TopK SAE (k 32, 512 features) at ${HOOK}: L0 ${ev.l0.toFixed(1)}, FVU ${ev.fvu.toFixed(4)}, CE clean ${ev.ce_clean.toFixed(4)}, with SAE ${ev.ce_sae.toFixed(4)}, zero-ablated ${ev.ce_zero_ablation.toFixed(4)}, CE loss recovered ${(100 * ev.ce_loss_recovered).toFixed(1)}%`);
    console.log(`greedy, clean:       ${JSON.stringify(tok.decode(a))}`);
    console.log(`greedy, SAE spliced: ${JSON.stringify(tok.decode(b))}  (first ${same - ids.length} new tokens identical)`);
    expect(ev.ce_loss_recovered).toBeGreaterThan(0.5);
  }, 600_000);
});

describe('transcoders spliced into stories260K', () => {
  for (const arch of ['transcoder', 'skip_transcoder'] as const) {
    it(`${arch} of block 2's MLP (ln2 output -> hook_mlp_out): CE loss recovered`, async () => {
      const store = await ActivationStore.open(storeDir());
      const data = storeSource(store, { hook: 'blocks.2.ln2.hook_normalized', targetHook: 'blocks.2.hook_mlp_out', batchSize: 2048, seed: 1, backend: wasm });
      const r = await trainSae(data, {
        architecture: arch, dSae: 512, coefficient: 0.5, tokens: 2048 * 60, batchSize: 2048, lr: 3e-3, backend: wasm,
        normalizeActivations: 'none', metadata: { hook_name: 'blocks.2.ln2.hook_normalized', hook_name_out: 'blocks.2.hook_mlp_out' },
      });
      const ev = await evaluateSae(stories.model, r.sae, store, { contexts: 32 });
      console.log(`stories260K + ${arch} (512 features) at blocks.2 MLP: L0 ${ev.l0.toFixed(1)}, FVU ${ev.fvu.toFixed(4)}, CE clean ${ev.ce_clean.toFixed(4)}, with transcoder ${ev.ce_sae.toFixed(4)}, MLP zero-ablated ${ev.ce_zero_ablation.toFixed(4)}, CE loss recovered ${(100 * ev.ce_loss_recovered).toFixed(1)}%`);
      expect(ev.fvu).toBeLessThan(1);
      expect(ev.ce_loss_recovered).toBeGreaterThan(0.3);
    }, 600_000);
  }
});
