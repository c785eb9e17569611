// `actlab train`: fine-tunes (or trains) a model on a text corpus: fixed-length contexts from the
// corpus reader (src/store/corpus.ts), the training loop of src/train with its checkpoints and
// JSON-lines log, and a progress bar with the loss. Run it again with --resume to continue.
import { getPlatform } from '../io/platform.js';
import { emptyStats, readContexts } from '../store/corpus.js';
import { disposeBackends } from '../tensor/engine.js';
import { train, type TrainOptions } from '../train/trainer.js';
import { loadForCli } from './common.js';
import { createTrainProgress } from './train-progress.js';

export interface TrainArgs {
  model: string;
  tokenizer?: string;
  backend?: string;
  offline?: boolean;
  corpus: string;
  out: string;
  context?: string;
  maxContexts?: string;
  steps: string;
  batchSize?: string;
  gradAccum?: string;
  lr?: string;
  minLr?: string;
  warmup?: string;
  weightDecay?: string;
  clip?: string;
  optimizer?: string;
  seed?: string;
  checkpointEvery?: string;
  resume?: boolean;
  field?: string;
  bos?: boolean;
  json?: boolean;
}

function num(v: string | undefined, flag: string, dflt: number, int = false): number {
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0 || (int && !Number.isInteger(n))) throw new Error(`${flag}: '${v}' must be a ${int ? 'non-negative integer' : 'non-negative number'}`);
  return n;
}

export async function trainCommand(a: TrainArgs): Promise<number> {
  const context = num(a.context, '--context', 128, true);
  const maxContexts = num(a.maxContexts, '--max-contexts', 10_000, true);
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
      steps: num(a.steps, '--steps', 0, true),
      batchSize: num(a.batchSize, '--batch-size', 8, true),
      gradAccum: num(a.gradAccum, '--grad-accum', 1, true),
      lr: num(a.lr, '--lr', 3e-4),
      minLr: num(a.minLr, '--min-lr', 0),
      warmupSteps: num(a.warmup, '--warmup', 0, true),
      weightDecay: num(a.weightDecay, '--weight-decay', 0.01),
      clip: num(a.clip, '--clip', 1),
      optimizer: a.optimizer === 'sgd' ? 'sgd' : 'adamw',
      seed: num(a.seed, '--seed', 0, true),
      checkpointEvery: num(a.checkpointEvery, '--checkpoint-every', 0, true),
      outDir: a.out,
      resume: !!a.resume,
      config: m.config,
      onStep: (s) => {
        bar?.onStep(s);
        if (a.json) console.log(JSON.stringify({ step: s.step, loss: s.loss, lr: s.lr, grad_norm: s.gradNorm }));
      },
    };
    if (a.optimizer && a.optimizer !== 'sgd' && a.optimizer !== 'adamw') throw new Error(`--optimizer: '${a.optimizer}' (adamw or sgd)`);
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
