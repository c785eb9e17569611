// The terminal summary of an inspect report: one short block per analysis, the findings first.
import type { InspectJson } from './build.js';

const f = (x: number, d = 3) => (Number.isFinite(x) ? x.toFixed(d) : String(x));
const q = (s: string) => JSON.stringify(s);
const ratio = (x: number) => (x >= 1e6 ? x.toExponential(1) : x.toFixed(1));

export function reportText(r: InspectJson): string {
  const out: string[] = [];
  const line = (s = '') => out.push(s);
  const d = r.model.dims;
  if (r.model.warning) { line(`!!! ${r.model.warning} !!!`); line(); }
  line(`actlab inspect — ${r.model.source}`);
  line(`  ${d.arch}: ${d.nLayers} blocks, d_model ${d.dModel}, ${d.nHeads} heads × ${d.dHead}, d_mlp ${d.dMlp}, vocab ${d.vocabSize}${d.nExperts ? `, ${d.nExperts} experts (top ${d.expertsPerToken})` : ''}`);
  line(`  prompt: ${r.prompt.ids.length} tokens${r.prompt.text !== undefined ? ` ${q(r.prompt.text.length > 70 ? r.prompt.text.slice(0, 70) + '…' : r.prompt.text)}` : ''}`);
  line();
  const ms = r.massive_summary;
  line(`massive activations (|a| > ${ms.abs_threshold} and ≥ ${ms.ratio_threshold}× the median |a| of the hidden state; Sun et al. 2024)`);
  if (!r.massive.length) line('  none');
  for (const dm of ms.dims) line(`  dim ${dm.dim}: up to ${f(dm.max_abs, 1)} in blocks ${dm.layers.join(',')} on tokens ${dm.positions.map((p, i) => `${p}:${q(dm.tokens[i]!)}`).join(' ')}`);
  const top = ms.top.reduce((a, b) => (Math.abs(b.value) > Math.abs(a.value) ? b : a), ms.top[0] ?? { layer: 0, pos: 0, token: '', dim: 0, value: 0, ratio_to_median: 0 });
  line(`  largest entry: ${f(top.value, 2)} (block ${top.layer}, dim ${top.dim}, token ${top.pos} ${q(top.token)}, ${ratio(top.ratio_to_median)}× median)`);
  line();
  const s = r.sinks;
  line(`attention sinks (mean attention to the first token; ε = ${s.epsilon}; Gu et al. 2025)`);
  line(`  sink heads: ${s.sink_heads.length}/${s.heads.length} (${f(100 * s.rate, 1)}%)${s.sink_heads.length ? ': ' + s.sink_heads.map((h) => `L${h.layer}H${h.head} ${f(h.score, 2)}`).join(', ') : ''}`);
  line(`  secondary sinks (|cos| > 0.9 with the first token, hidden states ${s.window[0]}..${s.window[1]}): ${s.secondary.length ? s.secondary.map((x) => `${x.pos}:${q(x.token)} ×${x.lifetime}`).join(', ') : 'none'}`);
  line();
  const sp = r.sparsity;
  line(`MLP activation sparsity (Lazy Neuron; active = ${sp.mode === 'zero' ? 'non-zero' : `|a| ≥ ${sp.epsilon}`})`);
  const withMlp = sp.layers.filter((l) => Number.isFinite(l.active));
  line(withMlp.length ? `  active share per block: ${withMlp.map((l) => `${l.layer}:${f(l.active, 3)}`).join('  ')}` : '  no MLP (attention-only model)');
  line();
  const v = r.voids;
  line(`layer voids (LAC, α = ${v.alpha}; share of tokens for which each block is a void)`);
  line(`  prompt:     ${v.prompt.void_rate.map((x, l) => `${l}:${f(x, 2)}`).join('  ')}${v.prompt.void_layers.length ? `  → void blocks ${v.prompt.void_layers.join(',')}` : ''}`);
  if (v.generation) line(`  generation: ${v.generation.void_rate.map((x, l) => `${l}:${f(x, 2)}`).join('  ')}${v.generation.void_layers.length ? `  → void blocks ${v.generation.void_layers.join(',')}` : ''} (${v.generation.tokens.length} tokens)`);
  line();
  const lens = r.logit_lens;
  line(`logit lens at position ${lens.position} (final prediction ${q(lens.final.token)})`);
  for (const l of lens.layers) line(`  ${l.layer.padEnd(7)} rank ${String(l.rank_of_final).padStart(5)}   ${l.top.map((t) => `${q(t.token)} ${f(t.prob, 2)}`).join('  ')}`);
  line();
  const ind = r.induction_summary;
  const best = [...r.induction].sort((a, b) => b.score - a.score).slice(0, 5);
  line(`induction heads (prefix matching on [BOS] r r, r = ${ind.length} random tokens; Olsson et al. 2022; threshold ${ind.threshold})`);
  line(`  induction heads: ${ind.induction_heads.length ? ind.induction_heads.map((h) => `L${h.layer}H${h.head}`).join(', ') : 'none'}`);
  const prev = r.induction.filter((h) => h.prev_token >= 0.5).sort((a, b) => b.prev_token - a.prev_token);
  line(`  previous-token heads (attention to i-1 ≥ 0.5): ${prev.length ? prev.map((h) => `L${h.layer}H${h.head} ${f(h.prev_token, 2)}`).join(', ') : 'none'}`);
  line(`  top scores: ${best.map((h) => `L${h.layer}H${h.head} ${f(h.score, 2)} (copy ${h.copying === null ? '-' : f(h.copying, 2)}, prev ${f(h.prev_token, 2)})`).join('  ')}`);
  if (r.experts) {
    line();
    line(`experts (${r.experts.n_experts}, top ${r.experts.experts_per_token})`);
    for (const l of r.experts.layers) line(`  block ${l.layer}: load ${l.load.map((x) => f(x, 2)).join(' ')}  entropy ${f(l.normalized_entropy, 2)} of max  imbalance ${f(l.imbalance, 2)}`);
  }
  if (r.errors) { line(); for (const [k, e] of Object.entries(r.errors)) line(`section ${k} failed: ${e}`); }
  return out.join('\n');
}
