// The inspect report's induction-heads section (src/analysis/induction.ts; Olsson et al. 2022).
import { inductionScores, inductionScoresAsync, type InductionResult } from '../../analysis/induction.js';
import { figureHtml } from '../figures.js';
import type { ReportSection } from '../section.js';
import { f, section, table } from './common.js';

export const inductionSection: ReportSection<InductionResult> = {
  id: 'induction',
  device: true,
  compute: ({ model, o, bos }) => inductionScores(model, { length: o.inductionLength, sequences: o.inductionSequences, bos }),
  computeAsync: ({ model, o, bos }) => inductionScoresAsync(model, { length: o.inductionLength, sequences: o.inductionSequences, bos }),
  json: (r) => {
    const { heads, ...summary } = r ?? { heads: [], threshold: 0.4, length: 0, sequences: [], induction_heads: [] };
    return { induction: heads, induction_summary: summary };
  },
  text: (r) => {
    const ind = r.induction_summary;
    const best = [...r.induction].sort((a, b) => b.score - a.score).slice(0, 5);
    const prev = r.induction.filter((h) => h.prev_token >= 0.5).sort((a, b) => b.prev_token - a.prev_token);
    return [
      `induction heads (prefix matching on [BOS] r r, r = ${ind.length} random tokens; Olsson et al. 2022; threshold ${ind.threshold})`,
      `  induction heads: ${ind.induction_heads.length ? ind.induction_heads.map((h) => `L${h.layer}H${h.head}`).join(', ') : 'none'}`,
      `  previous-token heads (attention to i-1 ≥ 0.5): ${prev.length ? prev.map((h) => `L${h.layer}H${h.head} ${f(h.prev_token, 2)}`).join(', ') : 'none'}`,
      `  top scores: ${best.map((h) => `L${h.layer}H${h.head} ${f(h.score, 2)} (copy ${h.copying === null ? '-' : f(h.copying, 2)}, prev ${f(h.prev_token, 2)})`).join('  ')}`,
    ];
  },
  htmlRank: 40,
  html: (j, fig) => {
    const ind = j.induction_summary;
    const best = [...j.induction].sort((a, b) => b.score - a.score).slice(0, 8);
    return section('induction', 'Induction heads',
      `Prefix-matching score: on [BOS] r r with r ${ind.length} random tokens, the attention a second-repeat token pays to the token after its earlier occurrence; copying: the share of those positions where the head's own output puts that token in its top 5 logits; previous token: attention to the position before (Olsson et al. 2022, “In-context Learning and Induction Heads”). Heads at or above ${ind.threshold} are called induction heads.`,
      `${figureHtml(fig.induction)}<p><b>Induction heads:</b> ${ind.induction_heads.length ? ind.induction_heads.map((h) => `L${h.layer}H${h.head}`).join(', ') : 'none'}.</p>` +
      table(['head', 'prefix matching', 'copying', 'previous token'], best.map((h) => [`L${h.layer}H${h.head}`, f(h.score, 3), h.copying === null ? '-' : f(h.copying, 3), f(h.prev_token, 3)])));
  },
};
