// The fused dropout (`dropout` op, used by `dropout` where a backend runs it natively): on the js
// reference and on WebGPU (SwiftShader here) its outputs and gradients equal, element for element,
// the composed path (the `random` draw compared with p, a product, a `where`) that wasm still runs,
// so the same seed drops the same elements as before and training gives the same numbers.
import { afterAll, describe, expect, it } from 'vitest';
import * as al from '../src/index.js';
import { grad, variable } from '../src/autograd/index.js';
import { runsNatively } from '../src/tensor/backend.js';
import { openWebGpu } from './webgpu-helpers.js';

const { backend: gpu, reason } = await openWebGpu();
if (!gpu) console.log(`webgpu dropout tests skipped: ${reason}`);
afterAll(() => gpu?.dispose());

const SHAPE = [4, 6, 32, 33];
const N = SHAPE.reduce((a, s) => a * s, 1);
const xs = Float32Array.from({ length: N }, (_, i) => 1.5 + Math.sin(0.37 * i)); // no zeros: a zero output is a dropped element
const rs = Float32Array.from({ length: N }, (_, i) => Math.cos(0.11 * i) + 2);
const CASES = [{ p: 0.2, seed: 1337 }, { p: 0.5, seed: 0xffffffff }, { p: 0.9, seed: 3 }];

/** dropout(x) (x read transposed: a strided view) and d/dx Σ dropout(x) · r, on `backend`. */
async function run(backend: al.Backend, p: number, seed: number): Promise<{ y: Float32Array; dx: Float32Array }> {
  const [y, dx] = al.tidy(() => {
    const x = variable(al.tensor(xs, SHAPE, 'f32', { backend }));
    const xt = x.transpose(-1, -2);
    const y = al.dropout(xt, p, seed);
    const loss = al.sum(al.mul(y, al.tensor(rs, SHAPE, 'f32', { backend }).transpose(-1, -2)).reshape([-1]), 0);
    return [y.contiguous(), grad(loss, [x])[0]!];
  });
  const out = { y: (await y.data()) as Float32Array, dx: (await dx.data()) as Float32Array };
  y.dispose();
  dx.dispose();
  return out;
}

/** The number of elements where `a` and `b` differ (bit for bit, NaN equal to NaN). */
function mismatches(a: Float32Array, b: Float32Array): number {
  let n = 0;
  for (let i = 0; i < a.length; i++) if (!Object.is(a[i], b[i])) n++;
  return n;
}

async function compareWithComposed(name: string, fused: al.Backend): Promise<void> {
  const wasm = await al.initBackend('wasm');
  for (const { p, seed } of CASES) {
    const want = await run(wasm, p, seed);
    const got = await run(fused, p, seed);
    const dropped = want.y.reduce((n, v) => n + (v === 0 ? 1 : 0), 0) / N;
    const bad = [mismatches(got.y, want.y), mismatches(got.dx, want.dx)];
    console.log(`${name} p=${p} seed ${seed}: ${(100 * dropped).toFixed(1)}% dropped; elements unlike the composed path: y ${bad[0]}, dx ${bad[1]} of ${N}`);
    expect(Math.abs(dropped - p)).toBeLessThan(0.02);
    expect(bad).toEqual([0, 0]);
  }
}

describe('dropout', () => {
  it('js runs it as one op, wasm composes it', async () => {
    expect(runsNatively(await al.initBackend('js'), 'dropout')).toBe(true);
    expect(runsNatively(await al.initBackend('wasm'), 'dropout')).toBe(false);
  });

  it('js (fused) equals the composed path exactly, forward and backward', async () => {
    await compareWithComposed('js fused', await al.initBackend('js'));
  });

  it.skipIf(!gpu)('webgpu (fused) equals the composed path exactly, forward and backward', async () => {
    expect(runsNatively(gpu!, 'dropout')).toBe(true);
    await compareWithComposed('webgpu fused', gpu!);
  });

  it('says what is wrong with p and the seed', async () => {
    const x = al.tensor([1, 2, 3], [3], 'f32', { backend: await al.initBackend('js') });
    expect(() => al.dropout(x, 1, 0)).toThrow(/p must lie in \[0, 1\), got 1/);
    expect(() => al.dropout(x, 0.5, -1)).toThrow(/seed must be an integer in \[0, 2\^32\), got -1/);
    x.dispose();
  });
});
