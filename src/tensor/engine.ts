// The engine: which backends exist, which is the default, the scope stack that tracks tensor
// ownership, and `dispatch`, the one place where a frontend op reaches a backend.
// Not for: op validation or shape inference (src/ops does that before calling dispatch).
import { UnsupportedOpError, describeView, opParams, type Backend, type OpDesc, type View } from './backend.js';
import type { DType } from './dtype.js';
import { allocatingFor } from './live.js';
import { Tensor } from './tensor.js';

type Factory = () => Backend | Promise<Backend>;

const factories = new Map<string, Factory>();
const live = new Map<string, Backend>();
let defaultName = 'js';

/** Makes a backend available by name; it is created on first use by `initBackend`. */
export function registerBackend(name: string, factory: Factory): void {
  factories.set(name, factory);
}

export function registeredBackends(): string[] {
  return [...factories.keys()];
}

/** Creates (once) and returns the named backend. */
export async function initBackend(name: string): Promise<Backend> {
  const have = live.get(name);
  if (have) return have;
  const f = factories.get(name);
  if (!f) throw new Error(`unknown backend '${name}' (registered: ${registeredBackends().join(', ') || 'none'})`);
  const b = await f();
  live.set(name, b);
  return b;
}

/** A backend that was already initialised. */
export function getBackend(name?: string): Backend {
  const n = name ?? defaultName;
  const b = live.get(n);
  if (!b) {
    throw new Error(`backend '${n}' is not initialised; call await initBackend('${n}') first`);
  }
  return b;
}

export async function setDefaultBackend(name: string): Promise<Backend> {
  const b = await initBackend(name);
  defaultName = name;
  return b;
}

export function defaultBackendName(): string {
  return defaultName;
}

/** Releases every initialised backend (their memory and threads). */
export function disposeBackends(): void {
  for (const b of live.values()) b.dispose();
  live.clear();
}

// ---- ownership scopes ----

const scopes: Set<Tensor>[] = [];

/** Called by every Tensor constructor: the innermost scope, if any, now owns it. */
export function track(t: Tensor): void {
  scopes[scopes.length - 1]?.add(t);
}

/** Removes a tensor from the innermost scope so it outlives it. */
export function keep<T extends Tensor>(t: T): T {
  for (const s of scopes) s.delete(t);
  return t;
}

function collect(value: unknown, out: Set<Tensor>): void {
  if (value instanceof Tensor) out.add(value);
  else if (Array.isArray(value)) for (const v of value) collect(v, out);
  else if (value && typeof value === 'object' && Object.getPrototypeOf(value) === Object.prototype) {
    for (const v of Object.values(value)) collect(v, out);
  }
}

/**
 * Runs `fn` and disposes every tensor it created, except those it returns (a tensor, or arrays and
 * plain objects of tensors) and those passed to `keep`. Returned tensors move to the enclosing scope.
 */
export function tidy<T>(fn: () => T): T {
  const scope = new Set<Tensor>();
  scopes.push(scope);
  let result: T;
  try {
    result = fn();
  } finally {
    scopes.pop();
  }
  if (result instanceof Promise) throw new Error('tidy: fn must be synchronous (it returned a Promise)');
  const kept = new Set<Tensor>();
  collect(result, kept);
  for (const t of scope) if (!kept.has(t)) t.dispose();
  for (const t of kept) if (scope.has(t)) track(t);
  return result;
}

// ---- dispatch ----

/** Called after every successful op (the autograd tape records here); null when nothing listens. */
type OpRecorder = (op: OpDesc, inputs: readonly Tensor[], outputs: readonly Tensor[], into: boolean) => void;
let onOp: OpRecorder | null = null;

/** Installed by src/autograd so the engine does not depend on it. */
export function setOpRecorder(f: OpRecorder | null): void {
  onOp = f;
}

export interface OutSpec {
  shape: readonly number[];
  dtype: DType;
}

/**
 * Allocates the outputs, checks that the backend supports the op on these views, and runs it.
 * All inputs must live on one backend and be alive.
 */
export function dispatch(op: OpDesc, inputs: readonly Tensor[], outs: readonly OutSpec[], backend?: Backend): Tensor[] {
  const where = () => `${op.op}${opParams(op)}`; // built only for an error message
  const views: View[] = inputs.map((t) => t.view(where));
  const b = backend ?? inputs[0]?.backend ?? getBackend();
  for (const t of inputs) {
    if (t.backend !== b) {
      throw new Error(`${where()}: inputs live on different backends ('${inputs.map((x) => x.backend.name).join("', '")}'); move them with .to(backend) first`);
    }
  }
  const outputs = allocatingFor('fn' in op ? op.fn : op.op, () => outs.map((o) => Tensor.empty(o.shape, o.dtype, b)));
  const outViews = outputs.map((t) => t.view(where));
  if (!b.supportsOp(op, views, outViews)) {
    for (const t of outputs) t.dispose();
    throw new UnsupportedOpError(b.name, op, `inputs ${views.map(describeView).join(', ')}`);
  }
  try {
    b.exec(op, views, outViews);
  } catch (e) {
    for (const t of outputs) t.dispose();
    throw e;
  }
  if (onOp) onOp(op, inputs, outputs, false);
  return outputs;
}

/** Runs an op that writes into existing output views (used by concat, pad, setSlice). */
export function dispatchInto(op: OpDesc, inputs: readonly Tensor[], outputs: readonly Tensor[]): void {
  const where = () => `${op.op}${opParams(op)}`;
  const b = outputs[0]!.backend;
  const views = inputs.map((t) => t.view(where));
  const outViews = outputs.map((t) => t.view(where));
  for (const t of [...inputs, ...outputs]) {
    if (t.backend !== b) throw new Error(`${where()}: tensors live on different backends`);
  }
  if (!b.supportsOp(op, views, outViews)) {
    throw new UnsupportedOpError(b.name, op, `inputs ${views.map(describeView).join(', ')}`);
  }
  b.exec(op, views, outViews);
  if (onOp) onOp(op, inputs, outputs, true);
}
