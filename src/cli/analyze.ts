// `actlab analyze NAME`: one analysis of the registry (src/analysis/registry.ts) on a model and a
// prompt (or an activation store, or a recorded matrix), printed as JSON (indented; one line with
// --json). The options come from the analyses' own declarations: a flag several analyses share is
// declared once, its help naming each ("sinks: ...; sparsity: ..."), in the registry's order.
//   massive     [--checkpoint M ...] [--abs-threshold 100] [--ratio-threshold 1000]
//   sinks       [--epsilon 0.3] [--cos 0.9]
//   sparsity    [--mode auto|zero|eps] [--epsilon 0.01]
//   voids       [--alpha 0.8] [--generate 16]
//   logit-lens  [--position -1] [--top-k 5]
//   induction   [--length N] [--sequences 4] [--threshold 0.4] [--seed 0]
//   experts
//   neurons     --store DIR --hook H --neuron N [--top-k 10] [--facets 3] [--model M for decoding]
//   similarity  layers of --model; or --against M2 (layer by layer); or --recording FILE (.npy,
//               .csv, .safetensors [--tensor NAME]) against each layer; [--method cka|rsa|svcca]
//               [--units U] [--stimuli S] [--repeats R] [--seed 0]
import '../backends/index.js';
import { Argument, Option, type Command } from 'commander';
import { readFile } from 'node:fs/promises';
import { ANALYSIS_LIST, analysisNames, runAnalysis, type AnalysisArgs, type AnalysisEnv, type AnalysisOption } from '../analysis/registry.js';
import { disposeBackends } from '../tensor/engine.js';
import type { LoadedModel } from '../models/load.js';
import { checkContext, inputIds, loadForCli, pickBackend, type PromptArgs } from './common.js';
import { DEFAULT_PROMPT } from './inspect.js';
import { action, modelOptions, num, promptOptions } from './options.js';

export const ANALYSES = analysisNames();

function parserOf(o: AnalysisOption): ((v: string) => unknown) | undefined {
  if (o.type === 'number') return num({ min: o.min, max: o.max, above: o.above });
  if (o.type === 'int') return num({ int: true, min: o.min, max: o.max, above: o.above });
  return undefined;
}

/** One commander option per distinct flag, in the registry's order; shared flags list each analysis' help. */
export function analysisOptions(): Option[] {
  const byFlag = new Map<string, { decl: AnalysisOption; helps: string[] }>();
  for (const a of ANALYSIS_LIST) {
    for (const o of a.options ?? []) {
      const have = byFlag.get(o.flags);
      if (!have) { byFlag.set(o.flags, { decl: o, helps: [o.shared ? o.help : `${a.name}: ${o.help}`] }); continue; }
      if (have.decl.type !== o.type || have.decl.min !== o.min || have.decl.max !== o.max || have.decl.above !== o.above) {
        throw new Error(`analysis option ${o.flags}: '${a.name}' parses it differently from an earlier analysis; give it another name`);
      }
      if (!o.shared) have.helps.push(`${a.name}: ${o.help}`);
    }
  }
  return [...byFlag.values()].map(({ decl, helps }) => {
    const opt = new Option(decl.flags, helps.join('; '));
    if (decl.type === 'choice' && decl.choices) opt.choices(decl.choices);
    const parse = parserOf(decl);
    if (parse) opt.argParser(parse);
    return opt;
  });
}

export function register(program: Command): void {
  const c = modelOptions(program.command('analyze')
    .description(`One analysis as JSON: ${ANALYSES.join(', ')}`)
    .addArgument(new Argument('<name>', 'the analysis').choices(ANALYSES)), { optional: '' });
  promptOptions(c).option('--json', 'one line of JSON');
  for (const o of analysisOptions()) c.addOption(o);
  c.action(action(analyzeCommand));
}

function promptIds(o: PromptArgs, m: LoadedModel): { ids: number[]; text?: string } {
  if (o.prompt === undefined && o.ids === undefined) {
    if (!m.tokenizer) throw new Error(`${m.source} has no tokenizer; pass --ids`);
    return { ids: inputIds({ prompt: DEFAULT_PROMPT }, m), text: DEFAULT_PROMPT };
  }
  return { ids: inputIds(o, m), text: o.prompt };
}

/** What the analyses may ask of the command line: loading models, the backend, files, the prompt. */
export function cliEnv(args: AnalysisArgs & PromptArgs & { backend?: string; offline?: boolean }): AnalysisEnv {
  return {
    args,
    load: (model, tokenizer = args.tokenizer) => loadForCli({ model, tokenizer, backend: args.backend, offline: args.offline }),
    backend: () => pickBackend(args.backend),
    readFile: async (path) => new Uint8Array(await readFile(path)),
    warn: (message) => { process.stderr.write(`actlab: ${message}\n`); },
    checkContext,
    promptIds: (m) => promptIds(args, m),
  };
}

export async function analyzeCommand(name: string, o: AnalysisArgs & PromptArgs): Promise<number> {
  try {
    const r = await runAnalysis(name, cliEnv(o));
    console.log(o.json ? JSON.stringify(r) : JSON.stringify(r, null, 2));
    return 0;
  } finally {
    disposeBackends();
  }
}
