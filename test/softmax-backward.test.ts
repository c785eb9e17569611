// The fused softmax gradient (`softmaxBackward`, used by the softmax rule where a backend runs it
// natively): gradients of Σ softmax(x) ⊙ w through autograd on the js reference (fused), on wasm
// (the composed rule: no native kernel there) and on WebGPU (fused; SwiftShader here), each
// against central differences of an f64 softmax, with the largest error printed. Rows of 40 (short),
// 256 with a causal and a broadcast mask (the register kernel) and 300 (a workgroup per row).
import { afterAll, describe, expect, it } from 'vitest';
import * as al from '../src/index.js';
import { grad, variable } from '../src/autograd/index.js';
import { softmaxGradComposed } from '../src/autograd/rules.js';
import { runsNatively } from '../src/tensor/backend.js';
import { openWebGpu } from './webgpu-helpers.js';
import { maxRelErr } from './helpers/numeric.js';

const { backend: gpu, reason } = await openWebGpu();
if (!gpu) console.log(`webgpu softmaxBackward tests skipped: ${reason}`);
afterAll(() => gpu?.dispose());

interface Case { name: string; shape: number[]; causal: boolean; masked: boolean }
const CASES: Case[] = [
  { name: 'rows of 40', shape: [4, 40], causal: false, masked: false },
  { name: 'rows of 256, causal and masked', shape: [2, 2, 4, 256], causal: true, masked: true },
  { name: 'rows of 300', shape: [3, 300], causal: false, masked: false },
];

const numelOf = (s: number[]) => s.reduce((a, b) => a * b, 1);
const valuesOf = (c: Case) => {
  const n = numelOf(c.shape);
  return {
    xs: Float32Array.from({ length: n }, (_, i) => 3 * Math.sin(0.71 * i) + Math.cos(0.13 * i)),
    ws: Float32Array.from({ length: n }, (_, i) => Math.cos(0.37 * i)),
  };
};
/** The mask [q, k] (1 = keep): every seventh key of each query hidden. */
const maskOf = (q: number, k: number) => Uint8Array.from({ length: q * k }, (_, i) => ((i * 5) % 7 === 3 ? 0 : 1));

/** dL/dx of L = Σ w ⊙ softmax(x) by central differences of an f64 softmax, row by row. */
function numeric(c: Case): number[] {
  const { xs, ws } = valuesOf(c);
  const k = c.shape.at(-1)!;
  const q = c.shape.at(-2)!;
  const mask = c.masked ? maskOf(q, k) : null;
  const out: number[] = [];
  for (let r = 0; r < xs.length / k; r++) {
    const qi = r % q;
    const keep = (j: number) => (!c.causal || j <= qi + (k - q)) && (!mask || mask[qi * k + j] === 1);
    const row = Array.from(xs.subarray(r * k, r * k + k), Number);
    const loss = (x: number[]) => {
      let m = -Infinity;
      for (let j = 0; j < k; j++) if (keep(j)) m = Math.max(m, x[j]!);
      let s = 0;
      for (let j = 0; j < k; j++) if (keep(j)) s += Math.exp(x[j]! - m);
      let l = 0;
      for (let j = 0; j < k; j++) if (keep(j)) l += (ws[r * k + j]! * Math.exp(x[j]! - m)) / s;
      return l;
    };
    for (let i = 0; i < k; i++) {
      const up = row.slice(); up[i]! += 1e-5;
      const down = row.slice(); down[i]! -= 1e-5;
      out.push((loss(up) - loss(down)) / 2e-5);
    }
  }
  return out;
}

async function autogradDx(c: Case, backend: al.Backend): Promise<Float32Array> {
  const { xs, ws } = valuesOf(c);
  const k = c.shape.at(-1)!;
  const q = c.shape.at(-2)!;
  const g = al.tidy(() => {
    const x = variable(al.tensor(xs, c.shape, 'f32', { backend }));
    const mask = c.masked ? al.tensor(maskOf(q, k), [1, 1, q, k], 'u8', { backend }) : undefined;
    const y = al.softmax(x, { causal: c.causal, mask });
    const loss = al.sum(al.mul(y, al.tensor(ws, c.shape, 'f32', { backend })).reshape([xs.length]), 0);
    return grad(loss, [x])[0]!;
  });
  const out = (await g.data()) as Float32Array;
  g.dispose();
  return out;
}

describe('softmaxBackward', () => {
  it('js (fused) and wasm (composed rule) match central differences', async () => {
    const js = await al.initBackend('js');
    const wasm = await al.initBackend('wasm');
    expect(runsNatively(js, 'softmaxBackward')).toBe(true);
    expect(runsNatively(wasm, 'softmaxBackward')).toBe(false);
    for (const c of CASES) {
      const want = numeric(c);
      const fused = maxRelErr(await autogradDx(c, js), want);
      const composed = maxRelErr(await autogradDx(c, wasm), want);
      console.log(`${c.name}: largest error against central differences, js fused ${fused.toExponential(2)}, wasm composed ${composed.toExponential(2)}`);
      expect(fused).toBeLessThan(1e-6);
      expect(composed).toBeLessThan(1e-6);
    }
  });

  it('the composed rule equals the fused op on js', async () => {
    const js = await al.initBackend('js');
    for (const c of CASES) {
      const { xs, ws } = valuesOf(c);
      const [fused, composed] = al.tidy(() => {
        const y = al.softmax(al.tensor(xs, c.shape, 'f32', { backend: js }), { causal: c.causal });
        const dy = al.tensor(ws, c.shape, 'f32', { backend: js });
        return [al.softmaxBackward(y, dy).dataSync() as Float32Array, softmaxGradComposed(y, dy).dataSync() as Float32Array];
      });
      const err = maxRelErr(composed, Array.from(fused));
      console.log(`${c.name}: composed rule against the fused op on js, largest error ${err.toExponential(2)}`);
      expect(err).toBeLessThan(1e-6);
    }
  });

  it('rejects operands of different shapes or dtypes, naming both', async () => {
    const js = await al.initBackend('js');
    const y = al.tensor(new Float32Array(6), [2, 3], 'f32', { backend: js });
    expect(() => al.softmaxBackward(y, al.tensor(new Float32Array(6), [3, 2], 'f32', { backend: js }))).toThrow(/y is f32\[2, ?3\], dy is f32\[3, ?2\]/);
    expect(() => al.softmaxBackward(y, al.tensor(new Int32Array(6), [2, 3], 'i32', { backend: js }))).toThrow(/one float dtype and shape/);
  });

  it.skipIf(!gpu)('webgpu (fused) matches central differences', async () => {
    expect(runsNatively(gpu!, 'softmaxBackward')).toBe(true);
    for (const c of CASES) {
      const err = maxRelErr(await autogradDx(c, gpu!), numeric(c));
      console.log(`${c.name}: webgpu fused against central differences, largest error ${err.toExponential(2)}`);
      expect(err).toBeLessThan(1e-6);
    }
  });
});
