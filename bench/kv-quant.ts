// Benchmark: the quantized KV cache (src/models/kvquant) on actlab's wasm backend. Per model, the
// KVQuant ablation (each component switched off in turn: per-channel keys, pre-RoPE keys, nuq,
// 1% outliers, the attention sink) at 4, 3 and 2 bits beside llama.cpp's cache types q8_0 and
// q4_0 (ggml's block quantizers, bit for bit): perplexity, KL(f32 cache ‖ quantized cache) and
// top-1 agreement over chunks scored as llama-perplexity scores them, and the cache's bytes per
// token against f32. Then decode speed at context 512 (f32 cache vs packed 4-bit caches, runs
// interleaved so a busy machine slows all alike), and the peer: llama-perplexity
// --kl-divergence with -ctk/-ctv q8_0 and q4_0 on the same GGUF beside actlab's eval of that file.
// Models: stories260K (../shared/data; eval text sampled from the model itself at temperature 1,
// calibration text from another seed), the induction organism (models/organisms/induction; eval
// on held-out [BOS] r r sequences), and for the peer a llama-shaped GGUF with 32-wide heads
// (random weights, stories260K's tokenizer; llama.cpp's quantized caches need head sizes that are
// a multiple of 32, stories260K's are 8) evaluated on tinyshakespeare.
// Usage: npm run bench:kv [-- --json] [--threads 2] [--quick] [--only stories260K|induction|speed|peer]
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import '../src/backends/index.js';
import { createWasmBackend } from '../src/backends/wasm/backend.js';
import { convertToGguf } from '../src/formats/gguf-convert.js';
import { GgufFile } from '../src/formats/gguf.js';
import { i32s, u32, type GgufWriteValue } from '../src/formats/gguf-write.js';
import type { WeightSource } from '../src/formats/weight-source.js';
import { NodeFileSource } from '../src/io/node/file-source.js';
import { NodeFileStore } from '../src/io/node/file-store.js';
import { collectKV, fitKV, type KVStats } from '../src/kvquant/calibrate.js';
import { resolveKVSpec, kvSpecLabel, type KVCacheSpec } from '../src/models/kvquant/spec.js';
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

// ---- decode speed at context 512 --------------------------------------------------------------
interface SpeedRow { model: string; cache: string; decode_ms_per_token: number; context: number; bytes_per_token: number; ratio_to_f32: number }
const speedRows: SpeedRow[] = [];
if (stories && (!only || only === 'speed')) {
  const calIds = sample(stories, 2048, 2000);
  const stats = collectKV(stories, calIds, { ctx: 256 });
  const prompt = sample(stories, 448, 3000);
  const steps = quick ? 16 : 63;
  const kinds: [string, KVCacheSpec | undefined][] = [
    ['f32', undefined], ['q8_0', { type: 'q8_0' }], ['q4_0', { type: 'q4_0' }],
    ['kvquant-4', { type: 'kvquant', bits: 4, calibration: fitKV(stats, resolveKVSpec({ type: 'kvquant', bits: 4 })) }],
    ['kvquant-4 (uniform, no outliers, no sink)', { type: 'kvquant', bits: 4, nuq: false, outliers: 0, sink: false, calibration: fitKV(stats, resolveKVSpec({ type: 'kvquant', bits: 4, nuq: false, outliers: 0, sink: false })) }],
  ];
  const times = new Map<string, number[]>();
  const runs = quick ? 2 : 5;
  for (let r = 0; r < runs; r++) {
    for (const [name, spec] of kinds) {
      const stamps: number[] = [];
      generate(stories, [prompt], { maxNewTokens: steps + 1, eosTokenIds: [], kvCache: spec, onToken: () => stamps.push(performance.now()) });
      const ms = (stamps.at(-1)! - stamps[0]!) / (stamps.length - 1);
      times.set(name, [...(times.get(name) ?? []), ms]);
    }
  }
  const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  // memory per token of each cache at this context (one prefill of the prompt)
  log(`\nstories260K decode at context ${prompt.length}..${prompt.length + steps} (greedy, ${threads} threads, median of ${runs} interleaved runs)`);
  log('| cache | decode ms/token | × f32 speed | bytes/token | × f32 memory |');
  log('|---|---|---|---|---|');
  const f32ms = med(times.get('f32')!);
  for (const [name, spec] of kinds) {
    let bpt = 0, ratio = 1;
    if (spec) {
      const e = evaluateLM(stories, prompt.slice(0, 448), { ctx: 448, kvCache: spec });
      bpt = e.kvMemory!.bytesPerToken; ratio = e.kvMemory!.bytesPerToken / e.kvMemory!.f32BytesPerToken;
    } else bpt = 2 * stories.dims.nLayers * (stories.dims.nKvHeads ?? stories.dims.nHeads) * stories.dims.dHead * 4;
    const ms = med(times.get(name)!);
    speedRows.push({ model: 'stories260K', cache: name, decode_ms_per_token: round(ms, 3), context: 512, bytes_per_token: round(bpt, 1), ratio_to_f32: round(ratio, 3) });
    log(`| ${name} | ${ms.toFixed(3)} | ${(f32ms / ms).toFixed(3)} | ${bpt.toFixed(1)} | ${ratio.toFixed(3)} |`);
  }
}
stories?.dispose();

