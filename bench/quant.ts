// Benchmark: quantized GGUF models on actlab's wasm backend, weights kept in their blocks, beside
// llama.cpp's llama-bench on the very same files with the same thread count, interleaved (each
// file: actlab, then llama.cpp) so that a busy machine slows both alike. Models: a GPT-2-small-
// shaped model (random weights, GPT-2's vocabulary; made once into bench/.cache/quant) and
// stories260K (../shared/data). Types: F32, Q8_0, Q4_0 and, where rows hold 256-value blocks,
// Q4_K_M, all made by llama-quantize. Metrics: prefill tokens/s (T = 128, logits of the last
// position, as llama-bench's pp128) and decode ms/token (64 greedy steps from one token, as tg64).
// With --cpu, prefill is also measured in CPU ms per T-token forward (actlab: the process's CPU time
// over the runs; llama.cpp: its child process's CPU time of a (1 + runs)-repetition pp run minus a
// 1-repetition one), and decode in CPU time per token for both (actlab: the process's CPU
// time over the decode runs; llama.cpp: its child process's CPU time between a 16- and a (16 +
// steps)-token tg run): on a machine shared with other work, with --threads 1, that is each
// implementation's own work per token, which the wall clock no longer shows.
// Where a native GEMM runs decode steps as one call (src/models/layers/fused-decode.ts), decode is
// also measured with each step's blocks op by op (`decode (op by op)`), the same model, its runs
// interleaved with the fused ones.
// Usage: npm run bench:quant [-- --json] [--threads 2] [--runs 3] [--quick] [--cpu] [--only gpt2s|stories260K]
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import '../src/backends/index.js';
import { createWasmBackend } from '../src/backends/wasm/backend.js';
import { convertToGguf } from '../src/formats/gguf-convert.js';
import { GgufFile } from '../src/formats/gguf.js';
import { GGUF_VALUE, tokenizerMetadata } from '../src/formats/gguf-write.js';
import { peerLibDir } from './llama-peer.js';
import { tensorWeights } from '../src/formats/weight-source.js';
import { NodeFileSource } from '../src/io/node/file-source.js';
import { NodeFileStore } from '../src/io/node/file-store.js';
import { KVCache } from '../src/models/layers/kv-cache.js';
import { loadModel } from '../src/models/load.js';
import type { CausalLM } from '../src/models/model.js';
import { randomModel } from '../src/models/random.js';
import { tensor } from '../src/ops/creation.js';
import { greedyTokenSync } from '../src/models/generate.js';

const args = process.argv.slice(2);
const flag = (n: string) => args.includes(`--${n}`);
const opt = (n: string, d: string) => { const i = args.indexOf(`--${n}`); return i >= 0 ? args[i + 1]! : d; };
const threads = Number(opt('threads', '2'));
const runs = Number(opt('runs', flag('quick') ? '2' : '3'));
const steps = flag('quick') ? 16 : 64;
const T = 128;
const json = flag('json');
const cpu = flag('cpu');
const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const shared = join(root, '..', 'shared');
const peers = join(shared, 'peers', 'llama.cpp');
const cache = join(root, 'bench', '.cache', 'quant');
mkdirSync(cache, { recursive: true });

const GPT2_SMALL = { model_type: 'gpt2', n_embd: 768, n_head: 12, n_layer: 12, n_positions: 1024, vocab_size: 50257, n_inner: 3072 };

const haveLlama = existsSync(join(peers, 'llama-bench'));
const env = haveLlama ? { ...process.env, LD_LIBRARY_PATH: peerLibDir(peers, join(cache, 'llama-lib')) } : process.env;

function llamaQuantize(src: string, dst: string, type: string, extra: string[] = []): void {
  if (existsSync(dst)) return;
  execFileSync(join(peers, 'llama-quantize'), [...extra, src, dst, type, String(threads)], { env, stdio: 'ignore' });
}

