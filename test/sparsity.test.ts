// Activation sparsity: the sparse products equal the dense ones on the same zeroed input (js
// reference, and wasm against it with an odd thread count), the rules zero what they say, CHESS's
// calibrated thresholds reach their target sparsity, the sparse decode path of a model equals the
// dense products on the zeroed activations, and bad input (a threshold that would zero a whole
// layer, too little calibration, malformed specs) is refused with a message that says why.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as al from '../src/index.js';
import { createWasmBackend, type WasmBackend } from '../src/backends/wasm/backend.js';
import { maskedMatmul, sparseMatmul } from '../src/ops/sparse.js';
import { randomModel } from '../src/models/random.js';
import { KVCache } from '../src/models/layers/kv-cache.js';
import { planSparsity, quantile, MIN_CALIBRATION_TOKENS } from '../src/sparsity/calibrate.js';
import { applySparsity } from '../src/sparsity/apply.js';
import { thresholdSparsify, topkSparsify } from '../src/sparsity/rules.js';
import { formatSpec, parseSparsity } from '../src/sparsity/spec.js';
import { allocateTeal } from '../src/sparsity/teal-allocate.js';
import { tealSite } from '../src/sparsity/teal.js';
import { TINY } from './helpers/tiny-configs.js';
import { valueAndGrad } from '../src/autograd/index.js';

let js: al.Backend;
let wasm: WasmBackend;

beforeAll(async () => {
  js = await al.initBackend('js');
  wasm = await createWasmBackend({ threads: 3, poison: true });
});
afterAll(() => wasm.dispose());

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

/** Host data: relu of normal values, so about half are exactly 0. */
function halfZero(n: number, seed: number): Float32Array {
  const r = new al.Rng(seed);
  return Float32Array.from({ length: n }, () => Math.max(0, r.normal()));
}

function randomData(n: number, seed: number): Float32Array {
  const r = new al.Rng(seed);
  return Float32Array.from({ length: n }, () => r.normal());
}

