// The hand-written SAE step (src/sae/step.ts, products on wasm) against reverse-mode autodiff of the
// same losses on the reference backend: every gradient of every architecture, dead-feature losses
// (auxiliary-k, ghost grads) included; and the host activation functions against the engine's topk.
import { beforeAll, describe, expect, it } from 'vitest';
import * as al from '../src/index.js';
import { noGrad } from '../src/autograd/index.js';
import { initSae } from '../src/sae/init.js';
import { saeStep } from '../src/sae/step.js';
import { topkAct, batchTopkAct, kthLargest } from '../src/sae/activation.js';
import type { SaeArchitecture, SaeConfig } from '../src/sae/config.js';
import type { Sae } from '../src/sae/sae.js';

let js: al.Backend;
let wasm: al.Backend;
beforeAll(async () => { js = await al.initBackend('js'); wasm = await al.initBackend('wasm'); });

function cfgOf(arch: SaeArchitecture, dIn: number, n: number, k?: number, dOut?: number): SaeConfig {
  return { architecture: arch, d_in: dIn, d_sae: n, ...(dOut ? { d_out: dOut } : {}), ...(k ? { k } : {}), apply_b_dec_to_input: !dOut, normalize_activations: 'none', dtype: 'float32', metadata: {} };
}

function randomArray(len: number, seed: number, std = 1): Float32Array {
  const r = new al.Rng(seed);
  return Float32Array.from({ length: len }, () => r.normal() * std);
}

