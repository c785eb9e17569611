// Prefill attention kernels on WebGPU side by side: the register-blocked kernel (attention-flash2.ts,
// "v2") in its tuning variants (query rows and threads a workgroup, keys a tile, register prefetch
// of the next K/V tile, query rows in registers, key runs) against the older tiled kernel (attention-flash.ts, "v1"), causal
// f32 self-attention [1, H, T, 64] at GPT-2 shapes, token-major output as the forward writes it.
// GPU time per call from timestamps around each dispatch, the merge of key runs included: REPS
// rounds, each calling every variant once (order rotated each round), every call followed by a
// linear [T, 1024] x [1024, 1024] as in a forward; the median over the rounds. Also the max abs
// difference of each output to v1's. Prints a table sorted by time per shape; the "tune" column is
// the value for ACTLAB_WEBGPU_FLASH2_TUNE that makes the variant the kernel's default.
// Usage: node dist/bench/webgpu-attn.js [H:T,...] [reps]   (default 16:512,12:512,16:2048 50)
// ACTLAB_DAWN_TOGGLES=-timestamp_quantization gives timestamps at full resolution.
import type { WebGpuBackend } from '../src/backends/webgpu/backend.js';
import { FLASH2_DEFAULTS, FLASH2_TUNING, parseFlash2Tuning } from '../src/backends/webgpu/kernels/attention-flash2.js';
import { setFlashVersion } from '../src/backends/webgpu/kernels/attention.js';
import { setFlashKeySplit } from '../src/backends/webgpu/kernels/attention-flash.js';

interface Variant { name: string; tune: string; set: () => void; tokenMajor: boolean }
const reset = () => { setFlashVersion(2); setFlashKeySplit(4); Object.assign(FLASH2_TUNING, FLASH2_DEFAULTS); };
const v2 = (tune: string, name = tune, tokenMajor = true): Variant => ({ name, tune, tokenMajor, set: () => Object.assign(FLASH2_TUNING, parseFlash2Tuning(tune, 'bench')) });
const VARIANTS: Variant[] = [
  { name: 'v1 (split 4)', tune: '', set: () => setFlashVersion(1), tokenMajor: false },
  v2('', 'v2 default head-major', false),
  v2('', 'v2 default'),
  v2('reduce=wg', 'v2 wg-reduce'),
];
// query rows x threads (rows a thread = 8 * bq / nt), keys a tile, prefetch, key runs (1: none)
for (const [bq, nt] of [[64, 128], [32, 64], [32, 128], [16, 32], [16, 64]] as const) {
  for (const bk of [64, 32]) for (const pf of [1, 0]) for (const runs of [1, 2, 4]) VARIANTS.push(v2(`bq=${bq},nt=${nt},bk=${bk},prefetch=${pf},runs=${runs}`));
}
// each thread's query rows in registers (1 or 2 rows a thread)
for (const [bq, nt] of [[32, 128], [16, 64]] as const) {
  for (const bk of [64, 32]) for (const pf of [1, 0]) for (const runs of [1, 2, 4]) VARIANTS.push(v2(`bq=${bq},nt=${nt},bk=${bk},prefetch=${pf},qreg=1,runs=${runs}`));
}

const shapes = (process.argv[2] || '16:512,12:512,16:2048').split(',').map((s) => s.split(':').map(Number) as [number, number]);
const REPS = Number(process.argv[3] ?? 50);
const median = (xs: number[]) => { const s = [...xs].sort((a, b) => a - b); const m = s.length >> 1; return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2; };

