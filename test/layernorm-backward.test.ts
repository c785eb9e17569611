// The fused layer norm gradient (`layernormBackward`, used by the layernorm rule where a backend
// runs it natively): gradients of x, weight and bias through autograd on the js reference (fused),
// on wasm (the composed rule: no native kernel there) and on WebGPU (fused; SwiftShader here),
// each against central differences of the f64 layer norm, with the largest error printed.
import { afterAll, describe, expect, it } from 'vitest';
import * as al from '../src/index.js';
import { grad, variable } from '../src/autograd/index.js';
import { runsNatively } from '../src/tensor/backend.js';
import { openWebGpu } from './webgpu-helpers.js';
import { maxRelErr } from './helpers/numeric.js';

const { backend: gpu, reason } = await openWebGpu();
if (!gpu) console.log(`webgpu layernormBackward tests skipped: ${reason}`);
afterAll(() => gpu?.dispose());

const EPS = 1e-5;
/** Rows of 384 (a whole workgroup each) and rows of 24 (several a workgroup, the last one part-filled). */
const SHAPES = [[3, 5, 384], [37, 24]] as const;

interface Problem { shape: readonly number[]; x: Float32Array; w: Float32Array; b: Float32Array; r: Float32Array }

function problem(shape: readonly number[]): Problem {
  const n = shape.reduce((a, s) => a * s, 1);
  const d = shape.at(-1)!;
  return {
    shape,
    x: Float32Array.from({ length: n }, (_, i) => 2 * Math.sin(0.7 * i) + 0.5 * Math.cos(0.013 * i * i)),
    w: Float32Array.from({ length: d }, (_, j) => 1 + 0.5 * Math.sin(0.3 * j)),
    b: Float32Array.from({ length: d }, (_, j) => 0.1 * Math.cos(j)),
    r: Float32Array.from({ length: n }, (_, i) => Math.cos(0.37 * i)),
  };
}

/** loss = Σ layerNorm(x, w, b) · r over one row, in f64. */
function rowLoss(x: ArrayLike<number>, w: ArrayLike<number>, b: ArrayLike<number>, r: ArrayLike<number>, s: number, d: number): number {
  let mean = 0;
  for (let j = 0; j < d; j++) mean += x[s + j]!;
  mean /= d;
  let v = 0;
  for (let j = 0; j < d; j++) v += (x[s + j]! - mean) ** 2;
  const rstd = 1 / Math.sqrt(v / d + EPS);
  let l = 0;
  for (let j = 0; j < d; j++) l += ((x[s + j]! - mean) * rstd * w[j]! + b[j]!) * r[s + j]!;
  return l;
}

/** Central differences of the f64 loss for x, w and b. */
function numeric(p: Problem): { dx: number[]; dw: number[]; db: number[] } {
  const d = p.shape.at(-1)!;
  const rows = p.x.length / d;
  const h = 1e-4;
  const x = Float64Array.from(p.x);
  const w = Float64Array.from(p.w);
  const b = Float64Array.from(p.b);
  const dx = Array.from(x, (v, i) => {
    const s = i - (i % d);
    x[i] = v + h; const up = rowLoss(x, w, b, p.r, s, d);
    x[i] = v - h; const down = rowLoss(x, w, b, p.r, s, d);
    x[i] = v;
    return (up - down) / (2 * h);
  });
  const total = () => { let l = 0; for (let r = 0; r < rows; r++) l += rowLoss(x, w, b, p.r, r * d, d); return l; };
  const param = (t: Float64Array) => Array.from(t, (v, j) => {
    t[j] = v + h; const up = total();
    t[j] = v - h; const down = total();
    t[j] = v;
    return (up - down) / (2 * h);
  });
  return { dx, dw: param(w), db: param(b) };
}

async function autograd(p: Problem, backend: al.Backend): Promise<Float32Array[]> {
  const d = p.shape.at(-1)!;
  const gs = al.tidy(() => {
    const x = variable(al.tensor(p.x, [...p.shape], 'f32', { backend }));
    const w = variable(al.tensor(p.w, [d], 'f32', { backend }));
    const b = variable(al.tensor(p.b, [d], 'f32', { backend }));
    const y = al.layerNorm(x, w, b, EPS);
    const loss = al.sum(al.mul(y, al.tensor(p.r, [...p.shape], 'f32', { backend })).reshape([-1]), 0);
    return grad(loss, [x, w, b]) as al.Tensor[];
  });
  const out = await Promise.all(gs.map(async (g) => (await g.data()) as Float32Array));
  for (const g of gs) g.dispose();
  return out;
}

/** Largest |got - want| over max(1, |want|). */
async function check(name: string, backend: al.Backend, tol: number): Promise<void> {
  for (const shape of SHAPES) {
    const p = problem(shape);
    const want = numeric(p);
    const [dx, dw, db] = await autograd(p, backend);
    const errs = [maxRelErr(dx!, want.dx), maxRelErr(dw!, want.dw), maxRelErr(db!, want.db)];
    console.log(`${name} [${shape}]: largest error against central differences, dx ${errs[0]!.toExponential(2)}, dweight ${errs[1]!.toExponential(2)}, dbias ${errs[2]!.toExponential(2)}`);
    for (const e of errs) expect(e).toBeLessThan(tol);
  }
}

describe('layernormBackward', () => {
  it('js runs it natively, wasm composes the rule', async () => {
    expect(runsNatively(await al.initBackend('js'), 'layernormBackward')).toBe(true);
    expect(runsNatively(await al.initBackend('wasm'), 'layernormBackward')).toBe(false);
  });

  it('js (fused) matches central differences', async () => {
    await check('js fused', await al.initBackend('js'), 1e-5);
  });

  it('wasm (composed rule) matches central differences', async () => {
    await check('wasm composed', await al.initBackend('wasm'), 1e-4);
  });

  it.skipIf(!gpu)('webgpu (fused) matches central differences', async () => {
    expect(runsNatively(gpu!, 'layernormBackward')).toBe(true);
    await check('webgpu fused', gpu!, 1e-4);
  });

  it('says what is wrong with its operands', async () => {
    const js = await al.initBackend('js');
    const x = al.tensor(new Float32Array(6), [2, 3], 'f32', { backend: js });
    const dy = al.tensor(new Float32Array(4), [2, 2], 'f32', { backend: js });
    const w = al.tensor(new Float32Array(2), [2], 'f32', { backend: js });
    expect(() => al.layerNormBackward(x, dy)).toThrow(/dy must be f32\[2, 3\]/);
    expect(() => al.layerNormBackward(x, x, { weight: w })).toThrow(/weight must be f32\[3\]/);
    for (const t of [x, dy, w]) t.dispose();
  });
});
