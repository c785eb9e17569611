// Delta inference: threshold 0 reproduces the dense decode, larger thresholds skip more of the
// projections' work and lose more (KL), the sparse-kernel path gives the same numbers as the dense
// product of the sparse change, and the state restarts with each prompt.
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
});
