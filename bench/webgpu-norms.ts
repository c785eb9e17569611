// The row-norm kernels of a transformer forward on WebGPU, timed alone on the GPU (timestamps
// around each dispatch): layer norm, RMS norm and the residual add + layer norm (addNorm) with
// row sums through subgroups (norm-subgroup.ts) beside the workgroup-memory tree kernels they
// replace, in the same run, interleaved; then the sum of a split linear layer's k-ranges with
// bias (GPT-2-medium's MLP down-projection at T=512: 512x4096x1024 in 4 ranges) and the attention
// output's head transpose (a copy), four elements a thread beside one. Each row: GPU µs per call
// (median over --reps of the mean of --calls calls), the bytes the call must move over that time,
// and the largest absolute difference of the new kernel's output from the old one's and from the
// js reference. Last, the subgroup kernel's layouts side by side (lanes a row 256 .. 32, threads
// a workgroup), to choose NORM_SG_TUNING.
// Usage: ACTLAB_DAWN_TOGGLES=-timestamp_quantization node dist/bench/webgpu-norms.js [--reps 15] [--calls 20] [--shapes 512x1024,128x768]
// (the toggle: timestamps at full resolution, else rounded to tens of µs)
import '../src/backends/index.js';
import { tensor } from '../src/ops/creation.js';
import { fusedLinear } from '../src/ops/linalg.js';
import { addNorm, layerNorm, rmsNorm } from '../src/ops/nn.js';
import { disposeBackends, initBackend } from '../src/tensor/engine.js';
import type { Backend } from '../src/tensor/backend.js';
import type { Tensor } from '../src/tensor/tensor.js';
import type { WebGpuBackend } from '../src/backends/webgpu/backend.js';
import { NORM_SG_TUNING, setNormSubgroups } from '../src/backends/webgpu/kernels/norm-subgroup.js';
import { setSplitSumVec4 } from '../src/backends/webgpu/kernels/matmul-gemv.js';
import { setCopyVec4 } from '../src/backends/webgpu/kernels/elementwise.js';
import { DEFAULT_SPLITK, setMatmulSplitK } from '../src/backends/webgpu/kernels/matmul.js';

const args = process.argv.slice(2);
const opt = (n: string, d: number) => { const i = args.indexOf(`--${n}`); return i >= 0 ? Number(args[i + 1]) : d; };
const reps = opt('reps', 15);
const calls = opt('calls', 20);

const gpu = (await initBackend('webgpu')) as WebGpuBackend;
const js = await initBackend('js');

/** Deterministic values in [-2, 2) (a hash, so every shape gets its own). */
const values = (n: number, seed: number) => Float32Array.from({ length: n }, (_, i) => ((((i + seed * 7919) * 2654435761) >>> 0) / 2 ** 32) * 4 - 2);

/** GPU µs of one call of `f` for each variant: per rep, `calls` calls of each in turn; medians of the reps' means. */
async function timeAB(variants: (() => void)[], f: () => Tensor[], only?: RegExp): Promise<number[]> {
  const per: number[][] = variants.map(() => []);
  for (const v of variants) { v(); for (const t of f()) t.dispose(); } // compile and warm
  for (let r = 0; r < reps; r++) {
    for (let k = 0; k < variants.length; k++) {
      variants[k]!();
      gpu.rt.startTiming();
      for (let c = 0; c < calls; c++) for (const t of f()) t.dispose();
      const t = await gpu.rt.stopTiming();
      per[k]!.push(t.filter((d) => !only || only.test(d.name)).reduce((s, d) => s + d.ms, 0) * 1e3 / calls);
    }
  }
  return per.map((u) => { u.sort((a, b) => a - b); return u[Math.floor(u.length / 2)]!; });
}

/** Largest |a - b| over all elements of two lists of tensors. */
async function maxDiff(a: Tensor[], b: Tensor[]): Promise<number> {
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    const x = await a[i]!.data();
    const y = await b[i]!.data();
    for (let j = 0; j < x.length; j++) m = Math.max(m, Math.abs(x[j]! - y[j]!));
  }
  return m;
}

