// WebGPU on the limits every adapter grants (WebGPU's defaults: 8 storage buffers a kernel, 16 KiB
// of workgroup memory), what a browser page that asks for nothing more gets. The kernels that would
// bind or stage more take smaller tiles or another path there: the q-block GEMM's unpadded tiles,
// the 4x4 scalar product tiles, prefill attention's row kernel for heads of 128, the split sum made
// before a norm that would bind 9 buffers, keys and values dequantized before attention over a
// KVQuant cache (its packed kernel binds 10). On SwiftShader with its limits capped: the conformance
// cases of those ops against the js reference, a tall product, a tiny GPT-2 with every product split,
// a llama with a kvquant-4 cache against wasm. Skips with the reason where there is no adapter.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import '../src/backends/index.js';
import * as al from '../src/index.js';
import * as F from '../src/ops/index.js';
import { Tensor } from '../src/tensor/tensor.js';
import { createJsBackend } from '../src/backends/js/backend.js';
import { createWebGpuBackend, type WebGpuBackend } from '../src/backends/webgpu/backend.js';
import { WEBGPU_DEFAULT_LIMITS } from '../src/backends/webgpu/device.js';
import { DEFAULT_SPLITK, setMatmulSplitK } from '../src/backends/webgpu/kernels/matmul.js';
import { runConformance } from '../src/conformance/runner.js';
import { randomModel } from '../src/models/random.js';
import { initBackend } from '../src/tensor/engine.js';
import { kvGreedy, kvLogitErrors, kvTestModels, kvquant4Calibrated, openWebGpu } from './webgpu-helpers.js';
import { TINY } from './helpers/tiny-configs.js';

const { backend: probe, reason } = await openWebGpu();
if (!probe) console.log(`webgpu default-limits tests skipped: ${reason}`);
probe?.dispose();

function nmse(got: ArrayLike<number>, want: ArrayLike<number>): number {
  let num = 0; let den = 0;
  for (let i = 0; i < want.length; i++) { num += (got[i]! - want[i]!) ** 2; den += want[i]! ** 2; }
  return num / den;
}

describe.skipIf(!probe)('webgpu on WebGPU\'s default limits', () => {
  let gpu: WebGpuBackend;
  const ref = createJsBackend();
  beforeAll(async () => { gpu = (await createWebGpuBackend({ limits: 'default' })) as WebGpuBackend; });
  afterAll(() => { setMatmulSplitK(DEFAULT_SPLITK); gpu?.dispose(); });

  it('the device has the default limits; a cap below them, and a kernel binding more, are refused by name', async () => {
    const L = gpu.handle.device.limits;
    for (const [name, v] of Object.entries(WEBGPU_DEFAULT_LIMITS)) expect(L[name as keyof GPUSupportedLimits], name).toBe(v);
    await expect(createWebGpuBackend({ limits: { maxStorageBuffersPerShaderStage: 4 } })).rejects.toThrow(/maxStorageBuffersPerShaderStage = 4 is below WebGPU's guaranteed 8/);
    // a kernel that binds more than the device allows is refused by name when it is made
    const nine = Array.from({ length: 9 }, (_, i) => `@group(0) @binding(${i}) var<storage, read> b${i}: array<u32>;`).join('\n');
    expect(() => gpu.rt.kernel('nine buffers', `${nine}\n@compute @workgroup_size(1) fn main() {}`)).toThrow(/kernel 'nine buffers' binds 9 storage buffers; this device allows 8/);
  });

  it('the conformance cases of products, attention, q-block products and norms match the reference', async () => {
    const results = await runConformance(ref, gpu, { ops: ['matmul', 'linear', 'attention', 'qmatmul', 'qlinear', 'dequantize', 'layernorm', 'addNorm'] });
    // actlab's own formats have no WebGPU kernel (docs/quantization.md): their cases say so
    const noKernel = (r: { status: string; label: string }) => r.status === 'unsupported' && /^(dequantize|qmatmul|qlinear) (int|nf4|fp|llmfp4)/.test(r.label);
    const bad = results.filter((r) => r.status !== 'pass' && !noKernel(r));
    for (const r of bad) console.log(`${r.status} ${r.label}: nmse ${r.nmse} > ${r.budget} ${r.detail ?? ''}`);
    console.log(`${results.length} cases, ${results.filter((r) => r.status === 'pass').length} pass`);
    expect(results.length).toBeGreaterThan(50);
    expect(bad.map((r) => `${r.label} (${r.status})`)).toEqual([]);
  }, 900_000);

  it('a tall product on the scalar tiled kernel (313 tiles of 128, N not a multiple of 4) matches the reference', async () => {
    const [M, K, N] = [40000, 3, 5];
    const a = Array.from({ length: M * K }, (_, i) => Math.sin(i * 0.37));
    const b = Array.from({ length: K * N }, (_, i) => Math.cos(i * 0.11));
    const yr = F.matmul(Tensor.from(a, [M, K], 'f32', ref), Tensor.from(b, [K, N], 'f32', ref)).dataSync();
    const yg = await F.matmul(Tensor.from(a, [M, K], 'f32', gpu), Tensor.from(b, [K, N], 'f32', gpu)).data();
    const e = nmse(yg, yr);
    console.log(`${M}x${K}x${N}: NMSE ${e.toExponential(1)}`);
    expect(e).toBeLessThan(1e-12);
  }, 300_000);

  it('a tiny GPT-2 with every product split gives the reference logits (each split sum made before its norm)', async () => {
    const cfg = { ...TINY.gpt2, n_embd: 64, n_head: 4 };
    const ids = Array.from({ length: 24 }, (_, i) => (i * 7) % (cfg.vocab_size as number));
    const lr = randomModel(cfg, ref, { seed: 3, std: 0.05 }).forward(al.tensor(ids, [1, 24], 'i32', { backend: ref })).dataSync();
    const mg = randomModel(cfg, gpu, { seed: 3, std: 0.05 });
    setMatmulSplitK(2);
    try {
      const lg = mg.forward(al.tensor(ids, [1, 24], 'i32', { backend: gpu }));
      const e = nmse(await lg.data(), lr);
      console.log(`tiny GPT-2, products split in 2: logits NMSE ${e.toExponential(1)}`);
      expect(e).toBeLessThan(1e-10);
      lg.dispose();
    } finally {
      setMatmulSplitK(DEFAULT_SPLITK);
    }
  }, 300_000);

  it('a llama with a kvquant-4 cache: logits and greedy tokens as on wasm', async () => {
    const wasm = await initBackend('wasm');
    const m = kvTestModels(gpu, wasm);
    const spec = kvquant4Calibrated(m.mw);
    const { vsWasm, vsHookPath } = await kvLogitErrors(m, spec);
    console.log(`kvquant-4 on 8 storage buffers: webgpu vs wasm logits, max relative error ${vsWasm.toExponential(2)}; vs the pattern-hook path ${vsHookPath.toExponential(2)}`);
    expect(vsWasm).toBeLessThan(2e-3);
    expect(vsHookPath).toBeLessThan(1e-4);
    const g = await kvGreedy(m, spec);
    expect(g.gpu).toEqual(g.wasm);
    expect(g.leaked).toBe(0);
  }, 300_000);
});
