// Massive activations (Sun, Chen, Kolter & Liu 2024, "Massive Activations in Large Language
// Models", §2): entries of a hidden state (the residual stream after a block) whose magnitude is
// above 100 and about 1000× the median magnitude of that hidden state. Both thresholds are
// options. Reported per layer, dimension and token, with which tokens carry them; and across a
// series of checkpoints (as "Hidden Dynamics of Massive Activations in Transformer Training"
// follows their emergence during training).
// Not for: attention sinks (sinks.ts), although the two usually come together.
import type { CausalLM } from '../models/model.js';
import type { Tokenizer } from '../tokenizer/tokenizer.js';
import { blockNames, collect, row, tokenLabel, type HostActs } from './acts.js';
import { median } from './stats.js';
import { blockHook } from '../models/hook-point.js';
import type { Analysis, AnalysisEnv } from './registry.js';
import { collectAsync } from './acts.js';

export interface MassiveOptions {
  /** |a| must exceed this (default 100, Sun et al.). */
  absThreshold?: number;
  /** |a| must be at least this multiple of the median |a| of its hidden state (default 1000). */
  ratioThreshold?: number;
  tokenizer?: Tokenizer;
}

export interface MassiveEntry {
  /** Block whose output (hook_resid_post) holds the entry. */
  layer: number;
  pos: number;
  token: string;
  token_id: number;
  dim: number;
  value: number;
  ratio_to_median: number;
}

export interface MassiveResult {
  abs_threshold: number;
  ratio_threshold: number;
  entries: MassiveEntry[];
  /** The dimensions that carry massive entries, with the layers and token positions where they do. */
  dims: { dim: number; layers: number[]; positions: number[]; tokens: string[]; max_abs: number }[];
  /** max over tokens of |a| per [layer][dim] (the heatmap). */
  max_abs: number[][];
  /** Per layer: the largest |a| and its ratio to its hidden state's median (how close to "massive"). */
  top: { layer: number; pos: number; token: string; dim: number; value: number; ratio_to_median: number }[];
}

const NAMES = (m: CausalLM) => blockNames(m, 'hook_resid_post');

/** Massive activations of `model` on one sequence. */
export function massiveActivations(model: CausalLM, ids: readonly number[], o: MassiveOptions = {}): MassiveResult {
  return massiveFromActs(collect(model, ids, NAMES(model)), model.dims.nLayers, o);
}

export function massiveHookNames(model: CausalLM): string[] {
  return NAMES(model);
}

/** The same, from activations already collected (needs blocks.*.hook_resid_post). */
export function massiveFromActs(acts: HostActs, nLayers: number, o: MassiveOptions = {}): MassiveResult {
  const absT = o.absThreshold ?? 100;
  const ratioT = o.ratioThreshold ?? 1000;
  const entries: MassiveEntry[] = [];
  const maxAbs: number[][] = [];
  const top: MassiveResult['top'] = [];
  for (let l = 0; l < nLayers; l++) {
    const h = acts.get(blockHook(l, 'hook_resid_post')); // [1, pos, d_model]
    const [, T, d] = h.shape as [number, number, number];
    const m = new Array<number>(d).fill(0);
    let best = { layer: l, pos: 0, token: '', dim: 0, value: 0, ratio_to_median: 0 };
    for (let t = 0; t < T; t++) {
      const v = row(h, t);
      const abs = Float64Array.from(v, Math.abs);
      const med = Math.max(median(abs), 1e-12);
      for (let j = 0; j < d; j++) {
        const a = abs[j]!;
        if (a > m[j]!) m[j] = a;
        const ratio = a / med;
        const id = acts.ids[t]!;
        if (a > Math.abs(best.value)) best = { layer: l, pos: t, token: tokenLabel(id, o.tokenizer), dim: j, value: v[j]!, ratio_to_median: ratio };
        if (a > absT && ratio >= ratioT) {
          entries.push({ layer: l, pos: t, token: tokenLabel(id, o.tokenizer), token_id: id, dim: j, value: v[j]!, ratio_to_median: ratio });
        }
      }
    }
    maxAbs.push(m);
    top.push(best);
  }
  const byDim = new Map<number, MassiveEntry[]>();
  for (const e of entries) byDim.set(e.dim, [...(byDim.get(e.dim) ?? []), e]);
  const dims = [...byDim.entries()].sort((a, b) => a[0] - b[0]).map(([dim, es]) => {
    const positions = [...new Set(es.map((e) => e.pos))].sort((a, b) => a - b);
    return {
      dim, layers: [...new Set(es.map((e) => e.layer))].sort((a, b) => a - b), positions,
      tokens: positions.map((p) => es.find((e) => e.pos === p)!.token), max_abs: Math.max(...es.map((e) => Math.abs(e.value))),
    };
  });
  return { abs_threshold: absT, ratio_threshold: ratioT, entries, dims, max_abs: maxAbs, top };
}

