// The autograd tape: views, noGrad, memory, errors, gradients at hook points, backward hooks.
import { beforeAll, describe, expect, it } from 'vitest';
import * as al from '../src/index.js';
import { grad, noGrad, NoGradientError, tapeStats, valueAndGrad, variable, backward, zeroGrad, clearTape } from '../src/autograd/index.js';
import { Hooks } from '../src/models/hook-point.js';
import { gradAt } from '../src/hooks/grad.js';
import { randomModel } from '../src/models/random.js';
import { TINY } from './helpers/tiny-configs.js';

let backend: al.Backend;
beforeAll(async () => { backend = await al.initBackend('js'); });

const arr = (t: al.Tensor) => Array.from(t.dataSync() as Float32Array);
const close = (a: number[], b: number[], tol = 1e-5) => {
  expect(a.length).toBe(b.length);
  a.forEach((x, i) => expect(Math.abs(x - b[i]!), `element ${i}: ${x} vs ${b[i]}`).toBeLessThanOrEqual(tol * Math.max(1, Math.abs(b[i]!))));
};
/** Σ t·r as a scalar, with r = 1, 2, 3, ... in t's logical order. */
const project = (t: al.Tensor) => al.sum(al.mul(t, al.tensor(Array.from({ length: t.size }, (_, i) => i + 1), [...t.shape])).reshape([-1]), 0);

describe('views', () => {
  it('permute, transpose, reshape, squeeze/unsqueeze give the inverse view', () => {
    al.tidy(() => {
      const x = variable(al.tensor(Array.from({ length: 24 }, (_, i) => i), [2, 3, 4]));
      const y = x.permute([2, 0, 1]).unsqueeze(1).squeeze(1).reshape([4, 6]).transpose();
      const [g] = grad(project(y), [x]);
      // y[j, i] = x viewed as [4, 6] transposed: d/dx = r laid back through the views.
      const want = al.tensor(Array.from({ length: 24 }, (_, i) => i + 1), [6, 4]).transpose().reshape([4, 2, 3]).permute([1, 2, 0]).contiguous();
      close(arr(g!), arr(want));
    });
  });

  it('slice and narrow: zeros outside the window', () => {
    al.tidy(() => {
      const x = variable(al.tensor(Array.from({ length: 12 }, (_, i) => i), [3, 4]));
      const [g] = grad(project(x.slice([1, 1], [3, 3])), [x]);
      expect(arr(g!)).toEqual([0, 0, 0, 0, 0, 1, 2, 0, 0, 3, 4, 0]);
      const [g2] = grad(project(x.narrow(1, 2, 2)), [x]);
      expect(arr(g2!)).toEqual([0, 0, 1, 2, 0, 0, 3, 4, 0, 0, 5, 6]);
    });
  });

  it('broadcastTo sums over the repeated dims (also through binary broadcasting)', () => {
    al.tidy(() => {
      const b = variable(al.tensor([1, 2, 3], [3]));
      const [g] = grad(project(b.broadcastTo([2, 3])), [b]);
      expect(arr(g!)).toEqual([1 + 4, 2 + 5, 3 + 6]);
      const x = variable(al.tensor([[1], [2]], [2, 1]));
      const [gx, gb] = grad(project(al.mul(x, b)), [x, b]);
      expect(arr(gx!)).toEqual([1 * 1 + 2 * 2 + 3 * 3, 4 * 1 + 5 * 2 + 6 * 3]);
      expect(arr(gb!)).toEqual([1 + 8, 2 + 10, 3 + 12]);
    });
  });

  it('concat, stack, pad and split route gradients to their pieces', () => {
    al.tidy(() => {
      const a = variable(al.tensor([1, 2, 3, 4], [2, 2]));
      const b = variable(al.tensor([5, 6], [2, 1]));
      const [ga, gb] = grad(project(al.concat([a, b], 1)), [a, b]);
      expect(arr(ga!)).toEqual([1, 2, 4, 5]);
      expect(arr(gb!)).toEqual([3, 6]);
      const [gs] = grad(project(al.stack([a, al.mul(a, 2)])), [a]);
      expect(arr(gs!)).toEqual([1 + 10, 2 + 12, 3 + 14, 4 + 16]);
      const [gp] = grad(project(al.pad(a, [[1, 0], [0, 1]])), [a]);
      expect(arr(gp!)).toEqual([4, 5, 7, 8]);
      const [gv] = grad(project(al.concat([a, b], 1).narrow(1, 1, 2)), [b]);
      expect(arr(gv!)).toEqual([2, 4]);
      const [p, q] = al.split(a, [1, 1], 0);
      const [gq] = grad(al.add(project(p!), al.mul(project(q!), 10)), [a]);
      expect(arr(gq!)).toEqual([1, 2, 10, 20]);
    });
  });
});

