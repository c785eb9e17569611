// Models against transformers' own outputs (../shared/fixtures/hf): logits, every residual-stream
// state and every attention pattern within 1e-4 (max abs error relative to max(1, max |ref|)),
// greedy continuation identical, and a padded batch equal to each sequence alone.
import { existsSync, readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as al from '../src/index.js';
import { SafetensorsFile } from '../src/formats/safetensors.js';
import { NodeFileSource } from '../src/io/node/file-source.js';
import { buildModel } from '../src/models/registry.js';
import type { CausalLM } from '../src/models/model.js';
import { Hooks } from '../src/hooks/hook-point.js';
import { generate } from '../src/models/generate.js';

const ROOT = new URL('../../shared/fixtures/hf/', import.meta.url).pathname;
const ARCHS = ['gpt2', 'llama'].filter((a) => existsSync(`${ROOT}${a}/reference.json`));

function relErr(got: ArrayLike<number>, ref: ArrayLike<number>): number {
  let maxRef = 1;
  let maxDiff = 0;
  for (let i = 0; i < ref.length; i++) {
    maxRef = Math.max(maxRef, Math.abs(ref[i]!));
    maxDiff = Math.max(maxDiff, Math.abs(got[i]! - ref[i]!));
  }
  return maxDiff / maxRef;
}

for (const backendName of ['js', 'wasm']) {
  describe.each(ARCHS)(`%s on ${backendName} vs transformers`, (arch) => {
    let model: CausalLM;
    let refs: SafetensorsFile;
    let meta: { input_ids: number[][]; [k: string]: unknown };
    let backend: al.Backend;
    beforeAll(async () => {
      backend = await al.initBackend(backendName);
      const config = JSON.parse(readFileSync(`${ROOT}${arch}/config.json`, 'utf8'));
      const weights = await SafetensorsFile.open(await NodeFileSource.open(`${ROOT}${arch}/model.safetensors`));
      model = await buildModel(config, weights, backend);
      await weights.close();
      refs = await SafetensorsFile.open(await NodeFileSource.open(`${ROOT}${arch}/reference.safetensors`));
      meta = JSON.parse(readFileSync(`${ROOT}${arch}/reference.json`, 'utf8'));
    });
    afterAll(async () => {
      model?.dispose();
      await refs?.close();
    });

    const ref = async (name: string) => {
      const t = await refs.load(name, backend);
      const d = t.dataSync();
      t.dispose();
      return d;
    };

    it('logits, residual stream and attention patterns match', async () => {
      for (let k = 0; k < meta.input_ids.length; k++) {
        const ids = meta.input_ids[k]!;
        const L = model.dims.nLayers;
        const cache = new Map<string, Float32Array>();
        const hooks = new Hooks([[/hook_resid_pre$|hook_pattern$|^ln_final.hook_normalized$/, (t, h) => { cache.set(h.name, t.dataSync() as Float32Array); }]]);
        const logits = al.tidy(() => model.forward(al.tensor(ids, [1, ids.length], 'i32', { backend }), { hooks }));
        const errs: Record<string, number> = { logits: relErr(logits.dataSync(), await ref(`b${k}.logits`)) };
        logits.dispose();
        for (let i = 0; i <= L; i++) {
          const name = i < L ? `blocks.${i}.hook_resid_pre` : 'ln_final.hook_normalized';
          errs[`hidden_states.${i}`] = relErr(cache.get(name)!, await ref(`b${k}.hidden_states.${i}`));
        }
        for (let i = 0; i < L; i++) errs[`attentions.${i}`] = relErr(cache.get(`blocks.${i}.attn.hook_pattern`)!, await ref(`b${k}.attentions.${i}`));
        const worst = Math.max(...Object.values(errs));
        console.log(`${arch}/${backendName} prompt ${k}: worst rel err ${worst.toExponential(2)}`, JSON.stringify(Object.fromEntries(Object.entries(errs).map(([n, e]) => [n, +e.toExponential(2)]))));
        for (const [n, e] of Object.entries(errs)) expect(e, n).toBeLessThan(1e-4);
      }
    });

    it('greedy continuation is identical', () => {
      for (let k = 0; k < meta.input_ids.length; k++) {
        const want = meta[`b${k}.greedy`] as number[];
        const r = generate(model, [meta.input_ids[k]!], { maxNewTokens: want.length - meta.input_ids[k]!.length, eosTokenIds: [] });
        expect(r.ids[0]).toEqual(want);
      }
    });

    it('a padded batch (left and right padding) equals each sequence alone', () => {
      const [a, b] = meta.input_ids as [number[], number[]];
      const T = Math.max(a.length, b.length);
      const alone = [a, b].map((ids) => {
        const l = model.forward(al.tensor(ids, [1, ids.length], 'i32', { backend }));
        const d = l.dataSync();
        l.dispose();
        return d;
      });
      const V = model.dims.vocabSize;
      for (const side of ['left', 'right'] as const) {
        const pad = (ids: number[]) => (side === 'left' ? [...new Array(T - ids.length).fill(0), ...ids] : [...ids, ...new Array(T - ids.length).fill(0)]);
        const m = (ids: number[]) => (side === 'left' ? [...new Array(T - ids.length).fill(0), ...ids.map(() => 1)] : [...ids.map(() => 1), ...new Array(T - ids.length).fill(0)]);
        const logits = model.forward(al.tensor([...pad(a), ...pad(b)], [2, T], 'i32', { backend }), { attentionMask: [m(a), m(b)] });
        const all = logits.dataSync();
        logits.dispose();
        [a, b].forEach((ids, s) => {
          const off = side === 'left' ? T - ids.length : 0;
          const got = all.subarray((s * T + off) * V, (s * T + off + ids.length) * V);
          const err = relErr(got, alone[s]!);
          console.log(`${arch}/${backendName} ${side}-padded batch, sequence ${s}: rel err ${err.toExponential(2)}`);
          expect(err).toBeLessThan(1e-5);
        });
      }
    });
  });
}
