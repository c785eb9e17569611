// Kernel variant sweeps on the WebGPU backend, for choosing the matmul tiles (not a benchmark
// against peers: bench/webgpu-gemm.ts is). `check` runs every variant on small odd shapes with
// all transposes against a float64 CPU product; `gemm` times the variants on the target shapes
// (queued products of about 8 TFLOP per round, best of 5) and checks sampled entries;
// `decode` times greedy decode of a GPT-2-medium-shaped model and splits host encoding from
// waiting; `prefill` sums GPU time per op of a prefill (ACTLAB_TUNE_PREFILL=small|medium:T, default
// medium:512) after timing its first forwards; `attn` times the attention kernels
// (row kernel, tiled variants) on GPT-2 prefill shapes, each checked against the row kernel.
// Prints one line per measurement (and writes them to <outdir>/tune.txt).
// `f32` / `f16` time only the f32 / f16 target shapes; `sgcheck` checks only the f16 tiles;
// `f32wg` checks and times the thread grids of F32WG; `f32big` times 8x8 against 8x16 per thread
// on aligned shapes of 256 to 1024 tiles; `f32pre` times the tiles on GPT-2 prefill projections;
// `f32few` times smaller tiles and K-splits on products of few output tiles (ACTLAB_TUNE_SHAPES=MxKxN,...);
// `f32med` times tiles x K-splits on GPT-2-medium's products at T=512 (ACTLAB_TUNE_SHAPES, a
// trailing t: B transposed; ACTLAB_TUNE_SPLITS=1,2,4 the K-splits of the others;
// ACTLAB_TUNE_TILES a JSON list of more tiles, ACTLAB_TUNE_ONLY_EXTRA=1 only those and the default); `base` times only the default kernels. Where the adapter has
// timestamp queries, `prefill` also gives the GPU time of whole forwards per kernel, and the GEMM
// and attention timings the GPU time beside the wall time (ACTLAB_DAWN_TOGGLES=-timestamp_quantization
// for full resolution).
// Usage: node dist/bench/webgpu-tune.js check,gemm,f32,f16,f32wg,f32big,f32pre,f32few,f32med,base,prefill,decode,attn [outdir]
import { writeFileSync } from 'node:fs';
import type { View } from '../src/tensor/backend.js';
import { createWebGpuBackend, WebGpuBackend } from '../src/backends/webgpu/backend.js';
import { enableF32Vec4, setF32Tile, type F32Tile } from '../src/backends/webgpu/kernels/matmul-f32.js';
import { enableSubgroupMatmul, setSubgroupTile, type SgTile } from '../src/backends/webgpu/kernels/matmul-f16.js';
import { DEFAULT_SPLITK, setMatmulSplitK } from '../src/backends/webgpu/kernels/matmul.js';
import { enableFlashAttention, setFlashKeySplit, setFlashTile, type FlashTile } from '../src/backends/webgpu/kernels/attention-flash.js';
import { f16BitsToF32, f32ToF16Bits } from '../src/tensor/dtype.js';

type F32Variant = F32Tile | 'scalar' | null;
const F32: F32Variant[] = [
  null,
  { TM: 8, TN: 8, BK: 16, DB: false, UN: true },
  { TM: 8, TN: 8, BK: 8, DB: false, UN: true },
  { TM: 8, TN: 4, BK: 16, DB: false, UN: true },
  { TM: 4, TN: 8, BK: 16, DB: false, UN: true },
  { TM: 4, TN: 4, BK: 16, DB: false },
  { TM: 4, TN: 4, BK: 16, DB: false, UN: true },
  { TM: 8, TN: 8, BK: 16, DB: false, UN: true, NP: true },
  { TM: 8, TN: 8, BK: 8, DB: false, UN: true, NP: true },
  { TM: 8, TN: 8, BK: 32, DB: false, UN: true },
  { TM: 8, TN: 8, BK: 32, DB: false, UN: true, NP: true },
  { TM: 8, TN: 16, BK: 16, DB: false, UN: true, TX: 8, TY: 16 },
];
const SG: (SgTile | null)[] = [
  null,
  { SGM: 2, SGN: 2, FM: 4, FN: 4 },
  { SGM: 4, SGN: 4, FM: 2, FN: 2 },
  { SGM: 2, SGN: 4, FM: 4, FN: 2 },
  { SGM: 4, SGN: 2, FM: 4, FN: 4 },
  { SGM: 2, SGN: 2, FM: 4, FN: 4, BK: 64 },
];
/** Tiles timed by `f32`: the default against the 8x8 tiles without register prefetch or with 32-deep steps. */
const F32T: F32Variant[] = [null, ...F32.filter((t) => t !== null && t !== 'scalar' && t.TN === 8 && (t.NP || t.BK === 32))];
/**
 * Thread grids other than 16x16 (`f32wg`): 128 threads (8x16 per thread: the default from 600
 * tiles on; 8x8 and 4x8: the defaults for smaller aligned outputs) and 512 threads (which cap
 * the registers of a thread).
 */
