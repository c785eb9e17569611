// Benchmark: activation sparsity as a runtime mode on wasm, decode ms/token dense vs sparse on the
// same model, at the sparsity that costs at most 0.05 nats of KL.
//   1. Quality (needs ../shared/data/stories260K): CHESS (FFN), CHESS+ (FFN + query/output
//      projections) and TEAL (the input of every projection) on stories260K, calibrated on 512
//      tokens the model sampled itself, KL(dense ‖ sparse), top-1 agreement and perplexity on
//      1,024 other sampled tokens, per target sparsity; the largest sparsity with KL ≤ 0.05 is kept
//      per method; then TEAL's greedy per-site allocation (src/sparsity/teal-allocate.ts) searched
//      on the calibration tokens for 25–33% of the weights skipped and scored the same way.
//   2. Speed: decode ms/token (16-token prompt into a KV cache per mode, then greedy steps with
//      the modes interleaved step by step; median of all steps) on stories260K and on a random
//      Llama-shaped model whose weight reads dominate (d_model 1024, d_ff 4096, 4 layers, 16
//      heads, vocabulary 512), dense kernels vs the sparse ones (`sparseMatmul`, with TEAL's
//      thresholds fused in, / `maskedMatmul`), plus the sparse mode with dense products ("zeroed
//      only") to show what the thresholding itself costs. Every projection is stored [in, out]
//      for every mode (what the sparse products read; the dense kernel reads it as fast). Beside
//      wall time, the process's CPU time per step: on a machine shared with other work it is not
//      inflated by time slicing (with 1 thread it is the decode's own time; with more it includes
//      the pool's workers, spinning between calls included).
//   3. The down projection alone, from memory: the dense product against sparseMatmul reading all
//      rows, a contiguous half, and 75%, 70%, half, a quarter and a tenth of the rows at random
//      (the 75% and 70% through the fused thresholds).
// Usage: npm run bench:sparse [-- --json] [--runs N] [--steps N] [--threads N] [--quick]
import { existsSync } from 'node:fs';
import { cpus } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import '../src/backends/index.js';
import { randn, Rng, tensor } from '../src/ops/creation.js';
import { matmul } from '../src/ops/linalg.js';
import { sparseMatmul } from '../src/ops/sparse.js';
import { reduce } from '../src/ops/reduce.js';
import { disposeBackends, initBackend, keep } from '../src/tensor/engine.js';
import { createWasmBackend } from '../src/backends/wasm/backend.js';
import { blockLinears } from '../src/sparsity/teal.js';
import { Tensor } from '../src/tensor/tensor.js';
import { randomModel } from '../src/models/random.js';
import { loadModel } from '../src/models/load.js';
import { generate, greedyTokenSync } from '../src/models/generate.js';
import { evaluateLM } from '../src/models/evaluate.js';
import { KVCache } from '../src/models/layers/kv-cache.js';
import type { CausalLM } from '../src/models/model.js';
import { planSparsity } from '../src/sparsity/calibrate.js';
import { applySparsity } from '../src/sparsity/apply.js';
import { formatSpec, type SparsitySpec } from '../src/sparsity/spec.js';
import { allocateTeal } from '../src/sparsity/teal-allocate.js';

const args = process.argv.slice(2);
const flag = (n: string) => args.includes(`--${n}`);
const opt = (n: string, d: string) => { const i = args.indexOf(`--${n}`); return i >= 0 ? args[i + 1]! : d; };
const json = flag('json');
const runs = Number(opt('runs', flag('quick') ? '3' : '5'));
const steps = Number(opt('steps', flag('quick') ? '8' : '24'));
const KL_BUDGET = 0.05;
const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const stories = join(root, '..', 'shared', 'data', 'stories260K');
const log = (s: string) => { if (!json) console.log(s); };

const threadsOpt = opt('threads', '');
const backend = threadsOpt ? await createWasmBackend({ threads: Number(threadsOpt) }) : await initBackend('wasm');

interface QualityRow { method: string; sparsity: number; kl: number; top1: number; ppl: number; ref_ppl: number; calibration_sparsity: number }
interface SpeedRow { model: string; mode: string; spec: string | null; ms_per_token: number; p10_ms: number; speedup: number | null; paired_speedup: number | null; cpu_ms_per_token: number; cpu_paired_speedup: number | null }
const quality: QualityRow[] = [];
const speed: SpeedRow[] = [];
const chosen: Record<string, number> = {};
/** The greedy TEAL allocation with the largest share of skipped weights within the KL budget. */
let greedy: SparsitySpec | undefined;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

