// `actlab generate`: text from a model, streamed to stdout; `--json` prints {"ids", "text"}.
import { generate } from '../models/generate.js';
import { disposeBackends } from '../tensor/engine.js';
import { inputIds, loadForCli, type ModelArgs, type PromptArgs } from './common.js';

export interface GenerateArgs extends ModelArgs, PromptArgs {
  maxNewTokens: string;
  temperature?: string;
  topK?: string;
  topP?: string;
  repetitionPenalty?: string;
  seed?: string;
  stop?: string[];
  json?: boolean;
}

function number(v: string | undefined, flag: string): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isFinite(n)) throw new Error(`${flag}: '${v}' is not a number`);
  return n;
}

export async function generateCommand(a: GenerateArgs): Promise<number> {
  const m = await loadForCli(a);
  try {
    const prompt = inputIds(a, m);
    const maxNew = number(a.maxNewTokens, '--max-new-tokens')!;
    if (!Number.isInteger(maxNew) || maxNew < 0) throw new Error(`--max-new-tokens: '${a.maxNewTokens}' must be an integer >= 0`);
    const gen = m.generationConfig ?? {};
    const eos = gen.eos_token_id ?? m.config.eos_token_id;
    const r = generate(m.model, [prompt], {
      maxNewTokens: maxNew,
      temperature: number(a.temperature, '--temperature') ?? 0,
      topK: number(a.topK, '--top-k'),
      topP: number(a.topP, '--top-p'),
      repetitionPenalty: number(a.repetitionPenalty, '--repetition-penalty'),
      seed: number(a.seed, '--seed'),
      eosTokenIds: eos === undefined || eos === null ? undefined : ([] as number[]).concat(eos as number | number[]),
      stopStrings: a.stop,
      tokenizer: m.tokenizer,
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