const F32WG: F32Tile[] = [
  { TM: 8, TN: 16, BK: 16, DB: false, UN: true, TX: 8, TY: 16 },
  { TM: 8, TN: 16, BK: 16, DB: false, UN: true, NP: true, TX: 8, TY: 16 },
  { TM: 16, TN: 8, BK: 16, DB: false, UN: true, TX: 16, TY: 8 },
  { TM: 8, TN: 8, BK: 16, DB: false, UN: true, TX: 8, TY: 16 },
  { TM: 4, TN: 8, BK: 16, DB: false, UN: true, TX: 8, TY: 16 },
  { TM: 8, TN: 8, BK: 16, DB: false, UN: true, TX: 16, TY: 32 },
  { TM: 8, TN: 8, BK: 16, DB: false, UN: true, TX: 32, TY: 16 },
  { TM: 4, TN: 8, BK: 16, DB: false, UN: true, TX: 16, TY: 32 },
];

const log: string[] = [];
const say = (s: string) => { console.log(s); log.push(s); };
const name = (t: unknown) => (t === null ? 'default' : JSON.stringify(t));

function setF32(t: F32Variant): void {
  enableF32Vec4(t !== 'scalar');
  setF32Tile(t === 'scalar' ? null : t);
}

interface Case { run: () => void; err: (samples: number) => Promise<number>; free: () => void }

function setup(be: WebGpuBackend, dtype: 'f32' | 'f16', M: number, K: number, N: number, tA: boolean, tB: boolean): Case {
  const es = dtype === 'f32' ? 4 : 2;
  const [A, B, Y] = [be.alloc(M * K * es), be.alloc(K * N * es), be.alloc(M * N * es)];
  const make = (n: number): [Uint8Array, Float64Array] => {
    const r = new Float64Array(n);
    if (dtype === 'f32') {
      const f = new Float32Array(n);
      for (let i = 0; i < n; i++) r[i] = f[i] = Math.random() - 0.5;
      return [new Uint8Array(f.buffer), r];
    }
    const h = new Uint16Array(n);
    for (let i = 0; i < n; i++) { h[i] = f32ToF16Bits(Math.random() - 0.5); r[i] = f16BitsToF32(h[i]!); }
    return [new Uint8Array(h.buffer), r];
  };
  const [ab, av] = make(M * K);
  const [bb, bv] = make(K * N);
  be.write(A, 0, ab);
  be.write(B, 0, bb);
  const view = (buffer: typeof A, shape: number[]): View => ({ buffer, dtype, shape, strides: [shape[1]!, 1], offset: 0 });
  const ins = [view(A, tA ? [K, M] : [M, K]), view(B, tB ? [N, K] : [K, N])];
  const outs = [view(Y, [M, N])];
  const aAt = (m: number, k: number) => av[tA ? k * M + m : m * K + k]!;
  const bAt = (k: number, n: number) => bv[tB ? n * K + k : k * N + n]!;
  return {
    run: () => be.exec({ op: 'matmul', transA: tA, transB: tB }, ins, outs),
    // worst |error| / sqrt(K) over sampled (or all) entries
    err: async (samples) => {
      const o = await be.read(Y, 0, M * N * es);
      const y = dtype === 'f32' ? new Float32Array(o.buffer, o.byteOffset, M * N) : Array.from(new Uint16Array(o.buffer, o.byteOffset, M * N), f16BitsToF32);
      const idx = samples >= M * N ? [...Array(M * N).keys()] : Array.from({ length: samples }, () => Math.floor(Math.random() * M * N));
      let worst = 0;
      for (const e of idx) {
        const m = Math.floor(e / N), n = e % N;
        let s = 0;
        for (let k = 0; k < K; k++) s += aAt(m, k) * bAt(k, n);
        const d = Math.abs(s - y[e]!);
        worst = Math.max(worst, Number.isNaN(d) ? Infinity : d / Math.sqrt(K));
      }
      return worst;
    },
    free: () => { for (const b of [A, B, Y]) be.free(b); },
  };
}

