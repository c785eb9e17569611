// Concept neurons (Neural FOXP2's recipe) with planted truth. The statistics: units shifted for the
// target rows must rank first by Cohen's d, and the difference SVD must find a planted direction
// (both Gram paths agreeing). The model: a random Llama whose embedding gives unit 7 the value 5
// on the target "language" (tokens 100..119) and 0 on the source one (tokens 20..39), with tied
// unembedding, so raising unit 7 promotes target tokens. Unit 7 must come first among the
// target-selective units with a positive lift, the label's token set must be target tokens, the
// shift must raise the label's mass more than the same recipe on random units, and an SAE whose
// feature 0 reads unit 7 must find feature 0 and trace it back to unit 7.
import { describe, expect, it } from 'vitest';
import * as al from '../src/index.js';
import { ARCHITECTURES } from '../src/models/registry.js';
import { Rng } from '../src/ops/creation.js';
import { Sae } from '../src/sae/sae.js';
import { conceptNeurons, conceptShift, labelMassAndLoss } from '../src/probes/concept-neurons.js';
import { differenceSpectrum, selectivity, topSingular, UnitMoments } from '../src/probes/unit-stats.js';
import { PlantedWeights, plantedLlamaConfig } from './helpers/planted-weights.js';

const CONFIG = plantedLlamaConfig(160);
const TARGET = Array.from({ length: 20 }, (_, i) => 100 + i);
const SOURCE = Array.from({ length: 20 }, (_, i) => 20 + i);

/** Planted: the target tokens' embedding rows are large in dimension 7. */
const weights = (backend: al.Backend) => new PlantedWeights(backend, {
  normStd: 0.05,
  plant: (name, data, shape) => { if (name === 'model.embed_tokens.weight') for (const t of TARGET) data[t * shape[1]! + 7] = 5; },
});

function contexts(tokens: number[], n: number, len: number, seed: number): number[][] {
  const r = new Rng(seed);
  return Array.from({ length: n }, () => Array.from({ length: len }, () => tokens[r.int(tokens.length)]!));
}

describe('unit statistics', () => {
  it('ranks planted units by selectivity and finds a planted difference direction', () => {
    const r = new Rng(5);
    const d = 40;
    const t = new UnitMoments(d);
    const s = new UnitMoments(d);
    const dir = Float32Array.from({ length: d }, () => r.normal());
    const norm = Math.hypot(...dir);
    dir.forEach((_, i) => { dir[i]! /= norm; });
    const rowsT: Float32Array[] = [];
    const rowsS: Float32Array[] = [];
    for (let i = 0; i < 200; i++) {
      const a = Float32Array.from({ length: d }, () => r.normal());
      const b = Float32Array.from({ length: d }, () => r.normal());
      a[3] += 2; a[17] += 1.5; a[9] -= 2;
      t.add(a, 1);
      s.add(b, 1);
      const c = 3 + r.normal() * 0.3;
      rowsT.push(Float32Array.from({ length: d }, (_, i) => 0.3 * r.normal() + c * dir[i]!));
      rowsS.push(Float32Array.from({ length: d }, () => 0.3 * r.normal()));
    }
    const sel = selectivity(t, s).sort((x, y) => y.d - x.d);
    console.log(`selectivity: top ${sel.slice(0, 2).map((x) => `${x.unit}:${x.d.toFixed(2)}`).join(' ')}, bottom ${sel[d - 1]!.unit}:${sel[d - 1]!.d.toFixed(2)}`);
    expect(sel.slice(0, 2).map((x) => x.unit)).toEqual([3, 17]);
    expect(sel[d - 1]!.unit).toBe(9);
    const spec = differenceSpectrum(rowsT, rowsS, 4);
    let cos = 0;
    for (let i = 0; i < d; i++) cos += spec.directions[0]![i]! * dir[i]!;
    console.log(`difference SVD: cos(top, planted) ${cos.toFixed(4)}, explained ${spec.explained.toFixed(3)}, stability ${spec.stability.toFixed(4)}, eigengap ${spec.eigengap.toFixed(3)}, effective rank ${spec.effectiveRank.toFixed(2)}`);
    expect(cos).toBeGreaterThan(0.99); // signed to agree with the mean difference
    expect(spec.explained).toBeGreaterThan(0.5);
    expect(spec.stability).toBeGreaterThan(0.98);
    expect(spec.gapRank).toBe(1);
    // The n < d path (Gram of rows) gives the same singular values as the d <= n one.
    const D = Float64Array.from({ length: 6 * 10 }, () => r.normal());
    const wide = topSingular(D, 6, 10, 3);
    const Dt = new Float64Array(60);
    for (let i = 0; i < 6; i++) for (let j = 0; j < 10; j++) Dt[j * 6 + i] = D[i * 10 + j]!;
    const tall = topSingular(Dt, 10, 6, 3);
    for (let i = 0; i < 3; i++) expect(Math.abs(wide.values[i]! - tall.values[i]!)).toBeLessThan(1e-9);
  });
});

