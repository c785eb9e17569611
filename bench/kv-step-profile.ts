// Profile of decode steps over the f32 KV cache and a packed one (kvquant-4 by default) on the
// llama d1024 shape of bench:kv (16 heads of 64, 4 layers, random weights), 1 thread: per step,
// the wall and CPU time of each op kind the backend runs, of the caches' own calls (KVCache.append;
// KVCacheQuant.store and attend, with the encoder and attention kernels inside them) and of host
// reads and writes, beside the whole step's median — so that what the packed path does that the
// f32 path does not shows, inside the attention kernel and outside it. Runs of each cache are
// interleaved (f32, packed, repeated) so a busy machine slows both alike. A call made inside another
// timed call is counted in it and also on its own line, marked "·". The per-step figures are means
// over every step (a stream's growth, once a run, included); the median step is the table's peer.
// Usage: npm run bench:kv-profile [-- --runs 5] [--steps 31] [--cache kvquant-4|q4_0|q8_0]
import { loadavg } from 'node:os';
import '../src/backends/index.js';
import { createWasmBackend } from '../src/backends/wasm/backend.js';
import { collectKV, fitKV } from '../src/kvquant/calibrate.js';
import { KVCacheQuant } from '../src/models/kvquant/cache.js';
import { resolveKVSpec, type KVCacheSpec } from '../src/models/kvquant/spec.js';
import { KVCache } from '../src/models/layers/kv-cache.js';
import { generate } from '../src/models/generate.js';
import { randomModel } from '../src/models/random.js';
import type { OpDesc, View } from '../src/tensor/backend.js';

const args = process.argv.slice(2);
const opt = (n: string, d: string) => { const i = args.indexOf(`--${n}`); return i >= 0 ? args[i + 1]! : d; };
const runs = Number(opt('runs', '5'));
const steps = Number(opt('steps', '31'));
const packed = opt('cache', 'kvquant-4');
const LLAMA_1024 = {
  model_type: 'llama', hidden_size: 1024, num_attention_heads: 16, num_key_value_heads: 16, num_hidden_layers: 4, intermediate_size: 2816,
  vocab_size: 512, max_position_embeddings: 1024, rope_theta: 10000, rms_norm_eps: 1e-5, tie_word_embeddings: false,
};

const backend = await createWasmBackend({ threads: 1 });
const model = randomModel(LLAMA_1024, backend, { seed: 0, std: 0.03 });
const ids = (n: number, seed: number) => Array.from({ length: n }, (_, i) => 3 + ((i * 7919 + seed * 104729) % 509));
let spec: KVCacheSpec = packed === 'kvquant-4' ? { type: 'kvquant', bits: 4 } : { type: packed as 'q4_0' | 'q8_0' };
if (spec.type === 'kvquant') spec = { ...spec, calibration: fitKV(collectKV(model, ids(1024, 2), { ctx: 256 }), resolveKVSpec(spec)) };

// ---- timers around the entry points ------------------------------------------------------------
type Stat = { n: number; wall: number; cpu: number };
const stats = { f32: new Map<string, Stat>(), packed: new Map<string, Stat>() };
let current: Map<string, Stat> | undefined; // set while a step of one cache is being recorded
let depth = 0;
const cpuMs = () => { const u = process.cpuUsage(); return (u.user + u.system) / 1000; };
function timed<T>(key: string, f: () => T): T {
  if (!current) return f();
  const at = current, w0 = performance.now(), c0 = cpuMs();
  depth++;
  try { return f(); } finally {
    depth--;
    const k = `${'  '.repeat(depth)}${key}`;
    const s = at.get(k) ?? { n: 0, wall: 0, cpu: 0 };
    s.n++; s.wall += performance.now() - w0; s.cpu += cpuMs() - c0;
    at.set(k, s);
  }
}
function wrap<O extends object, K extends keyof O>(o: O, name: K, key: (a: unknown[]) => string): void {
  const f = o[name] as unknown as (...a: unknown[]) => unknown;
  (o as Record<K, unknown>)[name] = function (this: unknown, ...a: unknown[]) { return timed(key(a), () => f.apply(this, a)); };
}
const opKey = (op: OpDesc, inputs: readonly View[]) => (op.op === 'matmul' || op.op === 'linear' ? `${op.op} ${inputs[1]!.shape.join('x')}` : `${op.op}${'fn' in op ? `:${String(op.fn)}` : ''}`);
wrap(backend, 'exec', (a) => opKey(a[0] as OpDesc, a[1] as View[]));
wrap(backend, 'runKVAttention', () => 'kv_attn_rows (attention kernel)');
wrap(backend, 'runKVEncode', (a) => `kv_encode, ${(a[0] as { stream: { layout: { params: string } } }).stream.layout.params === 'channel' ? 'keys per channel' : 'rows per token/group'}`);
wrap(backend, 'readSync', () => 'host read (readSync)');
wrap(backend, 'write', () => 'host write');
wrap(KVCache.prototype, 'append', () => 'KVCache.append');
wrap(KVCacheQuant.prototype, 'store', () => 'KVCacheQuant.store');
wrap(KVCacheQuant.prototype, 'attend', () => 'KVCacheQuant.attend');

// ---- interleaved runs: greedy decode from a 448-token prompt ----------------------------------
const prompt = ids(448, 1);
const stepMs = { f32: [] as number[], packed: [] as number[] };
for (let r = 0; r < runs; r++) {
  for (const which of ['f32', 'packed'] as const) {
    let last = 0;
    generate(model, [prompt], {
      maxNewTokens: steps + 1, eosTokenIds: [], kvCache: which === 'f32' ? undefined : spec,
      onToken: () => {
        // the prompt's token ends the prefill: record from then on
        const t = performance.now();
        if (current) stepMs[which].push(t - last);
        current = stats[which];
        last = t;
      },
    });
    current = undefined;
  }
}
const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;
const n = runs * steps;
const [lf, lp] = [med(stepMs.f32), med(stepMs.packed)];
console.log(`llama d1024 decode at context ${prompt.length}..${prompt.length + steps}, 1 thread, ${runs} interleaved runs of ${steps} steps; load average ${loadavg().map((x) => x.toFixed(2)).join(' ')}`);
console.log(`median step: f32 cache ${lf.toFixed(3)} ms, ${packed} ${lp.toFixed(3)} ms (${(lf / lp).toFixed(3)}× the f32 cache's speed)\n`);
console.log(`| per step | calls f32 | wall ms f32 | CPU ms f32 | calls ${packed} | wall ms ${packed} | CPU ms ${packed} |`);
console.log('|---|---|---|---|---|---|---|');
const keys = [...new Set([...stats.f32.keys(), ...stats.packed.keys()])].sort((a, b) => a.trim().localeCompare(b.trim()) || a.length - b.length);
const cell = (s?: Stat) => (s ? `${(s.n / n).toFixed(1)} | ${(s.wall / n).toFixed(4)} | ${(s.cpu / n).toFixed(4)}` : '— | — | —');
for (const k of keys) console.log(`| ${k.replace(/^( +)/, (m) => '· '.repeat(m.length / 2))} | ${cell(stats.f32.get(k))} | ${cell(stats.packed.get(k))} |`);
model.dispose();
backend.dispose();
