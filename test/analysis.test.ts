// The analyses on models with planted ground truth: each must find exactly what was planted and
// nothing else of its kind. A hand-wired induction model (src/organisms/planted.ts) plants a
// previous-token head, an induction head, a sink head, a massive dimension and a fixed MLP
// density; random Llama / GPT-2 / Mixtral models get a massive embedding entry, a first-token
// head and routing to check the same analyses on the real architectures.
import { beforeAll, describe, expect, it } from 'vitest';
import * as al from '../src/index.js';
import { ARCHITECTURES, architectureOf } from '../src/models/registry.js';
import { WeightMap } from '../src/models/weights.js';
import { Rng } from '../src/ops/creation.js';
import { PlantedInductionModel } from '../src/organisms/planted.js';
import {
  activationSparsity, attentionSinks, compareRepresentations, expertRouting, inductionScores,
  lacVoids, layerRepresentations, layerVoids, linearCka, logitLens, massiveActivations, massiveAcrossCheckpoints,
  parseCsv, parseNpy, rsa, svcca, type Matrix,
} from '../src/analysis/index.js';
import type { CausalLM } from '../src/models/model.js';

/** Random weights (like randomModel's) with `edit` applied to each tensor as it is made. */
class PlantedWeights extends WeightMap {
  private made = new Map<string, al.Tensor>();
  private seed: number;
  constructor(private backend: al.Backend, seed: number, private edit: (name: string, data: Float32Array, shape: readonly number[]) => void, private present = /\.bias$|^lm_head|block_sparse_moe/) {
    super(new Map(), 'planted weights');
    this.seed = seed;
  }
  override has(name: string): boolean { return this.made.has(name) || this.present.test(name); }
  override get(name: string, shape?: readonly number[]): al.Tensor {
    const have = this.made.get(name);
    if (have) return have;
    const rng = new Rng(this.seed++);
    const n = shape!.reduce((a, b) => a * b, 1);
    const isNorm = /norm|ln_/.test(name) && name.endsWith('weight');
    const data = Float32Array.from({ length: n }, () => (isNorm ? 1 : 0) + rng.normal() * (isNorm ? 0.1 : name.endsWith('.bias') ? 0.02 : 0.2));
    this.edit(name, data, shape!);
    const t = al.tensor(data, shape!, 'f32', { backend: this.backend });
    this.made.set(name, t);
    return t;
  }
  override maybe(name: string, shape?: readonly number[]): al.Tensor | undefined { return this.has(name) ? this.get(name, shape) : undefined; }
  override dispose(): void { for (const t of this.made.values()) t.dispose(); this.made.clear(); }
}

function plantedModel(config: Record<string, unknown>, backend: al.Backend, edit: ConstructorParameters<typeof PlantedWeights>[2], seed = 1): CausalLM {
  const arch = architectureOf(config);
  return new ARCHITECTURES[arch]!({ ...config, model_type: arch }, new PlantedWeights(backend, seed, edit), backend);
}

const LLAMA = { model_type: 'llama', vocab_size: 61, max_position_embeddings: 64, hidden_size: 32, num_attention_heads: 4, num_key_value_heads: 2, num_hidden_layers: 2, intermediate_size: 40, rope_theta: 10000 };
const GPT2 = { model_type: 'gpt2', n_embd: 24, n_head: 3, n_layer: 2, n_positions: 64, vocab_size: 61 };
const MIXTRAL = { model_type: 'mixtral', vocab_size: 61, max_position_embeddings: 64, hidden_size: 32, num_attention_heads: 4, num_key_value_heads: 2, num_hidden_layers: 2, intermediate_size: 24, num_local_experts: 4, num_experts_per_tok: 2 };

let backend: al.Backend;
beforeAll(async () => { backend = await al.initBackend('js'); });

