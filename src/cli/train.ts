// `actlab train`: fine-tunes (or trains) a model on a text corpus: fixed-length contexts from the
// corpus reader (src/store/corpus.ts), the training loop of src/train with its checkpoints and
// JSON-lines log, and a progress bar with the loss. Run it again with --resume to continue.
import { Option, type Command } from 'commander';
import { getPlatform } from '../io/platform.js';
import { emptyStats, readContexts } from '../store/corpus.js';
import { disposeBackends } from '../tensor/engine.js';
import { train, type TrainOptions } from '../train/trainer.js';
import { loadForCli } from './common.js';
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

export async function trainCommand(a: TrainArgs): Promise<number> {
  const { context, maxContexts } = a;
  const m = await loadForCli(a);
  try {
    if (!m.tokenizer) throw new Error(`${m.source} has no tokenizer; pass --tokenizer FILE`);
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
    const bar = process.stderr.isTTY && !a.json ? createTrainProgress() : null;
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
      onStep: (s) => {
        bar?.onStep(s);
        if (a.json) console.log(JSON.stringify({ step: s.step, loss: s.loss, lr: s.lr, grad_norm: s.gradNorm }));
      },
    };
    try {
      const r = await train(m.model, data, o);
      if (!a.json) console.log(`trained to step ${r.step}, loss ${r.loss.toFixed(4)}; checkpoint ${r.checkpoint}`);
    } finally {
      bar?.stop();
    }
    return 0;
  } finally {
    m.model.dispose();
    disposeBackends();
  }
}
