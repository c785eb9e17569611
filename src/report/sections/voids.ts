// The inspect report's layer-voids section (src/analysis/voids.ts; LAC, "Void in Language Models").
import { layerVoids, layerVoidsAsync, type VoidResult } from '../../analysis/voids.js';
import type { InspectJson } from '../build.js';
import { figureHtml } from '../figures.js';
import type { ReportSection } from '../section.js';
import { esc, f, section } from './common.js';

export const voidsSection: ReportSection<VoidResult> = {
  id: 'voids',
  device: true,
  compute: ({ model, o, tokenizer }) => layerVoids(model, o.ids, { tokenizer, generateTokens: o.generateTokens }),
  computeAsync: ({ model, o, tokenizer }) => layerVoidsAsync(model, o.ids, { tokenizer, generateTokens: o.generateTokens }),
  json: (r) => ({ voids: r ?? { alpha: 0.8, prompt: { tokens: [], void_rate: [], void_layers: [] }, generation: null } }),
  text: (r) => {
    const v = r.voids;
    const out = [
      `layer voids (LAC, α = ${v.alpha}; share of tokens for which each block is a void)`,
      `  prompt:     ${v.prompt.void_rate.map((x, l) => `${l}:${f(x, 2)}`).join('  ')}${v.prompt.void_layers.length ? `  → void blocks ${v.prompt.void_layers.join(',')}` : ''}`,
    ];
    if (v.generation) out.push(`  generation: ${v.generation.void_rate.map((x, l) => `${l}:${f(x, 2)}`).join('  ')}${v.generation.void_layers.length ? `  → void blocks ${v.generation.void_layers.join(',')}` : ''} (${v.generation.tokens.length} tokens)`);
    return out;
  },
  htmlRank: 70,
  html: (j, fig) => {
    const v = j.voids;
    const rates = (ph: InspectJson['voids']['prompt']) => ph.void_rate.map((x, l) => `${l}: ${f(x, 2)}`).join(', ');
    return section('voids', 'Layer voids (LAC)',
      `Per token, Δℓ = ‖hℓ‖ − ‖hℓ₋₁‖; block ℓ is a void when Δℓ &lt; α·(max Δ − min Δ over earlier blocks), α = ${v.alpha} (“Void in Language Models”). Black = void. Prompt processing and greedy generation separately.`,
      `<h3>Prompt</h3>${figureHtml(fig.voidsPrompt)}<p>Void share per block: ${rates(v.prompt)}.</p>` +
      (v.generation && fig.voidsGeneration ? `<h3>Generation (${v.generation.tokens.length} tokens: ${esc(v.generation.tokens.map((t) => t.token).join(' '))})</h3>${figureHtml(fig.voidsGeneration)}<p>Void share per block: ${rates(v.generation)}.</p>` : ''));
  },
};
