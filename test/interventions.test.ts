// The intervention model on small random models: every op on the js reference against a hand
// computation (the activation the next hook sees), wasm against js, generation (every step, with
// positions per sequence in padded batches), exact restore, user hooks still firing, JSON
// round-trips (inline and by safetensors reference), and bad input caught before anything runs.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import * as al from '../src/index.js';
import { randomModel } from '../src/models/random.js';
import type { CausalLM } from '../src/models/model.js';
import {
  addInterventions, compileInterventions, withInterventions, type Intervention,
  interventionsToJSON, parseInterventions, loadInterventions, saveInterventions,
} from '../src/interventions/index.js';
import { resampleIndex } from '../src/interventions/operations.js';
import { TINY } from './helpers/tiny-configs.js';

let js: al.Backend;
let model: CausalLM;
const prompt = [3, 17, 5, 9, 22, 8];

beforeAll(async () => {
  js = await al.initBackend('js');
  model = randomModel(TINY.llama!, js, { seed: 5, std: 0.15 });
});

const ids = (rows: number[][], backend = js) => al.tensor(rows.flat(), [rows.length, rows[0]!.length], 'i32', { backend });
const vec = (n: number, seed: number) => Array.from({ length: n }, (_, i) => Math.sin(seed * 7.1 + i * 1.3));

/** The activation at `name` without interventions and as the next hook sees it with them. */
function beforeAfter(list: Intervention[], name: string, rows: number[][] = [prompt], m = model): { x: Float32Array; y: Float32Array; shape: number[] } {
  const a = al.runWithCache(m, ids(rows, m.backend), { names: [name] });
  const x = Float32Array.from(a.cache.get(name).dataSync() as Float32Array);
  const shape = [...a.cache.get(name).shape];
  a.logits.dispose(); a.cache.dispose();
  const y = withInterventions(m, list, () => {
    const b = al.runWithCache(m, ids(rows, m.backend), { names: [name] });
    const out = Float32Array.from(b.cache.get(name).dataSync() as Float32Array);
    b.logits.dispose(); b.cache.dispose();
    return out;
  });
  return { x, y, shape };
}

function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i]! - b[i]!));
  return a.length === b.length ? d : Infinity;
}

/** Applies `f(row, pos, featureIndex, x)` over a [1, P, D] activation. */
function hand(x: Float32Array, P: number, D: number, f: (p: number, i: number, v: number, rowStart: number) => number): Float32Array {
  const out = new Float32Array(x.length);
  for (let p = 0; p < P; p++) for (let i = 0; i < D; i++) out[p * D + i] = f(p, i, x[p * D + i]!, p * D);
  return out;
}

