// The self-contained HTML report of `actlab inspect --html`: inline CSS, inline SVG figures and
// PNG data URIs, no script and no network. One section per analysis, each saying what it measures
// and after which paper, with the picture first and the numbers under it.
import type { InspectJson, InspectReport } from './build.js';
import { figureHtml, type Figures } from './figures.js';

const esc = (s: unknown) => String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
const f = (x: number, d = 3) => (Number.isFinite(x) ? x.toFixed(d) : String(x));

function table(head: string[], rows: (string | number)[][]): string {
  return `<table><thead><tr>${head.map((h) => `<th>${esc(h)}</th>`).join('')}</tr></thead><tbody>${rows.map((r) => `<tr>${r.map((c) => `<td>${esc(c)}</td>`).join('')}</tr>`).join('')}</tbody></table>`;
}

function section(id: string, title: string, intro: string, body: string): string {
  return `<section id="${id}"><h2>${esc(title)}</h2><p class="intro">${intro}</p>${body}</section>`;
}

const CSS = `body{font:14px/1.45 system-ui,sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;color:#222}
h1{font-size:1.6em;margin-bottom:.2em}h2{border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:2em}
.warn{background:#fff3cd;border:2px solid #e0a800;padding:.8em;font-weight:600}
.intro{color:#555;max-width:60em}table{border-collapse:collapse;margin:.6em 0;font-size:13px}
td,th{border:1px solid #ddd;padding:2px 8px;text-align:left}th{background:#f4f4f4}
.row{display:flex;flex-wrap:wrap;gap:24px;align-items:flex-start}
.heads{display:grid;gap:10px;grid-template-columns:repeat(auto-fill,minmax(150px,1fr))}
.heads figure{margin:0}.heads img{width:100%;image-rendering:pixelated;border:1px solid #ccc}
.heads figcaption{font-size:12px;color:#444}.tok{font-family:ui-monospace,monospace;background:#f4f4f4;padding:0 3px;margin:1px;display:inline-block}
nav a{margin-right:1em}code{background:#f4f4f4;padding:0 3px}`;