export interface CheckpointMassive {
  label: string;
  count: number;
  dims: MassiveResult['dims'];
  /** The first block whose output holds a massive entry (null: none). */
  first_layer: number | null;
  max_abs: number;
  max_ratio: number;
}

/**
 * Massive activations across a series of checkpoints on the same input: when they appear, in
 * which dimensions, and how large they grow.
 */
export function massiveAcrossCheckpoints(checkpoints: readonly { label: string; model: CausalLM }[], ids: readonly number[], o: MassiveOptions = {}): CheckpointMassive[] {
  return checkpoints.map(({ label, model }) => checkpointSummary(label, massiveActivations(model, ids, o)));
}

/** One checkpoint's line of `massiveAcrossCheckpoints`. */
export function checkpointSummary(label: string, r: MassiveResult): CheckpointMassive {
  return {
    label, count: r.entries.length, dims: r.dims,
    first_layer: r.entries.length ? Math.min(...r.entries.map((e) => e.layer)) : null,
    max_abs: Math.max(0, ...r.top.map((t) => Math.abs(t.value))),
    max_ratio: Math.max(0, ...r.top.map((t) => t.ratio_to_median)),
  };
}

interface MassiveArgs { checkpoint?: string[]; absThreshold?: number; ratioThreshold?: number }

/**
 * Massive activations over a series of checkpoints (`--checkpoint M ...`, no --model): the prompt's
 * ids come from the first; one checkpoint is loaded at a time and its activations read
 * asynchronously, so every backend (WebGPU included) runs it.
 */
async function checkpointsOf(env: AnalysisEnv, paths: readonly string[]): Promise<{ checkpoints: CheckpointMassive[] }> {
  const a = env.args as MassiveArgs;
  const out: CheckpointMassive[] = [];
  let ids: number[] = [];
  let tokenizer;
  for (const [i, path] of paths.entries()) {
    const m = await env.load(path);
    try {
      if (i === 0) { ids = env.promptIds(m).ids; tokenizer = m.tokenizer; }
      env.checkContext(m, ids.length, `the prompt (checkpoint ${path})`);
      const acts = await collectAsync(m.model, ids, massiveHookNames(m.model));
      out.push(checkpointSummary(path, massiveFromActs(acts, m.model.dims.nLayers, { absThreshold: a.absThreshold, ratioThreshold: a.ratioThreshold, tokenizer })));
    } finally {
      m.model.dispose();
    }
  }
  return { checkpoints: out };
}

export const massiveAnalysis: Analysis = {
  name: 'massive',
  options: [
    { flags: '--checkpoint <M...>', help: 'a series of checkpoints (instead of --model)', type: 'list' },
    { flags: '--abs-threshold <x>', help: '|a| above this (100)', type: 'number', min: 0 },
    { flags: '--ratio-threshold <x>', help: 'and this multiple of the median |a| (1000)', type: 'number', min: 0 },
  ],
  input: 'prompt',
  override: (env) => {
    const cps = (env.args as MassiveArgs).checkpoint;
    return cps?.length ? checkpointsOf(env, cps) : undefined;
  },
  run: async ({ m, ids }, env) => {
    const a = env.args as MassiveArgs;
    return massiveFromActs(await collectAsync(m.model, ids, massiveHookNames(m.model)), m.model.dims.nLayers, { absThreshold: a.absThreshold, ratioThreshold: a.ratioThreshold, tokenizer: m.tokenizer });
  },
};
