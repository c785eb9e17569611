// Prefill attention kernels on WebGPU side by side: the register-blocked kernel (attention-flash2.ts,
// "v2") in its variants against the older tiled kernel (attention-flash.ts, "v1"), causal f32
// self-attention [1, H, T, 64] at GPT-2 shapes. Per variant: GPU time per call from timestamps
// around each dispatch (median of 5 batches of 20 calls; the merge of key runs included), wall
// time (best of 5 rounds of 40), TFLOP/s of the causal half, and the max abs difference of its
// output to v1's (token-major outputs compared after permuting). Prints a table.
// Usage: node dist/bench/webgpu-attn.js [H:T,...]   (default 16:512,12:128,12:512,16:2048)
// ACTLAB_DAWN_TOGGLES=-timestamp_quantization gives timestamps at full resolution.
import { createWebGpuBackend, type WebGpuBackend } from '../src/backends/webgpu/backend.js';
import { FLASH2_TUNING } from '../src/backends/webgpu/kernels/attention-flash2.js';
import { setFlashVersion } from '../src/backends/webgpu/kernels/attention.js';
import { setFlashKeySplit } from '../src/backends/webgpu/kernels/attention-flash.js';

interface Variant { name: string; set: () => void; tokenMajor?: boolean }
const reset = () => { setFlashVersion(2); setFlashKeySplit(4); Object.assign(FLASH2_TUNING, { reduce: 'auto', BK: 0, runTiles: 4 }); };
const VARIANTS: Variant[] = [
  { name: 'v1 (split 4)', set: () => setFlashVersion(1) },
  { name: 'v1 no split', set: () => { setFlashVersion(1); setFlashKeySplit(0); } },
  { name: 'v2 default', set: () => {} },
  { name: 'v2 token-major', set: () => {}, tokenMajor: true },
  { name: 'v2 no split', set: () => { FLASH2_TUNING.runTiles = 0; } },
  { name: 'v2 split 2', set: () => { FLASH2_TUNING.runTiles = 2; } },
  { name: 'v2 split 1', set: () => { FLASH2_TUNING.runTiles = 1; } },
  { name: 'v2 bk32', set: () => { FLASH2_TUNING.BK = 32; } },
  { name: 'v2 wg-reduce', set: () => { FLASH2_TUNING.reduce = 'wg'; } },
  { name: 'v2 wg-reduce no split', set: () => { FLASH2_TUNING.reduce = 'wg'; FLASH2_TUNING.runTiles = 0; } },
];

const shapes = (process.argv[2] ?? '16:512,12:128,12:512,16:2048').split(',').map((s) => s.split(':').map(Number) as [number, number]);

async function main(): Promise<void> {
  await import('../src/backends/index.js');
  const { initBackend } = await import('../src/tensor/engine.js');
  const { Tensor } = await import('../src/tensor/tensor.js');
  const F = await import('../src/ops/index.js');
  void createWebGpuBackend;
  const be = (await initBackend('webgpu')) as WebGpuBackend;
  const f = be.handle.features;
  console.log(`adapter: ${JSON.stringify(be.info())}; subgroups ${f.subgroups} (smallest ${f.subgroupMinSize}); workgroup memory ${be.rt.device.limits.maxComputeWorkgroupStorageSize} B; timestamps ${f.timestamps}`);
  const rows: string[] = [];
  for (const [H, T] of shapes) {
    const n = H * T * 64;
    const mk = (s: number) => Tensor.from(Array.from({ length: n }, (_, i) => Math.sin(i * s) * 2), [1, H, T, 64], 'f32', be);
    const [q, k, v] = [mk(0.37), mk(0.11), mk(0.07)];
    const flops = (4 * H * T * T * 64) / 2;
    let ref: Float32Array | null = null;
    for (const vr of VARIANTS) {
      reset();
      vr.set();
      const call = () => F.attention(q, k, v, { causal: true, tokenMajor: vr.tokenMajor }).out;
      try {
        const y0 = call();
        const y = vr.tokenMajor ? y0.permute([0, 2, 1, 3]).contiguous() : y0;
        const yv = (await y.data()) as Float32Array;
        if (y !== y0) y.dispose();
        y0.dispose();
        ref ??= yv;
        let err = 0;
        for (let i = 0; i < n; i++) err = Math.max(err, Math.abs(yv[i]! - ref[i]!));
        if (Number.isNaN(yv.reduce((s, x) => s + x, 0))) err = NaN;
        const ts: number[] = [];
        for (let r = 0; r < 5; r++) {
          const t0 = performance.now();
          for (let i = 0; i < 40; i++) call().dispose();
          await be.flush();
          ts.push((performance.now() - t0) / 40);
        }
        const wall = Math.min(...ts);
        let gpu = NaN;
        let kernels = '';
        if (f.timestamps) {
          const per: number[] = [];
          for (let r = 0; r < 5; r++) {
            be.rt.startTiming();
            for (let i = 0; i < 20; i++) call().dispose();
            const d = await be.rt.stopTiming();
            per.push(d.reduce((s, x) => s + x.ms, 0) / 20);
            if (r === 0) kernels = [...new Set(d.map((x) => x.name))].join(' + ');
          }
          gpu = per.sort((a, b) => a - b)[2]!;
        }
        const ms = Number.isNaN(gpu) ? wall : gpu;
        rows.push(`| [1,${H},${T},64] | ${vr.name} | ${(gpu * 1e3).toFixed(1)} | ${(wall * 1e3).toFixed(1)} | ${(flops / ms / 1e9).toFixed(2)} | ${err.toExponential(1)} | ${kernels} |`);
      } catch (e) {
        rows.push(`| [1,${H},${T},64] | ${vr.name} | ERR ${(e as Error).message.split('\n')[0]} | | | | |`);
      }
      console.log(rows[rows.length - 1]);
    }
    for (const x of [q, k, v]) x.dispose();
  }
  reset();
  console.log('\n| shape (causal) | kernel | GPU us/call | wall us/call | TFLOP/s | max abs diff to v1 | dispatches |');
  console.log('|---|---|---|---|---|---|---|');
  for (const r of rows) console.log(r);
}

await main();
process.exit(0);
