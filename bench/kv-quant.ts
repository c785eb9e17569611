// Benchmark: the quantized KV cache (src/models/kvquant) on actlab's wasm backend. Per model, the
// KVQuant ablation (each component switched off in turn: per-channel keys, pre-RoPE keys, nuq,
// 1% outliers, the attention sink) at 4, 3 and 2 bits beside llama.cpp's cache types q8_0 and
// q4_0 (ggml's block quantizers, bit for bit): perplexity, KL(f32 cache ‖ quantized cache) and
// top-1 agreement over chunks scored as llama-perplexity scores them, and the cache's bytes per
// token against f32. Then decode speed at context 512 (f32 cache vs packed caches on stories260K
// and on a llama shape with 64-wide heads, runs interleaved so a busy machine slows all alike), and the peer: llama-perplexity
// --kl-divergence with -ctk/-ctv q8_0 and q4_0 on the same GGUF beside actlab's eval of that file.
// Models: stories260K (../shared/data; eval text sampled from the model itself at temperature 1,
// calibration text from another seed), the induction organism (models/organisms/induction; eval
// on held-out [BOS] r r sequences), shakespeare-char (models/shakespeare-char, trained by actlab;
// eval on tinyshakespeare's held-out last 10%), and for the peer a llama-shaped GGUF with 32-wide heads
// (random weights, stories260K's tokenizer; llama.cpp's quantized caches need head sizes that are
// a multiple of 32, stories260K's are 8) evaluated on tinyshakespeare.
// Then the attention kernel alone on a cold cache (the f32 attention op against each packed cache).
// Usage: npm run bench:kv [-- --json] [--threads 2] [--quick] [--only stories260K|induction|shakespeare-char|speed|kernel|peer]
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import '../src/backends/index.js';
import { createWasmBackend } from '../src/backends/wasm/backend.js';
import { convertToGguf } from '../src/formats/gguf-convert.js';
import { GgufFile } from '../src/formats/gguf.js';
import { tokenizerMetadata } from '../src/formats/gguf-write.js';
import { peerLibDir } from './llama-peer.js';
import { KERNEL_SHAPE, kernelCases } from './kv-kernel-cases.js';
import { tensorWeights } from '../src/formats/weight-source.js';
import { NodeFileSource } from '../src/io/node/file-source.js';
import { NodeFileStore } from '../src/io/node/file-store.js';
import { collectKV, fitKV, type KVStats } from '../src/kvquant/calibrate.js';
import { resolveKVSpec, kvSpecLabel, type KVCacheSpec } from '../src/models/kvquant/spec.js';
import { KVCacheQuant } from '../src/models/kvquant/cache.js';
import { attention } from '../src/ops/nn.js';
import { tidy } from '../src/tensor/engine.js';
import { evaluateLM } from '../src/models/evaluate.js';
import { generate } from '../src/models/generate.js';
import { loadModel } from '../src/models/load.js';
import type { CausalLM } from '../src/models/model.js';
import { randomModel } from '../src/models/random.js';
import { inductionData, RECIPES } from '../src/organisms/index.js';

const args = process.argv.slice(2);
const flag = (n: string) => args.includes(`--${n}`);
const opt = (n: string, d: string) => { const i = args.indexOf(`--${n}`); return i >= 0 ? args[i + 1]! : d; };
const threads = Number(opt('threads', '2'));
const quick = flag('quick');
const only = opt('only', '');
const json = flag('json');
const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const shared = join(root, '..', 'shared');
const peers = join(shared, 'peers', 'llama.cpp');
const cacheDir = join(root, 'bench', '.cache', 'kv');
mkdirSync(cacheDir, { recursive: true });
const log = (s: string) => { if (!json) console.log(s); else process.stderr.write(s + '\n'); };
const round = (x: number, d = 4) => (Number.isFinite(x) ? Math.round(x * 10 ** d) / 10 ** d : x);

const backend = await createWasmBackend({ threads });

interface EvalRow { model: string; cache: string; bits: number | null; perplexity: number; kl: number; top1: number; bytes_per_token: number; ratio_to_f32: number; exact_share: number }
const evalRows: EvalRow[] = [];

