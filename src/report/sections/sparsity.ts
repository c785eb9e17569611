// The inspect report's MLP activation-sparsity section, with the residual-norm figure (src/analysis/sparsity.ts).
import { sparsityFromActs, sparsityHookNames, type SparsityResult } from '../../analysis/sparsity.js';
import { figureHtml } from '../figures.js';
import type { ReportSection } from '../section.js';
import { f, section } from './common.js';

export const sparsitySection: ReportSection<SparsityResult> = {
  id: 'sparsity',
  hooks: sparsityHookNames,
  compute: ({ acts, model }) => sparsityFromActs(acts, model.dims.nLayers),
  json: (r) => ({ sparsity: r ?? { mode: 'eps', epsilon: 0.01, layers: [], per_token: [] } }),
  text: (r) => {
    const sp = r.sparsity;
    const withMlp = sp.layers.filter((l) => Number.isFinite(l.active));
    return [
      `MLP activation sparsity (Lazy Neuron; active = ${sp.mode === 'zero' ? 'non-zero' : `|a| ≥ ${sp.epsilon}`})`,
      withMlp.length ? `  active share per block: ${withMlp.map((l) => `${l.layer}:${f(l.active, 3)}`).join('  ')}` : '  no MLP (attention-only model)',
    ];
  },
  htmlRank: 60,
  html: (j, fig) => section('sparsity', 'Activation sparsity and residual norm',
    `Share of active MLP units per block (${j.sparsity.mode === 'zero' ? 'non-zero, the ReLU definition' : `|a| ≥ ${j.sparsity.epsilon}, for smooth activations`}; Li et al. 2023, “The Lazy Neuron Phenomenon”), and the mean norm of the residual stream after each block.`,
    `<div class="row">${figureHtml(fig.sparsity)}${figureHtml(fig.residualNorm)}</div>`),
};
