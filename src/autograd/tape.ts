// The autograd tape: reverse-mode differentiation over the engine's ops, on every backend.
// Recording happens in two places the engine exposes as hooks: `dispatch` (every op, after it ran)
// and the view methods of Tensor (reshape, permute, slice, broadcastTo, ...). When an input requires
// grad, a node {op, inputs, what backward needs} is put on the outputs. `backward` / `grad` walk the
// nodes from a scalar back to the leaves with the rules of ./rules.ts, written with frontend ops so
// they run on whichever backend holds the tensors.
//
// Memory: a node keeps handles (`share()`) on the tensors its backward reads, so they outlive the
// `tidy` scopes that made them. `grad`/`backward` free every node they walked (pass `retainGraph`
// to walk twice); `valueAndGrad` frees everything recorded during its call; `clearTape()` frees
// what is left (e.g. a forward pass you never differentiated). Run forward passes you will not
// differentiate inside `noGrad` so that nothing is recorded at all.
// Not for: higher-order gradients (backward itself is never recorded).
import { isFloat, type DType } from '../tensor/dtype.js';
import { keep, setOpRecorder, tidy, track } from '../tensor/engine.js';
import { fmtShape, shapesEqual } from '../tensor/shape.js';
import { setViewRecorder, Tensor, type ViewKind } from '../tensor/tensor.js';
import { opParams, type OpDesc } from '../tensor/backend.js';
import { add } from '../ops/elementwise.js';
import { ones, zeros } from '../ops/creation.js';
import { RULES, type BackCtx, type Grad } from './rules.js';
import { viewBackward } from './views.js';
import { writesBackward, type Write } from './writes.js';

/** A gradient was asked for through an op that has none; names the op. */
export class NoGradientError extends Error {
  constructor(readonly op: string, detail: string) {
    super(`no gradient for op '${op}': ${detail}`);
    this.name = 'NoGradientError';
  }
}

/** One recorded step: backward maps output gradients to input gradients. */
export interface TapeNode {
  readonly id: number;
  /** The op with its parameters, or the view, for errors and `tapeStats`. */
  readonly name: string;
  /** The input tensors (identities; they may be disposed by now). */
  inputs: Tensor[];
  /** Which inputs gradients go to. */
  needs: boolean[];
  inShapes: (readonly number[])[];
  inDTypes: DType[];
  outShapes: (readonly number[])[];
  /** The tensors this node made (their history ends when it is freed). */
  outputs: Tensor[];
  /** Handles owned by the node, disposed when it is freed. */
  saved: Tensor[];
  backward: (g: Grad[]) => Grad[];
  freed: boolean;
}

let nextId = 1;
let noGradDepth = 0;
const live = new Set<TapeNode>();

/** Whether ops are being recorded now (false inside `noGrad` and while backward runs). */
export function isRecording(): boolean {
  return noGradDepth === 0;
}

/**
 * Runs `fn` without recording anything (inference, optimizer updates). A Promise returned by `fn`
 * keeps recording off until it settles, for every caller: do not interleave with code that records.
 */
export function noGrad<T>(fn: () => T): T {
  noGradDepth++;
  let out: T;
  try {
    out = fn();
  } catch (e) {
    noGradDepth--;
    throw e;
  }
  if (out instanceof Promise) return out.finally(() => { noGradDepth--; }) as T;
  noGradDepth--;
  return out;
}

/** Marks `t` as a leaf that gradients flow to, and returns it. */
export function variable<T extends Tensor>(t: T): T {
  t.requireGrad(true);
  return t;
}

/** Nodes alive on the tape and the tensor handles they hold (for tests and memory reports). */
export function tapeStats(): { nodes: number; savedTensors: number } {
  let saved = 0;
  for (const n of live) saved += n.saved.length;
  return { nodes: live.size, savedTensors: saved };
}

