// The `random` op and dropout: the same numbers on the js reference and wasm (the op is a
// counter-based hash), uniform in [0, 1) with the moments of a uniform draw, unrelated draws for
// different seeds, and dropout's keep rate, scale and gradient.
import { describe, expect, it } from 'vitest';
import '../src/backends/index.js';
import { initBackend } from '../src/tensor/engine.js';
import { dropout, randomNormal, randomUniform } from '../src/ops/random.js';
import { randomModel } from '../src/models/random.js';
import { tensor } from '../src/ops/creation.js';
import { sum } from '../src/ops/reduce.js';
import { grad } from '../src/autograd/tape.js';
import { randomUniformAt } from '../src/tensor/random-hash.js';

describe('random op', () => {
  it('draws the same uniform numbers on js and wasm, with uniform moments', async () => {
    const js = await initBackend('js');
    const wasm = await initBackend('wasm');
    const a = randomUniform([200, 500], 42, { backend: js });
    const b = randomUniform([200, 500], 42, { backend: wasm });
    const x = a.dataSync() as Float32Array;
    const y = b.dataSync() as Float32Array;
    let diff = 0;
    let mean = 0;
    let sq = 0;
    let min = 1;
    let max = 0;
    for (let i = 0; i < x.length; i++) {
      diff = Math.max(diff, Math.abs(x[i]! - y[i]!));
      mean += x[i]!;
      sq += x[i]! * x[i]!;
      min = Math.min(min, x[i]!);
      max = Math.max(max, x[i]!);
    }
    mean /= x.length;
    const variance = sq / x.length - mean * mean;
    console.log(`random: js vs wasm max |diff| ${diff}; mean ${mean.toFixed(5)} (1/2), variance ${variance.toFixed(5)} (1/12 = 0.08333), range [${min}, ${max}]`);
    expect(diff).toBe(0);
    expect(x[123]).toBe(randomUniformAt(42, 123));
    expect(Math.abs(mean - 0.5)).toBeLessThan(0.005); // 1e5 draws: sd of the mean 9e-4
    expect(Math.abs(variance - 1 / 12)).toBeLessThan(0.002);
    expect(min).toBeGreaterThanOrEqual(0);
    expect(max).toBeLessThan(1);
    // Another seed: an unrelated draw (correlation near 0), not a shifted copy.
    const c = randomUniform([200, 500], 43, { backend: js }).dataSync() as Float32Array;
    let cov = 0;
    let shiftEq = 0;
    for (let i = 0; i < x.length; i++) cov += (x[i]! - 0.5) * (c[i]! - 0.5);
    for (let i = 0; i + 1 < x.length; i++) if (x[i + 1] === c[i]) shiftEq++;
    const corr = cov / x.length / (1 / 12);
    console.log(`random: correlation of seeds 42 and 43 ${corr.toFixed(5)}; equal under a shift of one ${shiftEq}`);
    expect(Math.abs(corr)).toBeLessThan(0.02);
    expect(shiftEq).toBeLessThan(10);
    a.dispose(); b.dispose();
  });

  it('dropout keeps 1 - p of the elements scaled by 1 / (1 - p), and its gradient is the mask', async () => {
    const js = await initBackend('js');
    const n = 20000;
    const x = tensor(new Float32Array(n).fill(2), [n], 'f32', { backend: js });
    x.requireGrad(true);
    const y = dropout(x, 0.2, 5);
    const v = y.dataSync() as Float32Array;
    const kept = v.filter((e) => e !== 0);
    console.log(`dropout p=0.2: kept ${(kept.length / n).toFixed(4)} (0.8)`);
    expect(Math.abs(kept.length / n - 0.8)).toBeLessThan(0.015);
    expect(kept.every((e) => Math.abs(e - 2.5) < 1e-6)).toBe(true);
    const [g] = grad(sum(y, 0), [x]);
    const gv = g!.dataSync() as Float32Array;
    for (let i = 0; i < n; i++) expect(gv[i]).toBeCloseTo(v[i] === 0 ? 0 : 1.25, 6);
    expect(() => dropout(x, 1, 0)).toThrow(/p must lie in \[0, 1\)/);
    expect(() => randomUniform([2], -1, { backend: js })).toThrow(/seed must be an integer/);
  });
});

