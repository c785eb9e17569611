// Steering playground: a vector from two prompt sets (mean difference of the residual after the
// chosen block), added with a strength; the unsteered and steered continuations stream side by side.
import { useState } from 'preact/hooks';
import type { ViewProps } from '../context.js';
import { fmt } from '../plot.js';

interface SteerResult { layer: number; strength: number; hook: string; vector_norm: number; separation: number; base: { text: string; tokens: string[] }; steered: { text: string; tokens: string[] } }

export function SteerView({ prompt, run, info }: ViewProps) {
  const ids = !info.text_tokenizer;
  const [pos, setPos] = useState(ids ? '1 5 9 12\n1 5 9 30' : 'I love this. It is wonderful and happy.\nWhat a great, kind and lovely day.');
  const [neg, setNeg] = useState(ids ? '1 30 7 40\n1 30 7 41' : 'I hate this. It is awful and sad.\nWhat a terrible, cruel and horrid day.');
  const [layer, setLayer] = useState(Math.min(1, info.dims.nLayers - 1));
  const [strength, setStrength] = useState(4);
  const [maxNew, setMaxNew] = useState(24);
  const [streams, setStreams] = useState<{ base: string[]; steered: string[] }>({ base: [], steered: [] });
  const [r, setR] = useState<SteerResult | null>(null);
  const go = async () => {
    const s = { base: [] as string[], steered: [] as string[] };
    setStreams({ ...s });
    setR(null);
    const out = await run('steer', { prompt, positives: pos, negatives: neg, layer, strength, max_new_tokens: maxNew }, (e) => {
      if (e.type !== 'token') return;
      s[e.side].push(e.token);
      setStreams({ base: [...s.base], steered: [...s.steered] });
    });
    setR(out as SteerResult | null);
  };
  const join = (t: string[]) => (ids ? t.join(' ') : t.join(''));
  return (
    <section>
      <div class="row">
        <label class="col">Positive set (one per line)<textarea data-testid="steer-pos" rows={4} value={pos} onInput={(e) => setPos((e.target as HTMLTextAreaElement).value)} /></label>
        <label class="col">Negative set (one per line)<textarea data-testid="steer-neg" rows={4} value={neg} onInput={(e) => setNeg((e.target as HTMLTextAreaElement).value)} /></label>
      </div>
      <p>
        <label>Layer <select data-testid="steer-layer" value={layer} onChange={(e) => setLayer(Number((e.target as HTMLSelectElement).value))}>
          {Array.from({ length: info.dims.nLayers }, (_, l) => <option value={l}>{l}</option>)}</select></label>{' '}
        <label>Strength <input data-testid="steer-strength" type="range" min={-20} max={20} step={0.5} value={strength} onInput={(e) => setStrength(Number((e.target as HTMLInputElement).value))} /> <output>{strength}</output></label>{' '}
        <label>New tokens <input data-testid="steer-max" type="number" min={1} max={256} value={maxNew} onInput={(e) => setMaxNew(Number((e.target as HTMLInputElement).value))} /></label>{' '}
        <button data-testid="run-steer" onClick={go}>Generate both</button>
      </p>
      <div class="row">
        <div class="col stream"><h3>Unsteered</h3><pre data-testid="stream-base">{join(streams.base)}</pre></div>
        <div class="col stream"><h3>Steered ({r ? r.hook : `layer ${layer}`}, × {strength})</h3><pre data-testid="stream-steered">{join(streams.steered)}</pre></div>
      </div>
      {r && <p data-testid="steer-done">Vector ‖v‖ = {fmt(r.vector_norm)}, separation of the two sets along it {fmt(r.separation, 2)}.</p>}
    </section>
  );
}