/** The loss of `sae` on x through autodiff ops on the js backend; gradients of W_enc, b_enc, W_dec, b_dec (W_skip). */
function autodiff(sae: Sae, x: Float32Array, B: number, o: { coef: number; dead?: Uint8Array; ghost?: boolean; target?: Float32Array }) {
  const c = sae.cfg;
  const n = c.d_sae;
  const dIn = c.d_in;
  const dOut = c.d_out ?? dIn;
  const T = (a: Float32Array, shape: number[]) => al.Tensor.from(a, shape, 'f32', js);
  const names = ['W_enc', 'b_enc', 'W_dec', 'b_dec', ...(c.architecture === 'skip_transcoder' ? ['W_skip'] : [])];
  const shapes: Record<string, number[]> = { W_enc: [dIn, n], b_enc: [n], W_dec: [n, dOut], b_dec: [dOut], W_skip: [dOut, dIn] };
  const params = names.map((nm) => T(sae.param(nm), shapes[nm]!));
  const xt = T(x, [B, dIn]);
  const tgt = o.target ? T(o.target, [B, dOut]) : xt;
  const f = (...ps: al.Tensor[]) => {
    const [We, be, Wd, bd, Ws] = ps as [al.Tensor, al.Tensor, al.Tensor, al.Tensor, al.Tensor?];
    const xc = c.apply_b_dec_to_input && !o.target ? al.sub(xt, bd) : xt;
    const pre = al.add(al.matmul(xc, We), be);
    let acts: al.Tensor;
    if (c.architecture === 'topk') {
      const kth = noGrad(() => al.topk(pre, c.k!).values.narrow(1, c.k! - 1, 1).contiguous());
      acts = al.where(al.ge(pre, kth), al.relu(pre), 0);
    } else if (c.architecture === 'batchtopk') {
      const flat = noGrad(() => al.relu(pre).reshape([1, B * n]));
      const keep = Math.floor(c.k! * B);
      const kth = noGrad(() => al.topk(flat, keep).values.narrow(1, keep - 1, 1).contiguous().reshape([1, 1]));
      acts = al.where(al.ge(al.relu(pre), kth), al.relu(pre), 0);
    } else if (c.architecture === 'jumprelu') {
      const th = T(sae.param('threshold'), [n]);
      acts = al.where(al.gt(pre, th), pre, 0);
    } else acts = al.relu(pre);
    let out = al.add(al.matmul(acts, Wd), bd);
    if (Ws) out = al.add(out, al.matmul(xt, Ws, { transB: true }));
    const e = al.sub(out, tgt);
    let loss = al.div(al.sum(al.sum(al.square(e), -1), 0), B);
    if (c.architecture === 'standard' || c.architecture === 'transcoder' || c.architecture === 'skip_transcoder') {
      const norms = al.sqrt(al.sum(al.square(Wd), -1));
      loss = al.add(loss, al.mul(al.div(al.sum(al.sum(al.mul(acts, norms), -1), 0), B), o.coef));
    }
    if (c.architecture === 'jumprelu') {
      // The L0 term: its value only (its gradient is the straight-through one, tested below).
      const th = T(sae.param('threshold'), [n]);
      const l0 = noGrad(() => al.sum(al.sum(al.gt(pre, th).cast('f32'), -1), 0).item());
      loss = al.add(loss, (o.coef * l0) / B);
    }
    const dead = o.dead;
    const numDead = dead ? dead.reduce((a, b) => a + b, 0) : 0;
    if (dead && numDead && (c.architecture === 'topk' || c.architecture === 'batchtopk')) {
      let kAux = Math.floor(dIn / 2);
      const scale = Math.min(numDead / kAux, 1);
      kAux = Math.min(kAux, numDead);
      const dm = al.Tensor.from(dead, [n], 'u8', js);
      const resid = noGrad(() => al.neg(e).contiguous());
      const masked = noGrad(() => al.where(dm, pre, -1e30));
      const kth = noGrad(() => al.topk(masked, kAux).values.narrow(1, kAux - 1, 1).contiguous());
      const auxActs = al.where(noGrad(() => al.ge(masked, kth)), pre, 0);
      const ae = al.sub(al.add(al.matmul(auxActs, Wd), bd), resid);
      loss = al.add(loss, al.mul(al.div(al.sum(al.sum(al.square(ae), -1), 0), B), scale));
    }
    if (dead && numDead && o.ghost) {
      const dm = al.Tensor.from(dead, [n], 'u8', js);
      const resid = noGrad(() => al.neg(e).contiguous());
      const ga = al.where(dm, al.exp(pre), 0);
      const go = al.matmul(ga, Wd);
      const s = noGrad(() => al.div(al.sqrt(al.sum(al.square(resid), -1, { keepDims: true })), al.add(al.mul(al.sqrt(al.sum(al.square(go), -1, { keepDims: true })), 2), 1e-6)));
      const go2 = al.mul(go, s);
      const m = al.square(al.sub(go2, resid));
      const rescale = noGrad(() => al.div(al.square(e), al.add(m, 1e-6)));
      loss = al.add(loss, al.div(al.sum(al.sum(al.mul(rescale, m), -1), 0), B * dOut));
    }
    return loss;
  };
  const { value, grads } = al.valueAndGrad(f)(...params);
  return { loss: value.item(), grads: new Map(names.map((nm, i) => [nm, grads[i]!.dataSync() as Float32Array])) };
}

function maxRel(a: Float32Array, b: Float32Array): number {
  let m = 0;
  let s = 0;
  for (let i = 0; i < a.length; i++) { m = Math.max(m, Math.abs(a[i]! - b[i]!)); s = Math.max(s, Math.abs(b[i]!)); }
  return m / Math.max(s, 1e-12);
}

const CASES: { name: string; arch: SaeArchitecture; k?: number; dead?: boolean; ghost?: boolean; dOut?: number }[] = [
  { name: 'relu-l1 (standard)', arch: 'standard' },
  { name: 'relu-l1 with ghost grads', arch: 'standard', dead: true, ghost: true },
  { name: 'topk', arch: 'topk', k: 4 },
  { name: 'topk with auxiliary-k', arch: 'topk', k: 4, dead: true },
  { name: 'batchtopk with auxiliary-k', arch: 'batchtopk', k: 3, dead: true },
  { name: 'jumprelu', arch: 'jumprelu' },
  { name: 'transcoder', arch: 'transcoder', dOut: 6 },
  { name: 'skip transcoder', arch: 'skip_transcoder', dOut: 6 },
];

