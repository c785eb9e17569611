// The one place that knows how threads are spawned: Node worker_threads (eval'd source) or, in a
// browser, a Web Worker from a Blob URL. The worker source is a script that defines
// `function workerMain(env)`; this adapter calls it with `env.data` (structured-cloned: shared
// memory and compiled modules travel by reference), `env.onExit` and `env.exit`.
// Not for: job dispatch (pool.ts does that through shared memory, not messages).
import { isNode } from './features.js';

export interface WorkerEnv {
  data: unknown;
  /** Runs `fn(code)` when the thread is about to exit (Node only; a no-op in browsers). */
  onExit(fn: (code: number) => void): void;
  /** Ends the thread now (used by tests to simulate a crash). */
  exit(code: number): void;
}

export interface WorkerHandle {
  /** Called once when the thread ends, with its exit code and the error that ended it, if any. */
  onExit(fn: (code: number, error?: Error) => void): void;
  terminate(): void;
}

/** Whether this thread may block in Atomics.wait (false on a browser's main thread). */
export function canBlock(): boolean {
  if (isNode()) return true;
  const g = globalThis as { WorkerGlobalScope?: unknown; document?: unknown };
  return typeof g.WorkerGlobalScope !== 'undefined' || typeof g.document === 'undefined';
}

/** Number of hardware threads this process may use. */
export async function hardwareThreads(): Promise<number> {
  if (isNode()) {
    const os = await import('node:os');
    return typeof os.availableParallelism === 'function' ? os.availableParallelism() : os.cpus().length;
  }
  const nav = (globalThis as { navigator?: { hardwareConcurrency?: number } }).navigator;
  return nav?.hardwareConcurrency ?? 1;
}

/** Starts a thread running `source` (which defines `workerMain(env)`) with `data`. */
export async function spawnWorker(source: string, data: unknown): Promise<WorkerHandle> {
  return isNode() ? spawnNode(source, data) : spawnBrowser(source, data);
}

async function spawnNode(source: string, data: unknown): Promise<WorkerHandle> {
  const { Worker } = await import('node:worker_threads');
  const prelude = `
    const { workerData } = require('node:worker_threads');
    const env = {
      data: workerData,
      onExit: (fn) => process.on('exit', fn),
      exit: (code) => process.exit(code),
    };`;
  const worker = new Worker(`${prelude}\n${source}\nworkerMain(env);`, { eval: true, workerData: data });
  worker.unref(); // an undisposed backend must not keep the process alive
  let lastError: Error | undefined;
  worker.on('error', (e) => { lastError = e instanceof Error ? e : new Error(String(e)); });
  return {
    onExit(fn) {
      worker.once('exit', (code) => fn(code, lastError));
    },
    terminate() {
      void worker.terminate();
    },
  };
}

function spawnBrowser(source: string, data: unknown): WorkerHandle {
  const prelude = `
    self.onmessage = (e) => {
      self.onmessage = null;
      workerMain({ data: e.data, onExit: () => {}, exit: () => self.close() });
    };`;
  const url = URL.createObjectURL(new Blob([`${source}\n${prelude}`], { type: 'text/javascript' }));
  const worker = new Worker(url);
  URL.revokeObjectURL(url);
  worker.postMessage(data);
  const exits: ((code: number, error?: Error) => void)[] = [];
  worker.onerror = (ev) => {
    const err = new Error(ev.message || 'worker error');
    for (const fn of exits.splice(0)) fn(1, err);
  };
  return {
    onExit(fn) {
      exits.push(fn);
    },
    terminate() {
      worker.terminate();
      for (const fn of exits.splice(0)) fn(1);
    },
  };
}
