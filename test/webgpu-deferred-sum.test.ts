// A split product's sum deferred to the output's next use on WebGPU (kernels/context.ts
// DeferredSum): an addNorm reading the output adds the partials itself; every other use (a read,
// another op, a view of it, the bias freed or overwritten first, the output overwritten) makes the
// sum first. Each case against the js reference; the partials' memory comes back when the output
// is freed; at most two sums wait at once. A tiny GPT-2 with every product split gives the js
// logits with the deferral on and off.
// Skips with the reason where there is no adapter (see webgpu-helpers.ts for SwiftShader).
import { afterAll, describe, expect, it } from 'vitest';
import '../src/backends/index.js';
import * as al from '../src/index.js';
import * as F from '../src/ops/index.js';
import { Tensor } from '../src/tensor/tensor.js';
import { createJsBackend } from '../src/backends/js/backend.js';
import { DEFAULT_SPLITK, setMatmulSplitK } from '../src/backends/webgpu/kernels/matmul.js';
import { addNormDeferredBuffers } from '../src/backends/webgpu/kernels/nn.js';
import type { WebGpuBackend } from '../src/backends/webgpu/backend.js';
import type { Backend } from '../src/tensor/backend.js';
import { randomModel } from '../src/models/random.js';
import { openWebGpu } from './webgpu-helpers.js';
import { TINY } from './helpers/tiny-configs.js';

const { backend: gpu, reason } = await openWebGpu();
if (!gpu) console.log(`webgpu deferred-sum tests skipped: ${reason}`);
const ref = createJsBackend();
const be = gpu as WebGpuBackend | null;

// 72 rows (above the GEMV's 8), K = 256, N = 96: split into 2 k-ranges when asked
const [M, K, N] = [72, 256, 96];
const xs = Array.from({ length: M * K }, (_, i) => Math.sin(i * 0.37));
const ws = Array.from({ length: K * N }, (_, i) => Math.cos(i * 0.11) * 0.05);
const bs = Array.from({ length: N }, (_, i) => Math.sin(i * 0.7));
const rs = Array.from({ length: M * N }, (_, i) => Math.cos(i * 0.013) * 3);
const lnw = Array.from({ length: N }, (_, i) => 1 + 0.1 * Math.sin(i));
const lnb = Array.from({ length: N }, (_, i) => 0.05 * Math.cos(i));

function nmse(got: ArrayLike<number>, want: ArrayLike<number>): number {
  let num = 0; let den = 0;
  for (let i = 0; i < want.length; i++) { num += (got[i]! - want[i]!) ** 2; den += want[i]! ** 2; }
  return num / den;
}

const inputs = (b: Backend) => ({
  x: Tensor.from(xs, [M, K], 'f32', b), w: Tensor.from(ws, [K, N], 'f32', b), bias: Tensor.from(bs, [N], 'f32', b),
  r: Tensor.from(rs, [M, N], 'f32', b), lw: Tensor.from(lnw, [N], 'f32', b), lb: Tensor.from(lnb, [N], 'f32', b),
});

/** js: y = x·w + bias, sum = r + y, norm = LN(sum). */
const want = (() => {
  const t = inputs(ref);
  const y = F.fusedLinear(t.x, t.w, t.bias, { force: true });
  const { sum, y: norm } = F.addNorm(t.r, y, { kind: 'layer', weight: t.lw, bias: t.lb, force: true });
  return { y: y.dataSync(), sum: sum.dataSync(), norm: norm.dataSync() };
})();

