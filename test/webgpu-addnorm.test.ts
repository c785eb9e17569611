// The residual add fused with the next norm on WebGPU ('addNorm', layers/norm.ts): a GPT-2 on
// WebGPU against the same weights on the js reference, with no hooks, with hooks that replace the
// sum between the add and the norm (resid_mid, mlp_in, resid_post, resid_pre), and with a hook at
// a norm's hook_scale (the unfused path); decode through the KV cache (keys and values written by
// one copy) gives the same tokens, with 2 · layers + 1 fewer dispatches per step than add and norm
// apart. Skips with the reason where there is no adapter (see webgpu-helpers.ts for SwiftShader).
import { describe, expect, it } from 'vitest';
import * as al from '../src/index.js';
import { randomModel } from '../src/models/random.js';
import { KVCache } from '../src/models/layers/kv-cache.js';
import type { WebGpuBackend } from '../src/backends/webgpu/backend.js';
import type { CausalLM } from '../src/models/model.js';
import type { Tensor } from '../src/tensor/tensor.js';
import { openWebGpu } from './webgpu-helpers.js';
import { TINY } from './helpers/tiny-configs.js';

const { backend: probe, reason } = await openWebGpu();
if (!probe) console.log(`webgpu addNorm tests skipped: ${reason}`);
probe?.dispose();

async function relErr(a: Tensor, b: Tensor): Promise<number> {
  const x = await a.data();
  const y = await b.data();
  let num = 0;
  let den = 0;
  for (let i = 0; i < x.length; i++) { num = Math.max(num, Math.abs(x[i]! - y[i]!)); den = Math.max(den, Math.abs(y[i]!)); }
  return num / den;
}

async function greedy(m: CausalLM, be: al.Backend, prompt: number[], steps: number): Promise<number[]> {
  const cache = new KVCache();
  const out: number[] = [];
  let x = al.tensor(prompt, [1, prompt.length], 'i32', { backend: be });
  for (let s = 0; s < steps; s++) {
    const lg = m.forward(x, { cache, logits: 'last' });
    x.dispose();
    const flat = lg.reshape([-1]);
    const am = al.reduce('argmax', flat, 0);
    const id = (await am.data())[0]!;
    for (const t of [lg, flat, am]) t.dispose();
    out.push(id);
    x = al.tensor([id], [1, 1], 'i32', { backend: be });
  }
  x.dispose();
  cache.dispose();
  return out;
}

describe.skipIf(!probe)('addNorm on webgpu', () => {
  it('GPT-2 with and without hooks between add and norm: logits within 1e-5 of js; decode the same', async () => {
    const js = await al.initBackend('js');
    const gpu = (await al.initBackend('webgpu')) as WebGpuBackend;
    expect(gpu.prefersFusedAddNorm).toBe(true);
    const a = randomModel(TINY.gpt2!, js, { seed: 3, std: 0.3 });
    const b = randomModel(TINY.gpt2!, gpu, { seed: 3, std: 0.3 });
    const ids = [1, 5, 9, 13, 2, 40, 7, 7, 30];
    const add = (v: number) => (t: Tensor) => al.add(t, v);
    const cases: [string, [string | RegExp, (t: Tensor) => Tensor | void][]][] = [
      ['no hooks', []],
      ['read-only hooks at every resid_post', [[/hook_resid_post$/, () => {}]]],
      ['resid_mid replaced', [['blocks.0.hook_resid_mid', add(0.5)]]],
      ['mlp_in replaced', [['blocks.1.hook_mlp_in', add(-0.25)]]],
      ['resid_post replaced (next ln1 and ln_final)', [['blocks.0.hook_resid_post', add(1)], ['blocks.1.hook_resid_post', add(-1)]]],
      ['resid_pre and attn_in replaced', [['blocks.1.hook_resid_pre', add(0.3)], ['blocks.0.hook_attn_in', add(0.2)]]],
      ['ln2 hook_scale listened to', [['blocks.0.ln2.hook_scale', () => {}]]],
    ];
    for (const [what, hooks] of cases) {
      const xa = al.tensor(ids, [1, ids.length], 'i32', { backend: js });
      const xb = al.tensor(ids, [1, ids.length], 'i32', { backend: gpu });
      const la = al.runWithHooks(a, xa, { hooks });
      const lb = al.runWithHooks(b, xb, { hooks });
      const err = await relErr(lb, la);
      console.log(`addNorm, ${what}: logits rel. err ${err.toExponential(2)}`);
      expect(err).toBeLessThan(1e-5);
      for (const t of [xa, xb, la, lb]) t.dispose();
    }
    const ta = await greedy(a, js, ids, 6);
    const tb = await greedy(b, gpu, ids, 6);
    expect(tb).toEqual(ta);
    // dispatches per decode step, add and norm apart vs fused
    const perStep = async () => {
      const d0 = gpu.rt.stats.dispatches;
      await greedy(b, gpu, [3], 5);
      return gpu.rt.stats.dispatches - d0;
    };
    gpu.prefersFusedAddNorm = false;
    const apart = await perStep();
    gpu.prefersFusedAddNorm = true;
    const fused = await perStep();
    console.log(`dispatches for 5 steps: add and norm apart ${apart}, fused ${fused}`);
    expect(apart - fused).toBe(5 * (2 * b.dims.nLayers + 1));
    a.dispose();
    b.dispose();
  }, 240_000);
});