/** The ablation: the full scheme, then each component off, at 4/3/2 bits; llama.cpp's types first. */
function variants(rotary: boolean): KVCacheSpec[] {
  const out: KVCacheSpec[] = [{ type: 'q8_0' }, { type: 'q4_0' }];
  for (const bits of [4, 3, 2]) {
    out.push({ type: 'kvquant', bits });
    out.push({ type: 'kvquant', bits, keys: 'per-token' });
    if (rotary) out.push({ type: 'kvquant', bits, preRope: false });
    out.push({ type: 'kvquant', bits, nuq: false });
    out.push({ type: 'kvquant', bits, outliers: 0 });
    out.push({ type: 'kvquant', bits, sink: false });
  }
  if (quick) return out.filter((s) => s.type !== 'kvquant' || s.bits === 4);
  return out;
}

function evalTable(name: string, model: CausalLM, ids: number[], stats: KVStats, ctx: number, chunks: number): void {
  const ref = evaluateLM(model, ids, { ctx, maxChunks: chunks });
  log(`\n${name}: ${chunks} chunks of ${ctx} tokens, second halves scored; f32 cache perplexity ${ref.perplexity.toFixed(4)}; calibration ${stats.tokens} tokens`);
  log('| cache | perplexity | KL(f32 ‖ cache) | top-1 | bytes/token | × f32 | exact |');
  log('|---|---|---|---|---|---|---|');
  for (const spec of variants(stats.rotary)) {
    const r = resolveKVSpec(spec);
    const s: KVCacheSpec = r.type === 'kvquant' ? { ...spec, calibration: fitKV(stats, r) } : spec;
    const e = evaluateLM(model, ids, { ctx, maxChunks: chunks, ref: model, kvCache: s });
    const m = e.kvMemory!;
    const row: EvalRow = {
      model: name, cache: kvSpecLabel(spec), bits: r.type === 'kvquant' ? r.bits : null, perplexity: round(e.perplexity), kl: round(e.kl!, 6),
      top1: round(e.top1!), bytes_per_token: round(m.bytesPerToken, 1), ratio_to_f32: round(m.bytesPerToken / m.f32BytesPerToken, 3), exact_share: round(m.sparseShare, 4),
    };
    evalRows.push(row);
    log(`| ${row.cache} | ${row.perplexity.toFixed(4)} | ${row.kl.toExponential(3)} | ${(100 * row.top1).toFixed(2)}% | ${row.bytes_per_token} | ${row.ratio_to_f32} | ${(100 * row.exact_share).toFixed(2)}% |`);
  }
}

/** Token ids sampled from the model (temperature 1) from BOS until `n` tokens. */
function sample(model: CausalLM, n: number, seed: number): number[] {
  const ids: number[] = [];
  for (let s = seed; ids.length < n; s++) {
    const r = generate(model, [[1]], { maxNewTokens: Math.min(model.dims.nCtx - 1, 400), temperature: 1, seed: s, eosTokenIds: [2] });
    ids.push(...r.ids[0]!);
  }
  return ids.slice(0, n);
}

// ---- stories260K ------------------------------------------------------------------------------
const storiesBin = join(shared, 'data', 'stories260K', 'stories260K.bin');
const storiesTok = join(shared, 'data', 'stories260K', 'tok512.bin');
let stories: CausalLM | undefined;
if ((!only || only === 'stories260K' || only === 'speed') && existsSync(storiesBin)) {
  stories = (await loadModel(storiesBin, { backend, tokenizerPath: storiesTok })).model;
}
if (stories && (!only || only === 'stories260K')) {
  const ctx = 256, chunks = quick ? 4 : 8;
  const evalIds = sample(stories, ctx * chunks, 1000);
  const calIds = sample(stories, 2048, 2000);
  const stats = collectKV(stories, calIds, { ctx: 256 });
  evalTable('stories260K', stories, evalIds, stats, ctx, chunks);
}

