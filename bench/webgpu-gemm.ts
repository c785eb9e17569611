// GEMM on the WebGPU backend beside PyTorch CUDA in the same run (bench/gpu_torch.py, when a
// python3 with torch and a CUDA GPU is there): f32 (PyTorch with TF32 off) and f16 (tensor
// cores on both sides when the adapter offers subgroup matrices). Time per product = wall time of
// many queued products (about 8 TFLOP per round) / count, after a flush; median of 5 rounds. Also checks each result against the f32 tiled
// kernel on a few sampled entries. Prints a table; `--json` one JSON object a line.
// Usage: npm run bench:gemm -- --backend webgpu [--json] [--quick] [--no-peers]
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { View } from '../src/tensor/backend.js';
import { createWebGpuBackend, WebGpuBackend } from '../src/backends/webgpu/backend.js';
import { enableSubgroupMatmul } from '../src/backends/webgpu/kernels/matmul-f16.js';
import { f16BitsToF32 } from '../src/tensor/dtype.js';
import { f32ToF16Bits } from '../src/tensor/dtype.js';

const SHAPES: [number, number, number][] = [[4096, 4096, 4096], [2048, 768, 3072], [512, 768, 3072], [1, 4096, 4096], [1, 768, 3072]];
const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

interface Row { bench: 'gemm'; impl: string; dtype: string; shape: number[]; tflops: number; ms: number; note?: string }

function randBytes(n: number, dtype: 'f32' | 'f16'): Uint8Array {
  if (dtype === 'f32') {
    const a = new Float32Array(n);
    for (let i = 0; i < n; i++) a[i] = Math.random() - 0.5;
    return new Uint8Array(a.buffer);
  }
  const h = new Uint16Array(n);
  for (let i = 0; i < n; i++) h[i] = f32ToF16Bits(Math.random() - 0.5);
  return new Uint8Array(h.buffer);
}

export async function main(args: string[]): Promise<void> {
  const json = args.includes('--json');
  const quick = args.includes('--quick');
  const be = (await createWebGpuBackend()) as WebGpuBackend;
  if (!(be instanceof WebGpuBackend)) throw new Error('webgpu backend unavailable');
  const rows: Row[] = [];
  const emit = (r: Row) => { rows.push(r); if (json) console.log(JSON.stringify(r)); };
  if (!json) console.log(`GEMM on webgpu: ${JSON.stringify(be.info())}`);
  const shapes = args.includes('--smoke') ? [[200, 96, 136], [1, 64, 96]] as [number, number, number][] : SHAPES;
  for (const dtype of ['f32', 'f16'] as const) {
    for (const [M, K, N] of shapes) {
      const es = dtype === 'f32' ? 4 : 2;
      const A = be.alloc(M * K * es);
      const B = be.alloc(K * N * es);
      const Y = be.alloc(M * N * es);
      be.write(A, 0, randBytes(M * K, dtype));
      be.write(B, 0, randBytes(K * N, dtype));
      const v = (buffer: typeof A, shape: number[]): View => ({ buffer, dtype, shape, strides: [shape[1]!, 1], offset: 0 });
      const ins = [v(A, [M, K]), v(B, [K, N])];
      const outs = [v(Y, [M, N])];
      const run = () => be.exec({ op: 'matmul', transA: false, transB: false }, ins, outs);
      const flops = 2 * M * N * K;
      const variants = dtype === 'f16' && be.handle.features.subgroupMatrix && M % 128 === 0 && N % 128 === 0 ? [false, true] : [false];
      let baseline: Uint8Array | null = null;
      for (const sgmat of variants) {
        enableSubgroupMatmul(sgmat);
        try {
          run();
          await be.flush();
          // rounds of about 8 TFLOP (at least 20 products): short rounds measure the flush, not the kernel
          const reps = Math.max(20, Math.min(quick ? 200 : 2000, Math.floor(8e12 / flops)));
          const times: number[] = [];
          for (let r = 0; r < (quick ? 3 : 5); r++) {
            const t0 = performance.now();
            for (let i = 0; i < reps; i++) run();
            await be.flush();
            times.push((performance.now() - t0) / reps);
          }
          times.sort((a, b) => a - b);
          const ms = times[Math.floor(times.length / 2)]!;
          const out = await be.read(Y, 0, M * N * es);
          let note = sgmat ? 'subgroup-matrix' : M <= 8 ? 'gemv' : 'tiled';
          if (!baseline) baseline = out;
          else {
            // max |difference| / max |value| against the tiled kernel's result
            const h = (u: Uint8Array) => new Uint16Array(u.buffer, u.byteOffset, u.byteLength / 2);
            const [x, y] = [h(baseline), h(out)];
            let md = 0; let mv = 1e-30;
            for (let i = 0; i < x.length; i++) { const a = f16BitsToF32(x[i]!); md = Math.max(md, Math.abs(a - f16BitsToF32(y[i]!))); mv = Math.max(mv, Math.abs(a)); }
            note += ` (vs tiled: ${(md / mv).toExponential(1)})`;
          }
          emit({ bench: 'gemm', impl: sgmat ? 'actlab-webgpu sgmat' : 'actlab-webgpu', dtype, shape: [M, K, N], tflops: flops / (ms / 1e3) / 1e12, ms, note });
        } catch (e) {
          console.error(`${dtype} ${M}x${K}x${N}${sgmat ? ' subgroup-matrix' : ''} failed: ${(e as Error).message.split('\n')[0]}`);
        }
      }
      enableSubgroupMatmul(false);
      for (const b of [A, B, Y]) be.free(b);
    }
  }
  be.dispose();
  if (!args.includes('--no-peers')) {
    const py = spawnSync('python3', [join(root, 'bench', 'gpu_torch.py'), 'gemm', ...(quick ? ['--quick'] : [])], { encoding: 'utf8', maxBuffer: 1 << 24 });
    if (py.status === 0) {
      for (const line of py.stdout.trim().split('\n')) { const r = JSON.parse(line); emit({ ...r, impl: r.impl }); }
    } else {
      console.error(`PyTorch peer skipped: ${(py.stderr || py.error?.message || '').trim().split('\n').pop()}`);
    }
  }
  if (json) return;
  console.log('\n| dtype | M, K, N | actlab-webgpu TFLOP/s | path | PyTorch TFLOP/s | ratio |');
  console.log('|---|---|---:|---|---:|---:|');
  for (const dtype of ['f32', 'f16']) {
    for (const s of shapes) {
      const mine = rows.filter((r) => r.impl.startsWith('actlab-webgpu') && r.dtype === dtype && r.shape.join() === s.join());
      const me = mine.sort((a, b) => b.tflops - a.tflops)[0];
      const pt = rows.find((r) => r.impl.startsWith('pytorch') && r.dtype === dtype && r.shape.join() === s.join());
      const f = (x?: number) => (x === undefined ? '-' : x < 1 ? x.toFixed(3) : x.toFixed(1));
      console.log(`| ${dtype} | ${s.join(', ')} | ${f(me?.tflops)} | ${mine.map((r) => `${r.note}: ${f(r.tflops)}`).join('; ')} | ${f(pt?.tflops)} | ${me && pt ? (me.tflops / pt.tflops).toFixed(2) + '×' : '-'} |`);
    }
  }
  const pt = rows.find((r) => r.impl.startsWith('pytorch'));
  console.log(`(median over rounds of queued products; PyTorch ${pt ? pt.impl.replace('pytorch ', '') + ', TF32 off for f32' : 'not run'})`);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  main(process.argv.slice(2)).then(() => process.exit(0), (e) => { console.error(e); process.exit(1); });
}