type NormCase = { name: string; bytes: (r: number, d: number) => number; run: (be: Backend, t: Record<string, Tensor>) => Tensor[] };
const cases: NormCase[] = [
  { name: 'layerNorm w+b', bytes: (r, d) => 8 * r * d, run: (_, t) => [layerNorm(t.x!, t.w, t.b)] },
  { name: 'rmsNorm w', bytes: (r, d) => 8 * r * d, run: (_, t) => [rmsNorm(t.x!, t.w, { eps: 1e-5 })] },
  { name: 'addNorm layer w+b', bytes: (r, d) => 16 * r * d, run: (_, t) => { const o = addNorm(t.x!, t.r!, { kind: 'layer', weight: t.w, bias: t.b, force: true }); return [o.sum, o.y]; } },
];
const shapeArg = args.includes('--shapes') ? args[args.indexOf('--shapes') + 1]! : '512x1024,128x768,2048x1024,512x4096';
const shapes = shapeArg.split(',').map((v) => v.split('x').map(Number) as [number, number]);

const info = gpu.rt.handle.adapterInfo;
console.log(`WebGPU row norms, ${info.description || info.device || info.vendor}: GPU µs per call, median of ${reps} reps of ${calls} calls, old and new interleaved`);
if (!gpu.rt.handle.features.subgroups) console.log('(this adapter has no subgroups: both columns run the tree kernel)');
console.log('| op | shape | tree µs | subgroup µs | speed-up | GB/s (subgroup) | max |new - tree| | max |new - js| |');
console.log('|---|---|---:|---:|---:|---:|---:|---:|');
for (const [rows, d] of shapes) {
  const mk = (be: Backend) => ({
    x: tensor(values(rows * d, 1), [rows, d], 'f32', { backend: be }),
    r: tensor(values(rows * d, 2), [rows, d], 'f32', { backend: be }),
    w: tensor(values(d, 3), [d], 'f32', { backend: be }),
    b: tensor(values(d, 4), [d], 'f32', { backend: be }),
  });
  const tg = mk(gpu);
  const tj = mk(js);
  for (const c of cases) {
    const [old, neu] = await timeAB([() => setNormSubgroups(false), () => setNormSubgroups(true)], () => c.run(gpu, tg));
    setNormSubgroups(false);
    const yo = c.run(gpu, tg);
    setNormSubgroups(true);
    const yn = c.run(gpu, tg);
    const yr = c.run(js, tj);
    const dOld = await maxDiff(yn, yo);
    const dRef = await maxDiff(yn, yr);
    for (const t of [...yo, ...yn, ...yr]) t.dispose();
    console.log(`| ${c.name} | [${rows},${d}] | ${old!.toFixed(2)} | ${neu!.toFixed(2)} | ${(old! / neu!).toFixed(2)}x | ${(c.bytes(rows, d) / neu! / 1e3).toFixed(0)} | ${dOld.toExponential(1)} | ${dRef.toExponential(1)} |`);
  }
  for (const t of [...Object.values(tg), ...Object.values(tj)]) t.dispose();
}