// ---- induction organism -----------------------------------------------------------------------
if (!only || only === 'induction') {
  const { model } = await loadModel(join(root, 'models', 'organisms', 'induction'), { backend });
  const seqLen = model.dims.nCtx; // [BOS] r r = 49 tokens
  const n = quick ? 16 : 64;
  const evalIds = inductionData(n, RECIPES.induction.dataSeed + 7).flat();
  const calIds = inductionData(64, RECIPES.induction.dataSeed + 9).flat();
  const stats = collectKV(model, calIds, { ctx: seqLen });
  evalTable('induction organism', model, evalIds, stats, seqLen, n);
  model.dispose();
}

// ---- shakespeare-char (trained by actlab) -------------------------------------------------------
// Heads of 64 and learned positions (no RoPE: no pre-/post-RoPE row). Eval on chunks of the held-out
// last 10% of tinyshakespeare (nanoGPT's split), calibration on the first 16384 training characters.
const shakespeareText = join(shared, 'data', 'tinyshakespeare', 'input.txt');
if ((!only || only === 'shakespeare-char') && existsSync(shakespeareText)) {
  const { model, tokenizer } = await loadModel(join(root, 'models', 'shakespeare-char'), { backend });
  const text = readFileSync(shakespeareText, 'utf8');
  const split = Math.floor(text.length * 0.9);
  const ctx = 256, chunks = quick ? 4 : 8;
  const evalIds = tokenizer!.encode(text.slice(split)).slice(0, ctx * chunks);
  const calIds = tokenizer!.encode(text.slice(0, 16384));
  const stats = collectKV(model, calIds, { ctx });
  evalTable('shakespeare-char', model, evalIds, stats, ctx, chunks);
  model.dispose();
}

// ---- decode speed at context 512 --------------------------------------------------------------
// Greedy decode from a 448-token prompt to context 512 with each cache, runs interleaved (f32, then
// each packed cache, repeated) so that a busy machine slows all alike. Each step is timed alone;
// the table gives the median step and the 10th percentile (the steps least disturbed by other work
// on a shared machine), each against the f32 cache's same statistic, and with one thread the
// median of each step's process CPU time (which time slices given to other work do not inflate). Models: stories260K (heads of
// 8) and a llama shape where the cache weighs more (d_model 1024, 16 heads of 64, random weights).
interface SpeedRow { model: string; cache: string; decode_ms_per_token: number; p10_ms: number; ratio_median: number; ratio_p10: number; cpu_ms: number | null; ratio_cpu: number | null; context: number; bytes_per_token: number; ratio_to_f32: number }
const speedRows: SpeedRow[] = [];
const LLAMA_1024 = {
  model_type: 'llama', hidden_size: 1024, num_attention_heads: 16, num_key_value_heads: 16, num_hidden_layers: 4, intermediate_size: 2816,
  vocab_size: 512, max_position_embeddings: 1024, rope_theta: 10000, rms_norm_eps: 1e-5, tie_word_embeddings: false,
};

