// The inspect report: every analysis of src/analysis run on one model and one prompt, gathered
// into one object. `json` is what `actlab inspect --json` prints (the keys the issue names);
// `attention` (every head's pattern) and the residual norms feed the HTML pictures only.
// Not for: rendering (text.ts, html.ts) or loading models (the CLI).
import { collect, collectAsync, tokenLabel, type HostActs } from '../analysis/acts.js';
import { expertHookNames, expertsFromActs, type ExpertResult } from '../analysis/experts.js';
import { inductionScores, inductionScoresAsync, type InductionResult } from '../analysis/induction.js';
import { logitLensFromActs, logitLensHookNames, logitLensReads, type LogitLensResult } from '../analysis/logit-lens.js';
import { readAsync } from '../tensor/read.js';
import { massiveFromActs, massiveHookNames, type MassiveEntry, type MassiveResult } from '../analysis/massive.js';
import { hiddenStates, sinkHookNames, sinksFromActs, type SinkResult } from '../analysis/sinks.js';
import { sparsityFromActs, sparsityHookNames, type SparsityResult } from '../analysis/sparsity.js';
import { l2 } from '../analysis/stats.js';
import { layerVoids, layerVoidsAsync, type VoidResult } from '../analysis/voids.js';
import { blockNames } from '../analysis/acts.js';
import type { CausalLM, ModelDims } from '../models/model.js';
import type { Tokenizer } from '../tokenizer/tokenizer.js';

export interface ReportModel {
  /** What was loaded (a path, a hub id, or a description of the built-in model). */
  source: string;
  dims: ModelDims;
  /** Set when the report runs on a built-in stand-in instead of a trained model: say so loudly. */
  warning?: string;
}

export interface InspectJson {
  model: ReportModel;
  prompt: { text?: string; ids: number[]; tokens: string[] };
  massive: MassiveEntry[];
  massive_summary: Omit<MassiveResult, 'entries'>;
  sinks: Pick<SinkResult, 'heads' | 'secondary'> & Omit<SinkResult, 'heads' | 'secondary'>;
  sparsity: SparsityResult;
  voids: VoidResult;
  logit_lens: LogitLensResult;
  induction: InductionResult['heads'];
  induction_summary: Omit<InductionResult, 'heads'>;
  experts?: ExpertResult;
  /** Mean residual norm per hidden state (0 = embedding, l = after block l-1). */
  residual_norm: number[];
  /** Sections that failed, with the error (the others still ran). */
  errors?: Record<string, string>;
  engine?: unknown;
  /** Weights in memory beside the file (resident_bytes, file_bytes, quantized_matrices). */
  memory?: Record<string, number>;
}

export interface InspectReport {
  json: InspectJson;
  /** Per head: its attention pattern [query][key] on the prompt. */
  attention: { layer: number; head: number; pattern: Float32Array; size: number }[];
}

export interface BuildOptions {
  ids: number[];
  text?: string;
  tokenizer?: Tokenizer;
  source: string;
  warning?: string;
  /** Greedy tokens for the generation phase of the void analysis (default 16). */
  generateTokens?: number;
  /** Induction: random segment length and sequences (defaults of inductionScores). */
  inductionLength?: number;
  inductionSequences?: number;
  bos?: number | null;
}

function guard<T>(errors: Record<string, string>, name: string, fn: () => T, fallback: T): T {
  try {
    return fn();
  } catch (e) {
    errors[name] = (e as Error).message;
    return fallback;
  }
}

export function buildReport(model: CausalLM, o: BuildOptions): InspectReport {
  const tok = o.tokenizer;
  const errors: Record<string, string> = {};
  const acts = collect(model, o.ids, reportHookNames(model));
  const lens = guard(errors, 'logit_lens', () => logitLensFromActs(model, acts, { tokenizer: tok }), null);
  const voids = guard(errors, 'voids', () => layerVoids(model, o.ids, { tokenizer: tok, generateTokens: o.generateTokens }), null);
  const bos = o.bos !== undefined ? o.bos : tok ? tok.bosId : null;
  const induction = guard(errors, 'induction', () => inductionScores(model, { length: o.inductionLength, sequences: o.inductionSequences, bos }), null);
  return assembleReport(model, o, acts, { lens, voids, induction }, errors);
}

