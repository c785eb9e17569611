// Activations on the host: one forward pass, the hook points an analysis asks for copied out as
// Float32Arrays with their shapes, so the analyses are plain loops over numbers that any backend
// (and the browser) can feed. Also the token labels every section prints.
// Not for: keeping tensors on a device (that is runWithCache's ActivationCache).
import { tensor } from '../ops/creation.js';
import { runWithCache } from '../hooks/run.js';
import { readAsync, readSync, type Reads } from '../tensor/read.js';
import type { CausalLM } from '../models/model.js';
import type { Tokenizer } from '../tokenizer/tokenizer.js';
import { blockHook } from '../models/hook-point.js';

export interface HostTensor {
  data: Float32Array;
  shape: number[];
}

/** Hook name -> host copy, from one forward pass of one sequence (batch 1). */
export class HostActs {
  constructor(readonly entries: Map<string, HostTensor>, readonly ids: readonly number[], readonly logits?: HostTensor) {}

  has(name: string): boolean {
    return this.entries.has(name);
  }

  get(name: string): HostTensor {
    const t = this.entries.get(name);
    if (!t) throw new Error(`analysis: activation '${name}' was not collected (have ${[...this.entries.keys()].slice(0, 6).join(', ')}${this.entries.size > 6 ? ', …' : ''})`);
    return t;
  }
}

/** Runs `model` on one sequence and copies out the hook points matching `names` (and the logits). */
export function collect(model: CausalLM, ids: readonly number[], names: readonly string[] | RegExp): HostActs {
  return readSync(collectReads(model, ids, names));
}

/** `collect` on any backend (WebGPU included): the copies are read asynchronously. */
export function collectAsync(model: CausalLM, ids: readonly number[], names: readonly string[] | RegExp): Promise<HostActs> {
  return readAsync(collectReads(model, ids, names));
}

/** `collect` as a read step (src/tensor/read.ts), for analyses that run on every backend. */
export function* collectReads(model: CausalLM, ids: readonly number[], names: readonly string[] | RegExp): Reads<HostActs> {
  const known = new Set(model.hookPoints().map((h) => h.name));
  const want = names instanceof RegExp ? names : [...new Set(names)].filter((n) => known.has(n));
  const input = tensor([...ids], [1, ids.length], 'i32', { backend: model.backend });
  const { logits, cache } = runWithCache(model, input, { names: want });
  input.dispose();
  try {
    const entries = new Map<string, HostTensor>();
    for (const n of cache.names()) {
      const t = cache.get(n);
      entries.set(n, { data: Float32Array.from(yield t), shape: [...t.shape] });
    }
    return new HostActs(entries, ids, { data: Float32Array.from(yield logits), shape: [...logits.shape] });
  } finally {
    logits.dispose();
    cache.dispose();
  }
}

/** The hook names of every block for a per-block suffix, e.g. blockNames(model, 'hook_resid_post'). */
export function blockNames(model: CausalLM, suffix: string): string[] {
  return Array.from({ length: model.dims.nLayers }, (_, i) => blockHook(i, suffix));
}

/** A printable label for a token id: the tokenizer's piece, else '#id'. */
export function tokenLabel(id: number, tok?: Tokenizer): string {
  if (!tok) return `#${id}`;
  const piece = tok.idToToken(id);
  if (piece === undefined) return `#${id}`;
  return piece.replace(/\u2581|Ġ/g, ' ').replace(/\n|Ċ/g, '\\n');
}

/** Row `i` of a [rows, cols] matrix stored flat (batch 1 activations [1, pos, d] read as [pos, d]). */
export function row(t: HostTensor, i: number): Float32Array {
  const d = t.shape.at(-1)!;
  return t.data.subarray(i * d, (i + 1) * d);
}
