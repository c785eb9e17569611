// The analysis registry: every analysis `actlab analyze NAME` runs is one `Analysis` value, declared
// in its own file beside the analysis (its name, its options as data, what input it needs and how
// it runs), and listed once in ANALYSIS_LIST below. The CLI builds its options and its dispatch from
// this list; the inspect report's sections live in src/report/sections (one file per section).
// Adding an analysis: write src/analysis/NAME.ts with `export const nameAnalysis: Analysis`, add it
// to ANALYSIS_LIST, and (to appear in the inspect report) add src/report/sections/NAME.ts.
// Not for: parsing command lines (src/cli/analyze.ts turns the option data into commander options).
import type { LoadedModel } from '../models/load.js';
import type { Backend } from '../tensor/backend.js';

/** A command-line option of an analysis, as data (the CLI turns it into a commander option). */
export interface AnalysisOption {
  /** Commander flags, e.g. '--epsilon <x>'. */
  flags: string;
  help: string;
  /** How the value is parsed (default string; 'list' is a variadic flag such as '--checkpoint <M...>'). */
  type?: 'string' | 'number' | 'int' | 'choice' | 'list';
  min?: number;
  max?: number;
  above?: number;
  choices?: readonly string[];
  /** Help shown once, without the analysis' name (an option several analyses read alike, e.g. --seed). */
  shared?: boolean;
}

/** The parsed options (camelCase keys as commander gives them) and what every analysis may ask for. */
export interface AnalysisEnv {
  args: AnalysisArgs;
  /** Loads a model by path or hub id (with --tokenizer, --backend, --offline applied). */
  load(model: string, tokenizer?: string): Promise<LoadedModel>;
  /** The backend --backend names (its default policy). */
  backend(): Promise<Backend>;
  readFile(path: string): Promise<Uint8Array>;
  /** A note for the user (stderr in the CLI). */
  warn(message: string): void;
  /** Throws when `tokens` do not fit the model's context. */
  checkContext(m: LoadedModel, tokens: number, what?: string): void;
  /** The prompt's ids (--prompt / --ids, else the default prompt) for model `m`. */
  promptIds(m: LoadedModel): { ids: number[]; text?: string };
}

export type AnalysisArgs = Record<string, unknown> & { model?: string; tokenizer?: string; json?: boolean; seed?: number };

/** What a 'prompt' analysis runs on: the loaded --model and the prompt's ids, checked against its context. */
export interface PromptInput {
  m: LoadedModel;
  ids: number[];
  text?: string;
}

export type Analysis = {
  name: string;
  options?: readonly AnalysisOption[];
} & (
  /** Needs --model and a prompt (checked against the model's context). */
  | { input: 'prompt'; run(x: PromptInput, env: AnalysisEnv): Promise<unknown> }
  /** Needs --model only. */
  | { input: 'model'; run(x: { m: LoadedModel }, env: AnalysisEnv): Promise<unknown> }
  /** Loads what it needs itself. */
  | { input: 'custom'; run(env: AnalysisEnv): Promise<unknown> }
) & {
  /** Runs instead of `run` when it returns a value (e.g. massive --checkpoint, which needs no --model). */
  override?(env: AnalysisEnv): Promise<unknown> | undefined;
};

import { massiveAnalysis } from './massive.js';
import { sinksAnalysis } from './sinks.js';
import { sparsityAnalysis } from './sparsity.js';
import { voidsAnalysis } from './voids.js';
import { logitLensAnalysis } from './logit-lens.js';
import { inductionAnalysis } from './induction.js';
import { expertsAnalysis } from './experts.js';
import { neuronsAnalysis } from './neurons.js';
import { similarityAnalysis } from './similarity.js';

/** Every analysis, in the order the CLI lists them (and declares their options). */
export const ANALYSIS_LIST: readonly Analysis[] = [
  massiveAnalysis, sinksAnalysis, sparsityAnalysis, voidsAnalysis, logitLensAnalysis, inductionAnalysis, expertsAnalysis, neuronsAnalysis, similarityAnalysis,
];

export function analysisNames(): string[] {
  return ANALYSIS_LIST.map((a) => a.name);
}

export function getAnalysis(name: string): Analysis {
  const a = ANALYSIS_LIST.find((x) => x.name === name);
  if (!a) throw new Error(`unknown analysis '${name}' (have ${analysisNames().join(', ')})`);
  return a;
}

/** Runs analysis `name`: loads the model and prompt its input asks for, and disposes what it loaded. */
export async function runAnalysis(name: string, env: AnalysisEnv): Promise<unknown> {
  const a = getAnalysis(name);
  const early = a.override?.(env);
  if (early !== undefined) return early;
  if (a.input === 'custom') return a.run(env);
  if (!env.args.model) throw new Error(`${name}: give --model`);
  const m = await env.load(env.args.model);
  try {
    if (a.input === 'model') return await a.run({ m }, env);
    const { ids, text } = env.promptIds(m);
    env.checkContext(m, ids.length);
    return await a.run({ m, ids, text }, env);
  } finally {
    m.model.dispose();
  }
}
