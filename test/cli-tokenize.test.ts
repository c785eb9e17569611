// `actlab tokenize` and `--tokenizer` for every model kind, on the committed fixture models with
// tokenizers of each kind written by the test (llama2.c tok.bin, HF tokenizer.json, GGUF metadata).
import { mkdtempSync, mkdirSync, copyFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { capture } from './helpers/capture.js';
import { writeTinyTokenizers } from './helpers/tiny-tokenizers.js';

const LLAMA = new URL('../fixtures/hf/llama3', import.meta.url).pathname;
let dir = '';
let tok: { bin: string; json: string; gguf: string };

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'actlab-tokenize-'));
  tok = writeTinyTokenizers(dir);
});

async function tokenize(...args: string[]): Promise<{ ids: number[]; tokens: string[] }> {
  const r = await capture(['tokenize', ...args, '--json']);
  expect(r.code, r.err).toBe(0);
  return JSON.parse(r.out.trim());
}

describe('actlab tokenize', () => {
  it('reads a llama2.c, an HF and a GGUF tokenizer through --tokenizer, for an HF model', async () => {
    const l2c = await tokenize('--model', LLAMA, '--tokenizer', tok.bin, '--text', 'the cat sat');
    // BOS, then ' the' ' cat' ' sat' (the dummy-prefix space merges into each word)
    expect(l2c.ids[0]).toBe(1);
    expect(l2c.ids).toHaveLength(4);
    expect(l2c.tokens.slice(1)).toEqual([' the', ' cat', ' sat']);
    const gguf = await tokenize('--model', LLAMA, '--tokenizer', tok.gguf, '--text', 'the cat sat');
    expect(gguf.ids).toEqual(l2c.ids);
    const hf = await tokenize('--model', LLAMA, '--tokenizer', tok.json, '--text', ' the cat');
    expect(hf.ids[0]).toBe(0);
    expect(hf.tokens.slice(1)).toEqual(['Ġthe', 'Ġcat']);
    const plain = await tokenize('--model', LLAMA, '--tokenizer', tok.json, '--text', ' the cat', '--no-special-tokens');
    expect(plain.ids).toEqual(hf.ids.slice(1));
  });

  it('finds the tokenizer an HF folder carries; no tokenizer or no model is a clear error', async () => {
    const folder = join(dir, 'llama-with-tok');
    mkdirSync(folder);
    for (const f of ['config.json', 'generation_config.json', 'model.safetensors']) copyFileSync(join(LLAMA, f), join(folder, f));
    copyFileSync(tok.json, join(folder, 'tokenizer.json'));
    expect((await tokenize('--model', folder, '--text', ' dog')).tokens).toEqual(['<s>', 'Ġdog']);
    // The text form: a count line, then one line per token.
    const r = await capture(['tokenize', '--model', folder, '--text', ' dog']);
    expect(r.out.split('\n')[0]).toMatch(/^2 tokens: 0 \d+$/);
    const bad = await capture(['tokenize', '--model', join(dir, 'nothing-here'), '--offline', '--text', 'x']);
    expect(bad.code).toBe(1);
    expect(bad.err).toMatch(/nothing-here/);
    const none = await capture(['tokenize', '--model', LLAMA, '--text', 'x']);
    expect(none.code).toBe(1);
    expect(none.err).toMatch(/has no tokenizer; pass --tokenizer FILE/);
  });

  it('--tokenizer works for generate on every kind, and a wrong-size tokenizer is refused', async () => {
    for (const t of [tok.bin, tok.json, tok.gguf]) {
      const r = await capture(['generate', '--model', LLAMA, '--tokenizer', t, '--prompt', 'the cat', '--max-new-tokens', '3', '--json', '--backend', 'js']);
      expect(r.code, `${t}: ${r.err}`).toBe(0);
      const j = JSON.parse(r.out.trim());
      expect(j.ids.length).toBeGreaterThan(3);
      expect(typeof j.text).toBe('string');
    }
    const small = join(dir, 'small.bin');
    writeFileSync(small, new Uint8Array([16, 0, 0, 0]));
    const r = await capture(['generate', '--model', LLAMA, '--tokenizer', small, '--prompt', 'x', '--max-new-tokens', '1', '--backend', 'js']);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/small\.bin: ends at token 0 of 512/);
  });
});
