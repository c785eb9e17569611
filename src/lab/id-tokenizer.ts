// A tokenizer for models that have none (the organisms, random models): text is a list of token
// ids ("1 5 9 12", commas or spaces), and each id decodes to "#id". Lets every lab view take a
// prompt string whatever the model. Not for: real text (use the checkpoint's own tokenizer).
import type { Tokenizer } from '../tokenizer/tokenizer.js';

export class IdTokenizer implements Tokenizer {
  readonly kind = 'llama2c' as const;
  readonly bosId: number | null;
  readonly eosId = null;
  readonly eosIds: readonly number[] = [];
  readonly padId = null;
  readonly chatTemplate = null;

  constructor(readonly vocabSize: number, bos: number | null = null) {
    this.bosId = bos;
  }

  encode(text: string): number[] {
    const parts = text.split(/[\s,]+/).filter((s) => s !== '');
    return parts.map((s, i) => {
      const id = /^#?\d+$/.test(s) ? Number(s.replace('#', '')) : NaN;
      if (!Number.isInteger(id) || id < 0 || id >= this.vocabSize) {
        throw new RangeError(`this model has no tokenizer: the prompt must be token ids in [0, ${this.vocabSize}) separated by spaces; item ${i + 1} is '${s}'`);
      }
      return id;
    });
  }

  decode(ids: readonly number[]): string {
    return ids.map((i) => String(i)).join(' ');
  }

  idToToken(id: number): string | undefined {
    return id >= 0 && id < this.vocabSize ? `#${id}` : undefined;
  }

  tokenToId(token: string): number | undefined {
    const id = Number(token.replace('#', ''));
    return Number.isInteger(id) && id >= 0 && id < this.vocabSize ? id : undefined;
  }

  applyChatTemplate(): string {
    throw new Error('this model has no tokenizer and no chat template');
  }
}
