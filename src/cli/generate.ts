// `actlab generate`: text from a model, streamed to stdout; `--json` prints {"ids", "text"}.
// Runs on every backend: the logits of each step are read asynchronously (generateAsync).
import type { Command } from 'commander';
import { generateAsync } from '../models/generate.js';
import { disposeBackends } from '../tensor/engine.js';
import { checkContext, inputIds, loadForCli, type ModelArgs, type PromptArgs } from './common.js';
import { action, int, modelOptions, num, promptOptions } from './options.js';
import { checkKVCacheArg, kvCacheOptions, kvCacheSpecAsync, type KVCacheArgs } from './kv-cache.js';

export interface GenerateArgs extends ModelArgs, PromptArgs, KVCacheArgs {
  maxNewTokens: number;
  temperature?: number;
  topK?: number;
  topP?: number;
  repetitionPenalty?: number;
  seed?: number;
  stop?: string[];
  json?: boolean;
}

export function register(program: Command): void {
  const c = modelOptions(program.command('generate').description('Generate text (streamed; --json prints {"ids","text"})'), { dtype: true });
  promptOptions(c)
    .requiredOption('--max-new-tokens <n>', 'tokens to generate', int(0))
    .option('--temperature <t>', '0 is greedy', num({ min: 0 }), 0)
    .option('--top-k <k>', 'sample among the k most likely tokens', int(1))
    .option('--top-p <p>', 'sample within probability mass p', num({ above: 0, max: 1 }))
    .option('--repetition-penalty <r>', 'discourage repeated tokens (> 1)', num({ above: 0 }))
    .option('--seed <n>', 'random seed for sampling', int(0))
    .option('--stop <text...>', 'stop strings')
    .option('--json', 'print {"ids": [...], "text": "..."}');
  kvCacheOptions(c).action(action(generateCommand));
}

export async function generateCommand(a: GenerateArgs): Promise<number> {
  checkKVCacheArg(a);
  const m = await loadForCli(a);
  try {
    const prompt = inputIds(a, m);
    checkContext(m, prompt.length + a.maxNewTokens, 'prompt and --max-new-tokens');
    const gen = m.generationConfig ?? {};
    const eos = gen.eos_token_id ?? m.config.eos_token_id;
    const r = await generateAsync(m.model, [prompt], {
      maxNewTokens: a.maxNewTokens,
      temperature: a.temperature ?? 0,
      topK: a.topK,
      topP: a.topP,
      repetitionPenalty: a.repetitionPenalty,
      seed: a.seed,
      eosTokenIds: eos === undefined || eos === null ? undefined : ([] as number[]).concat(eos as number | number[]),
      stopStrings: a.stop,
      tokenizer: m.tokenizer,
      kvCache: await kvCacheSpecAsync(a, m),
      onToken: a.json ? undefined : (t) => { if (t.text) process.stdout.write(t.text); else if (!m.tokenizer) process.stdout.write(`${t.id} `); },
    });
    if (a.json) console.log(JSON.stringify({ ids: r.ids[0], text: r.text?.[0] ?? null }));
    else process.stdout.write('\n');
    return 0;
  } finally {
    m.model.dispose();
    disposeBackends();
  }
}
