// The two models of ../shared/fixtures/hf (made with transformers 5.17) and
// the real stories260K (llama2.c, read by actlab's own loader) against transformers' outputs.
import { existsSync, readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, it } from 'vitest';
import * as al from '../src/index.js';
import { SafetensorsFile } from '../src/formats/safetensors.js';
import { Llama2cCheckpoint } from '../src/formats/llama2c.js';
import { NodeFileSource } from '../src/io/node/file-source.js';
import { buildModel } from '../src/models/registry.js';
import type { CausalLM } from '../src/models/model.js';
import { checkActivations, checkGreedy, checkPadding, openReference, type Reference } from '../test/helpers/hf-reference.js';

const SHARED = new URL('../../shared/', import.meta.url).pathname;
const PROJECT = new URL('../fixtures/hf/', import.meta.url).pathname;

async function load(name: string, backend: al.Backend): Promise<{ model: CausalLM; refDir: string }> {
  if (name === 'stories260k') {
    const ckpt = await Llama2cCheckpoint.open(await NodeFileSource.open(`${SHARED}data/stories260K/stories260K.bin`));
    const model = await buildModel(ckpt.config(), ckpt, backend);
    await ckpt.close();
    return { model, refDir: `${PROJECT}stories260k` };
  }
  const dir = `${SHARED}fixtures/hf/${name}`;
  const weights = await SafetensorsFile.open(await NodeFileSource.open(`${dir}/model.safetensors`));
  const model = await buildModel(JSON.parse(readFileSync(`${dir}/config.json`, 'utf8')), weights, backend);
  await weights.close();
  return { model, refDir: dir };
}

const NAMES = ['gpt2', 'llama', 'stories260k'].filter((n) => n === 'stories260k' || existsSync(`${SHARED}fixtures/hf/${n}`));

describe.each(['js', 'wasm'])('on %s', (backendName) => {
  describe.each(NAMES)('%s vs transformers', (name) => {
    let model: CausalLM;
    let ref: Reference;
    beforeAll(async () => {
      const backend = await al.initBackend(backendName);
      const l = await load(name, backend);
      model = l.model;
      ref = await openReference(l.refDir, backend);
    });
    afterAll(async () => { model?.dispose(); await ref?.close(); });

    it('logits, residual stream and attention patterns within 1e-4', () => checkActivations(model, ref, `${name}/${backendName}`));
    it('greedy continuation identical', () => checkGreedy(model, ref));
    it('padded batches equal each sequence alone', () => checkPadding(model, ref, `${name}/${backendName}`));
  });
});
