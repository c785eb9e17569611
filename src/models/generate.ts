// Text generation with a KV cache: prompts of different lengths are left-padded into one batch
// (the attention mask gives each its own positions), then one token per step is chosen for every
// sequence until EOS, a stop string or the token budget. Hooks see every step, with its position.
import { tensor } from '../ops/creation.js';
import { Rng } from '../ops/creation.js';
import type { Hooks } from '../hooks/hook-point.js';
import type { Tokenizer } from '../tokenizer/tokenizer.js';
import { KVCache } from './layers/kv-cache.js';
import type { CausalLM } from './model.js';
import { pickToken, type SamplingOptions } from './sampling.js';

export interface GenerateOptions extends SamplingOptions {
  maxNewTokens: number;
  seed?: number;
  /** Ids that end a sequence (default: the tokenizer's EOS, if any). */
  eosTokenIds?: number[];
  /** Strings that end a sequence once its decoded new text contains one (needs a tokenizer). */
  stopStrings?: string[];
  tokenizer?: Tokenizer;
  /** Id used to pad shorter prompts and finished sequences (default: tokenizer pad, else EOS, else 0). */
  padTokenId?: number;
  hooks?: Hooks;
  /** Called for each new token of each sequence, as it is chosen. */
  onToken?: (token: { sequence: number; id: number; step: number; text?: string }) => void;
}

export interface GenerateResult {
  /** Per sequence: prompt ids followed by the new ids (padding excluded; stops at EOS, kept). */
  ids: number[][];
  newIds: number[][];
  /** Decoded new text per sequence (when a tokenizer is given), cut before a stop string. */
  text?: string[];
  finishReason: ('eos' | 'stop_string' | 'length')[];
}

export function generate(model: CausalLM, prompts: readonly (readonly number[])[], o: GenerateOptions): GenerateResult {
  const batch = prompts.length;
  if (batch === 0) throw new Error('generate: no prompts');
  if (prompts.some((p) => p.length === 0)) throw new Error('generate: every prompt needs at least one token (e.g. BOS)');
  const eos = new Set(o.eosTokenIds ?? (o.tokenizer?.eosIds ?? []));
  const pad = o.padTokenId ?? o.tokenizer?.padId ?? [...eos][0] ?? 0;
  const width = Math.max(...prompts.map((p) => p.length));
  const rng = new Rng(o.seed ?? 0);
  const cache = new KVCache();
  const mask: number[][] = prompts.map((p) => [...new Array<number>(width - p.length).fill(0), ...p.map(() => 1)]);
  const seen = prompts.map((p) => [...p]);
  const newIds: number[][] = prompts.map(() => []);
  const done: (GenerateResult['finishReason'][number] | null)[] = prompts.map(() => null);
  const text: string[] = prompts.map(() => '');
  let step = 0;
  let input = prompts.map((p) => [...new Array<number>(width - p.length).fill(pad), ...p]);
  try {
    while (step < o.maxNewTokens && done.some((d) => d === null)) {
      const ids = tensor(input.flat(), [batch, input[0]!.length], 'i32', { backend: model.backend });
      const logits = model.forward(ids, { cache, attentionMask: mask, hooks: o.hooks, logits: 'last' });
      ids.dispose();
      const rows = logits.dataSync() as Float32Array;
      logits.dispose();
      const vocab = rows.length / batch;
      const next: number[] = [];
      for (let s = 0; s < batch; s++) {
        if (done[s] !== null) { next.push(pad); continue; }
        const id = pickToken(rows.subarray(s * vocab, (s + 1) * vocab), seen[s]!, o, rng);
        next.push(id);
        seen[s]!.push(id);
        newIds[s]!.push(id);
        let piece: string | undefined;
        if (o.tokenizer) {
          const full = o.tokenizer.decode(newIds[s]!, { skipSpecialTokens: true });
          piece = full.slice(text[s]!.length);
          text[s] = full;
        }
        o.onToken?.({ sequence: s, id, step, text: piece });
        if (eos.has(id)) done[s] = 'eos';
        else if (o.stopStrings?.length && o.stopStrings.some((st) => text[s]!.includes(st))) {
          done[s] = 'stop_string';
          const cut = Math.min(...o.stopStrings.map((st) => text[s]!.indexOf(st)).filter((i) => i >= 0));
          text[s] = text[s]!.slice(0, cut);
        }
      }
      for (let s = 0; s < batch; s++) mask[s]!.push(1);
      input = next.map((id) => [id]);
      step++;
    }
  } finally {
    cache.dispose();
  }
  return {
    ids: prompts.map((p, s) => [...p, ...newIds[s]!]),
    newIds,
    text: o.tokenizer ? text : undefined,
    finishReason: done.map((d) => d ?? 'length'),
  };
}
