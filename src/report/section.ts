// A section of the inspect report: one analysis' part of `actlab inspect`, declared in one file
// under src/report/sections/ and listed in sections/index.ts. It says which hooks it reads from the
// report's shared activation pass, how it computes its result (from those activations, or with the
// model again, synchronously and on any backend), which keys of the report's JSON it writes (with
// the values it writes when it failed), and its terminal lines and HTML section.
// Not for: the report's own parts (prompt, attention patterns, residual norm, engine check: build.ts, html.ts).
import type { HostActs } from '../analysis/acts.js';
import type { CausalLM } from '../models/model.js';
import type { Tokenizer } from '../tokenizer/tokenizer.js';
import type { BuildOptions, InspectJson, InspectReport } from './build.js';
import type { Figures } from './figures.js';

/** What a section's computation may read. */
export interface SectionInput {
  model: CausalLM;
  o: BuildOptions;
  /** Host copies of the hooks every section asked for (one forward pass). */
  acts: HostActs;
  tokenizer?: Tokenizer;
  bos: number | null;
}

export interface ReportSection<R = unknown> {
  /** Anchor of its HTML section and the key its failure is recorded under in `errors`. */
  id: string;
  /** The errors key when it differs from the id. */
  errorKey?: string;
  /** Hooks it reads from the shared pass. */
  hooks?(model: CausalLM): string[];
  /** Its result from the shared activations, or by running the model again (synchronous backends). */
  compute(x: SectionInput): R;
  /** The same on any backend (reads asynchronously); default `compute`. */
  computeAsync?(x: SectionInput): Promise<R>;
  /** Sections that run the model again are computed before the ones that only read activations. */
  device?: boolean;
  /** Its keys of the report's JSON, from its result (null when it failed). */
  json(r: R | null): Partial<InspectJson>;
  /** Its lines of the terminal summary (null: nothing to say for this report). */
  text(j: InspectJson): string[] | null;
  /** Its HTML section (null: none for this report) and where it goes among the HTML sections (ascending). */
  html(j: InspectJson, fig: Figures, r: InspectReport): string | null;
  htmlRank: number;
}