/** The GPT-2-small-shaped F32 GGUF (random weights N(0, 0.02), GPT-2's tokenizer), made once. */
async function gpt2SmallF32(): Promise<string> {
  const path = join(cache, 'gpt2s-F32.gguf');
  if (existsSync(path)) return path;
  const vocab = await GgufFile.open(await NodeFileSource.open(join(shared, 'data', 'vocab-gguf', 'ggml-vocab-gpt-2.gguf')));
  const tok = tokenizerMetadata(vocab.metadata as Record<string, unknown>);
  await vocab.close();
  const backend = await createWasmBackend({ threads });
  const model = randomModel(GPT2_SMALL, backend, { seed: 0, std: 0.02 });
  // HF names (transformers' GPT2LMHeadModel keeps the blocks under `transformer.`); the unembedding
  // is tied to wte, as in GPT-2, so no lm_head.
  const params = new Map([...model.parameters()].filter(([n]) => !n.startsWith('lm_head')).map(([n, t]) => [n.startsWith('transformer.') ? n : `transformer.${n}`, t]));
  const source = tensorWeights(params);
  await convertToGguf(new NodeFileStore(), path, source, { ...GPT2_SMALL, layer_norm_epsilon: 1e-5 }, backend, {
    type: 'F32', metadata: { 'general.name': 'gpt2-small-shaped (random)', ...tok, 'tokenizer.ggml.model': { type: GGUF_VALUE.STRING, value: 'gpt2' } },
  });
  model.dispose();
  backend.dispose();
  return path;
}

interface Row { model: string; type: string; impl: string; prefill_tok_s: number; prefill_cpu_ms?: number; decode_ms_per_token: number; decode_op_by_op_ms_per_token?: number; decode_cpu_ms_per_token?: number; decode_op_by_op_cpu_ms_per_token?: number; resident_mib?: number; native_packed_mib?: number; file_mib: number }
const rows: Row[] = [];
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const round = (x: number, d = 2) => Math.round(x * 10 ** d) / 10 ** d;
const mib = (b: number) => round(b / 2 ** 20, 1);

function ids(n: number, vocab: number, seed: number): number[] {
  let x = seed;
  return Array.from({ length: n }, () => (x = (x * 1103515245 + 12345) % 2147483648) % vocab);
}

/** CPU ms of this process (all its threads). */
const cpuMs = () => { const u = process.cpuUsage(); return (u.user + u.system) / 1e3; };

/** Decode steps each as one native call (the policy's default), or op by op: the same model, the same run. */
function setNativeDecode(on: boolean): void {
  if (backend.native.gemm) backend.native.policy.decode = on;
}

function benchActlab(model: CausalLM): { prefill: number; prefillCpu: number; decode: number; decodeCpu: number; decodeOps?: { ms: number; cpu: number } } {
  const b = model.backend;
  const V = model.dims.vocabSize;
  const x = tensor(ids(T, V, 3), [1, T], 'i32', { backend: b });
  const pre: number[] = [];
  let preCpu = 0;
  for (let r = 0; r < runs + 1; r++) {
    const c0 = cpuMs();
    const t0 = performance.now();
    model.forward(x, { logits: 'last' }).dispose();
    if (r > 0) pre.push(performance.now() - t0);
    if (r > 0) preCpu += cpuMs() - c0;
  }
  x.dispose();
  // decode with each step's blocks in one native call, and (where the native GEMM runs them)
  // op by op, the runs interleaved so that a change in the machine's load reaches both alike
  const ab = backend.native.gemm ? [true, false] : [true];
  const dec = new Map(ab.map((on) => [on, { ms: [] as number[], cpu: 0 }]));
  try {
    for (let r = 0; r < runs + 1; r++) {
      for (const on of ab) {
        setNativeDecode(on);
        const kv = new KVCache();
        let next = 1;
        const c0 = cpuMs();
        const t0 = performance.now();
        for (let s = 0; s < steps; s++) {
          const t = tensor([next], [1, 1], 'i32', { backend: b });
          next = greedyTokenSync(model.forward(t, { cache: kv, logits: 'last' }));
          t.dispose();
        }
        const d = dec.get(on)!;
        if (r > 0) d.ms.push((performance.now() - t0) / steps);
        if (r > 0) d.cpu += cpuMs() - c0;
        kv.dispose();
      }
    }
  } finally {
    setNativeDecode(true);
  }
  const fused = dec.get(true)!;
  const ops = dec.get(false);
  return {
    prefill: T / (median(pre) / 1000), prefillCpu: preCpu / runs, decode: median(fused.ms), decodeCpu: fused.cpu / (runs * steps),
    decodeOps: ops && { ms: median(ops.ms), cpu: ops.cpu / (runs * steps) },
  };
}

