// `actlab train`: fine-tunes (or trains) a model on a text corpus: fixed-length contexts from the
// corpus reader (src/store/corpus.ts), the training loop of src/train with its checkpoints and
// JSON-lines log, and progress on stderr (a bar on a terminal, a line every few seconds otherwise).
// Checkpoints carry the model's tokenizer. Run it again with --resume to continue.
import { existsSync, readdirSync, rmSync, statSync } from 'node:fs';
import { Option, type Command } from 'commander';
import { getPlatform } from '../io/platform.js';
import { emptyStats, readContexts } from '../store/corpus.js';
import { disposeBackends } from '../tensor/engine.js';
import { train, type TrainOptions } from '../train/trainer.js';
import type { LoadedModel } from '../models/load.js';
import { tokenizerFiles } from '../tokenizer/load.js';
import { checkContext, loadForCli } from './common.js';
import { createTrainProgress } from './train-progress.js';
import { action, int, modelOptions, num } from './options.js';

export interface TrainArgs {
  model: string;
  tokenizer?: string;
  backend?: string;
  offline?: boolean;
  corpus: string;
  out: string;
  context: number;
  maxContexts: number;
  steps: number;
  batchSize: number;
  gradAccum: number;
  lr: number;
  minLr: number;
  warmup: number;
  weightDecay: number;
  clip: number;
  optimizer: 'adamw' | 'sgd';
  seed: number;
  checkpointEvery: number;
  resume?: boolean;
  field?: string;
  bos?: boolean;
  json?: boolean;
}

export function register(program: Command): void {
  modelOptions(program.command('train').description('Train a model on a text corpus (HF-layout checkpoints, JSONL log, --resume)'))
    .requiredOption('--corpus <file>', '.txt or .jsonl')
    .requiredOption('--out <dir>', 'checkpoints and train_log.jsonl go here')
    .requiredOption('--steps <n>', 'updates to reach', int(1))
    .option('--context <n>', 'tokens per training sequence', int(1), 128)
    .option('--max-contexts <n>', 'read at most this many sequences from the corpus', int(1), 10_000)
    .option('--batch-size <n>', 'sequences per micro-batch', int(1), 8)
    .option('--grad-accum <n>', 'micro-batches per update', int(1), 1)
    .option('--lr <x>', 'peak learning rate', num({ above: 0 }), 3e-4)
    .option('--min-lr <x>', 'learning rate at the end of the cosine', num({ min: 0 }), 0)
    .option('--warmup <n>', 'linear warmup steps', int(0), 0)
    .option('--weight-decay <x>', 'decoupled weight decay of matrices', num({ min: 0 }), 0.01)
    .option('--clip <x>', 'maximum global gradient norm (0: none)', num({ min: 0 }), 1)
    .addOption(new Option('--optimizer <name>', 'adamw or sgd').choices(['adamw', 'sgd']).default('adamw'))
    .option('--seed <n>', 'seed of the data order', int(0), 0)
    .option('--checkpoint-every <n>', 'save every n steps (0: at the end only)', int(0), 0)
    .option('--resume', 'continue from the newest checkpoint in --out')
    .option('--field <name>', 'JSONL field holding the text', 'text')
    .option('--no-bos', 'do not start sequences with BOS')
    .option('--json', 'one JSON line per step on stdout')
    .action(action(trainCommand));
}

/**
 * Refuses an --out that would mix runs: a folder holding another training run without --resume,
 * or a non-empty folder holding something else. Returns whether the folder existed.
 */
export function checkTrainOut(out: string, resume: boolean): boolean {
  if (!existsSync(out)) return false;
  if (!statSync(out).isDirectory()) throw new Error(`--out ${out}: a file, not a folder`);
  const entries = readdirSync(out);
  if (entries.length === 0) return true;
  const run = entries.filter((e) => /^checkpoint-\d+$/.test(e) || e === 'train_log.jsonl').sort();
  if (run.length === 0) {
    throw new Error(`--out ${out}: the folder is not empty and holds no training run (${entries.slice(0, 3).join(', ')}${entries.length > 3 ? ', …' : ''}); choose a new or empty folder`);
  }
  if (!resume) throw new Error(`--out ${out}: the folder already holds a training run (${run.slice(-2).join(', ')}); pass --resume to continue it, or choose a new or empty folder`);
  return true;
}

/** Where the model's tokenizer comes from, as a file or folder that src/tokenizer/load.ts reads. */
function tokenizerOrigin(m: LoadedModel, given: string | undefined): string | null {
  if (given) return given;
  if (m.format === 'hf' || m.format === 'gguf') return m.source;
  const sibling = m.source.replace(/[^/\\]*$/, 'tokenizer.bin');
  return existsSync(sibling) ? sibling : null;
}

export async function trainCommand(a: TrainArgs): Promise<number> {
  const { context, maxContexts } = a;
  const existed = checkTrainOut(a.out, !!a.resume);
  const m = await loadForCli(a);
  let started = false;
  try {
    if (!m.tokenizer) throw new Error(`${m.source} has no tokenizer; pass --tokenizer FILE`);
    checkContext(m, context, '--context');
    const origin = tokenizerOrigin(m, a.tokenizer);
    const checkpointFiles = origin ? await tokenizerFiles(origin) : [];
    const platform = await getPlatform();
    const source = await platform.openFile(a.corpus);
    const data: Int32Array[] = [];
    try {
      for await (const c of readContexts(source, m.tokenizer, { context: context + 1, bos: a.bos !== false, field: a.field }, emptyStats())) {
        data.push(c);
        if (data.length >= maxContexts) break;
      }
    } finally {
      await source.close();
    }
    if (data.length === 0) throw new Error(`${a.corpus}: no context of ${context + 1} tokens could be cut from the corpus`);
    const progress = a.json ? null : createTrainProgress();
    const o: TrainOptions = {
      steps: a.steps,
      batchSize: a.batchSize,
      gradAccum: a.gradAccum,
      lr: a.lr,
      minLr: a.minLr,
      warmupSteps: a.warmup,
      weightDecay: a.weightDecay,
      clip: a.clip,
      optimizer: a.optimizer,
      seed: a.seed,
      checkpointEvery: a.checkpointEvery,
      outDir: a.out,
      resume: !!a.resume,
      config: m.config,
      checkpointFiles,
      onNotice: (msg) => process.stderr.write(`train: ${msg}\n`),
      onStep: (s) => {
        progress?.onStep(s);
        if (a.json) console.log(JSON.stringify({ step: s.step, loss: s.loss, lr: s.lr, grad_norm: s.gradNorm }));
      },
    };
    started = true;
    try {
      const r = await train(m.model, data, o);
      progress?.stop();
      if (r.updates === 0) {
        process.stderr.write(`train: nothing to do: ${r.checkpoint ?? a.out} is at step ${r.step} and --steps is ${a.steps}\n`);
      } else if (!a.json) {
        const from = r.resumedFrom !== undefined ? ` (resumed at step ${r.resumedFrom})` : '';
        console.log(`trained to step ${r.step}${from}, loss ${r.loss.toFixed(4)}; checkpoint ${r.checkpoint}`);
      }
    } finally {
      progress?.stop();
    }
    return 0;
  } catch (e) {
    // A run that failed before its first checkpoint leaves no folder it created behind.
    if (started && !existed && existsSync(a.out) && !readdirSync(a.out).some((f) => /^checkpoint-\d+$/.test(f))) rmSync(a.out, { recursive: true, force: true });
    throw e;
  } finally {
    m.model.dispose();
    disposeBackends();
  }
}