describe('interventions: every op on the js reference against a hand computation', () => {
  const R = 'blocks.0.hook_resid_post';
  const D = 32;
  const P = prompt.length;
  const v = vec(D, 1);

  const cases: [string, Intervention, (x: Float32Array) => Float32Array][] = [
    ['add, strength 2.5, all positions', { hook: R, op: 'add', vector: v, strength: 2.5 }, (x) => hand(x, P, D, (_, i, a) => a + 2.5 * v[i]!)],
    ['set a vector at positions [1, 4]', { hook: R, op: 'set', value: v, positions: [1, 4] }, (x) => hand(x, P, D, (p, i, a) => (p === 1 || p === 4 ? v[i]! : a))],
    ['scale dims [0, 3] by -0.5', { hook: R, op: 'scale', factor: -0.5, unit: { dims: [0, 3] } }, (x) => hand(x, P, D, (_, i, a) => (i === 0 || i === 3 ? -0.5 * a : a))],
    ['zero a slice of positions', { hook: R, op: 'zero', positions: { start: 2, end: 5 } }, (x) => hand(x, P, D, (p, _, a) => (p >= 2 && p < 5 ? 0 : a))],
    ['clamp to [-0.2, 0.3] at the last position', { hook: R, op: 'clamp', min: -0.2, max: 0.3, positions: 'last' }, (x) => hand(x, P, D, (p, _, a) => (p === P - 1 ? Math.min(0.3, Math.max(-0.2, a)) : a))],
    ['interpolate 30% toward a vector', { hook: R, op: 'interpolate', target: v, alpha: 0.3 }, (x) => hand(x, P, D, (_, i, a) => a + 0.3 * (v[i]! - a))],
    ['interpolate toward a number on neurons', { hook: R, op: 'interpolate', target: 1, alpha: 0.5, unit: { neurons: [5] } }, (x) => hand(x, P, D, (_, i, a) => (i === 5 ? a + 0.5 * (1 - a) : a))],
    ['mean of the call (every position gets the mean)', { hook: R, op: 'mean' }, (x) => hand(x, P, D, (_, i) => { let s = 0; for (let p = 0; p < P; p++) s += x[p * D + i]!; return s / P; })],
    ['mean given as a value at every other position', { hook: R, op: 'mean', value: v, positions: { start: 0, step: 2 } }, (x) => hand(x, P, D, (p, i, a) => (p % 2 === 0 ? v[i]! : a))],
    ['project out a direction', { hook: R, op: 'project_out', vector: v }, (x) => {
      const n = Math.hypot(...v);
      return hand(x, P, D, (_, i, a, r) => { let dot = 0; for (let j = 0; j < D; j++) dot += x[r + j]! * v[j]! / n; return a - dot * v[i]! / n; });
    }],
  ];

  for (const [title, iv, expected] of cases) {
    it(title, () => {
      const { x, y } = beforeAfter([iv], R);
      const want = expected(x);
      const err = maxDiff(y, want);
      console.log(`${title}: max |actlab - hand| = ${err.toExponential(2)}`);
      expect(err).toBeLessThan(1e-5);
    });
  }

  it('resample from a source: each position takes the source row of resampleIndex(seed, row, position)', () => {
    const src = [vec(D, 7), vec(D, 8), vec(D, 9)];
    const { y } = beforeAfter([{ hook: R, op: 'resample', seed: 3, source: { shape: [3, D], data: src.flat() } }], R);
    const chosen = new Set<number>();
    for (let p = 0; p < P; p++) {
      const k = resampleIndex(3, 0, p, 3);
      expect(maxDiff(src[k]!, y.subarray(p * D, p * D + D))).toBeLessThan(1e-6);
      chosen.add(k);
    }
    expect(chosen.size).toBeGreaterThan(1);
  });

  it('heads: zero head 1 of hook_z; add a per-head vector to heads [0, 2]', () => {
    const Z = 'blocks.1.attn.hook_z'; // [1, P, 4, 8]
    const H = 4, Dh = 8;
    const z = beforeAfter([{ hook: Z, op: 'zero', unit: { heads: [1] } }], Z);
    const w = [...vec(Dh, 2), ...vec(Dh, 3)];
    const a = beforeAfter([{ hook: Z, op: 'add', unit: { heads: [0, 2] }, vector: { shape: [2, Dh], data: w } }], Z);
    for (let p = 0; p < P; p++) for (let h = 0; h < H; h++) for (let d = 0; d < Dh; d++) {
      const i = (p * H + h) * Dh + d;
      expect(z.y[i]).toBeCloseTo(h === 1 ? 0 : z.x[i]!, 6);
      const add = h === 0 ? w[d]! : h === 2 ? w[Dh + d]! : 0;
      expect(a.y[i]).toBeCloseTo(a.x[i]! + add, 5);
    }
  });

  it('heads on a pattern: scale head 3 query rows by 0 at position 2', () => {
    const Pn = 'blocks.0.attn.hook_pattern'; // [1, head, q, k]
    const { x, y } = beforeAfter([{ hook: Pn, op: 'scale', factor: 0, unit: { heads: [3] }, positions: [2] }], Pn);
    for (let h = 0; h < 4; h++) for (let q = 0; q < P; q++) for (let k = 0; k < P; k++) {
      const i = (h * P + q) * P + k;
      expect(y[i]).toBe(h === 3 && q === 2 ? 0 : x[i]);
    }
  });

  it('resample without a source swaps batch rows', () => {
    const rows = [prompt, [9, 9, 4, 1, 2, 30]];
    const { x, y } = beforeAfter([{ hook: R, op: 'resample', positions: [3] }], R, rows);
    for (let b = 0; b < 2; b++) for (let p = 0; p < P; p++) for (let i = 0; i < D; i++) {
      const src = p === 3 ? 1 - b : b;
      expect(y[(b * P + p) * D + i]).toBe(x[(src * P + p) * D + i]);
    }
  });

  it('experts: deactivating an expert through its router logit; per-expert hook points', () => {
    const moe = randomModel(TINY.mixtral!, js, { seed: 2, std: 0.2 });
    const L = 'blocks.0.mlp.hook_router_logits';
    const { x, y } = beforeAfter([{ hook: L, op: 'set', value: -Infinity, unit: { experts: [2] } }], L, [prompt], moe);
    for (let i = 0; i < x.length; i++) expect(y[i]).toBe(i % 4 === 2 ? -Infinity : x[i]);
    const idx = withInterventions(moe, [{ hook: L, op: 'set', value: -Infinity, unit: { experts: [2] } }], () => {
      const r = al.runWithCache(moe, ids([prompt]), { names: ['blocks.0.mlp.hook_expert_indices'] });
      const out = Array.from(r.cache.get('blocks.0.mlp.hook_expert_indices').dataSync());
      r.logits.dispose(); r.cache.dispose();
      return out;
    });
    expect(idx).not.toContain(2);
    const c = compileInterventions(moe, [{ hook: 'blocks.*.mlp.experts.*.hook_post', op: 'zero', unit: { experts: [1, 3] } }]);
    expect(c.matches[0]).toEqual(['blocks.0.mlp.experts.1.hook_post', 'blocks.0.mlp.experts.3.hook_post', 'blocks.1.mlp.experts.1.hook_post', 'blocks.1.mlp.experts.3.hook_post']);
    c.dispose();
    moe.dispose();
  });
});

