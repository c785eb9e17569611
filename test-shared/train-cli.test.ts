// `actlab train` end to end on ../shared data: stories260K fine-tuned on Tiny Shakespeare for a
// few steps on wasm, with checkpoints, the JSONL log, and a resumed second run.
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, it, vi } from 'vitest';
import { run } from '../src/cli/main.js';

const S = new URL('../../shared/data/', import.meta.url).pathname;

it('actlab train: loss falls, checkpoints in HF layout, --resume continues', async () => {
  const out = mkdtempSync(join(tmpdir(), 'actlab-train-'));
  const args = ['train', '--model', `${S}stories260K/stories260K.bin`, '--tokenizer', `${S}stories260K/tok512.bin`,
    '--corpus', `${S}tinyshakespeare/input.txt`, '--out', out, '--context', '32', '--batch-size', '4', '--max-contexts', '8',
    '--backend', 'wasm', '--lr', '3e-3', '--checkpoint-every', '5', '--steps', '20'];
  const log = vi.spyOn(console, 'log').mockImplementation(() => {});
  try {
    expect(await run([...args, '--json'])).toBe(0);
    expect(await run([...args.slice(0, -1), '25', '--resume'])).toBe(0);
  } finally {
    log.mockRestore();
  }
  const lines = readFileSync(join(out, 'train_log.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  expect(lines.map((l) => l.step)).toEqual(Array.from({ length: 25 }, (_, i) => i + 1));
  const first = lines.slice(0, 3).reduce((s, l) => s + l.loss, 0) / 3;
  const last = lines.slice(17, 20).reduce((s, l) => s + l.loss, 0) / 3;
  console.log(`stories260K on Tiny Shakespeare (8 contexts): loss ${first.toFixed(3)} -> ${last.toFixed(3)}`);
  expect(last).toBeLessThan(first * 0.8);
  for (const f of ['model.safetensors', 'config.json', 'optimizer.safetensors', 'trainer_state.json']) {
    expect(existsSync(join(out, 'checkpoint-25', f))).toBe(true);
  }
}, 300_000);