describe('fused AdamW op', () => {
  it('gives the same parameters and moments as the composed update over several steps', async () => {
    const { AdamW } = await import('../src/train/optim.js');
    const js = await initBackend('js');
    const make = () => new Map([['w', tensor(Float32Array.from({ length: 60 }, (_, i) => Math.sin(i)), [6, 10], 'f32', { backend: js })], ['b', tensor(Float32Array.from({ length: 10 }, (_, i) => Math.cos(i)), [10], 'f32', { backend: js })]]);
    const pa = make();
    const pb = make();
    const groups = [{ name: 'decay', params: ['w'], weightDecay: 0.1 }, { name: 'no_decay', params: ['b'], weightDecay: 0 }];
    const fused = new AdamW(pa, groups, { betas: [0.9, 0.99] });
    const composed = new AdamW(pb, groups, { betas: [0.9, 0.99], fused: false });
    for (let s = 0; s < 4; s++) {
      const grads = (ps: Map<string, import('../src/tensor/tensor.js').Tensor>) => new Map([...ps].map(([n, p]) => [n, tensor(Float32Array.from({ length: p.size }, (_, i) => Math.sin(i * (s + 1)) * 0.3), p.shape, 'f32', { backend: js })]));
      fused.update(grads(pa), 1e-2, s === 2 ? 0.5 : 1);
      composed.update(grads(pb), 1e-2, s === 2 ? 0.5 : 1);
    }
    let worst = 0;
    for (const n of ['w', 'b']) {
      const a = pa.get(n)!.dataSync() as Float32Array;
      const b = pb.get(n)!.dataSync() as Float32Array;
      for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i]! - b[i]!));
    }
    for (const k of fused.state().tensors.keys()) {
      const a = fused.state().tensors.get(k)!.dataSync() as Float32Array;
      const b = composed.state().tensors.get(k)!.dataSync() as Float32Array;
      for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i]! - b[i]!) / Math.max(1e-3, Math.abs(b[i]!)));
    }
    console.log(`fused vs composed AdamW after 4 steps: worst difference ${worst.toExponential(2)}`);
    expect(worst).toBeLessThan(1e-5);
  });
});

describe('randomNormal', () => {
  it('randomNormal: the same normal numbers on js and wasm, with the moments of N(mean, std²); random models drawn that way run', async () => {
    const js = await initBackend('js');
    const wasm = await initBackend('wasm');
    const x = randomNormal([400, 500], 7, { mean: 0.5, std: 2, backend: js }).dataSync() as Float32Array;
    const y = randomNormal([400, 500], 7, { mean: 0.5, std: 2, backend: wasm }).dataSync() as Float32Array;
    let diff = 0, m = 0, m2 = 0, m4 = 0;
    for (let i = 0; i < x.length; i++) { diff = Math.max(diff, Math.abs(x[i]! - y[i]!)); m += x[i]!; }
    m /= x.length;
    for (const v of x) { m2 += (v - m) ** 2; m4 += (v - m) ** 4; }
    m2 /= x.length; m4 /= x.length;
    const kurtosis = m4 / (m2 * m2);
    console.log(`randomNormal: js vs wasm max |diff| ${diff.toExponential(2)}; mean ${m.toFixed(4)} (0.5), variance ${m2.toFixed(4)} (4), kurtosis ${kurtosis.toFixed(3)} (3)`);
    expect(diff).toBeLessThan(1e-5); // log/cos kernels may round differently in the last bits
    expect(Math.abs(m - 0.5)).toBeLessThan(0.02); // 2e5 draws: sd of the mean 0.0045
    expect(Math.abs(m2 - 4)).toBeLessThan(0.1);
    expect(Math.abs(kurtosis - 3)).toBeLessThan(0.1); // a uniform draw would give 1.8
    expect(() => randomNormal([2], -1)).toThrow(/seed must be an integer in \[0, 2\^31\)/);
    const model = randomModel({ model_type: 'gpt2', n_embd: 16, n_head: 2, n_layer: 1, n_positions: 16, vocab_size: 20 }, wasm, { draw: 'backend' });
    const logits = model.forward(tensor([[1, 2, 3]], undefined, 'i32', { backend: wasm })).dataSync();
    expect(logits.length).toBe(60);
    expect(Array.from(logits).every(Number.isFinite)).toBe(true);
    model.dispose();
  });
});