describe('matmul with a weight broadcast over the batch', () => {
  it('gives the weight the same gradient as the flattened product (plain, transB, transA)', () => {
    al.tidy(() => {
      const xv = al.randn([2, 3, 5], { seed: 1 });
      for (const [wShape, o] of [[[5, 4], {}], [[4, 5], { transB: true }]] as const) {
        const w = variable(al.randn([...wShape], { seed: 2 }));
        const x = variable(xv.share());
        const [gx, gw] = grad(project(al.matmul(x, w, o)), [x, w]);
        const x2 = variable(xv.reshape([6, 5]));
        const [gx2, gw2] = grad(project(al.matmul(x2, w, o)), [x2, w]);
        close(arr(gw!), arr(gw2!), 1e-5);
        close(arr(gx!), arr(gx2!), 1e-5);
      }
      // transA: x is [b, K, M]
      const w = variable(al.randn([5, 4], { seed: 3 }));
      const xt = variable(al.randn([2, 5, 3], { seed: 4 }));
      const [, gw] = grad(project(al.matmul(xt, w, { transA: true })), [xt, w]);
      const parts = [0, 1].map((i) => grad(project(al.matmul(xt.narrow(0, i, 1).squeeze(0), w, { transA: true })), [w])[0]!);
      // Each part weights r from 1; offset the second by the first part's size through linearity.
      const r2 = al.tensor(Array.from({ length: 12 }, (_, i) => i + 13), [3, 4]);
      const [gSecond] = grad(al.sum(al.mul(al.matmul(xt.narrow(0, 1, 1).squeeze(0), w, { transA: true }), r2).reshape([-1]), 0), [w]);
      close(arr(gw!), arr(al.add(parts[0]!, gSecond!)), 1e-5);
    });
  });
});

describe('tape', () => {
  it('records nothing under noGrad, and nothing for tensors that do not require grad', () => {
    al.tidy(() => {
      const x = variable(al.tensor([1, 2, 3]));
      const before = tapeStats().nodes;
      const y = noGrad(() => al.exp(x));
      expect(y.requiresGrad).toBe(false);
      const z = al.exp(al.tensor([1, 2]));
      expect(z.requiresGrad).toBe(false);
      expect(tapeStats().nodes).toBe(before);
      expect(al.exp(x).requiresGrad).toBe(true);
      clearTape();
    });
  });

  it('frees the tape and every saved tensor after backward', () => {
    const base = backend.memoryInUse();
    const x = variable(al.tensor([0.5, -1, 2, 3], [2, 2]));
    const w = variable(al.tensor([1, 2, 3, 4], [2, 2]));
    al.tidy(() => {
      const h = al.tanh(al.matmul(x, w));
      const loss = al.sum(al.sum(al.mul(al.softmax(h), h), -1), 0);
      expect(tapeStats().nodes).toBeGreaterThan(3);
      backward(loss);
    });
    expect(tapeStats()).toEqual({ nodes: 0, savedTensors: 0 });
    expect(x.grad).not.toBeNull();
    zeroGrad([x, w]);
    x.dispose();
    w.dispose();
    expect(backend.memoryInUse()).toBe(base);
  });

  it('backward accumulates into .grad; grad gives zeros for unused inputs', () => {
    al.tidy(() => {
      const x = variable(al.tensor([1, 2]));
      backward(al.sum(al.square(x), 0));
      backward(al.sum(al.mul(x, 3), 0));
      expect(arr(x.grad!)).toEqual([2 + 3, 4 + 3]);
      zeroGrad([x]);
      const u = variable(al.tensor([7]));
      const [gu] = grad(al.sum(al.mul(x, 2), 0), [u]);
      expect(arr(gu!)).toEqual([0]);
    });
  });

  it('valueAndGrad returns the value and the gradients of its arguments, and leaves no tape', () => {
    al.tidy(() => {
      const f = valueAndGrad((a, b) => al.sum(al.mul(al.mul(a, a), b), 0));
      const { value, grads } = f(al.tensor([1, 2]), al.tensor([3, 4]));
      expect(value.item()).toBe(1 * 3 + 4 * 4);
      expect(arr(grads[0]!)).toEqual([6, 16]);
      expect(arr(grads[1]!)).toEqual([1, 4]);
      expect(tapeStats().nodes).toBe(0);
    });
  });

  it('a gradient through an op without one names the op', () => {
    al.tidy(() => {
      const raw = variable(al.tensor(new Array(34).fill(0), [34], 'u8'));
      const y = al.dequantize(raw, 'q8_0', [32]);
      expect(() => grad(al.sum(y, 0), [raw])).toThrow(NoGradientError);
      clearTape();
      const y2 = al.dequantize(raw, 'q8_0', [32]);
      expect(() => grad(al.sum(y2, 0), [raw])).toThrow(/dequantize\(type=q8_0\)/);
      clearTape();
    });
  });
});

