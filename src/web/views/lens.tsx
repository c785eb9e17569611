// Logit lens: the final prediction's rank at every layer and position (heatmap), the top tokens of
// each layer at one position, and the residual stream's norm before each block.
import * as Plot from '@observablehq/plot';
import { useState } from 'preact/hooks';
import type { ViewProps } from '../context.js';
import { fmt, PlotFigure } from '../plot.js';

interface LensResult {
  tokens: string[]; position: number; final: { id: number; token: string };
  layers: { layer: string; top: { id: number; token: string; prob: number }[]; rank_of_final: number }[];
  ranks: number[][]; norm_states: string[]; norms: number[][];
}

export function LensView({ prompt, run }: ViewProps) {
  const [r, setR] = useState<LensResult | null>(null);
  const [pos, setPos] = useState('');
  const go = async () => setR((await run('lens', { prompt, k: 5, ...(pos.trim() ? { position: Number(pos) } : {}) })) as LensResult | null);
  return (
    <section>
      <label>Position (empty = last) <input size={4} value={pos} onInput={(e) => setPos((e.target as HTMLInputElement).value)} /></label>{' '}
      <button data-testid="run-lens" onClick={go}>Logit lens</button>
      {r && (
        <>
          <p>Final prediction at position {r.position}: <b data-testid="lens-final">{r.final.token}</b></p>
          <div class="row">
            <PlotFigure testid="lens-ranks" deps={[r]} make={() => Plot.plot({
              title: 'Rank of each position\'s final prediction, read through the unembedding at each layer', width: 620, height: 60 + 26 * r.ranks.length, marginLeft: 60, marginBottom: 60,
              x: { label: 'position', tickFormat: (t: number) => r.tokens[t], tickRotate: -60 }, y: { label: 'state', tickFormat: (l: number) => r.layers[l]?.layer },
              color: { type: 'log', scheme: 'viridis', reverse: true, legend: true, label: 'rank + 1' },
              marks: [Plot.cell(r.ranks.flatMap((row, l) => row.map((k, t) => ({ l, t, k: k + 1 }))), { x: 't', y: 'l', fill: 'k', tip: true })],
            })} />
            <table class="lens" data-testid="lens-table">
              <thead><tr><th>state</th><th>rank of final</th><th>top tokens</th></tr></thead>
              <tbody>{r.layers.map((l) => <tr><td>{l.layer}</td><td>{l.rank_of_final}</td><td>{l.top.map((t) => `${t.token} ${fmt(t.prob, 2)}`).join(' · ')}</td></tr>)}</tbody>
            </table>
          </div>
          <PlotFigure deps={[r]} make={() => Plot.plot({
            title: 'Residual-stream norm per position, before each block and after the last', width: 620, height: 240, y: { label: '‖resid‖', grid: true }, x: { label: 'state' }, color: { legend: true, label: 'position' },
            marks: [Plot.line(r.norms.flatMap((row, s) => row.map((n, t) => ({ s, t, n }))), { x: 's', y: 'n', z: 't', stroke: 't', tip: true })],
          })} />
        </>
      )}
    </section>
  );
}
