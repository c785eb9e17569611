// Benchmark: A/B of the wasm quantized-product kernels of two checkouts in one process — each
// checkout's generator (src/backends/wasm/kernels/qmatmul.wat.mjs) assembled and instantiated side
// by side on one shared memory holding the same activation and weights, calls interleaved (A B A B
// ...) on 1 thread, CPU time per call, median and minimum. It measures the kernels alone (no
// dispatch, no thread pool) where the backend's benches (qgemv.ts, qgemm.ts) cannot hold two builds
// at once. Checks that both give the same products as the exact f64 product within the 8-bit
// activation's error (printed). With --plain, both checkouts' plain-SIMD builds (what a browser
// without relaxed SIMD runs) instead of their relaxed-SIMD builds.
// Usage: npm run build && node dist/bench/qkernel-ab.js --a ../other-checkout [--b .] [--types q4_k,q6_k] [--m 1] [--n 2304] [--k 768] [--runs 15] [--reps 10] [--plain]
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { loadavg } from 'node:os';
import { setFlagsFromString } from 'node:v8';
import { dequantizeGgml, quantizeQ4_0, quantizeQ8_0, type GgmlTypeName } from '../src/formats/gguf-quants.js';
import { quantizeQ4K, quantizeQ5K, quantizeQ6K } from '../src/formats/gguf-kquants.js';
import { f16BitsToF32 } from '../src/tensor/dtype.js';
import { Rng } from '../src/ops/creation.js';

const args = process.argv.slice(2);
const opt = (n: string, d: string) => { const i = args.indexOf(`--${n}`); return i >= 0 ? args[i + 1]! : d; };
const dirs = { A: resolve(opt('a', '.')), B: resolve(opt('b', '.')) };
const types = opt('types', 'q8_0,q4_0,q4_k,q6_k').split(',');
const [M, N, K] = [Number(opt('m', '1')), Number(opt('n', '2304')), Number(opt('k', '768'))];
const runs = Number(opt('runs', '15'));
const reps = Number(opt('reps', '10'));
const relaxed = !args.includes('--plain');
setFlagsFromString('--experimental-wasm-relaxed-simd'); // Node 20: relaxed SIMD behind a flag (as features.ts)

type Exports = Record<string, (p: number, task: number, nTasks: number) => void>;
interface Gen { P: Record<string, number>; constants: Record<string, unknown>; generate(o: { relaxed: boolean }): string }
const wabt = await (await import('wabt')).default();
const FEATURES = { simd: true, threads: true, relaxed_simd: true };
const memory = new WebAssembly.Memory({ initial: 4096, maximum: 65536, shared: true });
async function build(dir: string): Promise<{ gen: Gen; E: Exports }> {
  const gen = (await import(pathToFileURL(`${dir}/src/backends/wasm/kernels/qmatmul.wat.mjs`).href)) as Gen;
  const mod = wabt.parseWat('qmatmul.wat', gen.generate({ relaxed }), FEATURES);
  mod.resolveNames();
  (mod as unknown as { validate(f: object): void }).validate(FEATURES);
  const bin = new Uint8Array(mod.toBinary({}).buffer);
  mod.destroy();
  const inst = new WebAssembly.Instance(new WebAssembly.Module(bin as Uint8Array<ArrayBuffer>), { env: { memory } });
  return { gen, E: inst.exports as unknown as Exports };
}
const builds = { A: await build(dirs.A), B: await build(dirs.B) };

// bump allocator over the shared memory (above the first 64 KiB)
let top = 1 << 16;
const alloc = (n: number) => { const p = top; top += (n + 127) & ~127; return p; };
const tab = alloc(65536 * 4);
{ const t = new Float32Array(memory.buffer, tab, 65536); for (let h = 0; h < 65536; h++) t[h] = f16BitsToF32(h); }
const rng = new Rng(1);
const xv = Float32Array.from({ length: M * K }, () => rng.normal());
const x = alloc(M * K * 4);
new Float32Array(memory.buffer, x, M * K).set(xv);
// every scratch area either build may ask for (each build reads its own P's fields)
const scratch: Record<string, number> = {
  xq: alloc(M * K * 2), xq8: alloc(M * K), xp: alloc(M * K), xm: alloc(M * K / 2), xg: alloc(M * K / 8), xd: alloc(M * K / 8), xs: alloc(M * K / 8),
  xk8: alloc(M * K), xkd: alloc(M * K / 64), xkg: alloc(M * K / 8), xk32: alloc(M * K / 16),
  xt: alloc((M >> 2) * (K / 32) * 192), xt16: alloc((M >> 2) * (K / 32) * 256), xkt: alloc((M >> 2) * (K / 256) * 1232),
};
const y = alloc(M * N * 4);
const wv = Float32Array.from({ length: N * K }, () => rng.normal() * 0.02);
const encode: Record<string, (v: Float32Array) => Uint8Array> = { q8_0: quantizeQ8_0, q4_0: quantizeQ4_0, q4_k: quantizeQ4K, q5_k: quantizeQ5K, q6_k: quantizeQ6K };
const weights = Object.fromEntries(types.map((t) => {
  const raw = encode[t]!(wv);
  const p = alloc(raw.length);
  new Uint8Array(memory.buffer).set(raw, p);
  return [t, { p, raw }];
}));