function speedTable(name: string, model: CausalLM, prompt: number[], calIds: number[], steps: number, runs: number): void {
  const stats = collectKV(model, calIds, { ctx: 256 });
  const kvq = (s: KVCacheSpec): KVCacheSpec => ({ ...s, calibration: fitKV(stats, resolveKVSpec(s)) });
  const kinds: [string, KVCacheSpec | undefined][] = [
    ['f32', undefined], ['q8_0', { type: 'q8_0' }], ['q4_0', { type: 'q4_0' }],
    ['kvquant-4', kvq({ type: 'kvquant', bits: 4 })],
    ['kvquant-4 (uniform, no outliers, no sink)', kvq({ type: 'kvquant', bits: 4, nuq: false, outliers: 0, sink: false })],
  ];
  const steps_ = new Map<string, number[]>(), cpuSteps = new Map<string, number[]>();
  const cpuMs = () => { const u = process.cpuUsage(); return (u.user + u.system) / 1000; };
  for (let r = 0; r < runs; r++) {
    for (const [kind, spec] of kinds) {
      const stamps: number[] = [], cpu: number[] = [];
      generate(model, [prompt], { maxNewTokens: steps + 1, eosTokenIds: [], kvCache: spec, onToken: () => { stamps.push(performance.now()); cpu.push(cpuMs()); } });
      steps_.set(kind, [...(steps_.get(kind) ?? []), ...stamps.slice(1).map((t, i) => t - stamps[i]!)]);
      cpuSteps.set(kind, [...(cpuSteps.get(kind) ?? []), ...cpu.slice(1).map((t, i) => t - cpu[i]!)]);
    }
  }
  const at = (xs: number[], q: number) => [...xs].sort((a, b) => a - b)[Math.floor(q * (xs.length - 1))]!;
  const ctx = prompt.length + steps + 1;
  log(`\n${name} decode at context ${prompt.length}..${ctx} (greedy, ${threads} threads, ${runs} interleaved runs of ${steps} steps, each step timed)`);
  const oneThread = threads === 1;
  log(`| cache | median ms/step | × f32 | p10 ms/step | × f32 |${oneThread ? ' median CPU ms/step | × f32 |' : ''} bytes/token | × f32 memory |`);
  log(`|---|---|---|---|---|${oneThread ? '---|---|' : ''}---|---|`);
  const f32 = steps_.get('f32')!;
  const [f50, f10, fc] = [at(f32, 0.5), at(f32, 0.1), at(cpuSteps.get('f32')!, 0.5)];
  const { nLayers, dHead } = model.dims;
  const hkv = model.dims.nKvHeads ?? model.dims.nHeads;
  for (const [kind, spec] of kinds) {
    let bpt = 2 * nLayers * hkv * dHead * 4, ratio = 1;
    if (spec) {
      const e = evaluateLM(model, prompt, { ctx: prompt.length, kvCache: spec });
      bpt = e.kvMemory!.bytesPerToken; ratio = e.kvMemory!.bytesPerToken / e.kvMemory!.f32BytesPerToken;
    }
    const xs = steps_.get(kind)!;
    const [m50, m10, mc] = [at(xs, 0.5), at(xs, 0.1), at(cpuSteps.get(kind)!, 0.5)];
    speedRows.push({
      model: name, cache: kind, decode_ms_per_token: round(m50, 3), p10_ms: round(m10, 3), ratio_median: round(f50 / m50, 3), ratio_p10: round(f10 / m10, 3),
      cpu_ms: oneThread ? round(mc, 3) : null, ratio_cpu: oneThread ? round(fc / mc, 3) : null, context: ctx, bytes_per_token: round(bpt, 1), ratio_to_f32: round(ratio, 3),
    });
    log(`| ${kind} | ${m50.toFixed(3)} | ${(f50 / m50).toFixed(3)} | ${m10.toFixed(3)} | ${(f10 / m10).toFixed(3)} |${oneThread ? ` ${mc.toFixed(3)} | ${(fc / mc).toFixed(3)} |` : ''} ${bpt.toFixed(1)} | ${ratio.toFixed(3)} |`);
  }
}

if (!only || only === 'speed') {
  const steps = quick ? 16 : 63;
  const runs = quick ? 2 : 5;
  if (stories) speedTable('stories260K', stories, sample(stories, 448, 3000), sample(stories, 2048, 2000), steps, runs);
  const big = randomModel(LLAMA_1024, backend, { seed: 0, std: 0.03 });
  const ids = (n: number, seed: number) => Array.from({ length: n }, (_, i) => 3 + ((i * 7919 + seed * 104729) % 509));
  speedTable('llama d1024 (16 heads of 64, 4 layers, random weights)', big, ids(448, 1), ids(1024, 2), quick ? 8 : 31, quick ? 2 : 4);
  big.dispose();
}
stories?.dispose();

