// The pictures of the inspect report, drawn with Observable Plot to SVG. Plot needs a DOM
// `document`: the browser's, or a server-side one (the CLI passes linkedom's). Continuous colour
// legends are drawn as quantized ramps (Plot draws a smooth ramp on a canvas, which a server-side
// DOM lacks). Attention patterns are PNG images (see png.ts), coloured with Plot's own scale.
import * as Plot from '@observablehq/plot';
import type { InspectJson, InspectReport } from './build.js';
import { base64, encodePng, type Deflate } from './png.js';

type Doc = Document;
type Row = Record<string, number | string | boolean>;

/** A Plot figure: its plot and (for heatmaps) its colour legend, as SVG elements. */
export interface Figure {
  plot: string;
  legend?: string;
  width: number;
  height: number;
  legendHeight: number;
}

function figureOf(p: Element, legend: Element | null): Figure {
  const h = (e: Element) => Number(e.getAttribute('height') ?? 0);
  const w = (e: Element) => Number(e.getAttribute('width') ?? 0);
  return {
    plot: p.outerHTML, legend: legend?.outerHTML,
    width: Math.max(w(p), legend ? w(legend) : 0), height: h(p) + (legend ? h(legend) : 0), legendHeight: legend ? h(legend) : 0,
  };
}

/** Inline HTML: the legend above the plot. */
export function figureHtml(f: Figure): string {
  return `<div class="fig">${f.legend ?? ''}${f.plot}</div>`;
}

/** A standalone .svg file: the legend and the plot as groups of one SVG document. */
export function figureSvg(f: Figure): string {
  const asGroup = (svg: string, y: number) => svg.replace(/^<svg\b([^>]*)>/, (_m, attrs: string) => `<g transform="translate(0,${y})"${attrs.replace(/\s(viewBox|width|height)="[^"]*"/g, '')}>`).replace(/<\/svg>\s*$/, '</g>');
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${f.width}" height="${f.height}" viewBox="0 0 ${f.width} ${f.height}"><rect width="100%" height="100%" fill="white"/>${f.legend ? asGroup(f.legend, 0) : ''}${asGroup(f.plot, f.legendHeight)}</svg>\n`;
}

export interface HeatOptions {
  x: string;
  y: string;
  fill: string;
  label: string;
  xLabel: string;
  yLabel: string;
  text?: (d: Row) => string;
  scheme?: string;
  domain?: [number, number];
  cellWidth?: number;
  cellHeight?: number;
  xTicks?: (string | number)[];
  xFormat?: (v: number) => string;
}

export function heatmap(doc: Doc, data: Row[], o: HeatOptions): Figure {
  const xs = new Set(data.map((d) => d[o.x])).size;
  const ys = new Set(data.map((d) => d[o.y])).size;
  const cw = o.cellWidth ?? 28;
  const ch = o.cellHeight ?? 22;
  const width = Math.max(320, Math.min(1400, 80 + xs * cw));
  const p = Plot.plot({
    document: doc, width, height: 60 + ys * ch, marginLeft: 60, marginBottom: 40,
    x: { label: o.xLabel, ...(o.xTicks ? { ticks: o.xTicks } : {}), ...(o.xFormat ? { tickFormat: o.xFormat } : {}) },
    y: { label: o.yLabel },
    color: { type: 'quantize', n: 9, scheme: (o.scheme ?? 'viridis') as Plot.ColorScheme, ...(o.domain ? { domain: o.domain } : {}), label: o.label },
    marks: [
      Plot.cell(data, { x: o.x, y: o.y, fill: o.fill, inset: cw < 8 ? 0 : 0.5, tip: false }),
      ...(o.text ? [Plot.text(data, { x: o.x, y: o.y, text: o.text, fill: 'white', fontSize: 9, stroke: 'black', strokeWidth: 2, paintOrder: 'stroke' })] : []),
    ],
  });
  return figureOf(p as unknown as Element, p.legend('color') as unknown as Element);
}

