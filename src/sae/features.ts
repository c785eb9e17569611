// Feature views of an SAE over an activation store: for each feature its density, top-activating
// contexts (the tokens around each of its largest activations, with the activation at every token
// of the window), its logit effects (the decoder direction through the model's final norm and
// unembedding: the tokens it promotes and suppresses) and a histogram of its non-zero activations.
// As JSON (plain objects) and as a self-contained HTML page.
// Not for: metrics of the whole SAE (eval.ts).
import type { CausalLM } from '../models/model.js';
import type { ActivationStore } from '../store/reader.js';
import { tidy } from '../tensor/engine.js';
import { Tensor } from '../tensor/tensor.js';
import type { Tokenizer } from '../tokenizer/tokenizer.js';
import type { Sae } from './sae.js';
import { saeSite } from './splice.js';

export interface FeatureViewOptions {
  /** Features to describe (default: the `top` most frequent). */
  features?: number[];
  top?: number;
  /** Top contexts per feature (default 8). */
  examples?: number;
  /** Tokens shown before / after the activating token (default 8 / 3). */
  before?: number;
  after?: number;
  /** Tokens of the store read (default all). */
  maxTokens?: number;
  /** Promoted / suppressed tokens listed (default 10). */
  logitTokens?: number;
  bins?: number;
  site?: string;
}

export interface FeatureExample {
  context: number;
  position: number;
  activation: number;
  tokens: number[];
  /** Decoded tokens (when a tokenizer is given). */
  text?: string[];
  /** The feature's activation at each token of the window. */
  acts: number[];
}

export interface FeatureView {
  feature: number;
  density: number;
  maxActivation: number;
  examples: FeatureExample[];
  logits?: { promoted: { token: number; text?: string; logit: number }[]; suppressed: { token: number; text?: string; logit: number }[] };
  histogram: { edges: number[]; counts: number[] };
}

/** Views of features of `sae` over the rows of its site in `store` (tokens from the store's 'tokens'). */
export async function featureViews(sae: Sae, store: ActivationStore, o: FeatureViewOptions & { model?: CausalLM; tokenizer?: Tokenizer } = {}): Promise<{ site: string; tokens: number; features: FeatureView[] }> {
  const site = saeSite(sae, o.site);
  const P = store.manifest.context;
  const n = sae.dSae;
  const backend = o.model?.backend;
  const limit = o.maxTokens ?? Infinity;
  // Pass 1: every row's activations are needed for the windows, so they are kept for the chosen features only.
  const allActs: Float32Array[] = [];
  const fire = new Float64Array(n);
  let rows = 0;
  for await (const x of store.batches({ hook: site, batchSize: 64 * P, dtype: 'f32', ...(backend ? { backend } : {}) })) {
    const a = sae.encode(x);
    const host = a.dataSync() as Float32Array;
    a.dispose();
    x.dispose();
    for (let i = 0; i < host.length; i++) if (host[i] !== 0) fire[i % n]++;
    allActs.push(host);
    rows += host.length / n;
    if (rows >= limit) break;
  }
  const features = o.features ?? [...Array(n).keys()].sort((a, b) => fire[b]! - fire[a]! || a - b).slice(0, o.top ?? 16);
  for (const f of features) if (!Number.isInteger(f) || f < 0 || f >= n) throw new RangeError(`feature ${f} out of range (the SAE has ${n})`);
  const col = (f: number): Float32Array => {
    const out = new Float32Array(rows);
    let r = 0;
    for (const h of allActs) for (let i = 0; i < h.length / n && r < rows; i++, r++) out[r] = h[i * n + f]!;
    return out;
  };
  const tokens: Int32Array[] = [];
  for await (const t of store.batches({ hook: 'tokens', flatten: 'contexts', batchSize: 256, ...(backend ? { backend } : {}) })) {
    tokens.push(t.dataSync() as Int32Array);
    t.dispose();
  }
  const ids = new Int32Array(tokens.reduce((s, t) => s + t.length, 0));
  let off = 0;
  for (const t of tokens) { ids.set(t, off); off += t.length; }
  const k = o.examples ?? 8;
  const before = o.before ?? 8;
  const after = o.after ?? 3;
  const bins = o.bins ?? 20;
  const views: FeatureView[] = [];
  for (const f of features) {
    const c = col(f);
    let max = 0;
    const nz: number[] = [];
    for (let r = 0; r < rows; r++) if (c[r] !== 0) { nz.push(c[r]!); if (c[r]! > max) max = c[r]!; }
    // Top rows, at most one per context, largest first.
    const order = [...Array(rows).keys()].filter((r) => c[r]! > 0).sort((a, b) => c[b]! - c[a]!);
    const seen = new Set<number>();
    const examples: FeatureExample[] = [];
    for (const r of order) {
      const ctx = Math.floor(r / P);
      if (seen.has(ctx)) continue;
      seen.add(ctx);
      const pos = r % P;
      const lo = Math.max(0, pos - before);
      const hi = Math.min(P, pos + after + 1);
      const win = Array.from(ids.subarray(ctx * P + lo, ctx * P + hi));
      examples.push({
        context: ctx, position: pos, activation: c[r]!, tokens: win,
        ...(o.tokenizer ? { text: win.map((t) => tokenText(o.tokenizer!, t)) } : {}),
        acts: Array.from(c.subarray(ctx * P + lo, ctx * P + hi)),
      });
      if (examples.length >= k) break;
    }
    const edges = Array.from({ length: bins + 1 }, (_, i) => (max * i) / bins);
    const counts = new Array<number>(bins).fill(0);
    for (const v of nz) counts[Math.min(bins - 1, Math.floor((v / (max || 1)) * bins))]!++;
    views.push({ feature: f, density: fire[f]! / rows, maxActivation: max, examples, histogram: { edges, counts } });
  }
  if (o.model) {
    const model = o.model;
    const W = sae.param('W_dec');
    const d = sae.dOut;
    const m = o.logitTokens ?? 10;
    for (const v of views) {
      const dir = W.subarray(v.feature * d, (v.feature + 1) * d);
      const logits = tidy(() => model.logitsFromResidual(Tensor.from(dir, [1, 1, d], 'f32', model.backend)).dataSync() as Float32Array);
      const idx = [...logits.keys()].sort((a, b) => logits[b]! - logits[a]!);
      const name = (t: number) => (o.tokenizer ? { text: tokenText(o.tokenizer, t) } : {});
      v.logits = {
        promoted: idx.slice(0, m).map((t) => ({ token: t, ...name(t), logit: logits[t]! })),
        suppressed: idx.slice(-m).reverse().map((t) => ({ token: t, ...name(t), logit: logits[t]! })),
      };
    }
  }
  return { site, tokens: rows, features: views };
}

