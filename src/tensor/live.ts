// Live-tensor bookkeeping: how many tensors and buffers are alive, how many bytes they hold, and
// which op made them. JavaScript frees nothing on time, so a forgotten `dispose()` shows up here
// first; an allocation that fails (a backend out of memory) reports this summary in its error.
// Cheap on purpose: one counter per tensor handle, one map entry per op name for buffers.
// Not for: freeing anything (tensor.ts and engine.ts own that).

interface Origin {
  buffers: number;
  bytes: number;
}

const origins = new Map<string, Origin>();
let tensors = 0;
let buffers = 0;
let bytes = 0;
/** The op whose outputs are being allocated (set by the engine's dispatch), else null. */
let site: string | null = null;

export interface LiveOrigin {
  /** The op (or creation function) that made the buffers. */
  origin: string;
  buffers: number;
  bytes: number;
}

export interface LiveTensors {
  /** Tensor handles not disposed (views of one buffer count one each). */
  tensors: number;
  /** Backend buffers not freed (a buffer is freed when its last tensor is disposed). */
  buffers: number;
  bytes: number;
  /** Live buffers by the op that made them, most bytes first. */
  byOrigin: LiveOrigin[];
}

/** Runs `fn` with `name` as the origin of the buffers it allocates (the engine's dispatch uses it). */
export function allocatingFor<T>(name: string, fn: () => T): T {
  const outer = site;
  site = name;
  try {
    return fn();
  } finally {
    site = outer;
  }
}

/** Called by the Tensor constructor. */
export function noteTensor(delta: 1 | -1): void {
  tensors += delta;
}

/** Called when a buffer is allocated; returns its origin, to hand back to `noteFree`. */
export function noteAlloc(byteLength: number, fallback: string): string {
  const name = site ?? fallback;
  let o = origins.get(name);
  if (!o) origins.set(name, (o = { buffers: 0, bytes: 0 }));
  o.buffers++;
  o.bytes += byteLength;
  buffers++;
  bytes += byteLength;
  return name;
}

export function noteFree(origin: string, byteLength: number): void {
  const o = origins.get(origin);
  if (o) {
    o.buffers--;
    o.bytes -= byteLength;
    if (o.buffers === 0) origins.delete(origin);
  }
  buffers--;
  bytes -= byteLength;
}

/** The tensors and buffers alive now, on every backend. */
export function liveTensors(): LiveTensors {
  const byOrigin = [...origins].map(([origin, o]) => ({ origin, buffers: o.buffers, bytes: o.bytes }))
    .sort((a, b) => b.bytes - a.bytes || b.buffers - a.buffers);
  return { tensors, buffers, bytes, byOrigin };
}

function fmtBytes(n: number): string {
  if (n >= 1 << 30) return `${(n / (1 << 30)).toFixed(2)} GiB`;
  if (n >= 1 << 20) return `${(n / (1 << 20)).toFixed(1)} MiB`;
  if (n >= 1 << 10) return `${(n / (1 << 10)).toFixed(1)} KiB`;
  return `${n} B`;
}

/** One paragraph for an out-of-memory error: what is alive and where most of it was made. */
export function describeLive(top = 4): string {
  const l = liveTensors();
  const most = l.byOrigin.slice(0, top).map((o) => `${o.origin} ${o.buffers} (${fmtBytes(o.bytes)})`).join(', ');
  return `${l.tensors} tensors alive (${l.buffers} buffers, ${fmtBytes(l.bytes)})` +
    (most ? `; made most by: ${most}` : '') +
    '. Free what you no longer need: tensor.dispose(), or run the work inside tidy(() => ...), which disposes all it made but what it returns';
}
