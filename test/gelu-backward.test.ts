// The fused gelu gradient (`geluBackward`, used by the unary rule where a backend runs it natively):
// gradients of gelu_tanh and gelu_erf through autograd on the js reference (fused), on wasm (the
// composed rule: no native kernel there) and on WebGPU (fused; SwiftShader here), each against
// central differences of the f64 gelu, with the largest error printed.
import { afterAll, describe, expect, it } from 'vitest';
import * as al from '../src/index.js';
import { grad, variable } from '../src/autograd/index.js';
import { geluGradComposed } from '../src/autograd/rules.js';
import { erfc } from '../src/backends/js/kernels/elementwise.js';
import { runsNatively } from '../src/tensor/backend.js';
import { openWebGpu } from './webgpu-helpers.js';
import { maxRelErr } from './helpers/numeric.js';

const { backend: gpu, reason } = await openWebGpu();
if (!gpu) console.log(`webgpu geluBackward tests skipped: ${reason}`);
afterAll(() => gpu?.dispose());

const N = 4099;
const xs = Float32Array.from({ length: N }, (_, i) => -7 + (14 * i) / (N - 1) + 1e-3 * Math.sin(i));
const dys = Float32Array.from({ length: N }, (_, i) => Math.cos(0.37 * i));
const GELU = {
  gelu_tanh: (x: number) => 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x ** 3))),
  gelu_erf: (x: number) => 0.5 * x * erfc(-x / Math.SQRT2),
};
type Fn = keyof typeof GELU;
/** dy · gelu'(x) by central differences in f64. */
const numeric = (fn: Fn) => Array.from(xs, (x, i) => dys[i]! * (GELU[fn](x + 1e-5) - GELU[fn](x - 1e-5)) / 2e-5);

async function autogradDx(fn: Fn, backend: al.Backend): Promise<Float32Array> {
  const g = al.tidy(() => {
    const x = variable(al.tensor(xs, [N], 'f32', { backend }));
    const loss = al.sum(al.mul(al.unary(fn, x), al.tensor(dys, [N], 'f32', { backend })), 0);
    return grad(loss, [x])[0]!;
  });
  const out = (await g.data()) as Float32Array;
  g.dispose();
  return out;
}

describe('geluBackward', () => {
  it('js (fused) and wasm (composed rule) match central differences', async () => {
    const js = await al.initBackend('js');
    const wasm = await al.initBackend('wasm');
    expect(runsNatively(al.tensor([0], [1], 'f32', { backend: js }).backend, 'geluBackward')).toBe(true);
    expect(runsNatively(al.tensor([0], [1], 'f32', { backend: wasm }).backend, 'geluBackward')).toBe(false);
    for (const fn of ['gelu_tanh', 'gelu_erf'] as const) {
      const want = numeric(fn);
      const fused = maxRelErr(await autogradDx(fn, js), want);
      const composed = maxRelErr(await autogradDx(fn, wasm), want);
      console.log(`${fn}: largest error against central differences, js fused ${fused.toExponential(2)}, wasm composed ${composed.toExponential(2)}`);
      expect(fused).toBeLessThan(1e-6);
      expect(composed).toBeLessThan(1e-5);
    }
  });

  it('the composed rule equals the fused op on js', async () => {
    const js = await al.initBackend('js');
    for (const fn of ['gelu_tanh', 'gelu_erf'] as const) {
      const [fused, composed] = al.tidy(() => {
        const x = al.tensor(xs, [N], 'f32', { backend: js });
        const dy = al.tensor(dys, [N], 'f32', { backend: js });
        const ctx = { input: () => x, output: () => al.unary(fn, x) };
        return [al.geluBackward(fn, x, dy).dataSync() as Float32Array, geluGradComposed(fn, ctx, dy).dataSync() as Float32Array];
      });
      const err = maxRelErr(composed, Array.from(fused));
      console.log(`${fn}: composed rule against the fused op on js, largest error ${err.toExponential(2)}`);
      expect(err).toBeLessThan(1e-5);
    }
  });

  it.skipIf(!gpu)('webgpu (fused) matches central differences', async () => {
    for (const fn of ['gelu_tanh', 'gelu_erf'] as const) {
      const err = maxRelErr(await autogradDx(fn, gpu!), numeric(fn));
      console.log(`${fn}: webgpu fused against central differences, largest error ${err.toExponential(2)}`);
      expect(err).toBeLessThan(1e-5);
    }
  });
});
