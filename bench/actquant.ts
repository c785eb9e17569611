// Benchmark: actlab's own packed weight formats (int8 per channel, int4 groups) on the wasm
// backend, beside actlab's f32 weights and its GGUF Q8_0 / Q4_0 kernels, on one GPT-2-small-shaped
// model (random weights, 12 layers, d 768), same thread count, interleaved runs. The int8 and
// int4 kernels are integer GEMV/GEMM: the activation rounded to int8 per 32 values, i8×i8
// (or i8×u4) dot products — W8A8 / W4A8 arithmetic — so this is also the bench of int8×int8
// products against f32. Metrics: prefill tokens/s (T = 128, logits of the last position) and
// decode ms/token (greedy steps from one token), medians of --runs.
// Usage: npm run bench:actquant [-- --json] [--threads 2] [--runs 3] [--steps 32] [--layers 12]
import { existsSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import '../src/backends/index.js';
import { createWasmBackend } from '../src/backends/wasm/backend.js';
import { convertToGguf } from '../src/formats/gguf-convert.js';
import { tensorWeights } from '../src/formats/weight-source.js';
import { NodeFileStore } from '../src/io/node/file-store.js';
import { KVCache } from '../src/models/layers/kv-cache.js';
import { loadModel } from '../src/models/load.js';
import type { CausalLM } from '../src/models/model.js';
import { randomModel } from '../src/models/random.js';
import { tensor } from '../src/ops/creation.js';
import { reduce } from '../src/ops/reduce.js';
import { packTensors, readAllF32, writePackedCheckpoint } from '../src/quantize/write.js';
import type { ActlabQuantType } from '../src/quant/formats.js';

const args = process.argv.slice(2);
const opt = (n: string, d: string) => { const i = args.indexOf(`--${n}`); return i >= 0 ? args[i + 1]! : d; };
const json = args.includes('--json');
const threads = Number(opt('threads', '2'));
const runs = Number(opt('runs', '3'));
const steps = Number(opt('steps', '32'));
const layers = Number(opt('layers', '12'));
const T = 128;
const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const cache = join(root, 'bench', '.cache', 'actquant');
mkdirSync(cache, { recursive: true });
const CONFIG = { model_type: 'gpt2', n_embd: 768, n_head: 12, n_layer: layers, n_positions: 1024, vocab_size: 50257, n_inner: 3072, layer_norm_epsilon: 1e-5 };
const PACKED: ActlabQuantType[] = ['int8', 'int4_g32', 'int4_g128', 'int4a_g32'];

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const ids = (n: number, vocab: number, seed: number) => { let x = seed; return Array.from({ length: n }, () => (x = (x * 1103515245 + 12345) % 2147483648) % vocab); };

/** The f32 folder, one packed folder per format, and Q8_0/Q4_0 GGUF files of one random model. */
async function makeModels(): Promise<[string, string][]> {
  const tag = `gpt2s-${layers}`;
  const out: [string, string][] = [['f32', join(cache, `${tag}-F32.gguf`)], ['Q8_0', join(cache, `${tag}-Q8_0.gguf`)], ['Q4_0', join(cache, `${tag}-Q4_0.gguf`)], ...PACKED.map((t) => [t, join(cache, `${tag}-${t}`)] as [string, string])];
  if (out.every(([, p]) => existsSync(p))) return out;
  const backend = await createWasmBackend({ threads });
  const model = randomModel(CONFIG, backend, { seed: 0, std: 0.02 });
  const params = new Map([...model.parameters()].filter(([n]) => !n.startsWith('lm_head')).map(([n, t]) => [n.startsWith('transformer.') ? n : `transformer.${n}`, t]));
  const source = tensorWeights(params);
  const store = new NodeFileStore();
  for (const [type, path] of out.slice(0, 3)) {
    if (!existsSync(path)) await convertToGguf(store, path, source, CONFIG, backend, { type: type === 'f32' ? 'F32' : type as 'Q8_0' | 'Q4_0', metadata: { 'general.name': 'gpt2-small-shaped (random)' } });
  }
  const all = await readAllF32(source, backend);
  for (const [type, dir] of out.slice(3)) {
    if (existsSync(dir)) continue;
    // absmax ranges: speed does not depend on the range setting
    await writePackedCheckpoint(store, dir, CONFIG, packTensors(all, CONFIG, { choose: () => type as ActlabQuantType, clip: 'absmax' }));
  }
  model.dispose();
  backend.dispose();
  return out;
}

function bench(model: CausalLM): { prefill: number; decode: number } {
  const b = model.backend;
  const x = tensor(ids(T, model.dims.vocabSize, 3), [1, T], 'i32', { backend: b });
  const pre: number[] = [];
  for (let r = 0; r <= runs; r++) {
    const t0 = performance.now();
    model.forward(x, { logits: 'last' }).dispose();
    if (r > 0) pre.push(performance.now() - t0);
  }
  x.dispose();
  const dec: number[] = [];
  for (let r = 0; r <= runs; r++) {
    const kv = new KVCache();
    let next = 1;
    const t0 = performance.now();
    for (let s = 0; s < steps; s++) {
      const t = tensor([next], [1, 1], 'i32', { backend: b });
      const logits = model.forward(t, { cache: kv, logits: 'last' });
      const am = reduce('argmax', logits.reshape([-1]), 0);
      next = am.dataSync()[0]!;
      for (const z of [t, logits, am]) z.dispose();
    }
    if (r > 0) dec.push((performance.now() - t0) / steps);
    kv.dispose();
  }
  return { prefill: T / (median(pre) / 1000), decode: median(dec) };
}

const models = await makeModels();
const backend = await createWasmBackend({ threads });
const rows: { type: string; weights_mib: number; prefill_tok_s: number; decode_ms_per_token: number; decode_vs_f32: number }[] = [];
let f32Decode = NaN;
for (const [type, path] of models) {
  const m = await loadModel(path, { backend });
  const r = bench(m.model);
  if (type === 'f32') f32Decode = r.decode;
  rows.push({ type, weights_mib: Math.round(m.model.weightMemory().bytes / 2 ** 20 * 10) / 10, prefill_tok_s: Math.round(r.prefill * 10) / 10, decode_ms_per_token: Math.round(r.decode * 100) / 100, decode_vs_f32: Math.round((r.decode / f32Decode) * 100) / 100 });
  m.model.dispose();
}
backend.dispose();
if (json) console.log(JSON.stringify({ date: new Date().toISOString(), threads, runs, steps, layers, relaxed: backend.features?.relaxed, rows }));
else {
  console.log(`GPT-2-small-shaped (${layers} layers, random weights), wasm ${threads} threads; prefill T=${T}, decode ${steps} steps, median of ${runs}`);
  console.log('| weights | resident MiB | prefill tok/s | decode ms/token | decode / f32 |');
  console.log('|---|---:|---:|---:|---:|');
  for (const r of rows) console.log(`| ${r.type} | ${r.weights_mib} | ${r.prefill_tok_s} | ${r.decode_ms_per_token} | ${r.decode_vs_f32} |`);
}
