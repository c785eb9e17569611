// `actlab run`: one forward pass, saving the logits and every hook point matched by --hooks
// (comma-separated globs) to a safetensors file, each under its own name.
import type { Command } from 'commander';
import { writeSafetensors } from '../formats/safetensors.js';
import { runWithCache } from '../hooks/run.js';
import { getPlatform } from '../io/platform.js';
import { tensor } from '../ops/creation.js';
import { matchHookPatterns } from '../hooks/patterns.js';
import { disposeBackends } from '../tensor/engine.js';
import type { Tensor } from '../tensor/tensor.js';
import { checkContext, inputIds, loadForCli, type ModelArgs, type PromptArgs } from './common.js';
import { action, modelOptions, promptOptions } from './options.js';

export interface RunArgs extends ModelArgs, PromptArgs {
  hooks: string;
  save: string;
  json?: boolean;
}

export function register(program: Command): void {
  promptOptions(modelOptions(program.command('run').description('One forward pass; save logits and the matched hook points to safetensors'), { dtype: true }))
    .requiredOption('--hooks <patterns>', "comma-separated globs, e.g. 'blocks.*.hook_resid_pre,blocks.*.attn.hook_pattern'")
    .requiredOption('--save <file>', 'output .safetensors')
    .option('--json', 'print a JSON summary')
    .action(action(runCommand));
}

export async function runCommand(a: RunArgs): Promise<number> {
  const m = await loadForCli(a);
  try {
    const ids = inputIds(a, m);
    checkContext(m, ids.length);
    const names = matchHookPatterns(a.hooks, m.model.hookPoints().map((h) => h.name));
    const input = tensor(ids, [1, ids.length], 'i32', { backend: m.model.backend });
    const { logits, cache } = runWithCache(m.model, input, { names });
    input.dispose();
    try {
      const entries: [string, Tensor][] = [['logits', logits], ...cache.names().map((n) => [n, cache.get(n)] as [string, Tensor])];
      await writeSafetensors((await getPlatform()).store, a.save, entries, { metadata: { model: m.source, input_ids: JSON.stringify(ids) } });
      const summary = entries.map(([n, t]) => ({ name: n, shape: [...t.shape], dtype: t.dtype }));
      if (a.json) console.log(JSON.stringify({ file: a.save, input_ids: ids, tensors: summary }));
      else {
        console.log(`wrote ${entries.length} tensors (${(cache.bytes() + logits.size * 4) / 2 ** 20 < 0.1 ? '<0.1' : ((cache.bytes() + logits.size * 4) / 2 ** 20).toFixed(1)} MiB) to ${a.save}`);
        for (const s of summary) console.log(`  ${s.name} [${s.shape.join(', ')}] ${s.dtype}`);
      }
    } finally {
      logits.dispose();
      cache.dispose();
    }
    return 0;
  } finally {
    m.model.dispose();
    disposeBackends();
  }
}
