// `actlab ablate`: an ablation sweep over heads, neurons, layers or experts (zero / mean /
// resample, or a method registered with registerAblationMethod) on a data file, printing the
// effect of each unit on the metric; `--json` for everything, `--html` for a page with the
// layer × unit heatmap of effects.
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { parseHTML } from 'linkedom';
import { writeBytesAtomic } from '../io/file-store.js';
import { getPlatform } from '../io/platform.js';
import { figureHtml, heatmap } from '../report/figures.js';
import { disposeBackends } from '../tensor/engine.js';
import {
  ABLATION_METRICS, ABLATION_SITES, ablationMethods, ablationSweep, parseAblationData, type AblationMetric, type AblationResult, type AblationSite,
} from '../interventions/ablation.js';
import { InterventionError } from '../interventions/intervention.js';
import { loadForCli, type ModelArgs } from './common.js';
import { action, modelOptions } from './options.js';

export interface AblateArgs extends ModelArgs {
  site: string;
  method: string;
  metric: string;
  data: string;
  layers?: string;
  units?: string;
  top: string;
  batchSize: string;
  json?: boolean;
  html?: string;
}

export function register(program: Command): void {
  modelOptions(program.command('ablate').description('Ablate each head, neuron, layer or expert in turn and report its effect on a metric over a data file'))
    .requiredOption('--site <s>', ABLATION_SITES.join(', '))
    .option('--method <m>', `${ablationMethods().join(', ')} (or a registered method)`, 'zero')
    .option('--metric <m>', ABLATION_METRICS.join(', '), 'logit-diff')
    .requiredOption('--data <file>', 'JSONL of {"prompt", "answer", "wrong"} (logit-diff, accuracy, loss of the answer), {"text"} (loss) or {"ids", "answer", "wrong"} (token ids), or plain text lines')
    .option('--layers <list>', 'only these blocks, comma-separated')
    .option('--units <list>', 'only these heads / neurons / experts, comma-separated')
    .option('--top <n>', 'units listed by the size of their effect', '10')
    .option('--batch-size <n>', 'items per forward pass', '32')
    .option('--json', 'print one JSON object')
    .option('--html <file>', 'write an HTML page with the heatmap of effects')
    .action(action(ablateCommand));
}

function ints(v: string | undefined, flag: string): number[] | undefined {
  if (v === undefined) return undefined;
  const xs = v.split(',').map((s) => s.trim()).filter(Boolean);
  const out = xs.map((s) => Number(s));
  const bad = out.findIndex((n) => !Number.isInteger(n) || n < 0);
  if (bad >= 0 || out.length === 0) throw new InterventionError(`${flag}: '${xs[bad] ?? v}' is not an integer >= 0 (give a comma-separated list)`);
  return out;
}

const unitName = (site: AblationSite) => (site === 'heads' ? 'head' : site === 'neurons' ? 'neuron' : site === 'experts' ? 'expert' : 'layer');
const label = (r: AblationResult, e: { layer: number; unit: number }) => (r.site === 'layers' ? `L${e.layer}` : `L${e.layer}.${unitName(r.site)[0]}${e.unit}`);