/** A token as it reads inside text: SentencePiece's ▁ and byte-level BPE's Ġ / Ċ as the space and newline they stand for. */
function tokenText(t: Tokenizer, id: number): string {
  const piece = t.idToToken(id);
  if (piece === undefined) return t.decode([id]);
  return piece.replace(/<0x([0-9A-Fa-f]{2})>/g, (_, h: string) => String.fromCharCode(parseInt(h, 16))).replace(/▁/g, ' ').replace(/Ġ/g, ' ').replace(/Ċ/g, '\n');
}

const esc = (s: string) => s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!);

/**
 * A self-contained HTML page of feature views. The histograms are a few rectangles of inline SVG,
 * written directly: a plotting library would add weight and nothing a bar chart needs.
 */
export function featureViewsHtml(r: { site: string; tokens: number; features: FeatureView[] }, title = 'SAE features'): string {
  const cards = r.features.map((v) => {
    const ex = v.examples.map((e) => {
      const cells = e.tokens.map((t, i) => {
        const a = e.acts[i]!;
        const alpha = v.maxActivation > 0 ? Math.min(1, a / v.maxActivation) : 0;
        const label = e.text ? e.text[i]! : String(t);
        return `<span title="${a.toFixed(3)}" style="background:rgba(255,110,0,${alpha.toFixed(3)})">${esc(label).replace(/\n/g, '⏎')}</span>`;
      }).join('');
      return `<div class="ex"><b>${e.activation.toFixed(2)}</b> ${cells}</div>`;
    }).join('');
    const hmax = Math.max(1, ...v.histogram.counts);
    const bw = 240 / v.histogram.counts.length;
    const bars = v.histogram.counts.map((c, i) => `<rect x="${(i * bw).toFixed(1)}" y="${(60 - (60 * c) / hmax).toFixed(1)}" width="${(bw - 1).toFixed(1)}" height="${((60 * c) / hmax).toFixed(1)}" fill="#e8590c"/>`).join('');
    const tok = (l: { token: number; text?: string; logit: number }) => `<code>${esc(l.text ?? String(l.token))}</code> ${l.logit.toFixed(2)}`;
    const logits = v.logits ? `<p>promotes: ${v.logits.promoted.map(tok).join(', ')}</p><p>suppresses: ${v.logits.suppressed.map(tok).join(', ')}</p>` : '';
    return `<section><h2>feature ${v.feature}</h2><p>density ${(v.density * 100).toFixed(3)}% of tokens, max activation ${v.maxActivation.toFixed(3)}</p>`
      + `<svg width="240" height="62" role="img" aria-label="activation histogram">${bars}</svg><p class="axis">0 … ${v.maxActivation.toFixed(2)}</p>${logits}${ex}</section>`;
  }).join('\n');
  return `<!doctype html><html><head><meta charset="utf-8"><title>${esc(title)}</title><style>
body{font-family:system-ui,sans-serif;margin:2em;max-width:1100px}section{border-top:1px solid #ccc;padding:.5em 0}
.ex{font-family:ui-monospace,monospace;white-space:pre;margin:.2em 0;overflow-x:auto}.ex span{padding:0 1px}.axis{font-size:80%;color:#666;margin:0}
</style></head><body><h1>${esc(title)}</h1><p>${esc(r.site)}, ${r.tokens} tokens</p>
${cards}
</body></html>
`;
}