// ---- the attention kernel alone, cold cache -----------------------------------------------------
// One layer's attention of one query over 512 cached positions of 16 heads of 64 (random normal
// keys and values; calibration: per-channel ranges at ±2.57σ, so about 1% of the values fall
// outside, the same for the values' τ, a uniform 16-level codebook), each call after 64 MiB of
// other memory has been written, as in decode, where a layer's weights pass through the caches
// between two attention calls. The f32 cache's attention op against the packed kernel; median
// process CPU time of 9 rounds of 20 interleaved calls each.
interface KernelRow { cache: string; cpu_ms: number; ratio: number; bytes_per_token: number }
const kernelRows: KernelRow[] = [];
if (!only || only === 'kernel') {
  const { hkv, d, tk } = KERNEL_SHAPE;
  const R = hkv * d;
  const { k, v, q, inv, specs, attend: o } = kernelCases(backend);
  const kinds: [string, KVCacheSpec | undefined][] = [
    ['f32', undefined], ['q8_0', specs.q8_0], ['q4_0', specs.q4_0],
    ['kvquant-4', specs.kvquant4],
    ['kvquant-4 (uniform, no outliers, no sink)', specs.uniform4],
  ];
  const caches = new Map<string, KVCacheQuant>();
  for (const [name, spec] of kinds) {
    if (!spec) continue;
    const c = new KVCacheQuant(spec, backend);
    c.store(0, k, v, Int32Array.from({ length: tk }, (_, i) => i));
    c.commit();
    caches.set(name, c);
  }
  const other = new Float32Array(16 << 20);
  const cpuMs = () => { const u = process.cpuUsage(); return (u.user + u.system) / 1000; };
  const times = new Map<string, number[]>();
  for (let r = 0; r < (quick ? 3 : 9); r++) {
    for (const [name] of kinds) {
      let t = 0;
      for (let i = 0; i < 20; i++) {
        other.fill(i);
        const t0 = cpuMs();
        const c = caches.get(name);
        if (c) c.attend(0, q, o).dispose();
        else tidy(() => attention(q, k, v, { causal: true, scale: o.scale }).out).dispose();
        t += cpuMs() - t0;
      }
      times.set(name, [...(times.get(name) ?? []), t / 20]);
    }
  }
  const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;
  const f32 = med(times.get('f32')!);
  log(`\nattention kernel alone, cold cache: 1 query, 512 positions, 16 heads of 64, ${threads} threads (median CPU ms per call)`);
  log('| cache | CPU ms/call | × f32 | bytes/token |');
  log('|---|---|---|---|');
  for (const [name] of kinds) {
    const m = med(times.get(name)!);
    const bpt = caches.get(name)?.memory().bytesPerToken ?? 2 * R * 4;
    kernelRows.push({ cache: name, cpu_ms: round(m, 4), ratio: round(f32 / m, 3), bytes_per_token: round(bpt, 1) });
    log(`| ${name} | ${m.toFixed(4)} | ${(f32 / m).toFixed(3)} | ${bpt.toFixed(1)} |`);
  }
  for (const c of caches.values()) c.dispose();
  for (const t of [k, v, q, inv]) t.dispose();
}

// ---- the peer: llama.cpp's quantized caches on one GGUF ---------------------------------------
interface PeerRow { cache: string; impl: string; kl: number | null; top1: number | null; note?: string }
const peerRows: PeerRow[] = [];
const haveLlama = existsSync(join(peers, 'llama-perplexity'));

const PEER_CFG = {
  model_type: 'llama', hidden_size: 256, num_attention_heads: 8, num_key_value_heads: 4, num_hidden_layers: 4, intermediate_size: 512,
  vocab_size: 512, max_position_embeddings: 512, rope_theta: 10000, rms_norm_eps: 1e-5, tie_word_embeddings: false,
};

/** A llama-shaped F32 GGUF with heads of 32 (random N(0, 0.08) weights, stories260K's tokenizer), made once. */
async function peerGguf(cfg: Record<string, unknown> = PEER_CFG, name = 'llama-d32', std = 0.08): Promise<string> {
  const path = join(cacheDir, `${name}-F32.gguf`);
  if (existsSync(path)) return path;
  const vocab = await GgufFile.open(await NodeFileSource.open(join(shared, 'data', 'stories260K-gguf', 'stories260K.gguf')));
  const tok = tokenizerMetadata(vocab.metadata as Record<string, unknown>);
  await vocab.close();
  const model = randomModel(cfg, backend, { seed: 0, std });
  const params = new Map([...model.parameters()]);
  const source = tensorWeights(params);
  await convertToGguf(new NodeFileStore(), path, source, cfg, backend, { type: 'F32', metadata: { 'general.name': `${name} (random)`, ...tok } });
  model.dispose();
  return path;
}

