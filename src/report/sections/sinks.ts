// The inspect report's attention-sinks section (src/analysis/sinks.ts; Gu et al. 2025).
import { sinkHookNames, sinksFromActs, type SinkResult } from '../../analysis/sinks.js';
import { figureHtml } from '../figures.js';
import type { ReportSection } from '../section.js';
import { f, q, section, table } from './common.js';

export const sinksSection: ReportSection<SinkResult> = {
  id: 'sinks',
  hooks: sinkHookNames,
  compute: ({ acts, model, tokenizer }) => sinksFromActs(acts, model.dims.nLayers, { tokenizer }),
  json: (r) => ({ sinks: r ?? { heads: [], secondary: [], epsilon: 0.3, rate: 0, sink_heads: [], first_token_norm: [], window: [0, 0] } }),
  text: (r) => {
    const s = r.sinks;
    return [
      `attention sinks (mean attention to the first token; ε = ${s.epsilon}; Gu et al. 2025)`,
      `  sink heads: ${s.sink_heads.length}/${s.heads.length} (${f(100 * s.rate, 1)}%)${s.sink_heads.length ? ': ' + s.sink_heads.map((h) => `L${h.layer}H${h.head} ${f(h.score, 2)}`).join(', ') : ''}`,
      `  secondary sinks (|cos| > 0.9 with the first token, hidden states ${s.window[0]}..${s.window[1]}): ${s.secondary.length ? s.secondary.map((x) => `${x.pos}:${q(x.token)} ×${x.lifetime}`).join(', ') : 'none'}`,
    ];
  },
  htmlRank: 20,
  html: (j, fig) => {
    const s = j.sinks;
    return section('sinks', 'Attention sinks',
      `Sink score of each head: the mean attention all queries pay to the first token; heads above ε = ${s.epsilon} are sink heads (Gu et al. 2025, “When Attention Sink Emerges in Language Models”). Secondary sinks: tokens whose hidden state has |cos| &gt; 0.9 with the first token's, between the largest rise and fall of the first token's norm (“On the Existence and Behaviour of Secondary Attention Sinks”).`,
      `${figureHtml(fig.sinks)}<p><b>${s.sink_heads.length} of ${s.heads.length} heads</b> (${f(100 * s.rate, 1)}%) are sink heads${s.sink_heads.length ? ': ' + s.sink_heads.map((h) => `L${h.layer}H${h.head}`).join(', ') : ''}. First-token norm by hidden state: ${s.first_token_norm.map((x) => f(x, 2)).join(', ')}; window searched: ${s.window[0]}..${s.window[1]}.</p>` +
      (s.secondary.length ? table(['position', 'token', 'hidden states', 'lifetime', 'attention received'], s.secondary.map((x) => [x.pos, x.token, x.layers.join(','), x.lifetime, f(x.attention, 3)])) : '<p>No secondary sinks.</p>'));
  },
};
