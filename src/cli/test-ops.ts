// `actlab test-ops`: the conformance matrix from the command line, with filters by op and backend.
import '../backends/index.js';
import { Option, type Command } from 'commander';
import { action } from './options.js';
import { initBackend, disposeBackends } from '../tensor/engine.js';
import { runConformance, selectVariants, summarize } from '../conformance/runner.js';
import { gradVariants, runGradConformance, summarizeGrad } from '../conformance/grad.js';
import { registeredBackends } from '../tensor/engine.js';

export function register(program: Command): void {
  program
    .command('test-ops')
    .description('Run the op conformance matrix against the reference backend')
    .option('--op <name...>', 'only these ops (op names or label substrings)')
    .option('--backend <name...>', 'backends to test', ['wasm'])
    .option('--json', 'one JSON line per case')
    .option('--verbose', 'print every case, not only failures')
    .addOption(new Option('--mode <mode>', "'test' (outputs against the reference) or 'grad' (gradients against finite differences and the reference)").choices(['test', 'grad']).default('test'))
    .action(action(testOpsCommand));
}

/** Refuses an --op that selects no case and a --backend that is not registered, before anything runs. */
export function checkSelection(o: { op?: string[]; backend: string[]; mode?: string }): void {
  const select = o.mode === 'grad' ? gradVariants : selectVariants;
  const all = select();
  for (const name of o.op ?? []) {
    if (select({ ops: [name] }).length > 0) continue;
    const ops = [...new Set(all.map((v) => v.op))].sort();
    throw new Error(`test-ops: --op '${name}' matches no ${o.mode === 'grad' ? 'gradient ' : ''}case (ops: ${ops.join(', ')}; a label substring such as 'matmul f16' also works)`);
  }
  const known = registeredBackends();
  for (const b of o.backend) if (!known.includes(b)) throw new Error(`test-ops: --backend '${b}' is not a backend (have ${known.join(', ')})`);
}

export async function testOpsCommand(o: { op?: string[]; backend: string[]; json?: boolean; verbose?: boolean; mode?: string }): Promise<number> {
  checkSelection(o);
  if (o.mode === 'grad') return testGradCommand(o);
  const ref = await initBackend('js');
  let failed = 0;
  try {
    for (const name of o.backend) {
      const test = await initBackend(name);
      const results = await runConformance(ref, test, { ops: o.op });
      for (const r of results) {
        const bad = r.status === 'fail' || r.status === 'error';
        if (bad) failed++;
        if (o.json) console.log(JSON.stringify(r));
        else if (bad || o.verbose) console.log(`${r.status.toUpperCase().padEnd(11)} ${r.backend} ${r.label}  nmse=${r.nmse.toExponential(2)} (budget ${r.budget})${r.detail ? '\n    ' + r.detail : ''}`);
      }
      if (!o.json) console.log(summarize(results));
    }
  } finally {
    disposeBackends();
  }
  if (!o.json) console.log(failed ? `${failed} case(s) failed` : 'all cases passed');
  return failed ? 1 : 0;
}

/** `--mode grad`: gradients against finite differences (reference) and each backend against the reference. */
async function testGradCommand(o: { op?: string[]; backend: string[]; json?: boolean; verbose?: boolean }): Promise<number> {
  const ref = await initBackend('js');
  let failed = 0;
  try {
    for (const name of o.backend) {
      const test = await initBackend(name);
      const results = await runGradConformance(ref, test === ref ? null : test, { ops: o.op });
      for (const r of results) {
        const bad = r.status === 'fail' || r.status === 'error';
        if (bad) failed++;
        if (o.json) console.log(JSON.stringify(r));
        else if (bad || o.verbose) console.log(`${r.status.toUpperCase().padEnd(11)} ${r.backend} ${r.label}  fd=${r.fdErr.toExponential(2)} (tol ${r.fdTol}) nmse=${r.nmse.toExponential(2)} (budget ${r.budget})${r.detail ? '\n    ' + r.detail : ''}`);
      }
      if (!o.json) console.log(summarizeGrad(results));
    }
  } finally {
    disposeBackends();
  }
  if (!o.json) console.log(failed ? `${failed} case(s) failed` : 'all cases passed');
  return failed ? 1 : 0;
}
