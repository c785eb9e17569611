// The tokenizer stored in a GGUF file's metadata (tokenizer.ggml.*), built on actlab's two
// tokenizers: 'llama' (SentencePiece-style scores, '▁' for space, <0xXX> byte tokens) uses the
// score-merging tokenizer of llama2c.ts, as llama.cpp's SPM tokenizer does; 'gpt2' (byte-level BPE)
// becomes a tokenizer.json for @huggingface/tokenizers. The pre-tokenizer regex is GPT-2's: models
// whose tokenizer.ggml.pre names another (qwen2, llama-bpe) may split rare inputs differently.
import type { MetadataValue } from '@huggingface/gguf';
import { HfTokenizer } from './hf.js';
import { Llama2cTokenizer } from './llama2c.js';
import type { Tokenizer } from './tokenizer.js';

const num = (v: MetadataValue | undefined): number | undefined =>
  typeof v === 'number' ? v : typeof v === 'bigint' ? Number(v) : undefined;

/** GGUF token types (llama.cpp `llama_token_type`). */
const CONTROL = 3;
const UNKNOWN = 2;

export function ggufTokenizer(meta: Record<string, MetadataValue>): Tokenizer | null {
  const model = meta['tokenizer.ggml.model'];
  const tokens = meta['tokenizer.ggml.tokens'] as string[] | undefined;
  if (!tokens || !Array.isArray(tokens)) return null;
  const types = (meta['tokenizer.ggml.token_type'] as number[] | undefined) ?? [];
  const bos = num(meta['tokenizer.ggml.bos_token_id']);
  const eos = num(meta['tokenizer.ggml.eos_token_id']);
  const pad = num(meta['tokenizer.ggml.padding_token_id']);
  const special = types.flatMap((t, i) => (t === CONTROL || t === UNKNOWN ? [i] : []));
  if (model === 'llama') {
    const scores = (meta['tokenizer.ggml.scores'] as number[] | undefined) ?? tokens.map(() => 0);
    const enc = new TextEncoder();
    return new Llama2cTokenizer(
      { pieces: tokens.map((t) => enc.encode(t)), scores },
      {
        bosId: bos ?? 1, eosId: eos ?? 2, specialIds: special, spaceMarker: '\u2581',
        chatTemplate: meta['tokenizer.chat_template'] as string | undefined,
      },
    );
  }
  if (model === 'gpt2') {
    const merges = (meta['tokenizer.ggml.merges'] as string[] | undefined) ?? [];
    const vocab: Record<string, number> = {};
    tokens.forEach((t, i) => { vocab[t] = i; });
    const byteLevel = { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true };
    const tokenizer = {
      version: '1.0',
      added_tokens: special.map((id) => ({ id, content: tokens[id], single_word: false, lstrip: false, rstrip: false, normalized: false, special: true })),
      normalizer: null, pre_tokenizer: byteLevel, post_processor: null, decoder: byteLevel,
      model: { type: 'BPE', vocab, merges, dropout: null, unk_token: null, continuing_subword_prefix: null, end_of_word_suffix: null, fuse_unk: false, byte_fallback: false },
    };
    const text = (id: number | undefined): string | undefined => (id === undefined ? undefined : tokens[id]);
    return new HfTokenizer({
      tokenizer,
      tokenizerConfig: {
        bos_token: text(bos), eos_token: text(eos), pad_token: text(pad),
        chat_template: meta['tokenizer.chat_template'] as string | undefined,
      },
    }, 'GGUF tokenizer');
  }
  return null;
}