async function main(): Promise<void> {
  await import('../src/backends/index.js');
  const { initBackend } = await import('../src/tensor/engine.js');
  const { Tensor } = await import('../src/tensor/tensor.js');
  const F = await import('../src/ops/index.js');
  const be = (await initBackend('webgpu')) as WebGpuBackend;
  const f = be.handle.features;
  console.log(`adapter: ${JSON.stringify(be.info())}; subgroups ${f.subgroups} (smallest ${f.subgroupMinSize}); workgroup memory ${be.rt.device.limits.maxComputeWorkgroupStorageSize} B; timestamps ${f.timestamps}; ${REPS} rounds`);
  if (!f.timestamps) throw new Error('webgpu-attn: the device offers no timestamp-query: no GPU times');
  const tables: string[] = [];
  for (const [H, T] of shapes) {
    const n = H * T * 64;
    const mk = (s: number) => Tensor.from(Array.from({ length: n }, (_, i) => Math.sin(i * s) * 2), [1, H, T, 64], 'f32', be);
    const [q, k, v] = [mk(0.37), mk(0.11), mk(0.07)];
    // the forward's neighbour: a linear of the same tokens
    const x = Tensor.from(Array.from({ length: T * 1024 }, (_, i) => Math.sin(i * 0.013)), [T, 1024], 'f32', be);
    const w = Tensor.from(Array.from({ length: 1024 * 1024 }, (_, i) => Math.cos(i * 0.017) * 0.03), [1024, 1024], 'f32', be);
    const sep = () => F.matmul(x, w).dispose();
    const flops = (4 * H * T * T * 64) / 2;
    const call = (vr: Variant) => { reset(); vr.set(); const y = F.attention(q, k, v, { causal: true, tokenMajor: vr.tokenMajor }).out; reset(); return y; };
    // correctness and each variant's dispatches (count and names), one call each
    let ref: Float32Array | null = null;
    const live: { vr: Variant; err: number; count: number; kernels: string; gpu: number[]; main: number[]; merge: number[] }[] = [];
    const failed: string[] = [];
    for (const vr of VARIANTS) {
      try {
        be.rt.startTiming();
        const y0 = call(vr);
        const d = await be.rt.stopTiming();
        const y = vr.tokenMajor ? y0.permute([0, 2, 1, 3]).contiguous() : y0;
        const yv = (await y.data()) as Float32Array;
        if (y !== y0) y.dispose();
        y0.dispose();
        ref ??= yv;
        let err = 0;
        for (let i = 0; i < n; i++) err = Math.max(err, Math.abs(yv[i]! - ref[i]!));
        if (Number.isNaN(yv.reduce((s, z) => s + z, 0))) err = NaN;
        if (vr.name !== 'v1 (split 4)' && !d[0]?.name.startsWith('flash2 ')) { // the tile does not fit this adapter: v1 served
          failed.push(`| [1,${H},${T},64] | ${vr.name} | no fit (${d[0]?.name} served) | | | | | | |`);
          continue;
        }
        live.push({ vr, err, count: d.length, kernels: d.map((z) => z.name).join(' + '), gpu: [], main: [], merge: [] });
      } catch (e) {
        reset();
        failed.push(`| [1,${H},${T},64] | ${vr.name} | ERR ${(e as Error).message.split('\n')[0]} | | | | | | |`);
      }
    }
    be.rt.startTiming();
    sep();
    const sepCount = (await be.rt.stopTiming()).length; // the linear's dispatches
    for (let r = 0; r < REPS; r++) {
      be.rt.startTiming();
      const order = live.map((_, i) => live[(i + r) % live.length]!);
      for (const e of order) { call(e.vr).dispose(); sep(); }
      const d = await be.rt.stopTiming();
      let at = 0;
      for (const e of order) {
        const mine = d.slice(at, at + e.count);
        at += e.count;
        at += sepCount;
        e.gpu.push(mine.reduce((s, z) => s + z.ms, 0));
        e.main.push(mine[0]?.ms ?? NaN);
        e.merge.push(mine.slice(1).reduce((s, z) => s + z.ms, 0));
      }
      if (at !== d.length) throw new Error(`webgpu-attn: ${d.length} timed dispatches in round ${r}, ${at} accounted for`);
    }
    const rows = live.map((e) => ({ e, us: median(e.gpu) * 1e3 })).sort((a, b) => a.us - b.us);
    const tbl = rows.map(({ e, us }) => `| [1,${H},${T},64] | ${e.vr.name} | ${us.toFixed(1)} | ${(median(e.main) * 1e3).toFixed(1)} | ${(median(e.merge) * 1e3).toFixed(1)} | ${(flops / us / 1e6).toFixed(2)} | ${e.err.toExponential(1)} | ${e.vr.tune ? `\`${e.vr.tune}\`` : ''} | ${e.kernels} |`);
    for (const row of [...tbl, ...failed]) { console.log(row); tables.push(row); }
    for (const z of [q, k, v, x, w]) z.dispose();
  }
  reset();
  console.log('\n| shape (causal) | kernel | GPU us/call (median) | kernel us | merge us | TFLOP/s | max abs diff to v1 | tune | dispatches |');
  console.log('|---|---|---|---|---|---|---|---|---|');
  for (const r of tables) console.log(r);
}

await main();
process.exit(0);
