// `actlab steer` and `actlab ablate` in-process on the committed fixture models: steered and
// unsteered columns (strength 0 is the plain generation), a control vector saved and reapplied,
// an ablation sweep with its HTML figure, and bad input named before any generation.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import * as al from '../src/index.js';
import { writeControlVector } from '../src/interventions/control-vector.js';
import { capture } from './helpers/capture.js';

const FIX = new URL('../fixtures/hf/', import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), 'actlab-steer-cli-'));
const ids = '5,17,3,9,22,8';
let cvec = '';

beforeAll(async () => {
  // llama3 fixture: d_model 64, 3 blocks.
  cvec = join(dir, 'v.gguf');
  const v = Float32Array.from({ length: 64 }, (_, i) => Math.sin(i * 0.9) * 2);
  await writeControlVector({ modelHint: 'llama', dModel: 64, directions: new Map([[1, v], [2, v.map((x) => -x)]]) }, cvec);
});

describe('actlab steer / ablate', () => {
  it('steer --vector FILE.gguf --json: strength 0 is the plain generation, strength 4 changes it; side by side in text', async () => {
    const r = await capture(['steer', '--model', `${FIX}llama3`, '--ids', ids, '--vector', cvec, '--strength', '0,4', '--max-new-tokens', '8', '--json', '--backend', 'js']);
    expect(r.code, r.err).toBe(0);
    const j = JSON.parse(r.out.trim());
    const g = await capture(['generate', '--model', `${FIX}llama3`, '--ids', ids, '--max-new-tokens', '8', '--json', '--backend', 'js']);
    const plain = JSON.parse(g.out.trim()).ids.slice(6);
    expect(j.unsteered.ids).toEqual(plain);
    expect(j.steered[0].ids).toEqual(plain);
    expect(j.steered[1].ids).not.toEqual(plain);
    const t = await capture(['steer', '--model', `${FIX}llama3`, '--ids', ids, '--vector', cvec, '--layer', '2', '--strength', '4', '--max-new-tokens', '4', '--backend', 'js']);
    expect(t.code, t.err).toBe(0);
    expect(t.out).toMatch(/unsteered\s+\| strength 4/);
    expect(t.out).toMatch(/direction\.2 at blocks\.N\.hook_resid_post/);
  });

  it('steer --save writes the vector (strength 1) as a control vector that reapplies to the same steered text', async () => {
    const json = join(dir, 'steer.json');
    writeFileSync(json, JSON.stringify({ format: 'actlab.interventions', version: 1, interventions: [{ hook: 'blocks.1.hook_resid_post', op: 'add', vector: Array.from({ length: 64 }, (_, i) => Math.cos(i)) }] }));
    const out = join(dir, 'saved.gguf');
    const a = await capture(['steer', '--model', `${FIX}llama3`, '--ids', ids, '--vector', json, '--strength', '3', '--max-new-tokens', '6', '--save', out, '--json', '--backend', 'js']);
    expect(a.code, a.err).toBe(0);
    const b = await capture(['steer', '--model', `${FIX}llama3`, '--ids', ids, '--vector', out, '--strength', '3', '--max-new-tokens', '6', '--json', '--backend', 'js']);
    expect(b.code, b.err).toBe(0);
    expect(JSON.parse(b.out).steered[0].ids).toEqual(JSON.parse(a.out).steered[0].ids);
  });

  it('ablate --site heads --json and --html', async () => {
    const data = join(dir, 'data.jsonl');
    writeFileSync(data, [[5, 17, 3, 9], [5, 30, 4, 2, 2], [7, 7, 1]].map((x) => JSON.stringify({ ids: x, answer: 12, wrong: 13 })).join('\n'));
    const html = join(dir, 'ablate.html');
    const r = await capture(['ablate', '--model', `${FIX}llama3`, '--site', 'heads', '--method', 'mean', '--data', data, '--json', '--html', html, '--backend', 'js']);
    expect(r.code, r.err).toBe(0);
    const j = JSON.parse(r.out.trim());
    expect(j.effects).toHaveLength(3 * 4);
    expect(j.ranked[0].label).toMatch(/^L\d\.h\d$/);
    expect(readFileSync(html, 'utf8')).toMatch(/<svg[\s\S]*effect on logit-diff/);
    const t = await capture(['ablate', '--model', `${FIX}llama3`, '--site', 'layers', '--data', data, '--backend', 'js']);
    expect(t.code, t.err).toBe(0);
    expect(t.out).toMatch(/largest effects/);
  });

  it('bad input: clear errors and exit 1', async () => {
    const cases: [string[], RegExp][] = [
      [['steer', '--model', `${FIX}llama3`, '--ids', ids, '--vector', cvec, '--layer', '7'], /--layer 7 is out of range; this llama model has 3 blocks/],
      [['steer', '--model', `${FIX}llama3`, '--ids', ids, '--vector', cvec, '--strength', 'NaN'], /--strength: 'NaN' is not a number/],
      [['steer', '--model', `${FIX}llama3`, '--ids', ids], /give one of --vector FILE or --pairs FILE/],
      [['steer', '--model', `${FIX}llama3`, '--ids', ids, '--vector', join(dir, 'missing.gguf')], /missing.gguf/],
      [['ablate', '--model', `${FIX}llama3`, '--site', 'experts', '--data', join(dir, 'data.jsonl')], /needs a mixture-of-experts model/],
      [['ablate', '--model', `${FIX}llama3`, '--site', 'heads', '--method', 'cama2', '--data', join(dir, 'data.jsonl')], /--method: 'cama2' is not one of zero, mean, resample/],
    ];
    for (const [argv, re] of cases) {
      const r = await capture([...argv, '--backend', 'js']);
      expect(r.code, argv.join(' ')).toBe(1);
      expect(r.err).toMatch(re);
    }
    // A vector of the wrong width for this model: named before generation starts.
    const wide = join(dir, 'wide.gguf');
    await writeControlVector({ modelHint: 'llama', dModel: 32, directions: new Map([[1, new Float32Array(32).fill(1)]]) }, wide);
    const r = await capture(['steer', '--model', `${FIX}llama3`, '--ids', ids, '--vector', wide, '--backend', 'js']);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/'vector' has shape \[32\]; it must be a suffix of \[64\]/);
    void al;
  });
});
