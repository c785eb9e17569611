// What the browser test runs inside Chromium: a tiny GPT-2-shaped model with random weights on
// the reference backend, on wasm, and on WebGPU when the browser offers an adapter; the logits of
// each and their largest difference from the reference go to `window.__actlab`.
import '../../src/backends/index.js';
import { initBackend } from '../../src/tensor/engine.js';
import { randomModel } from '../../src/models/random.js';
import { tensor } from '../../src/ops/creation.js';
import { runWithCache } from '../../src/hooks/run.js';

const CONFIG = { model_type: 'gpt2', n_embd: 64, n_head: 4, n_layer: 2, n_positions: 128, vocab_size: 300 };
const IDS = [5, 17, 42, 7, 99, 3, 250, 11];

interface Outcome { backend: string; ok: boolean; detail: string; maxDiff?: number; info?: unknown }

async function logitsOn(name: string): Promise<{ logits: Float32Array; info: unknown; cached: number }> {
  const be = await initBackend(name);
  const model = randomModel(CONFIG, be, { seed: 3, std: 0.05 });
  const x = tensor(IDS, [1, IDS.length], 'i32', { backend: be });
  const { logits, cache } = runWithCache(model, x, { names: /hook_resid_post$/ });
  const out = (await logits.data()) as Float32Array;
  const cached = cache.get('blocks.1.hook_resid_post').size;
  logits.dispose();
  cache.dispose();
  x.dispose();
  model.dispose();
  return { logits: out, info: be.info?.(), cached };
}

async function main(): Promise<{ results: Outcome[]; webgpu: string }> {
  const ref = await logitsOn('js');
  const results: Outcome[] = [];
  const gpu = (navigator as { gpu?: { requestAdapter(): Promise<unknown> } }).gpu;
  const adapter = gpu ? await gpu.requestAdapter() : null;
  const webgpu = !gpu ? 'no navigator.gpu' : adapter ? 'adapter found' : 'navigator.gpu but no adapter';
  for (const name of adapter ? ['wasm', 'webgpu'] : ['wasm']) {
    try {
      const r = await logitsOn(name);
      let maxDiff = 0;
      for (let i = 0; i < ref.logits.length; i++) maxDiff = Math.max(maxDiff, Math.abs(r.logits[i]! - ref.logits[i]!));
      const ok = r.logits.length === ref.logits.length && maxDiff < 1e-4 && r.cached === 8 * 64;
      results.push({ backend: name, ok, detail: `${r.logits.length} logits, cached ${r.cached}`, maxDiff, info: r.info });
    } catch (e) {
      results.push({ backend: name, ok: false, detail: String((e as Error).stack ?? e) });
    }
  }
  return { results, webgpu };
}

(window as unknown as { __actlab: Promise<unknown> }).__actlab = main().catch((e) => ({ error: String(e?.stack ?? e) }));
