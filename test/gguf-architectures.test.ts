// GGUF for every architecture, against transformers: each HF fixture (fixtures/hf) is converted to
// GGUF as llama.cpp's converter writes it (F32 and Q8_0), loaded back through the normal loader,
// and compared with the transformers reference — F32 within the HF tests' 1e-4 (logits, residual
// stream, attention patterns, greedy continuation), Q8_0 within a stated logits budget, printed.
// Names, layouts and config round-trip; a wrong architecture or a missing tensor is named.
import { mkdtemp, rm } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as al from '../src/index.js';
import { SafetensorsFile } from '../src/formats/safetensors.js';
import { convertToGguf } from '../src/formats/gguf-convert.js';
import { GgufFile } from '../src/formats/gguf.js';
import { GgufWeights } from '../src/formats/gguf-weights.js';
import { hfToGgufName } from '../src/formats/gguf-hf.js';
import { writeGguf, u32 } from '../src/formats/gguf-write.js';
import type { WeightSource } from '../src/formats/weight-source.js';
import { NodeFileSource } from '../src/io/node/file-source.js';
import { NodeFileStore } from '../src/io/node/file-store.js';
import { buildModel } from '../src/models/registry.js';
import { checkActivations, checkGreedy, openReference, relErr, type Reference } from './helpers/hf-reference.js';

const ROOT = new URL('../fixtures/hf/', import.meta.url).pathname;
/** fixture -> llama.cpp's general.architecture. */
const FIXTURES: Record<string, string> = {
  gpt2: 'gpt2', llama3: 'llama', qwen2: 'qwen2', mistral: 'llama', mistral_window: 'llama',
  gpt_neox: 'gptneox', gemma: 'gemma', mixtral: 'llama', qwen2_moe: 'qwen2moe',
};
/** Config fields that must come back from GGUF metadata as the HF config has them (when it has them). */
const CONFIG_KEYS = [
  'hidden_size', 'n_embd', 'num_hidden_layers', 'n_layer', 'num_attention_heads', 'n_head', 'num_key_value_heads', 'head_dim',
  'intermediate_size', 'vocab_size', 'max_position_embeddings', 'n_positions', 'rms_norm_eps', 'layer_norm_eps', 'layer_norm_epsilon',
  'rope_theta', 'partial_rotary_factor', 'use_parallel_residual', 'sliding_window', 'tie_word_embeddings',
  'num_local_experts', 'num_experts', 'num_experts_per_tok', 'moe_intermediate_size', 'shared_expert_intermediate_size', 'norm_topk_prob',
];

/**
 * Q8_0 budget on logits (max abs error relative to max(1, max |reference|)). The fixtures' random
 * weights make logits of ~10 that amplify weight noise: Q8_0 round-trips of the HF weights in their
 * own layout, without GGUF, already give 5e-3 (gemma) to 1.5e-1 (qwen2_moe). Layout mistakes are
 * caught per tensor instead: each quantized weight within ~half a Q8_0 step of the HF value.
 */
const Q8_BUDGET = 0.25;

let tmp: string;
let backend: al.Backend;
beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'actlab-gguf-'));
  backend = await al.initBackend('js');
});
afterAll(async () => { await rm(tmp, { recursive: true, force: true }); });

const config = (fx: string) => JSON.parse(readFileSync(`${ROOT}${fx}/config.json`, 'utf8')) as Record<string, unknown>;
const openHf = async (fx: string) => SafetensorsFile.open(await NodeFileSource.open(`${ROOT}${fx}/model.safetensors`));

async function convert(fx: string, type: 'F32' | 'Q8_0', weights?: WeightSource): Promise<string> {
  const st = weights ?? await openHf(fx);
  const path = join(tmp, `${fx}-${type}-${Math.random().toString(36).slice(2)}.gguf`);
  await convertToGguf(new NodeFileStore(), path, st, config(fx), backend, { type, metadata: { 'general.name': fx } });
  if (!weights) await st.close();
  return path;
}

