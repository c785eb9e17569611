// Every command that runs a model works on the WebGPU backend (no synchronous reads): generate,
// inspect, analyze, patch, train and organisms train give what the js reference gives. Runs where a
// WebGPU adapter exists (Chromium's SwiftShader driver is enough, test/webgpu-helpers.ts); skips otherwise.
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { capture } from './helpers/capture.js';
import { pickBackend } from '../src/cli/common.js';
import { loadModel } from '../src/models/load.js';
import { initToy } from '../src/organisms/common.js';
import { inductionConfig } from '../src/organisms/induction.js';
import { RECIPES } from '../src/organisms/index.js';
import type { Tensor } from '../src/tensor/tensor.js';
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

  it('organisms train runs on WebGPU with the wasm losses, evaluations and weights', async () => {
    // Two updates of the induction organism (batch 32 of 49-token sequences), evaluated after each
    // (in-context loss drop and per-head induction scores, read asynchronously during training) and
    // at the end, on WebGPU and on wasm. Seen on SwiftShader: every number within 3e-7 (relative).
    const dir = mkdtempSync(join(tmpdir(), 'actlab-webgpu-organism-'));
    const runs: { log: { step: number; loss: number }[]; evals: Record<string, unknown>[]; final: Record<string, unknown> }[] = [];
    for (const b of ['webgpu', 'wasm']) {
      const out = join(dir, b);
      const r = await capture(['organisms', 'train', 'induction', '--steps', '2', '--eval-every', '1', '--out', out, '--backend', b]);
      expect(r.code, `${b}: ${r.err}`).toBe(0);
      const lines = (f: string) => readFileSync(join(out, f), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
      // The log's numbers without its timings.
      const log = lines('train_log.jsonl').map(({ step, loss, lr, grad_norm }) => ({ step, loss, lr, grad_norm }) as { step: number; loss: number });
      runs.push({ log, evals: lines('eval_log.jsonl'), final: JSON.parse(r.out.trim().split('\n').at(-1)!) as Record<string, unknown> });
    }
    const [gpu, cpu] = runs as [typeof runs[0], typeof runs[0]];
    console.log(`organisms train induction, losses: webgpu ${gpu.log.map((l) => l.loss.toFixed(6)).join(' ')}, wasm ${cpu.log.map((l) => l.loss.toFixed(6)).join(' ')}`);
    expect(gpu.log.map((l) => l.step)).toEqual([1, 2]);
    expect(gpu.evals.map((e) => e.step)).toEqual([1, 2]);
    const d = { log: diff(gpu.log, cpu.log), evals: diff(gpu.evals, cpu.evals), final: diff(gpu.final, cpu.final) };
    console.log(`largest relative difference webgpu vs wasm: train log ${d.log.toExponential(2)}, evaluations ${d.evals.toExponential(2)}, final evaluation ${d.final.toExponential(2)}`);
    expect(d.log).toBeLessThan(1e-5);
    expect(d.evals).toBeLessThan(1e-5);
    expect(d.final).toBeLessThan(1e-5);

    // The weights: two warm-up updates move them by ~1e-4 from the initialisation (the same seed on
    // every backend); WebGPU's must land where wasm's do, within 1% of that move, so an update
    // skipped or wrong on WebGPU fails here even where the losses barely change.
    const js = await pickBackend('js');
    const init = initToy({ ...inductionConfig(), data_seed: RECIPES.induction.dataSeed }, js, 0);
    const trained = await Promise.all(['webgpu', 'wasm'].map((b) => loadModel(join(dir, b), { backend: 'js' })));
    const [pg, pc] = trained.map((t) => t.model.parameters()) as [Map<string, Tensor>, Map<string, Tensor>];
    let moved = 0;
    let apart = 0;
    for (const [name, w0] of init.parameters()) {
      const a = w0.dataSync() as Float32Array;
      const g = pg.get(name)!.dataSync() as Float32Array;
      const c = pc.get(name)!.dataSync() as Float32Array;
      for (let i = 0; i < a.length; i++) { moved = Math.max(moved, Math.abs(g[i]! - a[i]!)); apart = Math.max(apart, Math.abs(g[i]! - c[i]!)); }
    }
    console.log(`weights: largest move from the initialisation ${moved.toExponential(2)}, largest webgpu − wasm difference ${apart.toExponential(2)}`);
    expect(moved).toBeGreaterThan(1e-5);
    expect(moved).toBeLessThan(1e-2);
    expect(apart).toBeLessThan(moved / 100);
    init.dispose();
    for (const t of trained) t.model.dispose();

    // The checkpoint WebGPU wrote evaluates on wasm (organisms eval --model) as WebGPU evaluated it.
    const e = await capture(['organisms', 'eval', 'induction', '--model', join(dir, 'webgpu'), '--backend', 'wasm', '--json']);
    expect(e.code, e.err).toBe(0);
    const reloaded = JSON.parse(e.out.trim().split('\n').at(-1)!) as Record<string, unknown>;
    const dr = diff(reloaded, gpu.final);
    console.log(`checkpoint written on WebGPU, evaluated on wasm vs on WebGPU: largest relative difference ${dr.toExponential(2)}`);
    expect(dr).toBeLessThan(1e-5);
  }, 600_000);
});
