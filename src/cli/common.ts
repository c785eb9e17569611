// What the subcommands share: the one backend policy (`auto`), loading the model named by --model
// (folder, .bin, .gguf or hub id) with download progress and an optional --tokenizer of any kind,
// reading --prompt / --ids into token ids, and the context-length check.
import '../backends/index.js';
import { createProgressBars } from './download-progress.js';
import { loadModel, type LoadedModel } from '../models/load.js';
import { initBackend } from '../tensor/engine.js';
import type { Backend } from '../tensor/backend.js';
import { DEFAULT_BACKEND } from './options.js';

export interface ModelArgs {
  model: string;
  tokenizer?: string;
  backend?: string;
  offline?: boolean;
  /** Weights and activations (commands with --dtype); f32 when absent. */
  dtype?: 'f32' | 'f16' | 'bf16';
}

/** A prompt, as text or as token ids (parsed by options.intList, or a comma-separated string). */
export interface PromptArgs {
  prompt?: string;
  ids?: number[] | string;
}

/**
 * The backend policy of every command: a named backend is used as asked; `auto` (the default)
 * takes wasm (fast on every CPU, no GPU needed) and falls back to js, saying so on stderr.
 */
export async function pickBackend(name: string = DEFAULT_BACKEND): Promise<Backend> {
  if (name !== 'auto') return initBackend(name);
  try {
    return await initBackend('wasm');
  } catch (e) {
    process.stderr.write(`actlab: wasm backend unavailable (${(e as Error).message}); using js\n`);
    return initBackend('js');
  }
}

export async function loadForCli(a: ModelArgs): Promise<LoadedModel> {
  const bars = process.stderr.isTTY ? createProgressBars() : null;
  try {
    return await loadModel(a.model, { backend: await pickBackend(a.backend), tokenizerPath: a.tokenizer, offline: a.offline, onProgress: bars?.onProgress, dtype: a.dtype });
  } finally {
    bars?.stop();
  }
}

/** The weights' resident size beside their size in the file (JSON and one line of text). */
export function weightMemory(m: LoadedModel): { json: Record<string, number>; text: string } {
  const w = m.model.weightMemory();
  const mb = (n: number) => `${(n / 2 ** 20).toFixed(n < 2 ** 20 ? 2 : 1)} MiB`;
  return {
    json: { resident_bytes: w.bytes, file_bytes: m.fileBytes, quantized_matrices: w.quantized },
    text: `weights: ${mb(w.bytes)} resident (${(w.bytes / Math.max(1, m.fileBytes)).toFixed(2)}x the file's ${mb(m.fileBytes)})${w.quantized ? `, ${w.quantized} matrices kept quantized` : ''}`,
  };
}

/** Token ids from --ids (list or "1,2,3") or --prompt TEXT (which needs a tokenizer); never both. */
export function inputIds(o: PromptArgs, m: LoadedModel, addSpecialTokens = true, flags = { prompt: '--prompt', ids: '--ids' }): number[] {
  if (o.ids !== undefined && o.prompt !== undefined) throw new Error(`give ${flags.prompt} or ${flags.ids}, not both`);
  if (o.ids !== undefined) {
    const raw = typeof o.ids === 'string' ? o.ids.split(',').map((s) => s.trim()).filter(Boolean) : o.ids.map(String);
    const ids = raw.map(Number);
    const bad = ids.findIndex((x) => !Number.isInteger(x) || x < 0 || x >= m.model.dims.vocabSize);
    if (bad >= 0) throw new Error(`${flags.ids}: '${raw[bad]}' is not a token id of this model (0..${m.model.dims.vocabSize - 1})`);
    if (ids.length === 0) throw new Error(`${flags.ids}: no ids given`);
    return ids;
  }
  if (o.prompt === undefined) throw new Error(`give ${flags.prompt} TEXT or ${flags.ids} 1,2,3`);
  if (!m.tokenizer) throw new Error(`${m.source} has no tokenizer; pass --tokenizer FILE or use ${flags.ids}`);
  const ids = m.tokenizer.encode(o.prompt, { addSpecialTokens });
  if (ids.length === 0) throw new Error(`${flags.prompt}: the text encodes to no tokens`);
  return ids;
}

/**
 * Refuses `tokens` positions past the model's context (as `cache` does): learned position
 * tables end there, and RoPE models trained on nCtx positions give untrained results beyond it.
 */
export function checkContext(m: LoadedModel, tokens: number, what = 'the prompt'): void {
  const n = m.model.dims.nCtx;
  if (n > 0 && tokens > n) throw new Error(`${what}: ${tokens} tokens is longer than the ${n} positions ${m.source} was made for`);
}
