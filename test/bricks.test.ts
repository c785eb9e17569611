// Functional partitions ("bricks") with planted truth. Clustering: 30 neurons in 3 planted groups
// that fire together (each position switches one group on) must be split exactly into those groups.
// Ablation: a random Llama whose MLP neuron 5 of layer 0 is scaled 40×; the
// brick holding neuron 5 must have the largest KL when ablated, above its random-set control, and
// a brick's effect must equal the loss and KL computed directly with the same interventions.
import { describe, expect, it } from 'vitest';
import * as al from '../src/index.js';
import { randomModel } from '../src/models/random.js';
import { Rng, tensor } from '../src/ops/creation.js';
import { brickAblation, brickTokens, coactivationBricks, firing, hookRows } from '../src/probes/bricks.js';
import { logSoftmax } from '../src/ops/nn.js';

describe('co-activation bricks', () => {
  it('recovers planted co-firing groups exactly', () => {
    const r = new Rng(2);
    const units = 30, rows = 1500;
    const group = Array.from({ length: units }, (_, j) => (j * 7) % 3); // interleaved, so order cannot help
    const data = new Float32Array(rows * units);
    for (let i = 0; i < rows; i++) {
      const on = r.int(3);
      for (let j = 0; j < units; j++) data[i * units + j] = (group[j] === on ? 1 : 0) + 0.3 * r.normal();
    }
    const p = coactivationBricks(data, rows, units, { bricks: 3, activeRate: 0.2 });
    const purity = p.bricks.map((b) => { const c = [0, 0, 0]; for (const u of b.units) c[group[u]!]!++; return Math.max(...c) / b.units.length; });
    console.log(`bricks: sizes ${p.bricks.map((b) => b.units.length).join(',')}, purity ${purity.map((x) => x.toFixed(2)).join(',')}, contrast ${p.contrast.toFixed(2)} (${p.method})`);
    expect(p.bricks.map((b) => b.units.length).sort()).toEqual([10, 10, 10]);
    expect(purity.every((x) => x === 1)).toBe(true);
    expect(p.contrast).toBeGreaterThan(2);
    for (const b of p.bricks) expect(b.cohesion).toBeGreaterThan(b.coupling);
    const km = coactivationBricks(data, rows, units, { bricks: 3, activeRate: 0.2, spectralLimit: 10 });
    expect(km.method).toBe('kmeans');
    expect(km.bricks.map((b) => b.units.length).sort()).toEqual([10, 10, 10]);
    expect(() => coactivationBricks(data, rows, units, { bricks: 1 })).toThrow(/from 2 to 30/);
    expect(() => firing(data, rows, units, 1.5)).toThrow(/activeRate/);
  });

  it('ablating the brick of a planted strong neuron moves the output most; effects match a direct computation', async () => {
    const backend = await al.initBackend('js');
    const config = { model_type: 'llama', vocab_size: 64, max_position_embeddings: 32, hidden_size: 32, num_attention_heads: 4, num_key_value_heads: 2, num_hidden_layers: 1, intermediate_size: 24, rope_theta: 10000 };
    const model = randomModel(config, backend, { seed: 4 });
    const hook = 'blocks.0.mlp.hook_post';
    // Neuron 5 made 40x louder by a scale intervention held for the whole test.
    const loud: al.Intervention[] = [{ hook, op: 'scale', factor: 40, unit: { neurons: [5] } }];
    const rng = new Rng(1);
    const ctxs = Array.from({ length: 6 }, () => Array.from({ length: 10 }, () => rng.int(64)));
    const res = al.withInterventions(model, loud, () => {
      const rows = hookRows(model, ctxs, hook);
      const p = coactivationBricks(rows.data, rows.rows, rows.units, { bricks: 4, activeRate: 0.2 });
      const fx = brickAblation(model, hook, p, [ctxs], { controls: 2 });
      const B = firing(rows.data, rows.rows, rows.units, 0.2);
      const toks = brickTokens(B, rows.units, p, ctxs.flat(), { minCount: 1 });
      // Direct: the same zero ablation of brick 0, computed with model.forward and logSoftmax.
      const b0 = p.bricks[0]!.units;
      const lp = (list: al.Intervention[]) => al.withInterventions(model, list, () => al.tidy(() => logSoftmax(model.forward(tensor(ctxs.flat(), [6, 10], 'i32', { backend }))).dataSync() as Float32Array));
      const clean = lp([]);
      const abl = lp([{ hook, op: 'zero', unit: { neurons: b0 } }]);
      let kl = 0, dl = 0, n = 0;
      for (let r = 0; r < 60; r++) {
        for (let v = 0; v < 64; v++) kl += Math.exp(clean[r * 64 + v]!) * (clean[r * 64 + v]! - abl[r * 64 + v]!);
        if (r % 10 < 9) { const t = ctxs[Math.floor(r / 10)]![r % 10 + 1]!; dl += clean[r * 64 + t]! - abl[r * 64 + t]!; n++; }
      }
      return { p, fx, toks, direct: { kl: kl / 60, dLoss: dl / n } };
    });
    const holder = res.p.assign[5]!;
    const fx = res.fx;
    console.log(fx.map((f) => `brick ${f.brick} (${f.size}): KL ${f.effects[0]!.kl.toFixed(4)} dLoss ${f.effects[0]!.dLoss.toFixed(4)} | control KL ${f.control[0]!.kl.toFixed(4)}`).join('\n') + `\nneuron 5 in brick ${holder}`);
    const best = fx.reduce((a, b) => (b.effects[0]!.kl > a.effects[0]!.kl ? b : a));
    expect(best.brick).toBe(holder);
    expect(best.effects[0]!.kl).toBeGreaterThan(best.control[0]!.kl);
    expect(Math.abs(fx[0]!.effects[0]!.kl - res.direct.kl)).toBeLessThan(1e-5);
    expect(Math.abs(fx[0]!.effects[0]!.dLoss - res.direct.dLoss)).toBeLessThan(1e-5);
    expect(res.toks.length).toBe(res.p.bricks.length);
    model.dispose();
  }, 120_000);
});