describe('concept neurons on a planted model', () => {
  it('finds the planted unit, its lift, the label tokens, and a shift that beats random units', async () => {
    const backend = await al.initBackend('js');
    const model = new ARCHITECTURES.llama!(CONFIG, weights(backend), backend);
    const target = contexts(TARGET, 16, 12, 1);
    const source = contexts(SOURCE, 16, 12, 2);
    const r = conceptNeurons(model, target, source, { hooks: ['hook_embed', 'blocks.0.hook_resid_post'], candidates: 4, top: 2, liftContexts: 4 });
    const first = r.targetUnits[0]!;
    console.log(`target units: ${r.targetUnits.map((u) => `${u.hook}#${u.unit} d=${u.d.toFixed(1)} lift=${u.lift.toFixed(4)}`).join('; ')}; window ${r.window.join(',')}`);
    expect(first.unit).toBe(7);
    expect(first.lift).toBeGreaterThan(0);
    expect(r.targetUnits.filter((u) => u.hook === 'hook_embed')[0]!.unit).toBe(7);
    expect(r.tokens.ids.length).toBeGreaterThan(0);
    expect(r.tokens.ids.every((t) => TARGET.includes(t))).toBe(true);
    for (const l of r.layers) expect(l.spectrum.singular[0]).toBeGreaterThan(0);
    const base = labelMassAndLoss(model, source, r.tokens.ids);
    const shifted = labelMassAndLoss(model, source, r.tokens.ids, conceptShift(r, { hooks: ['hook_embed'], strength: 1 }));
    const random = labelMassAndLoss(model, source, r.tokens.ids, conceptShift(r, { hooks: ['hook_embed'], strength: 1, support: 'random', seed: 3 }));
    console.log(`label mass on source: base ${base.mass.toFixed(4)}, shift ${shifted.mass.toFixed(4)}, random-unit control ${random.mass.toFixed(4)}`);
    expect(shifted.mass).toBeGreaterThan(base.mass + 0.05);
    expect(shifted.mass).toBeGreaterThan(random.mass + 0.05);

    // An SAE whose feature 0 reads and writes unit 7 (the rest random): feature 0 is found and traced to unit 7.
    const d = 32, n = 8;
    const rng = new Rng(9);
    const W_enc = Float32Array.from({ length: d * n }, () => rng.normal() * 0.05);
    const W_dec = Float32Array.from({ length: n * d }, () => rng.normal() * 0.05);
    for (let i = 0; i < d; i++) { W_enc[i * n] = i === 7 ? 1 : 0; W_dec[i] = i === 7 ? 1 : 0; }
    const sae = new Sae(
      { architecture: 'standard', d_in: d, d_sae: n, apply_b_dec_to_input: false, normalize_activations: 'none', dtype: 'float32', metadata: { hook_name: 'hook_embed' } },
      new Map([['W_enc', W_enc], ['b_enc', new Float32Array(n)], ['W_dec', W_dec], ['b_dec', new Float32Array(d)]]),
    );
    const rs = conceptNeurons(model, target, source, { sae, candidates: 3, top: 1, liftContexts: 4 });
    console.log(`SAE features: ${rs.targetUnits.map((u) => `#${u.unit} d=${u.d.toFixed(1)} lift=${u.lift.toFixed(4)} trace ${u.trace!.map((t) => t.unit).join(',')}`).join('; ')}`);
    expect(rs.mode).toBe('sae');
    expect(rs.targetUnits[0]!.unit).toBe(0);
    expect(rs.targetUnits[0]!.trace![0]!.unit).toBe(7);
    const saeShift = labelMassAndLoss(model, source, rs.tokens.ids, conceptShift(rs, { sae }));
    expect(saeShift.mass).toBeGreaterThan(base.mass + 0.05);
    model.dispose();
  }, 120_000);

  it('names what is wrong with bad input', async () => {
    const backend = await al.initBackend('js');
    const model = new ARCHITECTURES.llama!(CONFIG, weights(backend), backend);
    const t = contexts(TARGET, 4, 8, 1);
    expect(() => conceptNeurons(model, t, contexts(SOURCE, 4, 8, 2), { hooks: ['blocks.9.hook_resid_post'] })).toThrow(/no hook 'blocks.9.hook_resid_post'/);
    expect(() => conceptNeurons(model, t, contexts(SOURCE, 4, 6, 2), { hooks: ['hook_embed'] })).toThrow(/same length/);
    expect(() => conceptNeurons(model, t, [[1, 2, 3, 4, 5, 6, 7, 8]], { hooks: ['hook_embed'] })).toThrow(/at least 2 contexts/);
    expect(() => conceptNeurons(model, t, contexts(SOURCE, 4, 8, 2), { hooks: ['blocks.0.attn.hook_pattern'] })).toThrow(/one vector per position/);
    model.dispose();
  });
});