/** Every f32 tile on every shape with all transposes against the float64 product; the failures. */
async function checkF32(be: WebGpuBackend, tiles: F32Variant[], shapes: number[][]): Promise<number> {
  let bad = 0;
  for (const t of tiles) for (const [M, K, N] of shapes) for (const tA of [false, true]) for (const tB of [false, true]) {
    setF32(t);
    const c = setup(be, 'f32', M!, K!, N!, tA, tB);
    try {
      c.run();
      const w = await c.err(Infinity);
      if (!(w < 1e-5)) { bad++; say(`FAIL f32 ${name(t)} ${M}x${K}x${N} tA=${tA} tB=${tB}: ${w}`); }
    } catch (e) { bad++; say(`ERR f32 ${name(t)}: ${(e as Error).message.split('\n').slice(0, 6).join(' | ')}`); }
    c.free();
  }
  setF32(null);
  return bad;
}

async function checks(be: WebGpuBackend, f16Only = false): Promise<void> {
  let bad = 0;
  if (!f16Only) bad += await checkF32(be, F32, [[200, 96, 136], [64, 32, 64], [130, 20, 67], [257, 100, 261], [256, 128, 512]]);
  if (be.handle.features.subgroupMatrix) {
    enableSubgroupMatmul(true);
    for (const t of SG) for (const [M, K, N] of [[200, 96, 136], [256, 64, 128], [130, 40, 264], [128, 512, 256], [256, 192, 512]]) {
      setSubgroupTile(t);
      const c = setup(be, 'f16', M!, K!, N!, false, false);
      try {
        c.run();
        const w = await c.err(2000);
        // f16 output: rounding of values up to ~sqrt(K)/2
        if (!(w < 2e-3)) { bad++; say(`FAIL f16 ${name(t)} ${M}x${K}x${N}: ${w}`); }
      } catch (e) { bad++; say(`ERR f16 ${name(t)}: ${(e as Error).message.split('\n').slice(0, 8).join(' | ')}`); }
      c.free();
    }
    setSubgroupTile(null);
  }
  say(`checks done: ${bad} bad`);
}

async function time(be: WebGpuBackend, dtype: 'f32' | 'f16', M: number, K: number, N: number, tB = false, rounds = 5): Promise<string> {
  const c = setup(be, dtype, M, K, N, false, tB);
  try {
    c.run();
    await be.flush();
    const flops = 2 * M * N * K;
    const reps = Math.max(20, Math.min(2000, Math.floor(8e12 / flops)));
    const ts: number[] = [];
    for (let r = 0; r < rounds; r++) {
      const t0 = performance.now();
      for (let i = 0; i < reps; i++) c.run();
      await be.flush();
      ts.push((performance.now() - t0) / reps);
    }
    const tf = ts.map((t) => flops / (t / 1e3) / 1e12).sort((a, b) => b - a);
    // GPU time from timestamps around each dispatch (split products: both passes), median of 3 batches of 20
    let gpu = '';
    if (be.handle.features.timestamps) {
      const per: number[] = [];
      for (let r = 0; r < 3; r++) {
        be.rt.startTiming();
        for (let i = 0; i < 20; i++) c.run();
        per.push((await be.rt.stopTiming()).reduce((s, d) => s + d.ms, 0) / 20);
      }
      const ms = per.sort((a, b) => a - b)[1]!;
      gpu = `; GPU ${(flops / (ms / 1e3) / 1e12).toFixed(1)} TFLOP/s, ${(ms * 1e3).toFixed(1)} us`;
    }
    const err = await c.err(32);
    return `${tf[0]!.toFixed(1)} TFLOP/s (rounds ${tf.map((x) => x.toFixed(0)).join(' ')}${gpu}; err ${err.toExponential(0)})`;
  } catch (e) {
    return `ERR ${(e as Error).message.split('\n').slice(0, 4).join(' | ')}`;
  } finally {
    c.free();
  }
}

/** f16 on subgroup matrices at the two target shapes, every tile of SG. */
async function f16(be: WebGpuBackend): Promise<void> {
  if (!be.handle.features.subgroupMatrix) { say('f16: no subgroup matrices on this adapter'); return; }
  enableSubgroupMatmul(true);
  // a freshly started GPU clocks up over the first seconds: warm it before timing, and time every
  // tile twice, the second pass in reverse order
  const w = setup(be, 'f16', 4096, 4096, 4096, false, false);
  for (const t0 = performance.now(); performance.now() - t0 < 4000;) { for (let i = 0; i < 20; i++) w.run(); await be.flush(); }
  w.free();
  for (const [M, K, N] of [[4096, 4096, 4096], [2048, 768, 3072]] as const) for (const t of [...SG, ...[...SG].reverse()]) {
    setSubgroupTile(t);
    say(`f16 ${M}x${K}x${N} ${name(t)}: ${await time(be, 'f16', M, K, N)}`);
  }
  setSubgroupTile(null);
}

