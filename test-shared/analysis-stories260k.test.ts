// The analyses on a real pretrained model, llama2.c's stories260K: the inspect report runs on it
// (terminal, JSON, HTML with figures) and its findings are the ones docs/stories260k-report.* record
// (scripts/stories260k-report.mjs writes those).
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { capture } from '../test/helpers/capture.js';

const DIR = new URL('../../shared/data/stories260K/', import.meta.url).pathname;

describe('stories260K inspect report', () => {
  it('runs, writes the HTML and figures, and finds what the committed docs report', async () => {
    const out = mkdtempSync(join(tmpdir(), 'actlab-s260k-'));
    const args = ['inspect', '--model', `${DIR}stories260K.bin`, '--tokenizer', `${DIR}tok512.bin`, '--backend', 'js', '--no-engine'];
    const r = await capture([...args, '--json', '--html', join(out, 'r.html'), '--figures', join(out, 'fig')]);
    expect(r.code, r.err).toBe(0);
    const j = JSON.parse(r.out.trim());
    expect(j.model.dims).toMatchObject({ nLayers: 5, dModel: 64, nHeads: 8, vocabSize: 512 });
    expect(j.prompt.ids.length).toBeGreaterThan(20);
    expect(j.logit_lens.layers.at(-1).rank_of_final).toBe(0);
    expect(j.induction).toHaveLength(40);
    expect(j.sinks.heads).toHaveLength(40);
    expect(j.sparsity.layers).toHaveLength(5);
    expect(existsSync(join(out, 'fig', 'attention.png'))).toBe(true);
    expect(readFileSync(join(out, 'r.html'), 'utf8')).toContain('id="logit-lens"');
    const prevHeads = j.induction.filter((h: { prev_token: number }) => h.prev_token >= 0.5).map((h: { layer: number; head: number }) => `L${h.layer}H${h.head}`);
    console.log(`stories260K: massive ${j.massive.length}, sink heads ${j.sinks.sink_heads.length}/40, previous-token heads ${prevHeads.join(',')}, induction heads ${j.induction_summary.induction_heads.length}, final "${j.logit_lens.final.token}"`);
    const doc = new URL('../docs/stories260k-report.json', import.meta.url).pathname;
    if (existsSync(doc)) {
      const d = JSON.parse(readFileSync(doc, 'utf8'));
      expect(j.prompt.ids).toEqual(d.prompt.ids);
      expect(j.logit_lens.final).toEqual(d.logit_lens.final);
      expect(j.massive.length).toBe(d.massive.length);
      expect(j.sinks.sink_heads.map((h: { layer: number; head: number }) => [h.layer, h.head])).toEqual(d.sinks.sink_heads.map((h: { layer: number; head: number }) => [h.layer, h.head]));
    }
  }, 120_000);
});
