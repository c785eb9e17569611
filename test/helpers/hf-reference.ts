// Compares a model with reference outputs made by transformers (scripts/fixtures/make_hf_fixtures.py):
// logits, every residual-stream state and every attention pattern within 1e-4 (max abs error
// relative to max(1, max |reference|)), the greedy continuation, and padded batches.
import { readFileSync } from 'node:fs';
import { expect } from 'vitest';
import * as al from '../../src/index.js';
import { SafetensorsFile } from '../../src/formats/safetensors.js';
import { NodeFileSource } from '../../src/io/node/file-source.js';
import { Hooks } from '../../src/models/hook-point.js';
import { generate } from '../../src/models/generate.js';
import type { CausalLM } from '../../src/models/model.js';

export function relErr(got: ArrayLike<number>, ref: ArrayLike<number>): number {
  let maxRef = 1;
  let maxDiff = 0;
  for (let i = 0; i < ref.length; i++) {
    maxRef = Math.max(maxRef, Math.abs(ref[i]!));
    maxDiff = Math.max(maxDiff, Math.abs(got[i]! - ref[i]!));
  }
  return got.length === ref.length ? maxDiff / maxRef : Infinity;
}

export interface Reference {
  meta: { input_ids: number[][]; [k: string]: unknown };
  get(name: string): Promise<Float32Array>;
  close(): Promise<void>;
}

export async function openReference(dir: string, backend: al.Backend): Promise<Reference> {
  const file = await SafetensorsFile.open(await NodeFileSource.open(`${dir}/reference.safetensors`));
  return {
    meta: JSON.parse(readFileSync(`${dir}/reference.json`, 'utf8')),
    async get(name) {
      const t = await file.load(name, backend);
      const d = t.dataSync() as Float32Array;
      t.dispose();
      return d;
    },
    close: () => file.close(),
  };
}

export async function checkActivations(model: CausalLM, ref: Reference, label: string): Promise<void> {
  const backend = model.backend;
  for (let k = 0; k < ref.meta.input_ids.length; k++) {
    const ids = ref.meta.input_ids[k]!;
    const L = model.dims.nLayers;
    const seen = new Map<string, Float32Array>();
    const hooks = new Hooks([[/hook_resid_pre$|hook_pattern$|^ln_final.hook_normalized$/, (t, h) => { seen.set(h.name, t.dataSync() as Float32Array); }]]);
    const input = al.tensor(ids, [1, ids.length], 'i32', { backend });
    const logits = model.forward(input, { hooks });
    input.dispose();
    const errs: Record<string, number> = { logits: relErr(logits.dataSync(), await ref.get(`b${k}.logits`)) };
    logits.dispose();
    for (let i = 0; i <= L; i++) {
      errs[`hidden_states.${i}`] = relErr(seen.get(i < L ? `blocks.${i}.hook_resid_pre` : 'ln_final.hook_normalized')!, await ref.get(`b${k}.hidden_states.${i}`));
    }
    for (let i = 0; i < L; i++) errs[`attentions.${i}`] = relErr(seen.get(`blocks.${i}.attn.hook_pattern`)!, await ref.get(`b${k}.attentions.${i}`));
    const worst = Object.entries(errs).reduce((a, b) => (b[1] > a[1] ? b : a));
    console.log(`${label} prompt ${k}: worst rel err ${worst[1].toExponential(2)} (${worst[0]}); logits ${errs.logits!.toExponential(2)}`);
    for (const [n, e] of Object.entries(errs)) expect(e, `${label} prompt ${k} ${n}`).toBeLessThan(1e-4);
  }
}

export function checkGreedy(model: CausalLM, ref: Reference): void {
  for (let k = 0; k < ref.meta.input_ids.length; k++) {
    const want = ref.meta[`b${k}.greedy`] as number[];
    const prompt = ref.meta.input_ids[k]!;
    const r = generate(model, [prompt], { maxNewTokens: want.length - prompt.length, eosTokenIds: [] });
    expect(r.ids[0]).toEqual(want);
  }
}

/** Both prompts in one batch, left- and right-padded, against each run alone. */
export function checkPadding(model: CausalLM, ref: Reference, label: string): void {
  const backend = model.backend;
  const [a, b] = ref.meta.input_ids as [number[], number[]];
  const T = Math.max(a.length, b.length);
  const V = model.dims.vocabSize;
  const run = (rows: number[][], attentionMask?: number[][]) => {
    const t = al.tensor(rows.flat(), [rows.length, rows[0]!.length], 'i32', { backend });
    const l = model.forward(t, { attentionMask });
    t.dispose();
    const d = l.dataSync();
    l.dispose();
    return d;
  };
  const alone = [a, b].map((ids) => run([ids]));
  for (const left of [true, false]) {
    const pad = (ids: number[], v: number, fill: number) => {
      const p = new Array<number>(T - ids.length).fill(fill);
      const body = ids.map(() => v);
      return left ? [...p, ...(v < 0 ? ids : body)] : [...(v < 0 ? ids : body), ...p];
    };
    const all = run([pad(a, -1, 0), pad(b, -1, 0)], [pad(a, 1, 0), pad(b, 1, 0)]);
    [a, b].forEach((ids, s) => {
      const off = left ? T - ids.length : 0;
      const err = relErr(all.subarray((s * T + off) * V, (s * T + off + ids.length) * V), alone[s]!);
      if (s === 1) console.log(`${label} ${left ? 'left' : 'right'}-padded batch: rel err ${err.toExponential(2)}`);
      expect(err, `${label} ${left ? 'left' : 'right'} padding, sequence ${s}`).toBeLessThan(1e-5);
    });
  }
}