describe('hook points', () => {
  it('a backward hook reads and replaces the gradient flowing through an activation', () => {
    al.tidy(() => {
      const x = variable(al.tensor([1, 2, 3]));
      const seen: number[][] = [];
      const hooks = new Hooks().addBackward('h', (g) => { seen.push(arr(g)); return al.mul(g, 10); });
      const y = hooks.at('h', al.mul(x, 2));
      const [g] = grad(al.sum(al.mul(y, y), 0), [x]);
      expect(seen).toEqual([[4, 8, 12]]);
      expect(arr(g!)).toEqual([80, 160, 240]);
    });
  });

  it('the gradient at a hook point of a model equals a finite difference', () => {
    const model = randomModel(TINY.gpt2!, backend, { seed: 3 });
    const ids = al.tensor([[3, 7, 1, 9, 4]], [1, 5], 'i32');
    const name = 'blocks.1.hook_resid_pre';
    const metric = (logits: al.Tensor) => al.sum(al.mul(logits.narrow(1, 4, 1).reshape([-1]), al.tensor(Array.from({ length: 61 }, (_, i) => Math.sin(i)))), 0);
    const { value, grads } = gradAt(model, ids, metric, [name]);
    const g = arr(grads.get(name)!);
    expect(grads.get(name)!.shape).toEqual([1, 5, 24]);
    expect(tapeStats().nodes).toBe(0);
    const at = (pos: number, ch: number, h: number) => noGrad(() => al.tidy(() => {
      const bump = new Float32Array(5 * 24);
      bump[pos * 24 + ch] = h;
      const logits = al.runWithHooks(model, ids, { hooks: [[name, (t) => al.add(t, al.tensor(bump, [1, 5, 24]))]] });
      return metric(logits).item();
    }));
    expect(Math.abs(at(0, 0, 0) - value)).toBeLessThan(1e-5);
    let worst = 0;
    for (const [pos, ch] of [[0, 0], [2, 5], [4, 23], [3, 11], [1, 17]] as const) {
      const h = 1e-2;
      const num = (at(pos, ch, h) - at(pos, ch, -h)) / (2 * h);
      const err = Math.abs(num - g[pos * 24 + ch]!) / Math.max(1e-2, Math.abs(num));
      worst = Math.max(worst, err);
    }
    console.log(`gradAt ${name}: max rel err vs finite differences ${worst.toExponential(2)}`);
    expect(worst).toBeLessThan(1e-2);
    for (const t of grads.values()) t.dispose();
    model.dispose();
  });
});

describe('models', () => {
  for (const arch of ['gpt2', 'llama', 'gpt_neox', 'mixtral']) {
    it(`parameter gradients of a tiny ${arch} equal finite differences`, async () => {
      const { crossEntropy } = await import('../src/train/loss.js');
      const model = randomModel(TINY[arch]!, backend, { seed: 4 });
      const ids = al.tensor([[3, 7, 1, 9, 4, 2]], [1, 6], 'i32');
      const tgt = al.tensor([[7, 1, 9, 4, 2, 8]], [1, 6], 'i32');
      const params = model.parameters();
      const names = [...params.keys()].filter((_, i, a) => i % Math.ceil(a.length / 6) === 0);
      const loss = () => crossEntropy(model.forward(ids), tgt);
      const gs = al.tidy(() => {
        for (const n of names) params.get(n)!.requireGrad();
        try {
          return grad(loss(), names.map((n) => params.get(n)!)).map((g) => arr(g));
        } finally {
          for (const n of names) params.get(n)!.requireGrad(false);
        }
      });
      let worst = 0;
      let kinks = 0;
      const rng = new al.Rng(1);
      names.forEach((n, k) => {
        const p = params.get(n)!;
        for (let s = 0; s < 3; s++) {
          const j = rng.int(p.size);
          const x0 = arr(p);
          const at = (d: number) => noGrad(() => al.tidy(() => {
            const x = [...x0];
            x[j] = x0[j]! + d;
            al.assign(p, al.tensor(x, [...p.shape]));
            const v = loss().item();
            al.assign(p, al.tensor(x0, [...p.shape]));
            return v;
          }));
          const h = 1e-2;
          const [lp, l0, lm] = [at(h), at(0), at(-h)];
          // MoE routing is piecewise: skip an element whose step flips a routing choice (one-sided slopes disagree).
          if (Math.abs((lp - l0) - (l0 - lm)) / h > 0.2 * Math.max(Math.abs(lp - l0) / h, Math.abs(l0 - lm) / h, 0.1)) { kinks++; continue; }
          const num = (lp - lm) / (2 * h);
          worst = Math.max(worst, Math.abs(num - gs[k]![j]!) / (Math.abs(num) + 1e-2));
        }
      });
      console.log(`${arch}: parameter gradients vs finite differences, max rel err ${worst.toExponential(2)} (${kinks} of ${names.length * 3} elements skipped on a routing switch)`);
      expect(worst).toBeLessThan(2e-2);
      expect(kinks).toBeLessThanOrEqual(arch === 'mixtral' ? 3 : 0);
      expect(tapeStats().nodes).toBe(0);
      model.dispose();
    });
  }
});