describe('sparse products', () => {
  it('sparseMatmul and maskedMatmul equal the dense products on the same zeroed input (js reference)', () => {
    for (const [M, K, N] of [[1, 172, 64], [3, 64, 40], [2, 9, 10]] as const) {
      const x = al.tensor(halfZero(M * K, 1), [M, K], 'f32', { backend: js });
      const w = al.tensor(randomData(K * N, 2), [K, N], 'f32', { backend: js });
      const sparse = sparseMatmul(x, w).dataSync();
      const dense = al.matmul(x, w).dataSync();
      const e1 = maxAbsDiff(sparse, dense);
      // masked: x [M, N] · w [K, N]ᵀ kept where the mask [M, K] is non-zero
      const xm = al.tensor(randomData(M * N, 3), [M, N], 'f32', { backend: js });
      const masked = maskedMatmul(xm, w, x).dataSync();
      const full = al.matmul(xm, w, { transB: true }).dataSync();
      const xs = x.dataSync();
      const expectMasked = Array.from(full, (v, i) => (xs[i] === 0 ? 0 : v));
      const e2 = maxAbsDiff(masked, expectMasked);
      console.log(`js [${M},${K},${N}] sparseMatmul vs matmul max err ${e1.toExponential(2)}; maskedMatmul vs masked matmul ${e2.toExponential(2)}`);
      expect(e1).toBeLessThan(1e-5);
      expect(e2).toBeLessThan(1e-5);
      expect(masked.filter((v, i) => xs[i] === 0 && v !== 0).length).toBe(0);
      for (const t of [x, w, xm]) t.dispose();
    }
  });

  it('the wasm kernels (3 threads, partial sums, odd sizes) equal the js reference', () => {
    for (const [M, K, N] of [[1, 4096, 256], [2, 1000, 12], [1, 64, 8], [1, 7, 6]] as const) {
      const xd = halfZero(M * K, 4);
      const wd = randomData(K * N, 5);
      const on = (b: al.Backend) => ({ x: al.tensor(xd, [M, K], 'f32', { backend: b }), w: al.tensor(wd, [K, N], 'f32', { backend: b }) });
      const r = on(js);
      const g = on(wasm);
      const e1 = maxAbsDiff(sparseMatmul(g.x, g.w).dataSync(), sparseMatmul(r.x, r.w).dataSync());
      const xm = randomData(M * N, 6);
      const rm = al.tensor(xm, [M, N], 'f32', { backend: js });
      const gm = al.tensor(xm, [M, N], 'f32', { backend: wasm });
      const e2 = maxAbsDiff(maskedMatmul(gm, g.w, g.x).dataSync(), maskedMatmul(rm, r.w, r.x).dataSync());
      console.log(`wasm [${M},${K},${N}] vs js: sparseMatmul ${e1.toExponential(2)}, maskedMatmul ${e2.toExponential(2)}`);
      expect(e1).toBeLessThan(1e-3);
      expect(e2).toBeLessThan(1e-3);
    }
  });

  it('thresholds fused into sparseMatmul: wasm (3 threads) equals the js reference and the product of the thresholded input', () => {
    for (const [M, K, N] of [[1, 4096, 256], [1, 300, 2052], [2, 1000, 12], [1, 64, 8], [3, 7, 6]] as const) {
      const xd = randomData(M * K, 8);
      const wd = randomData(K * N, 9);
      const td = Float32Array.from(randomData(K, 10), Math.abs); // |normal|: about half of x is below
      const on = (b: al.Backend) => ({ x: al.tensor(xd, [M, K], 'f32', { backend: b }), w: al.tensor(wd, [K, N], 'f32', { backend: b }), t: al.tensor(td, [K], 'f32', { backend: b }) });
      const r = on(js);
      const g = on(wasm);
      const ref = sparseMatmul(r.x, r.w, r.t).dataSync();
      const xs = Float32Array.from(xd, (v, i) => (Math.abs(v) < td[i % K]! ? 0 : v));
      const zeroed = al.matmul(al.tensor(xs, [M, K], 'f32', { backend: js }), r.w).dataSync();
      const e1 = maxAbsDiff(sparseMatmul(g.x, g.w, g.t).dataSync(), ref);
      const e2 = maxAbsDiff(ref, zeroed);
      console.log(`thresholded sparseMatmul [${M},${K},${N}], ${(100 * xs.filter((v) => v === 0).length / xs.length).toFixed(0)}% skipped: wasm vs js ${e1.toExponential(2)}, js vs matmul of the thresholded x ${e2.toExponential(2)}`);
      expect(e1).toBeLessThan(1e-3);
      expect(e2).toBeLessThan(1e-5);
    }
  });

  it('a thresholded input skips its row (no NaN from an infinite weight), NaN is never skipped, and the gradient is that of the thresholded product', () => {
    for (const b of [js, wasm]) {
      const x = al.tensor([0.1, 2, -0.3, -3], [1, 4], 'f32', { backend: b });
      const t = al.tensor([0.5, 0.5, 0.5, 0.5], [4], 'f32', { backend: b });
      const w = al.tensor([Infinity, Infinity, 1, 3, -Infinity, 1, 1, 1], [4, 2], 'f32', { backend: b });
      expect(Array.from(sparseMatmul(x, w, t).dataSync())).toEqual([-1, 3]);
      const xn = al.tensor([NaN, 0, 0, 0], [1, 4], 'f32', { backend: b });
      expect(Array.from(sparseMatmul(xn, w, t).dataSync()).every(Number.isNaN)).toBe(true);
    }
    const xd = randomData(2 * 6, 11);
    const x = al.tensor(xd, [2, 6], 'f32', { backend: js });
    const w = al.tensor(randomData(6 * 3, 12), [6, 3], 'f32', { backend: js });
    const t = al.tensor(new Float32Array(6).fill(0.7), [6], 'f32', { backend: js });
    const keep = al.tensor(Float32Array.from(xd, (v) => (Math.abs(v) < 0.7 ? 0 : 1)), [2, 6], 'f32', { backend: js });
    const fused = valueAndGrad((a, b) => al.sum(al.square(sparseMatmul(a, b, t)).reshape([-1])))(x, w);
    const plain = valueAndGrad((a, b) => al.sum(al.square(al.matmul(al.mul(a, keep), b)).reshape([-1])))(x, w);
    const eg = Math.max(...fused.grads.map((g, i) => maxAbsDiff(g.dataSync(), plain.grads[i]!.dataSync())));
    console.log(`thresholded sparseMatmul gradients vs matmul of the masked input: max diff ${eg.toExponential(2)}`);
    expect(eg).toBeLessThan(1e-4);
    expect(Math.abs(fused.value.item() - plain.value.item())).toBeLessThan(1e-4);
  });

  it('a zero activation skips its weight row: an infinite weight there does not turn into NaN', () => {
    const x = al.tensor([0, 2], [1, 2], 'f32', { backend: wasm });
    const w = al.tensor([Infinity, Infinity, 1, 3, 1, 3, 1, 3], [2, 4], 'f32', { backend: wasm });
    expect(Array.from(sparseMatmul(x, w).dataSync())).toEqual([2, 6, 2, 6]);
  });
});

