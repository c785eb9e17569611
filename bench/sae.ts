// Benchmark and proof: SAE training (TopK and ReLU-L1) with actlab (wasm or WebGPU) beside PyTorch
// (bench/sae_torch.py, CPU or CUDA) in the same run, from the same activations, initial weights and
// batch order: tokens/s of each (after 5 warm-up steps), and the FVU and L0 each reaches after the
// same tokens (within 5% is the bar).
// Usage: npm run bench:sae [-- --store DIR --hook NAME] [--tokens N] [--d-sae N] [--k K] [--l1 X]
//        [--backend wasm|webgpu] [--device cpu|cuda] [--no-peers] [--json]
//        [--planted [--d-in 768] [--rows 65536] [--features 4096] [--density 32]]
// Without --store it runs on the induction organism (its store is built under bench/.cache); with
// --planted, on activations made as sparse combinations of known directions plus noise
// (src/sae/planted.ts), sized by --d-in and --rows: the size that fills a GPU is
// `--planted --d-in 768 --d-sae 24576`. --device cuda runs the PyTorch side on the GPU.
import { join } from 'node:path';
import '../src/backends/index.js';
import { disposeBackends, initBackend } from '../src/tensor/engine.js';
import { plantedActivations } from '../src/sae/planted.js';
import { compareWithTorch, inductionStore, ROOT, type CompareRow } from './sae-run.js';

const args = process.argv.slice(2);
const flag = (n: string) => args.includes(`--${n}`);
const opt = (n: string, d: string) => { const i = args.indexOf(`--${n}`); return i >= 0 ? args[i + 1]! : d; };
const backend = await initBackend(opt('backend', 'wasm'));
const work = join(ROOT, 'bench', '.cache', 'sae');
const planted = flag('planted');
const dIn = Number(opt('d-in', '768'));
const features = Number(opt('features', '4096'));
const rowsData = planted ? plantedActivations({
  d: dIn, features, rows: Number(opt('rows', '65536')), density: Number(opt('density', '32')) / features, noise: 0.01, seed: 11,
}).x : null;
const store = planted ? `planted d_in ${dIn}, ${features} directions` : flag('store') ? opt('store', '') : await inductionStore(join(work, 'induction-store'), await initBackend('wasm'));
const hook = planted ? 'planted' : opt('hook', 'blocks.1.hook_resid_post');
const torchDevice = opt('device', 'cpu') as 'cpu' | 'cuda';
const tokens = Number(opt('tokens', '409600'));
const dSae = Number(opt('d-sae', '512'));
const rows: { arch: string; r: CompareRow }[] = [];
for (const arch of ['topk', 'standard'] as const) {
  const res = await compareWithTorch({
    ...(rowsData ? { rows: { data: rowsData, d: dIn, name: `planted-${dIn}-${features}` } } : { store }), hook, torchDevice, arch, k: Number(opt('k', '16')), coefficient: Number(opt('l1', '2')), coefficientWarmup: 10, dSae, tokens,
    batchSize: Number(opt('batch-size', '4096')), lr: Number(opt('lr', '1e-3')), lrWarmup: 5, lrDecay: 20, deadWindow: 20,
    workDir: work, backend, noTorch: flag('no-peers'),
  });
  for (const r of res) rows.push({ arch, r });
}
disposeBackends();
if (flag('json')) {
  for (const { arch, r } of rows) console.log(JSON.stringify({ bench: 'sae', store, hook, arch, d_sae: dSae, ...r }));
} else {
  console.log(`SAE training, ${planted ? store : `${hook} of ${store}`}, d_sae ${dSae}, ${tokens} tokens, batch ${opt('batch-size', '4096')}, f32`);
  console.log('| arch | impl | tokens/s | FVU | L0 |\n|---|---|---|---|---|');
  for (const { arch, r } of rows) console.log(`| ${arch === 'standard' ? 'relu-l1' : arch} | ${r.impl} | ${Math.round(r.tokens_per_s)} | ${r.fvu.toFixed(4)} | ${r.l0.toFixed(2)} |`);
  for (const arch of ['topk', 'standard']) {
    const [a, t] = rows.filter((x) => x.arch === arch).map((x) => x.r);
    if (a && t) console.log(`${arch === 'standard' ? 'relu-l1' : arch}: actlab/PyTorch speed ${(a.tokens_per_s / t.tokens_per_s).toFixed(2)}x; FVU differs by ${(100 * Math.abs(a.fvu - t.fvu) / t.fvu).toFixed(2)}%, L0 by ${(100 * Math.abs(a.l0 - t.l0) / t.l0).toFixed(2)}%`);
  }
}
