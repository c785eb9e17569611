// The inspect report: every analysis section (src/report/sections, one file each) run on one model
// and one prompt, gathered into one object. `json` is what `actlab inspect --json` prints (the keys the issue names);
// `attention` (every head's pattern) and the residual norms feed the HTML pictures only.
// Not for: rendering (text.ts, html.ts) or loading models (the CLI).
import { blockNames, collect, collectAsync, tokenLabel, type HostActs } from '../analysis/acts.js';
import type { ExpertResult } from '../analysis/experts.js';
import type { InductionResult } from '../analysis/induction.js';
import type { LogitLensResult } from '../analysis/logit-lens.js';
import type { MassiveEntry, MassiveResult } from '../analysis/massive.js';
import { hiddenStates, type SinkResult } from '../analysis/sinks.js';
import type { SparsityResult } from '../analysis/sparsity.js';
import { l2 } from '../analysis/stats.js';
import type { VoidResult } from '../analysis/voids.js';
import type { CausalLM, ModelDims } from '../models/model.js';
import type { Tokenizer } from '../tokenizer/tokenizer.js';
import type { ReportSection, SectionInput } from './section.js';
import { REPORT_SECTIONS } from './sections/index.js';

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

async function guardAsync<T>(errors: Record<string, string>, name: string, fn: () => Promise<T>, fallback: T): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    errors[name] = (e as Error).message;
    return fallback;
  }
}

/** Sections that run the model again first, then the ones that only read the shared activations. */
const computeOrder = (): ReportSection[] => [...REPORT_SECTIONS.filter((s) => s.device), ...REPORT_SECTIONS.filter((s) => !s.device)];
const errorKey = (s: ReportSection) => s.errorKey ?? s.id;

function sectionInput(model: CausalLM, o: BuildOptions, acts: HostActs): SectionInput {
  const tok = o.tokenizer;
  return { model, o, acts, tokenizer: tok, bos: o.bos !== undefined ? o.bos : tok ? tok.bosId : null };
}

export function buildReport(model: CausalLM, o: BuildOptions): InspectReport {
  const errors: Record<string, string> = {};
  const x = sectionInput(model, o, collect(model, o.ids, reportHookNames(model)));
  const results = new Map<ReportSection, unknown>();
  for (const s of computeOrder()) results.set(s, guard(errors, errorKey(s), () => s.compute(x), null));
  return assembleReport(model, o, x.acts, results, errors);
}

/** `buildReport` on any backend (WebGPU included): every activation is read asynchronously. */
export async function buildReportAsync(model: CausalLM, o: BuildOptions): Promise<InspectReport> {
  const errors: Record<string, string> = {};
  const x = sectionInput(model, o, await collectAsync(model, o.ids, reportHookNames(model)));
  const results = new Map<ReportSection, unknown>();
  for (const s of computeOrder()) results.set(s, await guardAsync(errors, errorKey(s), async () => (s.computeAsync ? s.computeAsync(x) : s.compute(x)), null));
  return assembleReport(model, o, x.acts, results, errors);
}

function reportHookNames(model: CausalLM): string[] {
  return REPORT_SECTIONS.flatMap((s) => s.hooks?.(model) ?? []);
}

/** The report from the sections' results and the shared host activations. */
function assembleReport(model: CausalLM, o: BuildOptions, acts: HostActs, results: Map<ReportSection, unknown>, errors: Record<string, string>): InspectReport {
  const L = model.dims.nLayers;
  const tok = o.tokenizer;
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
  const json = {
    model: { source: o.source, dims: { ...model.dims }, ...(o.warning ? { warning: o.warning } : {}) },
    prompt: { ...(o.text !== undefined ? { text: o.text } : {}), ids: [...o.ids], tokens: o.ids.map((id) => tokenLabel(id, tok)) },
    ...Object.assign({}, ...REPORT_SECTIONS.map((s) => s.json((results.get(s) ?? null) as never))),
    residual_norm: residualNorm,
    ...(Object.keys(errors).length ? { errors } : {}),
  } as InspectJson;
  return { json, attention };
}
