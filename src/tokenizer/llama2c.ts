// The llama2.c tokenizer (tokenizer.bin / tok512.bin): int32 max_token_length, then per token
// f32 score, int32 length, bytes. Encoding follows run.c's `encode`: a " " dummy-prefix token,
// each UTF-8 character looked up (unknown ones fall back to `<0xXX>` byte tokens), then the adjacent
// pair whose merge has the highest score is merged until none merges. Decoding follows run.c's
// `decode`: the leading space after BOS (and of the first piece) is dropped; `<0xXX>` is a raw byte.
// Hand-written because no maintained library reads this format (it is not a tokenizer.json).
import { renderChatTemplate } from './chat-template.js';
import type { ChatMessage, ChatTemplateOptions, DecodeOptions, EncodeOptions, Tokenizer } from './tokenizer.js';

export interface Llama2cVocab {
  /** Each token's bytes. */
  pieces: Uint8Array[];
  scores: number[];
}

export interface Llama2cTokenizerOptions {
  bosId?: number;
  eosId?: number;
  /** Ids that decode to nothing with skipSpecialTokens (default: unk 0, bos, eos). */
  specialIds?: number[];
  /** Stand-in for ' ' in the vocabulary (SentencePiece's '▁' in GGUF llama vocabularies); default ' '. */
  spaceMarker?: string;
  /** A Jinja chat template (GGUF files carry one in tokenizer.chat_template). */
  chatTemplate?: string | null;
}

/** Parses a llama2.c tokenizer file. `name` is used in errors. */
export function parseLlama2cTokenizer(bytes: Uint8Array, vocabSize: number, name = 'tokenizer.bin'): Llama2cVocab {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const pieces: Uint8Array[] = [];
  const scores: number[] = [];
  let o = 4;
  if (bytes.byteLength < 4) throw new Error(`${name}: too short for a llama2.c tokenizer (${bytes.byteLength} bytes)`);
  const maxLen = dv.getInt32(0, true);
  for (let i = 0; i < vocabSize; i++) {
    if (o + 8 > bytes.byteLength) throw new Error(`${name}: ends at token ${i} of ${vocabSize} (offset ${o}); is this the tokenizer of this model?`);
    scores.push(dv.getFloat32(o, true));
    const len = dv.getInt32(o + 4, true);
    o += 8;
    if (len < 0 || len > Math.max(maxLen, 64) * 4 || o + len > bytes.byteLength) {
      throw new Error(`${name}: token ${i} has a bad length ${len} at offset ${o - 4} (max_token_length ${maxLen})`);
    }
    pieces.push(bytes.slice(o, o + len));
    o += len;
  }
  if (o !== bytes.byteLength) throw new Error(`${name}: ${bytes.byteLength - o} bytes left after ${vocabSize} tokens; the model's vocab_size does not match this tokenizer`);
  return { pieces, scores };
}

/** Bytes <-> a "binary string" (one char per byte), so byte sequences can key a Map. */
function bin(b: Uint8Array): string {
  let s = '';
  for (let i = 0; i < b.length; i += 8192) s += String.fromCharCode(...b.subarray(i, i + 8192));
  return s;
}
const BYTE_TOKEN = /^<0x([0-9A-Fa-f]{2})>$/;

export class Llama2cTokenizer implements Tokenizer {
  readonly kind = 'llama2c' as const;
  readonly vocabSize: number;
  readonly bosId: number | null;
  readonly eosId: number | null;
  readonly eosIds: readonly number[];
  readonly padId = null;
  readonly chatTemplate: string | null;
  private lookup = new Map<string, number>();
  private byteIds = new Int32Array(256).fill(-1);
  private byteOf: Int16Array;
  private special: Set<number>;
  private strs: string[];
  private space: string;

  constructor(readonly vocab: Llama2cVocab, opts: Llama2cTokenizerOptions = {}) {
    this.vocabSize = vocab.pieces.length;
    this.bosId = opts.bosId ?? 1;
    this.eosId = opts.eosId ?? 2;
    this.eosIds = [this.eosId];
    this.chatTemplate = opts.chatTemplate ?? null;
    this.special = new Set(opts.specialIds ?? [0, this.bosId, this.eosId]);
    this.space = bin(new TextEncoder().encode(opts.spaceMarker ?? ' '));
    this.strs = vocab.pieces.map(bin);
    this.byteOf = new Int16Array(this.vocabSize).fill(-1);
    this.strs.forEach((s, id) => {
      if (!this.lookup.has(s)) this.lookup.set(s, id); // run.c's bsearch finds one of equal strings; the first is as good
      const m = BYTE_TOKEN.exec(s);
      if (m) {
        const b = parseInt(m[1]!, 16);
        this.byteOf[id] = b;
        if (this.byteIds[b] === -1) this.byteIds[b] = id;
      }
    });
  }