describe.each(Object.keys(FIXTURES))('GGUF %s', (fx) => {
  let ref: Reference;
  beforeAll(async () => { ref = await openReference(`${ROOT}${fx}`, backend); });
  afterAll(async () => { await ref?.close(); });

  it('F32: names, layouts and config round-trip; loads through loadModel equal to transformers', async () => {
    const path = await convert(fx, 'F32');
    const st = await openHf(fx);
    const g = await GgufWeights.open(await GgufFile.open(await NodeFileSource.open(path)));
    expect(g.file.architecture).toBe(FIXTURES[fx]);
    expect(g.names().sort()).toEqual(st.names().sort());
    for (const n of st.names()) {
      expect(hfToGgufName(n, g.file.architecture), n).toBe(g.ggufName(n));
      const a = await st.load(n, backend);
      const b = await g.load(n, backend);
      expect(b.shape, n).toEqual(a.shape);
      expect(Array.from(b.dataSync()), n).toEqual(Array.from(a.dataSync()));
      a.dispose(); b.dispose();
    }
    const hfCfg = config(fx);
    const rp = (hfCfg.rope_parameters ?? {}) as Record<string, unknown>;
    for (const k of CONFIG_KEYS) {
      const want = hfCfg[k] ?? rp[k];
      if (want === undefined || want === null || (k === 'sliding_window' && (hfCfg.model_type !== 'mistral' || Number(want) >= Number(hfCfg.max_position_embeddings)))) continue;
      const got = g.config[k] ?? (g.config.rope_parameters as Record<string, unknown> | undefined)?.[k];
      if (typeof want === 'number') expect(got as number, k).toBeCloseTo(want, 9);
      else expect(got, k).toEqual(want);
    }
    const hfModel = await buildModel(hfCfg, st, backend);
    const loaded = await al.loadModel(path, { backend });
    expect(loaded.format).toBe('gguf');
    // llama.cpp writes Mistral (without a window) as plain `llama`: the same model under another name.
    expect({ ...loaded.model.dims, arch: hfModel.dims.arch }).toEqual(hfModel.dims);
    hfModel.dispose();
    await checkActivations(loaded.model, ref, `gguf F32 ${fx}`);
    checkGreedy(loaded.model, ref);
    loaded.model.dispose();
    await g.close();
    await st.close();
  });

  it('Q8_0: logits within the stated budget', async () => {
    const path = await convert(fx, 'Q8_0');
    const file = await GgufFile.open(await NodeFileSource.open(path));
    const types = new Set(file.tensors.map((t) => t.type));
    expect(types.has('Q8_0')).toBe(true);
    const g = await GgufWeights.open(file);
    const st = await openHf(fx);
    for (const n of st.names()) {
      const a = await st.load(n, backend);
      const b = await g.load(n, backend);
      const w = a.dataSync();
      const d = b.dataSync();
      let amax = 0;
      let diff = 0;
      for (let i = 0; i < w.length; i++) { amax = Math.max(amax, Math.abs(w[i]!)); diff = Math.max(diff, Math.abs(w[i]! - d[i]!)); }
      expect(diff, `${n} (${g.info(n).storedAs})`).toBeLessThanOrEqual((amax / 127) * 0.6); // half a step, plus the f16 rounding of the block scale (127 * 2^-11 steps)
      a.dispose(); b.dispose();
    }
    await st.close();
    await g.close();
    const { model } = await al.loadModel(path, { backend });
    let worst = 0;
    for (let k = 0; k < ref.meta.input_ids.length; k++) {
      const ids = ref.meta.input_ids[k]!;
      const input = al.tensor(ids, [1, ids.length], 'i32', { backend });
      const logits = model.forward(input);
      worst = Math.max(worst, relErr(logits.dataSync(), await ref.get(`b${k}.logits`)));
      input.dispose(); logits.dispose();
    }
    model.dispose();
    console.log(`GGUF Q8_0 ${fx}: logits rel err ${worst.toExponential(2)} (types ${[...types].sort().join(', ')}; budget ${Q8_BUDGET})`);
    expect(worst).toBeLessThan(Q8_BUDGET);
  });
});

/** Reads a GGUF tensor as stored (no HF mapping) and an HF tensor, as f32 arrays with shapes. */
async function stored(path: string, fx: string, gguf: string, hf: string) {
  const file = await GgufFile.open(await NodeFileSource.open(path));
  const st = await openHf(fx);
  const g = await file.loadFloat(gguf, backend);
  const h = await st.load(hf, backend);
  const out = { g: Array.from(g.dataSync()), gShape: [...g.shape], h: Array.from(h.dataSync()), hShape: [...h.shape] };
  g.dispose(); h.dispose();
  await file.close(); await st.close();
  return out;
}