async function gemm(be: WebGpuBackend, f32Only = false): Promise<void> {
  const shapes: [number, number, number, boolean][] = [[4096, 4096, 4096, false], [2048, 768, 3072, false]];
  if (f32Only) { // the target shapes only: the default against the tiles without register prefetch
    for (const [M, K, N, tB] of shapes) for (const t of F32T) { setF32(t); say(`f32 ${M}x${K}x${N} ${name(t)}: ${await time(be, 'f32', M, K, N, tB)}`); }
    setF32(null);
    return;
  }
  const prefillShapes: [number, number, number, boolean][] = [[512, 1024, 3072, false], [512, 1024, 1024, false], [512, 4096, 1024, false], [512, 1024, 4096, false], [512, 1024, 50257, true]];
  for (const [M, K, N, tB] of shapes) for (const t of F32.slice(0, 4)) { setF32(t); say(`f32 ${M}x${K}x${N} ${name(t)}: ${await time(be, 'f32', M, K, N, tB)}`); }
  for (const [M, K, N, tB] of prefillShapes) for (const t of [null, ...F32.slice(4), F32[1]!]) { setF32(t); say(`f32 ${M}x${K}x${N}${tB ? ' tB' : ''} ${name(t)}: ${await time(be, 'f32', M, K, N, tB)}`); }
  setF32(null);
  if (f32Only) return;
  if (!be.handle.features.subgroupMatrix) return;
  enableSubgroupMatmul(true);
  for (const [M, K, N] of shapes) for (const t of SG) {
    setSubgroupTile(t);
    say(`f16 ${M}x${K}x${N} ${name(t)}: ${await time(be, 'f16', M, K, N)}`);
  }
  setSubgroupTile(null);
}

/** `f32wg`: each F32WG grid checked on odd shapes, then timed at the target shapes beside the default. */
async function f32wg(be: WebGpuBackend): Promise<void> {
  const bad = await checkF32(be, F32WG, [[200, 96, 136], [257, 100, 261], [300, 64, 520], [256, 64, 512]]);
  say(`f32wg checks: ${bad} bad`);
  for (const [M, K, N] of [[4096, 4096, 4096], [2048, 768, 3072]] as const) for (const t of [null, ...F32WG]) {
    setF32(t);
    say(`f32 ${M}x${K}x${N} ${name(t)}: ${await time(be, 'f32', M, K, N)}`);
  }
  setF32(null);
}

async function decode(): Promise<void> {
  await import('../src/backends/index.js');
  const { initBackend, disposeBackends } = await import('../src/tensor/engine.js');
  const { randomModel } = await import('../src/models/random.js');
  const { KVCache } = await import('../src/models/layers/kv-cache.js');
  const { tensor } = await import('../src/ops/creation.js');
  const { reduce } = await import('../src/ops/reduce.js');
  const be = (await initBackend('webgpu')) as WebGpuBackend;
  const cfg = { model_type: 'gpt2', n_embd: 1024, n_head: 16, n_layer: 24, n_positions: 1024, vocab_size: 50257 };
  const model = randomModel(cfg, be, { seed: 0, std: 0.02 });
  await be.flush();
  for (let r = 0; r < 4; r++) {
    be.rt.reuseBindGroups = r !== 2;
    const cache = new KVCache();
    const p = tensor(Array.from({ length: 128 }, (_, i) => (i * 7919) % 50257), [1, 128], 'i32', { backend: be });
    model.forward(p, { cache, logits: 'last' }).dispose();
    p.dispose();
    await be.flush();
    let id = 11;
    const steps = 32;
    let host = 0;
    const s0 = { ...be.rt.stats };
    const t0 = performance.now();
    for (let s = 0; s < steps; s++) {
      const h0 = performance.now();
      const x = tensor([id], [1, 1], 'i32', { backend: be });
      const lg = model.forward(x, { cache, logits: 'last' });
      const flat = lg.reshape([-1]); // a view: it holds the logits' buffer too
      const am = reduce('argmax', flat, 0);
      flat.dispose();
      lg.dispose();
      x.dispose();
      host += performance.now() - h0;
      id = (await am.data())[0]!;
      am.dispose();
    }
    const ms = (performance.now() - t0) / steps;
    const st = be.rt.stats;
    say(`decode gpt2-medium (bind groups ${be.rt.reuseBindGroups ? 'reused' : 'made per dispatch'}): ${ms.toFixed(2)} ms/token, host encode ${(host / steps).toFixed(2)} ms/token, ` +
      `${((st.dispatches - s0.dispatches) / steps).toFixed(0)} dispatches, ${((st.submits - s0.submits) / steps).toFixed(1)} submits per token`);
    cache.dispose();
  }
  model.dispose();
  disposeBackends();
}

