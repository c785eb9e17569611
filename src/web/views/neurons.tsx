// Neurons and SAE features. Neurons: a unit's top-activating contexts over a corpus pasted here
// (harvested into an activation store in memory) or, on the lab server, over an activation store
// in its folders (`actlab cache`), clustered into facets, and its effect on the prompt's next-token
// logits (read by zeroing it). SAE features (on the lab server: a SAELens folder in its folders):
// each feature's density, top-activating contexts with its activation at every token, logit
// effects through the unembedding and a histogram, as the library's featureViews computes them.
import * as Plot from '@observablehq/plot';
import { useState } from 'preact/hooks';
import type { ViewProps } from '../context.js';
import { fmt, PlotFigure } from '../plot.js';

interface Example { value: number; token: string; window: number[]; at: number; text: string; context: number; pos: number }
interface Row { id: number; token: string; change: number; prob_before: number }
interface NeuronsResult {
  hook: string; neuron: number; source: string; contexts: number; scanned: number; examples: Example[];
  facets: { size: number; top_tokens: string[]; examples: Example[] }[];
  effect: { promoted: Row[]; suppressed: Row[] } | null;
}
interface LogitRow { token: number; text?: string; logit: number }
interface FeatureExample { context: number; position: number; activation: number; tokens: number[]; text?: string[]; acts: number[] }
interface FeatureView {
  feature: number; density: number; maxActivation: number; examples: FeatureExample[];
  logits?: { promoted: LogitRow[]; suppressed: LogitRow[] }; histogram: { edges: number[]; counts: number[] };
}
interface FeaturesResult { site: string; tokens: number; contexts: number; source: string; sae: { architecture: string; d_in: number; d_sae: number }; features: FeatureView[] }

const SAMPLE = [
  'Once upon a time, there was a little girl named Lily. She loved to play outside in the park.',
  'One day, a big dog came to the park. The dog was very happy and wanted to play with Lily.',
  'Tom had a red ball. He liked to throw the ball to his friend Sue. Sue laughed and ran after it.',
  'The sun was hot, so the cat slept under a tree. A bird sang a song and the cat woke up.',
  'Mom made a cake for Ben. Ben said thank you and gave Mom a big hug. They ate the cake together.',
  'The little boat went on the water. The wind was strong and the boat went fast. The boy was scared.',
].join('\n');