// ---- the peer: llama.cpp's quantized caches on one GGUF ---------------------------------------
interface PeerRow { cache: string; impl: string; kl: number | null; top1: number | null; note?: string }
const peerRows: PeerRow[] = [];
const haveLlama = existsSync(join(peers, 'llama-perplexity'));

/** The peers' shared libraries with their version links restored (a copy may hold them as small text files naming the target). */
function peerLibs(): string {
  const dir = join(cacheDir, 'llama-lib');
  mkdirSync(dir, { recursive: true });
  for (const f of readdirSync(peers).filter((x) => x.includes('.so'))) {
    let target = join(peers, f);
    while (statSync(target).size < 256) target = join(peers, readFileSync(target, 'utf8').trim());
    const link = join(dir, f);
    if (existsSync(link)) unlinkSync(link);
    symlinkSync(target, link);
  }
  return dir;
}

function tokenizerMetadata(meta: Record<string, unknown>): Record<string, GgufWriteValue> {
  const out: Record<string, GgufWriteValue> = {};
  for (const [k, v] of Object.entries(meta)) {
    if (!k.startsWith('tokenizer.')) continue;
    if (Array.isArray(v)) out[k] = typeof v[0] === 'string' ? (v as string[]) : i32s((v as unknown[]).map(Number));
    else if (typeof v === 'number') out[k] = u32(v);
    else if (typeof v === 'bigint') out[k] = u32(Number(v));
    else if (typeof v === 'string' || typeof v === 'boolean') out[k] = v;
  }
  return out;
}

const PEER_CFG = {
  model_type: 'llama', hidden_size: 256, num_attention_heads: 8, num_key_value_heads: 4, num_hidden_layers: 4, intermediate_size: 512,
  vocab_size: 512, max_position_embeddings: 512, rope_theta: 10000, rms_norm_eps: 1e-5, tie_word_embeddings: false,
};

/** A llama-shaped F32 GGUF with heads of 32 (random N(0, 0.08) weights, stories260K's tokenizer), made once. */
async function peerGguf(): Promise<string> {
  const path = join(cacheDir, 'llama-d32-F32.gguf');
  if (existsSync(path)) return path;
  const vocab = await GgufFile.open(await NodeFileSource.open(join(shared, 'data', 'stories260K-gguf', 'stories260K.gguf')));
  const tok = tokenizerMetadata(vocab.metadata as Record<string, unknown>);
  await vocab.close();
  const model = randomModel(PEER_CFG, backend, { seed: 0, std: 0.08 });
  const params = new Map([...model.parameters()]);
  const source: WeightSource = {
    names: () => [...params.keys()],
    has: (n) => params.has(n),
    info: (n) => ({ dtype: 'f32', storedAs: 'F32', shape: [...params.get(n)!.shape], bytes: params.get(n)!.size * 4 }),
    load: async (n) => params.get(n)!.share(),
    totalBytes: () => [...params.values()].reduce((s, t) => s + t.size * 4, 0),
    close: async () => {},
  };
  await convertToGguf(new NodeFileStore(), path, source, PEER_CFG, backend, { type: 'F32', metadata: { 'general.name': 'llama-d32 (random)', ...tok } });
  model.dispose();
  return path;
}

if (haveLlama && (!only || only === 'peer')) {
  const env = { ...process.env, LD_LIBRARY_PATH: peerLibs() };
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

const cpu = (() => { try { return execFileSync('sh', ['-c', "grep -m1 'model name' /proc/cpuinfo | cut -d: -f2"], { encoding: 'utf8' }).trim(); } catch { return 'unknown'; } })();
if (json) console.log(JSON.stringify({ date: new Date().toISOString(), cpu, threads, eval: evalRows, speed: speedRows, peer: peerRows }));
backend.dispose();