describe('the hand-wired induction model', () => {
  let m: PlantedInductionModel;
  const seq = (n: number, start = 3) => [1, ...Array.from({ length: n }, (_, i) => start + ((i * 7) % 40))];
  beforeAll(() => { m = new PlantedInductionModel(backend); });

  it('induction: exactly the planted induction head scores high, and copies; the previous-token head is found', () => {
    const r = inductionScores(m, { length: 20, sequences: 3 });
    console.log(r.heads.map((h) => `L${h.layer}H${h.head} prefix ${h.score.toFixed(3)} copy ${h.copying?.toFixed(2)} prev ${h.prev_token.toFixed(3)}`).join('\n'));
    expect(r.induction_heads.map((h) => [h.layer, h.head])).toEqual([[1, 0]]);
    const ind = r.heads.find((h) => h.layer === 1 && h.head === 0)!;
    expect(ind.score).toBeGreaterThan(0.99);
    expect(ind.copying).toBe(1);
    for (const h of r.heads.filter((x) => x !== ind)) { expect(h.score).toBeLessThan(0.1); expect(h.copying).toBe(0); }
    const prevHeads = r.heads.filter((h) => h.prev_token > 0.9).map((h) => [h.layer, h.head]);
    expect(prevHeads).toEqual([[0, 0]]);
  });

  it('sinks: exactly the planted sink head is above ε = 0.3', () => {
    const r = attentionSinks(m, seq(24));
    console.log(r.heads.map((h) => `L${h.layer}H${h.head} ${h.score.toFixed(3)}`).join('  '));
    expect(r.sink_heads.map((h) => [h.layer, h.head])).toEqual([[0, 1]]);
    expect(r.sink_heads[0]!.score).toBeGreaterThan(0.99);
    expect(r.rate).toBe(0.25);
    expect(r.secondary).toEqual([]);
  });

  it('massive: exactly the planted dimension on the planted token, in every layer', () => {
    const ids = [1, 9, 5, 12, 14, 5, 20, 3];
    const r = massiveActivations(m, ids);
    const t = m.truth.massive!;
    const got = r.entries.map((e) => `${e.layer}/${e.pos}/${e.dim}`).sort();
    expect(got).toEqual(['0/2', '0/5', '1/2', '1/5'].map((s) => `${s}/${t.dim}`).sort());
    expect(r.entries.every((e) => e.value === t.value && e.token_id === 5)).toBe(true);
    expect(r.dims).toEqual([{ dim: t.dim, layers: [0, 1], positions: [2, 5], tokens: ['#5', '#5'], max_abs: t.value }]);
    // Raise the threshold above the planted value: nothing.
    expect(massiveActivations(m, ids, { absThreshold: 600 }).entries).toEqual([]);
  });

  it('sparsity: the planted density in every layer and token', () => {
    const r = activationSparsity(m, seq(10));
    expect(r.mode).toBe('zero');
    for (const l of r.layers) expect(l.active).toBeCloseTo(m.truth.mlpDensity, 10);
    for (const row of r.per_token) for (const v of row) expect(v).toBeCloseTo(0.25, 10);
  });

  it('logit lens: the induction head makes the prediction at the last block', () => {
    const ids = [1, 10, 11, 12, 13, 10, 11, 12];
    const r = logitLens(m, ids);
    expect(r.final.id).toBe(13);
    expect(r.layers.map((l) => l.layer)).toEqual(['0_pre', '1_pre', 'final']);
    expect(r.layers.at(-1)!.rank_of_final).toBe(0);
    expect(r.layers[0]!.rank_of_final).toBeGreaterThan(0);
    expect(r.layers[0]!.top[0]!.id).toBe(12); // before the induction head: the weak "repeat" guess
  });

  it('voids: LAC on hand-made norms, and on prompt and generation', () => {
    // Δ = [2, 1, 0.1, 3]: block 1 (Δ 1 < 0.8·0 is false), block 2 (0.1 < 0.8·1 → void), block 3 no.
    expect(lacVoids([0, 2, 3, 3.1, 6.1]).void).toEqual([false, false, true, false]);
    expect(lacVoids([0, 2, 1.5]).void).toEqual([false, true]);
    const r = layerVoids(m, [1, 10, 11, 12, 10, 11], { generateTokens: 4 });
    expect(r.prompt.tokens).toHaveLength(6);
    expect(r.generation!.tokens.map((t) => t.id)).toEqual([12, 10, 11, 12]);
    expect(r.generation!.tokens[0]!.pos).toBe(6);
  });
});

