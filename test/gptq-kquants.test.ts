// GPTQ and the calibrated K-quants: the Cholesky form of GPTQ against the paper's sequential
// optimal-brain-quantization update (explicit inverse of the remaining Hessian at every column),
// GPTQ on Q4_K/Q5_K/Q6_K grids against round-to-nearest (its layer-output error is no larger, it
// equals the importance-weighted rounding when the Hessian is diagonal, it keeps weights already
// on the grid), the written blocks against their GGML decode, the Q5_K reference quantiser, the
// Q4_K_M tensor types, and `actlab quantize --type q4_k_m --method imatrix` on
// models/shakespeare-char-256 (every K-quant matrix calibrated, the file loads, KL to f16 small).
import { describe, expect, it } from 'vitest';
import { dequantizeGgml } from '../src/formats/gguf-quants.js';
import { quantizeQ4K, quantizeQ5K, quantizeQ6K } from '../src/formats/gguf-kquants.js';
import { K_BLOCK_BYTES, kBlockGrid, quantizeKWeighted, type KQuantType } from '../src/formats/gguf-kquants-weighted.js';
import { accumulateHessian, gptq, type GptqGrid } from '../src/quantize/gptq.js';
import { gptqKQuant, importanceOf, type InputStats } from '../src/quantize/gptq-kquants.js';
import { q4KmTypes } from '../src/quantize/gguf-calibrated.js';

/** A seeded uniform generator (mulberry32). */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const gauss = (r: () => number) => Math.sqrt(-2 * Math.log(1 - r())) * Math.cos(2 * Math.PI * r());

/** Correlated inputs: x = z·M with a random mixing M, so H = Σ x xᵀ is far from diagonal; a few loud columns. */
function inputs(tokens: number, d: number, seed: number): Float64Array {
  const r = rng(seed);
  const M = Float64Array.from({ length: d * d }, (_, i) => (i % (d + 1) === 0 ? 1 : 0) + 0.3 * gauss(r) / Math.sqrt(d));
  const x = new Float64Array(tokens * d);
  for (let t = 0; t < tokens; t++) {
    const z = Float64Array.from({ length: d }, (_, j) => gauss(r) * (j % 37 === 0 ? 6 : 1));
    for (let j = 0; j < d; j++) { let s = 0; for (let k = 0; k < d; k++) s += z[k]! * M[k * d + j]!; x[t * d + j] = s; }
  }
  return x;
}

function statsOf(x: Float64Array, d: number): InputStats {
  const H = new Float64Array(d * d);
  accumulateHessian(H, x, d);
  return { H, d, tokens: x.length / d };
}

/** tr((W − Ŵ) H (W − Ŵ)ᵀ): the summed squared error of the layer's outputs over the calibration inputs. */
function outputError(W: ArrayLike<number>, Q: ArrayLike<number>, rows: number, cols: number, H: Float64Array): number {
  let e = 0;
  const d = new Float64Array(cols);
  for (let r = 0; r < rows; r++) {
    for (let j = 0; j < cols; j++) d[j] = W[r * cols + j]! - Q[r * cols + j]!;
    for (let i = 0; i < cols; i++) { let s = 0; for (let j = 0; j < cols; j++) s += H[i * cols + j]! * d[j]!; e += d[i]! * s; }
  }
  return e;
}

function randomW(rows: number, cols: number, seed: number): Float32Array {
  const r = rng(seed);
  return Float32Array.from({ length: rows * cols }, () => 0.05 * gauss(r) + (r() < 0.01 ? 0.3 * gauss(r) : 0));
}

