// A text corpus as a deterministic stream of fixed-length token contexts, read through a
// ByteSource a chunk at a time (never the whole file).
//
// Documents:
//   .txt, split 'paragraph' (default): documents are runs of non-empty lines separated by one or
//     more blank (empty or whitespace-only) lines; the lines of a document are joined with '\n'.
//   .txt, split 'line': every non-empty line is a document.
//   .jsonl: every non-empty line is a JSON object whose `field` (default 'text') is the document.
// Bad input is skipped and counted, never fatal: a document with a line that is not valid UTF-8
// (each line is decoded with a fatal decoder), a JSONL line that is not JSON or lacks the field,
// and blank lines. The first few line numbers of each kind are kept for the report.
//
// Contexts: documents are tokenized without special tokens and concatenated, with the tokenizer's
// EOS between consecutive documents (when it has one); the token stream is cut into consecutive
// bodies of `context - 1` tokens (with BOS, which then starts every context) or `context` tokens.
// A document longer than a body simply spans several contexts (counted as `longDocuments`); the
// final partial body is dropped (`droppedTokens`). The same corpus, tokenizer and options always
// give the same stream, which is what lets an interrupted harvest resume by skipping.
// Not for: shuffling or batching (src/store/reader.ts reads stored contexts back).
import type { ByteSource } from '../io/byte-source.js';
import type { Tokenizer } from '../tokenizer/tokenizer.js';

export type CorpusFormat = 'txt' | 'jsonl';
export type TxtSplit = 'paragraph' | 'line';

export interface CorpusOptions {
  /** Default: 'jsonl' when the source name ends in .jsonl, else 'txt'. */
  format?: CorpusFormat;
  /** JSONL: the field holding the text (default 'text'). */
  field?: string;
  /** TXT: how documents are delimited (default 'paragraph'). */
  split?: TxtSplit;
  /** Bytes read per call to the source (default 1 MiB). */
  chunkBytes?: number;
}

export interface ContextOptions extends CorpusOptions {
  /** Tokens per context, BOS included. */
  context: number;
  /** Start every context with the tokenizer's BOS. */
  bos: boolean;
}

/** How many line numbers of each kind of bad input the report keeps. */
const KEEP_LINES = 20;

export interface CorpusStats {
  /** Lines read so far (1-based numbering in the lists below). */
  lines: number;
  bytesRead: number;
  /** Documents tokenized into the stream. */
  documents: number;
  /** Empty or whitespace-only lines (separators in paragraph mode, skipped otherwise). */
  emptyLines: number;
  /** Documents whose text tokenized to nothing (e.g. a JSONL text of ""). */
  emptyDocuments: number;
  /** Documents skipped because a line is not valid UTF-8, and the first of those lines. */
  invalidUtf8: number;
  invalidUtf8Lines: number[];
  /** JSONL lines that are not a JSON object with a string `field`. */
  invalidJson: number;
  invalidJsonLines: number[];
  /** Documents longer than one context body (they span several contexts). */
  longDocuments: number;
  /** Tokens put into the stream (EOS separators included; BOS not). */
  tokens: number;
  /** Tokens of the final partial context, dropped at the end of the corpus. */
  droppedTokens: number;
  /** Whether the whole corpus was read. */
  done: boolean;
}

export function emptyStats(): CorpusStats {
  return {
    lines: 0, bytesRead: 0, documents: 0, emptyLines: 0, emptyDocuments: 0, invalidUtf8: 0, invalidUtf8Lines: [],
    invalidJson: 0, invalidJsonLines: [], longDocuments: 0, tokens: 0, droppedTokens: 0, done: false,
  };
}

/** One line per kind of bad or notable input, for the CLI report. */
export function describeStats(s: CorpusStats): string[] {
  const at = (ls: number[], n: number) => (ls.length ? ` (line${ls.length > 1 ? 's' : ''} ${ls.join(', ')}${n > ls.length ? ', …' : ''})` : '');
  const out: string[] = [];
  if (s.invalidUtf8) out.push(`${s.invalidUtf8} document(s) skipped: not valid UTF-8${at(s.invalidUtf8Lines, s.invalidUtf8)}`);
  if (s.invalidJson) out.push(`${s.invalidJson} JSONL line(s) skipped: not a JSON object with the text field${at(s.invalidJsonLines, s.invalidJson)}`);
  if (s.emptyLines) out.push(`${s.emptyLines} empty line(s)`);
  if (s.emptyDocuments) out.push(`${s.emptyDocuments} document(s) with no tokens skipped`);
  if (s.longDocuments) out.push(`${s.longDocuments} document(s) longer than a context, split across contexts`);
  if (s.droppedTokens) out.push(`${s.droppedTokens} token(s) at the end dropped (less than a full context)`);
  return out;
}

export function corpusFormatOf(name: string, format?: CorpusFormat): CorpusFormat {
  if (format) return format;
  return /\.jsonl$/i.test(name) ? 'jsonl' : 'txt';
}

