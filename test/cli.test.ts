// The `actlab` command in-process, on the committed fixture models (no ../shared, no network).
import { readFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { capture } from './helpers/capture.js';
import { SafetensorsFile } from '../src/formats/safetensors.js';
import { NodeFileSource } from '../src/io/node/file-source.js';

const FIX = new URL('../fixtures/hf/', import.meta.url).pathname;

describe('actlab CLI', () => {
  it('generate --json gives the transformers greedy continuation', async () => {
    for (const arch of ['llama3', 'gpt_neox']) {
      const ref = JSON.parse(readFileSync(`${FIX}${arch}/reference.json`, 'utf8'));
      const prompt: number[] = ref.input_ids[0];
      const want: number[] = ref['b0.greedy'];
      const r = await capture(['generate', '--model', `${FIX}${arch}`, '--ids', prompt.join(','), '--max-new-tokens', String(want.length - prompt.length), '--temperature', '0', '--json', '--backend', 'js']);
      expect(r.code, r.err).toBe(0);
      const j = JSON.parse(r.out.trim());
      expect(j.ids).toEqual(want);
    }
  });

  it('hooks --json lists the hook points with sizes', async () => {
    const r = await capture(['hooks', '--model', `${FIX}gpt2`, '--json', '--backend', 'js']);
    expect(r.code, r.err).toBe(0);
    const j = JSON.parse(r.out.trim());
    const names = j.hook_points.map((h: { name: string }) => h.name);
    expect(names).toContain('hook_pos_embed');
    expect(names).toContain('blocks.2.attn.hook_pattern');
    expect(j.hook_points.find((h: { name: string }) => h.name === 'blocks.0.attn.hook_q').shape).toEqual(['batch', 'pos', 4, 16]);
  });

  it('run --save writes logits and every matched hook under its own name', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'actlab-run-'));
    const file = join(dir, 'out.safetensors');
    const r = await capture(['run', '--model', `${FIX}qwen2`, '--ids', '5,6,7,8', '--hooks', 'blocks.*.hook_resid_pre,blocks.1.attn.hook_pattern', '--save', file, '--backend', 'js']);
    expect(r.code, r.err).toBe(0);
    const f = await SafetensorsFile.open(await NodeFileSource.open(file));
    expect(f.names().sort()).toEqual(['blocks.0.hook_resid_pre', 'blocks.1.attn.hook_pattern', 'blocks.1.hook_resid_pre', 'blocks.2.hook_resid_pre', 'logits']);
    expect(f.info('blocks.1.attn.hook_pattern').shape).toEqual([1, 4, 4, 4]);
    expect(f.info('logits').shape).toEqual([1, 4, 512]);
    await f.close();
  });

  it('patch --compare --json gives the three maps (activation, attribution, relp) and their correlations', async () => {
    const r = await capture(['patch', '--model', `${FIX}gpt2`, '--clean-ids', '5,17,3,9,22,8', '--corrupt-ids', '5,17,3,30,22,8', '--answer', '12', '--wrong', '13', '--compare', '--json', '--backend', 'js']);
    expect(r.code, r.err).toBe(0);
    const j = JSON.parse(r.out.trim());
    expect(j.activation.effects).toHaveLength(3);
    expect(j.activation.effects[0].slice(0, 3)).toEqual([0, 0, 0]);
    expect(Math.abs(j.activation.effects[0][3])).toBeGreaterThan(1e-3);
    expect(j.correlation).toBeGreaterThan(0.5);
    expect(j.relp.effects).toHaveLength(3);
    expect(Object.keys(j.correlations).sort()).toEqual(['activation~attribution', 'activation~relp', 'attribution~relp']);
    expect(j.correlations['activation~attribution']).toBe(j.correlation);
  });

  it('bad input: unknown hook pattern, out-of-range ids, missing model, each a clear error and exit 1', async () => {
    let r = await capture(['run', '--model', `${FIX}gpt2`, '--ids', '1,2', '--hooks', 'blocks.*.hook_resid_pree', '--save', '/tmp/x.safetensors', '--backend', 'js']);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/closest 'blocks\.\*\.hook_resid_pre'/);
    r = await capture(['generate', '--model', `${FIX}gpt2`, '--ids', '1,9999', '--max-new-tokens', '1', '--backend', 'js']);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/9999.*0\.\.511/);
    r = await capture(['generate', '--model', '/nonexistent/model', '--ids', '1', '--max-new-tokens', '1', '--offline', '--backend', 'js']);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/nonexistent/);
  });
});
