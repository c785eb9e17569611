// Hook points: the named sites where a model hands an activation to user code.
// Models call `hooks.at(name, tensor)` where the tensor is made; with no hooks registered this is
// a property read and a return, so an un-hooked forward pays nothing. What is costly to make
// (attention patterns, per-head results) is made only when `hooks.wants(name)` says so.
import { tap } from '../autograd/tape.js';
import { ShapeError } from '../tensor/errors.js';
import { fmtShape, shapesEqual } from '../tensor/shape.js';
import type { Tensor } from '../tensor/tensor.js';

/** Where and when a hook fires. `position` is the index of the first query position of this call (generation steps). */
export interface HookPoint {
  readonly name: string;
  readonly position: number;
  /**
   * Per row and query position of this call, row-major [batch * pos]: the token's position in its
   * own sequence (padding excluded, as the attention mask counts), or -1 for a padding slot. Set
   * by `CausalLM.forward` whenever hooks are registered.
   */
  readonly tokenPositions?: Int32Array;
}

/**
 * A hook reads an activation (it must not dispose it; to keep it past the call use
 * `keep(t.share())`, as `runWithCache` does) or returns a replacement of the same shape and
 * dtype, which the model then owns.
 */
export type HookFn = (activation: Tensor, hook: HookPoint) => Tensor | void;
export type HookFilter = string | RegExp | ((name: string) => boolean);
/**
 * A backward hook reads the gradient flowing back through an activation (it must not dispose it;
 * `keep(g.share())` keeps it) or returns a replacement of the same shape and dtype.
 */
export type BackwardHookFn = (grad: Tensor, hook: HookPoint) => Tensor | void;

function matcher(f: HookFilter): (name: string) => boolean {
  if (typeof f === 'string') return (n) => n === f;
  if (f instanceof RegExp) return (n) => f.test(n);
  return f;
}

/** The hooks of one forward call. */
export class Hooks {
  private readonly entries: { match: (name: string) => boolean; fn: HookFn }[] = [];
  private readonly memo = new Map<string, HookFn[]>();
  private readonly backwardEntries: { match: (name: string) => boolean; fn: BackwardHookFn }[] = [];
  /** Index of the first query position in this call (0 for a prompt; the cache length while generating). */
  position = 0;
  /** Per-row token positions of this call's query positions (see `HookPoint.tokenPositions`). */
  tokenPositions?: Int32Array;

  constructor(list: readonly (readonly [HookFilter, HookFn])[] = []) {
    for (const [f, fn] of list) this.add(f, fn);
  }

  add(filter: HookFilter, fn: HookFn): this {
    this.entries.push({ match: matcher(filter), fn });
    this.memo.clear();
    return this;
  }

  /**
   * A hook on the gradient at matching hook points, called during `backward`/`grad` (src/autograd)
   * with the gradient of the activation; it may return a replacement. The activation is put on the
   * tape (it requires grad from there on), so forward passes with backward hooks record a tape:
   * call backward, or free it with `clearTape()`.
   */
  addBackward(filter: HookFilter, fn: BackwardHookFn): this {
    this.backwardEntries.push({ match: matcher(filter), fn });
    return this;
  }

  /** Hooks of `a` then `b`, in that order (persistent hooks before a call's own). */
  static merge(a: Hooks, b: Hooks): Hooks {
    if (a.empty) return b;
    if (b.empty) return a;
    const h = new Hooks();
    h.entries.push(...a.entries, ...b.entries);
    h.backwardEntries.push(...a.backwardEntries, ...b.backwardEntries);
    return h;
  }

  /** Removes the entries added with `fn` (used by scoped hook contexts). */
  remove(fn: HookFn | BackwardHookFn): void {
    const i = this.entries.findIndex((e) => e.fn === fn);
    if (i >= 0) this.entries.splice(i, 1);
    const j = this.backwardEntries.findIndex((e) => e.fn === fn);
    if (j >= 0) this.backwardEntries.splice(j, 1);
    this.memo.clear();
  }

  get empty(): boolean {
    return this.entries.length === 0 && this.backwardEntries.length === 0;
  }

  private fns(name: string): HookFn[] {
    let f = this.memo.get(name);
    if (!f) {
      f = this.entries.filter((e) => e.match(name)).map((e) => e.fn);
      this.memo.set(name, f);
    }
    return f;
  }

  /** Whether any hook listens at `name` (models use this to skip optional work). */
  wants(name: string): boolean {
    return (this.entries.length > 0 && this.fns(name).length > 0) || this.backwardEntries.some((e) => e.match(name));
  }

  /**
   * Passes `t` through the hooks at `name`; returns the tensor the model continues with. When a
   * hook replaces it, the original is disposed (the caller gave it to the hook point).
   */
  at(name: string, t: Tensor): Tensor {
    if (this.empty) return t;
    const fns = this.entries.length ? this.fns(name) : [];
    let cur = t;
    for (const fn of fns) {
      const r = fn(cur, { name, position: this.position, tokenPositions: this.tokenPositions });
      if (r && r !== cur) {
        if (!shapesEqual(r.shape, cur.shape)) {
          throw new ShapeError(`hook at '${name}' returned ${r.dtype}${fmtShape(r.shape)}; the activation is ${cur.dtype}${fmtShape(cur.shape)} and a replacement must keep its shape`);
        }
        if (r.dtype !== cur.dtype) throw new ShapeError(`hook at '${name}' returned dtype ${r.dtype}; the activation is ${cur.dtype}`);
        cur.dispose();
        cur = r;
      }
    }
    const back = this.backwardEntries.filter((e) => e.match(name));
    if (back.length) {
      const point = { name, position: this.position, tokenPositions: this.tokenPositions };
      const tapped = tap(cur, (g) => {
        let gc = g;
        for (const e of back) {
          const r = e.fn(gc, point);
          if (r && r !== gc) gc = r;
        }
        return gc;
      }, `backward hook at '${name}'`);
      if (tapped !== cur) {
        cur.dispose();
        cur = tapped;
      }
    }
    return cur;
  }
}

/** The hooks object used when none are given. */
export const NO_HOOKS = new Hooks();