function FeatureCard({ v }: { v: FeatureView }) {
  const bins = v.histogram.counts.map((c, i) => ({ x1: v.histogram.edges[i]!, x2: v.histogram.edges[i + 1]!, c }));
  const word = (e: FeatureExample, i: number) => (e.text ? e.text[i]! : String(e.tokens[i]));
  return (
    <div class="feature" data-testid={`feature-${v.feature}`}>
      <h3>Feature {v.feature}: density {fmt(100 * v.density, 3)}% of tokens, max activation {fmt(v.maxActivation)}</h3>
      <div class="row">
        <PlotFigure deps={[v]} make={() => Plot.plot({
          title: 'non-zero activations', width: 320, height: 160, x: { label: 'activation' }, y: { label: 'count', grid: true },
          marks: [Plot.rectY(bins, { x1: 'x1', x2: 'x2', y: 'c', fill: '#e8590c', tip: true })],
        })} />
        {v.logits && (
          <>
            <div class="col"><h3>Promotes</h3><table class="small" data-testid={`feature-${v.feature}-promoted`}>
              {v.logits.promoted.map((t) => <tr data-token={String(t.token)} data-logit={String(t.logit)}><td>{t.text ?? t.token}</td><td>{fmt(t.logit)}</td></tr>)}</table></div>
            <div class="col"><h3>Suppresses</h3><table class="small">
              {v.logits.suppressed.map((t) => <tr data-token={String(t.token)} data-logit={String(t.logit)}><td>{t.text ?? t.token}</td><td>{fmt(t.logit)}</td></tr>)}</table></div>
          </>
        )}
      </div>
      <table class="small" data-testid={`feature-${v.feature}-examples`}>
        <thead><tr><th>activation</th><th>context (shaded by the feature's activation)</th></tr></thead>
        <tbody>{v.examples.map((e) => (
          <tr data-value={String(e.activation)} data-context={String(e.context)} data-position={String(e.position)}>
            <td>{fmt(e.activation)}</td>
            <td class="chips" style={{ whiteSpace: 'pre' }}>{e.tokens.map((_, i) => <span title={fmt(e.acts[i]!)} style={{ background: `rgba(255,110,0,${v.maxActivation > 0 ? Math.min(1, Math.max(0, e.acts[i]! / v.maxActivation)).toFixed(3) : 0})` }}>{word(e, i).replace(/\n/g, '⏎')}</span>)}</td>
          </tr>
        ))}</tbody>
      </table>
    </div>
  );
}

export function NeuronsView({ prompt, run, info, server }: ViewProps) {
  const hasMlp = info.dims.dMlp > 0;
  const [units, setUnits] = useState<'neurons' | 'sae'>('neurons');
  const [source, setSource] = useState<'corpus' | 'store'>('corpus');
  const [store, setStore] = useState('');
  const [sae, setSae] = useState('');
  const [features, setFeatures] = useState('');
  const [site, setSite] = useState(hasMlp ? 'mlp' : 'resid');
  const [layer, setLayer] = useState(0);
  const [neuron, setNeuron] = useState(0);
  const [context, setContext] = useState(Math.min(16, info.dims.nCtx));
  const [corpus, setCorpus] = useState(SAMPLE);
  const [r, setR] = useState<NeuronsResult | null>(null);
  const [fr, setFr] = useState<FeaturesResult | null>(null);
  const fromStore = server && source === 'store';
  if (!info.text_tokenizer && !server) return <section><p>The neurons view reads a text corpus; this model has no tokenizer.</p></section>;
  const where = () => (fromStore ? { store } : { corpus, context });
  const go = async () => {
    if (units === 'sae') {
      const list = features.split(',').map((s) => s.trim()).filter(Boolean).map(Number);
      setR(null);
      setFr((await run('features', { sae, ...where(), ...(list.length ? { features: list } : { top: 4 }), examples: 8 })) as FeaturesResult | null);
    } else {
      setFr(null);
      setR((await run('neurons', { site, layer, neuron, ...where(), prompt, k: 10 })) as NeuronsResult | null);
    }
  };
  const num = (v: number, set: (n: number) => void, testid: string, max: number) => <input data-testid={testid} type="number" min={0} max={max} value={v} onInput={(e) => set(Number((e.target as HTMLInputElement).value))} />;
  const text = (v: string, set: (s: string) => void, testid: string, placeholder: string) => <input data-testid={testid} type="text" size={40} placeholder={placeholder} value={v} onInput={(e) => set((e.target as HTMLInputElement).value)} />;
  const windowOf = (e: Example) => <span class="chips">{e.text}</span>;
  return (
    <section>
      {server && (
        <p>
          <label>Units <select data-testid="neurons-units" value={units} onChange={(e) => setUnits((e.target as HTMLSelectElement).value as 'neurons' | 'sae')}><option value="neurons">neurons / residual dimensions</option><option value="sae">SAE features</option></select></label>{' '}
          <label>Source <select data-testid="neurons-source" value={source} onChange={(e) => setSource((e.target as HTMLSelectElement).value as 'corpus' | 'store')}><option value="corpus">corpus pasted below</option><option value="store">activation store on the server</option></select></label>
        </p>
      )}
      {fromStore
        ? <p><label>Activation store (a folder written by <code>actlab cache</code>, inside the folders the lab serves) {text(store, setStore, 'neurons-store', '/path/to/store')}</label></p>
        : <label class="prompt">Corpus (one document per line)<textarea data-testid="neurons-corpus" rows={5} value={corpus} onInput={(e) => setCorpus((e.target as HTMLTextAreaElement).value)} /></label>}
      {units === 'sae'
        ? (
          <p>
            <label>SAE (SAELens folder on the server) {text(sae, setSae, 'features-sae', '/path/to/sae')}</label>{' '}
            <label>Features {text(features, setFeatures, 'features-list', 'e.g. 3,17 (default: the most frequent)')}</label>{' '}
            {!fromStore && <label>Context {num(context, setContext, 'neurons-context', info.dims.nCtx)}</label>}{' '}
            <button data-testid="run-features" onClick={go}>Feature views</button>
          </p>
        )
        : (
          <p>
            <label>Site <select value={site} onChange={(e) => setSite((e.target as HTMLSelectElement).value)}>{hasMlp && <option value="mlp">MLP neuron (mlp.hook_post)</option>}<option value="resid">residual dimension (hook_resid_post)</option></select></label>{' '}
            <label>Layer {num(layer, setLayer, 'neurons-layer', info.dims.nLayers - 1)}</label>{' '}
            <label>Unit {num(neuron, setNeuron, 'neurons-unit', (site === 'mlp' ? info.dims.dMlp : info.dims.dModel) - 1)}</label>{' '}
            {!fromStore && <label>Context {num(context, setContext, 'neurons-context', info.dims.nCtx)}</label>}{' '}
            <button data-testid="run-neurons" onClick={go}>Top contexts</button>
          </p>
        )}
      {r && (
        <>
          <p><code>{r.hook}</code> unit {r.neuron}: {r.scanned} positions in {r.contexts} contexts of the {r.source} scanned.</p>
          <table class="small" data-testid="neurons-examples">
            <thead><tr><th>activation</th><th>token</th><th>context</th></tr></thead>
            <tbody>{r.examples.map((e) => <tr data-value={String(e.value)}><td>{fmt(e.value)}</td><td><b>{e.token}</b></td><td>{windowOf(e)}</td></tr>)}</tbody>
          </table>
          {r.facets.length > 0 && <p>Facets: {r.facets.map((f, i) => <span>{i > 0 && ' · '}{f.size} examples, mostly {f.top_tokens.slice(0, 4).join(', ')}</span>)}</p>}
          {r.effect && (
            <div class="row">
              <div class="col"><h3>Promoted at the prompt's last position (logit drop when zeroed)</h3>
                <table class="small">{r.effect.promoted.map((t) => <tr><td>{t.token}</td><td>{fmt(-t.change)}</td></tr>)}</table></div>
              <div class="col"><h3>Suppressed (logit rise when zeroed)</h3>
                <table class="small">{r.effect.suppressed.map((t) => <tr><td>{t.token}</td><td>{fmt(t.change)}</td></tr>)}</table></div>
            </div>
          )}
        </>
      )}
      {fr && (
        <>
          <p data-testid="features-summary"><code>{fr.site}</code>: {fr.sae.architecture} SAE, {fr.sae.d_sae} features; {fr.tokens} tokens in {fr.contexts} contexts of the {fr.source}.</p>
          {fr.features.map((v) => <FeatureCard v={v} />)}
        </>
      )}
    </section>
  );
}
