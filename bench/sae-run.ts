// The SAE comparison with PyTorch, shared by `npm run bench:sae` and test-shared/sae-torch.test.ts:
// read a store's rows, fix an evaluation slice and a training order, initialise an SAE (b_dec at the
// geometric median, SAELens' input scaling), write the seed file (initial weights, order, settings),
// train with actlab, train with bench/sae_torch.py from the same store and seed file, and report
// tokens/s, FVU and L0 of both. Also builds the induction organism's store (its sequences as a
// corpus through `harvest`, the code behind `actlab cache`).
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { cpus } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Backend } from '../src/tensor/backend.js';
import { encodeSafetensorsHeader } from '../src/formats/safetensors.js';
import { writeAtomic } from '../src/io/file-store.js';
import { BytesSource } from '../src/io/byte-source.js';
import { getPlatform } from '../src/io/platform.js';
import { loadModel } from '../src/models/load.js';
import { Rng } from '../src/ops/creation.js';
import { inductionTrainingData } from '../src/organisms/induction.js';
import { ActivationStore } from '../src/store/reader.js';
import { harvest } from '../src/store/writer.js';
import type { Tokenizer } from '../src/tokenizer/tokenizer.js';
import { Tensor } from '../src/tensor/tensor.js';
import { tidy } from '../src/tensor/engine.js';
import { ne, square, sub } from '../src/ops/elementwise.js';
import { cast } from '../src/ops/layout.js';
import { sum } from '../src/ops/reduce.js';
import type { SaeDataSource } from '../src/sae/data.js';
import { geometricMedian, initSae, scalingFactor } from '../src/sae/init.js';
import { trainSae } from '../src/sae/train.js';
import type { Sae } from '../src/sae/sae.js';

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), ...(import.meta.url.includes('/dist/') ? ['..', '..'] : ['..']));

export interface CompareOptions {
  /** An activation store and its hook, or `rows` (planted data: written once to a file PyTorch reads). */
  store?: string;
  hook: string;
  rows?: { data: Float32Array; d: number; name: string };
  arch: 'topk' | 'standard';
  k?: number;
  coefficient?: number;
  coefficientWarmup?: number;
  dSae: number;
  tokens: number;
  batchSize: number;
  lr: number;
  lrWarmup?: number;
  lrDecay?: number;
  deadWindow?: number;
  seed?: number;
  workDir: string;
  backend: Backend;
  /** Skip the PyTorch run. */
  noTorch?: boolean;
  /** Where PyTorch trains (default cpu). */
  torchDevice?: 'cpu' | 'cuda';
  threads?: number;
}

export interface CompareRow {
  impl: string;
  tokens: number;
  seconds: number;
  tokens_per_s: number;
  fvu: number;
  l0: number;
}

/** All rows of `hook` in store order. */
export async function storeRows(store: ActivationStore, hook: string, backend: Backend): Promise<{ rows: Float32Array; n: number; d: number }> {
  const d = store.rowShape(hook)[0]!;
  const parts: Float32Array[] = [];
  for await (const t of store.batches({ hook, batchSize: 8192, dtype: 'f32', backend })) {
    parts.push((await t.data()) as Float32Array);
    t.dispose();
  }
  const rows = new Float32Array(parts.reduce((s, p) => s + p.length, 0));
  let o = 0;
  for (const p of parts) { rows.set(p, o); o += p.length; }
  return { rows, n: rows.length / d, d };
}

function orderSource(rows: Float32Array, d: number, order: Int32Array, B: number): SaeDataSource {
  let step = 0;
  return {
    dIn: d, dOut: d,
    async next() {
      const x = new Float32Array(B * d);
      for (let r = 0; r < B; r++) { const i = order[step * B + r]!; x.set(rows.subarray(i * d, (i + 1) * d), r * d); }
      step++;
      return { x, rows: B };
    },
  };
}

/**
 * FVU and L0 of `sae` on rows (its scaling already folded in). The products run on the backend and
 * only per-row sums come back ([rows] squared errors and active counts, added up here in f64).
 */
