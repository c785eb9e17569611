// SAE training with weights, Adam state and dead-feature counters kept on the backend
// (src/sae/step-device.ts, the path WebGPU takes) against the host-array trainer on the same
// data, init and order: TopK with the auxiliary-k loss on dead features, and ReLU-L1. On the js
// reference backend everywhere, and on WebGPU where an adapter exists (SwiftShader here).
import { afterAll, describe, expect, it } from 'vitest';
import '../src/backends/index.js';
import { createJsBackend } from '../src/backends/js/backend.js';
import type { Backend } from '../src/tensor/backend.js';
import { Tensor } from '../src/tensor/tensor.js';
import { arraySource } from '../src/sae/data.js';
import { initSae } from '../src/sae/init.js';
import { plantedActivations } from '../src/sae/planted.js';
import { trainSae, type SaeStepInfo } from '../src/sae/train.js';
import type { SaeConfig } from '../src/sae/config.js';
import { openWebGpu } from './webgpu-helpers.js';

const js = createJsBackend();
const gpu = await openWebGpu();
if (!gpu.backend) console.log(`sae-resident webgpu part skipped: ${gpu.reason}`);
afterAll(() => gpu.backend?.dispose());

const D = 12;
const data = plantedActivations({ d: D, features: 24, rows: 1024, seed: 9 });

async function run(arch: 'topk' | 'standard', backend: Backend, resident: boolean) {
  const cfg: SaeConfig = {
    architecture: arch, d_in: D, d_sae: 96, ...(arch === 'topk' ? { k: 3 } : {}), apply_b_dec_to_input: true,
    normalize_activations: 'none', dtype: 'float32', metadata: {},
  };
  const steps: SaeStepInfo[] = [];
  const r = await trainSae(arraySource(data.x, D, { batchSize: 16, seed: 4 }), {
    architecture: arch, dSae: 96, k: 3, coefficient: 0.5, coefficientWarmupSteps: 3, tokens: 16 * 12, batchSize: 16, lr: 3e-3,
    lrWarmupSteps: 2, lrDecaySteps: 4, deadFeatureWindow: 1, init: initSae(cfg, { seed: 7 }), scalingFactor: 1.5,
    backend, resident, onStep: (s) => steps.push(s),
  });
  return { r, steps };
}

function maxDiff(a: Float32Array, b: Float32Array): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

async function compare(arch: 'topk' | 'standard', backend: Backend, tol: number) {
  const host = await run(arch, js, false);
  const dev = await run(arch, backend, true);
  for (const nm of ['W_enc', 'b_enc', 'W_dec', 'b_dec']) {
    const d = maxDiff(host.r.sae.param(nm), dev.r.sae.param(nm));
    console.log(`${arch} on ${backend.name}, resident vs host: ${nm} max |diff| ${d.toExponential(2)}`);
    expect(d).toBeLessThan(tol);
  }
  expect(dev.steps.length).toBe(host.steps.length);
  for (let i = 0; i < host.steps.length; i++) {
    const [h, g] = [host.steps[i]!, dev.steps[i]!];
    expect(g.dead).toBe(h.dead);
    expect(Math.abs(g.loss - h.loss)).toBeLessThan(tol * Math.max(1, h.loss));
    expect(Math.abs(g.l0 - h.l0)).toBeLessThan(1e-9 + tol * 100);
  }
  if (arch === 'topk') expect(host.steps.some((s) => s.dead > 0 && s.aux > 0)).toBe(true); // the auxiliary-k path ran
  expect(maxDiff(host.r.featureDensity, dev.r.featureDensity)).toBeLessThan(1e-6);
  // Inference on the backend: encode keeps the same top-k.
  const x = Tensor.from(data.x.subarray(0, 32 * D), [32, D], 'f32', backend);
  const a = await dev.r.sae.encode(x).data();
  const xh = Tensor.from(data.x.subarray(0, 32 * D), [32, D], 'f32', js);
  const b = host.r.sae.encode(xh).dataSync();
  console.log(`${arch} on ${backend.name}: encode max |diff| ${maxDiff(a as Float32Array, b as Float32Array).toExponential(2)}`);
  expect(maxDiff(a as Float32Array, b as Float32Array)).toBeLessThan(tol * 10);
  x.dispose(); xh.dispose(); dev.r.sae.dispose(); host.r.sae.dispose();
}

describe('SAE training kept on the backend', () => {
  it('matches the host trainer on the js backend (topk with aux-k, relu-l1)', async () => {
    await compare('topk', js, 2e-5);
    await compare('standard', js, 2e-5);
  }, 60_000);

  it('refuses architectures it does not run, naming them', async () => {
    await expect(trainSae(arraySource(data.x, D, { batchSize: 64 }), { architecture: 'jumprelu', dSae: 16, tokens: 64, backend: js, resident: true }))
      .rejects.toThrow(/topk and standard.*jumprelu/);
  });

  it.skipIf(!gpu.backend)('matches the host trainer on WebGPU', async () => {
    await compare('topk', gpu.backend!, 2e-4);
    await compare('standard', gpu.backend!, 2e-4);
  }, 240_000);
});