/** CPU ms used by this process's finished children (Linux: /proc/self/stat cutime + cstime, in clock ticks of 10 ms). */
function childCpuMs(): number {
  const stat = readFileSync('/proc/self/stat', 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[13]) + Number(f[14])) * 10;
}

/** llama.cpp's decode CPU ms/token: the CPU time of a (16 + steps)-token tg run minus a 16-token one. */
function llamaDecodeCpu(file: string): number | undefined {
  const cost = (n: number): number | undefined => {
    const c0 = childCpuMs();
    const r = spawnSync(join(peers, 'llama-bench'), ['-m', file, '-t', String(threads), '-p', '0', '-n', String(n), '-r', String(runs), '-o', 'json'], { env, encoding: 'utf8', maxBuffer: 1 << 24 });
    return r.status === 0 ? childCpuMs() - c0 : undefined;
  };
  const a = cost(16);
  const b = cost(16 + steps);
  return a === undefined || b === undefined ? undefined : (b - a) / (steps * runs);
}

/** llama.cpp's CPU ms per T-token prefill: a pp run with runs + 1 repetitions minus one with 1 (same load and warm-up). */
function llamaPrefillCpu(file: string): number | undefined {
  const cost = (reps: number): number | undefined => {
    const c0 = childCpuMs();
    const r = spawnSync(join(peers, 'llama-bench'), ['-m', file, '-t', String(threads), '-p', String(T), '-n', '0', '-r', String(reps), '-o', 'json'], { env, encoding: 'utf8', maxBuffer: 1 << 24 });
    return r.status === 0 ? childCpuMs() - c0 : undefined;
  };
  const a = cost(1);
  const b = cost(1 + runs);
  return a === undefined || b === undefined ? undefined : (b - a) / runs;
}

function benchLlama(file: string): { prefill: number; prefillCpu?: number; decode: number; decodeCpu?: number } | null {
  if (!haveLlama) return null;
  const r = spawnSync(join(peers, 'llama-bench'), ['-m', file, '-t', String(threads), '-p', String(T), '-n', String(steps), '-r', String(runs), '-o', 'json'], { env, encoding: 'utf8', maxBuffer: 1 << 24 });
  if (r.status !== 0) { console.error(`llama-bench failed on ${file}: ${r.stderr.split('\n').slice(-3).join(' ')}`); return null; }
  const out = JSON.parse(r.stdout) as { n_prompt: number; n_gen: number; avg_ts: number }[];
  const pp = out.find((e) => e.n_prompt === T && e.n_gen === 0)!;
  const tg = out.find((e) => e.n_gen === steps && e.n_prompt === 0)!;
  return { prefill: pp.avg_ts, prefillCpu: cpu ? llamaPrefillCpu(file) : undefined, decode: 1000 / tg.avg_ts, decodeCpu: cpu ? llamaDecodeCpu(file) : undefined };
}

const backend = await createWasmBackend({ threads });
const nativeName = String(backend.info().nativeGemm);
const models: [string, () => Promise<string>, string[], string[]][] = [
  ['gpt2s', gpt2SmallF32, ['Q8_0', 'Q4_0', 'Q4_K_M'], []],
  // stories260K's MLP rows are 172 wide: no 32-block fits, llama.cpp keeps ffn_down F16 (as actlab's
  // loader then holds it in f32); rows of 64 hold no 256-value K-quant block, so no Q4_K file.
  ['stories260K', async () => join(shared, 'data', 'stories260K-gguf', 'stories260K.gguf'), ['Q8_0', 'Q4_0'], ['--tensor-type', 'ffn_down=f16']],
];
for (const [name, f32File, types, extra] of models) {
  if (opt('only', name) !== name) continue;
  const src = await f32File();
  const files: [string, string][] = [['F32', src]];
  for (const t of types) {
    const dst = join(cache, `${name}-${t}.gguf`);
    if (haveLlama) llamaQuantize(src, dst, t, extra);
    if (existsSync(dst)) files.push([t, dst]);
  }
  for (const [type, file] of files) {
    const fileMib = mib(statSync(file).size);
    const m = await loadModel(file, { backend, memoryBudget: 0 });
    const mem = m.model.weightMemory();
    const a = benchActlab(m.model);
    // what the native GEMM holds for this model (ORT's packed copies of its weights), beside the wasm copy
    const nativeMib = Number(backend.info().nativeGemmPackedMB ?? 0);
    m.model.dispose();
    rows.push({ model: name, type, impl: `actlab-wasm ${threads}t`, prefill_tok_s: round(a.prefill, 1), ...(cpu ? { prefill_cpu_ms: round(a.prefillCpu, 1) } : {}), decode_ms_per_token: round(a.decode), ...(a.decodeOps ? { decode_op_by_op_ms_per_token: round(a.decodeOps.ms) } : {}), ...(cpu ? { decode_cpu_ms_per_token: round(a.decodeCpu) } : {}), ...(cpu && a.decodeOps ? { decode_op_by_op_cpu_ms_per_token: round(a.decodeOps.cpu) } : {}), resident_mib: mib(mem.bytes), native_packed_mib: nativeMib, file_mib: fileMib });
    const l = benchLlama(file);
    if (l) rows.push({ model: name, type, impl: `llama.cpp ${threads}t`, prefill_tok_s: round(l.prefill, 1), ...(l.prefillCpu !== undefined ? { prefill_cpu_ms: round(l.prefillCpu, 1) } : {}), decode_ms_per_token: round(l.decode), ...(l.decodeCpu !== undefined ? { decode_cpu_ms_per_token: round(l.decodeCpu) } : {}), file_mib: fileMib });
  }
}
backend.dispose();

