// Text generation with a KV cache: prompts of different lengths are left-padded into one batch
// (the attention mask gives each its own positions), then one token per step is chosen for every
// sequence until EOS, a stop string or the token budget. Hooks see every step, with its position.
import { tensor } from '../ops/creation.js';
import { Rng } from '../ops/creation.js';
import type { Hooks } from './hook-point.js';
import type { Tokenizer } from '../tokenizer/tokenizer.js';
import { KVCache } from './layers/kv-cache.js';
import { KVCacheQuant } from './kvquant/cache.js';
import type { KVCacheSpec } from './kvquant/spec.js';
import type { CausalLM } from './model.js';
import type { Tensor } from '../tensor/tensor.js';
import { pickToken, type SamplingOptions } from './sampling.js';
import { reduce } from '../ops/reduce.js';

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
  /** A quantized KV cache (src/models/kvquant): q8_0, q4_0 or KVQuant's scheme; default f32. */
  kvCache?: KVCacheSpec;
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

/** The state of one generation: what to feed next, and what to do with the logits that come back. */
class Generation {
  private readonly eos: Set<number>;
  private readonly pad: number;
  private readonly rng: Rng;
  readonly cache: KVCache;
  private readonly mask: number[][];
  private readonly seen: number[][];
  private readonly newIds: number[][];
  private readonly done: (GenerateResult['finishReason'][number] | null)[];
  private readonly text: string[];
  private step = 0;
  private input: number[][];

  constructor(private readonly model: CausalLM, private readonly prompts: readonly (readonly number[])[], private readonly o: GenerateOptions) {
    if (prompts.length === 0) throw new Error('generate: no prompts');
    if (prompts.some((p) => p.length === 0)) throw new Error('generate: every prompt needs at least one token (e.g. BOS)');
    this.cache = o.kvCache ? new KVCacheQuant(o.kvCache, model.backend) : new KVCache();
    this.eos = new Set(o.eosTokenIds ?? (o.tokenizer?.eosIds ?? []));
    this.pad = o.padTokenId ?? o.tokenizer?.padId ?? [...this.eos][0] ?? 0;
    const width = Math.max(...prompts.map((p) => p.length));
    this.rng = new Rng(o.seed ?? 0);
    this.mask = prompts.map((p) => [...new Array<number>(width - p.length).fill(0), ...p.map(() => 1)]);
    this.seen = prompts.map((p) => [...p]);
    this.newIds = prompts.map(() => []);
    this.done = prompts.map(() => null);
    this.text = prompts.map(() => '');
    this.input = prompts.map((p) => [...new Array<number>(width - p.length).fill(this.pad), ...p]);
  }

  /** Logits [batch, 1, vocab] of the next step (the caller reads and disposes them), or null when finished. */
  forward(): Tensor | null {
    if (this.step >= this.o.maxNewTokens || this.done.every((d) => d !== null)) return null;
    const ids = tensor(this.input.flat(), [this.prompts.length, this.input[0]!.length], 'i32', { backend: this.model.backend });
    try {
      return this.model.forward(ids, { cache: this.cache, attentionMask: this.mask, hooks: this.o.hooks, logits: 'last' });
    } finally {
      ids.dispose();
    }
  }

  /**
   * Greedy with no repetition penalty: the next tokens are the logits' argmax, which the backend
   * can take where the logits are (4 bytes per sequence read back instead of the vocabulary).
   */
  get greedy(): boolean {
    return !((this.o.temperature ?? 0) > 0) && (this.o.repetitionPenalty ?? 1) === 1;
  }

  /** The step's logits [batch, 1, vocab] -> their argmax per sequence [batch] (disposes the logits). */
  argmaxOf(logits: Tensor): Tensor {
    const rows = logits.reshape([this.prompts.length, -1]); // a view: it holds the buffer too
    try {
      return reduce('argmax', rows, 1);
    } finally {
      rows.dispose();
      logits.dispose();
    }
  }

  /** Chooses each sequence's next token from the step's logits (host copy). */
  accept(rows: Float32Array): void {
    const batch = this.prompts.length;
    const vocab = rows.length / batch;
    this.commit(Array.from({ length: batch }, (_, s) =>
      this.done[s] !== null ? this.pad : pickToken(rows.subarray(s * vocab, (s + 1) * vocab), this.seen[s]!, this.o, this.rng)));
  }

