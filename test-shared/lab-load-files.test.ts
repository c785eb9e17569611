// The lab page's loader (src/web/load.ts) run in Node on files as a user picks them in the static
// page: stories260K.bin with its tok512.bin. The tokenizer is found under that name (not only as
// tokenizer.bin), tokenizes as the Node loader does, and the tokens view gives the same numbers.
import { existsSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import '../src/backends/index.js';
import { labModel } from '../src/lab/model.js';
import { runView } from '../src/lab/views.js';
import { loadModel } from '../src/models/load.js';
import { loadFiles } from '../src/web/load.js';

const DIR = new URL('../../shared/data/stories260K/', import.meta.url).pathname;
const have = existsSync(`${DIR}stories260K.bin`) && existsSync(`${DIR}tok512.bin`);
if (!have) console.log('lab file loading test skipped: ../shared/data/stories260K not found');
const PROMPT = 'Once upon a time, there was a little girl named Lily.';

describe.skipIf(!have)('the lab page loads picked files', () => {
  it('finds a llama2.c tokenizer picked as tok512.bin, with the Node loader\'s tokens and numbers', async () => {
    const blob = (f: string) => ({ name: f, blob: new Blob([readFileSync(`${DIR}${f}`)]) });
    const picked = await loadFiles([blob('tok512.bin'), blob('stories260K.bin')], 'js', 'stories260K');
    const node = labModel(await loadModel(`${DIR}stories260K.bin`, { backend: 'js', tokenizerPath: `${DIR}tok512.bin` }), 'stories260K');
    try {
      expect(picked.textTokenizer, 'the page found no tokenizer among the picked files').toBe(true);
      const ids = picked.tokenizer.encode(PROMPT);
      expect(ids).toEqual(node.tokenizer.encode(PROMPT));
      const a = await runView(picked, 'tokens', { prompt: PROMPT });
      const b = await runView(node, 'tokens', { prompt: PROMPT });
      console.log(`picked files: ${ids.length} tokens, mean loss ${a.mean_loss} (Node loader ${b.mean_loss})`);
      expect(a.mean_loss).toBe(b.mean_loss);
    } finally {
      picked.model.dispose();
      node.model.dispose();
    }
  }, 120_000);
});
