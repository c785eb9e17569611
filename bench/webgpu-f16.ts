// f16 models on the WebGPU backend beside PyTorch CUDA eager in f16 (bench/gpu_torch.py f16) in the
// same run: a GPT-2-small-shaped and a TinyLlama-1.1B-shaped model (random weights, batch 1) in f32
// and in f16 (weights and activations f16, every kernel accumulating in f32): prefill tokens/s with
// full logits (T=128, 512), greedy decode ms/token, the f16 model's mean KL to its f32 original
// and top-1 agreement over 128 positions (PyTorch prints the same measure of its own f16 model),
// and f16 prefill with the tensor-core (subgroup-matrix) GEMM turned off, to show what it brings.
// Usage: npm run build && node dist/bench/webgpu-f16.js [--json] [--quick] [--no-peers] [--models gpt2-small,llama-1b]
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import '../src/backends/index.js';
import { enableSubgroupMatmul } from '../src/backends/webgpu/kernels/matmul-f16.js';
import { compareLogits } from '../src/models/evaluate.js';
import { randomModel } from '../src/models/random.js';
import { tensor } from '../src/ops/creation.js';
import { disposeBackends, initBackend } from '../src/tensor/engine.js';
import type { DType } from '../src/tensor/dtype.js';
import { benchModel, CONFIGS, ids, timeAsync, type Row } from './webgpu-model.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const MODELS: Record<string, Record<string, unknown>> = {
  'gpt2-small': CONFIGS['gpt2-small']!,
  'gpt2-tiny': CONFIGS['gpt2-tiny']!, // a quick check of the script itself
  'llama-1b': {
    model_type: 'llama', hidden_size: 2048, num_attention_heads: 32, num_key_value_heads: 4, num_hidden_layers: 22,
    intermediate_size: 5632, vocab_size: 32000, max_position_embeddings: 2048, rope_theta: 10000, rms_norm_eps: 1e-5,
  },
};

export async function main(args: string[]): Promise<void> {
  const json = args.includes('--json');
  const quick = args.includes('--quick');
  const mi = args.indexOf('--models');
  const models = mi >= 0 ? args[mi + 1]!.split(',') : ['gpt2-small', 'llama-1b'];
  const rows: Row[] = [];
  // Each row is printed as it comes (JSON lines with --json, else a short line on stderr), so a
  // run cut short still shows what it measured.
  const emit = (r: Row) => {
    rows.push(r);
    if (json) console.log(JSON.stringify(r));
    else console.error(`  ${r.impl.split(' (')[0]} ${r.model} ${r.metric} T=${r.T}: ${r.value.toPrecision(4)}${r.note ? ` (${r.note})` : ''}`);
  };
  // The peer first: its process has ended (and freed the GPU) before actlab opens the device.
  if (!args.includes('--no-peers')) {
    const py = spawnSync('python3', [join(root, 'bench', 'gpu_torch.py'), 'f16', '--models', models.join(','), ...(quick ? ['--quick'] : [])], { encoding: 'utf8', maxBuffer: 1 << 24 });
    if (py.status === 0) for (const line of py.stdout.trim().split('\n')) emit(JSON.parse(line));
    else console.error(`PyTorch peer skipped: ${(py.stderr || py.error?.message || '').trim().split('\n').pop()}`);
  }
  const be = await initBackend('webgpu');
  if (!json) console.log(`f16 models on webgpu: ${JSON.stringify(be.info?.())}`);
  for (const name of models) {
    const cfg = MODELS[name];
    if (!cfg) throw new Error(`--models: unknown model '${name}' (${Object.keys(MODELS).join(', ')})`);
    const V = cfg.vocab_size as number;
    const x = tensor(ids(128, V, 5), [1, 128], 'i32', { backend: be });
    const logits: Partial<Record<DType, Float32Array>> = {};
    for (const dtype of ['f32', 'f16'] as const) {
      const t0 = performance.now();
      const model = randomModel(cfg, be, { seed: 0, std: 0.02, dtype, draw: 'backend' });
      await be.flush();
      if (!json) console.log(`${name} ${dtype}: weights drawn on the GPU in ${((performance.now() - t0) / 1e3).toFixed(1)} s`);
      const y = model.forward(x);
      logits[dtype] = (await y.data()) as Float32Array;
      y.dispose();
      await benchModel(`${name} ${dtype}`, model, be, quick, emit);
      if (dtype === 'f16') {
        enableSubgroupMatmul(false);
        const x512 = tensor(ids(512, V), [1, 512], 'i32', { backend: be });
        const ms = await timeAsync(async () => { model.forward(x512).dispose(); await be.flush(); }, quick ? 3 : 7);
        x512.dispose();
        enableSubgroupMatmul(true);
        emit({ bench: 'model', model: `${name} f16`, impl: 'actlab-webgpu', metric: 'prefill_tok_s_no_tensor_cores', T: 512, value: 512 / (ms / 1e3), ms });
      }
      model.dispose();
      await be.flush();
    }
    x.dispose();
    const c = compareLogits(logits.f32!, logits.f16!, V);
    emit({ bench: 'model', model: `${name} f16`, impl: 'actlab-webgpu', metric: 'kl_to_f32', T: 128, value: c.kl, note: `top-1 ${(100 * c.top1).toFixed(1)}%` });
  }
  disposeBackends();
  if (json) return;
  console.log('\n| model | metric | T | actlab-webgpu | PyTorch CUDA eager | ratio (≥ 1: actlab faster) |');
  console.log('|---|---|---|---:|---:|---:|');
  for (const r of rows.filter((x) => x.impl === 'actlab-webgpu')) {
    const pt = rows.find((x) => x.impl.startsWith('pytorch') && x.model === r.model && x.metric === r.metric && x.T === r.T);
    const fmt = (v: number) => (r.metric.startsWith('prefill') ? v.toFixed(0) : r.metric === 'kl_to_f32' ? v.toExponential(2) : v.toFixed(2));
    const ratio = !pt ? '-' : r.metric === 'decode_ms_per_token' ? (pt.value / r.value).toFixed(2) + '×' : r.metric === 'prefill_tok_s' ? (r.value / pt.value).toFixed(2) + '×' : '-';
    console.log(`| ${r.model} | ${r.metric} | ${r.T} | ${fmt(r.value)}${r.note ? ` (${r.note})` : ''} | ${pt ? fmt(pt.value) + (pt.note ? ` (${pt.note})` : '') : '-'} | ${ratio} |`);
  }
  const pt = rows.find((r) => r.impl.startsWith('pytorch'));
  console.log(`(prefill in tokens/s with full logits, decode in ms/token, KL in nats; PyTorch: ${pt?.impl ?? 'not run'})`);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  main(process.argv.slice(2)).then(() => process.exit(0), (e) => { console.error(e); process.exit(1); });
}