if (haveLlama && (!only || only === 'peer')) {
  const env = { ...process.env, LD_LIBRARY_PATH: peerLibDir(peers, join(cacheDir, 'llama-lib')) };
  const ppl = (a: string[]) => spawnSync(join(peers, 'llama-perplexity'), a, { env, encoding: 'utf8', maxBuffer: 1 << 26 });
  // stories260K itself: llama.cpp refuses quantized caches for heads of 8
  const gguf260 = join(shared, 'data', 'stories260K-gguf', 'stories260K.gguf');
  const text = join(cacheDir, 'shakespeare.txt');
  writeFileSync(text, readFileSync(join(shared, 'data', 'tinyshakespeare', 'input.txt'), 'utf8').slice(0, 60000));
  if (existsSync(gguf260)) {
    const r = ppl(['-m', gguf260, '-f', text, '-c', '256', '--chunks', '2', '-t', String(threads), '-ctk', 'q4_0', '-ctv', 'q4_0', '-fa', 'on']);
    const why = (r.stdout + r.stderr).split('\n').find((l) => /does not divide|failed/.test(l))?.replace(/^.*?E\s+/, '').trim() ?? `exit ${r.status}`;
    peerRows.push({ cache: 'q4_0', impl: 'llama.cpp on stories260K.gguf', kl: null, top1: null, note: why });
    log(`\nllama.cpp on stories260K.gguf with -ctk/-ctv q4_0: cannot run (${why})`);
  }
  const file = await peerGguf();
  const ctx = 256, chunks = quick ? 4 : 8;
  const base = join(cacheDir, 'llama-d32.kld');
  const t = String(threads);
  const rb = ppl(['-m', file, '-f', text, '-c', String(ctx), '--chunks', String(chunks), '-t', t, '--kl-divergence-base', base]);
  if (rb.status !== 0) throw new Error(`llama-perplexity base run failed: ${rb.stderr.slice(-400)}`);
  for (const type of ['q8_0', 'q4_0']) {
    // a run that ends without its summary (killed on a busy machine) is repeated once
    const run = () => ppl(['-m', file, '-f', text, '-c', String(ctx), '--chunks', String(chunks), '-t', t, '--kl-divergence-base', base, '--kl-divergence', '-ctk', type, '-ctv', type, '-fa', 'on']);
    let r = run();
    if (!/Mean\s+KLD:/.test(r.stdout + r.stderr)) r = run();
    const out = r.stdout + r.stderr;
    const kl = /Mean\s+KLD:\s+([-\d.e+]+)/.exec(out);
    const top = /Same top p:\s+([\d.]+)/.exec(out);
    peerRows.push({ cache: type, impl: 'llama.cpp', kl: kl ? Number(kl[1]) : null, top1: top ? Number(top[1]) / 100 : null, ...(kl ? {} : { note: `exit ${r.status ?? r.signal}, ${r.stdout.length} bytes of output without a KL summary` }) });
  }
  // actlab on the same file and text (its own tokenizer; each model against its own f32 cache)
  const { model, tokenizer } = await loadModel(file, { backend });
  const all = tokenizer!.encode(readFileSync(text, 'utf8'));
  const ids = all.slice(0, ctx * chunks);
  const stats = collectKV(model, all.slice(ctx * chunks, ctx * chunks + 2048), { ctx: 256 });
  for (const spec of [{ type: 'q8_0' }, { type: 'q4_0' }, { type: 'kvquant', bits: 4 }, { type: 'kvquant', bits: 3 }, { type: 'kvquant', bits: 2 }] as KVCacheSpec[]) {
    const r = resolveKVSpec(spec);
    const s = r.type === 'kvquant' ? { ...spec, calibration: fitKV(stats, r) } : spec;
    const e = evaluateLM(model, ids, { ctx, maxChunks: chunks, ref: model, kvCache: s });
    peerRows.push({ cache: kvSpecLabel(spec), impl: 'actlab', kl: round(e.kl!, 6), top1: round(e.top1!) });
  }
  model.dispose();
  log(`\nllama-shaped GGUF, heads of 32 (random weights), tinyshakespeare, ${chunks} chunks of ${ctx}: KL to each one's own f32 cache`);
  log('| cache | implementation | mean KL | top-1 |');
  log('|---|---|---|---|');
  for (const r of peerRows.filter((x) => x.kl !== null || x.impl === 'llama.cpp')) {
    if (r.impl.includes('stories260K')) continue;
    log(`| ${r.cache} | ${r.impl} | ${r.kl === null ? `failed: ${r.note}` : r.kl.toExponential(3)} | ${r.top1 === null ? '' : `${(100 * r.top1).toFixed(2)}%`} |`);
  }
} else if (!haveLlama) log('\nllama.cpp peer: ../shared/peers/llama.cpp/llama-perplexity not found; peer rows skipped');

