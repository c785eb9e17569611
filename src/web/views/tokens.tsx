// Prompt → tokens with per-token loss (−log p of the next token) and the next-token distribution.
import * as Plot from '@observablehq/plot';
import { useState } from 'preact/hooks';
import type { ViewProps } from '../context.js';
import { fmt, PlotFigure } from '../plot.js';

interface TokensResult { ids: number[]; tokens: string[]; loss: (number | null)[]; mean_loss: number | null; next: { id: number; token: string; prob: number; logit: number }[] }

export function TokensView({ prompt, run }: ViewProps) {
  const [r, setR] = useState<TokensResult | null>(null);
  const go = async () => setR((await run('tokens', { prompt, k: 10 })) as TokensResult | null);
  const maxLoss = r ? Math.max(1e-6, ...r.loss.filter((x): x is number => x !== null)) : 1;
  return (
    <section>
      <button data-testid="run-tokens" onClick={go}>Tokenize and score</button>
      {r && (
        <>
          <p>{r.ids.length} tokens · mean loss <b data-testid="mean-loss" data-value={String(r.mean_loss)}>{fmt(r.mean_loss)}</b> nats</p>
          <div class="chips" data-testid="token-chips">
            {r.tokens.map((t, i) => (
              <span class="chip" title={`id ${r.ids[i]} · loss of the next token ${fmt(r.loss[i])}`} data-loss={r.loss[i] ?? ''}
                style={{ background: r.loss[i] === null ? '#eee' : `rgba(220, 60, 40, ${(r.loss[i]! / maxLoss) * 0.8})` }}>{t}</span>
            ))}
          </div>
          <div class="row">
            <PlotFigure deps={[r]} make={() => Plot.plot({
              title: 'Loss of the next token at each position', height: 220, width: 520, x: { label: 'position' }, y: { label: 'nats', grid: true },
              marks: [Plot.barY(r.loss.map((l, i) => ({ i, l: l ?? 0, t: r.tokens[i] })), { x: 'i', y: 'l', fill: 'steelblue', tip: true, channels: { token: 't' } })],
            })} />
            <PlotFigure testid="next-dist" deps={[r]} make={() => Plot.plot({
              title: 'Next-token distribution (last position)', height: 220, width: 420, marginLeft: 90, x: { label: 'probability', domain: [0, 1] },
              marks: [Plot.barX(r.next, { y: 'token', x: 'prob', fill: 'darkorange', sort: { y: '-x' }, tip: true })],
            })} />
          </div>
        </>
      )}
    </section>
  );
}
