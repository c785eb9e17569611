// Neurons: a unit's top-activating contexts over a corpus pasted here (harvested into an
// activation store in memory), clustered into facets, and its effect on the prompt's next-token
// logits (the tokens it promotes and suppresses, read by zeroing it).
import { useState } from 'preact/hooks';
import type { ViewProps } from '../context.js';
import { fmt } from '../plot.js';

interface Example { value: number; token: string; window: number[]; at: number; text: string; context: number; pos: number }
interface Row { id: number; token: string; change: number; prob_before: number }
interface NeuronsResult {
  hook: string; neuron: number; contexts: number; scanned: number; examples: Example[];
  facets: { size: number; top_tokens: string[]; examples: Example[] }[];
  effect: { promoted: Row[]; suppressed: Row[] } | null;
}

const SAMPLE = [
  'Once upon a time, there was a little girl named Lily. She loved to play outside in the park.',
  'One day, a big dog came to the park. The dog was very happy and wanted to play with Lily.',
  'Tom had a red ball. He liked to throw the ball to his friend Sue. Sue laughed and ran after it.',
  'The sun was hot, so the cat slept under a tree. A bird sang a song and the cat woke up.',
  'Mom made a cake for Ben. Ben said thank you and gave Mom a big hug. They ate the cake together.',
  'The little boat went on the water. The wind was strong and the boat went fast. The boy was scared.',
].join('\n');

export function NeuronsView({ prompt, run, info }: ViewProps) {
  const hasMlp = info.dims.dMlp > 0;
  const [site, setSite] = useState(hasMlp ? 'mlp' : 'resid');
  const [layer, setLayer] = useState(0);
  const [neuron, setNeuron] = useState(0);
  const [context, setContext] = useState(Math.min(16, info.dims.nCtx));
  const [corpus, setCorpus] = useState(SAMPLE);
  const [r, setR] = useState<NeuronsResult | null>(null);
  if (!info.text_tokenizer) return <section><p>The neurons view reads a text corpus; this model has no tokenizer.</p></section>;
  const go = async () => setR((await run('neurons', { site, layer, neuron, context, corpus, prompt, k: 10 })) as NeuronsResult | null);
  const num = (v: number, set: (n: number) => void, testid: string, max: number) => <input data-testid={testid} type="number" min={0} max={max} value={v} onInput={(e) => set(Number((e.target as HTMLInputElement).value))} />;
  const windowOf = (e: Example) => <span class="chips">{e.text}</span>;
  return (
    <section>
      <label class="prompt">Corpus (one document per line)<textarea data-testid="neurons-corpus" rows={5} value={corpus} onInput={(e) => setCorpus((e.target as HTMLTextAreaElement).value)} /></label>
      <p>
        <label>Site <select value={site} onChange={(e) => setSite((e.target as HTMLSelectElement).value)}>{hasMlp && <option value="mlp">MLP neuron (mlp.hook_post)</option>}<option value="resid">residual dimension (hook_resid_post)</option></select></label>{' '}
        <label>Layer {num(layer, setLayer, 'neurons-layer', info.dims.nLayers - 1)}</label>{' '}
        <label>Unit {num(neuron, setNeuron, 'neurons-unit', (site === 'mlp' ? info.dims.dMlp : info.dims.dModel) - 1)}</label>{' '}
        <label>Context {num(context, setContext, 'neurons-context', info.dims.nCtx)}</label>{' '}
        <button data-testid="run-neurons" onClick={go}>Top contexts</button>
      </p>
      {r && (
        <>
          <p><code>{r.hook}</code> unit {r.neuron}: {r.scanned} positions in {r.contexts} contexts scanned.</p>
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
    </section>
  );
}