/**
 * Stores every projection as [in, out] (what the sparse products read), so that switching
 * sparsity on and off copies nothing; the dense path reads the same matrices with its own kernel
 * for that layout. The up projection stays [out, in] for CHESS's maskedMatmul (TEAL reads a
 * transposed copy of it).
 */
function rowsLayout(model: CausalLM): void {
  for (let l = 0; l < model.dims.nLayers; l++) {
    for (const [role, lin] of blockLinears(model.sparsityParts(l))) {
      if (role === 'mlp.up' || lin.layout === 'in_out' || !(lin.weight instanceof Tensor)) continue;
      const t = lin.weight.transpose();
      lin.weight = keep(t.contiguous());
      lin.layout = 'in_out';
      t.dispose();
    }
  }
}

/**
 * Decode timing: a 16-token prompt into one KV cache per mode, then greedy steps (tokens of the
 * dense mode fed to every mode); within each step the modes run one after the other, so the load
 * of the machine falls on all of them alike. Per mode: the median of all step times.
 */
function timeModes(name: string, model: CausalLM, calibration: number[], specs: SparsitySpec[]): void {
  rowsLayout(model);
  const modes: { mode: string; spec: SparsitySpec | null; kernels: boolean }[] = [{ mode: 'dense', spec: null, kernels: false }];
  for (const s of specs) modes.push({ mode: 'sparse kernels', spec: s, kernels: true }, { mode: 'zeroed only', spec: s, kernels: false });
  const plans = new Map(specs.map((s) => [formatSpec(s), planSparsity(model, s, calibration)]));
  const times = modes.map(() => [] as number[]);
  const cpu = modes.map(() => [] as number[]); // process CPU time: what a loaded machine's time slicing does not inflate
  const V = model.dims.vocabSize;
  // each mode is built once and switched on for its turn (suspend / resume): building it copies the
  // weights it reads ([in, out], q/k/v and gate/up side by side), which a real decode does once
  const applied = modes.map((m) => {
    const ap = m.spec ? applySparsity(model, plans.get(formatSpec(m.spec))!, { kernels: m.kernels }) : undefined;
    ap?.suspend();
    return ap;
  });
  const with_ = <T>(i: number, fn: () => T): T => {
    const ap = applied[i];
    ap?.resume();
    try { return fn(); } finally { ap?.suspend(); }
  };
  for (let r = 0; r < runs + 1; r++) {
    const caches = modes.map(() => new KVCache());
    const prompt = Array.from({ length: 16 }, (_, i) => (i * 37 + 11 + r) % V);
    let next = 0;
    modes.forEach((_, i) => with_(i, () => {
      const p = tensor(prompt, [1, prompt.length], 'i32', { backend });
      const id = greedyTokenSync(model.forward(p, { cache: caches[i], logits: 'last' }));
      if (i === 0) next = id;
      p.dispose();
    }));
    for (let s = 0; s < steps; s++) {
      let dense = 0;
      modes.forEach((_, i) => with_(i, () => {
        const t = tensor([next], [1, 1], 'i32', { backend });
        const c0 = process.cpuUsage();
        const t0 = performance.now();
        const id = greedyTokenSync(model.forward(t, { cache: caches[i], logits: 'last' }));
        const dt = performance.now() - t0;
        const dc = process.cpuUsage(c0);
        if (r > 0) { times[i]!.push(dt); cpu[i]!.push((dc.user + dc.system) / 1000); } // run 0 warms up
        if (i === 0) dense = id;
        t.dispose();
      }));
      next = dense;
    }
    for (const c of caches) c.dispose();
  }
  for (const ap of applied) ap?.remove();
  const dense = median(times[0]!);
  const r2 = (x: number) => Math.round(x * 100) / 100;
  const p10 = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 10)]!;
  modes.forEach((m, i) => {
    const ms = median(times[i]!);
    // each step's dense time over this mode's time in the same step: the load is common to both
    const paired = m.spec ? median(times[i]!.map((t, k) => times[0]![k]! / t)) : null;
    const cpuPaired = m.spec ? median(cpu[i]!.map((t, k) => cpu[0]![k]! / t)) : null;
    speed.push({
      cpu_ms_per_token: r2(median(cpu[i]!)), cpu_paired_speedup: cpuPaired === null ? null : r2(cpuPaired),
      model: name, mode: m.mode, spec: m.spec ? formatSpec(m.spec) : null, ms_per_token: r2(ms), p10_ms: r2(p10(times[i]!)),
      speedup: m.spec ? r2(dense / ms) : null, paired_speedup: paired === null ? null : r2(paired),
    });
  });
}

