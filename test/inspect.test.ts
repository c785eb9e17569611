// `actlab inspect` and `actlab analyze` in-process: the JSON keys the issue names, the HTML report
// and figures, on the built-in hand-wired model (no models/default needed) and on a committed
// fixture; the planted structure must show in the report.
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { capture } from './helpers/capture.js';
import { defaultModelDir } from '../src/cli/inspect.js';

const FIX = new URL('../fixtures/hf/', import.meta.url).pathname;

describe('actlab inspect', () => {
  it('--json has every key; on the built-in model it finds the planted heads and dimension', async () => {
    const builtin = !existsSync(defaultModelDir());
    const r = await capture(['inspect', '--json', '--no-engine', '--generate', '3']);
    expect(r.code, r.err).toBe(0);
    const j = JSON.parse(r.out.trim());
    for (const k of ['massive', 'sinks', 'sparsity', 'voids', 'logit_lens', 'induction']) expect(j, k).toHaveProperty(k);
    expect(j.sinks).toHaveProperty('heads');
    expect(j.sinks).toHaveProperty('secondary');
    expect(j.experts).toBeUndefined();
    if (builtin) {
      expect(j.model.warning).toMatch(/NO TRAINED DEFAULT MODEL/);
      expect(Object.keys(j.massive[0]).sort()).toEqual(['dim', 'layer', 'pos', 'ratio_to_median', 'token', 'token_id', 'value']);
      expect(new Set(j.massive.map((e: { dim: number }) => e.dim))).toEqual(new Set([161]));
      expect(j.sinks.sink_heads.map((h: { layer: number; head: number }) => [h.layer, h.head])).toEqual([[0, 1]]);
      expect(j.induction.filter((h: { score: number }) => h.score >= 0.4).map((h: { layer: number; head: number }) => [h.layer, h.head])).toEqual([[1, 0]]);
      expect(j.voids.generation.tokens).toHaveLength(3);
    }
  });

  it('the text summary says loudly when it runs on the built-in model', async () => {
    if (existsSync(defaultModelDir())) return;
    const r = await capture(['inspect', '--no-engine', '--generate', '2']);
    expect(r.code, r.err).toBe(0);
    expect(r.out).toMatch(/^!!! NO TRAINED DEFAULT MODEL/);
    expect(r.out).toMatch(/induction heads: L1H0/);
  });

  it('--html writes a self-contained report with pictures; --figures writes SVG and PNG files; MoE shows experts', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'actlab-inspect-'));
    const html = join(dir, 'r.html');
    const r = await capture(['inspect', '--model', `${FIX}qwen2_moe`, '--ids', '1,5,9,13,17,21,5,9,13,17,21', '--html', html, '--figures', join(dir, 'fig'), '--json', '--no-engine', '--generate', '2']);
    expect(r.code, r.err).toBe(0);
    const j = JSON.parse(r.out.trim());
    expect(j.experts.layers.length).toBe(j.model.dims.nLayers);
    const page = readFileSync(html, 'utf8');
    expect(page).toMatch(/^<!doctype html>/);
    expect(page).not.toMatch(/<script|https?:\/\/(?!www\.w3\.org)/);
    for (const id of ['massive', 'sinks', 'attention', 'induction', 'logit-lens', 'sparsity', 'voids', 'experts']) expect(page).toContain(`id="${id}"`);
    expect((page.match(/<svg/g) ?? []).length).toBeGreaterThan(8);
    expect((page.match(/data:image\/png;base64,/g) ?? []).length).toBe(j.model.dims.nLayers * j.model.dims.nHeads);
    for (const f of ['massive.svg', 'sinks.svg', 'induction.svg', 'experts.svg', 'attention.png']) expect(existsSync(join(dir, 'fig', f)), f).toBe(true);
    expect(readFileSync(join(dir, 'fig', 'massive.svg'), 'utf8')).toMatch(/^<svg xmlns="http:\/\/www.w3.org\/2000\/svg"/);
    expect([...readFileSync(join(dir, 'fig', 'attention.png')).subarray(0, 4)]).toEqual([137, 80, 78, 71]);
  });

  it('keeps the engine self-check as a section', async () => {
    const r = await capture(['inspect', '--json', '--check', 'js', '--generate', '0']);
    expect(r.code, r.err).toBe(0);
    expect(JSON.parse(r.out.trim()).engine.backends[0].backend).toBe('js');
  });
});

describe('actlab analyze', () => {
  it('each analysis prints JSON; similarity of a model with itself is 1 on the diagonal', async () => {
    const model = `${FIX}llama3`;
    for (const name of ['massive', 'sinks', 'sparsity', 'voids', 'logit-lens', 'induction']) {
      const r = await capture(['analyze', name, '--model', model, '--ids', '1,2,3,4,5,6,7,8', '--json', '--generate', '2', '--length', '5', '--sequences', '1']);
      expect(r.code, `${name}: ${r.err}`).toBe(0);
      expect(JSON.parse(r.out.trim())).toBeTypeOf('object');
    }
    const s = await capture(['analyze', 'similarity', '--model', model, '--ids', '1,2,3,4,5,6,7,8,9,10', '--method', 'cka', '--json']);
    expect(s.code, s.err).toBe(0);
    const g = JSON.parse(s.out.trim()).grids.cka as number[][];
    g.forEach((row, i) => expect(row[i]).toBeCloseTo(1, 6));
  });

  it('similarity against a recorded matrix from a CSV file; clear errors for bad input', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'actlab-rec-'));
    const csv = join(dir, 'rec.csv');
    const rows = Array.from({ length: 6 }, (_, i) => [i, i * i % 5, (i * 7) % 3].join(','));
    (await import('node:fs')).writeFileSync(csv, `u0,u1,u2\n${rows.join('\n')}\n`);
    const ok = await capture(['analyze', 'similarity', '--model', `${FIX}gpt2`, '--ids', '1,2,3,4,5,6', '--recording', csv, '--json']);
    expect(ok.code, ok.err).toBe(0);
    expect(JSON.parse(ok.out.trim()).layers[0]).toHaveProperty('svcca');
    const bad = await capture(['analyze', 'similarity', '--model', `${FIX}gpt2`, '--ids', '1,2,3', '--recording', csv]);
    expect(bad.code).toBe(1);
    expect(bad.err).toMatch(/6 stimuli.*3 tokens/);
    const unknown = await capture(['analyze', 'nonsense', '--model', `${FIX}gpt2`]);
    expect(unknown.code).toBe(1);
    expect(unknown.err).toMatch(/'nonsense' is invalid for argument 'name'. Allowed choices are massive/);
  });
});
