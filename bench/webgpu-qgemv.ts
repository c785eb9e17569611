// Quantized GEMV (decode: x [1, K] · Wᵀ, W kept in GGML blocks) on the WebGPU backend: the
// weight bytes streamed per second, beside the HBM bandwidth PyTorch's device-to-device copy
// reaches on the same GPU in the same run (bench/hbm_copy_torch.py; also PyTorch's f16 GEMV on
// the same shape) and actlab's own f32 GEMV. Two weights of each type are used in turn so that
// no product finds its weight in the L2 cache; each timing is a median of 5 rounds of `reps`
// products queued back to back (the host's queueing time is printed beside: when it nears the
// total, the host, not the GPU, sets the pace).
// Kernel variants of the types with an 8-bit-activation GEMV (q4_0, q4_k, q8_0) are compared in the
// same run with --variants: `f32` (x as it is, one conversion and multiply-add per weight) or
// `a8` with options `:tN` lanes per row, `:rN` rows per lane, `:nov4` (no 16-byte loads),
// `:nosg` (lane sums without subgroups), e.g. --variants f32,a8,a8:r1,a8:r4,a8:t16.
// Usage: npm run build && node dist/bench/webgpu-qgemv.js [--json] [--no-peers] [--n 65536] [--k 16384] [--types q4_0,q4_k,q8_0,q6_k] [--variants f32,a8]
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import '../src/backends/index.js';
import { createWebGpuBackend, WebGpuBackend } from '../src/backends/webgpu/backend.js';
import { qmatmul } from '../src/ops/quant.js';
import { matmul } from '../src/ops/linalg.js';
import { f32ToF16Bits } from '../src/tensor/dtype.js';
import { QUANT_BLOCK, QuantizedTensor } from '../src/tensor/quantized.js';
import { Tensor } from '../src/tensor/tensor.js';
import { A8_GEMV_TYPES, QGEMV_TUNING } from '../src/backends/webgpu/kernels/quant-gemv.js';
import type { Backend, QuantType } from '../src/tensor/backend.js';

const args = process.argv.slice(2);
const flag = (n: string) => args.includes(`--${n}`);
const opt = (n: string, d: string) => { const i = args.indexOf(`--${n}`); return i >= 0 ? args[i + 1]! : d; };
const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

interface Row { impl: string; what: string; bytes: number; ms: number; gbs: number; hostMs?: number }

/** A [rows * rowBytes] u8 (or f32) tensor on `be` filled by repeating `pattern` (written in 64 MiB pieces). */
function filled(be: Backend, rows: number, rowBytes: number, pattern: Uint8Array, dtype: 'u8' | 'f32' = 'u8'): Tensor {
  const t = Tensor.empty([(rows * rowBytes) / (dtype === 'f32' ? 4 : 1)], dtype, be);
  const rowsPer = Math.max(1, Math.floor((64 << 20) / rowBytes));
  const chunk = new Uint8Array(rowsPer * rowBytes);
  for (let o = 0; o < chunk.length; o += pattern.length) chunk.set(pattern.subarray(0, Math.min(pattern.length, chunk.length - o)), o);
  const v = t.view();
  for (let r = 0; r < rows; r += rowsPer) {
    const n = Math.min(rowsPer, rows - r) * rowBytes;
    be.write(v.buffer, r * rowBytes, n === chunk.length ? chunk : chunk.subarray(0, n));
  }
  return t;
}

/** Random blocks with finite f16 scales (where each format keeps them) for 64 rows. */
function blockPattern(type: QuantType, rowBytes: number): Uint8Array {
  const { bytes } = QUANT_BLOCK[type];
  const scaleAt: Partial<Record<QuantType, number[]>> = { q8_0: [0], q4_0: [0], q4_k: [0, 2], q6_k: [208], q4_1: [0, 2], q5_0: [0], q5_1: [0, 2], q5_k: [0, 2], iq4_nl: [0] };
  const p = new Uint8Array(64 * rowBytes);
  let s = 12345;
  for (let i = 0; i < p.length; i++) p[i] = (s = (s * 1103515245 + 12345) >>> 0) >>> 24;
  const h = f32ToF16Bits(0.01);
  for (let b = 0; b < p.length / bytes; b++) for (const o of scaleAt[type] ?? []) { p[b * bytes + o] = h & 0xff; p[b * bytes + o + 1] = h >> 8; }
  return p;
}

async function timeReps(be: Backend, step: (i: number) => Tensor, reps: number): Promise<{ ms: number; hostMs: number }> {
  for (let i = 0; i < 4; i++) step(i).dispose();
  await be.flush();
  const total: number[] = [];
  const host: number[] = [];
  for (let round = 0; round < 5; round++) {
    const t0 = performance.now();
    for (let i = 0; i < reps; i++) step(i).dispose();
    const t1 = performance.now();
    await be.flush();
    const t2 = performance.now();
    total.push((t2 - t0) / reps);
    host.push((t1 - t0) / reps);
  }
  const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[2]!;
  return { ms: med(total), hostMs: med(host) };
}

