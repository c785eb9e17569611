// Every fixtures/hf architecture end to end on WebGPU against transformers: logits, residual
// stream and attention patterns within 1e-4 (through runWithCache, read back with data()),
// greedy continuation with a KV cache, left-padded batches. Skips with the reason where there is
// no adapter (see webgpu-helpers.ts for SwiftShader). MoE models are reported, not required: their
// router reads expert indices with dataSync(), which an asynchronous backend cannot serve.
import { describe, expect, it } from 'vitest';
import '../src/backends/index.js';
import { initBackend, disposeBackends } from '../src/tensor/engine.js';
import { SafetensorsFile } from '../src/formats/safetensors.js';
import { NodeFileSource } from '../src/io/node/file-source.js';
import { buildModel } from '../src/models/registry.js';
import { runWithCache } from '../src/hooks/run.js';
import { KVCache } from '../src/models/layers/kv-cache.js';
import { tensor } from '../src/ops/creation.js';
import { openWebGpu } from './webgpu-helpers.js';
// @ts-expect-error plain JS module shared with the device script
import { checkModels, table } from '../scripts/gpu/check-models.mjs';

const { backend, reason } = await openWebGpu();
if (!backend) console.log(`webgpu model tests skipped: ${reason}`);
backend?.dispose();
const MOE = new Set(['mixtral', 'qwen2_moe']);

describe.skipIf(!backend)('models end to end on webgpu', () => {
  it('match transformers within 1e-4', async () => {
    const lib = { initBackend, SafetensorsFile, NodeFileSource, buildModel, runWithCache, KVCache, tensor };
    const rows = (await checkModels(lib, { backendName: 'webgpu' })) as { arch: string; status: string; error?: string }[];
    console.log(table(rows, 'webgpu'));
    disposeBackends();
    for (const r of rows) {
      if (MOE.has(r.arch)) expect(r.status === 'pass' || /cannot read synchronously/.test(r.error ?? ''), `${r.arch}: ${r.error}`).toBe(true);
      else expect(r.status, `${r.arch}: ${r.error ?? ''}`).toBe('pass');
    }
  }, 1_800_000);
});