// ---- 1. quality on stories260K ----
let storiesModel: CausalLM | undefined;
let storiesCalib: number[] = [];
if (existsSync(join(stories, 'stories260K.bin'))) {
  const load = () => loadModel(join(stories, 'stories260K.bin'), { backend, tokenizerPath: join(stories, 'tok512.bin') });
  const a = await load();
  const ref = await load();
  // Text the model samples itself (temperature 1, fixed seed): in its own distribution.
  const g = generate(ref.model, [[1], [1], [1]], { maxNewTokens: 511, temperature: 1, seed: 7 });
  const seqs = g.ids.map((x) => x.slice(0, 512));
  storiesCalib = seqs[0]!;
  const evalIds = seqs.slice(1).flat();
  for (const method of ['chess', 'chess+', 'teal'] as const) {
    for (const F of flag('quick') ? [0.2, 0.25, 0.3] : [0.15, 0.2, 0.225, 0.25, 0.275, 0.3, 0.35, 0.4, 0.5]) {
      const spec: SparsitySpec = { method, value: F };
      const plan = planSparsity(a.model, spec, storiesCalib);
      const ap = applySparsity(a.model, plan, { kernels: false });
      try {
        const r = evaluateLM(a.model, evalIds, { ctx: 512, ref: ref.model });
        const cs = plan.layers.reduce((s, l) => s + (l.calibrationSparsity ?? 0), 0) / plan.layers.length;
        quality.push({ method, sparsity: F, kl: r.kl!, top1: r.top1!, ppl: r.perplexity, ref_ppl: r.refPerplexity!, calibration_sparsity: cs });
        if (r.kl! <= KL_BUDGET) chosen[method] = Math.max(chosen[method] ?? 0, F);
      } finally {
        ap.remove();
      }
    }
  }
  // TEAL's greedy allocation: a sparsity per input site, searched on the calibration tokens for
  // each share of skipped weights, then scored on the evaluation tokens like the uniform sweep
  for (const al of allocateTeal(a.model, storiesCalib, flag('quick') ? [0.25, 0.3] : [0.25, 0.27, 0.3, 0.33], { ctx: 512 })) {
    const plan = planSparsity(a.model, al.spec, storiesCalib, { ctx: 512 });
    const ap = applySparsity(a.model, plan, { kernels: false });
    try {
      const r = evaluateLM(a.model, evalIds, { ctx: 512, ref: ref.model });
      quality.push({ method: `teal greedy ${formatSpec(al.spec).replace(/^teal:[\d.]+ /, '')}`, sparsity: al.target, kl: r.kl!, top1: r.top1!, ppl: r.perplexity, ref_ppl: r.refPerplexity!, calibration_sparsity: al.skipped });
      if (r.kl! <= KL_BUDGET && al.target > (greedy?.value ?? 0)) greedy = al.spec;
    } finally {
      ap.remove();
    }
  }
  ref.model.dispose();
  storiesModel = a.model;
} else {
  log(`(no ${stories}: the quality sweep is skipped; speed runs at chess:0.3, chess+:0.3 and teal:0.25)`);
  chosen.chess = 0.3;
  chosen['chess+'] = 0.3;
  chosen.teal = 0.25;
}

// ---- 2. decode speed ----
const specs: SparsitySpec[] = Object.entries(chosen).map(([m, v]) => ({ method: m as SparsitySpec['method'], value: v }));
if (!specs.some((s) => s.method === 'chess' && s.value === 0.5)) specs.push({ method: 'chess', value: 0.5 });
if (greedy) specs.push(greedy);
if (storiesModel) {
  timeModes('stories260K', storiesModel, storiesCalib, specs);
  storiesModel.dispose();
}
const LLAMA = {
  model_type: 'llama', hidden_size: 1024, intermediate_size: 4096, num_hidden_layers: 4, num_attention_heads: 16,
  num_key_value_heads: 16, vocab_size: 512, max_position_embeddings: 512, rms_norm_eps: 1e-5, tie_word_embeddings: false,
};
const big = randomModel(LLAMA, backend, { seed: 3, std: 0.03 });
const bigCalib = Array.from({ length: 128 }, (_, i) => (i * 7919 + 13) % LLAMA.vocab_size);
timeModes('llama-1024x4096 (random)', big, bigCalib, specs);
big.dispose();

