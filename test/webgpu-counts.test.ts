// What decode steps and runWithCache cost the WebGPU backend in host-side work, as counts (never
// times): after warm-up a decode step makes no pipeline, bind group or buffer and submits once
// (a tiny model's step fits one batch of dispatches), hooks included; runWithCache records the
// same submits as a plain forward and the same dispatches but the activations whose
// pre-activation it keeps (unfused there), makes nothing new and reads nothing back.
// Runs wherever an adapter exists (SwiftShader included, see webgpu-helpers.ts).
import { afterAll, describe, expect, it } from 'vitest';
import '../src/backends/index.js';
import type { WebGpuBackend } from '../src/backends/webgpu/backend.js';
import { tensor } from '../src/ops/creation.js';
import { greedyToken } from '../src/models/generate.js';
import { randomModel } from '../src/models/random.js';
import { KVCache } from '../src/models/layers/kv-cache.js';
import { runWithCache } from '../src/hooks/run.js';
import type { CausalLM } from '../src/models/model.js';
import { openWebGpu } from './webgpu-helpers.js';

const { backend, reason } = await openWebGpu();
if (!backend) console.log(`webgpu count tests skipped: ${reason}`);
const CFG = { model_type: 'gpt2', n_embd: 64, n_head: 4, n_layer: 2, n_positions: 256, vocab_size: 500 };
const NAMES = /^blocks\.\d+\.(hook_resid_(pre|mid|post)|attn\.hook_(q|k|v|pattern|z)|hook_attn_out|mlp\.hook_(pre|post)|hook_mlp_out)$/;
type Stats = WebGpuBackend['rt']['stats'];
const delta = (a: Stats, b: Stats) => Object.fromEntries(Object.keys(a).map((k) => [k, b[k as keyof Stats] - a[k as keyof Stats]])) as Stats;

describe.skipIf(!backend)('webgpu host-side counts', () => {
  const be = backend as WebGpuBackend;
  // Made only where an adapter exists: the suite's body is collected even when it is skipped.
  const model = (backend ? randomModel(CFG, be, { seed: 3, std: 0.05 }) : null) as CausalLM;
  afterAll(() => { model?.dispose(); be?.dispose(); });

  /** Greedy steps after a 20-token prompt; the stats of the last `steps` (the cache holds 32 from the first step). */
  async function decode(steps: number): Promise<Stats> {
    const cache = new KVCache();
    const p = tensor(Array.from({ length: 20 }, (_, i) => (i * 37) % 500), [1, 20], 'i32', { backend: be });
    let id = await greedyToken(model.forward(p, { cache, logits: 'last' }));
    p.dispose();
    let s0 = { ...be.rt.stats };
    for (let s = 0; s < 3 + steps; s++) {
      if (s === 3) s0 = { ...be.rt.stats };
      const t = tensor([id], [1, 1], 'i32', { backend: be });
      const lg = model.forward(t, { cache, logits: 'last' });
      t.dispose();
      id = await greedyToken(lg);
    }
    const d = delta(s0, be.rt.stats);
    cache.dispose();
    return d;
  }

  it('a decode step submits once and makes no pipeline, bind group or buffer', async () => {
    for (const hooked of [false, true]) {
      let calls = 0;
      const run = () => decode(6);
      const d = hooked ? await model.withHooks([[/hook_resid_post$/, () => { calls++; }]], run) : await run();
      console.log(`decode${hooked ? ' (hooked)' : ''}, 6 steps:`, JSON.stringify(d));
      expect(d.pipelines).toBe(0);
      expect(d.bindGroups).toBe(0);
      expect(d.buffersCreated).toBe(0);
      expect(d.submits).toBe(6);
      expect(d.reads).toBe(6);
      if (hooked) expect(calls).toBe(10 * CFG.n_layer); // the prompt, 3 warm-up steps, 6 counted
    }
  }, 300_000);

  it('runWithCache records what a plain forward records (but hooked fusions), makes nothing new and reads nothing', async () => {
    const x = tensor(Array.from({ length: 24 }, (_, i) => (i * 11) % 500), [1, 24], 'i32', { backend: be });
    const plain = async () => { model.forward(x).dispose(); await be.flush(); };
    const cached = async () => {
      const r = runWithCache(model, x, { names: NAMES });
      r.logits.dispose();
      await be.flush();
      const n = r.cache.names().length;
      r.cache.dispose();
      return n;
    };
    await plain();
    await cached();
    let s0 = { ...be.rt.stats };
    await plain();
    const p = delta(s0, be.rt.stats);
    s0 = { ...be.rt.stats };
    const kept = await cached();
    const c = delta(s0, be.rt.stats);
    console.log('forward:', JSON.stringify(p), 'runWithCache:', JSON.stringify(c));
    expect(kept).toBe(12 * CFG.n_layer);
    // caching mlp.hook_pre keeps the activation its own op (fused into the product otherwise), and
    // caching attn.hook_pattern takes the probabilities path, whose head-major z is copied to token
    // order (the plain forward's attention writes token order itself)
    expect(c.dispatches).toBe(p.dispatches + 2 * CFG.n_layer);
    expect(c.submits).toBe(p.submits);
    for (const s of [p, c]) {
      expect(s.pipelines).toBe(0);
      expect(s.bindGroups).toBe(0);
      expect(s.buffersCreated).toBe(0);
      expect(s.reads).toBe(0);
    }
    x.dispose();
  }, 300_000);
});
