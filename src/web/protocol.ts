// The messages between the page and its worker (and, as NDJSON events, the lab server's answers):
// one job id per request; progress, streamed tokens, then a result or an error.
export type LoadSpec =
  | { files: { name: string; blob: Blob }[] }
  | { urls: { name: string; url: string; optional?: boolean }[]; name: string };

export type ToWorker =
  | { id: number; kind: 'load'; spec: LoadSpec; backend: string }
  | { id: number; kind: 'view'; name: string; args: Record<string, unknown> }
  | { id: number; kind: 'cancel' };

export type LabEvent =
  | { type: 'progress'; done: number; total: number; what: string }
  | { type: 'token'; side: 'base' | 'steered'; step: number; id: number; token: string }
  | { type: 'result'; value: Record<string, unknown> }
  | { type: 'error'; message: string; status?: number };

/** An event of job `job` (wrapped, not spread: a token event has an `id` of its own, the token's). */
export type FromWorker = { job: number; event: LabEvent };
