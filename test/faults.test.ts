// Fault injection and ProAct clipping: a flip at bit b changes exactly that bit, the fault rate is
// the one asked for, weight faults are undone by restore(), clipping bounds from calibration hold
// (nothing leaves them, calibration inputs pass unchanged), and clipping recovers the modular-
// addition organism's accuracy under exponent flips in its MLP activations.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as al from '../src/index.js';
import { createWasmBackend, type WasmBackend } from '../src/backends/wasm/backend.js';
import { activationFaultHook, checkFaultSpec, flipBitsInPlace, flipF32Bit, injectWeightFaults } from '../src/faults/bitflip.js';
import { calibrateClipBounds, clipHooks } from '../src/faults/proact.js';
import { faultReport } from '../src/faults/evaluate.js';
import { organismTask } from '../src/faults/tasks.js';
import { randomModel } from '../src/models/random.js';
import { TINY } from './helpers/tiny-configs.js';

const ORG = new URL('../models/organisms/modular-addition', import.meta.url).pathname;
const bits = (v: number) => new Uint32Array(Float32Array.of(v).buffer)[0]!;
const bitsAt = (a: Float32Array, i: number) => new Uint32Array(a.buffer, a.byteOffset, a.length)[i]!;
let js: al.Backend;
let wasm: WasmBackend;

beforeAll(async () => {
  js = await al.initBackend('js');
  wasm = await createWasmBackend({ threads: 2 });
});
afterAll(() => wasm.dispose());

describe('bit flips', () => {
  it('a flip at bit b changes exactly bit b, for every b and sign/exponent/mantissa', () => {
    const rng = new al.Rng(1);
    for (let i = 0; i < 200; i++) {
      const v = Math.fround(rng.normal() * 10 ** rng.int(6));
      for (let b = 0; b < 32; b++) {
        const y = flipF32Bit(v, b);
        if (Number.isNaN(y)) continue; // a NaN's payload does not survive a JavaScript number
        expect((bits(v) ^ bits(y)) >>> 0).toBe((1 << b) >>> 0);
        // in place, on the bits: exact even when the result is a NaN
        const d = Float32Array.of(v);
        flipBitsInPlace(d, { rate: 1, bit: b }, rng);
        expect((bits(v) ^ new Uint32Array(d.buffer)[0]!) >>> 0).toBe((1 << b) >>> 0);
      }
    }
    expect(flipF32Bit(1, 31)).toBe(-1);
    expect(flipF32Bit(1, 30)).toBe(Infinity); // 1.0 = 0x3f800000; bit 30 set gives an all-ones exponent
  });

  it('flips happen at the rate asked for, each at the asked bit only', () => {
    const n = 200_000;
    const data = Float32Array.from({ length: n }, (_, i) => Math.sin(i) * 3);
    const before = Float32Array.from(data);
    const changed = flipBitsInPlace(data, { rate: 0.01, bit: 12 }, new al.Rng(2));
    const sd = Math.sqrt(n * 0.01 * 0.99);
    console.log(`rate 0.01 on ${n} values: ${changed.length} flips (expected ${n * 0.01} ± ${sd.toFixed(0)})`);
    expect(Math.abs(changed.length - n * 0.01)).toBeLessThan(5 * sd);
    let diff = 0;
    for (let i = 0; i < n; i++) {
      const x = (bitsAt(before, i) ^ bitsAt(data, i)) >>> 0;
      if (x) { diff++; expect(x).toBe(1 << 12); }
    }
    expect(diff).toBe(changed.length);
    // any bit: a bit error rate over 32 bits per value
    const d2 = new Float32Array(n);
    const c2 = flipBitsInPlace(d2, { rate: 0.001 }, new al.Rng(3));
    const sd2 = Math.sqrt(n * 32 * 0.001);
    expect(Math.abs(c2.length - n * 32 * 0.001)).toBeLessThan(5 * sd2);
  });

  it('weight faults change only the asked bit of the hit weights, and restore() puts every weight back', () => {
    const model = randomModel(TINY.llama!, js, { seed: 1 });
    const snap = new Map([...model.parameters()].map(([n, t]) => [n, (t.dataSync() as Float32Array).slice()]));
    const f = injectWeightFaults(model, { rate: 0.02, bit: 27, seed: 5, names: /mlp/ });
    expect(f.flips).toBeGreaterThan(10);
    for (const [n, t] of model.parameters()) {
      const now = t.dataSync();
      const was = snap.get(n)!;
      let hit = 0;
      for (let i = 0; i < now.length; i++) {
        const x = (bitsAt(was, i) ^ bitsAt(now as Float32Array, i)) >>> 0;
        if (x) { hit++; expect(x).toBe(1 << 27); }
      }
      if (!/mlp/.test(n)) expect(hit).toBe(0);
    }
    f.restore();
    for (const [n, t] of model.parameters()) expect(Array.from(t.dataSync())).toEqual(Array.from(snap.get(n)!));
    model.dispose();
  });

  it('an activation fault hook flips the asked bit of values at the hook point', () => {
    const model = randomModel(TINY.llama!, js, { seed: 2 });
    const ids = al.tensor([1, 2, 3, 4, 5, 6], [1, 6], 'i32', { backend: js });
    const site = 'blocks.0.mlp.hook_post';
    const seen: Float32Array[] = [];
    const record = (a: al.Tensor) => { seen.push((a.dataSync() as Float32Array).slice()); };
    model.withHooks([[site, record]], () => model.forward(ids).dispose());
    const hook = activationFaultHook({ rate: 0.1, bit: 3, seed: 9 });
    model.withHooks([[site, hook], [site, record]], () => model.forward(ids).dispose());
    let diff = 0;
    seen[0]!.forEach((_, i) => { const x = (bitsAt(seen[0]!, i) ^ bitsAt(seen[1]!, i)) >>> 0; if (x) { diff++; expect(x).toBe(8); } });
    expect(diff).toBe(hook.flips());
    expect(diff).toBeGreaterThan(0);
    ids.dispose();
    model.dispose();
  });

  it('refuses rates and bits out of range', () => {
    expect(() => checkFaultSpec({ rate: 1.5 })).toThrow(/rate must be in \[0, 1\], got 1\.5/);
    expect(() => checkFaultSpec({ rate: 0.1, bit: 32 })).toThrow(/bit must be a whole number in 0\.\.31/);
  });
});

