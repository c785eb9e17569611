// The inspect report's analysis sections, in the order of the report's JSON keys and terminal
// summary (the HTML orders them by each section's htmlRank). One file per section.
import type { ReportSection } from '../section.js';
import { expertsSection } from './experts.js';
import { inductionSection } from './induction.js';
import { logitLensSection } from './logit-lens.js';
import { massiveSection } from './massive.js';
import { sinksSection } from './sinks.js';
import { sparsitySection } from './sparsity.js';
import { voidsSection } from './voids.js';

export const REPORT_SECTIONS: readonly ReportSection<any>[] = [
  massiveSection, sinksSection, sparsitySection, voidsSection, logitLensSection, inductionSection, expertsSection,
];
