// Benchmark: A/B of the packed KV-cache attention kernel (kernels/kvattn.wat.mjs) of two checkouts
// in one process. Each checkout's generator is assembled and instantiated on the backend's shared
// memory; both run on the same packed caches, query and parameter block (filled once by this
// checkout's glue, ops/kv-attention.ts; each build gets its own scratch), calls interleaved
// (A, B, f32 attention op, A, B, ...) on 1 thread, process CPU time per call. Cold: 64 MiB written
// between calls (as in decode, where a layer's weights pass through the caches); hot: nothing
// between calls. Prints both builds' largest difference to the js reference (reference.ts) and to
// each other, then per cache the median and minimum CPU ms per call and B / A.
// Shape: 1 query, 512 positions, 16 heads of 64 (the llama d1024 decode step's attention), as
// bench/kv-quant.ts --only kernel.
// With --step: whole decode steps instead (bench/kv-quant.ts --only speed's llama d1024, random
// weights, context 448..480), the f32 cache and the kvquant-4 cache with A's kernel and with B's
// swapped into the pool between runs, runs interleaved (f32, A, B, ...): median process CPU ms per
// step and each against the f32 cache.
// Usage: npm run build && node dist/bench/kvattn-ab.js --a ../other-checkout [--b .] [--rounds 15] [--calls 20] [--hot] [--plain] [--step [--runs 6]]
import { resolve } from 'node:path';
import { loadavg } from 'node:os';
import { existsSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import '../src/backends/index.js';
import { createWasmBackend } from '../src/backends/wasm/backend.js';
import type { WasmRuntime } from '../src/backends/wasm/runtime.js';
import { KVCacheQuant } from '../src/models/kvquant/cache.js';
import { resolveKVSpec, type KVCacheSpec } from '../src/models/kvquant/spec.js';
import { collectKV, fitKV } from '../src/kvquant/calibrate.js';
import { generate } from '../src/models/generate.js';
import { randomModel } from '../src/models/random.js';
import { attention } from '../src/ops/nn.js';
import { tidy } from '../src/tensor/engine.js';
import { KERNEL_SHAPE, kernelCases } from './kv-kernel-cases.js';

const args = process.argv.slice(2);
const opt = (n: string, d: string) => { const i = args.indexOf(`--${n}`); return i >= 0 ? args[i + 1]! : d; };
const kernelsDir = (d: string) => {
  const r = resolve(d);
  return existsSync(`${r}/kvattn.wat.mjs`) ? r : `${r}/src/backends/wasm/kernels`;
};
const dirs = { A: kernelsDir(opt('a', '.')), B: kernelsDir(opt('b', '.')) };
const rounds = Number(opt('rounds', '15'));
const calls = Number(opt('calls', '20'));
const hot = args.includes('--hot');
const relaxed = !args.includes('--plain');

const backend = await createWasmBackend({ threads: 1, relaxed });
const rt = (backend as unknown as { runtime: WasmRuntime }).runtime;
const memory = rt.memory.memory;

type Kernel = (prm: number, task: number, nTasks: number) => void;
const wabt = await (await import('wabt')).default();
const FEATURES = { simd: true, threads: true, relaxed_simd: true };
async function build(dir: string): Promise<Kernel> {
  const gen = (await import(pathToFileURL(`${dir}/kvattn.wat.mjs`).href)) as { generate(o: { relaxed: boolean }): string };
  const mod = wabt.parseWat('kvattn.wat', gen.generate({ relaxed }), FEATURES);
  mod.resolveNames();
  (mod as unknown as { validate(f: object): void }).validate(FEATURES);
  const bin = new Uint8Array(mod.toBinary({}).buffer);
  mod.destroy();
  const inst = new WebAssembly.Instance(new WebAssembly.Module(bin as Uint8Array<ArrayBuffer>), { env: { memory } });
  return inst.exports.kv_attn_rows as Kernel;
}
const kernels = { A: await build(dirs.A), B: await build(dirs.B) };
const pool = rt.pool as unknown as { run(k: string, a: readonly number[], n?: number): void; fns: Kernel[]; ids: Map<string, number> };
const cpuMs = () => { const u = process.cpuUsage(); return (u.user + u.system) / 1000; };
const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;
const min = (xs: number[]) => Math.min(...xs);

if (args.includes('--step')) {
  const runs = Number(opt('runs', '6'));
  const model = randomModel({
    model_type: 'llama', hidden_size: 1024, num_attention_heads: 16, num_key_value_heads: 16, num_hidden_layers: 4, intermediate_size: 2816,
    vocab_size: 512, max_position_embeddings: 1024, rope_theta: 10000, rms_norm_eps: 1e-5, tie_word_embeddings: false,
  }, backend, { seed: 0, std: 0.03 });
  const ids = (n: number, seed: number) => Array.from({ length: n }, (_, i) => 3 + ((i * 7919 + seed * 104729) % 509));
  const stats = collectKV(model, ids(1024, 2), { ctx: 256 });
  const base: KVCacheSpec = { type: 'kvquant', bits: 4 };
  const spec: KVCacheSpec = { ...base, calibration: fitKV(stats, resolveKVSpec(base)) };
  const id = pool.ids.get('kv_attn_rows')!;
  const variants: [string, KVCacheSpec | undefined, Kernel | undefined][] = [['f32', undefined, undefined], ['kvquant-4, A', spec, kernels.A], ['kvquant-4, B', spec, kernels.B]];
  const cpu = new Map<string, number[]>();
  console.log(`decode steps, llama d1024 (16 heads of 64, 4 layers, random weights), context 448..480, 1 thread, ${runs} interleaved runs of 31 steps; load average ${loadavg().map((x) => x.toFixed(2)).join(' ')}`);
  for (let r = 0; r < runs; r++) {
    const order = r % 2 ? [variants[0]!, variants[2]!, variants[1]!] : variants;
    for (const [name, s, k] of order) {
      if (k) pool.fns[id] = k;
      const t: number[] = [];
      generate(model, [ids(448, 1)], { maxNewTokens: 32, eosTokenIds: [], kvCache: s, onToken: () => { t.push(cpuMs()); } });
      cpu.set(name, [...(cpu.get(name) ?? []), ...t.slice(1).map((x, i) => x - t[i]!)]);
    }
  }
  const f = med(cpu.get('f32')!);
  console.log('| cache | median CPU ms/step | min | f32 / this |');
  console.log('|---|---|---|---|');
  for (const [name] of variants) console.log(`| ${name} | ${med(cpu.get(name)!).toFixed(3)} | ${min(cpu.get(name)!).toFixed(3)} | ${(f / med(cpu.get(name)!)).toFixed(3)} |`);
  console.log(`B / A median: ${(med(cpu.get('kvquant-4, B')!) / med(cpu.get('kvquant-4, A')!)).toFixed(3)}; load average after: ${loadavg().map((x) => x.toFixed(2)).join(' ')}`);
  model.dispose();
  process.exit(0);
}

// the caches of bench/kv-quant.ts --only kernel
const { hkv, d, tk } = KERNEL_SHAPE;
const R = hkv * d;
const { k, v, q, inv, specs, attend: o } = kernelCases(backend);
const kinds: [string, KVCacheSpec][] = [
  ['kvquant-4', specs.kvquant4],
  ['uniform 4-bit, no outliers or sink', specs.uniform4],
  ['q4_0', specs.q4_0],
];

// each cache's parameter block as the glue fills it, kept; y and the scratch per build
const run0 = pool.run.bind(pool);
let seen = 0;
pool.run = (name, a, n) => { if (name === 'kv_attn_rows') seen = a[0]!; run0(name, a, n); };
const PRM = 320, SCR = 1 << 20, Y = R * 4;
interface Case { name: string; cache: KVCacheQuant; prm: { A: number; B: number }; y: { A: number; B: number }; ref: Float32Array }
const cases: Case[] = [];
const i32 = () => new Int32Array(memory.buffer);
for (const [name, spec] of kinds) {
  const cache = new KVCacheQuant(spec, backend);
  cache.store(0, k, v, Int32Array.from({ length: tk }, (_, i) => i));
  cache.commit();
  cache.attend(0, q, o).dispose();
  const ref = cache.attend(0, q, { ...o, reference: true });
  const refY = Float32Array.from(ref.dataSync() as Float32Array);
  ref.dispose();
  const c: Case = { name, cache, prm: { A: 0, B: 0 }, y: { A: 0, B: 0 }, ref: refY };
  for (const b of ['A', 'B'] as const) {
    c.prm[b] = rt.scratch(`ab.prm.${name}.${b}`, PRM);
    c.y[b] = rt.scratch(`ab.y.${name}.${b}`, Y);
    const scr = rt.scratch(`ab.scr.${name}.${b}`, SCR);
    const P = i32();
    P.copyWithin(c.prm[b] / 4, seen / 4, seen / 4 + PRM / 4);
    P[c.prm[b] / 4 + 11] = c.y[b]; // KVA.y
    P[c.prm[b] / 4 + 15] = scr; // KVA.scratch
    P[c.prm[b] / 4 + 16] = SCR; // KVA.scratchStride
  }
  cases.push(c);
}

const maxRel = (a: Float32Array, b: Float32Array) => {
  let m = 0, s = 0;
  for (let i = 0; i < a.length; i++) { m = Math.max(m, Math.abs(a[i]! - b[i]!)); s = Math.max(s, Math.abs(b[i]!)); }
  return m / s;
};
console.log(`A: ${dirs.A}\nB: ${dirs.B}\n${relaxed ? 'relaxed' : 'plain'} SIMD, 1 thread, ${hot ? 'hot (nothing between calls)' : 'cold (64 MiB written between calls)'}, ${rounds} rounds of ${calls} calls, load average ${loadavg().map((x) => x.toFixed(2)).join(' ')}`);
for (const c of cases) {
  const out: Record<string, Float32Array> = {};
  for (const b of ['A', 'B'] as const) {
    kernels[b](c.prm[b], 0, 1);
    out[b] = Float32Array.from(new Float32Array(memory.buffer, c.y[b], R));
  }
  console.log(`${c.name}: max |y − reference| / max |reference|: A ${maxRel(out.A!, c.ref).toExponential(2)}, B ${maxRel(out.B!, c.ref).toExponential(2)}; |A − B| ${maxRel(out.B!, out.A!).toExponential(2)}`);
}

const other = new Float32Array(16 << 20);
const times = new Map<string, number[]>();
const push = (key: string, t: number) => times.set(key, [...(times.get(key) ?? []), t]);
const f32Call = () => tidy(() => attention(q, k, v, { causal: true, scale: o.scale }).out).dispose();
for (let r = 0; r < rounds; r++) {
  const order = r % 2 ? (['B', 'A'] as const) : (['A', 'B'] as const);
  for (const c of cases) {
    for (const b of order) {
      let t = 0;
      for (let i = 0; i < calls; i++) {
        if (!hot) other.fill(i);
        const t0 = cpuMs();
        kernels[b](c.prm[b], 0, 1);
        t += cpuMs() - t0;
      }
      push(`${c.name}|${b}`, t / calls);
    }
  }
  let t = 0;
  for (let i = 0; i < calls; i++) {
    if (!hot) other.fill(i);
    const t0 = cpuMs();
    f32Call();
    t += cpuMs() - t0;
  }
  push('f32', t / calls);
}
const f32 = times.get('f32')!;
console.log(`\n| cache | A median (min) CPU ms | B median (min) | B / A median (min) | f32 op / A | f32 op / B |`);
console.log('|---|---|---|---|---|---|');
for (const c of cases) {
  const a = times.get(`${c.name}|A`)!, b = times.get(`${c.name}|B`)!;
  console.log(`| ${c.name} | ${med(a).toFixed(4)} (${min(a).toFixed(4)}) | ${med(b).toFixed(4)} (${min(b).toFixed(4)}) | ${(med(b) / med(a)).toFixed(3)} (${(min(b) / min(a)).toFixed(3)}) | ${(med(f32) / med(a)).toFixed(3)} | ${(med(f32) / med(b)).toFixed(3)} |`);
}
console.log(`f32 attention op: ${med(f32).toFixed(4)} (${min(f32).toFixed(4)}) CPU ms; load average after: ${loadavg().map((x) => x.toFixed(2)).join(' ')}`);
for (const c of cases) c.cache.dispose();
for (const t of [k, v, q, inv]) t.dispose();
backend.dispose?.();
