// The page's engine: a Web Worker that holds the model and runs the lab's views (src/lab/views.ts)
// one job at a time, so nothing blocks the page. A cancel message marks its job; the view stops
// at its next step (views yield between layers and tokens).
import '../backends/index.js';
import { LabCancelledError, runView, type LabModel } from '../lab/views.js';
import { loadFiles, loadUrls } from './load.js';
import type { FromWorker, LabEvent, ToWorker } from './protocol.js';

const scope = self as unknown as { postMessage(m: FromWorker): void; onmessage: ((e: MessageEvent<ToWorker>) => void) | null };
let current: LabModel | null = null;
const cancelled = new Set<number>();
let tail: Promise<unknown> = Promise.resolve();

const post = (job: number, event: LabEvent) => scope.postMessage({ job, event });

async function job(msg: Exclude<ToWorker, { kind: 'cancel' }>): Promise<void> {
  const signal = { get aborted() { return cancelled.has(msg.id); } };
  try {
    if (signal.aborted) throw new LabCancelledError();
    if (msg.kind === 'load') {
      const progress = (done: number, total: number) => post(msg.id, { type: 'progress', done, total, what: 'loading weights' });
      const s = msg.spec;
      const m = 'files' in s ? await loadFiles(s.files, msg.backend, s.files.map((f) => f.name).join(', '), progress)
          : await loadUrls(s.urls, msg.backend, s.name, progress);
      current?.model.dispose();
      current = m;
      post(msg.id, { type: 'result', value: await runView(m, 'info', {}) });
      return;
    }
    if (!current) throw new Error('no model is loaded');
    const value = await runView(current, msg.name, msg.args, {
      signal,
      emit: (ev) => post(msg.id, ev as LabEvent),
      progress: (done, total, what) => post(msg.id, { type: 'progress', done, total, what }),
    });
    post(msg.id, { type: 'result', value });
  } catch (e) {
    post(msg.id, { type: 'error', message: e instanceof LabCancelledError ? 'cancelled' : (e as Error).message ?? String(e) });
  } finally {
    cancelled.delete(msg.id);
  }
}

scope.onmessage = (e) => {
  const msg = e.data;
  if (msg.kind === 'cancel') { cancelled.add(msg.id); return; }
  tail = tail.then(() => job(msg));
};
