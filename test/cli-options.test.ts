// The CLI's option handling: one number parser for every numeric option (the option and the bad
// value named), choices, --prompt with --ids refused, and each command registering its own options.
import { describe, expect, it } from 'vitest';
import { InvalidArgumentError } from 'commander';
import { capture } from './helpers/capture.js';
import { intList, parseNumber } from '../src/cli/options.js';

const GPT2 = new URL('../fixtures/hf/gpt2', import.meta.url).pathname;

describe('CLI options', () => {
  it('parseNumber accepts numbers in range and refuses the rest with what was expected', () => {
    expect(parseNumber('3', { int: true, min: 1 })).toBe(3);
    expect(parseNumber('1e-3', { above: 0 })).toBe(0.001);
    expect(parseNumber(' -2.5 ')).toBe(-2.5);
    for (const [v, rule, msg] of [
      ['', {}, 'must be a number'],
      ['0x10', {}, 'must be a number'],
      ['abc', { int: true }, 'must be an integer'],
      ['1.5', { int: true, min: 0 }, 'must be an integer >= 0'],
      ['0', { above: 0, max: 1 }, 'must be a number > 0 and <= 1'],
      ['5', { above: 0, max: 1 }, 'must be a number > 0 and <= 1'],
      ['Infinity', {}, 'must be a number'],
      ['11', { min: 0, max: 10 }, 'must be a number from 0 to 10'],
    ] as const) {
      expect(() => parseNumber(v, rule), v).toThrow(InvalidArgumentError);
      expect(() => parseNumber(v, rule), v).toThrow(msg);
    }
    expect(intList('1, 2,3')).toEqual([1, 2, 3]);
    expect(() => intList('1,x')).toThrow(/'x' is not an integer/);
    expect(() => intList(',')).toThrow(/comma-separated/);
  });

  it('generate refuses nonsense sampling settings, naming the option and the value', async () => {
    const base = ['generate', '--model', GPT2, '--ids', '1,2', '--max-new-tokens', '2', '--backend', 'js'];
    for (const [flag, value, want] of [
      ['--temperature', '-1', /'--temperature <t>' argument '-1' is invalid\. must be a number >= 0/],
      ['--top-p', '5', /'--top-p <p>' argument '5' is invalid\. must be a number > 0 and <= 1/],
      ['--top-k', '0', /'--top-k <k>' argument '0' is invalid\. must be an integer >= 1/],
      ['--max-new-tokens', 'ten', /'--max-new-tokens <n>' argument 'ten' is invalid/],
      ['--backend', 'gpu', /'--backend <name>' argument 'gpu' is invalid\. Allowed choices are auto, wasm, js, webgpu/],
    ] as const) {
      const r = await capture([...base, flag, value]);
      expect(r.code, `${flag} ${value}`).toBe(1);
      expect(r.err).toMatch(want);
      expect(r.out).toBe('');
    }
  });

  it('--prompt with --ids is refused; a bad id in --ids is named', async () => {
    let r = await capture(['generate', '--model', GPT2, '--ids', '1,2', '--prompt', 'hi', '--max-new-tokens', '1', '--backend', 'js']);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/'--prompt <text>' cannot be used with option '--ids <list>'/);
    r = await capture(['run', '--model', GPT2, '--ids', '1,-4', '--hooks', 'hook_embed', '--save', '/nonexistent/x.safetensors', '--backend', 'js']);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/'-4' is not an integer >= 0/);
    r = await capture(['patch', '--model', GPT2, '--clean', 'a', '--clean-ids', '1', '--corrupt-ids', '2', '--answer', '1', '--wrong', '2']);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/'--clean <text>' cannot be used with option '--clean-ids <list>'/);
  });

  it('every numeric option of every command goes through the parser', async () => {
    for (const argv of [
      ['analyze', 'sinks', '--model', GPT2, '--epsilon', 'x'],
      ['analyze', 'induction', '--model', GPT2, '--length', '0'],
      ['cache', '--model', GPT2, '--corpus', 'c.txt', '--hooks', 'hook_embed', '--out', 'o', '--context', '-5'],
      ['train', '--model', GPT2, '--corpus', 'c.txt', '--out', 'o', '--steps', '2.5'],
      ['train', '--model', GPT2, '--corpus', 'c.txt', '--out', 'o', '--steps', '2', '--lr', '0'],
      ['inspect', '--generate', '-1'],
      ['organisms', 'train', 'induction', '--steps', 'many'],
    ]) {
      const r = await capture(argv);
      expect(r.code, argv.join(' ')).toBe(1);
      expect(r.err, argv.join(' ')).toMatch(/argument '.*' is invalid\. must be/);
    }
    const r = await capture(['analyze', 'nosuch']);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/'nosuch' is invalid for argument 'name'\. Allowed choices are massive/);
  });
});
