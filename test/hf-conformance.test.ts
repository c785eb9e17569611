// Every architecture against transformers 5.17 (fixtures/hf, made by
// scripts/fixtures/make_hf_fixtures.py with torch and transformers): logits, residual stream and
// attention patterns within 1e-4, greedy continuation identical, padded batches exact.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, it } from 'vitest';
import * as al from '../src/index.js';
import { SafetensorsFile } from '../src/formats/safetensors.js';
import { NodeFileSource } from '../src/io/node/file-source.js';
import { buildModel } from '../src/models/registry.js';
import type { CausalLM } from '../src/models/model.js';
import { checkActivations, checkGreedy, checkPadding, openReference, type Reference } from './helpers/hf-reference.js';

const ROOT = new URL('../fixtures/hf/', import.meta.url).pathname;
const ARCHS = readdirSync(ROOT).filter((a) => existsSync(`${ROOT}${a}/model.safetensors`));
const BACKENDS = (process.env.ACTLAB_BACKENDS ?? 'js,wasm').split(',');

describe.each(BACKENDS)('transformers conformance on %s', (backendName) => {
  describe.each(ARCHS)('%s', (arch) => {
    let model: CausalLM;
    let ref: Reference;
    beforeAll(async () => {
      const backend = await al.initBackend(backendName);
      const weights = await SafetensorsFile.open(await NodeFileSource.open(`${ROOT}${arch}/model.safetensors`));
      model = await buildModel(JSON.parse(readFileSync(`${ROOT}${arch}/config.json`, 'utf8')), weights, backend);
      await weights.close();
      ref = await openReference(`${ROOT}${arch}`, backend);
    });
    afterAll(async () => { model?.dispose(); await ref?.close(); });

    it('logits, residual stream and attention patterns within 1e-4', () => checkActivations(model, ref, `${arch}/${backendName}`));
    it('greedy continuation identical', () => checkGreedy(model, ref));
    it('padded batches equal each sequence alone', () => checkPadding(model, ref, `${arch}/${backendName}`));
  });
});
