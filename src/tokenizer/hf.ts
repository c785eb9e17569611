// Hugging Face tokenizers (tokenizer.json + tokenizer_config.json) through @huggingface/tokenizers,
// the library transformers.js uses; chat templates through @huggingface/jinja.
// Special tokens come from tokenizer_config.json when present, else from config/generation_config ids.
import { Tokenizer as HfLibTokenizer } from '@huggingface/tokenizers';
import { pickChatTemplate, renderChatTemplate } from './chat-template.js';
import type { ChatMessage, ChatTemplateOptions, DecodeOptions, EncodeOptions, Tokenizer } from './tokenizer.js';

export interface HfTokenizerFiles {
  /** Parsed tokenizer.json. */
  tokenizer: unknown;
  /** Parsed tokenizer_config.json, when the model has one. */
  tokenizerConfig?: Record<string, unknown> | null;
  /** Parsed config.json and generation_config.json: fallbacks for bos/eos/pad ids. */
  config?: Record<string, unknown> | null;
  generationConfig?: Record<string, unknown> | null;
}

/** tokenizer_config.json writes special tokens as "text" or {content: "text", ...}. */
function tokenText(v: unknown): string | null {
  if (typeof v === 'string') return v;
  if (v && typeof v === 'object' && typeof (v as { content?: unknown }).content === 'string') return (v as { content: string }).content;
  return null;
}

function ids(v: unknown): number[] {
  if (typeof v === 'number') return [v];
  if (Array.isArray(v)) return v.filter((x): x is number => typeof x === 'number');
  return [];
}

export class HfTokenizer implements Tokenizer {
  readonly kind = 'hf' as const;
  readonly vocabSize: number;
  readonly bosId: number | null;
  readonly eosId: number | null;
  readonly eosIds: readonly number[];
  readonly padId: number | null;
  readonly chatTemplate: string | null;
  private lib: HfLibTokenizer;
  private tokens: { bos_token: string | null; eos_token: string | null; pad_token: string | null; unk_token: string | null };

  constructor(files: HfTokenizerFiles, readonly source = 'tokenizer.json') {
    const tc = files.tokenizerConfig ?? {};
    try {
      this.lib = new HfLibTokenizer(files.tokenizer as object, tc);
    } catch (e) {
      throw new Error(`${source}: @huggingface/tokenizers cannot load it: ${(e as Error).message}`);
    }
    const vocab = this.lib.get_vocab(true);
    let max = -1;
    for (const id of vocab.values()) if (id > max) max = id;
    this.vocabSize = max + 1;
    this.tokens = {
      bos_token: tokenText(tc.bos_token), eos_token: tokenText(tc.eos_token),
      pad_token: tokenText(tc.pad_token), unk_token: tokenText(tc.unk_token),
    };
    const idOf = (t: string | null): number | null => (t === null ? null : this.lib.token_to_id(t) ?? null);
    const cfg = { ...(files.config ?? {}), ...(files.generationConfig ?? {}) };
    this.bosId = idOf(this.tokens.bos_token) ?? ids(cfg.bos_token_id)[0] ?? null;
    const eos = new Set<number>(ids(cfg.eos_token_id));
    const eosTok = idOf(this.tokens.eos_token);
    this.eosIds = eosTok !== null ? [eosTok, ...[...eos].filter((x) => x !== eosTok)] : [...eos];
    this.eosId = this.eosIds[0] ?? null;
    this.padId = idOf(this.tokens.pad_token) ?? ids(cfg.pad_token_id)[0] ?? null;
    // Fill in token texts from ids, for templates that print {{ bos_token }}.
    if (this.tokens.bos_token === null && this.bosId !== null) this.tokens.bos_token = this.lib.id_to_token(this.bosId) ?? null;
    if (this.tokens.eos_token === null && this.eosId !== null) this.tokens.eos_token = this.lib.id_to_token(this.eosId) ?? null;
    this.chatTemplate = pickChatTemplate(tc.chat_template);
  }

  encode(text: string, opts: EncodeOptions = {}): number[] {
    const ids = this.lib.encode(text, { add_special_tokens: opts.addSpecialTokens ?? true }).ids;
    if (ids.some((id: unknown) => typeof id !== 'number')) {
      throw new Error(`${this.source}: the tokenizer gave a token without an id for ${JSON.stringify(text.slice(0, 40))} (a model type @huggingface/tokenizers does not support?)`);
    }
    return ids;
  }

  decode(idList: readonly number[], opts: DecodeOptions = {}): string {
    return this.lib.decode([...idList], { skip_special_tokens: opts.skipSpecialTokens ?? false });
  }

  idToToken(id: number): string | undefined {
    return this.lib.id_to_token(id);
  }

  tokenToId(token: string): number | undefined {
    return this.lib.token_to_id(token);
  }

  applyChatTemplate(messages: readonly ChatMessage[], opts: ChatTemplateOptions = {}): string {
    if (!this.chatTemplate) {
      throw new Error(`${this.source}: this model has no chat template (tokenizer_config.json has no chat_template)`);
    }
    return renderChatTemplate(this.chatTemplate, messages, this.tokens, opts);
  }
}