/** The paper's sequential form (OBQ order fixed): invert H over the remaining columns at every step. */
function gptqSequential(W: Float32Array, rows: number, cols: number, H: Float64Array, step: number, damp: number): Float64Array {
  const h = Float64Array.from(H);
  let mean = 0;
  for (let i = 0; i < cols; i++) mean += h[i * cols + i]! / cols;
  for (let i = 0; i < cols; i++) h[i * cols + i]! += damp * mean;
  const w = Float64Array.from(W);
  const q = new Float64Array(rows * cols);
  for (let i = 0; i < cols; i++) {
    const F = cols - i; // remaining columns i..cols-1
    const A = new Float64Array(F * 2 * F);
    for (let a = 0; a < F; a++) {
      for (let b = 0; b < F; b++) A[a * 2 * F + b] = h[(i + a) * cols + i + b]!;
      A[a * 2 * F + F + a] = 1;
    }
    for (let c = 0; c < F; c++) { // Gauss-Jordan (H is positive definite: no pivoting needed)
      const p = A[c * 2 * F + c]!;
      for (let k = 0; k < 2 * F; k++) A[c * 2 * F + k]! /= p;
      for (let a = 0; a < F; a++) {
        if (a === c) continue;
        const f = A[a * 2 * F + c]!;
        if (f) for (let k = 0; k < 2 * F; k++) A[a * 2 * F + k]! -= f * A[c * 2 * F + k]!;
      }
    }
    const inv = (a: number, b: number) => A[a * 2 * F + F + b]!;
    for (let r = 0; r < rows; r++) {
      const v = w[r * cols + i]!;
      const qv = Math.round(v / step) * step;
      q[r * cols + i] = qv;
      const err = (v - qv) / inv(0, 0);
      for (let b = 1; b < F; b++) w[r * cols + i + b]! -= err * inv(0, b);
    }
  }
  return q;
}

describe('GPTQ', () => {
  it('the Cholesky form equals the sequential update with the explicit inverse Hessian', () => {
    const rows = 6, cols = 24, step = 0.04;
    const x = inputs(64, cols, 3);
    const { H } = statsOf(x, cols);
    const W = randomW(rows, cols, 4);
    const grid: GptqGrid = { groupSize: cols, fitGroup: () => undefined, round: (_r, _c, v) => Math.round(v / step) * step };
    const fast = gptq(W, rows, cols, H, grid);
    const ref = gptqSequential(W, rows, cols, H, step, 0.01);
    let maxDiff = 0;
    for (let i = 0; i < fast.length; i++) maxDiff = Math.max(maxDiff, Math.abs(fast[i]! - ref[i]!));
    const rtn = W.map((v) => Math.round(v / step) * step);
    const eG = outputError(W, fast, rows, cols, H), eR = outputError(W, rtn, rows, cols, H);
    console.log(`GPTQ (Cholesky) vs sequential OBQ update: max |diff| ${maxDiff.toExponential(2)}; output error GPTQ ${eG.toExponential(3)}, round-to-nearest ${eR.toExponential(3)}`);
    expect(maxDiff).toBeLessThan(1e-6); // f32 outputs
    expect(eG).toBeLessThan(eR);
  });

  it('zeroes dead inputs and refuses a Hessian of the wrong size', () => {
    const cols = 8;
    const H = new Float64Array(cols * cols);
    for (let i = 1; i < cols; i++) H[i * cols + i] = 1; // input 0 never fires
    const W = Float32Array.from({ length: 2 * cols }, (_, i) => 0.1 * (i + 1));
    const q = gptq(W, 2, cols, H, { groupSize: cols, fitGroup: () => undefined, round: (_r, _c, v) => v });
    expect(q[0]).toBe(0);
    expect(q[cols]).toBe(0);
    expect(Math.abs(q[1]! - W[1]!)).toBeLessThan(1e-7);
    expect(() => gptq(W, 2, cols, new Float64Array(4), { groupSize: cols, fitGroup: () => undefined, round: (_r, _c, v) => v })).toThrow(/H has 4 values, not 8×8/);
  });
});