/** `buildReport` on any backend (WebGPU included): every activation is read asynchronously. */
export async function buildReportAsync(model: CausalLM, o: BuildOptions): Promise<InspectReport> {
  const tok = o.tokenizer;
  const errors: Record<string, string> = {};
  const acts = await collectAsync(model, o.ids, reportHookNames(model));
  const lens = await guardAsync(errors, 'logit_lens', () => readAsync(logitLensReads(model, acts, { tokenizer: tok })), null);
  const voids = await guardAsync(errors, 'voids', () => layerVoidsAsync(model, o.ids, { tokenizer: tok, generateTokens: o.generateTokens }), null);
  const bos = o.bos !== undefined ? o.bos : tok ? tok.bosId : null;
  const induction = await guardAsync(errors, 'induction', () => inductionScoresAsync(model, { length: o.inductionLength, sequences: o.inductionSequences, bos }), null);
  return assembleReport(model, o, acts, { lens, voids, induction }, errors);
}

async function guardAsync<T>(errors: Record<string, string>, name: string, fn: () => Promise<T>, fallback: T): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    errors[name] = (e as Error).message;
    return fallback;
  }
}

function reportHookNames(model: CausalLM): string[] {
  return [
    ...massiveHookNames(model), ...sinkHookNames(model), ...sparsityHookNames(model), ...logitLensHookNames(model),
    ...(model.dims.nExperts ? expertHookNames(model) : []),
  ];
}

interface DeviceParts {
  lens: LogitLensResult | null;
  voids: VoidResult | null;
  induction: InductionResult | null;
}

/** The report from the host activations and the parts that needed the device again. */
function assembleReport(model: CausalLM, o: BuildOptions, acts: HostActs, parts: DeviceParts, errors: Record<string, string>): InspectReport {
  const L = model.dims.nLayers;
  const tok = o.tokenizer;
  const { lens, voids, induction } = parts;
  const massive = guard(errors, 'massive', () => massiveFromActs(acts, L, { tokenizer: tok }), null);
  const sinks = guard(errors, 'sinks', () => sinksFromActs(acts, L, { tokenizer: tok }), null);
  const sparsity = guard(errors, 'sparsity', () => sparsityFromActs(acts, L), null);
  const experts = guard(errors, 'experts', () => expertsFromActs(acts, L, { tokenizer: tok }), null);
  const states = hiddenStates(acts, L);
  const T = o.ids.length;
  const residualNorm = states.map((s) => {
    const d = s.shape[2]!;
    let sum = 0;
    for (let t = 0; t < T; t++) sum += l2(s.data.subarray(t * d, (t + 1) * d));
    return sum / T;
  });
  const attention: InspectReport['attention'] = [];
  blockNames(model, 'attn.hook_pattern').forEach((n, layer) => {
    const p = acts.get(n); // [1, head, query, key]
    const H = p.shape[1]!;
    for (let h = 0; h < H; h++) attention.push({ layer, head: h, size: T, pattern: p.data.slice(h * T * T, (h + 1) * T * T) });
  });
  const { entries, ...massiveSummary } = massive ?? { entries: [], abs_threshold: 100, ratio_threshold: 1000, dims: [], max_abs: [], top: [] };
  const { heads: indHeads, ...indSummary } = induction ?? { heads: [], threshold: 0.4, length: 0, sequences: [], induction_heads: [] };
  const json: InspectJson = {
    model: { source: o.source, dims: { ...model.dims }, ...(o.warning ? { warning: o.warning } : {}) },
    prompt: { ...(o.text !== undefined ? { text: o.text } : {}), ids: [...o.ids], tokens: o.ids.map((id) => tokenLabel(id, tok)) },
    massive: entries,
    massive_summary: massiveSummary,
    sinks: sinks ?? { heads: [], secondary: [], epsilon: 0.3, rate: 0, sink_heads: [], first_token_norm: [], window: [0, 0] },
    sparsity: sparsity ?? { mode: 'eps', epsilon: 0.01, layers: [], per_token: [] },
    voids: voids ?? { alpha: 0.8, prompt: { tokens: [], void_rate: [], void_layers: [] }, generation: null },
    logit_lens: lens ?? { position: 0, final: { id: 0, token: '' }, layers: [], ranks: [] },
    induction: indHeads,
    induction_summary: indSummary,
    ...(experts ? { experts } : {}),
    residual_norm: residualNorm,
    ...(Object.keys(errors).length ? { errors } : {}),
  };
  return { json, attention };
}
