// Benchmark: decode of a quantized GGUF with its one-row products on the wasm GEMV (the policy
// before: quantized products native from 4 rows) against the default policy (MatMulNBits on MLAS
// from 1M multiply-adds, decode included), the same file loaded twice in one process, steps
// interleaved (A B A B ...: a busy machine slows both alike). Prints median wall ms per token and
// the process's CPU ms per token (only one backend works at a time, so its CPU time is its own),
// and checks that both pick the same greedy tokens. The figures beside llama.cpp are bench/quant.ts.
// Usage: npm run build && node dist/bench/qdecode.js [--model bench/.cache/quant/gpt2s-Q8_0.gguf] [--threads 2] [--steps 32] [--rounds 5] [--json]
import { existsSync } from 'node:fs';
import '../src/backends/index.js';
import { createWasmBackend } from '../src/backends/wasm/backend.js';
import { KVCache } from '../src/models/layers/kv-cache.js';
import { loadModel } from '../src/models/load.js';
import type { CausalLM } from '../src/models/model.js';
import { tensor } from '../src/ops/creation.js';
import { reduce } from '../src/ops/reduce.js';

const args = process.argv.slice(2);
const opt = (n: string, d: string) => { const i = args.indexOf(`--${n}`); return i >= 0 ? args[i + 1]! : d; };
const files = opt('model', 'bench/.cache/quant/gpt2s-Q8_0.gguf,bench/.cache/quant/gpt2s-Q4_0.gguf,bench/.cache/quant/gpt2s-Q4_K_M.gguf').split(',');
const threads = Number(opt('threads', '2'));
const steps = Number(opt('steps', '32'));
const rounds = Number(opt('rounds', '5'));
const json = args.includes('--json');

const cpuMs = () => { const c = process.cpuUsage(); return (c.user + c.system) / 1e3; };
const median = (a: number[]) => { const s = [...a].sort((x, y) => x - y); return s[s.length >> 1]!; };

/** `steps` greedy decode steps from token 1; returns wall ms, CPU ms and the tokens. */
function decode(model: CausalLM): { wall: number; cpu: number; tokens: number[] } {
  const kv = new KVCache();
  const tokens: number[] = [];
  let next = 1;
  const c0 = cpuMs();
  const t0 = performance.now();
  for (let s = 0; s < steps; s++) {
    const t = tensor([next], [1, 1], 'i32', { backend: model.backend });
    const logits = model.forward(t, { cache: kv, logits: 'last' });
    const am = reduce('argmax', logits.reshape([-1]), 0);
    next = am.dataSync()[0]!;
    tokens.push(next);
    for (const x of [t, logits, am]) x.dispose();
  }
  const r = { wall: performance.now() - t0, cpu: cpuMs() - c0, tokens };
  kv.dispose();
  return r;
}

interface Row { model: string; variant: string; wall_ms_per_token: number; cpu_ms_per_token: number; same_tokens: boolean }
const rows: Row[] = [];
for (const file of files) {
  if (!existsSync(file)) throw new Error(`qdecode bench: no model file '${file}' (npm run bench:quant makes bench/.cache/quant/)`);
  const variants = [
    // the policy before: quantized products native only from 4 activation rows (prefill)
    { name: 'wasm GEMV', backend: await createWasmBackend({ threads, nativeGemmPolicy: { minQuantRows: 4, minQuantMacs: 1 << 21 } }) },
    { name: 'MatMulNBits', backend: await createWasmBackend({ threads }) },
  ].map((v) => ({ ...v, model: undefined as unknown as CausalLM, wall: [] as number[], cpu: [] as number[], tokens: [] as number[] }));
  for (const v of variants) v.model = (await loadModel(file, { backend: v.backend })).model;
  for (const v of variants) decode(v.model); // warm-up: packs the native weights
  for (let r = 0; r < rounds; r++) {
    for (const v of variants) {
      const d = decode(v.model);
      v.wall.push(d.wall / steps);
      v.cpu.push(d.cpu / steps);
      v.tokens = d.tokens;
    }
  }
  const same = variants[0]!.tokens.join() === variants[1]!.tokens.join();
  const name = file.split('/').pop()!;
  for (const v of variants) rows.push({ model: name, variant: v.name, wall_ms_per_token: median(v.wall), cpu_ms_per_token: median(v.cpu), same_tokens: same });
  for (const v of variants) { v.model.dispose?.(); v.backend.dispose(); }
}
if (json) for (const r of rows) console.log(JSON.stringify({ bench: 'qdecode', threads, steps, rounds, ...r }));
else {
  console.log(`decode, ${threads} threads, ${steps} steps from one token, median of ${rounds} interleaved rounds`);
  console.log('| model | one-row products on | ms/token | CPU ms/token | vs wasm GEMV (CPU) | same greedy tokens |\n|---|---|---:|---:|---:|---|');
  for (let i = 0; i < rows.length; i++) {
    const r = rows[i]!;
    const base = rows[i - (i % 2)]!;
    console.log(`| ${r.model} | ${r.variant} | ${r.wall_ms_per_token.toFixed(2)} | ${r.cpu_ms_per_token.toFixed(2)} | ${(r.cpu_ms_per_token / base.cpu_ms_per_token).toFixed(2)}x | ${r.same_tokens ? 'yes' : 'no'} |`);
  }
}
