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
    const hfModel = await buildModel(config(fx), st, backend);
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
