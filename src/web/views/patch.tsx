// Patching: clean and corrupted prompts of one length, a metric logit(answer) − logit(wrong) at the
// last position, and the effect of patching each layer's residual (per position) or head.
import * as Plot from '@observablehq/plot';
import { useState } from 'preact/hooks';
import type { ViewProps } from '../context.js';
import { fmt, PlotFigure } from '../plot.js';

interface PatchResult { site: string; method: string; rows: string[]; cols: string[]; effects: number[][]; clean_metric: number; corrupt_metric: number; answer: { token: string }; wrong: { token: string } }

export function PatchView({ prompt, run, info }: ViewProps) {
  const ids = !info.text_tokenizer;
  const [clean, setClean] = useState(prompt);
  const [corrupt, setCorrupt] = useState(ids ? prompt.replace(/(\d+)(\s*)$/, (_, d: string, s: string) => `${(Number(d) + 1) % info.dims.vocabSize}${s}`) : prompt);
  const [answer, setAnswer] = useState('');
  const [wrong, setWrong] = useState('');
  const [site, setSite] = useState('resid');
  const [method, setMethod] = useState('activation');
  const [r, setR] = useState<PatchResult | null>(null);
  const input = (v: string, set: (s: string) => void, testid: string, size = 40) => <input data-testid={testid} size={size} value={v} onInput={(e) => set((e.target as HTMLInputElement).value)} />;
  const go = async () => setR((await run('patch', { clean, corrupt, answer, wrong, site, method })) as PatchResult | null);
  return (
    <section>
      <p><label>Clean {input(clean, setClean, 'patch-clean', 60)}</label></p>
      <p><label>Corrupted {input(corrupt, setCorrupt, 'patch-corrupt', 60)}</label></p>
      <p>
        <label>Answer {input(answer, setAnswer, 'patch-answer', 8)}</label>{' '}
        <label>Wrong {input(wrong, setWrong, 'patch-wrong', 8)}</label>{' '}
        <label>Site <select value={site} onChange={(e) => setSite((e.target as HTMLSelectElement).value)}><option value="resid">residual (per position)</option><option value="heads">heads</option></select></label>{' '}
        <label>Method <select value={method} onChange={(e) => setMethod((e.target as HTMLSelectElement).value)}><option value="activation">activation patching</option><option value="attribution">attribution patching</option></select></label>{' '}
        <button data-testid="run-patch" onClick={go}>Patch</button>
      </p>
      {r && (
        <>
          <p>logit({r.answer.token}) − logit({r.wrong.token}): clean <b>{fmt(r.clean_metric)}</b>, corrupted <b>{fmt(r.corrupt_metric)}</b>. Effect = metric(patched) − metric(clean).</p>
          <PlotFigure testid="patch-heatmap" deps={[r]} make={() => Plot.plot({
            title: `${r.method} patching, ${r.site}`, width: 640, height: 80 + 28 * r.rows.length, marginBottom: 60, marginLeft: 50,
            x: { label: r.site === 'resid' ? 'position' : 'head', tickFormat: (c: number) => r.cols[c], tickRotate: -60 }, y: { label: 'layer' },
            color: { scheme: 'rdbu', type: 'diverging', legend: true, label: 'effect' },
            marks: [Plot.cell(r.effects.flatMap((row, l) => row.map((v, c) => ({ l, c, v }))), { x: 'c', y: 'l', fill: 'v', tip: true })],
          })} />
        </>
      )}
    </section>
  );
}