describe('planted in real architectures', () => {
  it('llama: a massive embedding entry on one token id is found in every layer at its positions, nothing else', () => {
    const TOK = 7;
    const DIM = 11;
    const m = plantedModel(LLAMA, backend, (name, data, shape) => { if (name === 'model.embed_tokens.weight') data[TOK * shape[1]! + DIM] = 3000; });
    const ids = [1, 4, 7, 9, 30, 7, 2, 8, 50];
    const r = massiveActivations(m, ids);
    console.log('llama massive:', r.entries.map((e) => `L${e.layer} pos${e.pos} dim${e.dim} ${e.value.toFixed(0)} ×${e.ratio_to_median.toFixed(0)}`).join(', '));
    expect(r.entries.map((e) => `${e.layer}/${e.pos}/${e.dim}`).sort()).toEqual(['0/2', '0/5', '1/2', '1/5'].map((s) => `${s}/${DIM}`));
    const clean = plantedModel(LLAMA, backend, () => {});
    expect(massiveActivations(clean, ids).entries).toEqual([]);
    // Across checkpoints: the clean model has none, the planted one does from block 0.
    const series = massiveAcrossCheckpoints([{ label: 'clean', model: clean }, { label: 'planted', model: m }], ids);
    expect(series.map((s) => [s.label, s.count, s.first_layer])).toEqual([['clean', 0, null], ['planted', 4, 0]]);
    m.dispose(); clean.dispose();
  });

  it('gpt2: a head made to attend only to the first position is the only sink head', () => {
    const D = 5; // the residual dimension that marks position 0
    const H = 1; // the planted head of block 0
    const d = 24; const dh = 8;
    const m = plantedModel(GPT2, backend, (name, data, shape) => {
      if (name === 'wpe.weight') { for (let p = 0; p < shape[0]!; p++) data[p * d + D] = p === 0 ? 10 : 0; }
      if (name === 'wte.weight') { for (let t = 0; t < shape[0]!; t++) data[t * d + D] = 0; }
      if (/^h\.\d\.(attn\.c_attn|mlp\.c_fc)\.weight$/.test(name)) { for (let c = 0; c < shape[1]!; c++) data[D * shape[1]! + c] = 0; }
      if (name === 'h.0.attn.c_attn.weight') {
        for (let r = 0; r < d; r++) for (let i = 0; i < dh; i++) { data[r * 3 * d + H * dh + i] = 0; data[r * 3 * d + d + H * dh + i] = 0; }
        data[D * 3 * d + d + H * dh] = 1; // key: position-0 marker
      }
      if (name === 'h.0.attn.c_attn.bias') { for (let i = 0; i < dh; i++) { data[H * dh + i] = 0; data[d + H * dh + i] = 0; } data[H * dh] = 20; } // query: constant
    });
    const ids = Array.from({ length: 32 }, (_, i) => 3 + ((i * 11) % 55));
    const r = attentionSinks(m, ids);
    console.log('gpt2 sink scores:', r.heads.map((h) => `L${h.layer}H${h.head} ${h.score.toFixed(3)}`).join('  '));
    expect(r.sink_heads.map((h) => [h.layer, h.head])).toEqual([[0, H]]);
    expect(r.sink_heads[0]!.score).toBeGreaterThan(0.95);
    m.dispose();
  });

  it('mixtral: expert loads sum to one, entropy in range, tokens routed to k experts', () => {
    const m = al.randomModel(MIXTRAL, backend, { seed: 3 });
    const r = expertRouting(m, [1, 5, 9, 13, 17, 21, 25, 29])!;
    expect(r.n_experts).toBe(4);
    for (const l of r.layers) {
      expect(l.load.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 6);
      expect(l.normalized_entropy).toBeGreaterThan(0);
      expect(l.normalized_entropy).toBeLessThanOrEqual(1);
      expect(l.imbalance).toBeGreaterThanOrEqual(1);
    }
    expect(r.tokens[0]!.experts[0]).toHaveLength(2);
    expect(expertRouting(plantedModel(LLAMA, backend, () => {}), [1, 2, 3])).toBeNull();
    // Sparsity on MoE layers reads the experts' activations.
    const s = activationSparsity(m, [1, 5, 9, 13]);
    expect(s.layers).toHaveLength(2);
    expect(s.layers[0]!.active).toBeGreaterThan(0.5);
    m.dispose();
  });
});

