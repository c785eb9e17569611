// The inspect report's logit-lens section (src/analysis/logit-lens.ts; nostalgebraist 2020).
import { logitLensFromActs, logitLensHookNames, logitLensReads, type LogitLensResult } from '../../analysis/logit-lens.js';
import { readAsync } from '../../tensor/read.js';
import { figureHtml } from '../figures.js';
import type { ReportSection } from '../section.js';
import { esc, f, q, section, table } from './common.js';

export const logitLensSection: ReportSection<LogitLensResult> = {
  id: 'logit-lens',
  errorKey: 'logit_lens',
  hooks: logitLensHookNames,
  device: true,
  compute: ({ model, acts, tokenizer }) => logitLensFromActs(model, acts, { tokenizer }),
  computeAsync: ({ model, acts, tokenizer }) => readAsync(logitLensReads(model, acts, { tokenizer })),
  json: (r) => ({ logit_lens: r ?? { position: 0, final: { id: 0, token: '' }, layers: [], ranks: [] } }),
  text: (r) => {
    const lens = r.logit_lens;
    return [
      `logit lens at position ${lens.position} (final prediction ${q(lens.final.token)})`,
      ...lens.layers.map((l) => `  ${l.layer.padEnd(7)} rank ${String(l.rank_of_final).padStart(5)}   ${l.top.map((t) => `${q(t.token)} ${f(t.prob, 2)}`).join('  ')}`),
    ];
  },
  htmlRank: 50,
  html: (j, fig) => {
    const lens = j.logit_lens;
    return section('logit-lens', 'Logit lens',
      `The residual stream entering each block, read through the final norm and the unembedding (nostalgebraist 2020). Table: top tokens at position ${lens.position} and the rank there of the model's final prediction “${esc(lens.final.token)}”. Heatmap: that rank at every position (dark = the final prediction is already on top).`,
      table(['residual', 'rank of final', 'top tokens'], lens.layers.map((l) => [l.layer, l.rank_of_final, l.top.map((t) => `${t.token} (${f(t.prob, 2)})`).join('  ')])) + figureHtml(fig.lensRanks));
  },
};
