// `actlab faults`: bit flips in weights or activations at a rate, site and bit position, and the
// same faults with ProAct's clipped activations: task accuracy, KL to the clean model and top-1
// agreement, per condition (clean, clipped clean, faulty, faulty + clipped), averaged over trials.
// The task: an organism's own (modular addition, induction) or next-token prediction on --data.
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { faultReport, type ConditionResult } from '../faults/evaluate.js';
import { defaultClipSites } from '../faults/sites.js';
import { organismTask, textTask } from '../faults/tasks.js';
import { checkFaultSpec } from '../faults/bitflip.js';
import type { BoundGranularity } from '../faults/proact.js';
import { disposeBackends } from '../tensor/engine.js';
import { inputIds, loadForCli, type ModelArgs } from './common.js';
import { action, int, modelOptions, num } from './options.js';

export interface FaultsArgs extends ModelArgs {
  target: string;
  rate: number;
  bit?: number;
  site?: string;
  weights?: string;
  clipSites?: string;
  bounds?: string;
  trials?: number;
  seed?: number;
  data?: string;
  ctx?: number;
  chunks?: number;
  calibrationChunks?: number;
  json?: boolean;
}

const GRANULARITY = ['neuron', 'layer', 'hybrid'];

export async function faultsCommand(a: FaultsArgs): Promise<number> {
  if (a.target !== 'weights' && a.target !== 'activations') throw new Error(`--target: 'weights' or 'activations', got '${a.target}'`);
  if (a.target === 'activations' && !a.site) throw new Error('--target activations needs --site PATTERNS (hook point globs, e.g. blocks.*.mlp.hook_post)');
  if (a.bounds && !GRANULARITY.includes(a.bounds)) throw new Error(`--bounds: one of ${GRANULARITY.join(', ')}, got '${a.bounds}'`);
  checkFaultSpec({ rate: a.rate, bit: a.bit }, a.bit !== undefined ? '--rate/--bit' : '--rate');
  const m = await loadForCli(a);
  try {
    let task = organismTask(m.model);
    if (!task) {
      if (!a.data) throw new Error(`${m.source} is not an organism; give --data FILE (text) for next-token accuracy`);
      let text: string;
      try {
        text = readFileSync(a.data, 'utf8');
      } catch (e) {
        throw new Error(`--data: cannot read ${a.data} (${(e as Error).message})`);
      }
      const ctx = a.ctx ?? Math.min(128, m.model.dims.nCtx - 1);
      if (ctx + 1 > m.model.dims.nCtx) throw new Error(`--ctx ${ctx}: the model reads at most ${m.model.dims.nCtx - 1} tokens before a target`);
      const chunks = a.chunks ?? 8;
      const calib = a.calibrationChunks ?? 8;
      task = textTask(inputIds({ prompt: text.slice(0, (chunks + calib) * (ctx + 1) * 12) }, m, false), ctx, chunks, calib);
    }
    const r = faultReport(m.model, task, {
      target: a.target, rate: a.rate, bit: a.bit, sites: a.site, weights: a.weights, seed: a.seed, trials: a.trials,
      clipSites: a.clipSites ?? defaultClipSites(m.model), granularity: (a.bounds ?? 'neuron') as BoundGranularity,
    });
    if (a.json) {
      console.log(JSON.stringify({ model: m.source, ...r }));
      return 0;
    }
    const f = r.fault;
    console.log(`${m.source}: ${r.task}, ${r.scored} scored predictions, ${r.trials} trials`);
    console.log(`faults: ${f.target}${f.sites ? ` at ${f.sites.length} hook points` : ''}, rate ${f.rate}, bit ${f.bit}; clipping at ${r.clip.sites.length} sites (${r.clip.granularity} bounds)`);
    const row = (name: string, c: ConditionResult | { accuracy: number }) => {
      const x = c as Partial<ConditionResult>;
      console.log(`${name.padEnd(16)} accuracy ${(100 * c.accuracy).toFixed(2).padStart(6)}%${x.kl !== undefined ? `  KL ${x.kl.toExponential(3)}  top-1 vs clean ${(100 * x.top1!).toFixed(2)}%${x.nonfinite ? `  non-finite ${(100 * x.nonfinite).toFixed(2)}%` : ''}` : ''}${x.flips ? `  (${x.flips.toFixed(1)} flips/trial)` : ''}`);
    };
    row('clean', r.clean);
    row('clipped', r.clipped_clean);
    row('faults', r.faulty);
    row('faults+clip', r.faulty_clipped);
    return 0;
  } finally {
    m.model.dispose();
    disposeBackends();
  }
}

export function register(program: Command): void {
  modelOptions(program.command('faults').description('Bit flips in weights or activations (rate, site, bit), with and without ProAct clipping: accuracy, KL and top-1 against the clean model'))
    .requiredOption('--target <what>', 'weights | activations')
    .requiredOption('--rate <p>', 'flip probability per value (with --bit) or per bit (without)', num({ min: 0, max: 1 }))
    .option('--bit <b>', 'the bit that flips: 0..31 (0 = lowest mantissa bit, 23..30 exponent, 31 sign); default any bit', int(0, 31))
    .option('--site <patterns>', 'activations: hook point globs, e.g. blocks.*.mlp.hook_post')
    .option('--weights <regexp>', 'weights: parameter names to hit (default all f32 weights)')
    .option('--clip-sites <patterns>', 'where ProAct clips (default: every MLP activation, or attention outputs)')
    .option('--bounds <g>', 'clipping bounds per neuron | layer | hybrid (default neuron)')
    .option('--trials <n>', 'independent fault draws (default 5)', int(1))
    .option('--seed <s>', 'seed of the first trial (default 1)', int(0))
    .option('--data <file>', 'text for next-token accuracy (models that are not organisms)')
    .option('--ctx <n>', 'tokens per text chunk (default min(128, context - 1))', int(2))
    .option('--chunks <n>', 'text chunks scored (default 8)', int(1))
    .option('--calibration-chunks <n>', 'text chunks before them that calibrate the clipping bounds (default 8)', int(1))
    .option('--json', 'print one JSON object')
    .action(action(faultsCommand));
}