  /** Takes the step's chosen ids (one per sequence; finished sequences are fed padding). */
  commit(chosen: ArrayLike<number>): void {
    const o = this.o;
    const batch = this.prompts.length;
    const next: number[] = [];
    for (let s = 0; s < batch; s++) {
      if (this.done[s] !== null) { next.push(this.pad); continue; }
      const id = chosen[s]!;
      next.push(id);
      this.seen[s]!.push(id);
      this.newIds[s]!.push(id);
      let piece: string | undefined;
      if (o.tokenizer) {
        const full = o.tokenizer.decode(this.newIds[s]!, { skipSpecialTokens: true });
        piece = full.slice(this.text[s]!.length);
        this.text[s] = full;
      }
      o.onToken?.({ sequence: s, id, step: this.step, text: piece });
      if (this.eos.has(id)) this.done[s] = 'eos';
      else if (o.stopStrings?.length && o.stopStrings.some((st) => this.text[s]!.includes(st))) {
        this.done[s] = 'stop_string';
        const cut = Math.min(...o.stopStrings.map((st) => this.text[s]!.indexOf(st)).filter((i) => i >= 0));
        this.text[s] = this.text[s]!.slice(0, cut);
      }
    }
    for (let s = 0; s < batch; s++) this.mask[s]!.push(1);
    this.input = next.map((id) => [id]);
    this.step++;
  }

  result(): GenerateResult {
    return {
      ids: this.prompts.map((p, s) => [...p, ...this.newIds[s]!]),
      newIds: this.newIds,
      text: this.o.tokenizer ? this.text : undefined,
      finishReason: this.done.map((d) => d ?? 'length'),
    };
  }
}

/** Generation on a synchronous (CPU) backend. */
export function generate(model: CausalLM, prompts: readonly (readonly number[])[], o: GenerateOptions): GenerateResult {
  const g = new Generation(model, prompts, o);
  try {
    for (let logits = g.forward(); logits; logits = g.forward()) {
      if (g.greedy) {
        const am = g.argmaxOf(logits);
        try {
          g.commit(am.dataSync());
        } finally {
          am.dispose();
        }
        continue;
      }
      const rows = logits.dataSync() as Float32Array;
      logits.dispose();
      g.accept(rows);
    }
    return g.result();
  } finally {
    g.cache.dispose();
  }
}

/** Generation on any backend, reading each step's logits asynchronously (WebGPU). */
export async function generateAsync(model: CausalLM, prompts: readonly (readonly number[])[], o: GenerateOptions): Promise<GenerateResult> {
  const g = new Generation(model, prompts, o);
  try {
    for (let logits = g.forward(); logits; logits = g.forward()) {
      if (g.greedy) {
        const am = g.argmaxOf(logits);
        try {
          g.commit(await am.data());
        } finally {
          am.dispose();
        }
        continue;
      }
      const rows = (await logits.data()) as Float32Array;
      logits.dispose();
      g.accept(rows);
    }
    return g.result();
  } finally {
    g.cache.dispose();
  }
}

/**
 * Greedy decoding's next token for one sequence: the index of the largest of `logits` (one row,
 * e.g. [1, 1, vocab]), computed on the backend so that only 4 bytes are read back. Takes
 * ownership of `logits`. `greedyTokenSync` for backends that read synchronously (js, wasm).
 */
export async function greedyToken(logits: Tensor): Promise<number> {
  const am = argmaxOfRow(logits);
  try {
    return (await am.data())[0]!;
  } finally {
    am.dispose();
  }
}

export function greedyTokenSync(logits: Tensor): number {
  const am = argmaxOfRow(logits);
  try {
    return am.dataSync()[0]!;
  } finally {
    am.dispose();
  }
}

function argmaxOfRow(logits: Tensor): Tensor {
  const flat = logits.reshape([-1]); // a view: it holds the logits' buffer too
  const am = reduce('argmax', flat, 0); // [] i32
  flat.dispose();
  logits.dispose();
  return am;
}