// ---- the peer's decode speed: llama.cpp's quantized caches against its f16 cache ---------------
// llama-bench on the same llama shape (d_model 1024, heads of 64, 4 layers, random weights as a GGUF),
// 32 generated tokens after a depth of 448 (context 448..480), flash attention (which llama.cpp's
// quantized V cache needs), the same thread count. llama-bench takes no f32 cache (-ctk f32 is
// refused), so its baseline is its default f16 cache.
interface PeerSpeedRow { cache: string; ms_per_token: number | null; ratio_to_f16: number | null; note?: string }
const peerSpeed: PeerSpeedRow[] = [];
if (haveLlama && (!only || only === 'speed')) {
  const env = { ...process.env, LD_LIBRARY_PATH: peerLibDir(peers, join(cacheDir, 'llama-lib')) };
  const file = await peerGguf(LLAMA_1024, 'llama-d1024', 0.03);
  const ms = new Map<string, number | null>();
  for (const type of ['f16', 'q8_0', 'q4_0']) {
    const r = spawnSync(join(peers, 'llama-bench'), ['-m', file, '-p', '0', '-n', '32', '-d', '448', '-ctk', type, '-ctv', type, '-fa', 'on', '-t', String(threads), '-r', quick ? '2' : '5', '-o', 'json'], { env, encoding: 'utf8', maxBuffer: 1 << 26 });
    let v: number | null = null;
    try { v = 1000 / (JSON.parse(r.stdout) as { avg_ts: number }[])[0]!.avg_ts; } catch { v = null; }
    ms.set(type, v);
    if (v === null) peerSpeed.push({ cache: type, ms_per_token: null, ratio_to_f16: null, note: `exit ${r.status ?? r.signal}: ${r.stderr.trim().split('\n').at(-1) ?? ''}` });
  }
  log(`\nllama.cpp (llama-bench) on the same llama d1024 shape, tg32 at depth 448, ${threads} threads: decode ms/token`);
  log('| cache | ms/token | × f16 cache speed |');
  log('|---|---|---|');
  for (const [type, v] of ms) {
    if (v === null) { log(`| ${type} | failed: ${peerSpeed.find((p) => p.cache === type)?.note} | |`); continue; }
    const f16 = ms.get('f16');
    const row: PeerSpeedRow = { cache: type, ms_per_token: round(v, 3), ratio_to_f16: f16 ? round(f16 / v, 3) : null };
    peerSpeed.push(row);
    log(`| ${type} | ${v.toFixed(3)} | ${row.ratio_to_f16?.toFixed(3) ?? ''} |`);
  }
}

const cpu = (() => { try { return execFileSync('sh', ['-c', "grep -m1 'model name' /proc/cpuinfo | cut -d: -f2"], { encoding: 'utf8' }).trim(); } catch { return 'unknown'; } })();
if (json) console.log(JSON.stringify({ date: new Date().toISOString(), cpu, threads, eval: evalRows, speed: speedRows, kernel: kernelRows, peer_speed: peerSpeed, peer: peerRows }));
backend.dispose();
