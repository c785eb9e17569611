// `actlab probe`: linear / logistic probes on the hooks of an activation store, one per hook,
// with labels from the stored tokens; prints the per-layer accuracy curve (or JSON).
import type { Command } from 'commander';
import { matchHookPatterns } from '../hooks/patterns.js';
import { ActivationStore } from '../store/reader.js';
import { disposeBackends } from '../tensor/engine.js';
import { probeLayers, type ProbeKind, type ProbeLabel } from '../probes/probe.js';
import { pickBackend } from './common.js';
import { action } from './options.js';

const LABELS: ProbeLabel[] = ['token', 'prev-token', 'next-token', 'seen-before'];

export interface ProbeArgs {
  store: string;
  hooks: string;
  label: string;
  kind?: string;
  classes?: string;
  l2?: string;
  steps?: string;
  testFraction?: string;
  contexts?: string;
  seed?: string;
  backend?: string;
  json?: boolean;
}

function num(v: string | undefined, flag: string, o: { int?: boolean; min?: number; max?: number } = {}): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (v.trim() === '' || !Number.isFinite(n) || (o.int && !Number.isInteger(n)) || (o.min !== undefined && n < o.min) || (o.max !== undefined && n > o.max)) {
    throw new Error(`${flag}: '${v}' must be ${o.int ? 'an integer' : 'a number'}${o.min !== undefined ? ` >= ${o.min}` : ''}${o.max !== undefined ? ` <= ${o.max}` : ''}`);
  }
  return n;
}

export async function probeCommand(a: ProbeArgs): Promise<number> {
  if (!LABELS.includes(a.label as ProbeLabel)) {
    process.stderr.write(`actlab probe: --label must be one of ${LABELS.join(', ')}, not '${a.label}'\n`);
    return 2;
  }
  if (a.kind !== undefined && a.kind !== 'logistic' && a.kind !== 'linear') {
    process.stderr.write(`actlab probe: --kind must be logistic or linear, not '${a.kind}'\n`);
    return 2;
  }
  const backend = await pickBackend(a.backend);
  try {
    const store = await ActivationStore.open(a.store);
    const hooks = matchHookPatterns(a.hooks, store.hooks);
    const r = await probeLayers(store, hooks, {
      label: a.label as ProbeLabel, kind: (a.kind ?? 'logistic') as ProbeKind, classes: num(a.classes, '--classes', { int: true, min: 2 }),
      l2: num(a.l2, '--l2', { min: 0 }), steps: num(a.steps, '--steps', { int: true, min: 1 }), testFraction: num(a.testFraction, '--test-fraction', { min: 0.01, max: 0.99 }),
      contexts: num(a.contexts, '--contexts', { int: true, min: 1 }), seed: num(a.seed, '--seed', { int: true }), backend,
    });
    if (a.json) console.log(JSON.stringify(r));
    else {
      console.log(`${a.kind ?? 'logistic'} probes of '${r.label}' (${r.classes} classes) on ${a.store}`);
      const w = Math.max(...r.layers.map((l) => l.hook.length));
      for (const l of r.layers) console.log(`${l.hook.padEnd(w)}  test ${(100 * l.testAccuracy).toFixed(1).padStart(5)}%  train ${(100 * l.trainAccuracy).toFixed(1).padStart(5)}%  baseline ${(100 * l.baselineAccuracy).toFixed(1)}%  (${l.train}/${l.test} rows)`);
    }
    return 0;
  } finally {
    disposeBackends();
  }
}

export function register(program: Command): void {
  program.command('probe').description('Linear or logistic probes on stored activations: per-layer accuracy curves of a token-derived label')
    .requiredOption('--store <dir>', 'activation store (actlab cache)')
    .requiredOption('--hooks <patterns>', "comma-separated globs over the store's hooks, e.g. 'blocks.*.hook_resid_post'")
    .requiredOption('--label <l>', `what to predict: ${LABELS.join(', ')}`)
    .option('--kind <k>', 'logistic (softmax regression, Adam) or linear (ridge, closed form)', 'logistic')
    .option('--classes <n>', 'token labels: the most frequent tokens kept as classes', '10')
    .option('--l2 <x>', 'L2 penalty / ridge lambda', '1e-3')
    .option('--steps <n>', 'logistic: Adam steps', '300')
    .option('--test-fraction <x>', 'contexts held out for testing', '0.2')
    .option('--contexts <n>', 'contexts read (default all)')
    .option('--seed <n>', 'split seed', '0')
    .option('--backend <name>', 'js, wasm or auto', 'auto')
    .option('--json', 'print one JSON object')
    .action(action(probeCommand));
}
