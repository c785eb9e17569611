// Delta inference: threshold 0 reproduces the dense decode, larger thresholds skip more of the
// projections' work and lose more (KL), the sparse-kernel path gives the same numbers as the dense
// product of the sparse change, the state restarts with each prompt, and a batched decode (one
// change mask per row) equals the dense batched decode at threshold 0 and each sequence decoded
// alone above it, operations saved included.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as al from '../src/index.js';
import { createWasmBackend, type WasmBackend } from '../src/backends/wasm/backend.js';
import { randomModel } from '../src/models/random.js';
import { KVCache } from '../src/models/layers/kv-cache.js';
import { applyDelta, deltaSweep } from '../src/sparsity/delta.js';
import { TINY } from './helpers/tiny-configs.js';

let wasm: WasmBackend;
beforeAll(async () => { wasm = await createWasmBackend({ threads: 2 }); });
afterAll(() => wasm.dispose());

const cfg = { ...TINY.llama!, hidden_size: 64, intermediate_size: 128 };
const prompt = [1, 5, 9, 14, 22, 31, 17, 40];

describe('delta inference', () => {
  it('threshold 0 is the dense model; larger thresholds save more and cost more', () => {
    const model = randomModel(cfg, wasm, { seed: 1, std: 0.2 });
    const rows = deltaSweep(model, prompt, [0, 0.05, 0.2, 1], 12);
    for (const r of rows) console.log(`θ=${r.threshold}: ${(100 * r.ops_saved).toFixed(1)}% of multiply-adds skipped, KL ${r.kl.toExponential(2)}, top-1 ${(100 * r.top1).toFixed(0)}%`);
    expect(rows[0]!.ops_saved).toBe(0);
    expect(rows[0]!.kl).toBeLessThan(1e-6);
    expect(rows[0]!.top1).toBe(1);
    for (let i = 1; i < rows.length; i++) expect(rows[i]!.ops_saved).toBeGreaterThan(rows[i - 1]!.ops_saved);
    expect(rows[3]!.ops_saved).toBeGreaterThan(0.3);
    expect(rows[3]!.kl).toBeGreaterThan(rows[1]!.kl);
    model.dispose();
  }, 60_000);

  it('the sparse-kernel path equals the dense product of the sparse change; a new prompt restarts the state', () => {
    const model = randomModel(cfg, wasm, { seed: 2, std: 0.2 });
    const decode = (kernels: boolean): number[] => {
      const d = applyDelta(model, 0.1, { kernels });
      const out: number[] = [];
      try {
        for (let rep = 0; rep < 2; rep++) { // the second prompt must give the same numbers
          const cache = new KVCache();
          let ids = prompt;
          for (let s = 0; s < 4; s++) {
            const x = al.tensor(ids, [1, ids.length], 'i32', { backend: wasm });
            const y = model.forward(x, { cache, logits: 'last' });
            out.push(...Array.from(y.dataSync()));
            x.dispose();
            y.dispose();
            ids = [(s * 7 + 3) % 60];
          }
          cache.dispose();
        }
      } finally {
        d.remove();
      }
      return out;
    };
    const a = decode(true);
    const b = decode(false);
    let err = 0;
    for (let i = 0; i < a.length; i++) err = Math.max(err, Math.abs(a[i]! - b[i]!));
    const half = a.length / 2;
    let rep = 0;
    for (let i = 0; i < half; i++) rep = Math.max(rep, Math.abs(a[i]! - a[half + i]!));
    console.log(`delta θ=0.1: kernels vs dense product max diff ${err.toExponential(2)}; second prompt vs first ${rep.toExponential(2)}`);
    expect(err).toBeLessThan(1e-4);
    expect(rep).toBe(0);
    expect(() => applyDelta(model, -1)).toThrow(/threshold must be >= 0/);
    model.dispose();
  }, 60_000);

  it('batched decode: one change mask per row; θ = 0 is the dense batched decode, θ > 0 equals each sequence alone (logits and operations saved)', () => {
    const model = randomModel(cfg, wasm, { seed: 3, std: 0.2 });
    const prompts = [prompt, [3, 8, 2, 44, 19, 7, 30, 11], [50, 41, 6, 6, 13, 28, 9, 2]];
    const steps = [[4, 17, 33], [25, 25, 1], [8, 59, 12], [40, 3, 21]]; // the token of each row at each step
    // logits of every step, row by row; with θ, delta inference on
    const run = (rows: number[], theta: number | null, kernels = true): { logits: number[][]; saved: number; done: number; macs: number } => {
      const d = theta === null ? undefined : applyDelta(model, theta, { kernels });
      const cache = new KVCache();
      const logits: number[][] = rows.map(() => []);
      try {
        const feed = (ids: number[][]) => {
          const x = al.tensor(ids.flat(), [ids.length, ids[0]!.length], 'i32', { backend: wasm });
          const y = model.forward(x, { cache, logits: 'last' }); // [batch, 1, vocab]
          const v = y.dataSync();
          const V = v.length / rows.length;
          rows.forEach((_, i) => logits[i]!.push(...v.subarray(i * V, (i + 1) * V)));
          x.dispose();
          y.dispose();
        };
        feed(rows.map((r) => prompts[r]!));
        for (const st of steps) feed(rows.map((r) => [st[r]!]));
      } finally {
        cache.dispose();
        d?.remove();
      }
      return { logits, saved: d ? 1 - d.counts.done / d.counts.macs : 0, done: d?.counts.done ?? 0, macs: d?.counts.macs ?? 0 };
    };
    const diff = (a: number[][], b: number[][]) => Math.max(...a.map((r, i) => Math.max(...r.map((v, j) => Math.abs(v - b[i]![j]!)))));
    const dense = run([0, 1, 2], null);
    const exact = run([0, 1, 2], 0);
    const e0 = diff(exact.logits, dense.logits);
    const batched = run([0, 1, 2], 0.1);
    const alone = [0, 1, 2].map((r) => run([r], 0.1));
    const e1 = diff(batched.logits, alone.map((a) => a.logits[0]!));
    const doneAlone = alone.reduce((n, a) => n + a.done, 0);
    const macsAlone = alone.reduce((n, a) => n + a.macs, 0);
    const zeroed = run([0, 1, 2], 0.1, false);
    console.log(`batched delta (3 rows, 4 steps): θ=0 vs dense max logit diff ${e0.toExponential(2)}, ${(100 * exact.saved).toFixed(1)}% skipped; θ=0.1 vs each row alone ${e1.toExponential(2)}, ${(100 * batched.saved).toFixed(1)}% skipped (alone: ${(100 * (1 - doneAlone / macsAlone)).toFixed(1)}%); kernels vs dense products ${diff(batched.logits, zeroed.logits).toExponential(2)}`);
    expect(e0).toBeLessThan(1e-4);
    expect(exact.saved).toBe(0);
    expect(e1).toBeLessThan(1e-4);
    // the same masks up to rounding: products of 3 rows and of 1 row may round differently, which
    // can move a change that sits at θ across it
    expect(batched.macs).toBe(macsAlone);
    expect(Math.abs(batched.done - doneAlone) / macsAlone).toBeLessThan(1e-3);
    expect(batched.saved).toBeGreaterThan(0.05);
    expect(diff(batched.logits, zeroed.logits)).toBeLessThan(1e-4);
    model.dispose();
  }, 60_000);
});