/**
 * GPU time per op of a GPT-2-medium-shaped prefill at T=512: one forward records its ops, then
 * each is replayed on its own (5 queued copies, then a flush; an empty flush is subtracted).
 */
async function prefill(): Promise<void> {
  await import('../src/backends/index.js');
  const { initBackend, disposeBackends } = await import('../src/tensor/engine.js');
  const { randomModel } = await import('../src/models/random.js');
  const { tensor } = await import('../src/ops/creation.js');
  const be = (await initBackend('webgpu')) as WebGpuBackend;
  // ACTLAB_TUNE_PREFILL=small|medium:T[:cache] picks the model and length (default medium:512);
  // `cache` records a runWithCache of the model benchmark's hook points instead of a plain forward
  const [size, Ts, mode] = (process.env.ACTLAB_TUNE_PREFILL ?? 'medium:512').split(':');
  const T = Number(Ts ?? 512);
  const label = `gpt2-${size} T=${T}${mode === 'cache' ? ' runWithCache' : ''}`;
  const { runWithCache } = await import('../src/hooks/run.js');
  const { CACHE_NAMES } = await import('./webgpu-counts.js');
  const once = () => {
    if (mode !== 'cache') { model.forward(x).dispose(); return; }
    const r = runWithCache(model, x, { names: CACHE_NAMES });
    r.logits.dispose();
    r.cache.dispose();
  };
  const cfg = size === 'small'
    ? { model_type: 'gpt2', n_embd: 768, n_head: 12, n_layer: 12, n_positions: 1024, vocab_size: 50257 }
    : { model_type: 'gpt2', n_embd: 1024, n_head: 16, n_layer: 24, n_positions: 1024, vocab_size: 50257 };
  const model = randomModel(cfg, be, { seed: 0, std: 0.02 });
  await be.flush();
  const x = tensor(Array.from({ length: T }, (_, i) => (i * 7919) % 50257), [1, T], 'i32', { backend: be });
  // ms of each of n forwards, one after the other (in brackets: the host's encoding, before the wait),
  // and what the last one made: bind groups, buffers, submits
  const forwards = async (n: number) => {
    const ts: string[] = [];
    let s0 = { ...be.rt.stats };
    for (let i = 0; i < n; i++) {
      s0 = { ...be.rt.stats };
      const t0 = performance.now();
      once();
      const h = performance.now() - t0;
      await be.flush();
      ts.push(`${(performance.now() - t0).toFixed(1)} (${h.toFixed(1)})`);
    }
    const st = be.rt.stats;
    return `${ts.join(' ')}; last: ${st.bindGroups - s0.bindGroups} bind groups, ${st.buffersCreated - s0.buffersCreated} buffers made, ${st.submits - s0.submits} submits`;
  };
  say(`prefill ${label}, first 10 forwards: ${await forwards(10)} ms`);
  for (const reuse of [true, false, true]) {
    be.rt.reuseBindGroups = reuse;
    say(`prefill ${label} (bind groups ${reuse ? 'reused' : 'made per dispatch'}): ${await forwards(4)} ms`);
  }
  if (be.handle.features.timestamps) await gpuTimes(be, once, 3);
  // record one forward; its buffers are freed only after the replay
  const rec: Parameters<WebGpuBackend['exec']>[] = [];
  const exec = be.exec.bind(be);
  const free = be.free.bind(be);
  const freed: Parameters<WebGpuBackend['free']>[0][] = [];
  be.exec = (...a) => { rec.push(a); exec(...a); };
  be.free = (b) => { freed.push(b); };
  const h0 = performance.now();
  once();
  const host = performance.now() - h0;
  await be.flush();
  be.exec = exec;
  be.free = free;
  const flushOnly = async () => { const t = performance.now(); await be.flush(); return performance.now() - t; };
  const base = Math.min(...(await Promise.all([0, 1, 2, 3, 4].map(() => flushOnly()))));
  const by = new Map<string, { ms: number; n: number }>();
  let total = 0;
  for (const [op, ins, outs] of rec) {
    const t = performance.now();
    for (let i = 0; i < 5; i++) exec(op, ins, outs);
    await be.flush();
    const ms = Math.max(0, (performance.now() - t - base) / 5);
    total += ms;
    const key = `${op.op}${'transB' in op && op.transB ? ' tB' : ''} ${ins.map((v) => `${v.dtype}[${v.shape.join(',')}]`).join(' ')}`;
    const e = by.get(key) ?? { ms: 0, n: 0 };
    by.set(key, { ms: e.ms + ms, n: e.n + 1 });
  }
  for (const b of freed) free(b);
  say(`prefill ops: ${rec.length} dispatching execs, host encode ${host.toFixed(1)} ms, sum of per-op GPU time ${total.toFixed(1)} ms (flush ${base.toFixed(3)} ms subtracted)`);
  for (const [k, v] of [...by].sort((a, b) => b[1].ms - a[1].ms).slice(0, 25)) say(`  ${v.ms.toFixed(2).padStart(8)} ms  x${v.n}  ${k}`);
  x.dispose();
  model.dispose();
  disposeBackends();
}

