// Every command that runs a model works on the WebGPU backend (no synchronous reads): generate,
// inspect, analyze, patch and train give what the js reference gives. Runs where a
// WebGPU adapter exists (Chromium's SwiftShader driver is enough, test/webgpu-helpers.ts); skips otherwise.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { capture } from './helpers/capture.js';
import { openWebGpu } from './webgpu-helpers.js';

const { backend, reason } = await openWebGpu();
if (!backend) console.log(`WebGPU CLI tests skipped: ${reason}`);
backend?.dispose?.();
const LLAMA = new URL('../fixtures/hf/llama3', import.meta.url).pathname;

/** Largest relative difference between two JSON values' numbers (strings and shapes must match). */
function diff(a: unknown, b: unknown, path = ''): number {
  if (typeof a === 'number' && typeof b === 'number') return Math.abs(a - b) / Math.max(1, Math.abs(b));
  if (Array.isArray(a) && Array.isArray(b)) {
    expect(a.length, path).toBe(b.length);
    return Math.max(0, ...a.map((x, i) => diff(x, b[i], `${path}[${i}]`)));
  }
  if (a && typeof a === 'object' && b && typeof b === 'object') {
    return Math.max(0, ...Object.keys(a).filter((k) => k !== 'engine').map((k) => diff((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k], `${path}.${k}`)));
  }
  expect(a, path).toEqual(b);
  return 0;
}

async function both(argv: string[]): Promise<number> {
  const out: unknown[] = [];
  for (const b of ['webgpu', 'js']) {
    const r = await capture([...argv, '--backend', b]);
    expect(r.code, `${b}: ${r.err}`).toBe(0);
    expect(r.err).not.toMatch(/cannot read synchronously/);
    out.push(JSON.parse(r.out.trim().split('\n').at(-1)!));
  }
  return diff(out[0], out[1]);
}

describe.skipIf(!backend)('the CLI on WebGPU', () => {
  it('generate, inspect and every analysis give the js results', async () => {
    const ids = '1,5,9,14,22,31,17,40,12,5,9,14,22,31,17,40';
    // inspect runs every analysis (massive, sinks, sparsity, voids with generation, logit lens,
    // induction); similarity, massive over checkpoints, generate and patch read through their own paths. Kept to five runs: each
    // starts a WebGPU device, which a software driver makes slow.
    const runs: [string, string[]][] = [
      ['generate', ['generate', '--model', LLAMA, '--ids', ids, '--max-new-tokens', '3', '--json']],
      ['inspect', ['inspect', '--model', LLAMA, '--ids', ids, '--no-engine', '--generate', '2', '--json']],
      ['similarity', ['analyze', 'similarity', '--model', LLAMA, '--ids', ids, '--method', 'cka', '--json']],
      ['massive --checkpoint', ['analyze', 'massive', '--checkpoint', LLAMA, LLAMA, '--ids', ids, '--json']],
      ['patch', ['patch', '--model', LLAMA, '--clean-ids', '5,17,3,9,22,8', '--corrupt-ids', '5,17,3,30,22,8', '--answer', '12', '--wrong', '13', '--compare', '--json']],
    ];
    for (const [name, argv] of runs) {
      const d = await both(argv);
      console.log(`${name}: largest relative difference webgpu vs js ${d.toExponential(2)}`);
      expect(d, name).toBeLessThan(1e-3);
    }
  }, 300_000);

  it('train runs on WebGPU with the js losses', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'actlab-webgpu-train-'));
    const { writeTinyTokenizers } = await import('./helpers/tiny-tokenizers.js');
    const tok = writeTinyTokenizers(dir);
    const corpus = join(dir, 'c.txt');
    (await import('node:fs')).writeFileSync(corpus, Array.from({ length: 20 }, (_, i) => `the cat sat on the mat ${i} and the dog ran`).join('\n\n'));
    const losses: number[][] = [];
    for (const b of ['webgpu', 'js']) {
      const r = await capture(['train', '--model', LLAMA, '--tokenizer', tok.bin, '--corpus', corpus, '--out', join(dir, b), '--context', '8', '--batch-size', '2', '--steps', '1', '--backend', b, '--json']);
      expect(r.code, r.err).toBe(0);
      losses.push(r.out.trim().split('\n').map((l) => JSON.parse(l).loss as number));
    }
    console.log(`train losses: webgpu ${losses[0]!.map((x) => x.toFixed(5)).join(' ')}, js ${losses[1]!.map((x) => x.toFixed(5)).join(' ')}`);
    for (let i = 0; i < 1; i++) expect(Math.abs(losses[0]![i]! - losses[1]![i]!)).toBeLessThan(1e-3);
  }, 300_000);
});