const params = alloc(128);
/** Sets the parameter block for `type` as build `b` lays it out and rounds x as it does; returns the kernel. */
function prepare(b: { gen: Gen; E: Exports }, type: string): () => void {
  const p = new Int32Array(memory.buffer, params, 32);
  p.fill(0);
  const P = b.gen.P;
  const tiled = M >= 4 && (b.gen.constants.TILE_TYPES as string[]).includes(type);
  const set = (f: string, v: number) => { if (P[f] !== undefined) p[P[f]! / 4] = v; };
  set('M', M); set('N', N); set('K', K); set('x', x); set('y', y); set('tab', tab); set('w', weights[type]!.p);
  set('rowBytes', weights[type]!.raw.length / N); set('rowBeg', 0); set('rowEnd', N); set('tiled', tiled ? 1 : 0);
  for (const [f, v] of Object.entries(scratch)) set(f, v);
  if (type !== 'q8_0') set('xt16', 0);
  if (!['q4_k', 'q5_k', 'q6_k'].includes(type) || !tiled) set('xkt', 0);
  b.E.qm_quant_x!(params, 0, 1);
  b.E.qm_quant_xk?.(params, 0, 1);
  const k = b.E[tiled ? `qm_${type}_gemm` : `qm_${type}`]!;
  return () => k(params, 0, 1);
}

const median = (a: number[]) => [...a].sort((p, q) => p - q)[a.length >> 1]!;
const load0 = loadavg()[0]!;
console.log(`quantized kernels A/B (${relaxed ? 'relaxed-SIMD' : 'plain-SIMD'} builds), M = ${M}, N = ${N}, K = ${K}, 1 thread, CPU µs per call (median and min of ${runs} interleaved rounds of ${reps} calls)`);
console.log(`A: ${dirs.A}\nB: ${dirs.B}`);
console.log('| type | A µs | A min | B µs | B min | B / A | A max rel err | B max rel err |\n|---|---:|---:|---:|---:|---:|---:|---:|');
for (const type of types) {
  const wf = dequantizeGgml(type.toUpperCase() as GgmlTypeName, weights[type]!.raw, N * K);
  const err: Record<string, number> = {};
  for (const s of ['A', 'B'] as const) {
    prepare(builds[s], type)();
    const got = new Float32Array(memory.buffer, y, M * N);
    let e = 0;
    let mx = 0;
    for (let m = 0; m < M; m++) for (let n = 0; n < N; n += 7) {
      let ref = 0;
      for (let k = 0; k < K; k++) ref += xv[m * K + k]! * wf[n * K + k]!;
      e = Math.max(e, Math.abs(ref - got[m * N + n]!));
      mx = Math.max(mx, Math.abs(ref));
    }
    err[s] = e / mx;
  }
  const us: Record<string, number[]> = { A: [], B: [] };
  for (let r = 0; r < runs + 1; r++) for (const s of ['A', 'B'] as const) {
    const f = prepare(builds[s], type);
    const c0 = process.cpuUsage();
    for (let i = 0; i < reps; i++) f();
    const c = process.cpuUsage(c0);
    if (r > 0) us[s]!.push((c.user + c.system) / reps);
  }
  const [a, b] = [median(us.A!), median(us.B!)];
  console.log(`| ${type} | ${a.toFixed(0)} | ${Math.min(...us.A!).toFixed(0)} | ${b.toFixed(0)} | ${Math.min(...us.B!).toFixed(0)} | ${(b / a).toFixed(2)}x | ${err.A!.toExponential(2)} | ${err.B!.toExponential(2)} |`);
}
console.log(`load average ${load0.toFixed(1)} -> ${loadavg()[0]!.toFixed(1)}`);
