// `actlab patch`: activation or attribution patching between a clean and a corrupted prompt, with
// the metric logit(answer) − logit(wrong) at the last position; prints the effect map, and with
// --compare both methods side by side and their correlation.
import { Option, type Command } from 'commander';
import { logitDiff } from '../interventions/metrics.js';
import { activationPatching, attributionPatching, correlation, type PatchingResult, type PatchSite } from '../interventions/patching.js';
import { tensor } from '../ops/creation.js';
import { disposeBackends } from '../tensor/engine.js';
import { checkContext, inputIds, loadForCli, type ModelArgs } from './common.js';
import { action, intList, modelOptions } from './options.js';

export interface PatchArgs extends ModelArgs {
  clean?: string;
  corrupt?: string;
  cleanIds?: number[];
  corruptIds?: number[];
  answer: string;
  wrong: string;
  method: string;
  site: string;
  compare?: boolean;
  json?: boolean;
}

export function register(program: Command): void {
  modelOptions(program.command('patch').description('Activation or attribution patching between a clean and a corrupted prompt (metric: logit difference at the last position)'))
    .addOption(new Option('--clean <text>', 'clean prompt').conflicts('cleanIds'))
    .addOption(new Option('--corrupt <text>', 'corrupted prompt (same length in tokens)').conflicts('corruptIds'))
    .option('--clean-ids <list>', 'clean token ids', intList)
    .option('--corrupt-ids <list>', 'corrupted token ids', intList)
    .requiredOption('--answer <token>', 'the correct next token (text or id)')
    .requiredOption('--wrong <token>', 'the competing token (text or id)')
    .addOption(new Option('--method <m>', 'activation or attribution').choices(['activation', 'attribution']).default('attribution'))
    .addOption(new Option('--site <s>', 'resid, heads or neurons').choices(['resid', 'heads', 'neurons']).default('resid'))
    .option('--compare', 'run both methods and print their correlation')
    .option('--json', 'print one JSON object')
    .action(action(patchCommand));
}

export async function patchCommand(a: PatchArgs): Promise<number> {
  if (!['activation', 'attribution'].includes(a.method)) throw new Error(`--method must be activation or attribution, not '${a.method}'`);
  if (!['resid', 'heads', 'neurons'].includes(a.site)) throw new Error(`--site must be resid, heads or neurons, not '${a.site}'`);
  const m = await loadForCli(a);
  try {
    const clean = inputIds({ prompt: a.clean, ids: a.cleanIds }, m, true, { prompt: '--clean', ids: '--clean-ids' });
    const corrupt = inputIds({ prompt: a.corrupt, ids: a.corruptIds }, m, true, { prompt: '--corrupt', ids: '--corrupt-ids' });
    checkContext(m, clean.length);
    if (clean.length !== corrupt.length) throw new Error(`clean (${clean.length} tokens) and corrupted (${corrupt.length} tokens) prompts must have the same length`);
    const token = (s: string, flag: string) => {
      if (/^\d+$/.test(s)) return Number(s);
      const ids = m.tokenizer?.encode(s, { addSpecialTokens: false }) ?? [];
      if (ids.length !== 1) throw new Error(`${flag}: '${s}' is not one token (${ids.length} tokens); give a token id`);
      return ids[0]!;
    };
    const ans = token(a.answer, '--answer');
    const wrong = token(a.wrong, '--wrong');
    const b = m.model.backend;
    const x = tensor(clean, [1, clean.length], 'i32', { backend: b });
    const y = tensor(corrupt, [1, corrupt.length], 'i32', { backend: b });
    const metric = logitDiff(ans, wrong);
    const site = a.site as PatchSite;
    const results: PatchingResult[] = [];
    if (a.method === 'activation' || a.compare) results.push(activationPatching(m.model, x, y, metric, site));
    if (a.method === 'attribution' || a.compare) results.push(attributionPatching(m.model, x, y, metric, site));
    x.dispose();
    y.dispose();
    const corr = results.length === 2 ? correlation(results[0]!, results[1]!) : undefined;
    if (a.json) {
      console.log(JSON.stringify({
        site, clean_metric: results[0]!.cleanMetric, corrupt_metric: results[0]!.corruptMetric,
        ...Object.fromEntries(results.map((r, i) => [results.length === 2 ? ['activation', 'attribution'][i] : a.method, { rows: r.labels.rows, cols: r.labels.cols, effects: r.effects.map((e) => Array.from(e)) }])),
        ...(corr !== undefined ? { correlation: corr } : {}),
      }));
    } else {
      const r0 = results[0]!;
      console.log(`metric logit(${ans}) − logit(${wrong}) at the last position: clean ${r0.cleanMetric.toFixed(4)}, corrupted ${r0.corruptMetric.toFixed(4)}`);
      results.forEach((r, i) => {
        console.log(`\n${results.length === 2 ? ['activation', 'attribution'][i] : a.method} patching, ${site} (effect on the metric of patching the corrupted activation in):`);
        console.log(`      ${r.labels.cols.slice(0, 24).map((c) => c.padStart(7)).join('')}${r.labels.cols.length > 24 ? ' …' : ''}`);
        r.effects.forEach((row, j) => console.log(`${r.labels.rows[j]!.padEnd(6)}${Array.from(row.slice(0, 24)).map((v) => v.toFixed(3).padStart(7)).join('')}`));
      });
      if (corr !== undefined) console.log(`\ncorrelation of attribution with activation patching: ${corr.toFixed(3)}`);
    }
    return 0;
  } finally {
    m.model.dispose();
    disposeBackends();
  }
}
