// `actlab tokenize`: the token ids and token strings of a text under a model's tokenizer (an HF
// folder or hub id, a llama2.c .bin with its tokenizer.bin, a GGUF file) or the one --tokenizer
// names. Only the tokenizer and the checkpoint's header are read, never the weights.
import type { Command } from 'commander';
import { openCheckpoint } from '../models/checkpoint.js';
import { action } from './options.js';

export interface TokenizeArgs {
  model: string;
  tokenizer?: string;
  text: string;
  offline?: boolean;
  specialTokens?: boolean;
  json?: boolean;
}

export function register(program: Command): void {
  program.command('tokenize').description('Token ids and token strings of a text under a model\'s tokenizer')
    .requiredOption('--model <M>', 'a local HF folder, a llama2.c .bin, a GGUF file or a hub id')
    .option('--tokenizer <file>', 'another tokenizer: tokenizer.json, llama2.c tokenizer.bin, a GGUF file or a folder holding one')
    .requiredOption('--text <text>', 'the text to tokenize')
    .option('--no-special-tokens', 'do not add BOS (or what the tokenizer adds around a text)')
    .option('--offline', 'use only the local cache for hub ids')
    .option('--json', 'print {"ids": [...], "tokens": [...]}')
    .action(action(tokenizeCommand));
}

export async function tokenizeCommand(a: TokenizeArgs): Promise<number> {
  const ck = await openCheckpoint(a.model, { tokenizerPath: a.tokenizer, offline: a.offline, memoryBudget: 0 });
  await ck.weights.close();
  const tok = ck.tokenizer;
  if (!tok) throw new Error(`${ck.source} has no tokenizer; pass --tokenizer FILE`);
  const ids = tok.encode(a.text, { addSpecialTokens: a.specialTokens !== false });
  const tokens = ids.map((id) => tok.idToToken(id) ?? null);
  if (a.json) {
    console.log(JSON.stringify({ ids, tokens }));
    return 0;
  }
  console.log(`${ids.length} tokens: ${ids.join(' ')}`);
  const w = Math.max(1, ...ids.map((id) => String(id).length));
  ids.forEach((id, i) => console.log(`${String(id).padStart(w)}  ${JSON.stringify(tokens[i])}`));
  return 0;
}
