// Decode with the packed KV cache on WebGPU (q8_0, q4_0 and KVQuant's kvquant-4 / kvquant-2 held on
// the device: src/backends/webgpu/kernels/kv-cache.ts, kv-quant.ts) beside the f32 cache in the same
// run: greedy decode from a prompt to each context, runs interleaved (f32, q8_0, q4_0, kvquant-4,
// kvquant-2, repeated), each step timed from one token to the
// next (the step's GPU work and the read of its token); median and 10th percentile per cache,
// bytes per token of the cache, and host reads per step (one: the sampled token; the cache is
// never read back). Model: a llama shape whose cache weighs (d_model 1024, 16 heads of 64, 4
// layers, random weights), as bench/kv-quant.ts measures it on wasm. KVQuant's types are calibrated
// on the model on the GPU (256 other tokens); their check: the last position's logits of a prompt
// on webgpu against the same model and cache on wasm.
// Usage: npm run build && node dist/bench/webgpu-kv.js [--json] [--contexts 512,2048] [--steps 31] [--runs 3] [--small] [--no-kvquant]
import '../src/backends/index.js';
import { createWebGpuBackend, WebGpuBackend } from '../src/backends/webgpu/backend.js';
import { generateAsync } from '../src/models/generate.js';
import { KVCacheQuant } from '../src/models/kvquant/cache.js';
import type { KVCacheSpec } from '../src/models/kvquant/spec.js';
import { randomModel } from '../src/models/random.js';
import { initBackend } from '../src/tensor/engine.js';
import { calibrateKVAsync } from '../src/kvquant/calibrate.js';
import { resolveKVSpec } from '../src/models/kvquant/spec.js';
import { Tensor } from '../src/tensor/tensor.js';
import { kvAttentionReference, type HostStream } from '../src/models/kvquant/reference.js';
import type { StreamLayout } from '../src/models/kvquant/codec.js';

const args = process.argv.slice(2);
const flag = (n: string) => args.includes(`--${n}`);
const opt = (n: string, d: string) => { const i = args.indexOf(`--${n}`); return i >= 0 ? args[i + 1]! : d; };
const json = flag('json');
const small = flag('small');
const contexts = opt('contexts', small ? '96' : '512,2048').split(',').map(Number);
const steps = Number(opt('steps', small ? '4' : '31'));
const runs = Number(opt('runs', small ? '1' : '3'));

const CFG = {
  model_type: 'llama', hidden_size: small ? 128 : 1024, num_attention_heads: small ? 2 : 16, num_key_value_heads: small ? 2 : 16,
  num_hidden_layers: small ? 2 : 4, intermediate_size: small ? 256 : 2816,
  vocab_size: 512, max_position_embeddings: 4096, rope_theta: 10000, rms_norm_eps: 1e-5, tie_word_embeddings: false,
};

const be = await createWebGpuBackend();
if (!(be instanceof WebGpuBackend)) throw new Error('webgpu backend unavailable');
const model = randomModel(CFG, be, { seed: 0, std: 0.03 });
const ids = (n: number) => Array.from({ length: n }, (_, i) => 3 + ((i * 7919 + 104729) % 509));
const kvq = async (bits: number): Promise<KVCacheSpec> => {
  const s: KVCacheSpec = { type: 'kvquant', bits };
  const calIds = Array.from({ length: 256 }, (_, i) => 3 + ((i * 4099 + 77) % 509));
  return { ...s, calibration: await calibrateKVAsync(model, calIds, resolveKVSpec(s), { ctx: 128 }) };
};
const kinds: [string, KVCacheSpec | undefined][] = [
  ['f32', undefined], ['q8_0', { type: 'q8_0' }], ['q4_0', { type: 'q4_0' }],
  ...(flag('no-kvquant') ? [] : [['kvquant-4', await kvq(4)], ['kvquant-2', await kvq(2)]] as [string, KVCacheSpec][]),
];
const at = (xs: number[], q: number) => [...xs].sort((a, b) => a - b)[Math.floor(q * (xs.length - 1))]!;
if (!json) console.log(`packed KV cache on webgpu: ${JSON.stringify(be.info())}; llama d${CFG.hidden_size}, ${CFG.num_attention_heads} heads of ${CFG.hidden_size / CFG.num_attention_heads}, ${CFG.num_hidden_layers} layers`);

/**
 * The kernel on this GPU against the js reference on the same packed bytes (read back): layer 0 of
 * the model's cache after a prompt, 3 query rows; prints the max relative error.
 */
