// The sparsity, delta and fault commands end to end on the organisms that ship with actlab:
// `actlab faults` reports the four conditions, `actlab delta` the sweep, `actlab eval --sparsity`
// refuses bad specs before reading a model (a threshold that zeroes a layer: test/sparsity.test.ts),
// with messages that say what is wrong.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { capture } from './helpers/capture.js';

const ROOT = new URL('..', import.meta.url).pathname;
const MA = join(ROOT, 'models/organisms/modular-addition');

describe('actlab faults / delta / eval --sparsity', () => {
  it('faults: clean, clipped, faulty and faulty+clipped accuracy on the modular-addition organism', async () => {
    const r = await capture(['faults', '--model', MA, '--backend', 'wasm', '--target', 'activations', '--site', 'blocks.*.mlp.hook_post', '--rate', '0.004', '--bit', '30', '--trials', '1', '--json']);
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    const j = JSON.parse(r.out);
    console.log(`faults: clean ${j.clean.accuracy}, faulty ${j.faulty.accuracy}, faulty+clip ${j.faulty_clipped.accuracy}`);
    expect(j.clip.sites).toEqual(['blocks.0.mlp.hook_post']);
    expect(j.faulty.flips).toBeGreaterThan(0);
    expect(j.faulty_clipped.accuracy).toBeGreaterThan(j.faulty.accuracy);
  }, 120_000);

  it('faults: bad input is named', async () => {
    let r = await capture(['faults', '--model', MA, '--target', 'activations', '--rate', '0.1']);
    expect(r.err).toMatch(/--target activations needs --site PATTERNS/);
    r = await capture(['faults', '--model', MA, '--target', 'weights', '--rate', '0.1', '--bit', '40']);
    expect(r.code).not.toBe(0);
    expect(r.err).toMatch(/--bit/);
    r = await capture(['faults', '--model', MA, '--target', 'activations', '--site', 'blocks.*.nothing', '--rate', '0.1', '--backend', 'wasm']);
    expect(r.err).toMatch(/--site: no hook point matches 'blocks\.\*\.nothing'/);
  }, 60_000);

  it('delta: operations saved grow with the threshold', async () => {
    const r = await capture(['delta', '--model', MA, '--backend', 'wasm', '--ids', '5,7', '--thresholds', '0,0.5', '--steps', '1', '--json']);
    expect(r.err).toBe('');
    const j = JSON.parse(r.out);
    expect(j.rows[0].ops_saved).toBe(0);
    expect(j.rows[1].ops_saved).toBeGreaterThan(0);
  }, 60_000);

  it('eval --sparsity: a bad spec fails before any model is read', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'actlab-sparsity-'));
    const data = join(dir, 'ids.txt');
    writeFileSync(data, 'x');
    let r = await capture(['eval', '--model', '/no/such/model', '--data', data, '--sparsity', 'chess:2']);
    expect(r.err).toMatch(/--sparsity: chess takes a target sparsity in \(0, 1\), got 2/);
    r = await capture(['eval', '--model', MA, '--data', data, '--sparsity', 'magic:1']);
    expect(r.err).toMatch(/METHOD one of topk, threshold, cats, chess, chess\+/);
  }, 60_000);
});