const find = (model: string, type: string, impl: string) => rows.find((r) => r.model === model && r.type === type && r.impl.startsWith(impl));
if (json) {
  for (const r of rows) console.log(JSON.stringify({ bench: 'quant', ...r }));
} else {
  console.log(`quantized GGUF, batch 1, ${threads} threads, median of ${runs} runs; prefill T=${T} (last-position logits), decode ${steps} steps from one token`);
  console.log(`native GEMM: ${nativeName}; native MiB: the weights' packed copies the native GEMM holds besides the wasm copy (resident MiB)`);
  console.log('decode (op by op): the same model with each step\'s blocks run op by op, measured in the same run');
  console.log(`| model | type | impl | prefill tok/s |${cpu ? ` prefill CPU ms (T=${T}) |` : ''} decode ms/token | decode (op by op) |${cpu ? ' decode CPU ms/token | decode CPU (op by op) |' : ''} resident MiB | native MiB | file MiB |\n|---|---|---|---|${cpu ? '---|' : ''}---|---|${cpu ? '---|---|' : ''}---|---|---|`);
  for (const r of rows) console.log(`| ${r.model} | ${r.type} | ${r.impl} | ${r.prefill_tok_s} |${cpu ? ` ${r.prefill_cpu_ms ?? ''} |` : ''} ${r.decode_ms_per_token} | ${r.decode_op_by_op_ms_per_token ?? ''} |${cpu ? ` ${r.decode_cpu_ms_per_token ?? ''} | ${r.decode_op_by_op_cpu_ms_per_token ?? ''} |` : ''} ${r.resident_mib ?? ''} | ${r.native_packed_mib ?? ''} | ${r.file_mib} |`);
  console.log(`\n| model | type | decode time vs actlab F32 | decode speed vs llama.cpp | prefill speed vs llama.cpp |${cpu ? ' prefill CPU vs llama.cpp (speed) | decode CPU vs actlab F32 | decode CPU vs llama.cpp (speed) |' : ''}\n|---|---|---|---|---|${cpu ? '---|---|---|' : ''}`);
  for (const r of rows.filter((x) => x.impl.startsWith('actlab'))) {
    const f32 = find(r.model, 'F32', 'actlab')!;
    const l = find(r.model, r.type, 'llama.cpp');
    const cpuCols = !cpu ? '' : ` ${l?.prefill_cpu_ms ? `${round(l.prefill_cpu_ms / r.prefill_cpu_ms!)}x` : ''} | ${round(r.decode_cpu_ms_per_token! / f32.decode_cpu_ms_per_token!)}x | ${l?.decode_cpu_ms_per_token ? `${round(l.decode_cpu_ms_per_token / r.decode_cpu_ms_per_token!)}x` : ''} |`;
    console.log(`| ${r.model} | ${r.type} | ${round(r.decode_ms_per_token / f32.decode_ms_per_token)}x | ${l ? `${round(l.decode_ms_per_token / r.decode_ms_per_token)}x` : ''} | ${l ? `${round(r.prefill_tok_s / l.prefill_tok_s)}x` : ''} |${cpuCols}`);
  }
}