// ---- 3. the down projection alone: what skipping rows at random costs ----
// 8 copies of a 4096 x 1024 matrix (128 MiB) in turn, so each product reads from memory, not cache.
interface OpRow { case: string; active: number; ms: number; vs_dense: number }
const opRows: OpRow[] = [];
{
  const K = 4096, N = 1024, C = 8;
  const ws = Array.from({ length: C }, (_, i) => randn([K, N], { seed: 100 + i, backend }));
  const rng = new Rng(5);
  const pattern = (name: string, f: (k: number) => boolean) => ({ name, x: tensor(Float32Array.from({ length: K }, (_, k) => (f(k) ? 0.5 + rng.uniform() : 0)), [1, K], 'f32', { backend }) });
  // normal inputs and the threshold at the quantile that skips the share `skip` of them, fused in
  const normal = Float32Array.from({ length: K }, () => rng.normal());
  const sorted = Float32Array.from(normal, Math.abs).sort();
  const fused = (name: string, skip: number) => ({
    name, x: tensor(normal, [1, K], 'f32', { backend }), dense: false,
    t: tensor(new Float32Array(K).fill(sorted[Math.floor(K * skip)]!), [K], 'f32', { backend }),
  });
  const cases: { name: string; x: Tensor; dense: boolean; t?: Tensor }[] = [
    { ...pattern('dense product (matmul)', () => true), dense: true },
    { ...pattern('all rows', () => true), dense: false },
    { ...pattern('first half of the rows', (k) => k < K / 2), dense: false },
    fused('75% at random (thresholds fused)', 0.25),
    fused('70% at random (thresholds fused)', 0.3),
    { ...pattern('half of the rows at random', () => rng.uniform() < 0.5), dense: false },
    { ...pattern('a quarter at random', () => rng.uniform() < 0.25), dense: false },
    { ...pattern('a tenth at random', () => rng.uniform() < 0.1), dense: false },
  ];
  const t = cases.map(() => [] as number[]);
  for (let r = 0; r < (flag('quick') ? 8 : 24); r++) {
    cases.forEach((c, i) => {
      const w = ws[(r * cases.length + i) % C]!;
      const t0 = performance.now();
      (c.dense ? matmul(c.x, w) : sparseMatmul(c.x, w, c.t)).dispose();
      if (r > 1) t[i]!.push(performance.now() - t0);
    });
  }
  const base = median(t[0]!);
  cases.forEach((c, i) => {
    const xs = c.x.dataSync();
    const tv = c.t?.dataSync()[0] ?? 0;
    opRows.push({ case: c.name, active: xs.filter((v) => v !== 0 && Math.abs(v) >= tv).length / K, ms: Math.round(median(t[i]!) * 1000) / 1000, vs_dense: Math.round((base / median(t[i]!)) * 100) / 100 });
    c.x.dispose();
    c.t?.dispose();
  });
  for (const w of ws) w.dispose();
}

const info = { date: new Date().toISOString(), cpu: cpus()[0]?.model ?? 'unknown', cpus: cpus().length, threads: backend.info?.().threads, node: process.version, steps, runs };
if (json) {
  console.log(JSON.stringify({ info, kl_budget: KL_BUDGET, chosen, greedy: greedy ? formatSpec(greedy) : null, quality, speed, down_projection: opRows }));
} else {
  log(`wasm, ${info.threads} threads, ${info.cpu}, ${info.date}`);
  log('\n| method | target sparsity | calibration sparsity | KL (nats) | top-1 | ppl (dense) |');
  log('|---|---:|---:|---:|---:|---:|');
  for (const q of quality) log(`| ${q.method} | ${q.sparsity} | ${q.calibration_sparsity.toFixed(3)} | ${q.kl.toFixed(4)} | ${(100 * q.top1).toFixed(1)}% | ${q.ppl.toFixed(3)} (${q.ref_ppl.toFixed(3)}) |`);
  log(`\nlargest sparsity with KL ≤ ${KL_BUDGET}: ${Object.entries(chosen).map(([m, v]) => `${m} ${v}`).join(', ') || 'none'}${greedy ? `; teal greedy ${formatSpec(greedy)}` : ''}`);
  log('\n| model | mode | sparsity | decode ms/token (median) | 10th percentile ms | speedup (medians) | speedup (median of per-step pairs) | CPU ms/token | CPU speedup (per-step pairs) |');
  log('|---|---|---|---:|---:|---:|---:|---:|---:|');
  const x = (v: number | null) => (v === null ? '' : `${v.toFixed(2)}x`);
  for (const s of speed) log(`| ${s.model} | ${s.mode} | ${s.spec ?? ''} | ${s.ms_per_token.toFixed(2)} | ${s.p10_ms.toFixed(2)} | ${x(s.speedup)} | ${x(s.paired_speedup)} | ${s.cpu_ms_per_token.toFixed(2)} | ${x(s.cpu_paired_speedup)} |`);
  log('\n| down projection 4096 x 1024 [in, out], from memory | rows read | ms | speed vs dense |');
  log('|---|---:|---:|---:|');
  for (const o of opRows) log(`| ${o.case} | ${(100 * o.active).toFixed(0)}% | ${o.ms.toFixed(3)} | ${o.vs_dense.toFixed(2)}x |`);
}
disposeBackends();