async function check(spec: KVCacheSpec, n: number): Promise<number> {
  const c = new KVCacheQuant(spec, be);
  const x = Tensor.from(ids(n), [1, n], 'i32', be);
  model.forward(x, { cache: c }).dispose();
  x.dispose();
  type S = { layout: StreamLayout; main: Tensor; out: Tensor };
  const l = (c as unknown as { qlayers: { k: S; v: S }[] }).qlayers[0]!;
  const host = async (s: S): Promise<HostStream> => ({ layout: s.layout, bytes: { main: await s.main.bytes(), out: await s.out.bytes() } });
  const H = CFG.num_attention_heads, D = CFG.hidden_size / H;
  const qv = Float32Array.from({ length: H * 3 * D }, (_, i) => Math.sin(i * 0.37));
  const q = Tensor.from(qv, [1, H, 3, D], 'f32', be);
  const y = c.attend(0, q, { scale: 1 / Math.sqrt(D) });
  const got = (await y.data()) as Float32Array;
  const ref = kvAttentionReference(qv, [1, H, 3, D], await host(l.k), await host(l.v), { hkv: CFG.num_key_value_heads, tk: n, dv: D, scale: 1 / Math.sqrt(D), causal: true });
  let e = 0, m = 0;
  for (let i = 0; i < ref.length; i++) { e = Math.max(e, Math.abs(got[i]! - ref[i]!)); m = Math.max(m, Math.abs(ref[i]!)); }
  for (const t of [q, y]) t.dispose();
  c.dispose();
  return e / m;
}
/** The last position's logits of an n-token prompt, cache `spec`, on webgpu against wasm (the same weights). */
const wasm = await initBackend('wasm');
const modelW = randomModel(CFG, wasm, { seed: 0, std: 0.03 });
async function checkModel(spec: KVCacheSpec, n: number): Promise<number> {
  const last = async (m: typeof model, b: typeof wasm) => {
    const c = new KVCacheQuant(spec, b);
    const x = Tensor.from(ids(n), [1, n], 'i32', b);
    const y = m.forward(x, { cache: c });
    const v = y.narrow(1, n - 1, 1);
    const out = Float32Array.from((await v.data()) as Float32Array);
    for (const t of [x, y, v]) t.dispose();
    c.dispose();
    return out;
  };
  const [g, w] = [await last(model, be), await last(modelW, wasm)];
  let e = 0, m = 0;
  for (let i = 0; i < w.length; i++) { e = Math.max(e, Math.abs(g[i]! - w[i]!)); m = Math.max(m, Math.abs(w[i]!)); }
  return e / m;
}
for (const [kind, spec] of kinds.slice(1)) {
  if (spec!.type === 'kvquant') {
    const err = await checkModel(spec!, contexts[0]!);
    if (json) console.log(JSON.stringify({ bench: 'webgpu-kv-check', cache: kind, context: contexts[0], logits_max_rel_err_vs_wasm: err }));
    else console.log(`${kind}: logits of a ${contexts[0]}-token prompt on webgpu vs the same cache on wasm, max relative error ${err.toExponential(2)}`);
    continue;
  }
  const err = await check(spec!, contexts[0]!);
  if (json) console.log(JSON.stringify({ bench: 'webgpu-kv-check', cache: kind, context: contexts[0], max_rel_err: err }));
  else console.log(`${kind}: attention kernel vs js reference on the same packed bytes (${contexts[0]} keys), max relative error ${err.toExponential(2)}`);
}

for (const ctx of contexts) {
  const prompt = ids(ctx - steps - 1);
  const times = new Map<string, number[]>(), reads = new Map<string, number>();
  for (let r = 0; r < runs + 1; r++) {
    for (const [kind, spec] of kinds) {
      const stamps: number[] = [];
      const r0 = be.rt.stats.reads;
      await generateAsync(model, [prompt], { maxNewTokens: steps + 1, eosTokenIds: [], kvCache: spec, onToken: () => { stamps.push(performance.now()); } });
      if (r === 0) continue; // the first round compiles the kernels
      reads.set(kind, (be.rt.stats.reads - r0) / (steps + 1));
      times.set(kind, [...(times.get(kind) ?? []), ...stamps.slice(1).map((t, i) => t - stamps[i]!)]);
    }
  }
  const f = times.get('f32')!;
  const [f50, f10] = [at(f, 0.5), at(f, 0.1)];
  if (!json) {
    console.log(`\ncontext ${prompt.length}..${ctx} (greedy, ${runs} interleaved runs of ${steps} steps)`);
    console.log('| cache | median ms/step | × f32 speed | p10 ms/step | × f32 speed | bytes/token | × f32 memory | host reads/step |');
    console.log('|---|---:|---:|---:|---:|---:|---:|---:|');
  }
  for (const [kind, spec] of kinds) {
    let bpt = 2 * CFG.num_hidden_layers * CFG.hidden_size * 4, ratio = 1;
    if (spec) {
      const c = new KVCacheQuant(spec, be);
      const x = Tensor.from(prompt, [1, prompt.length], 'i32', be);
      model.forward(x, { cache: c }).dispose();
      x.dispose();
      const m = c.memory();
      bpt = m.bytesPerToken; ratio = m.bytesPerToken / m.f32BytesPerToken;
      c.dispose();
    }
    const xs = times.get(kind)!;
    const [m50, m10] = [at(xs, 0.5), at(xs, 0.1)];
    const row = { bench: 'webgpu-kv', cache: kind, context: ctx, ms_per_step: m50, p10_ms: m10, speed_vs_f32: f50 / m50, p10_vs_f32: f10 / m10, bytes_per_token: bpt, memory_vs_f32: ratio, reads_per_step: reads.get(kind) };
    if (json) console.log(JSON.stringify(row));
    else console.log(`| ${kind} | ${m50.toFixed(3)} | ${(f50 / m50).toFixed(3)} | ${m10.toFixed(3)} | ${(f10 / m10).toFixed(3)} | ${bpt.toFixed(0)} | ${ratio.toFixed(3)} | ${reads.get(kind)!.toFixed(2)} |`);
  }
}
model.dispose();
modelW.dispose();
be.dispose();
