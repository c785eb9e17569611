// Training steps on WebGPU against the js reference: a tiny GPT-2 trained three steps with AdamW,
// clipping and weight decay on both backends (batch 4 × 64 tokens, so that the bias and norm-weight
// gradients take the split reductions), losses and parameters compared with the largest difference
// printed. Runs wherever an adapter exists (SwiftShader here).
import { afterAll, describe, expect, it } from 'vitest';
import * as al from '../src/index.js';
import { createJsBackend } from '../src/backends/js/backend.js';
import { randomModel } from '../src/models/random.js';
import { train } from '../src/train/trainer.js';
import { TINY } from './helpers/tiny-configs.js';
import { openWebGpu } from './webgpu-helpers.js';

const { backend, reason } = await openWebGpu();
if (!backend) console.log(`webgpu training tests skipped: ${reason}`);
afterAll(() => backend?.dispose());

describe.skipIf(!backend)('webgpu training steps', () => {
  it('give the reference losses and parameters', async () => {
    const rng = new al.Rng(7);
    const data = Array.from({ length: 8 }, () => Int32Array.from({ length: 65 }, () => rng.int(61)));
    // eps 1e-4: AdamW's m / (√v + eps) turns rounding differences of near-zero gradients into steps of
    // ±lr at eps 1e-8, on any two backends; the larger eps keeps the comparison about the gradients.
    const opts = { steps: 3, batchSize: 4, lr: 1e-2, warmupSteps: 1, clip: 1, weightDecay: 0.1, eps: 1e-4, seed: 3 };
    const run = async (be: al.Backend) => {
      const model = randomModel(TINY.gpt2!, be, { seed: 5, std: 0.1 });
      const losses: number[] = [];
      await train(model, data, { ...opts, onStep: (s) => { losses.push(s.loss); } });
      const params = new Map<string, Float32Array>();
      for (const [n, t] of model.parameters()) params.set(n, (await t.data()) as Float32Array);
      model.dispose();
      return { losses, params };
    };
    const want = await run(createJsBackend());
    const got = await run(backend!);
    const lossErr = Math.max(...want.losses.map((l, i) => Math.abs(l - got.losses[i]!)));
    let paramErr = 0;
    for (const [n, w] of want.params) {
      const g = got.params.get(n)!;
      for (let i = 0; i < w.length; i++) paramErr = Math.max(paramErr, Math.abs(w[i]! - g[i]!));
    }
    console.log(`losses js ${want.losses.map((l) => l.toFixed(5)).join(' ')} webgpu ${got.losses.map((l) => l.toFixed(5)).join(' ')}: max difference ${lossErr.toExponential(2)}; parameters after 3 steps: max difference ${paramErr.toExponential(2)}`);
    expect(lossErr).toBeLessThan(1e-4);
    expect(paramErr).toBeLessThan(1e-4);
  }, 240_000);
});
