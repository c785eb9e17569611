// Contrastive data for steering vectors: pairs of texts that differ in one concept, read from JSONL
// in the forms the steering papers and tools use:
//   {"positive": "I love this", "negative": "I hate this"}                      paired texts (repeng's DatasetEntry)
//   {"prompt": "Q: ... Answer:", "positive": " (A)", "negative": " (B)"}        A/B answers to one prompt (CAA)
//   {"question": "...", "answer_matching_behavior": "(A)", "answer_not_matching_behavior": "(B)"}
//                                                                              CAA's own dataset files
//   {"text": "...", "label": "positive" | "negative" | 1 | 0}                   unpaired sets
// Each text is tokenised as the model reads it (BOS included); an A/B item remembers where its
// answer starts, so activations can be read at the answer tokens.
import type { Tokenizer } from '../tokenizer/tokenizer.js';
import { InterventionError } from './intervention.js';

export interface ContrastItem {
  positive: string;
  negative: string;
  /** The shared prompt of an A/B item (the texts are prompt + answer). */
  prompt?: string;
}

export interface ContrastSet {
  /** Paired items (positive and negative of one item are compared with each other). */
  pairs: ContrastItem[];
  /** Unpaired texts (only the difference of means applies). */
  positives: string[];
  negatives: string[];
}

/** How a CAA-format question and its answer are joined. */
export const CAA_SEPARATOR = ' ';

/** Parses contrastive JSONL (one object per line; blank lines and lines starting with '#' skipped). */
export function parseContrastJsonl(text: string, where = 'contrastive set'): ContrastSet {
  const set: ContrastSet = { pairs: [], positives: [], negatives: [] };
  text.split(/\r?\n/).forEach((line, i) => {
    const s = line.trim();
    if (s === '' || s.startsWith('#')) return;
    const at = `${where}:${i + 1}`;
    let o: Record<string, unknown>;
    try {
      o = JSON.parse(s);
    } catch (e) {
      throw new InterventionError(`${at}: not valid JSON (${(e as Error).message})`);
    }
    if (!o || typeof o !== 'object' || Array.isArray(o)) throw new InterventionError(`${at}: expected a JSON object, got ${s.slice(0, 60)}`);
    const str = (k: string) => {
      const v = o[k];
      if (typeof v !== 'string' || v === '') throw new InterventionError(`${at}: '${k}' must be a non-empty string, got ${JSON.stringify(v)}`);
      return v;
    };
    if ('answer_matching_behavior' in o) {
      const q = str('question');
      set.pairs.push({ prompt: q, positive: q + CAA_SEPARATOR + str('answer_matching_behavior'), negative: q + CAA_SEPARATOR + str('answer_not_matching_behavior') });
    } else if ('positive' in o || 'negative' in o) {
      if ('prompt' in o) {
        const p = typeof o.prompt === 'string' ? o.prompt : str('prompt');
        set.pairs.push({ prompt: p, positive: p + str('positive'), negative: p + str('negative') });
      } else {
        set.pairs.push({ positive: str('positive'), negative: str('negative') });
      }
    } else if ('text' in o) {
      const t = str('text');
      const l = o.label;
      if (l === 'positive' || l === 1 || l === true) set.positives.push(t);
      else if (l === 'negative' || l === 0 || l === false) set.negatives.push(t);
      else throw new InterventionError(`${at}: 'label' must be "positive", "negative", 1 or 0, got ${JSON.stringify(l)}`);
    } else {
      throw new InterventionError(`${at}: expected {positive, negative}, {prompt, positive, negative}, {question, answer_matching_behavior, answer_not_matching_behavior} or {text, label}; got keys ${Object.keys(o).join(', ')}`);
    }
  });
  checkContrastSet(set, where);
  return set;
}

/** Throws unless the set has something on both sides. */
export function checkContrastSet(set: ContrastSet, where = 'contrastive set'): void {
  const pos = set.pairs.length + set.positives.length;
  const neg = set.pairs.length + set.negatives.length;
  if (pos === 0 && neg === 0) throw new InterventionError(`${where} is empty: no positive and no negative examples`);
  if (pos === 0) throw new InterventionError(`${where} has no positive examples (${neg} negative)`);
  if (neg === 0) throw new InterventionError(`${where} has no negative examples (${pos} positive)`);
}

/** One tokenised text and the first token of its answer (0 when it has no separate prompt). */
export interface EncodedText {
  ids: number[];
  answerStart: number;
}

/** Tokenises `text`; with a prompt, the answer starts where the prompt's own tokens end. */
export function encodeText(tok: Tokenizer, text: string, prompt?: string): EncodedText {
  const ids = tok.encode(text);
  if (ids.length === 0) throw new InterventionError(`the text ${JSON.stringify(text.slice(0, 40))} encodes to no tokens`);
  if (prompt === undefined) return { ids, answerStart: tok.bosId !== null && ids[0] === tok.bosId ? Math.min(1, ids.length - 1) : 0 };
  const p = tok.encode(prompt);
  let k = 0;
  while (k < p.length && k < ids.length && p[k] === ids[k]) k++;
  return { ids, answerStart: Math.min(k, ids.length - 1) };
}
