// Massive activations (max |a| per layer × dimension of the residual stream), MLP activation
// sparsity per layer, and layer voids (LAC: blocks that barely change the residual norm).
import * as Plot from '@observablehq/plot';
import { useState } from 'preact/hooks';
import type { ViewProps } from '../context.js';
import { fmt, PlotFigure } from '../plot.js';

interface ActsResult {
  tokens: string[];
  massive: { max_abs: number[][]; entries: { layer: number; pos: number; token: string; dim: number; value: number; ratio_to_median: number }[]; top: { layer: number; token: string; dim: number; value: number; ratio_to_median: number }[]; abs_threshold: number; ratio_threshold: number };
  sparsity: { mode: string; layers: { layer: number; active: number; sparsity: number }[] } | null;
  voids: { alpha: number; prompt: { void_rate: number[]; void_layers: number[]; tokens: { pos: number; token: string; delta: number[]; void: boolean[] }[] } };
}

export function ActivationsView({ prompt, run }: ViewProps) {
  const [r, setR] = useState<ActsResult | null>(null);
  const go = async () => setR((await run('activations', { prompt })) as ActsResult | null);
  return (
    <section>
      <button data-testid="run-activations" onClick={go}>Massive activations, sparsity, voids</button>
      {r && (
        <>
          <PlotFigure testid="massive-heatmap" deps={[r]} make={() => Plot.plot({
            title: `Massive activations: max over tokens of |a| per layer × dimension (massive: > ${r.massive.abs_threshold} and ${r.massive.ratio_threshold}× the median)`,
            width: 900, height: 60 + 22 * r.massive.max_abs.length, marginLeft: 40, x: { label: 'dimension', ticks: 10 }, y: { label: 'layer' },
            color: { type: 'log', scheme: 'magma', legend: true, label: 'max |a|' },
            marks: [Plot.cell(r.massive.max_abs.flatMap((row, l) => Array.from(row, (v, d) => ({ l, d, v: Math.max(v, 1e-6) }))), { x: 'd', y: 'l', fill: 'v', tip: true, inset: 0 })],
          })} />
          <p>{r.massive.entries.length} massive entries. Largest per layer:</p>
          <table class="small"><thead><tr><th>layer</th><th>token</th><th>dim</th><th>value</th><th>× median</th></tr></thead>
            <tbody>{r.massive.top.map((t) => <tr><td>{t.layer}</td><td>{t.token}</td><td>{t.dim}</td><td>{fmt(t.value)}</td><td>{fmt(t.ratio_to_median, 1)}</td></tr>)}</tbody></table>
          <div class="row">
            {r.sparsity
              ? <PlotFigure deps={[r]} make={() => Plot.plot({
                title: `MLP activation sparsity per layer (${r.sparsity!.mode})`, width: 420, height: 220, y: { label: 'sparsity', domain: [0, 1], grid: true }, x: { label: 'layer' },
                marks: [Plot.barY(r.sparsity!.layers, { x: 'layer', y: 'sparsity', fill: 'seagreen', tip: true })],
              })} />
              : <p>This model has no MLP: no sparsity to show.</p>}
            <PlotFigure deps={[r]} make={() => Plot.plot({
              title: `Layer voids (LAC, α = ${r.voids.alpha}): share of tokens for which each block is a void`, width: 420, height: 220, y: { label: 'void rate', domain: [0, 1], grid: true }, x: { label: 'block' },
              marks: [Plot.barY(r.voids.prompt.void_rate.map((v, l) => ({ l, v })), { x: 'l', y: 'v', fill: 'slateblue', tip: true })],
            })} />
          </div>
          <PlotFigure deps={[r]} make={() => Plot.plot({
            title: 'Δ‖h‖ per block and token (voids outlined)', width: 620, height: 60 + 22 * r.voids.prompt.void_rate.length, marginBottom: 60,
            x: { label: 'token', tickFormat: (t: number) => r.tokens[t], tickRotate: -60 }, y: { label: 'block' }, color: { scheme: 'rdbu', legend: true, label: 'Δ norm' },
            marks: [
              Plot.cell(r.voids.prompt.tokens.flatMap((t) => t.delta.map((d, l) => ({ t: t.pos, l, d }))), { x: 't', y: 'l', fill: 'd', tip: true }),
              Plot.cell(r.voids.prompt.tokens.flatMap((t) => t.void.flatMap((v, l) => (v ? [{ t: t.pos, l }] : []))), { x: 't', y: 'l', stroke: 'black', strokeWidth: 2, inset: 1 }),
            ],
          })} />
        </>
      )}
    </section>
  );
}