/** Frees every node recorded so far (or those with id > `after`). Their tensors keep no gradient history. */
export function clearTape(after = 0): void {
  for (const n of [...live]) if (n.id > after) freeNode(n);
}

/** The id the next node will get (mark a point, then `clearTape(mark - 1)`). */
export function tapeMark(): number {
  return nextId;
}

function freeNode(n: TapeNode): void {
  if (n.freed) return;
  n.freed = true;
  for (const t of n.saved) t.dispose();
  n.saved = [];
  n.inputs = [];
  for (const t of n.outputs) {
    if ((t.gradFn as { node: TapeNode } | null)?.node === n) { t.gradFn = null; t.requiresGrad = false; }
  }
  n.outputs = [];
  n.backward = () => { throw new Error(`autograd: node '${n.name}' was freed by an earlier backward (pass { retainGraph: true } to walk the graph twice)`); };
  live.delete(n);
}

/** A handle on `t` owned by the tape (outlives tidy scopes; not recorded). */
function hold(t: Tensor): Tensor {
  noGradDepth++;
  try {
    return keep(t.share());
  } finally {
    noGradDepth--;
  }
}

function makeNode(
  name: string, inputs: readonly Tensor[], outputs: readonly Tensor[], saved: Tensor[],
  backward: (g: Grad[]) => Grad[], outIsDiff: (i: number) => boolean,
): TapeNode {
  const node: TapeNode = {
    id: nextId++, name, inputs: [...inputs], needs: inputs.map((t) => t.requiresGrad),
    inShapes: inputs.map((t) => t.shape), inDTypes: inputs.map((t) => t.dtype), outShapes: outputs.map((t) => t.shape),
    outputs: [...outputs], saved, backward, freed: false,
  };
  live.add(node);
  outputs.forEach((t, i) => {
    if (!outIsDiff(i)) return;
    t.requiresGrad = true;
    t.gradFn = { node, index: i };
  });
  return node;
}

// ---- writes into views (concat, pad, stack, assign): tracked per storage ----

const writes = new WeakMap<object, Write[]>();
let writeCount = 0;

/** Whether gradients flow to `t`; gives `t` a node first when it views memory written from tensors that require grad. */
function tracks(t: Tensor): boolean {
  if (t.requiresGrad) return true;
  if (writeCount === 0 || t.isDisposed) return false;
  const ws = writes.get(t.storageKey);
  if (!ws || !ws.some((w) => w.src)) return false;
  const list = [...ws];
  const srcs = list.filter((w) => w.src).map((w) => w.src!);
  makeNode('write', srcs, [t], [], (g) => writesBackward(t, list, g[0] ?? null, srcs.length), () => true);
  return true;
}

function recordWrite(op: OpDesc, inputs: readonly Tensor[], outputs: readonly Tensor[]): void {
  const dst = outputs[0]!;
  const src = op.op === 'copy' && inputs[0] && tracks(inputs[0]) ? inputs[0] : null;
  const key = dst.storageKey;
  const list = writes.get(key);
  if (!src && !list) return;
  if (dst.requiresGrad) {
    throw new NoGradientError(`${op.op}${opParams(op)}`, `writing into ${dst.dtype}${fmtShape(dst.shape)}, a tensor that requires grad, is not differentiable; write into a fresh tensor (concat, pad) instead`);
  }
  const w: Write = { src, shape: dst.shape, strides: dst.strides, offset: dst.offset };
  if (list) list.push(w);
  else { writes.set(key, [w]); writeCount++; }
}

// ---- the recorders installed in the engine ----

