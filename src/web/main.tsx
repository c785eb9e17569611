// The lab page: pick where the model runs (this tab's worker, or the lab server when the page was
// opened from `actlab lab` with its token), load a model, write a prompt, and open the views.
// Long work shows its progress and a Cancel button; the page itself never computes.
import { render } from 'preact';
import { useEffect, useMemo, useState } from 'preact/hooks';
import type { ModelInfo, ViewProps } from './context.js';
import { modelUrls } from './load.js';
import type { LabEvent } from './protocol.js';
import { ServerRunner, TabRunner, type Job, type Runner } from './runner.js';
import { ActivationsView } from './views/activations.js';
import { AblateView } from './views/ablate.js';
import { AttentionView } from './views/attention.js';
import { LensView } from './views/lens.js';
import { NeuronsView } from './views/neurons.js';
import { PatchView } from './views/patch.js';
import { SteerView } from './views/steer.js';
import { TokensView } from './views/tokens.js';
import './style.css';

const VIEWS: { key: string; title: string; C: (p: ViewProps) => preact.JSX.Element }[] = [
  { key: 'tokens', title: 'Tokens & loss', C: TokensView },
  { key: 'attention', title: 'Attention', C: AttentionView },
  { key: 'lens', title: 'Logit lens', C: LensView },
  { key: 'activations', title: 'Activations', C: ActivationsView },
  { key: 'neurons', title: 'Neurons', C: NeuronsView },
  { key: 'steer', title: 'Steering', C: SteerView },
  { key: 'ablate', title: 'Ablation', C: AblateView },
  { key: 'patch', title: 'Patching', C: PatchView },
];

const ORGANISMS = ['induction', 'modular-addition'];
const token = new URLSearchParams(location.search).get('token');

function defaultPrompt(info: ModelInfo): string {
  if (!info.text_tokenizer) return info.name === 'modular-addition' ? '5 7 113' : '1 5 9 12 30 7 41 5 9 12 30 7';
  return 'Once upon a time, there was a little girl named Lily. She';
}

