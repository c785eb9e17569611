// What every command's `register(program)` shares: the one parser of numeric options (commander
// argParsers that reject a bad value with the option's name and the value), the model options
// (--model, --tokenizer, --backend, --offline) with the one default-backend policy, and the
// action wrapper that hands a command's exit code back to main.ts.
import { Command, InvalidArgumentError, Option } from 'commander';

/** What a numeric option accepts. `min`/`max` are inclusive, `above`/`below` exclusive. */
export interface NumberRule {
  int?: boolean;
  min?: number;
  max?: number;
  above?: number;
  below?: number;
}

function describe(r: NumberRule): string {
  const what = r.int ? 'an integer' : 'a number';
  if (r.min !== undefined && r.max !== undefined) return `${what} from ${r.min} to ${r.max}`;
  const bounds = [
    r.min !== undefined ? `>= ${r.min}` : r.above !== undefined ? `> ${r.above}` : '',
    r.max !== undefined ? `<= ${r.max}` : r.below !== undefined ? `< ${r.below}` : '',
  ].filter(Boolean);
  return [what, bounds.join(' and ')].filter(Boolean).join(' ');
}

/**
 * The number in `value`, or an InvalidArgumentError saying what was expected; commander turns it
 * into "option '--top-k <k>' argument '0' is invalid. must be an integer >= 1" (exit code 1).
 * Number('') and Number(' ') are 0 and Number('0x10') is 16, so the text is checked first.
 */
export function parseNumber(value: string, rule: NumberRule = {}): number {
  const s = value.trim();
  const n = /^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i.test(s) ? Number(s) : NaN;
  const ok = Number.isFinite(n)
    && (!rule.int || Number.isSafeInteger(n))
    && (rule.min === undefined || n >= rule.min)
    && (rule.max === undefined || n <= rule.max)
    && (rule.above === undefined || n > rule.above)
    && (rule.below === undefined || n < rule.below);
  if (!ok) throw new InvalidArgumentError(`must be ${describe(rule)}`);
  return n;
}

/** An argParser for a numeric option: `.option('--top-k <k>', 'help', num({ int: true, min: 1 }))`. */
export const num = (rule: NumberRule = {}) => (value: string): number => parseNumber(value, rule);
/** An integer option, >= min (default 0). */
export const int = (min = 0, max?: number) => num({ int: true, min, max });

/** A comma-separated list of integers (token ids), each >= 0; the bad item is named. */
export function intList(value: string): number[] {
  const items = value.split(',').map((s) => s.trim()).filter((s) => s !== '');
  if (items.length === 0) throw new InvalidArgumentError('must be a comma-separated list of integers, such as 1,2,3');
  return items.map((s) => {
    try {
      return parseNumber(s, { int: true, min: 0 });
    } catch {
      throw new InvalidArgumentError(`'${s}' is not an integer >= 0 (give a comma-separated list such as 1,2,3)`);
    }
  });
}

/** The backends a command runs on; `auto` is the default everywhere (src/cli/common.ts: pickBackend decides). */
export const BACKENDS = ['auto', 'wasm', 'js', 'webgpu'] as const;
export const DEFAULT_BACKEND = 'auto';

export function backendOption(): Option {
  return new Option('--backend <name>', 'auto (wasm, else js), wasm, js or webgpu').choices(BACKENDS).default(DEFAULT_BACKEND);
}

/** The floating-point dtypes a model can run in (weights and activations; every kernel accumulates in f32). */
export const MODEL_DTYPES = ['f32', 'f16', 'bf16'] as const;

export function dtypeOption(): Option {
  return new Option('--dtype <d>', 'weights and activations in f32, f16 or bf16 (products and norms accumulate in f32)').choices(MODEL_DTYPES).default('f32');
}

/** --model (required unless `optional`), --tokenizer, --backend, --offline; `dtype`: also --dtype. */
export function modelOptions(c: Command, o: { optional?: string; dtype?: boolean } = {}): Command {
  const model = 'a local HF folder, a llama2.c .bin, a GGUF file or a hub id';
  if (o.optional !== undefined) c.option('--model <M>', `${model}${o.optional ? ` (${o.optional})` : ''}`);
  else c.requiredOption('--model <M>', model);
  c
    .option('--tokenizer <file>', 'a tokenizer for the model: llama2.c tokenizer.bin, tokenizer.json, a GGUF file or a folder holding one')
    .addOption(backendOption())
    .option('--offline', 'use only the local cache for hub ids');
  if (o.dtype) c.addOption(dtypeOption());
  return c;
}

/** --prompt TEXT or --ids 1,2,3 (not both). */
export function promptOptions(c: Command, what = 'prompt'): Command {
  return c
    .addOption(new Option('--prompt <text>', `${what} text`).conflicts('ids'))
    .option('--ids <list>', `${what} token ids, comma-separated`, intList);
}

const codes = new WeakMap<Command, number>();

function root(c: Command): Command {
  let r = c;
  while (r.parent) r = r.parent;
  return r;
}

/**
 * A command's action: `fn` gets commander's arguments (positional arguments, then the options
 * object) and resolves to the exit code, which `exitCodeOf(program)` then returns to main.ts.
 */
export function action<A extends unknown[]>(fn: (...args: A) => Promise<number>): (...args: unknown[]) => Promise<void> {
  return async function (this: Command, ...args: unknown[]) {
    const code = await fn(...(args.slice(0, -1) as A));
    codes.set(root(this), code);
  };
}

/** The exit code the command that ran under `program` resolved to (0 when none ran). */
export function exitCodeOf(program: Command): number {
  return codes.get(program) ?? 0;
}
