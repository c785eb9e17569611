// The inspect report's mixture-of-experts section (src/analysis/experts.ts); only for MoE models.
import { expertHookNames, expertsFromActs, type ExpertResult } from '../../analysis/experts.js';
import { figureHtml } from '../figures.js';
import type { ReportSection } from '../section.js';
import { f, section, table } from './common.js';

export const expertsSection: ReportSection<ExpertResult | null> = {
  id: 'experts',
  hooks: (model) => (model.dims.nExperts ? expertHookNames(model) : []),
  compute: ({ acts, model, tokenizer }) => expertsFromActs(acts, model.dims.nLayers, { tokenizer }),
  json: (r) => (r ? { experts: r } : {}),
  text: (r) => {
    if (!r.experts) return null;
    return [
      `experts (${r.experts.n_experts}, top ${r.experts.experts_per_token})`,
      ...r.experts.layers.map((l) => `  block ${l.layer}: load ${l.load.map((x) => f(x, 2)).join(' ')}  entropy ${f(l.normalized_entropy, 2)} of max  imbalance ${f(l.imbalance, 2)}`),
    ];
  },
  htmlRank: 80,
  html: (j, fig) => {
    if (!j.experts || !fig.experts) return null;
    const e = j.experts;
    return section('experts', 'Mixture of experts',
      'Expert load (share of token→expert assignments), router entropy (mean over tokens, as a share of log n_experts) and load imbalance (max load / mean load), as monitored in Sigma-MoE-Tiny, DynaMoE and MoTE.',
      figureHtml(fig.experts) + table(['block', 'entropy / max', 'imbalance', 'CV'], e.layers.map((l) => [l.layer, f(l.normalized_entropy, 3), f(l.imbalance, 3), f(l.cv, 3)])));
  },
};