  encode(text: string, opts: EncodeOptions = {}): number[] {
    const ids: number[] = [];
    if ((opts.addSpecialTokens ?? true) && this.bosId !== null) ids.push(this.bosId);
    const bytes = bin(new TextEncoder().encode(text)).split(' ').join(this.space);
    const tokens: number[] = [];
    if (text.length > 0) {
      const prefix = this.lookup.get(this.space);
      if (prefix !== undefined) tokens.push(prefix);
      else this.pushBytes(tokens, this.space);
    }
    // One UTF-8 character at a time: a lead byte and its continuation bytes (0b10xxxxxx), at most 4.
    for (let i = 0; i < bytes.length;) {
      let j = i + 1;
      while (j < bytes.length && (bytes.charCodeAt(j) & 0xc0) === 0x80 && j - i < 4) j++;
      const ch = bytes.slice(i, j);
      const id = this.lookup.get(ch);
      if (id !== undefined) tokens.push(id);
      else this.pushBytes(tokens, ch);
      i = j;
    }
    this.merge(tokens);
    return ids.concat(tokens);
  }

  private pushBytes(tokens: number[], s: string): void {
    for (let k = 0; k < s.length; k++) {
      const b = s.charCodeAt(k);
      const id = this.byteIds[b]!;
      // run.c assumes byte b is token b + 3; a vocabulary without byte tokens maps to unk (0).
      tokens.push(id >= 0 ? id : 0);
    }
  }

  /** run.c: repeatedly merge the adjacent pair with the best score, leftmost first on ties. */
  private merge(tokens: number[]): void {
    for (;;) {
      let best = -1e10;
      let bestId = -1;
      let bestIdx = -1;
      for (let i = 0; i < tokens.length - 1; i++) {
        const id = this.lookup.get(this.strs[tokens[i]!]! + this.strs[tokens[i + 1]!]!);
        if (id !== undefined && this.vocab.scores[id]! > best) {
          best = this.vocab.scores[id]!;
          bestId = id;
          bestIdx = i;
        }
      }
      if (bestIdx === -1) return;
      tokens.splice(bestIdx, 2, bestId);
    }
  }

  /** The bytes one token adds after `prev` (run.c's `decode`), for streaming output. */
  decodeToken(prev: number | null, id: number): Uint8Array {
    this.checkId(id);
    const b = this.byteOf[id]!;
    if (b >= 0) return Uint8Array.of(b);
    let s = this.strs[id]!;
    if ((prev === null || prev === this.bosId) && s.startsWith(this.space)) s = s.slice(this.space.length);
    s = s.split(this.space).join(' ');
    return Uint8Array.from(s, (c) => c.charCodeAt(0));
  }

  decode(ids: readonly number[], opts: DecodeOptions = {}): string {
    const out: number[] = [];
    let prev: number | null = null;
    for (const id of ids) {
      if (opts.skipSpecialTokens && this.special.has(id)) { prev = id; continue; }
      for (const b of this.decodeToken(prev, id)) out.push(b);
      prev = id;
    }
    return new TextDecoder().decode(Uint8Array.from(out));
  }

  idToToken(id: number): string | undefined {
    const p = this.vocab.pieces[id];
    return p ? new TextDecoder().decode(p) : undefined;
  }

  tokenToId(token: string): number | undefined {
    return this.lookup.get(bin(new TextEncoder().encode(token)));
  }

  applyChatTemplate(messages: readonly ChatMessage[], opts: ChatTemplateOptions = {}): string {
    if (!this.chatTemplate) throw new Error('this tokenizer has no chat template (llama2.c models are not chat models)');
    const text = (id: number | null): string | null => (id === null ? null : this.idToToken(id) ?? null);
    return renderChatTemplate(this.chatTemplate, messages, { bos_token: text(this.bosId), eos_token: text(this.eosId) }, opts);
  }

  private checkId(id: number): void {
    if (!Number.isInteger(id) || id < 0 || id >= this.vocabSize) throw new RangeError(`llama2.c tokenizer: id ${id} is outside the vocabulary (0..${this.vocabSize - 1})`);
  }
}