describe('ProAct clipping', () => {
  it('bounds from calibration hold: calibration inputs pass unchanged, nothing leaves the bounds on faulty inputs', () => {
    const model = randomModel(TINY.llama!, js, { seed: 3 });
    const calib = [[1, 5, 9, 2, 7, 3, 11, 4, 8, 6, 10, 12, 13, 14, 15, 16, 17]];
    const bounds = calibrateClipBounds(model, calib, 'blocks.*.mlp.hook_post', 'neuron');
    expect(bounds.map((b) => b.name)).toEqual(['blocks.0.mlp.hook_post', 'blocks.1.mlp.hook_post']);
    const clip = clipHooks(model, bounds);
    const ids = al.tensor(calib[0]!, [1, calib[0]!.length], 'i32', { backend: js });
    const plain = model.forward(ids);
    const clipped = model.withHooks(clip.hooks, () => model.forward(ids));
    expect(Array.from(clipped.dataSync())).toEqual(Array.from(plain.dataSync()));
    // exponent flips at the site, then clipping: every value within its neuron's bounds, no NaN
    const after: Float32Array[] = [];
    const fault = activationFaultHook({ rate: 0.2, bit: 30, seed: 4 });
    const sites = bounds.map((b) => b.name);
    model.withHooks([...sites.map((s) => [s, fault] as [string, al.HookFn]), ...clip.hooks, ...sites.map((s) => [s, (a: al.Tensor) => { after.push(Float32Array.from(a.dataSync() as Float32Array)); }] as [string, al.HookFn])],
      () => model.forward(ids).dispose());
    expect(fault.flips()).toBeGreaterThan(5);
    after.forEach((v, k) => {
      const b = bounds[k]!;
      const d = b.lo.length;
      v.forEach((x, i) => { expect(x).toBeGreaterThanOrEqual(b.lo[i % d]!); expect(x).toBeLessThanOrEqual(b.hi[i % d]!); });
    });
    for (const t of [ids, plain, clipped]) t.dispose();
    clip.dispose();
    model.dispose();
  });

  it('layer and hybrid bounds: one range per site (hybrid: all but the last site)', () => {
    const model = randomModel(TINY.llama!, js, { seed: 4 });
    const calib = [[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16]];
    const hy = calibrateClipBounds(model, calib, 'blocks.*.mlp.hook_post', 'hybrid');
    expect(new Set(hy[0]!.hi).size).toBe(1);
    expect(new Set(hy[1]!.hi).size).toBeGreaterThan(1);
    expect(() => calibrateClipBounds(model, [[1, 2, 3]], 'blocks.*.mlp.hook_post')).toThrow(/at least 16 tokens, got 3/);
    expect(() => calibrateClipBounds(model, calib, 'blocks.*.mlp.hook_nothing')).toThrow(/--clip-sites: no hook point matches/);
    model.dispose();
  });

  it('clipping recovers the modular-addition organism under exponent flips in its MLP activations', async () => {
    const { model } = await al.loadModel(ORG, { backend: wasm });
    const task = organismTask(model, 96)!;
    const r = faultReport(model, task, { target: 'activations', sites: 'blocks.*.mlp.hook_post', rate: 0.004, bit: 30, trials: 2, clipSites: 'blocks.*.mlp.hook_post' });
    console.log(`modular addition, bit-30 flips at rate 0.004 in hook_post: clean ${r.clean.accuracy}, faulty ${r.faulty.accuracy.toFixed(3)}, faulty+clip ${r.faulty_clipped.accuracy.toFixed(3)} (KL ${r.faulty_clipped.kl.toExponential(2)})`);
    expect(r.clean.accuracy).toBe(1);
    expect(r.clipped_clean.accuracy).toBe(1);
    expect(r.faulty.accuracy).toBeLessThan(0.95);
    expect(r.faulty_clipped.accuracy).toBeGreaterThan(r.faulty.accuracy + 0.04);
    model.dispose();
  }, 120_000);
});