/** The lines of `source` as bytes (without '\n' or a trailing '\r'; a leading UTF-8 BOM removed), numbered from 1. */
export async function* readLines(source: ByteSource, stats: CorpusStats, chunkBytes = 1 << 20): AsyncGenerator<{ bytes: Uint8Array; line: number }> {
  // The start of a line that runs past the current chunk, in pieces (joined once, when it ends).
  let carry: Uint8Array[] = [];
  let line = 0;
  const emit = (tail: Uint8Array) => {
    let b = tail;
    if (carry.length) {
      b = new Uint8Array(carry.reduce((n, c) => n + c.byteLength, tail.byteLength));
      let o = 0;
      for (const c of [...carry, tail]) { b.set(c, o); o += c.byteLength; }
      carry = [];
    }
    let e = b.byteLength;
    if (e > 0 && b[e - 1] === 0x0d) e--;
    let s = 0;
    if (line === 0 && e >= 3 && b[0] === 0xef && b[1] === 0xbb && b[2] === 0xbf) s = 3;
    line++;
    stats.lines = line;
    return { bytes: b.subarray(s, e), line };
  };
  for (let off = 0; off < source.size; off += chunkBytes) {
    const chunk = await source.read(off, Math.min(chunkBytes, source.size - off));
    stats.bytesRead = off + chunk.byteLength;
    let start = 0;
    for (let i = chunk.indexOf(0x0a); i >= 0; i = chunk.indexOf(0x0a, start)) {
      const piece = chunk.subarray(start, i);
      start = i + 1;
      yield emit(piece);
    }
    if (start < chunk.byteLength) carry.push(chunk.subarray(start));
  }
  if (carry.length) yield emit(new Uint8Array(0));
}

function isBlank(b: Uint8Array): boolean {
  for (const c of b) if (c !== 0x20 && c !== 0x09 && c !== 0x0b && c !== 0x0c) return false;
  return true;
}

function note(list: number[], line: number): void {
  if (list.length < KEEP_LINES) list.push(line);
}

/** The documents of `source` (see the file comment), skipping and counting bad input in `stats`. */
export async function* readDocuments(source: ByteSource, stats: CorpusStats, o: CorpusOptions = {}): AsyncGenerator<{ text: string; line: number }> {
  const format = corpusFormatOf(source.name, o.format);
  const field = o.field ?? 'text';
  const split = o.split ?? 'paragraph';
  const decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
  const decode = (b: Uint8Array): string | null => {
    try {
      return decoder.decode(b);
    } catch {
      return null;
    }
  };
  // Paragraph mode: the lines of the document being gathered, and whether one was bad.
  let para: string[] = [];
  let paraLine = 0;
  let paraBad = false;
  const endParagraph = (): { text: string; line: number } | null => {
    const doc = para.length && !paraBad ? { text: para.join('\n'), line: paraLine } : null;
    para = [];
    paraBad = false;
    return doc;
  };
  for await (const { bytes, line } of readLines(source, stats, o.chunkBytes)) {
    if (isBlank(bytes)) {
      stats.emptyLines++;
      if (format === 'txt' && split === 'paragraph') {
        const d = endParagraph();
        if (d) yield d;
      }
      continue;
    }
    const text = decode(bytes);
    if (format === 'txt' && split === 'paragraph') {
      if (para.length === 0 && !paraBad) paraLine = line;
      if (text === null) {
        if (!paraBad) { stats.invalidUtf8++; note(stats.invalidUtf8Lines, line); }
        paraBad = true;
        para = [];
      } else if (!paraBad) {
        para.push(text);
      }
      continue;
    }
    if (text === null) {
      stats.invalidUtf8++;
      note(stats.invalidUtf8Lines, line);
      continue;
    }
    if (format === 'txt') {
      yield { text, line };
      continue;
    }
    let obj: unknown;
    try {
      obj = JSON.parse(text);
    } catch {
      obj = undefined;
    }
    const value = obj && typeof obj === 'object' && !Array.isArray(obj) ? (obj as Record<string, unknown>)[field] : undefined;
    if (typeof value !== 'string') {
      stats.invalidJson++;
      note(stats.invalidJsonLines, line);
      continue;
    }
    yield { text: value, line };
  }
  if (format === 'txt' && split === 'paragraph') {
    const d = endParagraph();
    if (d) yield d;
  }
}

/**
 * The contexts of `source` (see the file comment): each an Int32Array of exactly `context` ids.
 * `stats` is updated as the stream is consumed, so it describes the part read so far.
 */
export async function* readContexts(source: ByteSource, tokenizer: Tokenizer, o: ContextOptions, stats: CorpusStats = emptyStats()): AsyncGenerator<Int32Array> {
  if (!Number.isInteger(o.context) || o.context < (o.bos ? 2 : 1)) throw new RangeError(`context must be an integer >= ${o.bos ? 2 : 1}, got ${o.context}`);
  if (o.bos && tokenizer.bosId === null) throw new Error('the tokenizer has no BOS token; harvest without BOS');
  const body = o.context - (o.bos ? 1 : 0);
  const eos = tokenizer.eosId;
  let pending: number[] = [];
  let at = 0;
  let first = true;
  for await (const doc of readDocuments(source, stats, o)) {
    const ids = tokenizer.encode(doc.text, { addSpecialTokens: false });
    if (ids.length === 0) {
      stats.emptyDocuments++;
      continue;
    }
    stats.documents++;
    if (ids.length > body) stats.longDocuments++;
    if (!first && eos !== null) { pending.push(eos); stats.tokens++; }
    first = false;
    for (const id of ids) pending.push(id);
    stats.tokens += ids.length;
    while (pending.length - at >= body) {
      const out = new Int32Array(o.context);
      if (o.bos) out[0] = tokenizer.bosId!;
      for (let i = 0; i < body; i++) out[o.context - body + i] = pending[at + i]!;
      at += body;
      yield out;
    }
    if (at > 1 << 16) {
      pending = pending.slice(at);
      at = 0;
    }
  }
  stats.droppedTokens = pending.length - at;
  stats.done = true;
}