function recordOp(op: OpDesc, inputs: readonly Tensor[], outputs: readonly Tensor[], into: boolean): void {
  if (noGradDepth > 0) return;
  if (into) { recordWrite(op, inputs, outputs); return; }
  let any = false;
  for (const t of inputs) if (tracks(t)) any = true;
  if (!any) return;
  const diff = (i: number) => isFloat(outputs[i]!.dtype);
  if (!outputs.some((_, i) => diff(i))) return; // comparisons, arg*: no gradient flows
  const name = `${op.op}${opParams(op)}`;
  const rule = RULES[op.op];
  if (!rule) {
    makeNode(name, inputs, outputs, [], () => { throw new NoGradientError(name, `inputs ${inputs.map((t) => t.dtype + fmtShape(t.shape)).join(', ')}`); }, diff);
    return;
  }
  if (op.op === 'matmul') inputs = throughWeightBroadcast(inputs);
  const want = rule.save?.(op as never) ?? { inputs: inputs.map((_, i) => i), outputs: outputs.map((_, i) => i) };
  const savedIn = new Map<number, Tensor>();
  const savedOut = new Map<number, Tensor>();
  for (const i of want.inputs ?? []) if (inputs[i]) savedIn.set(i, hold(inputs[i]!));
  for (const i of want.outputs ?? []) if (outputs[i]) savedOut.set(i, hold(outputs[i]!));
  let node: TapeNode;
  const ctx: BackCtx = {
    input: (i) => savedIn.get(i) ?? missing(name, 'input', i),
    output: (i) => savedOut.get(i) ?? missing(name, 'output', i),
    inShape: (i) => node.inShapes[i]!,
    inDType: (i) => node.inDTypes[i]!,
    outShape: (i) => node.outShapes[i]!,
    needs: (i) => node.needs[i]!,
  };
  node = makeNode(name, inputs, outputs, [...savedIn.values(), ...savedOut.values()], (g) => rule.backward(op as never, ctx, g), diff);
}

/**
 * A matrix [K, N] broadcast over the batch of a matmul (a weight: x [b, t, K] @ W) is recorded as
 * the matmul's input itself, so its gradient is one flattened product instead of a batched one
 * summed over the batch (the matmul rule sees the rank-2 input shape).
 */
function throughWeightBroadcast(inputs: readonly Tensor[]): Tensor[] {
  const out = [...inputs];
  const b = inputs[1]!;
  const f = b.gradFn as { node: TapeNode } | null;
  const src = f?.node.name === 'broadcast' ? f.node.inputs[0] : undefined;
  if (src && src.rank === 2 && b.rank > 2 && b.strides.slice(0, -2).every((s) => s === 0)) {
    out[1] = src;
    // The broadcast node keeps no tensors; it stays valid for any other reader of the view but is
    // no longer the tape's to free.
    live.delete(f!.node);
  }
  return out;
}

function missing(name: string, what: string, i: number): never {
  throw new Error(`autograd rule for '${name}' reads ${what} ${i}, which its save() did not keep`);
}

function recordView(src: Tensor, out: Tensor, view: () => ViewKind): void {
  if (noGradDepth > 0 || !tracks(src)) return;
  const v = view();
  makeNode(v.kind, [src], [out], [], (g) => [g[0] ? viewBackward(v, g[0], src.shape) : null], () => true);
}

/**
 * An identity on the tape whose backward calls `fn` with the gradient flowing through `t`; `fn` may
 * return a replacement of the same shape (which the tape then owns). The result requires grad even
 * when `t` does not, so that gradients reach it. Returns `t` itself while not recording.
 */
export function tap(t: Tensor, fn: (g: Tensor) => Tensor | void, name = 'tap'): Tensor {
  if (noGradDepth > 0) return t;
  tracks(t);
  noGradDepth++;
  let out: Tensor;
  try {
    out = t.share();
  } finally {
    noGradDepth--;
  }
  makeNode(name, [t], [out], [], ([g]) => {
    if (!g) return [null];
    const r = fn(g);
    if (!r || r === g) return [g.share()];
    if (!shapesEqual(r.shape, g.shape) || r.dtype !== g.dtype) {
      throw new Error(`${name}: a backward hook returned ${r.dtype}${fmtShape(r.shape)}; the gradient is ${g.dtype}${fmtShape(g.shape)} and a replacement must keep its shape and dtype`);
    }
    return [r];
  }, () => true);
  return out;
}