export async function fvuL0(sae: Sae, rows: Float32Array, d: number, backend: Backend): Promise<{ fvu: number; l0: number }> {
  const n = rows.length / d;
  const x = Tensor.from(rows, [n, d], 'f32', backend);
  const [errRows, nzRows] = tidy(() => {
    const acts = sae.encode(x);
    const rec = sae.forward(x);
    return [sum(square(sub(rec, x)), 1), sum(cast(ne(acts, 0), 'f32'), 1)];
  });
  const e = (await errRows.data()) as Float32Array;
  const z = (await nzRows.data()) as Float32Array;
  x.dispose(); errRows.dispose(); nzRows.dispose(); sae.dispose();
  const mean = new Float64Array(d);
  for (let i = 0; i < rows.length; i++) mean[i % d] += rows[i]! / n;
  let v = 0;
  for (let i = 0; i < rows.length; i++) v += (rows[i]! - mean[i % d]!) ** 2;
  let err = 0;
  let nz = 0;
  for (let r = 0; r < n; r++) { err += e[r]!; nz += z[r]!; }
  return { fvu: err / v, l0: nz / n };
}

export function findTorch(): string | null {
  return ['/usr/bin/python3', 'python3'].find((p) => spawnSync(p, ['-c', 'import torch'], { stdio: 'ignore' }).status === 0) ?? null;
}

export async function compareWithTorch(o: CompareOptions): Promise<CompareRow[]> {
  const { rows, n, d } = o.rows ? { rows: o.rows.data, n: o.rows.data.length / o.rows.d, d: o.rows.d }
    : await storeRows(await ActivationStore.open(o.store ?? ''), o.hook, o.backend);
  const B = o.batchSize;
  const steps = Math.ceil(o.tokens / B);
  const evalRows = Math.min(8192, Math.floor(n / 10));
  // tokens/s counts the steps after these (kernel compilation, CUDA start-up), on both sides.
  const warm = Math.min(5, Math.floor(steps / 4));
  const trainRows = n - evalRows;
  const order = new Int32Array(steps * B);
  const rng = new Rng(o.seed ?? 0);
  for (let filled = 0; filled < order.length;) {
    const perm = Int32Array.from({ length: trainRows }, (_, i) => i);
    for (let j = trainRows - 1; j > 0; j--) { const k = rng.int(j + 1); const t = perm[j]!; perm[j] = perm[k]!; perm[k] = t; }
    const take = Math.min(trainRows, order.length - filled);
    order.set(perm.subarray(0, take), filled);
    filled += take;
  }
  // Initialisation from the first 4 batches of the order: scaling factor, then b_dec at their geometric median.
  const initN = Math.min(4 * B, trainRows);
  const sample = new Float32Array(initN * d);
  for (let r = 0; r < initN; r++) sample.set(rows.subarray(order[r]! * d, (order[r]! + 1) * d), r * d);
  const scale = scalingFactor(sample, initN, d);
  for (let i = 0; i < sample.length; i++) sample[i] *= scale;
  const cfg = { architecture: o.arch, d_in: d, d_sae: o.dSae, ...(o.arch === 'topk' ? { k: o.k } : {}), apply_b_dec_to_input: true, normalize_activations: 'none' as const, dtype: 'float32', metadata: { hook_name: o.hook } };
  const init = initSae(cfg, { seed: o.seed ?? 0 });
  init.param('b_dec').set(geometricMedian(sample, initN, d));
  init.changed();
  const settings = {
    hook: o.hook, architecture: o.arch, k: o.k ?? null, coefficient: o.coefficient ?? 5, coefficient_warmup: o.coefficientWarmup ?? 0,
    batch_size: B, steps, lr: o.lr, lr_warmup: o.lrWarmup ?? 0, lr_decay: o.lrDecay ?? 0, adam_beta1: 0.9, adam_beta2: 0.999,
    dead_window: o.deadWindow ?? 1000, aux_coefficient: 1, scaling_factor: scale, eval_start: trainRows, eval_rows: evalRows,
    warm_steps: warm,
  };
  mkdirSync(o.workDir, { recursive: true });
  const seedFile = join(o.workDir, `seed-${o.arch}.safetensors`);
  const tensors = [
    ...(['W_enc', 'b_enc', 'W_dec', 'b_dec'] as const).map((nm) => ({ name: nm, dtype: 'f32' as const, shape: nm === 'W_enc' ? [d, o.dSae] : nm === 'W_dec' ? [o.dSae, d] : nm === 'b_enc' ? [o.dSae] : [d], data: new Uint8Array(init.param(nm).buffer.slice(0)) })),
    { name: 'order', dtype: 'i32' as const, shape: [order.length], data: new Uint8Array(order.buffer.slice(0)) },
  ];
  const { prefix } = encodeSafetensorsHeader(seedFile, tensors, { config: JSON.stringify(settings) });
  const fs = (await getPlatform()).store;
  await writeAtomic(fs, seedFile, async (sink) => { await sink.write(prefix); for (const t of tensors) await sink.write(t.data); });
  let rowsFile: string | null = null;
  if (o.rows && !o.noTorch) {
    rowsFile = join(o.workDir, `rows-${o.rows.name}.safetensors`);
    const t = { name: 'rows', dtype: 'f32' as const, shape: [n, d], data: new Uint8Array(rows.buffer, rows.byteOffset, rows.byteLength) };
    const h = encodeSafetensorsHeader(rowsFile, [t]).prefix;
    await writeAtomic(fs, rowsFile, async (sink) => { await sink.write(h); await sink.write(t.data); });
  }

  const t0 = performance.now();
  let tWarm = t0;
  const r = await trainSae(orderSource(rows, d, order, B), {
    onStep: (st) => { if (st.step === warm) tWarm = performance.now(); },
    architecture: o.arch, dSae: o.dSae, k: o.k, coefficient: settings.coefficient, coefficientWarmupSteps: settings.coefficient_warmup,
    tokens: steps * B, batchSize: B, lr: o.lr, lrWarmupSteps: settings.lr_warmup, lrDecaySteps: settings.lr_decay,
    deadFeatureWindow: settings.dead_window, init, skipInit: true, scalingFactor: scale, backend: o.backend,
  });
  const t1 = performance.now();
  const seconds = (t1 - t0) / 1000;
  const m = await fvuL0(r.sae, rows.subarray(trainRows * d), d, o.backend);
  const out: CompareRow[] = [{ impl: `actlab-${o.backend.name}`, tokens: steps * B, seconds, tokens_per_s: ((steps - warm) * B) / ((t1 - tWarm) / 1000), ...m }];
  const py = o.noTorch ? null : findTorch();
  if (py) {
    const threads = o.threads ?? cpus().length;
    const env = { ...process.env, OMP_WAIT_POLICY: 'passive', OMP_NUM_THREADS: String(threads) };
    const source = rowsFile ? ['--rows', rowsFile] : ['--store', o.store ?? ''];
    const dev = o.torchDevice ?? 'cpu';
    const txt = execFileSync(py, [join(ROOT, 'bench', 'sae_torch.py'), ...source, '--seed-file', seedFile, '--threads', String(threads), '--device', dev], { env, encoding: 'utf8', maxBuffer: 1 << 24 });
    const j = JSON.parse(txt.trim().split('\n').pop()!);
    out.push({ impl: dev === 'cuda' ? `pytorch ${j.torch} cuda (${j.device})` : `pytorch ${j.torch} cpu (${j.threads} threads)`, tokens: j.tokens, seconds: j.seconds, tokens_per_s: j.tokens_per_s, fvu: j.fvu, l0: j.l0 });
  }
  return out;
}

