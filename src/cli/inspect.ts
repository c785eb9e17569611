// `actlab inspect`: the analyses report on one model and one prompt — a terminal summary, `--json`
// (one object), `--html FILE` (self-contained, with pictures) and `--figures DIR` (the pictures as
// SVG and PNG files) — plus the engine self-check as its last, short section.
// With no --model it loads the default model (the induction organism, models/organisms/induction); when that folder is
// missing it runs, and says so loudly, on the built-in hand-wired induction model.
import '../backends/index.js';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { deflateSync } from 'node:zlib';
import type { Command } from 'commander';
import { parseHTML } from 'linkedom';
import { engineCheck, engineText } from '../conformance/engine-check.js';
import { PLANTED_PROMPT, PlantedInductionModel } from '../organisms/planted.js';
import { buildReportAsync } from '../report/build.js';
import { figureFiles, makeFigures } from '../report/figures.js';
import { renderHtml } from '../report/html.js';
import { reportText } from '../report/text.js';
import { disposeBackends, initBackend } from '../tensor/engine.js';
import type { CausalLM } from '../models/model.js';
import type { Tokenizer } from '../tokenizer/tokenizer.js';
import { checkContext, inputIds, loadForCli, pickBackend, weightMemory, type ModelArgs, type PromptArgs } from './common.js';
import { action, int, modelOptions, promptOptions } from './options.js';
import { packageRoot } from './package-info.js';

export const DEFAULT_PROMPT = 'Once upon a time, there was a little girl named Lily. She had a red ball. One day, Lily lost her red ball. Lily';

export interface InspectArgs extends Partial<ModelArgs>, PromptArgs {
  json?: boolean;
  html?: string;
  figures?: string;
  generate?: number;
  engine?: boolean;
  check?: string[];
}

export function register(program: Command): void {
  const c = modelOptions(program.command('inspect')
    .description('The analyses report on a model (default: the induction organism) and a prompt, with the engine self-check'), { optional: "default: the package's models/organisms/induction" });
  promptOptions(c)
    .option('--generate <n>', 'greedy tokens for the generation phase of the void analysis', int(0), 16)
    .option('--json', 'print one JSON object')
    .option('--html <file>', 'write a self-contained HTML report with pictures')
    .option('--figures <dir>', 'write the pictures as SVG / PNG files')
    .option('--no-engine', 'skip the engine self-check')
    .option('--check <name...>', 'backends for the engine self-check', ['js', 'wasm'])
    .action(action(inspectCommand));
}


export function defaultModelDir(): string {
  return join(packageRoot(), 'models', 'organisms', 'induction');
}

const inputIdsOf = (ids: number[] | string): number[] => (typeof ids === 'string' ? ids.split(',').map(Number) : ids);

interface Subject {
  model: CausalLM;
  tokenizer?: Tokenizer;
  source: string;
  warning?: string;
  ids: number[];
  text?: string;
  memory?: ReturnType<typeof weightMemory>;
}

async function subject(o: InspectArgs): Promise<Subject> {
  const path = o.model ?? defaultModelDir();
  if (o.model === undefined && !existsSync(path)) {
    const backend = await pickBackend(o.backend);
    const model = new PlantedInductionModel(backend);
    const ids = o.ids !== undefined ? inputIdsOf(o.ids) : [...PLANTED_PROMPT];
    if (o.prompt !== undefined) throw new Error('the built-in model has no tokenizer; use --ids or --model');
    return {
      model, ids, source: 'built-in hand-wired induction model (src/organisms/planted.ts)',
      warning: `NO TRAINED DEFAULT MODEL: ${path} is missing, so this report runs on the built-in hand-wired toy model (planted previous-token, induction and sink heads, a massive dimension), not on a trained network. Pass --model to inspect a real one.`,
    };
  }
  const m = await loadForCli({ model: path, tokenizer: o.tokenizer, backend: o.backend, offline: o.offline });
  const useDefaultPrompt = o.prompt === undefined && o.ids === undefined;
  let ids: number[];
  let text: string | undefined;
  if (useDefaultPrompt && m.tokenizer) {
    text = DEFAULT_PROMPT;
    ids = inputIds({ prompt: text }, m);
  } else if (useDefaultPrompt) {
    ids = PLANTED_PROMPT.filter((id) => id < m.model.dims.vocabSize);
  } else {
    ids = inputIds(o, m);
    text = o.prompt;
  }
  checkContext(m, ids.length);
  return { model: m.model, tokenizer: m.tokenizer, source: m.source, ids, text, memory: weightMemory(m) };
}

export async function inspectCommand(o: InspectArgs): Promise<number> {
  let ok = true;
  try {
    const s = await subject(o);
    const report = await buildReportAsync(s.model, {
      ids: s.ids, text: s.text, tokenizer: s.tokenizer, source: s.source, warning: s.warning,
      generateTokens: o.generate,
    });
    const engine = o.engine === false ? null : await engineCheck(o.check ?? ['js', 'wasm']);
    if (engine) { report.json.engine = engine; ok = engine.ok; }
    if (s.memory) report.json.memory = s.memory.json;
    if (o.html || o.figures) {
      const { document } = parseHTML('<!doctype html><html><head></head><body></body></html>');
      const figs = makeFigures(report, document as unknown as Document, { deflate: (raw) => new Uint8Array(deflateSync(raw, { level: 9 })) });
      if (o.html) {
        mkdirSync(dirname(o.html), { recursive: true });
        writeFileSync(o.html, renderHtml(report, figs, { title: `actlab inspect — ${s.source}` }));
        process.stderr.write(`actlab: wrote ${o.html}\n`);
      }
      if (o.figures) {
        mkdirSync(o.figures, { recursive: true });
        const files = figureFiles(figs);
        for (const [name, body] of files) writeFileSync(join(o.figures, name), body);
        process.stderr.write(`actlab: wrote ${files.length} figures to ${o.figures}\n`);
      }
    }
    if (o.json) console.log(JSON.stringify(report.json));
    else {
      console.log(reportText(report.json));
      if (s.memory) console.log(s.memory.text);
      if (engine) { console.log(); console.log(engineText(engine)); }
    }
    s.model.dispose();
  } finally {
    disposeBackends();
  }
  return ok ? 0 : 1;
}