describe('GPTQ on K-quant grids', () => {
  const rows = 16, cols = 512;
  const x = inputs(768, cols, 11);
  const stats = statsOf(x, cols);
  const W = randomW(rows, cols, 12);
  const ref: Record<KQuantType, (v: Float32Array) => Uint8Array> = { Q4_K: quantizeQ4K, Q5_K: quantizeQ5K, Q6_K: quantizeQ6K };

  for (const type of ['Q4_K', 'Q5_K', 'Q6_K'] as const) {
    it(`${type}: layer-output error below llama.cpp's rounding and the importance-weighted rounding; blocks decode to GPTQ's values`, () => {
      const g = gptqKQuant(type, W, rows, cols, stats);
      const decoded = dequantizeGgml(type, g.bytes, rows * cols);
      let maxDiff = 0, maxW = 0;
      for (let i = 0; i < decoded.length; i++) { maxDiff = Math.max(maxDiff, Math.abs(decoded[i]! - g.values[i]!)); maxW = Math.max(maxW, Math.abs(W[i]!)); }
      const eRef = outputError(W, dequantizeGgml(type, ref[type](W), rows * cols), rows, cols, stats.H);
      const eImp = outputError(W, dequantizeGgml(type, quantizeKWeighted(type, W, cols, importanceOf(stats)), rows * cols), rows, cols, stats.H);
      const eG = outputError(W, decoded, rows, cols, stats.H);
      console.log(`${type}: output error reference ${eRef.toExponential(3)}, imatrix ${eImp.toExponential(3)}, GPTQ ${eG.toExponential(3)}; decode vs GPTQ values max |diff| ${maxDiff.toExponential(2)}`);
      expect(maxDiff).toBeLessThan(1e-6 * maxW);
      expect(eG).toBeLessThan(eImp);
      expect(eG).toBeLessThan(eRef);
    });
  }

  it('with a diagonal Hessian GPTQ is the importance-weighted rounding (nothing to compensate)', () => {
    const H = new Float64Array(cols * cols);
    const r = rng(5);
    for (let i = 0; i < cols; i++) H[i * cols + i] = 0.5 + r() * (i % 37 === 0 ? 40 : 1);
    const s: InputStats = { H, d: cols, tokens: 1 };
    for (const type of ['Q4_K', 'Q6_K'] as const) {
      const g = dequantizeGgml(type, gptqKQuant(type, W, rows, cols, s).bytes, rows * cols);
      const imp = dequantizeGgml(type, quantizeKWeighted(type, W, cols, importanceOf(s)), rows * cols);
      let diff = 0;
      for (let i = 0; i < g.length; i++) diff = Math.max(diff, Math.abs(g[i]! - imp[i]!));
      console.log(`${type}: diagonal H, GPTQ vs imatrix rounding max |diff| ${diff}`);
      expect(diff).toBe(0);
    }
  });

  it('keeps a layer whose weights are already on its (fixed) K-quant grid', () => {
    for (const type of ['Q4_K', 'Q6_K'] as const) {
      const bytes = quantizeKWeighted(type, W, cols, importanceOf(stats));
      const onGrid = dequantizeGgml(type, bytes, rows * cols);
      const nb = cols / 256, bb = K_BLOCK_BYTES[type];
      const scale = new Float64Array(256), offset = new Float64Array(256);
      let nmax = 0;
      const grid: GptqGrid = {
        groupSize: cols,
        fitGroup: () => undefined,
        round(r, c, v) {
          nmax = kBlockGrid(type, bytes, (r * nb + Math.floor(c / 256)) * bb, scale, offset);
          const k = c % 256;
          return scale[k] ? scale[k]! * Math.round(Math.min(nmax, Math.max(0, (v - offset[k]!) / scale[k]!))) + offset[k]! : offset[k]!;
        },
      };
      const q = gptq(onGrid, rows, cols, stats.H, grid);
      let diff = 0;
      for (let i = 0; i < onGrid.length; i++) diff = Math.max(diff, Math.abs(q[i]! - onGrid[i]!));
      console.log(`${type}: weights on the grid, GPTQ max |change| ${diff.toExponential(2)}`);
      expect(diff).toBeLessThan(1e-7);
    }
  });

  it('refuses statistics of the wrong width and rows that are not whole super-blocks', () => {
    expect(() => gptqKQuant('Q4_K', W, rows, cols, { H: new Float64Array(256 * 256), d: 256, tokens: 1 })).toThrow(/statistics are 256 wide, the weight has 512 columns/);
    expect(() => quantizeKWeighted('Q4_K', new Float32Array(100), 100, new Float64Array(100))).toThrow(/rows of 100 values are not a whole number of 256-value super-blocks/);
    expect(() => quantizeKWeighted('Q4_K', new Float32Array(256), 256, new Float64Array(256).fill(-1))).toThrow(/importance 0 is -1/);
  });
});

describe('K-quant writers', () => {
  it('Q5_K (reference) decodes within its step, closer than Q4_K', () => {
    const W = randomW(8, 256, 21);
    const err = (t: 'Q4_K' | 'Q5_K', b: Uint8Array) => { const d = dequantizeGgml(t, b, W.length); let s = 0; for (let i = 0; i < W.length; i++) s += (d[i]! - W[i]!) ** 2; return Math.sqrt(s / W.length); };
    const e4 = err('Q4_K', quantizeQ4K(W)), e5 = err('Q5_K', quantizeQ5K(W));
    console.log(`rms error Q4_K ${e4.toExponential(3)}, Q5_K ${e5.toExponential(3)}`);
    expect(e5).toBeLessThan(0.6 * e4);
  });

  it("Q4_K_M's tensor types: Q6_K for a tied output, and for attn_qkv and ffn_down where use_more_bits says (llama-quantize's choice)", () => {
    const names = ['token_embd.weight', 'position_embd.weight'];
    for (let i = 0; i < 4; i++) names.push(`blk.${i}.attn_qkv.weight`, `blk.${i}.attn_output.weight`, `blk.${i}.ffn_up.weight`, `blk.${i}.ffn_down.weight`);
    const t = q4KmTypes(names);
    expect(t('token_embd.weight')).toBe('Q6_K');
    for (const k of ['attn_qkv', 'ffn_down']) expect([0, 1, 2, 3].map((i) => t(`blk.${i}.${k}.weight`) ?? 'Q4_K')).toEqual(['Q4_K', 'Q4_K', 'Q6_K', 'Q6_K']);
    expect(t('blk.1.ffn_up.weight')).toBeUndefined();
    expect(q4KmTypes([...names, 'output.weight'])('token_embd.weight')).toBeUndefined();
  });
});