export async function ablateCommand(a: AblateArgs): Promise<number> {
  if (!(ABLATION_SITES as string[]).includes(a.site)) throw new InterventionError(`--site: '${a.site}' is not one of ${ABLATION_SITES.join(', ')}`);
  if (!(ABLATION_METRICS as string[]).includes(a.metric)) throw new InterventionError(`--metric: '${a.metric}' is not one of ${ABLATION_METRICS.join(', ')}`);
  if (!ablationMethods().includes(a.method)) throw new InterventionError(`--method: '${a.method}' is not one of ${ablationMethods().join(', ')}`);
  const top = Number(a.top);
  const batchSize = Number(a.batchSize);
  if (!Number.isInteger(top) || top < 0) throw new InterventionError(`--top: '${a.top}' is not an integer >= 0`);
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new InterventionError(`--batch-size: '${a.batchSize}' is not an integer >= 1`);
  const layers = ints(a.layers, '--layers');
  const units = ints(a.units, '--units');
  const text = readFileSync(a.data, 'utf8');
  const m = await loadForCli(a);
  try {
    const items = parseAblationData(text, m.tokenizer, a.data);
    const showProgress = !a.json && process.stderr.isTTY;
    const r = ablationSweep(m.model, items, {
      site: a.site as AblationSite, method: a.method, metric: a.metric as AblationMetric, layers, units, batchSize,
      onProgress: showProgress ? (d, n) => process.stderr.write(`\r${d}/${n} units`) : undefined,
    });
    if (showProgress) process.stderr.write('\n');
    const ranked = [...r.effects].sort((x, y) => Math.abs(y.effect) - Math.abs(x.effect));
    if (a.html) await writeHtml(a.html, r, m.source, items.length);
    if (a.json) {
      console.log(JSON.stringify({ model: m.source, data: a.data, items: items.length, ...r, ranked: ranked.slice(0, top).map((e) => ({ ...e, label: label(r, e) })) }));
      return 0;
    }
    console.log(`${m.source}: ${a.method}-ablating ${a.site} over ${items.length} items; ${r.metric} without ablation ${r.clean.toFixed(4)}`);
    if (a.site !== 'neurons') {
      const us = [...new Set(r.effects.map((e) => e.unit))];
      const head = `block  ${us.map((u) => `${unitName(r.site)[0]}${u}`.padStart(8)).join('')}`;
      console.log(`effect (${r.metric} ablated − clean):\n${head}`);
      for (const l of r.layers) {
        console.log(`${String(l).padStart(5)}  ${us.map((u) => { const e = r.effects.find((x) => x.layer === l && x.unit === u); return (e ? e.effect.toFixed(3) : '').padStart(8); }).join('')}`);
      }
    }
    console.log(`largest effects:`);
    for (const e of ranked.slice(0, top)) console.log(`  ${label(r, e).padEnd(12)} ${e.effect >= 0 ? '+' : ''}${e.effect.toFixed(4)}  (${r.metric} ${e.metric.toFixed(4)})`);
    if (a.html) console.log(`wrote ${a.html}`);
    return 0;
  } finally {
    m.model.dispose();
    disposeBackends();
  }
}

async function writeHtml(path: string, r: AblationResult, source: string, n: number): Promise<void> {
  const { document } = parseHTML('<!doctype html><html><head></head><body></body></html>');
  const rows = r.effects.map((e) => ({ layer: e.layer, unit: e.unit, v: e.effect }));
  const lim = Math.max(1e-9, ...rows.map((d) => Math.abs(d.v)));
  const U = new Set(rows.map((d) => d.unit)).size;
  const fig = heatmap(document as unknown as Document, rows, {
    x: 'unit', y: 'layer', fill: 'v', label: `effect on ${r.metric} (ablated − clean)`, xLabel: unitName(r.site), yLabel: 'block',
    scheme: 'rdbu', domain: [-lim, lim], cellWidth: Math.max(4, Math.min(40, 1000 / U)),
    ...(U <= 24 ? { text: (d) => (d.v as number).toFixed(2) } : {}),
  });
  const ranked = [...r.effects].sort((x, y) => Math.abs(y.effect) - Math.abs(x.effect)).slice(0, 20);
  const esc = (s: string) => s.replace(/[&<>"]/g, (c) => `&#${c.charCodeAt(0)};`);
  const html = `<!doctype html><html><head><meta charset="utf-8"><title>actlab ablate — ${esc(source)}</title>
<style>body{font:14px system-ui,sans-serif;margin:2em;max-width:1400px}td,th{padding:2px 10px;text-align:right}th{text-align:left}</style></head><body>
<h1>Ablation: ${esc(r.method)} of ${esc(r.site)}</h1>
<p>${esc(source)}, ${n} items; ${esc(r.metric)} without ablation: <b>${r.clean.toFixed(4)}</b>. Each cell is the ${esc(r.metric)} with that unit ablated minus the clean value.</p>
${figureHtml(fig)}
<h2>Largest effects</h2><table><tr><th>unit</th><th>effect</th><th>${esc(r.metric)}</th></tr>
${ranked.map((e) => `<tr><th>${esc(label(r, e))}</th><td>${e.effect.toFixed(4)}</td><td>${e.metric.toFixed(4)}</td></tr>`).join('\n')}
</table></body></html>\n`;
  await writeBytesAtomic((await getPlatform()).store, path, new TextEncoder().encode(html));
}