/**
 * GPU time of whole forwards from timestamps around each dispatch (each in a pass of its own):
 * the best of `n` forwards' sum, and per kernel its calls and milliseconds in the best forward.
 */
async function gpuTimes(be: WebGpuBackend, once: () => void, n: number): Promise<void> {
  let best: { name: string; ms: number }[] = [];
  let bestMs = Infinity;
  for (let i = 0; i < n; i++) {
    be.rt.startTiming();
    once();
    const t = await be.rt.stopTiming();
    const ms = t.reduce((s, d) => s + d.ms, 0);
    if (ms < bestMs) { bestMs = ms; best = t; }
  }
  say(`prefill GPU time (timestamps per dispatch, best of ${n}): ${bestMs.toFixed(2)} ms over ${best.length} dispatches`);
  const by = new Map<string, { ms: number; n: number }>();
  for (const d of best) { const e = by.get(d.name) ?? { ms: 0, n: 0 }; by.set(d.name, { ms: e.ms + d.ms, n: e.n + 1 }); }
  for (const [k, v] of [...by].sort((a, b) => b[1].ms - a[1].ms).slice(0, 20)) say(`  gpu ${v.ms.toFixed(3).padStart(8)} ms  x${v.n}  ${(v.ms / v.n * 1e3).toFixed(1)} us each  ${k}`);
  // a layer and a half from the middle of the forward, in order (kernels of one name told apart by place)
  const mid = Math.floor(best.length / 2);
  for (const [i, d] of best.slice(mid, mid + 16).entries()) say(`  gpu #${mid + i} ${(d.ms * 1e3).toFixed(1).padStart(7)} us  ${d.name}`);
}

const FLASH: (FlashTile | 'row' | null)[] = ['row', null, { BQ: 32, RPT: 4, BK: 32 }, { BQ: 64, RPT: 4, BK: 32 }, { BQ: 32, RPT: 2, BK: 32 }, { BQ: 32, RPT: 2, BK: 16 }];
/** Variants timed by `attn`: a tile (or the row kernel) with the fewest key tiles per run of a split (0: no split). */
const ATTN: { t: FlashTile | 'row' | null; split: number }[] = [...FLASH.map((t) => ({ t, split: 4 })), ...[0, 2, 8].map((split) => ({ t: null, split }))];