describe('representational similarity', () => {
  const rng = new Rng(5);
  const rand = (rows: number, cols: number): Matrix => ({ data: Float64Array.from({ length: rows * cols }, () => rng.normal()), rows, cols });
  const rotate = (m: Matrix): Matrix => {
    // An orthogonal mix of the columns plus isotropic scaling: CKA and SVCCA are invariant to it.
    const out = new Float64Array(m.data.length);
    const c = Math.cos(0.7); const s = Math.sin(0.7);
    for (let i = 0; i < m.rows; i++) for (let j = 0; j + 1 < m.cols; j += 2) {
      const a = m.data[i * m.cols + j]!; const b = m.data[i * m.cols + j + 1]!;
      out[i * m.cols + j] = 3 * (c * a - s * b); out[i * m.cols + j + 1] = 3 * (s * a + c * b);
    }
    return { data: out, rows: m.rows, cols: m.cols };
  };

  it('identical up to rotation and scale: CKA = 1, SVCCA = 1, RSA high; independent: low', () => {
    const x = rand(60, 8);
    const y = rotate(x);
    expect(linearCka(x, y)).toBeCloseTo(1, 8);
    expect(svcca(x, y).mean).toBeCloseTo(1, 6);
    expect(rsa(x, x)).toBeCloseTo(1, 10);
    const z = rand(60, 8);
    expect(linearCka(x, z)).toBeLessThan(0.3);
    expect(Math.abs(rsa(x, z))).toBeLessThan(0.2);
    expect(svcca(x, z).mean).toBeLessThan(0.5);
  });

  it('subsampling units and stimuli gives a mean and a spread; layer representations compare', () => {
    const x = rand(50, 16);
    const r = compareRepresentations(x, rotate(x), { units: 8, stimuli: 30, repeats: 5, seed: 1 });
    expect(r.cka.mean).toBeGreaterThan(0.4);
    expect(r.cka.sd).toBeGreaterThan(0);
    const m = new PlantedInductionModel(backend);
    const reps = layerRepresentations(m, [1, 10, 11, 12, 13, 14, 10, 11, 12, 13, 14]);
    expect(reps.labels).toEqual(['embed', '0', '1']);
    expect(linearCka(reps.matrices[1]!, reps.matrices[1]!)).toBeCloseTo(1, 10);
  });

  it('recorded matrices: .npy (v1, f8 and f4, C and Fortran order) and CSV', () => {
    const npy = (descr: string, fortran: boolean, shape: number[], values: number[]) => {
      let header = `{'descr': '${descr}', 'fortran_order': ${fortran ? 'True' : 'False'}, 'shape': (${shape.join(', ')}${shape.length === 1 ? ',' : ''}), }`;
      while ((10 + header.length + 1) % 64) header += ' ';
      header += '\n';
      const size = descr.endsWith('8') ? 8 : 4;
      const out = new Uint8Array(10 + header.length + values.length * size);
      out.set([0x93, ...'NUMPY'.split('').map((c) => c.charCodeAt(0)), 1, 0, header.length & 255, header.length >> 8]);
      out.set(new TextEncoder().encode(header), 10);
      const dv = new DataView(out.buffer, 10 + header.length);
      values.forEach((v, i) => (size === 8 ? dv.setFloat64(i * 8, v, true) : dv.setFloat32(i * 4, v, true)));
      return out;
    };
    expect(parseNpy(npy('<f8', false, [2, 3], [1, 2, 3, 4, 5, 6]))).toEqual({ data: Float64Array.from([1, 2, 3, 4, 5, 6]), rows: 2, cols: 3 });
    expect(parseNpy(npy('<f4', true, [2, 3], [1, 4, 2, 5, 3, 6]))).toEqual({ data: Float64Array.from([1, 2, 3, 4, 5, 6]), rows: 2, cols: 3 });
    expect(parseNpy(npy('<f8', false, [3], [1, 2, 3])).cols).toBe(1);
    expect(parseCsv('a,b\n1,2\n3,4\n')).toEqual({ data: Float64Array.from([1, 2, 3, 4]), rows: 2, cols: 2 });
    expect(() => parseCsv('1,2\n3\n')).toThrow(/row 2/);
  });
});
