// Every intervention op on WebGPU against the js reference: the logits of a small random model
// with the intervention applied (hooks run on the device; masks and constants uploaded), within
// 1e-4, and steered greedy generation with its per-step positions. Skips with the reason where
// there is no adapter (see webgpu-helpers.ts for SwiftShader).
import { describe, expect, it } from 'vitest';
import * as al from '../src/index.js';
import { randomModel } from '../src/models/random.js';
import { withInterventions, type Intervention } from '../src/interventions/index.js';
import { openWebGpu } from './webgpu-helpers.js';
import { TINY } from './helpers/tiny-configs.js';

const { backend: probe, reason } = await openWebGpu();
if (!probe) console.log(`webgpu intervention tests skipped: ${reason}`);
probe?.dispose();

describe.skipIf(!probe)('interventions on webgpu', () => {
  it('every op: logits within 1e-4 of js; generation steered the same', async () => {
    const js = await al.initBackend('js');
    const gpu = await al.initBackend('webgpu');
    const a = randomModel(TINY.llama!, js, { seed: 5, std: 0.15 });
    const b = randomModel(TINY.llama!, gpu, { seed: 5, std: 0.15 });
    const R = 'blocks.1.hook_resid_pre';
    const v = Array.from({ length: 32 }, (_, i) => Math.sin(i * 1.3 + 4));
    const all: Intervention[][] = [
      [{ hook: R, op: 'add', vector: v, strength: 2 }], [{ hook: R, op: 'set', value: v, positions: [2] }],
      [{ hook: 'blocks.*.attn.hook_z', op: 'scale', factor: 0.3, unit: { heads: [0, 3] } }], [{ hook: R, op: 'project_out', vector: v }],
      [{ hook: 'blocks.0.mlp.hook_post', op: 'zero', unit: { neurons: [1, 7, 30] } }], [{ hook: R, op: 'mean' }],
      [{ hook: R, op: 'resample', source: { shape: [2, 32], data: [...v, ...v.map((x) => -x)] } }], [{ hook: R, op: 'clamp', min: -0.1, max: 0.1 }],
      [{ hook: R, op: 'interpolate', target: v, alpha: 0.7, positions: 'last' }],
      [{ hook: 'blocks.0.attn.hook_pattern', op: 'scale', factor: 0, unit: { heads: [1] }, positions: [3] }],
    ];
    const ids = [3, 17, 5, 9, 22, 8];
    for (const list of all) {
      const la = withInterventions(a, list, () => a.forward(al.tensor(ids, [1, 6], 'i32', { backend: js })));
      const lb = withInterventions(b, list, () => b.forward(al.tensor(ids, [1, 6], 'i32', { backend: gpu })));
      const x = la.dataSync();
      const y = await lb.data();
      let err = 0;
      for (let i = 0; i < x.length; i++) err = Math.max(err, Math.abs(x[i]! - y[i]!));
      console.log(`${list[0]!.op} at ${list[0]!.hook}: max |webgpu - js| = ${err.toExponential(2)}`);
      expect(err).toBeLessThan(1e-4);
      la.dispose(); lb.dispose();
    }
    const steer: Intervention[] = [{ hook: R, op: 'add', vector: v, strength: 4, positions: { start: 4 } }];
    const ga = withInterventions(a, steer, () => al.generate(a, [ids, [3, 17]], { maxNewTokens: 6 }));
    const gb = await withInterventions(b, steer, () => al.generateAsync(b, [ids, [3, 17]], { maxNewTokens: 6 }));
    expect(gb.newIds).toEqual(ga.newIds);
    a.dispose(); b.dispose();
  }, 300_000);
});