/** Causal self-attention [1, H, T, 64] per kernel variant: wall time (best of 5 rounds of 40), GPU time, and the max difference to the row kernel. */
async function attn(): Promise<void> {
  await import('../src/backends/index.js');
  const { initBackend, disposeBackends } = await import('../src/tensor/engine.js');
  const { Tensor } = await import('../src/tensor/tensor.js');
  const F = await import('../src/ops/index.js');
  const be = (await initBackend('webgpu')) as WebGpuBackend;
  for (const [H, T] of [[16, 512], [12, 512], [16, 128]] as const) {
    const n = H * T * 64;
    const mk = (s: number) => Tensor.from(Array.from({ length: n }, (_, i) => Math.sin(i * s) * 2), [1, H, T, 64], 'f32', be);
    const [q, k, v] = [mk(0.37), mk(0.11), mk(0.07)];
    let ref: Float32Array | null = null;
    for (const { t, split } of [...ATTN, ...[...ATTN].reverse()]) {
      enableFlashAttention(t !== 'row');
      setFlashTile(t === 'row' ? null : t);
      setFlashKeySplit(split);
      const y = F.attention(q, k, v, { causal: true }).out;
      const yv = (await y.data()) as Float32Array;
      y.dispose();
      ref ??= yv;
      let err = 0;
      for (let i = 0; i < n; i++) err = Math.max(err, Math.abs(yv[i]! - ref[i]!));
      const ts: number[] = [];
      for (let r = 0; r < 5; r++) {
        const t0 = performance.now();
        for (let i = 0; i < 40; i++) F.attention(q, k, v, { causal: true }).out.dispose();
        await be.flush();
        ts.push((performance.now() - t0) / 40);
      }
      const ms = Math.min(...ts);
      let gpu = '';
      if (be.handle.features.timestamps) {
        be.rt.startTiming();
        for (let i = 0; i < 20; i++) F.attention(q, k, v, { causal: true }).out.dispose();
        const g = (await be.rt.stopTiming()).reduce((s, d) => s + d.ms, 0) / 20;
        gpu = `, GPU ${(g * 1e3).toFixed(1)} us`;
      }
      const flops = 4 * H * T * T * 64 / 2;
      say(`attn [1,${H},${T},64] causal ${name(t)} split ${split}: ${ms.toFixed(3)} ms (${(flops / ms / 1e9).toFixed(2)} TFLOP/s)${gpu}, max diff to row kernel ${err.toExponential(1)}`);
    }
    for (const x of [q, k, v]) x.dispose();
  }
  enableFlashAttention(true);
  setFlashTile(null);
  setFlashKeySplit(4);
  disposeBackends();
}