/** Characters for the induction organism's token ids (ids 3..63 as printable ASCII, one char per token). */
function inductionTokenizer(): Tokenizer {
  return {
    kind: 'hf', vocabSize: 64, bosId: 1, eosId: null, eosIds: [], padId: null, chatTemplate: null,
    encode: (text, o) => [...(o?.addSpecialTokens === false ? [] : [1]), ...[...text].map((c) => c.charCodeAt(0) - 48)],
    decode: (ids) => ids.map((i) => String.fromCharCode(48 + i)).join(''),
    idToToken: (id) => String.fromCharCode(48 + id),
    tokenToId: (t) => t.charCodeAt(0) - 48,
    applyChatTemplate: () => { throw new Error('no chat template'); },
  };
}

/** The induction organism's residual streams over its training distribution, as an activation store in `dir` (kept if present). */
export async function inductionStore(dir: string, backend: Backend, sequences = 4096): Promise<string> {
  if (existsSync(join(dir, 'manifest.json'))) return dir;
  const { model } = await loadModel(join(ROOT, 'models', 'organisms', 'induction'), { backend });
  const text = inductionTrainingData(sequences, 1234).map((s) => s.slice(1).map((i) => String.fromCharCode(48 + i)).join('')).join('\n');
  await harvest({
    model, tokenizer: inductionTokenizer(), corpus: new BytesSource(new TextEncoder().encode(text), 'induction-sequences.txt'),
    corpusOptions: { split: 'line' }, hooks: ['blocks.0.hook_resid_post', 'blocks.1.hook_resid_post'], outDir: dir, context: 49,
    source: 'models/organisms/induction',
  });
  model.dispose();
  return dir;
}
