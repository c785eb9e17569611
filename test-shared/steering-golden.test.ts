// Golden steered generation on stories260K (GGUF): the "dog" vector of docs/steering/dog-pairs.jsonl
// (difference of means over each sentence's tokens at blocks.2.hook_resid_post, as
// scripts/steering-experiment.mjs makes it) has a fixed norm, and greedy decoding with it added at
// strength 3 gives fixed tokens, the same on js and wasm; strength 0 is the unsteered text.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import * as al from '../src/index.js';

const GGUF = new URL('../../shared/data/stories260K-gguf/stories260K.gguf', import.meta.url).pathname;
const PAIRS = new URL('../docs/steering/dog-pairs.jsonl', import.meta.url).pathname;
const PROMPT = 'Once upon a time, there was a little girl named Lily.';
const UNSTEERED = [338, 401, 396, 267, 337, 410, 408, 419, 292, 411, 322, 265, 282, 295, 433, 426, 385, 328, 432, 358, 394, 261, 370, 432, 352, 266, 268, 388, 426, 338, 391, 266];
const STEERED = [338, 401, 396, 267, 337, 335, 311, 400, 428, 426, 385, 328, 432, 392, 412, 444, 263, 415, 407, 261, 400, 428, 395, 392, 412, 444, 426, 392, 412, 444, 432, 392];

describe.each(['js', 'wasm'])('golden steering on stories260K (%s)', (backendName) => {
  it('the dog vector at blocks.2.hook_resid_post, strength 3: fixed greedy tokens', async () => {
    const { model, tokenizer } = await al.loadModel(GGUF, { backend: await al.initBackend(backendName) });
    const tok = tokenizer!;
    const sv = al.steeringVectors(model, tok, al.parseContrastJsonl(readFileSync(PAIRS, 'utf8')), { method: 'mean_diff', read: 'mean', layers: [2] });
    const v = sv.vectors.get(2)!;
    console.log(`${backendName}: |v| = ${Math.hypot(...v).toFixed(6)} (golden 1.118144)`);
    expect(Math.hypot(...v)).toBeCloseTo(1.118144, 4);
    const prompt = tok.encode(PROMPT);
    const gen = (s: number) => al.withInterventions(model, [al.steeringIntervention(sv, 2, s)], () => al.generate(model, [prompt], { maxNewTokens: 32, tokenizer: tok }));
    const plain = gen(0);
    const steered = gen(3);
    console.log(`${backendName}: steered ${JSON.stringify(steered.text![0])}`);
    expect(plain.newIds[0]).toEqual(UNSTEERED);
    expect(steered.newIds[0]).toEqual(STEERED);
    expect(steered.text![0]).toMatch(/\bdog\b/);
    expect(plain.text![0]).not.toMatch(/\bdog\b/);
    model.dispose();
  }, 120_000);
});

describe('actlab steer --pairs on stories260K', () => {
  it('computes the same vector from the pairs file and prints the golden steered tokens', async () => {
    const { capture } = await import('../test/helpers/capture.js');
    const r = await capture(['steer', '--model', GGUF, '--pairs', PAIRS, '--read', 'mean', '--layer', '2', '--strength', '0,3', '--max-new-tokens', '32', '--prompt', PROMPT, '--json', '--backend', 'wasm']);
    expect(r.code, r.err).toBe(0);
    const j = JSON.parse(r.out.trim());
    expect(j.unsteered.ids).toEqual(UNSTEERED);
    expect(j.steered.map((s: { ids: number[] }) => s.ids)).toEqual([UNSTEERED, STEERED]);
    expect(j.hook).toBe('blocks.2.hook_resid_post');
  }, 120_000);
});
