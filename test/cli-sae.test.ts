// `actlab sae train|eval|features` end to end on the induction organism (shipped with actlab) and a
// store of its sequences: SAELens files written, a finished run resumed, JSON outputs, bad input.
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as al from '../src/index.js';
import { inductionStore } from '../bench/sae-run.js';
import { capture } from './helpers/capture.js';

let dir: string;
let store: string;
const MODEL = new URL('../models/organisms/induction', import.meta.url).pathname;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'actlab-cli-sae-'));
  store = await inductionStore(join(dir, 'store'), await al.initBackend('js'), 160);
}, 120_000);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('actlab sae', () => {
  it('train writes an SAELens folder; eval and features read it', async () => {
    const out = join(dir, 'sae');
    const t = await capture(['sae', 'train', '--store', store, '--hook', 'blocks.1.hook_resid_post', '--arch', 'topk', '--k', '8', '--expansion', '2',
      '--tokens', '3000', '--batch-size', '500', '--lr', '3e-3', '--out', out, '--backend', 'wasm', '--json']);
    expect(t.code, t.err).toBe(0);
    const s = JSON.parse(t.out.trim().split('\n').pop()!);
    expect(s).toMatchObject({ architecture: 'topk', d_in: 64, d_sae: 128, steps: 6, tokens: 3000 });
    for (const f of ['cfg.json', 'sae_weights.safetensors', 'sparsity.safetensors']) expect(existsSync(join(out, f)), f).toBe(true);
    expect(t.err).toMatch(/sae: step 6\/6, 3000 tokens, loss/);

    const again = await capture(['sae', 'train', '--store', store, '--hook', 'blocks.1.hook_resid_post', '--arch', 'topk', '--k', '8', '--expansion', '2',
      '--tokens', '3000', '--batch-size', '500', '--lr', '3e-3', '--out', out, '--backend', 'wasm', '--json', '--resume']);
    expect(again.code, again.err).toBe(0);
    expect(JSON.parse(again.out.trim().split('\n').pop()!).resumed_from_step).toBe(6);

    const e = await capture(['sae', 'eval', '--sae', out, '--store', store, '--model', MODEL, '--contexts', '8', '--backend', 'wasm', '--json']);
    expect(e.code, e.err).toBe(0);
    const ev = JSON.parse(e.out.trim());
    expect(ev.tokens).toBe(8 * 49);
    expect(ev.l0).toBeLessThanOrEqual(8);
    expect(Number.isFinite(ev.ce_loss_recovered)).toBe(true);
    expect(ev.feature_density).toHaveLength(128);

    const f = await capture(['sae', 'features', '--sae', out, '--store', store, '--model', MODEL, '--top', '2', '--examples', '2', '--backend', 'wasm', '--json', '--html', join(dir, 'f.html')]);
    expect(f.code, f.err).toBe(0);
    const fv = JSON.parse(f.out.trim());
    expect(fv.features).toHaveLength(2);
    expect(fv.features[0].logits.promoted).toHaveLength(10);
    expect(existsSync(join(dir, 'f.html'))).toBe(true);
  }, 180_000);

  it('bad input: a hook not in the store, an unknown architecture, a transcoder without a target', async () => {
    const base = ['sae', 'train', '--store', store, '--tokens', '1000', '--out', join(dir, 'bad'), '--backend', 'js'];
    const a = await capture([...base, '--hook', 'blocks.1.hook_mlp_out']);
    expect(a.code).toBe(1);
    expect(a.err).toMatch(/no hook 'blocks.1.hook_mlp_out' in this store \(it has tokens, blocks.0.hook_resid_post, blocks.1.hook_resid_post\)/);
    const b = await capture([...base, '--hook', 'blocks.1.hook_resid_post', '--arch', 'gated']);
    expect(b.code).toBe(2);
    expect(b.err).toMatch(/--arch must be one of relu-l1/);
    const c = await capture([...base, '--hook', 'blocks.1.hook_resid_post', '--arch', 'transcoder']);
    expect(c.code).toBe(2);
    expect(c.err).toMatch(/needs --target-hook/);
    const d = await capture(['sae', 'eval', '--sae', join(dir, 'nothing'), '--store', store]);
    expect(d.code).toBe(1);
    expect(d.err).toMatch(/no cfg.json/);
  }, 60_000);

  it('actlab probe: per-layer accuracy of a token-derived label; bad label named', async () => {
    const r = await capture(['probe', '--store', store, '--hooks', 'blocks.*.hook_resid_post', '--label', 'seen-before', '--kind', 'linear', '--backend', 'js', '--json']);
    expect(r.code, r.err).toBe(0);
    const j = JSON.parse(r.out.trim());
    expect(j.layers.map((l: { hook: string }) => l.hook)).toEqual(['blocks.0.hook_resid_post', 'blocks.1.hook_resid_post']);
    for (const l of j.layers) expect(l.testAccuracy).toBeGreaterThan(l.baselineAccuracy);
    const bad = await capture(['probe', '--store', store, '--hooks', 'blocks.*.hook_resid_post', '--label', 'colour']);
    expect(bad.code).toBe(2);
    expect(bad.err).toMatch(/--label must be one of token, prev-token, next-token, seen-before/);
  }, 60_000);
});
