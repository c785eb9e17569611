// `actlab train` and `organisms train` traps, on the committed llama3 fixture (tiny, js backend,
// a few steps): checkpoints carry the tokenizer; --out and --context refused early; a resumed run
// logs each step once, says "nothing to do" when finished and states a schedule change; progress
// lines on a non-terminal stderr; organisms never write into the package's models/ by default.
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { capture } from './helpers/capture.js';
import { writeTinyTokenizers } from './helpers/tiny-tokenizers.js';
import { defaultTrainDir } from '../src/cli/organisms.js';
import { packageRoot } from '../src/cli/package-info.js';

const LLAMA = new URL('../fixtures/hf/llama3', import.meta.url).pathname;
let dir = '';
let tok: { bin: string; json: string; gguf: string };
let corpus = '';

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'actlab-train-cli-'));
  tok = writeTinyTokenizers(dir);
  corpus = join(dir, 'corpus.txt');
  const words = ['the', 'cat', 'sat', 'on', 'mat', 'and', 'dog', 'ran', 'once', 'upon', 'time'];
  writeFileSync(corpus, Array.from({ length: 40 }, (_, i) => Array.from({ length: 12 }, (_, j) => words[(i * 7 + j * 3) % words.length]).join(' ')).join('\n\n'));
});

const trainArgs = (out: string, steps: number, ...more: string[]) => ['train', '--model', LLAMA, '--tokenizer', tok.bin, '--corpus', corpus, '--out', out,
  '--context', '8', '--batch-size', '2', '--max-contexts', '16', '--lr', '1e-3', '--backend', 'js', '--steps', String(steps), ...more];
const logSteps = (out: string) => readFileSync(join(out, 'train_log.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l).step as number);

describe('actlab train', () => {
  it('checkpoints carry the tokenizer: --prompt works on them; progress lines without a terminal', async () => {
    const out = join(dir, 'run-tok');
    const r = await capture(trainArgs(out, 3));
    expect(r.code, r.err).toBe(0);
    expect(r.err).toMatch(/train: step 1\/3, loss \d/);
    expect(r.err).toMatch(/train: step 3\/3, loss \d/);
    expect(r.out).toMatch(/trained to step 3, loss \d+\.\d+; checkpoint/);
    const ck = join(out, 'checkpoint-3');
    expect(readdirSync(ck).sort()).toEqual(['config.json', 'model.safetensors', 'optimizer.safetensors', 'tokenizer.bin', 'trainer_state.json']);
    const g = await capture(['generate', '--model', ck, '--prompt', 'the cat', '--max-new-tokens', '2', '--json', '--backend', 'js']);
    expect(g.code, g.err).toBe(0);
    expect(JSON.parse(g.out.trim()).ids.slice(0, 3)).toEqual([1, ...JSON.parse((await capture(['tokenize', '--model', LLAMA, '--tokenizer', tok.bin, '--text', 'the cat', '--json'])).out).ids.slice(1)]);
    // An HF tokenizer is copied as tokenizer.json.
    const out2 = join(dir, 'run-hf');
    expect((await capture([...trainArgs(out2, 1).filter((a) => a !== tok.bin && a !== '--tokenizer'), '--tokenizer', tok.json])).code).toBe(0);
    expect(existsSync(join(out2, 'checkpoint-1', 'tokenizer.json'))).toBe(true);
    const t = await capture(['tokenize', '--model', join(out2, 'checkpoint-1'), '--text', ' cat', '--json']);
    expect(JSON.parse(t.out).tokens).toEqual(['<s>', 'Ġcat']);
  }, 120_000);

  it('refuses an unrelated non-empty --out, another run without --resume, and a --context past the model, leaving nothing behind', async () => {
    const other = join(dir, 'other');
    mkdirSync(other);
    writeFileSync(join(other, 'notes.txt'), 'mine');
    let r = await capture(trainArgs(other, 1));
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/--out .*other: the folder is not empty and holds no training run \(notes\.txt\)/);
    expect(readdirSync(other)).toEqual(['notes.txt']);
    const out = join(dir, 'run-once');
    expect((await capture(trainArgs(out, 1))).code).toBe(0);
    r = await capture(trainArgs(out, 2));
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/already holds a training run \(checkpoint-1, train_log\.jsonl\); pass --resume/);
    const long = join(dir, 'run-long');
    r = await capture(trainArgs(long, 1).map((a) => (a === '8' ? '4096' : a)));
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/--context: 4096 tokens is longer than the 128 positions/);
    expect(existsSync(long)).toBe(false);
  }, 120_000);

  it('a resumed run logs each step once, says "nothing to do" when finished, and states a schedule change', async () => {
    const out = join(dir, 'run-resume');
    expect((await capture(trainArgs(out, 4, '--checkpoint-every', '2'))).code).toBe(0);
    // As if killed after step 4 was logged but before its checkpoint was complete.
    rmSync(join(out, 'checkpoint-4'), { recursive: true });
    let r = await capture([...trainArgs(out, 4, '--checkpoint-every', '2'), '--resume']);
    expect(r.code, r.err).toBe(0);
    expect(logSteps(out)).toEqual([1, 2, 3, 4]);
    expect(r.out).toMatch(/trained to step 4 \(resumed at step 2\)/);
    expect(r.err).not.toMatch(/schedule/);
    r = await capture([...trainArgs(out, 4), '--resume']);
    expect(r.code).toBe(0);
    expect(r.err).toMatch(/nothing to do: .*checkpoint-4 is at step 4 and --steps is 4/);
    expect(r.out + r.err).not.toMatch(/NaN/);
    expect(logSteps(out)).toEqual([1, 2, 3, 4]);
    r = await capture([...trainArgs(out, 6), '--resume']);
    expect(r.code, r.err).toBe(0);
    expect(r.err).toMatch(/the learning-rate schedule changes at step 5: .* over 4 steps, this run uses .* over 6 steps \(lr at step 5: 0\.000e\+0 before, [\d.]+e-4 now\)/);
    expect(logSteps(out)).toEqual([1, 2, 3, 4, 5, 6]);
  }, 120_000);
});

describe('actlab organisms train', () => {
  it('writes under the working directory by default, never into the package\'s models/', () => {
    const d = defaultTrainDir('induction');
    expect(d.startsWith(join(packageRoot(), 'models'))).toBe(false);
    expect(d).toBe(join(process.cwd(), 'organisms', 'induction'));
  });
});