/** Sets QGEMV_TUNING from a variant name (see the header); returns its label. */
function applyVariant(v: string): string {
  const [path, ...opts] = v.split(':');
  const t = { path: path === 'f32' ? 'f32' as const : 'a8' as const, lanes: 32, rows: 2, vec4: true, subgroups: true };
  for (const o of opts) {
    if (/^t\d+$/.test(o)) t.lanes = Number(o.slice(1));
    else if (/^r\d+$/.test(o)) t.rows = Number(o.slice(1));
    else if (o === 'nov4') t.vec4 = false;
    else if (o === 'nosg') t.subgroups = false;
    else throw new Error(`unknown variant option '${o}' in '${v}'`);
  }
  Object.assign(QGEMV_TUNING, t);
  return t.path === 'f32' ? 'f32 x' : `a8 t${t.lanes} r${t.rows}${t.vec4 ? '' : ' nov4'}${t.subgroups ? '' : ' nosg'}`;
}

async function main(): Promise<void> {
  const json = flag('json');
  const N = Number(opt('n', '65536'));
  const K = Number(opt('k', '16384'));
  const types = opt('types', 'q4_0,q4_k,q8_0,q6_k').split(',') as QuantType[];
  const reps = Number(opt('reps', '40'));
  const variants = opt('variants', 'a8').split(',');
  const be = await createWebGpuBackend();
  if (!(be instanceof WebGpuBackend)) throw new Error('webgpu backend unavailable');
  const rows: Row[] = [];
  const emit = (r: Row) => { rows.push(r); if (json) console.log(JSON.stringify({ bench: 'qgemv', ...r })); };
  if (!json) console.log(`quantized GEMV on webgpu: ${JSON.stringify(be.info())}, W [${N}, ${K}], x [1, ${K}]`);
  const x = Tensor.from(Array.from({ length: K }, (_, i) => Math.sin(i * 0.1)), [1, K], 'f32', be);
  for (const type of types) {
    const { bytes, values } = QUANT_BLOCK[type];
    const rowBytes = (K / values) * bytes;
    const pat = blockPattern(type, rowBytes);
    const ws = [0, 1].map(() => new QuantizedTensor(filled(be, N, rowBytes, pat), type, [N, K]));
    for (const v of A8_GEMV_TYPES.has(type) ? variants : ['f32']) {
      const label = applyVariant(v);
      const t = await timeReps(be, (i) => qmatmul(x, ws[i & 1]!), reps);
      const b = N * rowBytes + K * 4 + N * 4;
      emit({ impl: 'actlab-webgpu', what: `${type} gemv (${label})`, bytes: b, ms: t.ms, gbs: b / t.ms / 1e6, hostMs: t.hostMs });
    }
    applyVariant('a8');
    for (const w of ws) w.dispose();
  }
  {
    // f32 weights of a quarter of the rows (the same bytes as q8_0 at about 4x fewer values)
    const Nf = N / 4;
    const ws = [0, 1].map(() => filled(be, Nf, K * 4, new Uint8Array(64 * K * 4).fill(0x3c), 'f32'));
    const wf = ws.map((w) => w.reshape([Nf, K]));
    const t = await timeReps(be, (i) => matmul(x, wf[i & 1]!, { transB: true }), reps);
    const b = Nf * K * 4 + K * 4 + Nf * 4;
    emit({ impl: 'actlab-webgpu', what: `f32 gemv [${Nf},${K}]`, bytes: b, ms: t.ms, gbs: b / t.ms / 1e6, hostMs: t.hostMs });
    for (const w of [...wf, ...ws]) w.dispose();
  }
  x.dispose();
  be.dispose();
  if (!flag('no-peers')) {
    const py = spawnSync('python3', [join(root, 'bench', 'hbm_copy_torch.py'), '--n', String(N), '--k', String(K)], { encoding: 'utf8' });
    if (py.status !== 0) console.error(`PyTorch peer failed: ${py.stderr.trim().split('\n').at(-1)}`);
    for (const line of py.stdout.split('\n').filter((l) => l.startsWith('{'))) {
      const r = JSON.parse(line) as Row & { device?: string };
      if (r.device && !json) console.log(`peer: PyTorch ${(r as { torch?: string }).torch} on ${r.device}`);
      emit({ impl: r.impl, what: r.what, bytes: r.bytes, ms: r.ms, gbs: r.gbs });
    }
  }
  if (json) return;
  const copy = rows.find((r) => r.what === 'copy_');
  console.log('\n| impl | product | bytes moved | ms | GB/s | of PyTorch copy_ | host ms |');
  console.log('|---|---|---:|---:|---:|---:|---:|');
  for (const r of rows) {
    const frac = copy ? `${((100 * r.gbs) / copy.gbs).toFixed(0)}%` : '—';
    console.log(`| ${r.impl} | ${r.what} | ${(r.bytes / 2 ** 20).toFixed(0)} MiB | ${r.ms.toFixed(3)} | ${r.gbs.toFixed(0)} | ${frac} | ${r.hostMs?.toFixed(3) ?? ''} |`);
  }
}

await main();