function App() {
  const server = useMemo(() => (token ? new ServerRunner(token) : null), []);
  const [tab, setTab] = useState<TabRunner | null>(null);
  const [mode, setMode] = useState<'tab' | 'server'>(token ? 'server' : 'tab');
  const [backend, setBackend] = useState('js');
  const [info, setInfo] = useState<ModelInfo | null>(null);
  const [prompt, setPrompt] = useState('');
  const [view, setView] = useState('tokens');
  const [busy, setBusy] = useState<{ what: string; done: number; total: number; job: Job | null } | null>(null);
  const [error, setError] = useState('');
  const [organism, setOrganism] = useState('induction');
  const [url, setUrl] = useState('');
  const [serverModels, setServerModels] = useState<{ path: string; files: { name: string; path: string }[] }[]>([]);
  const [serverPick, setServerPick] = useState('');

  useEffect(() => {
    server?.models().then(async (m) => {
      setServerModels(m.models);
      // The tab uses the server's backend by default, so that both modes give the same numbers.
      if (['js', 'wasm', 'webgpu'].includes(m.backend)) setBackend(m.backend);
      setServerPick(m.models[0]?.path ?? '');
      // A model the server loaded at start (actlab lab --model M) is ready to use.
      if (m.loaded) loaded(await server.view('info', {}).result);
    }).catch((e: Error) => setError(e.message));
  }, [server]);

  const runner = (): Runner => {
    if (mode === 'server' && server) return server;
    if (tab) return tab;
    const t = new TabRunner();
    setTab(t);
    return t;
  };

  /** Runs one job with progress and cancel; null when it failed (the error is shown) or was cancelled. */
  async function track(what: string, start: (onEvent: (e: LabEvent) => void) => Job): Promise<Record<string, unknown> | null> {
    setError('');
    const state = { what, done: 0, total: 0, job: null as Job | null };
    const job = start((e) => { if (e.type === 'progress') setBusy({ ...state, what: `${what}: ${e.what}`, done: e.done, total: e.total }); });
    state.job = job;
    setBusy({ ...state });
    try {
      return await job.result;
    } catch (e) {
      setError(`${what}: ${(e as Error).message}`);
      return null;
    } finally {
      setBusy(null);
    }
  }

  const loaded = (v: Record<string, unknown> | null) => {
    if (!v) return;
    const i = v as unknown as ModelInfo;
    setInfo(i);
    setPrompt(defaultPrompt(i));
  };
  const loadOrganism = async () => { const r = runner(); loaded(await track(`loading ${organism}`, (on) => r.load({ organism }, backend, on))); };
  const loadUrl = async () => { const r = runner(); if (r.mode === 'tab') loaded(await track(`loading ${url}`, (on) => r.load({ urls: modelUrls(url), name: url }, backend, on))); };
  const loadFiles = async (files: FileList | null) => {
    if (!files?.length) return;
    const r = runner();
    if (r.mode !== 'tab') { setError('picked files run in the tab: switch "Run in" to this tab'); return; }
    loaded(await track('loading files', (on) => r.load({ files: Array.from(files, (f) => ({ name: f.name, blob: f })) }, backend, on)));
  };
  const loadServerModel = async () => {
    if (!serverPick || !server) return;
    const r = runner();
    if (r.mode === 'server') loaded(await track(`loading ${serverPick}`, (on) => r.load({ path: serverPick }, backend, on)));
    else {
      // The same files the server reads, fetched through its /api/file route.
      const files = serverModels.find((m) => m.path === serverPick)?.files ?? [];
      const urls = files.map((f) => ({ name: f.name, url: server.url(`file?path=${encodeURIComponent(f.path)}`) }));
      loaded(await track(`loading ${serverPick} in the tab`, (on) => r.load({ urls, name: serverPick }, backend, on)));
    }
  };

  const run: ViewProps['run'] = (name, args, onEvent) => {
    const r = runner();
    return track(name, (on) => r.view(name, args, (e) => { on(e); onEvent?.(e); }));
  };

  return (
    <>
      <header>
        <h1>actlab lab</h1>
        <span class="mode">
          {server
            ? <label>Run in <select data-testid="mode" value={mode} onChange={(e) => { setMode((e.target as HTMLSelectElement).value as 'tab' | 'server'); setInfo(null); setError(''); }}>
              <option value="server">the lab server (Node)</option><option value="tab">this tab (worker)</option></select></label>
            : <span>Runs in this tab (no server)</span>}
          {mode === 'tab' && <label> backend <select data-testid="backend" value={backend} onChange={(e) => setBackend((e.target as HTMLSelectElement).value)}><option value="js">js (reference)</option><option value="wasm">wasm</option><option value="webgpu">webgpu</option></select></label>}
        </span>
      </header>
      <div class="load">
        <label>Organism <select data-testid="organism" value={organism} onChange={(e) => setOrganism((e.target as HTMLSelectElement).value)}>{ORGANISMS.map((o) => <option>{o}</option>)}</select></label>
        <button data-testid="load-organism" onClick={loadOrganism}>Load</button>
        {server && (
          <>
            <label> · On the server's disk <select data-testid="server-model" value={serverPick} onChange={(e) => setServerPick((e.target as HTMLSelectElement).value)}>{serverModels.map((m) => <option value={m.path} title={m.path}>{m.path.split('/').slice(-2).join('/')}</option>)}</select></label>
            <button data-testid="load-server-model" onClick={loadServerModel} disabled={!serverPick}>Load</button>
          </>
        )}
        {mode === 'tab' && (
          <>
            <label> · Files <input data-testid="files" type="file" multiple onChange={(e) => loadFiles((e.target as HTMLInputElement).files)} /></label>
            <label> · URL <input data-testid="url" size={30} placeholder="https://…/model.gguf or an HF folder" value={url} onInput={(e) => setUrl((e.target as HTMLInputElement).value)} /></label>
            <button data-testid="load-url" onClick={loadUrl} disabled={!url}>Load</button>
          </>
        )}
      </div>
      <div class="status">
        {info && <span data-testid="model-info">{info.name} · {info.dims.arch} · {info.dims.nLayers} layers × {info.dims.nHeads} heads · d_model {info.dims.dModel} · vocab {info.dims.vocabSize} · {mode === 'server' ? 'server' : 'tab'} on {info.backend}</span>}
        {busy && (
          <span class="busy" data-testid="busy">{busy.what}{busy.total > 0 && <> <progress max={busy.total} value={busy.done} /> {busy.done}/{busy.total}</>}
            {' '}<button data-testid="cancel" onClick={() => busy.job?.cancel()}>Cancel</button></span>
        )}
        {error && <span class="error" data-testid="error">{error}</span>}
      </div>
      {info && (
        <>
          <label class="prompt">Prompt{info.text_tokenizer ? '' : ' (token ids: this model has no tokenizer)'}
            <textarea data-testid="prompt" rows={2} value={prompt} onInput={(e) => setPrompt((e.target as HTMLTextAreaElement).value)} /></label>
          <nav>{VIEWS.map((v) => <button data-testid={`tab-${v.key}`} class={v.key === view ? 'active' : ''} onClick={() => { setView(v.key); setError(''); }}>{v.title}</button>)}</nav>
          {/* Every view stays mounted (hidden when not shown), so its last result is there when you come back. */}
          {VIEWS.map(({ key, C }) => (
            <main data-testid={`view-${key}`} hidden={key !== view}><C key={`${key}-${info.name}-${mode}`} info={info} prompt={prompt} server={mode === 'server'} run={run} /></main>
          ))}
        </>
      )}
    </>
  );
}

render(<App />, document.getElementById('app')!);
