// Benchmark: one training step (forward, cross-entropy backward, AdamW) of a GPT-2-small-shaped
// model at batch 4, T=128, f32, on an actlab backend, side by side in the same run with PyTorch
// CPU (bench/train_torch.py, the same model and step, when python3 with torch is installed).
// Usage: npm run bench:train [-- --backend wasm] [--json] [--runs N] [--no-peers]
import { execFileSync, spawnSync } from 'node:child_process';
import { cpus } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import '../src/backends/index.js';
import { disposeBackends, initBackend } from '../src/tensor/engine.js';
import { randomModel } from '../src/models/random.js';
import { train } from '../src/train/trainer.js';

const args = process.argv.slice(2);
const flag = (n: string) => args.includes(`--${n}`);
const opt = (n: string, d: string) => { const i = args.indexOf(`--${n}`); return i >= 0 ? args[i + 1]! : d; };
const backendName = opt('backend', 'wasm');
const runs = Number(opt('runs', '5'));
const warmup = 2;
const B = 4;
const T = 128;
const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

const backend = await initBackend(backendName);
const model = randomModel({ model_type: 'gpt2', n_embd: 768, n_head: 12, n_layer: 12, n_positions: 1024, vocab_size: 50257 }, backend, { seed: 0, std: 0.02 });
let x = 1;
const data = Array.from({ length: B * (warmup + runs) }, () => Array.from({ length: T + 1 }, () => (x = (x * 1103515245 + 12345) % 2147483648) % 50257));
const times: number[] = [];
// `--micro-batch 1|2` takes the batch of 4 as accumulated micro-batches (the same update with
// fewer activations alive at once), for memories smaller than wasm32's 4 GiB.
const micro = Number(opt('micro-batch', String(B)));
await train(model, data, {
  steps: warmup + runs, batchSize: micro, gradAccum: B / micro, lr: 1e-4, weightDecay: 0.1,
  onStep: (s) => { if (s.step > warmup) times.push(s.ms); },
});
model.dispose();
disposeBackends();
times.sort((a, b) => a - b);
const mine = times[Math.floor(times.length / 2)]!;
const rows: { impl: string; step_ms: number; steps_per_s: number }[] = [{ impl: `actlab-${backendName}`, step_ms: Math.round(mine), steps_per_s: 1000 / mine }];

if (!flag('no-peers')) {
  const py = ['/usr/bin/python3', 'python3'].find((p) => spawnSync(p, ['-c', 'import torch'], { stdio: 'ignore' }).status === 0);
  if (py) {
    const env = { ...process.env, OMP_WAIT_POLICY: 'passive', OMP_NUM_THREADS: String(cpus().length) };
    const out = execFileSync(py, [join(root, 'bench', 'train_torch.py'), '--runs', String(runs)], { env, encoding: 'utf8' });
    const j = JSON.parse(out.trim().split('\n').pop()!);
    rows.push({ impl: `pytorch ${j.torch} (passive)`, step_ms: j.step_ms, steps_per_s: j.steps_per_s });
  } else console.error('PyTorch skipped: no python3 with torch (apt-get install python3-torch)');
}

if (flag('json')) {
  for (const r of rows) console.log(JSON.stringify({ bench: 'train', impl: r.impl, batch: B, T, metric: 'steps_per_s', value: Math.round(r.steps_per_s * 1000) / 1000 }));
} else {
  console.log(`One training step (forward + backward + AdamW), GPT-2 small shape, batch ${B} (actlab: ${B / micro} accumulated micro-batches of ${micro}), T=${T}, f32, ${cpus().length} threads; median of ${runs}`);
  console.log('| impl | ms/step | steps/s |\n|---|---|---|');
  for (const r of rows) console.log(`| ${r.impl} | ${r.step_ms} | ${r.steps_per_s.toFixed(3)} |`);
  if (rows.length === 2) console.log(`actlab / PyTorch: ${(rows[0]!.steps_per_s / rows[1]!.steps_per_s).toFixed(2)}x (target >= 0.5x)`);
}
