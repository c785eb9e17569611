// `actlab delta`: delta inference across decode steps (src/sparsity/delta.ts) — per threshold on
// the input changes, the share of the projections' multiply-adds skipped and the quality lost
// (KL to the dense model and top-1 agreement, teacher-forced on the dense greedy continuation).
import type { Command } from 'commander';
import { deltaSweep } from '../sparsity/delta.js';
import { disposeBackends } from '../tensor/engine.js';
import { inputIds, loadForCli, type ModelArgs, type PromptArgs } from './common.js';
import { action, int, modelOptions, promptOptions } from './options.js';

export interface DeltaArgs extends ModelArgs, PromptArgs {
  thresholds?: string;
  steps?: number;
  json?: boolean;
}

export async function deltaCommand(a: DeltaArgs): Promise<number> {
  const thresholds = (a.thresholds ?? '0,0.01,0.03,0.1,0.3').split(',').map((s) => s.trim()).filter(Boolean).map((s) => {
    const v = Number(s);
    if (!(v >= 0)) throw new Error(`--thresholds: '${s}' is not a number >= 0`);
    return v;
  });
  const m = await loadForCli(a);
  try {
    const prompt = inputIds(a, m);
    const steps = a.steps ?? 32;
    const rows = deltaSweep(m.model, prompt, thresholds, steps);
    if (a.json) console.log(JSON.stringify({ model: m.source, prompt_tokens: prompt.length, steps, rows }));
    else {
      console.log(`${m.source}: delta inference over ${steps} decode steps after ${prompt.length} prompt tokens`);
      console.log('threshold  ops saved  KL (nats)   top-1');
      for (const r of rows) console.log(`${String(r.threshold).padStart(9)}  ${(100 * r.ops_saved).toFixed(1).padStart(8)}%  ${r.kl.toExponential(3).padStart(9)}  ${(100 * r.top1).toFixed(1).padStart(5)}%`);
    }
    return 0;
  } finally {
    m.model.dispose();
    disposeBackends();
  }
}

export function register(program: Command): void {
  promptOptions(modelOptions(program.command('delta').description('Delta inference across decode steps: operations saved and KL to the dense model per threshold')))
    .option('--thresholds <list>', 'thresholds on |Δ input| (default 0,0.01,0.03,0.1,0.3)')
    .option('--steps <n>', 'greedy decode steps (default 32)', int(1))
    .option('--json', 'print one JSON object')
    .action(action(deltaCommand));
}