setOpRecorder(recordOp);
setViewRecorder(recordView);

// ---- backward ----

export interface GradOptions {
  /** The gradient of `loss` itself (default: ones; required when loss has more than one element). */
  seed?: Tensor;
  /** Keep the walked nodes so that another backward can walk them again. */
  retainGraph?: boolean;
}

function accumulate(prev: Tensor | undefined, g: Tensor): Tensor {
  if (!prev) return g;
  const s = add(prev, g);
  prev.dispose();
  g.dispose();
  return s;
}

/**
 * Walks from `loss` to the leaves. Returns the gradient of every leaf reached, and of each tensor
 * in `capture` (leaf or not) that was reached. All returned tensors are kept (outside any scope).
 */
function run(loss: Tensor, capture: readonly Tensor[], o: GradOptions): Map<Tensor, Tensor> {
  if (!isFloat(loss.dtype)) throw new TypeError(`backward: loss must be a float tensor, got ${loss.dtype}${fmtShape(loss.shape)}`);
  if (!o.seed && loss.size !== 1) throw new TypeError(`backward: loss ${fmtShape(loss.shape)} has ${loss.size} elements; reduce it to a scalar or pass a seed gradient`);
  if (!loss.requiresGrad) {
    throw new Error('backward: the loss does not depend on any tensor that requires grad (mark parameters with variable() / requireGrad(), and compute the loss outside noGrad)');
  }
  const leafGrads = new Map<Tensor, Tensor>();
  const wantAt = new Map<TapeNode, Map<number, Tensor[]>>();
  for (const t of capture) {
    const f = t.gradFn as { node: TapeNode; index: number } | null;
    if (!f) continue;
    const m = wantAt.get(f.node) ?? new Map<number, Tensor[]>();
    m.set(f.index, [...(m.get(f.index) ?? []), t]);
    wantAt.set(f.node, m);
  }
  const captured = new Map<Tensor, Tensor>();
  noGradDepth++;
  try {
    const seed = keep(o.seed ? o.seed.share() : ones(loss.shape, loss.dtype, { backend: loss.backend }));
    const root = loss.gradFn as { node: TapeNode; index: number } | null;
    if (!root) {
      leafGrads.set(loss, seed);
      return finish(leafGrads, captured, capture);
    }
    // Nodes reachable from the loss, latest first (ids grow in execution order).
    const nodes: TapeNode[] = [];
    const seen = new Set<TapeNode>();
    const stack = [root.node];
    while (stack.length) {
      const n = stack.pop()!;
      if (seen.has(n)) continue;
      if (n.freed) throw new Error(`backward: the graph through '${n.name}' was already freed by an earlier backward (pass { retainGraph: true } to the first one)`);
      seen.add(n);
      nodes.push(n);
      n.inputs.forEach((t, i) => {
        const f = t.gradFn as { node: TapeNode } | null;
        if (n.needs[i] && f && !seen.has(f.node)) stack.push(f.node);
      });
    }
    nodes.sort((a, b) => b.id - a.id);
    const grads = new Map<TapeNode, (Tensor | undefined)[]>();
    grads.set(root.node, []);
    grads.get(root.node)![root.index] = seed;
    for (const n of nodes) {
      const gs = grads.get(n);
      grads.delete(n);
      if (!gs) continue;
      const at = wantAt.get(n);
      if (at) for (const [i, ts] of at) if (gs[i]) for (const t of ts) captured.set(t, keep(gs[i]!.share()));
      const gIn = tidy(() => n.backward(n.outShapes.map((_, i) => gs[i] ?? null)));
      for (const g of gs) g?.dispose();
      n.inputs.forEach((t, i) => {
        const g = gIn[i];
        if (!g) return;
        keep(g);
        if (!n.needs[i]) { g.dispose(); return; }
        if (!shapesEqual(g.shape, n.inShapes[i]!)) {
          throw new Error(`autograd rule for '${n.name}' gave input ${i} a gradient of shape ${fmtShape(g.shape)}; the input is ${fmtShape(n.inShapes[i]!)}`);
        }
        const f = t.gradFn as { node: TapeNode; index: number } | null;
        if (f) {
          const list = grads.get(f.node) ?? [];
          list[f.index] = accumulate(list[f.index], g);
          grads.set(f.node, list);
        } else {
          leafGrads.set(t, accumulate(leafGrads.get(t), g));
        }
      });
    }
    for (const gs of grads.values()) for (const g of gs) g?.dispose();
    if (!o.retainGraph) for (const n of nodes) freeNode(n);
    return finish(leafGrads, captured, capture);
  } finally {
    noGradDepth--;
  }
}