describe('interventions: composition, hooks, restore, generation, backends', () => {
  const R = 'blocks.1.hook_resid_pre';
  const v = vec(32, 4);

  it('compose in list order (add then scale differs from scale then add, both by hand)', () => {
    const a = beforeAfter([{ hook: R, op: 'add', vector: v }, { hook: R, op: 'scale', factor: 2 }], R);
    const b = beforeAfter([{ hook: R, op: 'scale', factor: 2 }, { hook: R, op: 'add', vector: v }], R);
    expect(maxDiff(a.y, a.x.map((x, i) => 2 * (x + v[i % 32]!)))).toBeLessThan(1e-5);
    expect(maxDiff(b.y, b.x.map((x, i) => 2 * x + v[i % 32]!))).toBeLessThan(1e-5);
  });

  it('user hooks still fire and see the intervened activation; removing restores the exact logits', () => {
    const before = Float32Array.from(model.forward(ids([prompt])).dataSync() as Float32Array);
    const h = addInterventions(model, [{ hook: R, op: 'add', vector: v, strength: 3 }]);
    let seen = 0;
    let firstAfter = 0;
    const steered = al.runWithHooks(model, ids([prompt]), { hooks: [[R, (t) => { seen++; firstAfter = t.dataSync()[0]!; }]] });
    h.remove();
    const after = Float32Array.from(model.forward(ids([prompt])).dataSync() as Float32Array);
    expect(seen).toBe(1);
    const plain = al.runWithCache(model, ids([prompt]), { names: [R] });
    expect(firstAfter).toBeCloseTo(plain.cache.get(R).dataSync()[0]! + 3 * v[0]!, 5);
    plain.logits.dispose(); plain.cache.dispose();
    expect(maxDiff(steered.dataSync(), before)).toBeGreaterThan(1e-3);
    expect(Array.from(after)).toEqual(Array.from(before)); // bit-identical
    expect(model.persistentHooks.empty).toBe(true);
  });

  it('generate: applied at every step with its position; padded batches equal each prompt alone', () => {
    const list: Intervention[] = [{ hook: R, op: 'add', vector: v, strength: 4, positions: { start: 4 } }];
    const short = [3, 17, 5];
    const alone = (p: number[]) => withInterventions(model, list, () => al.generate(model, [p], { maxNewTokens: 6 })).newIds[0];
    const batch = withInterventions(model, list, () => al.generate(model, [prompt, short], { maxNewTokens: 6 }));
    expect(batch.newIds[0]).toEqual(alone(prompt));
    expect(batch.newIds[1]).toEqual(alone(short));
    // The same with a hand-written hook that adds at positions ≥ 4 of the one sequence.
    const manual = model.withHooks([[R, (t, hp) => {
      const P = t.shape[1]!;
      const d = Float32Array.from(t.dataSync() as Float32Array);
      for (let p = 0; p < P; p++) if (hp.position + p >= 4) for (let i = 0; i < 32; i++) d[p * 32 + i]! += 4 * v[i]!;
      return al.tensor(d, [...t.shape], 'f32', { backend: js });
    }]], () => al.generate(model, [short], { maxNewTokens: 6 }));
    expect(alone(short)).toEqual(manual.newIds[0]);
    const plain = al.generate(model, [short], { maxNewTokens: 6 });
    console.log(`steered ${JSON.stringify(alone(short))} vs plain ${JSON.stringify(plain.newIds[0])}`);
  });

  it("positions 'prompt' and 'generated' split generation", () => {
    const calls: string[] = [];
    const spy = (t: al.Tensor, hp: al.HookPoint) => { calls.push(`${hp.position}:${t.dataSync()[0]!.toFixed(4)}`); };
    const run = (positions: 'prompt' | 'generated') => {
      calls.length = 0;
      withInterventions(model, [{ hook: R, op: 'zero', positions }], () => model.withHooks([[R, spy]], () => al.generate(model, [prompt], { maxNewTokens: 3 })));
      return [...calls];
    };
    const p = run('prompt');
    expect(p[0]).toBe('0:0.0000');
    expect(p.slice(1).every((c) => !c.endsWith(':0.0000'))).toBe(true);
    const g = run('generated');
    expect(g[0]).not.toBe('0:0.0000');
    expect(g.slice(1).every((c) => c.endsWith(':0.0000'))).toBe(true);
  });

  it('wasm agrees with js for every op', { timeout: 120_000 }, async () => {
    const wasm = await al.initBackend('wasm');
    const mw = randomModel(TINY.llama!, wasm, { seed: 5, std: 0.15 });
    const all: Intervention[][] = [
      [{ hook: R, op: 'add', vector: v, strength: 2 }], [{ hook: R, op: 'set', value: v, positions: [2] }],
      [{ hook: 'blocks.*.attn.hook_z', op: 'scale', factor: 0.3, unit: { heads: [0, 3] } }], [{ hook: R, op: 'project_out', vector: v }],
      [{ hook: 'blocks.0.mlp.hook_post', op: 'zero', unit: { neurons: [1, 7, 30] } }], [{ hook: R, op: 'mean' }],
      [{ hook: R, op: 'resample', source: { shape: [2, 32], data: [...v, ...vec(32, 9)] } }], [{ hook: R, op: 'clamp', min: -0.1, max: 0.1 }],
      [{ hook: R, op: 'interpolate', target: v, alpha: 0.7, positions: 'last' }],
    ];
    for (const list of all) {
      const a = withInterventions(model, list, () => model.forward(ids([prompt])));
      const b = withInterventions(mw, list, () => mw.forward(ids([prompt], wasm)));
      const err = maxDiff(a.dataSync(), b.dataSync());
      console.log(`${list[0]!.op}: max |wasm - js| logits = ${err.toExponential(2)}`);
      expect(err).toBeLessThan(1e-4);
      a.dispose(); b.dispose();
    }
    mw.dispose();
  });

  it('JSON round-trips, inline and with vectors in a safetensors file', async () => {
    const list: Intervention[] = [
      { hook: R, op: 'add', vector: v, strength: 1.5, positions: { start: 1 } },
      { hook: 'blocks.0.mlp.hook_router_logits', op: 'set', value: -Infinity, unit: { experts: [1] } },
      { hook: 'blocks.0.attn.hook_z', op: 'zero', unit: { heads: [2] }, positions: 'generated' },
    ];
    const json = JSON.parse(JSON.stringify(interventionsToJSON(list)));
    expect(parseInterventions(json)).toEqual(list);
    const dir = mkdtempSync(join(tmpdir(), 'actlab-iv-'));
    await saveInterventions(list, join(dir, 'steer.json'), { vectorsFile: 'steer.safetensors' });
    const back = await loadInterventions(join(dir, 'steer.json'));
    expect((back[0] as { vector: { data: Float32Array } }).vector.data).toEqual(Float32Array.from(v));
    expect(back.slice(1)).toEqual(list.slice(1));
  });
});

