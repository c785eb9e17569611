// Opening the WebGPU backend for tests. Where no GPU driver exists but Debian's Chromium is
// installed, its SwiftShader Vulkan driver (a CPU implementation) gives Dawn an adapter, so the
// kernels run for real on any machine with /usr/lib/chromium; elsewhere the tests skip and say why.
// ACTLAB_WEBGPU_ICD=none turns SwiftShader off; =PATH picks another Vulkan ICD json.
// Also the set-up the packed KV-cache tests share (rows, a tiny llama on the device and on wasm).
import { existsSync } from 'node:fs';
import type { Backend } from '../src/tensor/backend.js';
import * as al from '../src/index.js';
import type { CausalLM } from '../src/models/model.js';
import { randomModel } from '../src/models/random.js';
import { KVCacheQuant } from '../src/models/kvquant/cache.js';
import { resolveKVSpec, type KVCacheSpec } from '../src/models/kvquant/spec.js';
import { calibrateKV } from '../src/kvquant/calibrate.js';
import { generate, generateAsync } from '../src/models/generate.js';
import { TINY } from './helpers/tiny-configs.js';

const SWIFTSHADER = '/usr/lib/chromium/vk_swiftshader_icd.json';

export function chooseVulkanDriver(): string {
  const want = process.env.ACTLAB_WEBGPU_ICD;
  if (want === 'none') return 'system Vulkan drivers';
  if (want) { process.env.VK_ICD_FILENAMES = want; return want; }
  if (process.env.VK_ICD_FILENAMES) return process.env.VK_ICD_FILENAMES;
  if (!existsSync('/dev/nvidia0') && !existsSync('/dev/dri') && existsSync(SWIFTSHADER)) {
    process.env.VK_ICD_FILENAMES = SWIFTSHADER;
    return `SwiftShader (${SWIFTSHADER})`;
  }
  return 'system Vulkan drivers';
}

/** The backend, or the reason there is none. */
export async function openWebGpu(): Promise<{ backend: Backend | null; reason: string; driver: string }> {
  const driver = chooseVulkanDriver();
  try {
    const { createWebGpuBackend } = await import('../src/backends/webgpu/backend.js');
    const backend = await createWebGpuBackend();
    return { backend, reason: '', driver };
  } catch (e) {
    return { backend: null, reason: (e as Error).message, driver };
  }
}

// ---- shared by the packed KV-cache tests (webgpu-kv-cache, webgpu-kvquant) ----

/** Largest absolute value. */
export const maxAbs = (a: ArrayLike<number>) => { let m = 0; for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]!)); return m; };

/** Uniform in (−1, 1), every `outlierEvery`-th value (from 3) times 40 (a fixed LCG: the same rows on every machine). */
export function randomRow(n: number, seed: number, outlierEvery = 0): Float32Array {
  let s = seed;
  const rnd = () => { s = (s * 1103515245 + 12345) >>> 0; return s / 2 ** 32; };
  return Float32Array.from({ length: n }, (_, i) => (rnd() * 2 - 1) * (outlierEvery && i % outlierEvery === 3 ? 40 : 1));
}

/** Largest difference (NaN counts as infinite). */
export function maxDiffNaN(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) { const d = Math.abs(a[i]! - b[i]!); m = Math.max(m, Number.isNaN(d) ? Infinity : d); }
  return m;
}

/** The tiny llama (4 heads over 2 KV heads of 16, seed 3) built on the device and on wasm, and the 24-token prompt fed to it. */
export function kvTestModels(gpu: al.Backend, wasm: al.Backend): { mg: CausalLM; mw: CausalLM; seq: number[] } {
  const cfg = { ...TINY.llama!, hidden_size: 64, num_attention_heads: 4, num_key_value_heads: 2, max_position_embeddings: 128 };
  const seq = [1, 5, 9, 22, 31, 5, 9, 22, 40, 41, 3, 7, 12, 5, 9, 22, 31, 50, 2, 8, 17, 33, 5, 9];
  return { mg: randomModel(cfg, gpu, { seed: 3 }), mw: randomModel(cfg, wasm, { seed: 3 }), seq };
}

/**
 * A kvquant-4 cache spec calibrated on the test llama itself (1% of the values fall outside the
 * ranges). The ranges and τ are quantiles of the same tokens' keys (layer 0's pre-RoPE keys depend
 * on the token alone), so values lie exactly on them and the last bit of a backend's product would
 * decide whether they are outliers: widened by 0.1% so that each backend decides the same.
 */
export function kvquant4Calibrated(mw: CausalLM): KVCacheSpec {
  const calIds = Array.from({ length: 200 }, (_, i) => 1 + ((i * 37 + 11) % 60));
  const cal = calibrateKV(mw, calIds, resolveKVSpec({ type: 'kvquant', bits: 4 }));
  for (const l of cal.layers) {
    const { lo, hi } = l.keys;
    for (let c = 0; c < lo!.length; c++) { const w = 1e-3 * (hi![c]! - lo![c]!); lo![c]! -= w; hi![c]! += w; }
    l.values.tau! *= 1.001;
  }
  return { type: 'kvquant', bits: 4, calibration: cal };
}

/**
 * The prompt's logits through a fresh cache of `spec`, max relative errors: the device against
 * wasm, and the device's packed attention kernel against its pattern-hook path (hook_pattern
 * registered, so attention runs on dequantized keys and values).
 */
export async function kvLogitErrors(m: { mg: CausalLM; mw: CausalLM; seq: number[] }, spec: KVCacheSpec): Promise<{ vsWasm: number; vsHookPath: number }> {
  const run = async (model: CausalLM, hooks?: al.Hooks) => {
    const cache = new KVCacheQuant(spec, model.backend);
    const x = al.tensor(m.seq, [1, m.seq.length], 'i32', { backend: model.backend });
    const y = model.forward(x, { cache, hooks });
    const out = (await y.data()) as Float32Array;
    for (const t of [x, y]) t.dispose();
    cache.dispose();
    return out;
  };
  const hooks = new al.Hooks();
  hooks.add(/hook_pattern$/, (t) => t);
  const [g, w, gp] = [await run(m.mg), await run(m.mw), await run(m.mg, hooks)];
  return { vsWasm: maxDiffNaN(g, w) / maxAbs(w), vsHookPath: maxDiffNaN(g, gp) / maxAbs(gp) };
}

/** Six greedy tokens after the prompt's first six with a cache of `spec`, on the device and on wasm; tensors left alive on the way (should be 0). */
export async function kvGreedy(m: { mg: CausalLM; mw: CausalLM; seq: number[] }, spec: KVCacheSpec): Promise<{ gpu: number[]; wasm: number[]; leaked: number }> {
  const before = al.liveTensors().tensors;
  const a = await generateAsync(m.mg, [m.seq.slice(0, 6)], { maxNewTokens: 6, kvCache: spec });
  const b = generate(m.mw, [m.seq.slice(0, 6)], { maxNewTokens: 6, kvCache: spec });
  return { gpu: a.newIds[0]!, wasm: b.newIds[0]!, leaked: al.liveTensors().tensors - before };
}