function finish(leafGrads: Map<Tensor, Tensor>, captured: Map<Tensor, Tensor>, capture: readonly Tensor[]): Map<Tensor, Tensor> {
  for (const t of capture) {
    if (!t.gradFn && leafGrads.has(t) && !captured.has(t)) captured.set(t, keep(leafGrads.get(t)!.share()));
  }
  for (const [t, g] of leafGrads) captured.has(t) || captured.set(t, g);
  for (const [t, g] of leafGrads) if (captured.get(t) !== g) g.dispose();
  return captured;
}

/**
 * Gradients of the scalar `loss` with respect to each of `wrt` (leaves, inputs, or intermediate
 * tensors such as hook-point activations), in order. A tensor the loss does not depend on gets
 * zeros. The results belong to the caller (the current tidy scope, if any).
 */
export function grad(loss: Tensor, wrt: readonly Tensor[], o: GradOptions = {}): Tensor[] {
  const got = run(loss, wrt, o);
  const out = wrt.map((t) => {
    const g = got.get(t);
    got.delete(t);
    return g ?? zeros(t.shape, t.dtype, { backend: t.backend });
  });
  for (const g of got.values()) g.dispose();
  for (const g of out) track(g);
  return out;
}

/**
 * Accumulates d loss / d leaf into `leaf.grad` for every leaf that requires grad (as PyTorch's
 * `loss.backward()`); `leaf.grad` is outside any scope: dispose it or call `zeroGrad`.
 */
export function backward(loss: Tensor, o: GradOptions = {}): void {
  const got = run(loss, [], o);
  for (const [t, g] of got) {
    if (t.gradFn || !t.requiresGrad) { g.dispose(); continue; }
    if (t.grad) {
      const s = noGrad(() => keep(add(t.grad!, g)));
      t.grad.dispose();
      g.dispose();
      t.grad = s;
    } else t.grad = g;
  }
}

/** Disposes and clears `.grad` of each tensor. */
export function zeroGrad(ts: Iterable<Tensor>): void {
  for (const t of ts) {
    t.grad?.dispose();
    t.grad = null;
  }
}

/**
 * `fn`'s value and its gradients with respect to its tensor arguments: `valueAndGrad(f)(a, b)`
 * gives `{ value, grads: [dA, dB] }`. The arguments are marked as requiring grad during the call
 * only; everything recorded during the call is freed before it returns.
 */
export function valueAndGrad(fn: (...xs: Tensor[]) => Tensor): (...xs: Tensor[]) => { value: Tensor; grads: Tensor[] } {
  return (...xs) => {
    const mark = tapeMark();
    const before = xs.map((x) => x.requiresGrad);
    for (const x of xs) x.requireGrad(true);
    try {
      const value = tidy(() => fn(...xs));
      const grads = grad(value, xs);
      return { value, grads };
    } finally {
      xs.forEach((x, i) => x.requireGrad(before[i]));
      clearTape(mark - 1);
    }
  };
}
