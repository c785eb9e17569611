// Planted truth: activations made from known sparse directions plus noise; TopK and ReLU-L1 SAEs
// trained by actlab recover at least 90% of the directions at cosine >= 0.9.
import { beforeAll, describe, expect, it } from 'vitest';
import * as al from '../src/index.js';
import { arraySource } from '../src/sae/data.js';
import { plantedActivations, recoveredDirections } from '../src/sae/planted.js';
import { trainSae } from '../src/sae/train.js';

let wasm: al.Backend;
beforeAll(async () => { wasm = await al.initBackend('wasm'); });

const D = 24;
const FEATURES = 48;
const data = () => plantedActivations({ d: D, features: FEATURES, rows: 30000, density: 3 / FEATURES, noise: 0.01, seed: 11 });

describe('planted truth', () => {
  it('TopK recovers >= 90% of the directions at cosine >= 0.9', async () => {
    const p = data();
    const r = await trainSae(arraySource(p.x, D, { batchSize: 256, seed: 1 }), {
      architecture: 'topk', dSae: 2 * FEATURES, k: 4, tokens: 256 * 1500, batchSize: 256, lr: 3e-3, seed: 2, deadFeatureWindow: 100, backend: wasm,
    });
    const rec = recoveredDirections(r.sae, p.directions, D);
    console.log(`topk: ${(rec.fraction * 100).toFixed(1)}% of ${FEATURES} directions at cos >= 0.9 (median best cos ${median(rec.best).toFixed(3)}), FVU ${r.last!.fvu.toFixed(4)}, L0 ${r.last!.l0.toFixed(2)}`);
    expect(rec.fraction).toBeGreaterThanOrEqual(0.9);
  }, 180_000);

  it('ReLU-L1 recovers >= 90% of the directions at cosine >= 0.9', async () => {
    const p = data();
    const r = await trainSae(arraySource(p.x, D, { batchSize: 256, seed: 1 }), {
      architecture: 'standard', dSae: 2 * FEATURES, coefficient: 0.3, coefficientWarmupSteps: 100, tokens: 256 * 1500, batchSize: 256, lr: 3e-3, seed: 2, backend: wasm,
    });
    const rec = recoveredDirections(r.sae, p.directions, D);
    console.log(`relu-l1: ${(rec.fraction * 100).toFixed(1)}% of ${FEATURES} directions at cos >= 0.9 (median best cos ${median(rec.best).toFixed(3)}), FVU ${r.last!.fvu.toFixed(4)}, L0 ${r.last!.l0.toFixed(2)}`);
    expect(rec.fraction).toBeGreaterThanOrEqual(0.9);
  }, 180_000);

  it('BatchTopK (saved as JumpReLU with its running threshold) and JumpReLU recover >= 90% too', async () => {
    const p = data();
    for (const [arch, extra] of [['batchtopk', { k: 4 }], ['jumprelu', { coefficient: 0.3, coefficientWarmupSteps: 100, initThreshold: 0.1 }]] as const) {
      const r = await trainSae(arraySource(p.x, D, { batchSize: 256, seed: 1 }), {
        architecture: arch, dSae: 2 * FEATURES, tokens: 256 * 1500, batchSize: 256, lr: 3e-3, seed: 2, deadFeatureWindow: 100, backend: wasm, ...extra,
      });
      const rec = recoveredDirections(r.sae, p.directions, D);
      const x = al.Tensor.from(p.x.subarray(0, D * 2000), [2000, D], 'f32', wasm);
      const acts = r.sae.encode(x);
      const l0 = (acts.dataSync() as Float32Array).filter((v) => v !== 0).length / 2000;
      acts.dispose();
      x.dispose();
      console.log(`${arch}: ${(rec.fraction * 100).toFixed(1)}% of directions at cos >= 0.9; training L0 ${r.last!.l0.toFixed(2)}, inference L0 ${l0.toFixed(2)}, FVU ${r.last!.fvu.toFixed(4)}`);
      expect(rec.fraction).toBeGreaterThanOrEqual(0.9);
      if (arch === 'batchtopk') expect(Math.abs(l0 - 4)).toBeLessThan(0.5);
    }
  }, 300_000);
});

function median(a: Float32Array): number {
  const s = [...a].sort((x, y) => x - y);
  return s[Math.floor(s.length / 2)]!;
}
