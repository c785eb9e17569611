// Models in f16 and bf16 (weights and activations, f32 accumulation in every kernel): the logits'
// mean KL to the same model in f32 and the top-1 agreement, for every architecture, on the js
// reference, wasm and (where an adapter exists) WebGPU; the CLI's --dtype on eval (KL to f32 with
// --ref) and its refusal of block-quantized weights.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import '../src/backends/index.js';
import { initBackend } from '../src/tensor/engine.js';
import { randomModel } from '../src/models/random.js';
import { compareLogits } from '../src/models/evaluate.js';
import { tensor } from '../src/ops/creation.js';
import type { Backend } from '../src/tensor/backend.js';
import type { DType } from '../src/tensor/dtype.js';
import { TINY } from './helpers/tiny-configs.js';
import { openWebGpu } from './webgpu-helpers.js';
import { capture } from './helpers/capture.js';

const ARCHS = ['gpt2', 'llama', 'qwen2', 'gpt_neox', 'gemma', 'mixtral', 'actlab_toy (MLP, LayerNorm)'];
const IDS = [[3, 17, 5, 40, 2, 9, 33, 11, 7, 58, 21, 4]];

async function logits(cfg: Record<string, unknown>, be: Backend, dtype: DType): Promise<{ y: Float32Array; dtype: string }> {
  const m = randomModel(cfg, be, { seed: 3, std: 0.3, dtype });
  try {
    const out = m.forward(tensor(IDS, undefined, 'i32', { backend: be }));
    const y = (await out.data()) as Float32Array;
    return { y, dtype: out.dtype };
  } finally {
    m.dispose();
  }
}

describe('f16 and bf16 models', () => {
  for (const name of ARCHS) {
    it(`${name}: f16 and bf16 logits against f32 on js and wasm`, async () => {
      const cfg = TINY[name]!;
      const V = (cfg.vocab_size ?? cfg.d_vocab) as number;
      const js = await initBackend('js');
      const ref = await logits(cfg, js, 'f32');
      for (const be of ['js', 'wasm']) {
        const backend = await initBackend(be);
        for (const dtype of ['f16', 'bf16'] as const) {
          const r = await logits(cfg, backend, dtype);
          const c = compareLogits(ref.y, r.y, V);
          console.log(`${name} ${be} ${dtype}: KL to f32 ${c.kl.toExponential(2)} nats, top-1 ${(100 * c.top1).toFixed(0)}%`);
          expect(r.dtype).toBe(dtype);
          // f16 keeps 11 significant bits, bf16 8: KL budgets two orders apart
          expect(c.kl).toBeLessThan(dtype === 'f16' ? 1e-4 : 1e-2);
          expect(c.kl).toBeGreaterThan(0);
          if (dtype === 'f16') expect(c.top1).toBeGreaterThanOrEqual(0.9);
        }
      }
    }, 120_000);
  }
});

describe('f16 models on webgpu', async () => {
  const { backend, reason } = await openWebGpu();
  if (!backend) console.log(`f16 webgpu tests skipped: ${reason}`);
  afterAll(() => backend?.dispose());
  it.skipIf(!backend)('gpt2 and llama: webgpu f16 logits equal the js reference\'s f16 logits, KL to f32 as on js', async () => {
    const js = await initBackend('js');
    for (const name of ['gpt2', 'llama']) {
      const cfg = TINY[name]!;
      const V = cfg.vocab_size as number;
      const ref = await logits(cfg, js, 'f32');
      const a = await logits(cfg, js, 'f16');
      const g = await logits(cfg, backend!, 'f16');
      const cj = compareLogits(ref.y, a.y, V), cg = compareLogits(ref.y, g.y, V);
      let d = 0;
      for (let i = 0; i < a.y.length; i++) d = Math.max(d, Math.abs(a.y[i]! - g.y[i]!));
      console.log(`${name} webgpu f16: KL to f32 ${cg.kl.toExponential(2)} (js f16 ${cj.kl.toExponential(2)}), max |webgpu - js| f16 logit ${d.toExponential(2)}`);
      expect(g.dtype).toBe('f16');
      expect(cg.kl).toBeLessThan(1e-4);
      // both round every activation to f16; they may differ by a few f16 ulps where sums are ordered differently
      expect(d).toBeLessThan(0.05);
    }
  }, 600_000);
});

describe('actlab --dtype', () => {
  // actlab's character-level Shakespeare model (GPT-2 layout, f16 safetensors)
  const MODEL = new URL('../models/shakespeare-char', import.meta.url).pathname;
  const dir = mkdtempSync(join(tmpdir(), 'actlab-f16-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const cli = (...args: string[]) => capture(args);

  it('eval --dtype f16 --ref SAME reports the KL of f16 to f32 and half the weight memory', async () => {
    const data = join(dir, 'data.txt');
    writeFileSync(data, 'First Citizen:\nBefore we proceed any further, hear me speak.\n\nAll:\nSpeak, speak.\n\nFirst Citizen:\nYou are all resolved rather to die than to famish?\n');
    const run = async (dtype: string) => {
      const r = await cli('eval', '--model', MODEL, '--dtype', dtype, '--ref', MODEL, '--data', data, '--ctx', '64', '--chunks', '2', '--json');
      expect(r.code, r.err).toBe(0);
      return JSON.parse(r.out.trim().split('\n').pop()!);
    };
    const f32 = await run('f32'), f16 = await run('f16');
    console.log(`shakespeare-char: f16 KL to f32 ${f16.kl_divergence.toExponential(2)} nats, top-1 ${f16.top1_agreement}, perplexity ${f16.perplexity.toFixed(4)} vs ${f32.perplexity.toFixed(4)}; weights ${f16.memory.resident_bytes} vs ${f32.memory.resident_bytes} B`);
    expect(f16).toMatchObject({ dtype: 'f16', ref_dtype: 'f32' });
    expect(f32.kl_divergence).toBe(0);
    expect(f16.kl_divergence).toBeGreaterThan(0);
    expect(f16.kl_divergence).toBeLessThan(1e-3);
    expect(f16.memory.resident_bytes).toBe(f32.memory.resident_bytes / 2);
  }, 120_000);

  it('refuses --dtype f16 on block-quantized weights, naming the tensor and its type', async () => {
    const gguf = join(dir, 'q8.gguf');
    const q = await cli('quantize', '--model', MODEL, '--type', 'q8_0', '--out', gguf);
    expect(q.code, q.err).toBe(0);
    const r = await cli('hooks', '--model', gguf, '--dtype', 'f16');
    expect(r.code).not.toBe(0);
    expect(r.err).toMatch(/dtype f16: '[^']+' is stored as Q8_0; models with block-quantized weights run with f32 activations/);
    expect((await cli('hooks', '--model', MODEL, '--dtype', 'f8')).err).toMatch(/--dtype.*f8.*(f32|choices)/s);
  }, 120_000);
});
