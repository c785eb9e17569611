// What the subcommands share: loading the model named by --model (folder, .bin, .gguf or hub id)
// on the chosen backend with download progress, and reading --prompt / --ids into token ids.
import '../backends/index.js';
import { createProgressBars } from '../hub/progress-bar.js';
import { loadModel, type LoadedModel } from '../models/load.js';
import { initBackend } from '../tensor/engine.js';
import type { Backend } from '../backends/backend.js';

export interface ModelArgs {
  model: string;
  tokenizer?: string;
  backend?: string;
  offline?: boolean;
}

/** A prompt, as text or as token ids. */
export interface PromptArgs {
  prompt?: string;
  ids?: string;
}

/** The named backend; 'auto' takes wasm and falls back to js (saying so on stderr). */
export async function pickBackend(name = 'auto'): Promise<Backend> {
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
    return await loadModel(a.model, { backend: await pickBackend(a.backend), tokenizerPath: a.tokenizer, offline: a.offline, onProgress: bars?.onProgress });
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

/** Token ids from --ids "1,2,3" or --prompt TEXT (which needs a tokenizer). */
export function inputIds(o: { prompt?: string; ids?: string }, m: LoadedModel, addSpecialTokens = true): number[] {
  if (o.ids !== undefined) {
    const ids = o.ids.split(',').map((s) => s.trim()).filter(Boolean).map(Number);
    const bad = ids.findIndex((x) => !Number.isInteger(x) || x < 0 || x >= m.model.dims.vocabSize);
    if (bad >= 0) throw new Error(`--ids: '${o.ids.split(',')[bad]}' is not a token id of this model (0..${m.model.dims.vocabSize - 1})`);
    if (ids.length === 0) throw new Error('--ids: no ids given');
    return ids;
  }
  if (o.prompt === undefined) throw new Error('give --prompt TEXT or --ids 1,2,3');
  if (!m.tokenizer) throw new Error(`${m.source} has no tokenizer; pass --tokenizer FILE or use --ids`);
  const ids = m.tokenizer.encode(o.prompt, { addSpecialTokens });
  if (ids.length === 0) throw new Error('--prompt: the text encodes to no tokens');
  return ids;
}
