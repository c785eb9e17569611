// Where the page's work runs: in the tab (TabRunner, the worker) or on the lab server (ServerRunner,
// the /api routes with the run's token). Both take the same view names and arguments and report
// the same events, so every view is written once.
import type { FromWorker, LabEvent, LoadSpec, ToWorker } from './protocol.js';

export interface Job {
  result: Promise<Record<string, unknown>>;
  cancel(): void;
}

export interface Runner {
  readonly mode: 'tab' | 'server';
  load(spec: LoadSpec | { path: string } | { organism: string }, backend: string, onEvent?: (e: LabEvent) => void): Job;
  view(name: string, args: Record<string, unknown>, onEvent?: (e: LabEvent) => void): Job;
}

export class TabRunner implements Runner {
  readonly mode = 'tab' as const;
  private worker = new Worker(new URL('./worker.ts', import.meta.url), { type: 'module' });
  private next = 1;
  private listeners = new Map<number, (e: LabEvent) => void>();

  constructor() {
    this.worker.onmessage = (e: MessageEvent<FromWorker>) => this.listeners.get(e.data.job)?.(e.data.event);
  }

  private send(msg: Omit<Extract<ToWorker, { kind: 'load' }>, 'id'> | Omit<Extract<ToWorker, { kind: 'view' }>, 'id'>, onEvent?: (e: LabEvent) => void): Job {
    const id = this.next++;
    const result = new Promise<Record<string, unknown>>((ok, fail) => {
      this.listeners.set(id, (e) => {
        if (e.type === 'result') { this.listeners.delete(id); ok(e.value); } else if (e.type === 'error') { this.listeners.delete(id); fail(new Error(e.message)); } else onEvent?.(e);
      });
    });
    this.worker.postMessage({ id, ...msg });
    return { result, cancel: () => this.worker.postMessage({ id, kind: 'cancel' }) };
  }

  load(spec: LoadSpec | { organism: string }, backend: string, onEvent?: (e: LabEvent) => void): Job {
    if ('organism' in spec) {
      // The organisms ship beside the page (organisms/NAME/...), resolved against the page, not the worker.
      const at = (f: string) => new URL(`organisms/${spec.organism}/${f}`, document.baseURI).href;
      spec = { urls: [{ name: 'config.json', url: at('config.json') }, { name: 'model.safetensors', url: at('model.safetensors') }], name: spec.organism };
    }
    return this.send({ kind: 'load', spec, backend }, onEvent);
  }

  view(name: string, args: Record<string, unknown>, onEvent?: (e: LabEvent) => void): Job {
    return this.send({ kind: 'view', name, args }, onEvent);
  }
}

export class ServerRunner implements Runner {
  readonly mode = 'server' as const;
  constructor(readonly token: string) {}

  url(path: string): string {
    // Absolute, so that the worker (whose base is its script's URL) can fetch it too.
    return new URL(`api/${path}${path.includes('?') ? '&' : '?'}token=${encodeURIComponent(this.token)}`, document.baseURI).href;
  }

  private post(path: string, body: unknown, onEvent?: (e: LabEvent) => void): Job {
    const ac = new AbortController();
    const result = (async () => {
      const r = await fetch(this.url(path), { method: 'POST', body: JSON.stringify(body), headers: { 'Content-Type': 'application/json' }, signal: ac.signal });
      const type = r.headers.get('content-type') ?? '';
      if (!type.includes('ndjson')) {
        const j = (await r.json()) as Record<string, unknown>;
        if (!r.ok) throw new Error(String(j.error ?? `HTTP ${r.status}`));
        return j;
      }
      // NDJSON: one event per line, as the server writes them.
      const reader = r.body!.getReader();
      const dec = new TextDecoder();
      let buf = '';
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += dec.decode(value, { stream: true });
        let nl: number;
        while ((nl = buf.indexOf('\n')) >= 0) {
          const ev = JSON.parse(buf.slice(0, nl)) as LabEvent;
          buf = buf.slice(nl + 1);
          if (ev.type === 'result') return ev.value;
          if (ev.type === 'error') throw new Error(ev.message ?? (ev as { error?: string }).error);
          onEvent?.(ev);
        }
      }
      throw new Error('the server closed the answer before its result');
    })().catch((e: Error) => { throw ac.signal.aborted ? new Error('cancelled') : e; });
    return { result, cancel: () => ac.abort() };
  }

  load(spec: { path: string } | { organism: string }, _backend: string, onEvent?: (e: LabEvent) => void): Job {
    return this.post('load', spec, onEvent);
  }

  view(name: string, args: Record<string, unknown>, onEvent?: (e: LabEvent) => void): Job {
    return this.post(`view/${name}`, args, onEvent);
  }

  async models(): Promise<{ dirs: string[]; models: { path: string; files: { name: string; path: string }[] }[]; organisms: string[]; loaded: string | null; backend: string }> {
    const r = await fetch(this.url('models'));
    if (!r.ok) throw new Error(`the lab server answered ${r.status}`);
    return r.json();
  }
}