function lineChart(doc: Doc, data: Row[], o: { x: string; y: string; xLabel: string; yLabel: string; title?: string }): Figure {
  return figureOf(Plot.plot({
    document: doc, width: 420, height: 240, marginLeft: 60, grid: true,
    x: { label: o.xLabel }, y: { label: o.yLabel, zero: true },
    marks: [Plot.line(data, { x: o.x, y: o.y, stroke: 'steelblue' }), Plot.dot(data, { x: o.x, y: o.y, fill: 'steelblue' })],
  }) as unknown as Element, null);
}

const ticks = (n: number, max = 40) => Array.from({ length: n }, (_, i) => i).filter((i) => n <= max || i % Math.ceil(n / max) === 0);

export interface Figures {
  massive: Figure;
  sinks: Figure;
  induction: Figure;
  sparsity: Figure;
  residualNorm: Figure;
  lensRanks: Figure;
  voidsPrompt: Figure;
  voidsGeneration?: Figure;
  experts?: Figure;
  /** Per head: a PNG data URI of its attention pattern. */
  attention: { layer: number; head: number; uri: string }[];
  /** Every head's pattern in one PNG: a row per block, a column per head. */
  attentionGrid: Uint8Array;
}

/** `deflate` compresses the PNGs (the CLI passes node:zlib's; without it they are stored uncompressed). */
export function makeFigures(r: InspectReport, doc: Doc, o: { deflate?: Deflate } = {}): Figures {
  const j: InspectJson = r.json;
  const massiveRows = j.massive_summary.max_abs.flatMap((dims, layer) => dims.map((v, dim) => ({ layer, dim, v: Math.log10(Math.max(v, 1e-6)) })));
  const massive = heatmap(doc, massiveRows, {
    x: 'dim', y: 'layer', fill: 'v', label: 'log10 max |a| over tokens', xLabel: 'dimension', yLabel: 'block', scheme: 'magma',
    cellWidth: Math.max(2, Math.min(16, 1200 / j.model.dims.dModel)), xTicks: ticks(j.model.dims.dModel, 16),
  });
  const headRows = (vals: { layer: number; head: number; score: number }[]) => vals.map((h) => ({ layer: h.layer, head: h.head, v: h.score }));
  const sinks = heatmap(doc, headRows(j.sinks.heads), { x: 'head', y: 'layer', fill: 'v', label: 'sink score (mean attention to token 0)', xLabel: 'head', yLabel: 'block', domain: [0, 1], text: (d) => (d.v as number).toFixed(2), cellWidth: 40 });
  const induction = heatmap(doc, headRows(j.induction), { x: 'head', y: 'layer', fill: 'v', label: 'induction (prefix-matching) score', xLabel: 'head', yLabel: 'block', domain: [0, 1], text: (d) => (d.v as number).toFixed(2), cellWidth: 40 });
  const sparsity = lineChart(doc, j.sparsity.layers.map((l) => ({ layer: l.layer, v: l.active })), { x: 'layer', y: 'v', xLabel: 'block', yLabel: `active MLP share (${j.sparsity.mode === 'zero' ? 'non-zero' : `|a| ≥ ${j.sparsity.epsilon}`})` });
  const residualNorm = lineChart(doc, j.residual_norm.map((v, l) => ({ layer: l, v })), { x: 'layer', y: 'v', xLabel: 'hidden state (0 = embedding)', yLabel: 'mean ‖h‖ over tokens' });
  const T = j.prompt.ids.length;
  const tokenFormat = (i: number) => `${i}`;
  const lensRows = j.logit_lens.ranks.flatMap((row, l) => row.map((rank, pos) => ({ layer: j.logit_lens.layers[l]!.layer, pos, v: Math.log10(rank + 1) })));
  const lensRanks = heatmap(doc, lensRows, { x: 'pos', y: 'layer', fill: 'v', label: 'log10(1 + rank of the final prediction)', xLabel: 'position', yLabel: 'residual', scheme: 'viridis', cellWidth: Math.max(6, Math.min(24, 1000 / T)), xTicks: ticks(T), xFormat: tokenFormat });
  const voidRows = (ph: InspectJson['voids']['prompt']) => ph.tokens.flatMap((t) => t.void.map((v, layer) => ({ pos: t.pos, layer, v: v ? 1 : 0 })));
  const voidsOf = (ph: InspectJson['voids']['prompt']) => heatmap(doc, voidRows(ph), { x: 'pos', y: 'layer', fill: 'v', label: 'void (1) or active (0)', xLabel: 'position', yLabel: 'block', scheme: 'greys', domain: [0, 1], cellWidth: Math.max(6, Math.min(24, 1000 / Math.max(1, ph.tokens.length))), xTicks: ticks(ph.tokens.length + (ph.tokens[0]?.pos ?? 0)) });
  const voidsPrompt = voidsOf(j.voids.prompt);
  const voidsGeneration = j.voids.generation && j.voids.generation.tokens.length ? voidsOf(j.voids.generation) : undefined;
  const experts = j.experts
    ? heatmap(doc, j.experts.layers.flatMap((l) => l.load.map((v, e) => ({ layer: l.layer, expert: e, v }))), { x: 'expert', y: 'layer', fill: 'v', label: 'expert load (share of assignments)', xLabel: 'expert', yLabel: 'block', text: (d) => (d.v as number).toFixed(2), cellWidth: 40 })
    : undefined;
  const colour = Plot.scale({ color: { type: 'linear', scheme: 'viridis', domain: [0, 1] } });
  const lut = Array.from({ length: 256 }, (_, i) => {
    const c = String(colour.apply(i / 255));
    const m = /rgb\((\d+),\s*(\d+),\s*(\d+)\)/.exec(c) ?? /#(..)(..)(..)/.exec(c);
    if (!m) return [0, 0, 0];
    return c.startsWith('#') ? [1, 2, 3].map((k) => parseInt(m[k]!, 16)) : [1, 2, 3].map((k) => Number(m[k]));
  });
  const px = (v: number) => lut[Math.round(Math.min(1, Math.max(0, v)) * 255)]!;
  const attention = r.attention.map((a) => {
    const n = a.size;
    const rgb = new Uint8Array(n * n * 3);
    for (let i = 0; i < n * n; i++) rgb.set(px(a.pattern[i]!), i * 3);
    return { layer: a.layer, head: a.head, uri: `data:image/png;base64,${base64(encodePng(n, n, rgb, o.deflate))}` };
  });
  // The grid: each head scaled ×z, 4 white pixels between heads.
  const n = T;
  const z = Math.max(1, Math.min(6, Math.floor(96 / Math.max(1, n))));
  const L = j.model.dims.nLayers;
  const H = r.attention.length / Math.max(1, L);
  const cell = n * z + 4;
  const gw = Math.max(1, H * cell);
  const gh = Math.max(1, L * cell);
  const grid = new Uint8Array(gw * gh * 3).fill(255);
  for (const a of r.attention) {
    for (let i = 0; i < n * z; i++) for (let k = 0; k < n * z; k++) {
      grid.set(px(a.pattern[Math.floor(i / z) * n + Math.floor(k / z)]!), ((a.layer * cell + i) * gw + a.head * cell + k) * 3);
    }
  }
  const attentionGrid = encodePng(gw, gh, grid, o.deflate);
  return { massive, sinks, induction, sparsity, residualNorm, lensRanks, voidsPrompt, voidsGeneration, experts, attention, attentionGrid };
}

/** The figures as files (name, SVG text or PNG bytes), those the report has. */
export function figureFiles(figs: Figures): [string, string | Uint8Array][] {
  const files: [string, string | Uint8Array | undefined][] = [
    ['massive.svg', figureSvg(figs.massive)], ['sinks.svg', figureSvg(figs.sinks)], ['induction.svg', figureSvg(figs.induction)],
    ['sparsity.svg', figureSvg(figs.sparsity)], ['residual-norm.svg', figureSvg(figs.residualNorm)], ['logit-lens-ranks.svg', figureSvg(figs.lensRanks)],
    ['voids-prompt.svg', figureSvg(figs.voidsPrompt)], ['voids-generation.svg', figs.voidsGeneration && figureSvg(figs.voidsGeneration)],
    ['experts.svg', figs.experts && figureSvg(figs.experts)], ['attention.png', figs.attentionGrid],
  ];
  return files.filter((f): f is [string, string | Uint8Array] => f[1] !== undefined);
}
