// Attention patterns for every layer × head (a grid of small heatmaps with the sink and induction
// score of each head), one head enlarged on click with its values (hover the cells or read the
// table), and a button that ablates the head and shows the logit change.
import * as Plot from '@observablehq/plot';
import { useState } from 'preact/hooks';
import type { ViewProps } from '../context.js';
import { fmt, PlotFigure } from '../plot.js';
import { AblationResult, type AblateResult } from './ablate.js';

interface AttentionResult {
  tokens: string[]; layers: number; heads: number; patterns: number[][][][];
  sink: number[]; induction: number[]; prev_token: number[]; sink_epsilon: number; induction_threshold: number;
}

const cells = (p: number[][]) => p.flatMap((row, q) => row.map((v, k) => ({ q, k, v: k > q ? NaN : v })));

export function AttentionView({ prompt, run, info }: ViewProps) {
  const [r, setR] = useState<AttentionResult | null>(null);
  const [sel, setSel] = useState<[number, number] | null>(null);
  const [abl, setAbl] = useState<AblateResult | null>(null);
  const go = async () => { setSel(null); setAbl(null); setR((await run('attention', { prompt })) as AttentionResult | null); };
  const ablate = async (l: number, h: number) => setAbl((await run('ablate', { prompt, site: 'heads', layer: l, unit: h })) as AblateResult | null);
  const H = info.dims.nHeads;
  return (
    <section>
      <button data-testid="run-attention" onClick={go}>Attention patterns</button>
      {r && (
        <>
          <p>Sink score: mean attention to the first token (sink head above {r.sink_epsilon}); induction score: prefix matching on repeated random tokens (induction head at ≥ {r.induction_threshold}). Click a head to enlarge.</p>
          <div class="grid" style={{ gridTemplateColumns: `repeat(${r.heads}, auto)` }} data-testid="attention-grid">
            {r.patterns.flatMap((heads, l) => heads.map((p, h) => (
              <button class={`head ${sel && sel[0] === l && sel[1] === h ? 'selected' : ''}`} data-testid={`head-${l}-${h}`} onClick={() => { setSel([l, h]); setAbl(null); }}>
                <PlotFigure deps={[r]} make={() => Plot.plot({
                  width: 120, height: 120, margin: 4, x: { axis: null }, y: { axis: null }, color: { scheme: 'blues', domain: [0, 1] },
                  marks: [Plot.cell(cells(p), { x: 'k', y: 'q', fill: 'v', inset: 0 })],
                })} />
                <span class="cap">L{l}H{h} · sink {fmt(r.sink[l * H + h], 2)} · ind <b class={r.induction[l * H + h]! >= r.induction_threshold ? 'hot' : ''}>{fmt(r.induction[l * H + h], 2)}</b></span>
              </button>
            )))}
          </div>
          {sel && (
            <div class="enlarged" data-testid="attention-enlarged" data-layer={sel[0]} data-head={sel[1]}>
              <h3>blocks.{sel[0]}.attn.hook_pattern, head {sel[1]}</h3>
              <PlotFigure deps={[r, sel]} make={() => Plot.plot({
                width: 560, height: 520, marginLeft: 70, marginBottom: 70, color: { scheme: 'blues', domain: [0, 1], legend: true, label: 'attention' },
                x: { label: 'key', tickFormat: (k: number) => r.tokens[k], tickRotate: -60 }, y: { label: 'query', tickFormat: (q: number) => r.tokens[q] },
                marks: [Plot.cell(cells(r.patterns[sel[0]]![sel[1]]!), { x: 'k', y: 'q', fill: 'v', tip: true })],
              })} />
              <p>
                <button data-testid="ablate-head" onClick={() => ablate(sel[0], sel[1])}>Ablate this head (zero its hook_z)</button>
              </p>
              {abl && <AblationResult r={abl} testid="head-ablation-result" />}
              <details>
                <summary>Values</summary>
                <table class="values" data-testid="pattern-table">
                  <tbody>
                    {r.patterns[sel[0]]![sel[1]]!.map((row, q) => (
                      <tr>{row.map((v, k) => <td data-q={q} data-k={k} data-value={String(v)}>{k <= q ? v.toFixed(3) : ''}</td>)}</tr>
                    ))}
                  </tbody>
                </table>
              </details>
            </div>
          )}
        </>
      )}
    </section>
  );
}