describe('interventions: bad input is caught before anything runs', () => {
  const bad: [string, unknown, RegExp][] = [
    ['a glob that matches nothing', { hook: 'blocks.*.hook_resid_prex', op: 'zero' }, /matches no hook point.*closest/],
    ['a layer out of range', { hook: 'blocks.7.hook_resid_post', op: 'zero' }, /layer 7 is out of range; this llama model has 2 blocks/],
    ['a vector of the wrong width', { hook: 'blocks.0.hook_resid_post', op: 'add', vector: [1, 2, 3] }, /'vector' has shape \[3\].*width 32/],
    ['a head index past the heads', { hook: 'blocks.0.attn.hook_z', op: 'zero', unit: { heads: [4] } }, /head index 4 is out of range; the axis has 4/],
    ['heads on a residual hook', { hook: 'blocks.0.hook_resid_post', op: 'zero', unit: { heads: [0] } }, /needs a hook point with a head axis/],
    ['NaN strength', { hook: 'blocks.0.hook_resid_post', op: 'add', vector: vec(32, 1), strength: NaN }, /strength must be a number, got/],
    ['a NaN in a vector', { hook: 'blocks.0.hook_resid_post', op: 'add', vector: [NaN, ...vec(31, 1)] }, /vector\[0\] must be a number/],
    ['an unknown op', { hook: 'blocks.0.hook_resid_post', op: 'steer' }, /op must be one of add, set/],
    ['an unknown field', { hook: 'blocks.0.hook_resid_post', op: 'scale', factor: 2, strength: 1 }, /unknown field 'strength'/],
    ['experts on a dense model', { hook: 'blocks.0.hook_resid_post', op: 'zero', unit: { experts: [0] } }, /experts need a mixture-of-experts model/],
    ['a dim past the width', { hook: 'blocks.0.mlp.hook_post', op: 'zero', unit: { dims: [40] } }, /dim index 40 is out of range; the axis has 40/],
  ];
  for (const [title, iv, re] of bad) {
    it(title, () => {
      let ran = false;
      expect(() => withInterventions(model, [iv], () => { ran = true; })).toThrow(re);
      expect(ran).toBe(false);
      expect(model.persistentHooks.empty).toBe(true);
    });
  }
});