// the down-projection: 4 k-ranges ('few'), then their sum with the bias (timed alone: the `sum` dispatches)
{
  const [M, K, N] = [512, 4096, 1024];
  const mk = (be: Backend) => [
    tensor(values(M * K, 5), [M, K], 'f32', { backend: be }),
    tensor(values(K * N, 6).map((v) => v * 0.02), [K, N], 'f32', { backend: be }),
    tensor(values(N, 7), [N], 'f32', { backend: be }),
  ] as const;
  const [x, w, b] = mk(gpu);
  setMatmulSplitK('few');
  const run = () => [fusedLinear(x, w, b, { force: true })];
  const [one, four] = await timeAB([() => setSplitSumVec4(false), () => setSplitSumVec4(true)], run, /gemv sum/);
  setSplitSumVec4(false);
  const yo = run();
  setSplitSumVec4(true);
  const yn = run();
  const d = await maxDiff(yn, yo);
  for (const t of [...yo, ...yn, x, w, b]) t.dispose();
  setMatmulSplitK(DEFAULT_SPLITK);
  const bytes = 4 * M * N * 4 + M * N * 4;
  console.log(`| k-range sum + bias (${M}x${K}x${N}, 4 ranges) | [${M},${N}] | ${one!.toFixed(2)} (one a thread) | ${four!.toFixed(2)} (four a thread) | ${(one! / four!).toFixed(2)}x | ${(bytes / four! / 1e3).toFixed(0)} | ${d.toExponential(1)} | |`);
}
// the attention output's head transpose (GPT-2-medium at T=512): [1,16,512,64] -> [1,512,16,64]
{
  const z = tensor(values(16 * 512 * 64, 8), [1, 16, 512, 64], 'f32', { backend: gpu });
  const run = () => [z.permute([0, 2, 1, 3]).contiguous()];
  const [one, four] = await timeAB([() => setCopyVec4(false), () => setCopyVec4(true)], run);
  setCopyVec4(false);
  const yo = run();
  setCopyVec4(true);
  const yn = run();
  const d = await maxDiff(yn, yo);
  for (const t of [...yo, ...yn, z]) t.dispose();
  console.log(`| head transpose copy | [1,16,512,64] | ${one!.toFixed(2)} (one a thread) | ${four!.toFixed(2)} (four a thread) | ${(one! / four!).toFixed(2)}x | ${(2 * 16 * 512 * 64 * 4 / four! / 1e3).toFixed(0)} | ${d.toExponential(1)} | |`);
}
// the subgroup kernel's layout: lanes a row (32: one 32-wide subgroup a row, no workgroup memory)
if (gpu.rt.handle.features.subgroups) {
  // [lanes a row, threads a workgroup]
  const layouts: [number, number][] = [[256, 256], [128, 128], [128, 256], [64, 64], [64, 256], [32, 32], [32, 64], [32, 256]];
  const keep = { ...NORM_SG_TUNING };
  console.log(`\nSubgroup kernel by layout (lanes a row / threads a workgroup; at most 32 elements a lane in registers): GPU µs per call; max |y - tree| over the layouts`);
  console.log(`| op | shape | ${layouts.map(([l, w]) => `${l}/${w}`).join(' | ')} | max diff |`);
  console.log(`|---|---|${layouts.map(() => '---:|').join('')}---:|`);
  for (const [rows, d] of shapes) {
    const tg = {
      x: tensor(values(rows * d, 1), [rows, d], 'f32', { backend: gpu }),
      r: tensor(values(rows * d, 2), [rows, d], 'f32', { backend: gpu }),
      w: tensor(values(d, 3), [d], 'f32', { backend: gpu }),
      b: tensor(values(d, 4), [d], 'f32', { backend: gpu }),
    };
    for (const c of [cases[0]!, cases[2]!]) {
      const layout = ([lanes, wg]: [number, number]) => () => { setNormSubgroups(true); Object.assign(NORM_SG_TUNING, { lanes, wg, regMax: 32 }); };
      const us = await timeAB(layouts.map(layout), () => c.run(gpu, tg));
      setNormSubgroups(false);
      const yo = c.run(gpu, tg);
      let diff = 0;
      for (const l of layouts) {
        layout(l)();
        const y = c.run(gpu, tg);
        diff = Math.max(diff, await maxDiff(y, yo));
        for (const t of y) t.dispose();
      }
      for (const t of yo) t.dispose();
      console.log(`| ${c.name} | [${rows},${d}] | ${us.map((u) => u.toFixed(2)).join(' | ')} | ${diff.toExponential(1)} |`);
    }
    for (const t of Object.values(tg)) t.dispose();
  }
  Object.assign(NORM_SG_TUNING, keep);
  setNormSubgroups(true);
}

disposeBackends();