describe('sparsity rules', () => {
  it('top-k keeps exactly k entries per row (distinct magnitudes), the largest ones', () => {
    const d = randomData(3 * 40, 7);
    const x = al.tensor(d, [3, 40], 'f32', { backend: js });
    const y = topkSparsify(x, 10).dataSync();
    for (let r = 0; r < 3; r++) {
      const row = Array.from(d.subarray(r * 40, r * 40 + 40));
      const kept = Array.from(y.subarray(r * 40, r * 40 + 40));
      const kth = [...row].map(Math.abs).sort((a, b) => b - a)[9]!;
      expect(kept.filter((v) => v !== 0).length).toBe(10);
      kept.forEach((v, i) => expect(v).toBe(Math.abs(row[i]!) >= kth ? Math.fround(row[i]!) : 0));
    }
  });

  it('a per-channel threshold zeroes |a| below its channel', () => {
    const x = al.tensor([0.5, -0.5, 2, -3, 0.1, 1], [2, 3], 'f32', { backend: js });
    const t = al.tensor([0.6, 0.4, 2.5], [3], 'f32', { backend: js });
    expect(Array.from(thresholdSparsify(x, t).dataSync())).toEqual([0, -0.5, 0, -3, 0, 0]);
  });
});

describe('calibrated sparsity on a model', () => {
  const cfg = { ...TINY.llama!, hidden_size: 64, intermediate_size: 128, num_hidden_layers: 2 };
  const calib = Array.from({ length: 96 }, (_, i) => (i * 37 + 5) % 61);

  it('CHESS thresholds reach the target sparsity; chess+ adds q/o thresholds; quantile is torch.kthvalue', () => {
    expect(quantile(Float32Array.from([5, 1, 4, 2, 3]), 0.5)).toBe(2); // k = floor(5 * 0.5) = 2nd smallest
    const model = randomModel(cfg, js, { seed: 1, std: 0.2 });
    for (const [spec, F] of [['chess:0.5', 0.5], ['cats:0.3', 0.3], ['chess+:0.7', 0.7]] as const) {
      const plan = planSparsity(model, parseSparsity(spec), calib);
      for (const l of plan.layers) {
        console.log(`${spec} block ${l.layer}: ${(100 * l.calibrationSparsity!).toFixed(2)}% zeroed on calibration`);
        expect(Math.abs(l.calibrationSparsity! - F)).toBeLessThan(0.01);
        if (spec.startsWith('chess+')) { expect(l.qThreshold).toBeGreaterThan(0); expect(l.oThreshold).toBeGreaterThan(0); }
      }
    }
    model.dispose();
  }, 60_000);

  it('sparse decode on wasm (sparse kernels) equals dense products on the zeroed activations, and hook_post holds the zeros', () => {
    const model = randomModel(cfg, wasm, { seed: 2, std: 0.2 });
    const plan = planSparsity(model, parseSparsity('chess+:0.5'), calib);
    const decode = (kernels: boolean): { logits: number[]; zeros: number } => {
      const ap = applySparsity(model, plan, { kernels });
      const cache = new KVCache();
      let zeros = 0;
      try {
        const p = al.tensor([1, 2, 3, 4, 5], [1, 5], 'i32', { backend: wasm });
        model.forward(p, { cache, logits: 'last' }).dispose();
        const t = al.tensor([6], [1, 1], 'i32', { backend: wasm });
        const out = model.withHooks([['blocks.0.mlp.hook_post', (a) => { zeros = Array.from(a.dataSync()).filter((v) => v === 0).length; }]],
          () => model.forward(t, { cache, logits: 'last' }));
        return { logits: Array.from(out.dataSync()), zeros };
      } finally {
        cache.dispose();
        ap.remove();
      }
    };
    const a = decode(true);
    const b = decode(false);
    const err = maxAbsDiff(a.logits, b.logits);
    console.log(`decode step: sparse kernels vs dense products on zeroed activations, max logit diff ${err.toExponential(2)}; ${a.zeros}/128 zeros at hook_post`);
    expect(err).toBeLessThan(1e-4);
    expect(a.zeros).toBeGreaterThan(20);
    expect(a.zeros).toBe(b.zeros);
    // and sparsity changed the model: removed, it is the dense model again
    const ids = al.tensor([1, 2, 3, 4, 5, 6], [1, 6], 'i32', { backend: wasm });
    const dense = model.forward(ids, { logits: 'last' });
    expect(maxAbsDiff(dense.dataSync(), a.logits)).toBeGreaterThan(1e-4);
    ids.dispose();
    dense.dispose();
    model.dispose();
  }, 60_000);

  it('teal: each projection input reaches the target sparsity on calibration; its decode (fused thresholds, shared q/k/v and gate/up products) equals dense products on the thresholded inputs', () => {
    for (const [arch, c] of [['llama', cfg], ['gpt2', { ...TINY.gpt2!, n_embd: 64, n_head: 4, n_layer: 2 }]] as const) {
      const live = al.liveTensors().tensors;
      const model = randomModel(c, wasm, { seed: 6, std: 0.2 });
      const plan = planSparsity(model, parseSparsity('teal:0.4'), calib);
      for (const l of plan.layers) {
        expect(Math.abs(l.calibrationSparsity! - 0.4)).toBeLessThan(0.02);
        expect(Object.keys(l.inputThresholds!).length).toBe(arch === 'llama' ? 7 : 4);
      }
      const decode = (kernels: boolean): number[] => {
        const ap = applySparsity(model, plan, { kernels });
        const cache = new KVCache();
        try {
          const p = al.tensor([1, 2, 3, 4, 5], [1, 5], 'i32', { backend: wasm });
          model.forward(p, { cache, logits: 'last' }).dispose();
          p.dispose();
          const out: number[] = [];
          for (const id of [6, 7, 8]) {
            const t = al.tensor([id], [1, 1], 'i32', { backend: wasm });
            const y = model.forward(t, { cache, logits: 'last' });
            out.push(...y.dataSync());
            y.dispose();
            t.dispose();
          }
          return out;
        } finally {
          cache.dispose();
          ap.remove();
        }
      };
      const a = decode(true);
      const b = decode(false);
      const err = maxAbsDiff(a, b);
      const ids = al.tensor([1, 2, 3, 4, 5, 6, 7, 8], [1, 8], 'i32', { backend: wasm });
      const V = model.dims.vocabSize;
      const full = model.forward(ids);
      const dense = Array.from(full.dataSync()).slice(-3 * V);
      full.dispose();
      const moved = maxAbsDiff(dense.slice(-V), a.slice(-V));
      console.log(`teal:0.4 ${arch}: 3 decode steps, fused kernels vs dense products on thresholded inputs, max logit diff ${err.toExponential(2)}; vs the dense model ${moved.toExponential(2)}`);
      expect(err).toBeLessThan(1e-4);
      expect(moved).toBeGreaterThan(1e-4);
      ids.dispose();
      model.dispose();
      expect(al.liveTensors().tensors).toBe(live);
    }
  }, 60_000);

  it('suspend and resume switch a mode off and on without rebuilding it; remove frees what it made', () => {
    const live = al.liveTensors().tensors;
    const model = randomModel(cfg, wasm, { seed: 6, std: 0.2 });
    const plan = planSparsity(model, parseSparsity('teal:0.4'), calib);
    const step = (): number[] => {
      const cache = new KVCache();
      try {
        const p = al.tensor([1, 2, 3, 4, 5], [1, 5], 'i32', { backend: wasm });
        model.forward(p, { cache, logits: 'last' }).dispose();
        p.dispose();
        const t = al.tensor([6], [1, 1], 'i32', { backend: wasm });
        const y = model.forward(t, { cache, logits: 'last' });
        t.dispose();
        const out = Array.from(y.dataSync());
        y.dispose();
        return out;
      } finally {
        cache.dispose();
      }
    };
    const dense = step();
    const ap = applySparsity(model, plan);
    const held = al.liveTensors().tensors;
    const sparse = step();
    ap.suspend();
    const off = step();
    // another mode on the same projections while this one is suspended: resuming is refused
    const other = applySparsity(model, plan, { kernels: false });
    expect(() => ap.resume()).toThrow(/another sparsity mode/);
    other.remove();
    ap.resume();
    ap.resume();
    const on = step();
    console.log(`suspend/resume: suspended vs dense ${maxAbsDiff(off, dense).toExponential(2)}, resumed vs first sparse ${maxAbsDiff(on, sparse).toExponential(2)}, sparse vs dense ${maxAbsDiff(sparse, dense).toExponential(2)}`);
    expect(maxAbsDiff(off, dense)).toBe(0);
    expect(maxAbsDiff(on, sparse)).toBe(0);
    expect(maxAbsDiff(sparse, dense)).toBeGreaterThan(1e-4);
    expect(al.liveTensors().tensors).toBe(held);
    ap.remove();
    model.dispose();
    expect(al.liveTensors().tensors).toBe(live);
  }, 60_000);

  it('teal greedy allocation: per-site sparsities reach each target share of skipped weights, the KL path grows, the thresholds follow each site', () => {
    const live = al.liveTensors().tensors;
    const model = randomModel(cfg, wasm, { seed: 6, std: 0.2 });
    const found = allocateTeal(model, calib, [0.2, 0.35], { ctx: 48, step: 0.1 });
    expect(found.map((f) => f.target)).toEqual([0.2, 0.35]);
    for (const f of found) {
      console.log(`teal greedy on the calibration tokens: ${formatSpec(f.spec)}, ${(100 * f.skipped).toFixed(1)}% of weights skipped, KL ${f.kl.toExponential(3)}`);
      expect(f.skipped).toBeGreaterThanOrEqual(f.target - 1e-9);
      // the plan of the found spec skips what the search measured, each site at its own quantile
      const plan = planSparsity(model, f.spec, calib, { ctx: 48 });
      const s = f.spec.sites!;
      expect(Object.values(s).some((x) => x !== s['mlp.in'])).toBe(true);
      for (const l of plan.layers) {
        const t = l.inputThresholds!;
        expect(t['attn.in.0']).toBe(t['attn.in.1']);
        expect(t['mlp.in']).toBe(t['mlp.up']);
        for (const [role, th] of Object.entries(t)) if (!s[tealSite(role)]) expect(th).toBe(0); // a site left at 0 skips nothing
      }
    }
    expect(found[1]!.kl).toBeGreaterThan(found[0]!.kl);
    expect(found[0]!.kl).toBeGreaterThan(0);
    expect(() => allocateTeal(model, calib, [1.2])).toThrow(/targets are shares of skipped weights in \(0, 1\)/);
    expect(() => planSparsity(model, { method: 'teal', value: 0.3, sites: { 'mlp.gate': 0.2 } as never }, calib)).toThrow(/unknown TEAL site 'mlp.gate'/);
    expect(() => planSparsity(model, { method: 'chess', value: 0.3, sites: { 'mlp.in': 0.2 } }, calib)).toThrow(/per-site sparsities are TEAL's/);
    model.dispose();
    expect(al.liveTensors().tensors).toBe(live);
  }, 120_000);

  it('refuses a threshold that would zero a whole layer, naming the layer and the largest activation', () => {
    const model = randomModel(cfg, js, { seed: 3, std: 0.2 });
    expect(() => planSparsity(model, parseSparsity('threshold:1000'), calib)).toThrow(/threshold:1000 would zero every MLP activation of block 0 \(blocks\.0\.mlp\): the largest \|activation\| on the 96 calibration tokens is [\d.]+/);
    expect(() => planSparsity(model, parseSparsity('threshold:0.01'), [])).toThrow(/give calibration tokens/);
    model.dispose();
  });

  it('refuses calibration that is too short, saying how much is needed', () => {
    const model = randomModel(cfg, js, { seed: 4, std: 0.2 });
    expect(() => planSparsity(model, parseSparsity('chess:0.5'), calib.slice(0, 10))).toThrow(new RegExp(`needs at least ${MIN_CALIBRATION_TOKENS} tokens .* got 10`));
    model.dispose();
  });

  it('refuses malformed specs and models without dense MLPs', () => {
    expect(() => parseSparsity('chess:1.5')).toThrow(/target sparsity in \(0, 1\), got 1\.5/);
    expect(() => parseSparsity('magic:0.5')).toThrow(/METHOD one of topk, threshold, cats, chess, chess\+/);
    expect(() => parseSparsity('topk:2.5')).toThrow(/whole count/);
    expect(() => parseSparsity('threshold:-1')).toThrow(/must be > 0/);
    const moe = randomModel(TINY.mixtral!, js, { seed: 5 });
    expect(() => planSparsity(moe, parseSparsity('topk:0.5'))).toThrow(/no dense MLP blocks/);
    moe.dispose();
  });
});
