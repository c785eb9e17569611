// Ablate a head or an MLP neuron with a click and read the change in the last position's logits:
// the target (default: the model's top next token) before and after, and the top tokens of both.
import * as Plot from '@observablehq/plot';
import { useState } from 'preact/hooks';
import type { ViewProps } from '../context.js';
import { fmt, PlotFigure } from '../plot.js';

type Top = { id: number; token: string; prob: number; logit: number }[];
export interface AblateResult {
  site: string; layer: number; unit: number; hook: string; target: { id: number; token: string };
  logit_before: number; logit_after: number; logit_change: number; prob_before: number; prob_after: number; top_before: Top; top_after: Top;
}

export function AblationResult({ r, testid = 'ablation-result' }: { r: AblateResult; testid?: string }) {
  const rows = [...r.top_before.map((t) => ({ ...t, when: 'before' })), ...r.top_after.map((t) => ({ ...t, when: 'after' }))];
  return (
    <div class="ablation" data-testid={testid} data-change={String(r.logit_change)} data-before={String(r.logit_before)} data-after={String(r.logit_after)}>
      <p>Zeroing {r.site === 'heads' ? 'head' : 'neuron'} {r.unit} at <code>{r.hook}</code>: logit of <b>{r.target.token}</b> {fmt(r.logit_before)} → {fmt(r.logit_after)} (
        <b class={r.logit_change < 0 ? 'down' : 'up'} data-testid={`${testid}-change`}>{r.logit_change >= 0 ? '+' : ''}{fmt(r.logit_change)}</b>), probability {fmt(r.prob_before)} → {fmt(r.prob_after)}</p>
      <PlotFigure deps={[r]} make={() => Plot.plot({
        height: 200, width: 520, marginLeft: 80, x: { label: 'probability' }, fy: { label: null }, color: { domain: ['before', 'after'], range: ['#999', '#d62'], legend: true },
        marks: [Plot.barX(rows, { y: 'token', x: 'prob', fill: 'when', fy: 'when', tip: true })],
      })} />
    </div>
  );
}

export function AblateView({ prompt, run, info }: ViewProps) {
  const { nLayers: L, nHeads: H, dMlp } = info.dims;
  const [r, setR] = useState<AblateResult | null>(null);
  const [target, setTarget] = useState('');
  const [neuron, setNeuron] = useState({ layer: 0, unit: 0 });
  const go = async (site: 'heads' | 'neurons', layer: number, unit: number) =>
    setR((await run('ablate', { prompt, site, layer, unit, ...(target.trim() ? { target: target.trim() } : {}) })) as AblateResult | null);
  return (
    <section>
      <p>Click a head to zero it (its <code>hook_z</code>) and see the logit of the target token change at the last position.</p>
      <label>Target token (text or id; empty = the model's top prediction) <input value={target} onInput={(e) => setTarget((e.target as HTMLInputElement).value)} /></label>
      <table class="heads" data-testid="ablate-grid">
        <thead><tr><th />{Array.from({ length: H }, (_, h) => <th>H{h}</th>)}</tr></thead>
        <tbody>
          {Array.from({ length: L }, (_, l) => (
            <tr><th>L{l}</th>{Array.from({ length: H }, (_, h) => (
              <td><button data-testid={`ablate-${l}-${h}`} class={r && r.site === 'heads' && r.layer === l && r.unit === h ? 'selected' : ''} onClick={() => go('heads', l, h)}>{l}.{h}</button></td>
            ))}</tr>
          ))}
        </tbody>
      </table>
      {dMlp > 0 && (
        <p>Neuron: layer <input type="number" min={0} max={L - 1} value={neuron.layer} onInput={(e) => setNeuron({ ...neuron, layer: Number((e.target as HTMLInputElement).value) })} />
          {' '}unit <input type="number" min={0} max={dMlp - 1} value={neuron.unit} onInput={(e) => setNeuron({ ...neuron, unit: Number((e.target as HTMLInputElement).value) })} />
          {' '}<button data-testid="ablate-neuron" onClick={() => go('neurons', neuron.layer, neuron.unit)}>Ablate neuron</button></p>
      )}
      {r && <AblationResult r={r} />}
    </section>
  );
}
