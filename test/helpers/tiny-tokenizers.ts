// Tokenizers of every kind for the committed 512-token fixture models, written to a folder:
// a llama2.c tok.bin (3 specials, 256 byte tokens, 253 merged pieces), an HF byte-level BPE
// tokenizer.json, and a GGUF file carrying a 'llama' (SentencePiece-style) tokenizer.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { u32, f32s, i32s, writeGgufBytes } from '../../src/formats/gguf-write.js';

const enc = new TextEncoder();
const WORDS = ['the', 'cat', 'sat', 'on', 'mat', 'and', 'dog', 'ran', 'a', 'to', 'in', 'it', 'is', 'was', 'he', 'she', 'they', 'once', 'upon', 'time'];

/** 253 pieces: the words, ' word', and letter pairs, with scores that prefer longer pieces. */
function pieces(): [string, number][] {
  const out: [string, number][] = [];
  const seen = new Set<string>();
  const add = (s: string, sc: number) => { if (out.length < 253 && !seen.has(s)) { seen.add(s); out.push([s, sc]); } };
  add(' ', -1);
  for (const c of 'abcdefghijklmnopqrstuvwxyz') add(c, -2);
  for (const w of WORDS) { add(w, -3 - w.length); add(` ${w}`, -4 - w.length); }
  for (const a of 'etaoinshrdlucmfwypvbgkjqxz') for (const b of 'etaoinshrdlucmfwypvbgkjqxz') add(a + b, -10);
  return out;
}

/** A llama2.c tokenizer of exactly 512 tokens. */
export function llama2cTokBin(): Uint8Array {
  const all: [Uint8Array, number][] = [
    ...['<unk>', '\n<s>\n', '\n</s>\n'].map((s) => [enc.encode(s), 0] as [Uint8Array, number]),
    ...Array.from({ length: 256 }, (_, b) => [enc.encode(`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`), 0] as [Uint8Array, number]),
    ...pieces().map(([s, sc]) => [enc.encode(s), sc] as [Uint8Array, number]),
  ];
  if (all.length !== 512) throw new Error(`tiny tokenizer: ${all.length} tokens`);
  const out = new Uint8Array(4 + all.reduce((n, [b]) => n + 8 + b.length, 0));
  const dv = new DataView(out.buffer);
  dv.setInt32(0, 16, true);
  let o = 4;
  for (const [b, sc] of all) { dv.setFloat32(o, sc, true); dv.setInt32(o + 4, b.length, true); out.set(b, o + 8); o += 8 + b.length; }
  return out;
}

/** GPT-2's byte -> printable character map. */
function bytesToUnicode(): string[] {
  const bs: number[] = [];
  for (let i = 33; i <= 126; i++) bs.push(i);
  for (let i = 161; i <= 172; i++) bs.push(i);
  for (let i = 174; i <= 255; i++) bs.push(i);
  const cs = [...bs];
  let n = 0;
  for (let b = 0; b < 256; b++) if (!bs.includes(b)) { bs.push(b); cs.push(256 + n++); }
  const map: string[] = [];
  bs.forEach((b, i) => { map[b] = String.fromCharCode(cs[i]!); });
  return map;
}

/** A byte-level BPE tokenizer.json: <s> 0, </s> 1, 256 byte tokens, merges building the words. */
export function hfTokenizerJson(): Record<string, unknown> {
  const b2u = bytesToUnicode();
  const vocab: Record<string, number> = { '<s>': 0, '</s>': 1 };
  for (let b = 0; b < 256; b++) vocab[b2u[b]!] = 2 + b;
  const merges: string[] = [];
  const sp = b2u[32]!;
  for (const w of WORDS) {
    let cur = sp + w[0];
    if (!(cur in vocab)) { merges.push(`${sp} ${w[0]}`); vocab[cur] = Object.keys(vocab).length; }
    for (const c of w.slice(1)) {
      const next = cur + c;
      if (!(next in vocab)) { merges.push(`${cur} ${c}`); vocab[next] = Object.keys(vocab).length; }
      cur = next;
    }
  }
  const byteLevel = { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true };
  return {
    version: '1.0',
    added_tokens: ['<s>', '</s>'].map((content, id) => ({ id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true })),
    normalizer: null, pre_tokenizer: byteLevel, decoder: byteLevel,
    post_processor: { type: 'TemplateProcessing', single: [{ SpecialToken: { id: '<s>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }], pair: [{ Sequence: { id: 'A', type_id: 0 } }, { Sequence: { id: 'B', type_id: 1 } }], special_tokens: { '<s>': { id: '<s>', ids: [0], tokens: ['<s>'] } } },
    model: { type: 'BPE', vocab, merges, dropout: null, unk_token: null, continuing_subword_prefix: null, end_of_word_suffix: null, fuse_unk: false, byte_fallback: false },
  };
}

/** A GGUF file with only a 'llama' tokenizer in its metadata (the llama2.c pieces, '▁' for space). */
export function ggufTokenizerBytes(): Uint8Array {
  const tokens = ['<unk>', '<s>', '</s>',
    ...Array.from({ length: 256 }, (_, b) => `<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`),
    ...pieces().map(([s]) => s.replace(/ /g, '\u2581'))];
  const scores = [0, 0, 0, ...Array(256).fill(0), ...pieces().map(([, sc]) => sc)];
  const types = [2, 3, 3, ...Array(256).fill(6), ...pieces().map(() => 1)];
  return writeGgufBytes({
    'general.architecture': 'llama',
    'tokenizer.ggml.model': 'llama', 'tokenizer.ggml.tokens': tokens, 'tokenizer.ggml.scores': f32s(scores),
    'tokenizer.ggml.token_type': i32s(types), 'tokenizer.ggml.bos_token_id': u32(1), 'tokenizer.ggml.eos_token_id': u32(2),
  }, []);
}

/** Writes tok.bin, tokenizer.json and tok.gguf into `dir`; returns their paths. */
export function writeTinyTokenizers(dir: string): { bin: string; json: string; gguf: string } {
  const paths = { bin: join(dir, 'tok.bin'), json: join(dir, 'tokenizer.json'), gguf: join(dir, 'tok.gguf') };
  writeFileSync(paths.bin, llama2cTokBin());
  writeFileSync(paths.json, JSON.stringify(hfTokenizerJson()));
  writeFileSync(paths.gguf, ggufTokenizerBytes());
  return paths;
}