describe('SAE step: hand-written backward = autodiff', () => {
  for (const tc of CASES) {
    it(tc.name, () => {
      const B = 24;
      const dIn = 8;
      const n = 32;
      const sae = initSae(cfgOf(tc.arch, dIn, n, tc.k, tc.dOut), { seed: 3, initThreshold: 0.05 });
      sae.param('b_dec').set(randomArray(tc.dOut ?? dIn, 9, 0.1));
      sae.param('b_enc').set(randomArray(n, 10, 0.1));
      sae.changed();
      const x = randomArray(B * dIn, 5);
      const target = tc.dOut ? randomArray(B * tc.dOut, 6) : undefined;
      const dead = tc.dead ? Uint8Array.from({ length: n }, (_, i) => (i % 3 === 0 ? 1 : 0)) : undefined;
      const coef = 0.7;
      const mine = saeStep(sae, { x, rows: B, dead, target }, { coefficient: coef, ghostGrads: tc.ghost }, wasm);
      const ref = autodiff(sae, x, B, { coef, dead, ghost: tc.ghost, target });
      const lossErr = Math.abs(mine.loss - ref.loss) / Math.abs(ref.loss);
      const errs = [...ref.grads].map(([nm, g]) => [nm, maxRel(mine.grads.get(nm)!, g)] as const);
      console.log(`${tc.name}: loss ${mine.loss.toFixed(6)} vs autodiff ${ref.loss.toFixed(6)} (rel ${lossErr.toExponential(2)}); grads max rel err ${errs.map(([nm, e]) => `${nm} ${e.toExponential(2)}`).join(', ')}`);
      expect(lossErr).toBeLessThan(1e-5);
      for (const [nm, e] of errs) expect(e, nm).toBeLessThan(1e-4);
      if (tc.dead) expect(mine.aux).toBeGreaterThan(0);
    });
  }

  it('jumprelu: the threshold gradient is the straight-through estimate', () => {
    // One unit, one row: pre within the bandwidth of the threshold.
    const sae = initSae(cfgOf('jumprelu', 2, 1), { seed: 1, initThreshold: 0.5 });
    sae.param('W_enc').set([1, 0]);
    sae.param('W_dec').set([1, 0]);
    sae.changed();
    const x = Float32Array.from([0.51, 0.3]);
    const logT = Float32Array.from([Math.log(0.5)]);
    const out = saeStep(sae, { x, rows: 1 }, { coefficient: 2, bandwidth: 0.05, logThreshold: logT }, wasm);
    // acts = 0.51 (above 0.5); e = (0.51 − 0.51, 0 − 0.3) → g_acts = 2·e·W_dec = 0.
    // dθ = −(θ/bw)·rect·g_acts − (1/bw)·rect·coef = −(1/0.05)·2 = −40; d logθ = dθ·θ = −20.
    expect(out.grads.get('log_threshold')![0]).toBeCloseTo(-20, 4);
    expect(out.sparsity).toBeCloseTo(2, 6);
  });
});

describe('SAE activations', () => {
  it('TopK keeps the k largest of each row, as the engine topk', () => {
    const rows = 16;
    const n = 64;
    const k = 7;
    const pre = randomArray(rows * n, 2);
    const { acts } = topkAct(pre, rows, n, k);
    const ref = al.topk(al.Tensor.from(pre, [rows, n], 'f32', js), k).indices.dataSync() as Int32Array;
    for (let r = 0; r < rows; r++) {
      const want = new Set(Array.from(ref.subarray(r * k, (r + 1) * k)).filter((i) => pre[r * n + i]! > 0));
      const got = new Set<number>();
      for (let i = 0; i < n; i++) if (acts[r * n + i] !== 0) got.add(i);
      expect([...got].sort()).toEqual([...want].sort());
    }
  });
  it('BatchTopK keeps k × rows activations over the batch', () => {
    const pre = randomArray(32 * 50, 4);
    const r = batchTopkAct(pre, 32, 5);
    expect(r.acts.filter((v) => v > 0).length).toBe(160);
    const sorted = [...pre].sort((a, b) => b - a);
    expect(r.minPositive).toBe(Math.fround(sorted[159]!));
    expect(kthLargest(pre, pre.length, 160, new Float32Array(pre.length))).toBe(Math.fround(sorted[159]!));
  });
});
