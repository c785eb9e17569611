// GGUF tokenizers on real files made by llama.cpp's tools: the vocabulary-only GGUFs of
// ../shared/data/vocab-gguf (Llama's SentencePiece vocabulary, GPT-2's byte-level BPE) must give
// llama.cpp's own ids on its tokenizer test cases (test-shared/fixtures/vocab-gguf), through
// `actlab tokenize`; and stories260K.gguf tokenizes as its llama2.c twin does.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { capture } from '../test/helpers/capture.js';
import { loadTokenizer } from '../src/tokenizer/load.js';

const DATA = join(__dirname, '../../shared/data');
const CASES = join(__dirname, 'fixtures/vocab-gguf');

function cases(name: string): { text: string; ids: number[] }[] {
  const inp = readFileSync(join(CASES, `${name}.inp`), 'utf8').split('\n__ggml_vocab_test__\n');
  const out = readFileSync(join(CASES, `${name}.out`), 'utf8').split('\n');
  inp.pop(); // the file ends with a separator
  return inp.map((text, i) => ({ text, ids: out[i]!.trim() === '' ? [] : out[i]!.trim().split(' ').map(Number) }));
}

describe.skipIf(!existsSync(join(DATA, 'vocab-gguf')))('GGUF tokenizers against llama.cpp', () => {
  for (const name of ['ggml-vocab-llama-spm.gguf', 'ggml-vocab-gpt-2.gguf']) {
    it(`${name}: llama.cpp's ids on every test case`, async () => {
      const tok = await loadTokenizer(join(DATA, 'vocab-gguf', name));
      const all = cases(name);
      const wrong = all.filter((c) => JSON.stringify(tok.encode(c.text, { addSpecialTokens: false })) !== JSON.stringify(c.ids));
      console.log(`${name}: ${all.length - wrong.length}/${all.length} cases give llama.cpp's ids`);
      for (const c of wrong.slice(0, 3)) console.log(`  ${JSON.stringify(c.text)}: actlab ${JSON.stringify(tok.encode(c.text, { addSpecialTokens: false }))}, llama.cpp ${JSON.stringify(c.ids)}`);
      expect(wrong.map((c) => c.text)).toEqual([]);
    }, 60_000);
  }

  it('actlab tokenize reads a GGUF model\'s tokenizer: stories260K.gguf equals its llama2.c twin', async () => {
    const text = 'Once upon a time, there was a little girl named Lily.';
    const run = async (...a: string[]) => {
      const r = await capture(['tokenize', ...a, '--text', text, '--json']);
      expect(r.code, r.err).toBe(0);
      return JSON.parse(r.out) as { ids: number[]; tokens: string[] };
    };
    const gguf = await run('--model', join(DATA, 'stories260K-gguf/stories260K.gguf'));
    const bin = await run('--model', join(DATA, 'stories260K/stories260K.bin'), '--tokenizer', join(DATA, 'stories260K/tok512.bin'));
    expect(gguf.ids[0]).toBe(1);
    expect(gguf.ids).toEqual(bin.ids);
    expect(gguf.ids.length).toBeGreaterThan(8);
    // The vocabulary-only GGUF as --tokenizer of another model kind.
    const spm = await run('--model', join(DATA, 'stories260K/stories260K.bin'), '--tokenizer', join(DATA, 'vocab-gguf/ggml-vocab-llama-spm.gguf'));
    const spmTok = await loadTokenizer(join(DATA, 'vocab-gguf/ggml-vocab-llama-spm.gguf'));
    expect(spm.ids).toEqual([1, ...spmTok.encode(text, { addSpecialTokens: false })]);
    expect(spm.tokens[1]).toBe('\u2581Once');
  }, 60_000);
});
