// The self-contained HTML report of `actlab inspect --html`: inline CSS, inline SVG figures and
// PNG data URIs, no script and no network. One section per analysis, each saying what it measures
// and after which paper, with the picture first and the numbers under it. The analyses' sections
// come from src/report/sections (ordered by htmlRank); the attention grid and the engine check are
// the report's own.
import type { InspectJson, InspectReport } from './build.js';
import type { Figures } from './figures.js';
import { esc, f, section } from './sections/common.js';
import { REPORT_SECTIONS } from './sections/index.js';

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
  const blocks: { rank: number; id: string; html: string }[] = [];
  for (const sec of REPORT_SECTIONS) {
    const h = sec.html(j, fig, r);
    if (h !== null) blocks.push({ rank: sec.htmlRank, id: sec.id, html: h });
  }
  blocks.push({ rank: 30, id: 'attention', html: section('attention', 'Attention patterns',
    'Every head on the prompt: row = query position, column = key position (causal, so the upper triangle is empty); brighter = more attention (viridis, 0 to 1).',
    `<div class="heads">${fig.attention.map((a) => `<figure><img alt="L${a.layer}H${a.head}" src="${a.uri}"><figcaption>L${a.layer}H${a.head} · sink ${f(j.sinks.heads.find((h) => h.layer === a.layer && h.head === a.head)?.score ?? NaN, 2)}</figcaption></figure>`).join('')}</div>`) });
  if (j.engine) blocks.push({ rank: 90, id: 'engine', html: section('engine', 'Engine self-check', 'The backends found and a quick conformance pass of core ops against the reference backend.', `<pre>${esc(JSON.stringify(j.engine, null, 1))}</pre>`) });
  blocks.sort((a, b) => a.rank - b.rank);
  parts.push(`<nav>${blocks.map((b) => `<a href="#${b.id}">${b.id}</a>`).join('')}</nav>`);
  if (j.errors) parts.push(`<p class="warn">Sections that failed: ${Object.entries(j.errors).map(([k, e]) => `${esc(k)}: ${esc(e)}`).join('; ')}</p>`);
  for (const b of blocks) parts.push(b.html);
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${esc(o.title ?? 'actlab inspect')}</title><style>${CSS}</style></head><body>${parts.join('\n')}</body></html>\n`;
}

