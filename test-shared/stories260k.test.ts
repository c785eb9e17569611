// A real pretrained model: llama2.c's stories260K must generate, greedy from BOS, exactly the
// published text (../shared/data/stories260K/greedy_from_BOS_256.txt), and score its known NLL.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import * as al from '../src/index.js';
import { Llama2cCheckpoint } from '../src/formats/llama2c.js';
import { NodeFileSource } from '../src/io/node/file-source.js';
import { buildModel } from '../src/models/registry.js';
import { generate } from '../src/models/generate.js';
import { Llama2cTokenizer, parseLlama2cTokenizer } from '../src/tokenizer/llama2c.js';

const DIR = new URL('../../shared/data/stories260K/', import.meta.url).pathname;

describe.each(['js', 'wasm'])('stories260K on %s', (backendName) => {
  it('greedy from BOS reproduces the published 256-step text, and the known NLL', async () => {
    const backend = await al.initBackend(backendName);
    const ckpt = await Llama2cCheckpoint.open(await NodeFileSource.open(`${DIR}stories260K.bin`));
    const model = await buildModel(ckpt.config(), ckpt, backend);
    await ckpt.close();
    const tok = new Llama2cTokenizer(parseLlama2cTokenizer(readFileSync(`${DIR}tok512.bin`), 512));
    // 256 new tokens after BOS (as the reference script made them), stopping early at BOS, run.c's delimiter.
    const r = generate(model, [[1]], { maxNewTokens: 256, eosTokenIds: [1] });
    const text = tok.decode(r.ids[0]!, { skipSpecialTokens: true });
    const want = readFileSync(`${DIR}greedy_from_BOS_256.txt`, 'utf8');
    console.log(`${backendName}: ${r.newIds[0]!.length} tokens; first 80 chars: ${JSON.stringify(text.slice(0, 80))}`);
    expect(text.trim()).toBe(want.trim());

    const sentence = 'Once upon a time, there was a little girl named Lily. She loved to play outside in the park. One day, she saw a big, red ball.';
    const ids = tok.encode(sentence, { addSpecialTokens: true });
    const logits = model.forward(al.tensor(ids, [1, ids.length], 'i32', { backend }));
    const lp = al.logSoftmax(logits);
    const d = lp.dataSync();
    let nll = 0;
    for (let i = 0; i < ids.length - 1; i++) nll -= d[i * 512 + ids[i + 1]!]!;
    nll /= ids.length - 1;
    console.log(`${backendName}: mean NLL ${nll.toFixed(4)} over ${ids.length - 1} tokens (published 0.324 over 44)`);
    expect(ids.length - 1).toBe(44);
    expect(Math.abs(nll - 0.324)).toBeLessThan(0.001);
    logits.dispose(); lp.dispose(); model.dispose();
  }, 120_000);
});