describe('GGUF tensors are stored as llama.cpp stores them', () => {
  it('gpt2: Conv1D c_attn [in, out] stored transposed as attn_qkv [out, in]', async () => {
    const { g, gShape, h, hShape } = await stored(await convert('gpt2', 'F32'), 'gpt2', 'blk.0.attn_qkv.weight', 'transformer.h.0.attn.c_attn.weight');
    expect(gShape).toEqual([hShape[1], hShape[0]]);
    const [rows, cols] = hShape as [number, number];
    for (const [i, j] of [[0, 0], [3, 100], [rows - 1, cols - 1]] as const) expect(g[j * rows + i]).toBe(h[i * cols + j]);
  });

  it('gpt_neox: per-head [head, (q|k|v), d] rows stored as [(q|k|v), head, d]', async () => {
    const { g, h, hShape } = await stored(await convert('gpt_neox', 'F32'), 'gpt_neox', 'blk.0.attn_qkv.weight', 'gpt_neox.layers.0.attention.query_key_value.weight');
    const [heads, d] = [config('gpt_neox').num_attention_heads as number, hShape[1]!];
    const dh = hShape[0]! / 3 / heads;
    const row = (a: number[], r: number) => a.slice(r * d, (r + 1) * d);
    // k of head 2, channel 5: HF row 2*3*dh + dh + 5, llama.cpp row heads*dh + 2*dh + 5
    expect(row(g, heads * dh + 2 * dh + 5)).toEqual(row(h, 2 * 3 * dh + dh + 5));
  });

  it('gemma: RMSNorm weights stored as w + 1', async () => {
    const { g, h } = await stored(await convert('gemma', 'F32'), 'gemma', 'blk.0.attn_norm.weight', 'model.layers.0.input_layernorm.weight');
    expect(g).toEqual(h.map((v) => Math.fround(v + 1)));
  });

  it('llama3: q rows in interleaved RoPE order, rope_freqs written', async () => {
    const path = await convert('llama3', 'F32');
    const { g, h, hShape } = await stored(path, 'llama3', 'blk.0.attn_q.weight', 'model.layers.0.self_attn.q_proj.weight');
    const [d, hd] = [hShape[1]!, config('llama3').head_dim as number];
    const row = (a: number[], r: number) => a.slice(r * d, (r + 1) * d);
    // head 1, pair i = 3: llama.cpp rows (2i, 2i+1) are HF rows (i, i + hd/2)
    expect(row(g, hd + 7)).toEqual(row(h, hd + 3 + hd / 2));
    const file = await GgufFile.open(await NodeFileSource.open(path));
    expect(file.info('rope_freqs.weight').shape).toEqual([hd / 2]);
    await file.close();
  });

  it('mixtral and qwen2_moe: experts stacked [E, out, in]; the shared-expert gate 1-D', async () => {
    const { g, gShape, h, hShape } = await stored(await convert('mixtral', 'F32'), 'mixtral', 'blk.1.ffn_down_exps.weight', 'model.layers.1.block_sparse_moe.experts.2.w2.weight');
    expect(gShape).toEqual([config('mixtral').num_local_experts, ...hShape]);
    const n = h.length;
    expect(g.slice(2 * n, 3 * n)).toEqual(h);
    const q = await stored(await convert('qwen2_moe', 'F32'), 'qwen2_moe', 'blk.0.ffn_gate_inp_shexp.weight', 'model.layers.0.mlp.shared_expert_gate.weight');
    expect(q.gShape).toEqual([q.hShape[1]]);
    expect(q.g).toEqual(q.h);
  });
});

describe('GGUF errors', () => {
  it('an unsupported architecture is named, with the supported list', async () => {
    const path = join(tmp, 'bloom.gguf');
    await writeGguf(new NodeFileStore(), path, { 'general.architecture': 'bloom', 'bloom.block_count': u32(1) }, []);
    await expect(al.loadModel(path, { backend })).rejects.toThrow(/bloom\.gguf: GGUF architecture 'bloom' is not supported \(supported: llama, qwen2, qwen2moe, gemma, gpt2, gptneox\)/);
  });

  it('a missing tensor is named by its llama.cpp name', async () => {
    const st = await openHf('qwen2_moe');
    const hidden = 'model.layers.1.self_attn.k_proj.weight';
    const partial: WeightSource = { ...st, names: () => st.names().filter((n) => n !== hidden), load: st.load.bind(st), info: st.info.bind(st), has: st.has.bind(st) };
    const path = await convert('qwen2_moe', 'F32', partial);
    await st.close();
    await expect(al.loadModel(path, { backend })).rejects.toThrow(/GGUF tensor 'blk\.1\.attn_k\.weight' is missing/);
  });

  it('an HF model type with no GGUF form is named', async () => {
    const st = await openHf('llama3');
    await expect(convertToGguf(new NodeFileStore(), join(tmp, 'x.gguf'), st, { ...config('llama3'), model_type: 'bloom' }, backend, { type: 'F32' }))
      .rejects.toThrow(/model_type 'bloom' is not supported \(supported: .*gpt_neox/);
    await st.close();
  });
});
