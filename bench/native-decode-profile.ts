// Profile of a decode step on the native path (wasm backend with its native GEMM): per token, the
// wall and CPU time of the native calls (the fused blocks' call, the unembedding when it runs
// apart), of the wasm ops, and of the rest (JavaScript, token choice), with the final norm and
// unembedding in the blocks' call and apart, the two interleaved run by run in one process.
// Usage: npm run build && node dist/bench/native-decode-profile.js [--model FILE] [--threads 2] [--steps 64] [--runs 3]
import { existsSync } from 'node:fs';
import '../src/backends/index.js';
import { createWasmBackend } from '../src/backends/wasm/backend.js';
import type { OpDesc, View } from '../src/tensor/backend.js';
import { KVCache } from '../src/models/layers/kv-cache.js';
import { loadModel } from '../src/models/load.js';
import { tensor } from '../src/ops/creation.js';
import { greedyTokenSync } from '../src/models/generate.js';

const args = process.argv.slice(2);
const opt = (n: string, d: string) => { const i = args.indexOf(`--${n}`); return i >= 0 ? args[i + 1]! : d; };
const file = opt('model', 'bench/.cache/quant/gpt2s-Q8_0.gguf');
const threads = Number(opt('threads', '2'));
const steps = Number(opt('steps', '64'));
if (!existsSync(file)) throw new Error(`native-decode-profile: no model file '${file}' (npm run bench:quant makes bench/.cache/quant/)`);

const be = await createWasmBackend({ threads });
const { model } = await loadModel(file, { backend: be, memoryBudget: 0 });
const native = be.native;
if (!native.gemm) throw new Error(`native-decode-profile: no native GEMM (${native.reason})`);
const { gemm, policy: live } = native;

let cur = new Map<string, number>();
const calls = new Map<string, number>();
const cpu = () => { const u = process.cpuUsage(); return (u.user + u.system) / 1e3; };
const time = <T>(key: string, f: () => T): T => {
  const t0 = performance.now();
  const c0 = cpu();
  try { return f(); } finally {
    cur.set(key, (cur.get(key) ?? 0) + performance.now() - t0);
    cur.set(`${key} (CPU)`, (cur.get(`${key} (CPU)`) ?? 0) + cpu() - c0);
    calls.set(key, (calls.get(key) ?? 0) + 1);
  }
};
const g = gemm as unknown as Record<string, (...a: unknown[]) => unknown>;
for (const name of Object.getOwnPropertyNames(Object.getPrototypeOf(gemm)).filter((n) => n !== 'constructor' && typeof g[n] === 'function')) {
  const f = g[name]!.bind(gemm);
  g[name] = (...a: unknown[]) => time(`native ${name}`, () => f(...a));
}
const exec0 = be.exec.bind(be);
be.exec = (op: OpDesc, inputs: readonly View[], outputs: readonly View[]) => time(`wasm ${op.op}${'fn' in op ? ` ${String((op as { fn: unknown }).fn)}` : ''}`, () => exec0(op, inputs, outputs));

/** Modes compared, interleaved run by run: the policy's settings. */
const modes: [string, Partial<typeof live>][] = [['head in the call', { decodeHead: true }], ['head apart', { decodeHead: false }]];
const runs = Number(opt('runs', '3'));
const acc = new Map<string, Map<string, number[]>>(modes.map(([m]) => [m, new Map()]));
const callsOf = new Map<string, Map<string, number>>(modes.map(([m]) => [m, new Map()]));
for (let r = 0; r <= runs; r++) {
  for (const [mode, policy] of modes) {
    Object.assign(live, policy);
    const kv = new KVCache();
    let next = 1;
    for (let s = 0; s < steps; s++) {
      cur = new Map();
      calls.clear();
      const t0 = performance.now();
      const c0 = cpu();
      const t = tensor([next], [1, 1], 'i32', { backend: be });
      const logits = time('forward', () => model.forward(t, { cache: kv, logits: 'last' }));
      next = time('token choice', () => greedyTokenSync(logits));
      t.dispose();
      cur.set('step', performance.now() - t0);
      cur.set('step (CPU)', cpu() - c0);
      if (r === 0) continue; // warm-up run
      const a = acc.get(mode)!;
      for (const [k, v] of cur) (a.get(k) ?? a.set(k, []).get(k)!).push(v);
      const cm = callsOf.get(mode)!;
      for (const [k, v] of calls) cm.set(k, (cm.get(k) ?? 0) + v);
    }
    kv.dispose();
  }
}
const n = runs * steps;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0;
const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / n;
console.log(`native decode profile of ${file}, ${threads} threads, ${runs} runs of ${steps} steps per mode, interleaved (ms per token: median / mean over steps; calls per token)`);
for (const [mode] of modes) {
  const a = acc.get(mode)!;
  console.log(`\n${mode}\n| part | wall median | wall mean | CPU mean | calls |\n|---|---:|---:|---:|---:|`);
  for (const [k, v] of [...a].filter(([k]) => !k.endsWith('(CPU)')).sort((x, y) => mean(y[1]) - mean(x[1]))) {
    console.log(`| ${k} | ${median(v).toFixed(3)} | ${mean(v).toFixed(3)} | ${mean(a.get(`${k} (CPU)`) ?? []).toFixed(3)} | ${((callsOf.get(mode)!.get(k) ?? n) / n).toFixed(1)} |`);
  }
}
model.dispose();
be.dispose();
