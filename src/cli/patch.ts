// `actlab patch`: activation, attribution or relevance (RelP) patching between a clean and a
// corrupted prompt, with the metric logit(answer) − logit(wrong) at the last position; prints the
// effect map, and with --compare all three methods side by side and their pairwise correlations.
import { Option, type Command } from 'commander';
import { logitDiff } from '../interventions/metrics.js';
import { activationPatchingAsync, attributionPatchingAsync, correlation, type PatchingResult, type PatchSite } from '../interventions/patching.js';
import { lrpHooks } from '../interventions/relp.js';
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

const METHODS = ['activation', 'attribution', 'relp'];

export function register(program: Command): void {
  modelOptions(program.command('patch').description('Activation, attribution or relevance (RelP) patching between a clean and a corrupted prompt (metric: logit difference at the last position)'))
    .addOption(new Option('--clean <text>', 'clean prompt').conflicts('cleanIds'))
    .addOption(new Option('--corrupt <text>', 'corrupted prompt (same length in tokens)').conflicts('corruptIds'))
    .option('--clean-ids <list>', 'clean token ids', intList)
    .option('--corrupt-ids <list>', 'corrupted token ids', intList)
    .requiredOption('--answer <token>', 'the correct next token (text or id)')
    .requiredOption('--wrong <token>', 'the competing token (text or id)')
    .addOption(new Option('--method <m>', 'activation, attribution or relp (relevance patching: LRP rules in place of the gradient)').choices(METHODS).default('attribution'))
    .addOption(new Option('--site <s>', 'resid, heads or neurons').choices(['resid', 'heads', 'neurons']).default('resid'))
    .option('--compare', 'run all three methods and print their correlations')
    .option('--json', 'print one JSON object')
    .action(action(patchCommand));
}

export async function patchCommand(a: PatchArgs): Promise<number> {
  if (!METHODS.includes(a.method)) throw new Error(`--method must be ${METHODS.join(', ')}, not '${a.method}'`);
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
    // The asynchronous forms read every metric with `await`, so patching runs on every backend (WebGPU included).
    const run = {
      activation: () => activationPatchingAsync(m.model, x, y, metric, site),
      attribution: () => attributionPatchingAsync(m.model, x, y, metric, site),
      relp: () => attributionPatchingAsync(m.model, x, y, metric, site, { cleanHooks: lrpHooks(m.model) }), // relevancePatching
    };
    const methods = a.compare ? METHODS : [a.method];
    const results: PatchingResult[] = [];
    for (const k of methods) results.push(await run[k as keyof typeof run]());
    x.dispose();
    y.dispose();
    // Pearson correlation of each pair of methods (activation patching is the reference).
    const corr: Record<string, number> = {};
    for (let i = 0; i < results.length; i++) for (let j = i + 1; j < results.length; j++) corr[`${methods[i]}~${methods[j]}`] = correlation(results[i]!, results[j]!);
    if (a.json) {
      console.log(JSON.stringify({
        site, clean_metric: results[0]!.cleanMetric, corrupt_metric: results[0]!.corruptMetric,
        ...Object.fromEntries(results.map((r, i) => [methods[i], { rows: r.labels.rows, cols: r.labels.cols, effects: r.effects.map((e) => Array.from(e)) }])),
        // `correlation` (attribution ~ activation) as before; `correlations` holds every pair.
        ...(a.compare ? { correlation: corr['activation~attribution'], correlations: corr } : {}),
      }));
    } else {
      const r0 = results[0]!;
      console.log(`metric logit(${ans}) − logit(${wrong}) at the last position: clean ${r0.cleanMetric.toFixed(4)}, corrupted ${r0.corruptMetric.toFixed(4)}`);
      results.forEach((r, i) => {
        console.log(`\n${methods[i]} patching, ${site} (effect on the metric of patching the corrupted activation in):`);
        console.log(`      ${r.labels.cols.slice(0, 24).map((c) => c.padStart(7)).join('')}${r.labels.cols.length > 24 ? ' …' : ''}`);
        r.effects.forEach((row, j) => console.log(`${r.labels.rows[j]!.padEnd(6)}${Array.from(row.slice(0, 24)).map((v) => v.toFixed(3).padStart(7)).join('')}`));
      });
      if (a.compare) {
        console.log('\ncorrelations (Pearson, over every unit):');
        for (const [k, v] of Object.entries(corr)) console.log(`  ${k.replace('~', ' ~ ').padEnd(28)} ${v.toFixed(3)}`);
      }
    }
    return 0;
  } finally {
    m.model.dispose();
    disposeBackends();
  }
}
