// The CLI's traps, each a test that would have caught it: unknown test-ops names, a closed pipe,
// `analyze neurons` without --model, `similarity --against` across tokenizers, prompts past a
// model's context, and one default backend for every command.
import { copyFileSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it, vi } from 'vitest';
import type { Command } from 'commander';
import { capture } from './helpers/capture.js';
import { writeTinyTokenizers } from './helpers/tiny-tokenizers.js';
import { buildProgram, endQuietlyOnClosedPipe } from '../src/cli/main.js';

const FIX = new URL('../fixtures/hf/', import.meta.url).pathname;
let dir = '';
let withJson = '';
let withBin = '';

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'actlab-traps-'));
  const tok = writeTinyTokenizers(dir);
  // Two copies of the llama3 fixture: one with an HF tokenizer.json, one with a llama2.c tokenizer.bin.
  withJson = join(dir, 'llama-json');
  withBin = join(dir, 'llama-bin');
  for (const [d, t, name] of [[withJson, tok.json, 'tokenizer.json'], [withBin, tok.bin, 'tokenizer.bin']] as const) {
    mkdirSync(d);
    for (const f of ['config.json', 'generation_config.json', 'model.safetensors']) copyFileSync(join(FIX, 'llama3', f), join(d, f));
    copyFileSync(t, join(d, name));
  }
});

describe('CLI traps', () => {
  it('test-ops refuses an --op or --backend that selects nothing, before running anything', async () => {
    let r = await capture(['test-ops', '--op', 'nosuchop']);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/--op 'nosuchop' matches no case \(ops: adamw, .*attention, .*softmax/);
    expect(r.out).not.toMatch(/all cases passed/);
    r = await capture(['test-ops', '--op', 'softmax', 'nosuchop', '--mode', 'grad']);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/--op 'nosuchop' matches no gradient case/);
    r = await capture(['test-ops', '--op', 'softmax', '--backend', 'cuda']);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/--backend 'cuda' is not a backend \(have js, wasm, webgpu\)/);
    r = await capture(['test-ops', '--op', 'softmax f32 [7,33]', '--backend', 'js', '--json']);
    expect(r.code, r.err).toBe(0);
    expect(JSON.parse(r.out.trim().split('\n')[0]!).status).toBe('pass');
  });

  it('a closed pipe (EPIPE) on stdout ends the command quietly with status 0; other errors still throw', () => {
    endQuietlyOnClosedPipe();
    endQuietlyOnClosedPipe(); // installed once
    const ours = process.stdout.listeners('error').filter((l) => (l as { actlabPipe?: boolean }).actlabPipe);
    expect(ours).toHaveLength(1);
    const exit = vi.spyOn(process, 'exit').mockImplementation((() => undefined) as never);
    try {
      ours[0]!.call(process.stdout, Object.assign(new Error('write EPIPE'), { code: 'EPIPE' }));
      expect(exit).toHaveBeenCalledWith(0);
      expect(() => ours[0]!.call(process.stdout, Object.assign(new Error('disk full'), { code: 'ENOSPC' }))).toThrow(/disk full/);
    } finally {
      exit.mockRestore();
    }
  });

  it('analyze neurons works without --model (token ids), on the default backend', async () => {
    const corpus = join(dir, 'c.txt');
    writeFileSync(corpus, Array.from({ length: 12 }, (_, i) => `the cat sat on the mat ${i} and the dog ran`).join('\n\n'));
    const store = join(dir, 'store');
    let r = await capture(['cache', '--model', withJson, '--corpus', corpus, '--hooks', 'blocks.0.hook_mlp_out', '--out', store, '--context', '8', '--backend', 'js']);
    expect(r.code, r.err).toBe(0);
    r = await capture(['analyze', 'neurons', '--store', store, '--hook', 'blocks.0.hook_mlp_out', '--neuron', '3', '--top-k', '2', '--facets', '0', '--json']);
    expect(r.code, r.err).toBe(0);
    const j = JSON.parse(r.out);
    expect(j.examples).toHaveLength(2);
    expect(j.examples[0].value).toBeGreaterThanOrEqual(j.examples[1].value);
  }, 60_000);

  it('similarity --against refuses a model whose tokenizer reads the prompt differently', async () => {
    let r = await capture(['analyze', 'similarity', '--model', withJson, '--against', withBin, '--prompt', 'the cat sat', '--method', 'cka', '--json', '--backend', 'js']);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/llama-bin has another tokenizer than .*llama-json .*cannot be compared token by token/);
    r = await capture(['analyze', 'similarity', '--model', withJson, '--against', withJson, '--prompt', 'the cat sat', '--method', 'cka', '--json', '--backend', 'js']);
    expect(r.code, r.err).toBe(0);
    // Without a tokenizer on one side the ids are taken as given, and it says so.
    r = await capture(['analyze', 'similarity', '--model', withJson, '--against', `${FIX}gpt2`, '--ids', '1,2,3', '--method', 'cka', '--json', '--backend', 'js']);
    expect(r.code, r.err).toBe(0);
    expect(r.err).toMatch(/gpt2 has no tokenizer, so the ids are assumed to mean the same text/);
  }, 60_000);

  it('a prompt past the model\'s context is refused by generate, run, analyze and inspect', async () => {
    const long = Array.from({ length: 130 }, (_, i) => String(3 + (i % 100))).join(',');
    const model = `${FIX}llama3`; // RoPE, 128 positions
    for (const argv of [
      ['generate', '--model', model, '--ids', long, '--max-new-tokens', '1'],
      ['generate', '--model', model, '--ids', '1,2,3', '--max-new-tokens', '126'],
      ['run', '--model', model, '--ids', long, '--hooks', 'hook_embed', '--save', join(dir, 'x.safetensors')],
      ['analyze', 'sinks', '--model', model, '--ids', long],
      ['inspect', '--model', model, '--ids', long, '--no-engine'],
    ]) {
      const r = await capture([...argv, '--backend', 'js']);
      expect(r.code, argv.join(' ')).toBe(1);
      expect(r.err, argv.join(' ')).toMatch(/(131|130|129) tokens is longer than the 128 positions/);
    }
  }, 60_000);

  it('every command that runs a model defaults to --backend auto', () => {
    const walk = (c: Command): Command[] => [c, ...c.commands.flatMap(walk)];
    const withBackend = walk(buildProgram()).filter((c) => c.options.some((o) => o.long === '--backend') && c.name() !== 'test-ops');
    const names = withBackend.map((c) => c.name());
    for (const n of ['analyze', 'cache', 'eval', 'generate', 'hooks', 'inspect', 'patch', 'run', 'skip-layers', 'train']) expect(names).toContain(n);
    for (const c of withBackend) expect(c.options.find((o) => o.long === '--backend')!.defaultValue, c.name()).toBe('auto');
  });
});
