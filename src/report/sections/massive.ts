// The inspect report's massive-activations section (src/analysis/massive.ts; Sun et al. 2024).
import { massiveFromActs, massiveHookNames, type MassiveResult } from '../../analysis/massive.js';
import { figureHtml } from '../figures.js';
import type { ReportSection } from '../section.js';
import { esc, f, q, ratio, section, table } from './common.js';

export const massiveSection: ReportSection<MassiveResult> = {
  id: 'massive',
  hooks: massiveHookNames,
  compute: ({ acts, model, tokenizer }) => massiveFromActs(acts, model.dims.nLayers, { tokenizer }),
  json: (r) => {
    const { entries, ...massiveSummary } = r ?? { entries: [], abs_threshold: 100, ratio_threshold: 1000, dims: [], max_abs: [], top: [] };
    return { massive: entries, massive_summary: massiveSummary };
  },
  text: (r) => {
    const out: string[] = [];
    const ms = r.massive_summary;
    out.push(`massive activations (|a| > ${ms.abs_threshold} and ≥ ${ms.ratio_threshold}× the median |a| of the hidden state; Sun et al. 2024)`);
    if (!r.massive.length) out.push('  none');
    for (const dm of ms.dims) out.push(`  dim ${dm.dim}: up to ${f(dm.max_abs, 1)} in blocks ${dm.layers.join(',')} on tokens ${dm.positions.map((p, i) => `${p}:${q(dm.tokens[i]!)}`).join(' ')}`);
    const top = ms.top.reduce((a, b) => (Math.abs(b.value) > Math.abs(a.value) ? b : a), ms.top[0] ?? { layer: 0, pos: 0, token: '', dim: 0, value: 0, ratio_to_median: 0 });
    out.push(`  largest entry: ${f(top.value, 2)} (block ${top.layer}, dim ${top.dim}, token ${top.pos} ${q(top.token)}, ${ratio(top.ratio_to_median)}× median)`);
    return out;
  },
  htmlRank: 10,
  html: (j, fig) => {
    const ms = j.massive_summary;
    return section('massive', 'Massive activations',
      `Entries of the residual stream after each block with |a| &gt; ${ms.abs_threshold} and at least ${ms.ratio_threshold}× the median |a| of their hidden state (Sun et al. 2024, “Massive Activations in Large Language Models”). The heatmap shows, per block and dimension, the largest |a| over the prompt's tokens.`,
      `${figureHtml(fig.massive)}<p><b>${j.massive.length ? `${j.massive.length} massive entries` : 'No massive activations'}</b>${ms.dims.length ? ': ' + ms.dims.map((x) => `dimension ${x.dim} (up to ${f(x.max_abs, 1)}, blocks ${x.layers.join(', ')}, tokens ${x.positions.map((p, i) => `${p} “${esc(x.tokens[i])}”`).join(', ')})`).join('; ') : ''}.</p>` +
      table(['block', 'largest |a|', 'dim', 'token', '× median'], ms.top.map((t) => [t.layer, f(t.value, 2), t.dim, `${t.pos} ${t.token}`, t.ratio_to_median >= 1e6 ? t.ratio_to_median.toExponential(1) : f(t.ratio_to_median, 1)])));
  },
};