export function renderHtml(r: InspectReport, fig: Figures, o: { title?: string } = {}): string {
  const j = r.json;
  const d = j.model.dims;
  const toks = j.prompt.tokens.map((t, i) => `<span class="tok" title="id ${j.prompt.ids[i]}">${i}:${esc(t)}</span>`).join('');
  const parts: string[] = [];
  parts.push(`<h1>${esc(o.title ?? 'actlab inspect')}</h1>`);
  if (j.model.warning) parts.push(`<p class="warn">${esc(j.model.warning)}</p>`);
  parts.push(`<p><b>Model</b> ${esc(j.model.source)} — ${esc(d.arch)}: ${d.nLayers} blocks, d_model ${d.dModel}, ${d.nHeads} heads × ${d.dHead}, d_mlp ${d.dMlp}, vocabulary ${d.vocabSize}${d.nExperts ? `, ${d.nExperts} experts (top ${d.expertsPerToken})` : ''}.</p>`);
  parts.push(`<p><b>Prompt</b> (${j.prompt.ids.length} tokens)${j.prompt.text !== undefined ? `: “${esc(j.prompt.text)}”` : ''}<br>${toks}</p>`);
  const nav = ['massive', 'sinks', 'attention', 'induction', 'logit-lens', 'sparsity', 'voids', ...(j.experts ? ['experts'] : []), ...(j.engine ? ['engine'] : [])];
  parts.push(`<nav>${nav.map((n) => `<a href="#${n}">${n}</a>`).join('')}</nav>`);
  if (j.errors) parts.push(`<p class="warn">Sections that failed: ${Object.entries(j.errors).map(([k, e]) => `${esc(k)}: ${esc(e)}`).join('; ')}</p>`);

  const ms = j.massive_summary;
  parts.push(section('massive', 'Massive activations',
    `Entries of the residual stream after each block with |a| &gt; ${ms.abs_threshold} and at least ${ms.ratio_threshold}× the median |a| of their hidden state (Sun et al. 2024, “Massive Activations in Large Language Models”). The heatmap shows, per block and dimension, the largest |a| over the prompt's tokens.`,
    `${figureHtml(fig.massive)}<p><b>${j.massive.length ? `${j.massive.length} massive entries` : 'No massive activations'}</b>${ms.dims.length ? ': ' + ms.dims.map((x) => `dimension ${x.dim} (up to ${f(x.max_abs, 1)}, blocks ${x.layers.join(', ')}, tokens ${x.positions.map((p, i) => `${p} “${esc(x.tokens[i])}”`).join(', ')})`).join('; ') : ''}.</p>` +
    table(['block', 'largest |a|', 'dim', 'token', '× median'], ms.top.map((t) => [t.layer, f(t.value, 2), t.dim, `${t.pos} ${t.token}`, t.ratio_to_median >= 1e6 ? t.ratio_to_median.toExponential(1) : f(t.ratio_to_median, 1)]))));

  const s = j.sinks;
  parts.push(section('sinks', 'Attention sinks',
    `Sink score of each head: the mean attention all queries pay to the first token; heads above ε = ${s.epsilon} are sink heads (Gu et al. 2025, “When Attention Sink Emerges in Language Models”). Secondary sinks: tokens whose hidden state has |cos| &gt; 0.9 with the first token's, between the largest rise and fall of the first token's norm (“On the Existence and Behaviour of Secondary Attention Sinks”).`,
    `${figureHtml(fig.sinks)}<p><b>${s.sink_heads.length} of ${s.heads.length} heads</b> (${f(100 * s.rate, 1)}%) are sink heads${s.sink_heads.length ? ': ' + s.sink_heads.map((h) => `L${h.layer}H${h.head}`).join(', ') : ''}. First-token norm by hidden state: ${s.first_token_norm.map((x) => f(x, 2)).join(', ')}; window searched: ${s.window[0]}..${s.window[1]}.</p>` +
    (s.secondary.length ? table(['position', 'token', 'hidden states', 'lifetime', 'attention received'], s.secondary.map((x) => [x.pos, x.token, x.layers.join(','), x.lifetime, f(x.attention, 3)])) : '<p>No secondary sinks.</p>')));

  parts.push(section('attention', 'Attention patterns',
    'Every head on the prompt: row = query position, column = key position (causal, so the upper triangle is empty); brighter = more attention (viridis, 0 to 1).',
    `<div class="heads">${fig.attention.map((a) => `<figure><img alt="L${a.layer}H${a.head}" src="${a.uri}"><figcaption>L${a.layer}H${a.head} · sink ${f(s.heads.find((h) => h.layer === a.layer && h.head === a.head)?.score ?? NaN, 2)}</figcaption></figure>`).join('')}</div>`));

  const ind = j.induction_summary;
  const best = [...j.induction].sort((a, b) => b.score - a.score).slice(0, 8);
  parts.push(section('induction', 'Induction heads',
    `Prefix-matching score: on [BOS] r r with r ${ind.length} random tokens, the attention a second-repeat token pays to the token after its earlier occurrence; copying: the share of those positions where the head's own output puts that token in its top 5 logits; previous token: attention to the position before (Olsson et al. 2022, “In-context Learning and Induction Heads”). Heads at or above ${ind.threshold} are called induction heads.`,
    `${figureHtml(fig.induction)}<p><b>Induction heads:</b> ${ind.induction_heads.length ? ind.induction_heads.map((h) => `L${h.layer}H${h.head}`).join(', ') : 'none'}.</p>` +
    table(['head', 'prefix matching', 'copying', 'previous token'], best.map((h) => [`L${h.layer}H${h.head}`, f(h.score, 3), h.copying === null ? '-' : f(h.copying, 3), f(h.prev_token, 3)]))));

  const lens = j.logit_lens;
  parts.push(section('logit-lens', 'Logit lens',
    `The residual stream entering each block, read through the final norm and the unembedding (nostalgebraist 2020). Table: top tokens at position ${lens.position} and the rank there of the model's final prediction “${esc(lens.final.token)}”. Heatmap: that rank at every position (dark = the final prediction is already on top).`,
    table(['residual', 'rank of final', 'top tokens'], lens.layers.map((l) => [l.layer, l.rank_of_final, l.top.map((t) => `${t.token} (${f(t.prob, 2)})`).join('  ')])) + figureHtml(fig.lensRanks)));

  parts.push(section('sparsity', 'Activation sparsity and residual norm',
    `Share of active MLP units per block (${j.sparsity.mode === 'zero' ? 'non-zero, the ReLU definition' : `|a| ≥ ${j.sparsity.epsilon}, for smooth activations`}; Li et al. 2023, “The Lazy Neuron Phenomenon”), and the mean norm of the residual stream after each block.`,
    `<div class="row">${figureHtml(fig.sparsity)}${figureHtml(fig.residualNorm)}</div>`));

  const v = j.voids;
  const rates = (ph: InspectJson['voids']['prompt']) => ph.void_rate.map((x, l) => `${l}: ${f(x, 2)}`).join(', ');
  parts.push(section('voids', 'Layer voids (LAC)',
    `Per token, Δℓ = ‖hℓ‖ − ‖hℓ₋₁‖; block ℓ is a void when Δℓ &lt; α·(max Δ − min Δ over earlier blocks), α = ${v.alpha} (“Void in Language Models”). Black = void. Prompt processing and greedy generation separately.`,
    `<h3>Prompt</h3>${figureHtml(fig.voidsPrompt)}<p>Void share per block: ${rates(v.prompt)}.</p>` +
    (v.generation && fig.voidsGeneration ? `<h3>Generation (${v.generation.tokens.length} tokens: ${esc(v.generation.tokens.map((t) => t.token).join(' '))})</h3>${figureHtml(fig.voidsGeneration)}<p>Void share per block: ${rates(v.generation)}.</p>` : '')));

  if (j.experts && fig.experts) {
    const e = j.experts;
    parts.push(section('experts', 'Mixture of experts',
      'Expert load (share of token→expert assignments), router entropy (mean over tokens, as a share of log n_experts) and load imbalance (max load / mean load), as monitored in Sigma-MoE-Tiny, DynaMoE and MoTE.',
      figureHtml(fig.experts) + table(['block', 'entropy / max', 'imbalance', 'CV'], e.layers.map((l) => [l.layer, f(l.normalized_entropy, 3), f(l.imbalance, 3), f(l.cv, 3)]))));
  }
  if (j.engine) parts.push(section('engine', 'Engine self-check', 'The backends found and a quick conformance pass of core ops against the reference backend.', `<pre>${esc(JSON.stringify(j.engine, null, 1))}</pre>`));
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${esc(o.title ?? 'actlab inspect')}</title><style>${CSS}</style></head><body>${parts.join('\n')}</body></html>\n`;
}