const modes = (process.argv[2] ?? 'check').split(',');
const out = process.argv[3] ?? '/tmp';
if (modes.some((m) => ['check', 'sgcheck', 'gemm', 'f32', 'f16', 'f32wg', 'f32big', 'f32pre', 'f32few', 'f32med', 'base'].includes(m))) {
  const be = (await createWebGpuBackend()) as WebGpuBackend;
  say(`${process.env.ACTLAB_DAWN_TOGGLES ?? ''} ${JSON.stringify(be.info())}`);
  if (modes.includes('check')) await checks(be);
  else if (modes.includes('sgcheck')) await checks(be, true);
  if (modes.includes('gemm')) await gemm(be);
  else if (modes.includes('f32')) await gemm(be, true);
  if (modes.includes('f16')) await f16(be);
  if (modes.includes('f32wg')) await f32wg(be);
  if (modes.includes('f32big')) { // 8x8 on 256 threads against 8x16 on 128, aligned shapes of many tiles
    const wide: F32Tile = { TM: 8, TN: 16, BK: 16, DB: false, UN: true, TX: 8, TY: 16 };
    for (const [M, K, N] of [[1024, 4096, 4096], [2048, 4096, 4096], [3072, 4096, 4096], [4096, 1024, 4096], [4096, 4096, 4096], [2048, 768, 3072], [4096, 768, 3072], [4096, 1024, 1024]] as const) {
      for (const t of [F32[1]!, wide]) { setF32(t); say(`f32 ${M}x${K}x${N} ${name(t)}: ${await time(be, 'f32', M, K, N)}`); }
    }
    setF32(null);
  }
  if (modes.includes('f32pre')) { // GPT-2 prefill projections at T=512: the size heuristic's tiles side by side
    const T: F32Variant[] = [null, F32[1]!, { TM: 8, TN: 4, BK: 16, DB: false, UN: true }, { TM: 4, TN: 4, BK: 16, DB: false }, F32WG[0]!, F32WG[3]!, F32WG[4]!];
    for (const [M, K, N, tB] of [[512, 768, 2304, false], [512, 768, 768, false], [512, 768, 3072, false], [512, 3072, 768, false], [512, 1024, 3072, false], [512, 1024, 1024, false], [512, 1024, 4096, false], [512, 4096, 1024, false], [512, 768, 50257, true]] as const) {
      for (const t of T) { setF32(t); say(`f32 ${M}x${K}x${N}${tB ? ' tB' : ''} ${name(t)}: ${await time(be, 'f32', M, K, N, tB)}`); }
    }
    setF32(null);
  }
  if (modes.includes('f32few')) { // products of few output tiles (GPT-2-medium at T=512): smaller tiles and K-splits
    const T: F32Variant[] = [null, { TM: 4, TN: 4, BK: 16, DB: false, UN: true, TX: 8, TY: 16 }, { TM: 4, TN: 4, BK: 16, DB: false, UN: true, TX: 8, TY: 8 },
      { TM: 4, TN: 8, BK: 16, DB: false, UN: true, TX: 8, TY: 8 }, { TM: 4, TN: 4, BK: 16, DB: false, UN: true, NP: true, TX: 8, TY: 16 }];
    const shapes = (process.env.ACTLAB_TUNE_SHAPES ?? '512x4096x1024,512x1024x1024,512x1024x3072,512x1024x4096').split(',').map((x) => x.split('x').map(Number) as [number, number, number]);
    for (const [M, K, N] of shapes) for (const S of [1, 2, 4]) for (const t of T) {
      if (S > 1 && K < 2048 && t !== null) continue;
      setF32(t);
      setMatmulSplitK(S);
      say(`f32 ${M}x${K}x${N} split ${S} ${name(t)}: ${await time(be, 'f32', M, K, N)}`);
    }
    setMatmulSplitK(DEFAULT_SPLITK);
    setF32(null);
  }
  if (modes.includes('f32med')) { // GPT-2-medium at T=512: tiles x K-splits per product, two passes (the second in reverse order)
    const w = (t: Omit<F32Tile, 'DB' | 'UN' | 'TX' | 'TY'> & Partial<F32Tile>): F32Tile => ({ DB: false, UN: true, TX: 8, TY: 16, ...t });
    const T: F32Variant[] = [null, { TM: 8, TN: 8, BK: 16, DB: false, UN: true }, w({ TM: 8, TN: 16, BK: 16 }), w({ TM: 8, TN: 8, BK: 16 }), w({ TM: 4, TN: 8, BK: 16 }),
      w({ TM: 8, TN: 16, BK: 32 }), w({ TM: 8, TN: 8, BK: 32 }), w({ TM: 4, TN: 8, BK: 32 }), w({ TM: 8, TN: 8, BK: 16, DB: true }), w({ TM: 4, TN: 8, BK: 16, DB: true }),
      w({ TM: 16, TN: 8, BK: 16, TX: 16, TY: 8 })];
    // ACTLAB_TUNE_TILES='[{"TM":4,"TN":16,"BK":16}]': more tiles (w()'s defaults fill the rest);
    // ACTLAB_TUNE_ONLY_EXTRA=1: those beside the default only
    const extra = process.env.ACTLAB_TUNE_TILES ? (JSON.parse(process.env.ACTLAB_TUNE_TILES) as F32Tile[]).map((t) => w(t)) : [];
    if (process.env.ACTLAB_TUNE_ONLY_EXTRA) T.splice(1);
    T.push(...extra);
    const shapes = (process.env.ACTLAB_TUNE_SHAPES ?? '512x1024x3072,512x1024x1024,512x1024x4096,512x4096x1024,512x1024x50257t').split(',');
    const runs: [string, number, F32Variant][] = [];
    const splits = (process.env.ACTLAB_TUNE_SPLITS ?? '1,2,4').split(',').map(Number);
    for (const sh of shapes) for (const S of sh.endsWith('t') ? [1] : splits) for (const t of T) runs.push([sh, S, t]);
    for (const [pass, list] of [[1, runs], [2, [...runs].reverse()]] as const) for (const [sh, S, t] of list) {
      const [M, K, N] = sh.replace('t', '').split('x').map(Number) as [number, number, number];
      setF32(t);
      setMatmulSplitK(S);
      say(`f32med pass ${pass} ${M}x${K}x${N}${sh.endsWith('t') ? ' tB' : ''} split ${S} ${name(t)}: ${await time(be, 'f32', M, K, N, sh.endsWith('t'), 1)}`);
    }
    setMatmulSplitK(DEFAULT_SPLITK);
    setF32(null);
  }
  if (modes.includes('base')) { // the default kernels only, at the target shapes
    for (const dt of ['f32', 'f16'] as const) for (const [M, K, N] of [[4096, 4096, 4096], [2048, 768, 3072]] as const) say(`${dt} ${M}x${K}x${N} default: ${await time(be, dt, M, K, N)}`);
  }
  be.dispose();
}
if (modes.includes('prefill')) await prefill();
if (modes.includes('decode')) await decode();
if (modes.includes('attn')) await attn();
writeFileSync(`${out}/tune${process.env.ACTLAB_DAWN_TOGGLES ? '-' + process.env.ACTLAB_DAWN_TOGGLES.replace(/\W+/g, '_') : ''}.txt`, log.join('\n') + '\n');
process.exit(0);
