// The Tokenizer interface every model's tokenizer offers (HF tokenizer.json, llama2.c tok.bin),
// so the CLI and the analyses encode, decode and apply chat templates the same way for any model.
// Not for: a tokenizer algorithm of its own (see hf.ts, llama2c.ts).

export interface ChatMessage {
  role: string;
  content: string;
}

export interface EncodeOptions {
  /** Add the model's special tokens (BOS, and whatever its post-processor adds). Default true. */
  addSpecialTokens?: boolean;
}

export interface DecodeOptions {
  /** Leave out special tokens (BOS, EOS, pad, ...). Default false. */
  skipSpecialTokens?: boolean;
}

export interface ChatTemplateOptions {
  /** End with the header of an assistant turn, so generation answers. Default true. */
  addGenerationPrompt?: boolean;
  /** Extra variables for the template (tools, documents, ...). */
  extra?: Record<string, unknown>;
}

export interface Tokenizer {
  readonly kind: 'hf' | 'llama2c';
  readonly vocabSize: number;
  readonly bosId: number | null;
  /** The first of `eosIds`. */
  readonly eosId: number | null;
  /** Every id that ends generation (generation_config may list several). */
  readonly eosIds: readonly number[];
  readonly padId: number | null;
  /** The Jinja chat template, or null when the model has none. */
  readonly chatTemplate: string | null;
  encode(text: string, opts?: EncodeOptions): number[];
  decode(ids: readonly number[], opts?: DecodeOptions): string;
  idToToken(id: number): string | undefined;
  tokenToId(token: string): number | undefined;
  /** The prompt text the chat template makes of `messages` (encode it with addSpecialTokens: false). */
  applyChatTemplate(messages: readonly ChatMessage[], opts?: ChatTemplateOptions): string;
}