describe.skipIf(!gpu)('webgpu deferred split sums', () => {
  afterAll(() => { setMatmulSplitK(DEFAULT_SPLITK); gpu?.dispose(); });

  async function each(name: string, fn: (t: ReturnType<typeof inputs>, y: Tensor) => Promise<void>): Promise<void> {
    setMatmulSplitK(2);
    const before = be!.memoryInUse();
    const t = inputs(be!);
    const y = F.fusedLinear(t.x, t.w, t.bias, { force: true });
    await fn(t, y);
    y.dispose();
    for (const v of Object.values(t)) v.dispose();
    await be!.flush();
    expect(be!.memoryInUse(), `${name}: memory after freeing everything`).toBe(before);
    setMatmulSplitK(DEFAULT_SPLITK);
  }

  it('an addNorm adds the partials itself: the sum and the norm equal the reference, and y read afterwards too', async () => {
    await each('addNorm', async (t, y) => {
      const d0 = be!.rt.stats.dispatches;
      const { sum, y: norm } = F.addNorm(t.r, y, { kind: 'layer', weight: t.lw, bias: t.lb, force: true });
      // where the device binds fewer storage buffers than the fused norm needs (WebGPU's default
      // 8), the sum is made first: two dispatches
      const fits = addNormDeferredBuffers(2, true) <= be!.handle.device.limits.maxStorageBuffersPerShaderStage;
      expect(be!.rt.stats.dispatches - d0, `dispatches of the addNorm (${fits ? 'no sum before it' : 'the sum, then the norm'})`).toBe(fits ? 1 : 2);
      expect(be!.deferredSums(), 'sums still waiting after the addNorm stored y').toBe(0);
      const d1 = be!.rt.stats.dispatches;
      const e = [nmse(await sum.data(), want.sum), nmse(await norm.data(), want.norm), nmse(await y.data(), want.y)];
      expect(be!.rt.stats.dispatches - d1, 'dispatches to read y afterwards').toBe(0);
      console.log(`deferred sum into addNorm: NMSE sum ${e[0]!.toExponential(1)}, norm ${e[1]!.toExponential(1)}, y ${e[2]!.toExponential(1)}`);
      for (const v of e) expect(v).toBeLessThan(1e-12);
      sum.dispose(); norm.dispose();
    });
  });

  it('the same values with the deferral off (one dispatch more)', async () => {
    be!.deferSums = false;
    try {
      await each('off', async (t, y) => {
        const d0 = be!.rt.stats.dispatches;
        const { sum, y: norm } = F.addNorm(t.r, y, { kind: 'layer', weight: t.lw, bias: t.lb, force: true });
        expect(be!.rt.stats.dispatches - d0, 'dispatches of the addNorm (the sum made with the product)').toBe(1);
        expect(nmse(await sum.data(), want.sum)).toBeLessThan(1e-12);
        expect(nmse(await norm.data(), want.norm)).toBeLessThan(1e-12);
        sum.dispose(); norm.dispose();
      });
    } finally { be!.deferSums = true; }
  });

  it('y read, used by another op or through a strided view makes the sum first', async () => {
    await each('read', async (_t, y) => {
      const d0 = be!.rt.stats.dispatches;
      const got = await y.data();
      expect(be!.rt.stats.dispatches - d0, 'the sum made for the read').toBe(1);
      expect(nmse(got, want.y)).toBeLessThan(1e-12);
    });
    await each('op', async (_t, y) => {
      const z = F.add(y, y);
      expect(nmse(await z.data(), want.y.map((v) => 2 * v))).toBeLessThan(1e-12);
      z.dispose();
    });
    await each('view', async (t, y) => {
      // a column slice (not contiguous) as addNorm's b: no fusion, the sum made, then the op
      const cols = y.slice([0, 8], [M, 40]);
      const r = t.r.slice([0, 8], [M, 40]);
      const s = F.add(r, cols);
      const got = await s.data();
      const w = Array.from({ length: M * 32 }, (_, i) => rs[Math.floor(i / 32) * N + 8 + (i % 32)]! + want.y[Math.floor(i / 32) * N + 8 + (i % 32)]!);
      expect(nmse(got, w)).toBeLessThan(1e-12);
      for (const v of [cols, r, s]) v.dispose();
    });
  });

  it('the bias freed or overwritten before y is used: y keeps the bias it was made with', async () => {
    await each('bias freed', async (t, y) => {
      t.bias.dispose();
      expect(nmse(await y.data(), want.y)).toBeLessThan(1e-12);
    });
    await each('bias overwritten', async (t, y) => {
      const zeros = new Uint8Array(N * 4);
      const v = t.bias.view();
      be!.write(v.buffer, v.offset * 4, zeros);
      expect(nmse(await y.data(), want.y)).toBeLessThan(1e-12);
    });
  });

  it('an addNorm whose a is y too adds the made sum; y overwritten by another product holds the new one', async () => {
    await each('a = b = y', async (t, y) => {
      const { sum, y: norm } = F.addNorm(y, y, { kind: 'layer', weight: t.lw, bias: t.lb, force: true });
      expect(nmse(await sum.data(), want.y.map((v) => 2 * v))).toBeLessThan(1e-12);
      sum.dispose(); norm.dispose();
    });
    await each('y freed unread', async () => { /* freed by each(): the partials go with it */ });
  });

  it('at most two sums wait at once: four products left unread make the oldest two; all four read right', async () => {
    await each('four', async (t, y) => {
      const more = [1, 2, 3].map(() => F.fusedLinear(t.x, t.w, t.bias, { force: true }));
      expect(be!.deferredSums()).toBe(2);
      for (const z of [y, ...more]) expect(nmse(await z.data(), want.y)).toBeLessThan(1e-12);
      expect(be!.deferredSums()).toBe(0);
      for (const z of more) z.dispose();
    });
  });

  it('a tiny GPT-2 with every product split gives the reference logits with the deferral on and off', async () => {
    const cfg = { ...TINY.gpt2, n_embd: 64, n_head: 4 };
    const mr = randomModel(cfg, ref, { seed: 3, std: 0.05 });
    const mg = randomModel(cfg, be!, { seed: 3, std: 0.05 });
    const ids = Array.from({ length: 24 }, (_, i) => (i * 7) % cfg.vocab_size);
    const lr = mr.forward(al.tensor(ids, [1, 24], 'i32', { backend: ref })).dataSync();
    setMatmulSplitK(2);
    // the split sums waiting at once, after each op of the forward
    let most = 0;
    const exec = be!.exec.bind(be!);
    be!.exec = (...a: Parameters<WebGpuBackend['exec']>) => { exec(...a); most = Math.max(most, be!.deferredSums()); };
    for (const on of [true, false]) {
      be!.deferSums = on;
      const lg = mg.forward(al.tensor(ids, [1, 24], 'i32', { backend: be! }));
      if (on) expect(most, 'split sums waiting at once').toBeLessThanOrEqual(2);
      const e = nmse(await lg.data(), lr);
      console.log(`tiny GPT-2, products split in 2, deferral ${on ? 'on' : 'off'}: logits NMSE ${e.toExponential(1)}`);
      expect(e).toBeLessThan(1e-10);
      lg.dispose();
    }
    be!.deferSums = true;
    be!.exec = exec;
    setMatmulSplitK(DEFAULT_SPLITK);
  });
});