describe('actlab quantize --type q4_k_m --method', () => {
  // A passage in the model's 65-character vocabulary (calibration and evaluation text).
  const PASSAGE = `First Citizen:
Before we proceed any further, hear me speak.

All:
Speak, speak.

First Citizen:
You are all resolved rather to die than to famish?

All:
Resolved. resolved.

First Citizen:
First, you know Caius Marcius is chief enemy to the people.

All:
We know't, we know't.

First Citizen:
Let us kill him, and we'll have corn at our own price.
Is't a verdict?
`;

  it('writes every K-quant matrix of shakespeare-char-256 from calibration, with the types of Q4_K_M, and the file runs', async () => {
    const { mkdtemp, rm, writeFile } = await import('node:fs/promises');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const { quantizeCommand } = await import('../src/cli/quantize.js');
    const al = await import('../src/index.js');
    const dir = await mkdtemp(join(tmpdir(), 'actlab-q4km-'));
    try {
      const calib = join(dir, 'calib.txt');
      await writeFile(calib, PASSAGE.repeat(2));
      const model = new URL('../models/shakespeare-char-256', import.meta.url).pathname;
      const out = join(dir, 'q4km.gguf');
      const logs: string[] = [];
      const log = console.log;
      console.log = (s: string) => logs.push(s);
      try {
        await quantizeCommand({ model, type: 'q4_k_m', method: 'imatrix', calib, calibTokens: 512, out, json: true });
      } finally {
        console.log = log;
      }
      const summary = JSON.parse(logs.at(-1)!);
      console.log(JSON.stringify(summary));
      expect(summary.tensors).toEqual({ F32: 35, Q6_K: 5, Q4_K: 12 });
      expect(summary.calibrated).toBe(17);
      await expect(quantizeCommand({ model, type: 'q4_k_m', method: 'gptq', out })).rejects.toThrow(/--method gptq needs calibration text/);
      await expect(quantizeCommand({ model, type: 'q4_k_m', method: 'awq', calib, out })).rejects.toThrow(/--method: 'awq' is not rtn, imatrix or gptq/);
      const q = await al.loadModel(out, { backend: 'js' });
      const f = await al.loadModel(model, { backend: 'js' });
      const ids = f.tokenizer!.encode(PASSAGE).slice(0, 96);
      const input = al.tensor(ids, [1, ids.length], 'i32', { backend: f.model.backend });
      const logits = [q.model.forward(input), f.model.forward(input)]; // [1, pos, vocab]
      const [lq, lf] = (await Promise.all(logits.map((l) => l.data()))) as Float32Array[] as [Float32Array, Float32Array];
      for (const l of logits) l.dispose();
      const V = lf.length / ids.length;
      let kl = 0;
      for (let t = 0; t < ids.length; t++) {
        const lse = (l: Float32Array) => { let m = -Infinity; for (let i = 0; i < V; i++) m = Math.max(m, l[t * V + i]!); let s = 0; for (let i = 0; i < V; i++) s += Math.exp(l[t * V + i]! - m); return m + Math.log(s); };
        const a = lse(lf), b = lse(lq);
        for (let i = 0; i < V; i++) { const p = Math.exp(lf[t * V + i]! - a); kl += p * ((lf[t * V + i]! - a) - (lq[t * V + i]! - b)); }
      }
      kl /= ids.length;
      console.log(`q4_k_m imatrix vs f16 model: mean KL ${kl.toExponential(3)} over ${ids.length} positions`);
      expect(kl).toBeGreaterThan(0);
      expect(kl).toBeLessThan(0.02);
      input.dispose();
      q.model.dispose();
      f.model.dispose();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }, 240_000);
});
