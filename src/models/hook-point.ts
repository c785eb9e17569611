// Hook points: the named sites where a model hands an activation to user code.
// Models call `hooks.at(name, tensor, shape)` where the tensor is made, declaring its shape in
// TransformerLens' dim names; that call is the only declaration: a model's list of hook points
// is derived by running it once with a `HookRecorder` (CausalLM.hookPoints), so what is listed
// is exactly what fires. With no hooks registered `at` is a property read and a return, so an
// un-hooked forward pays nothing. What is costly to make (attention patterns, per-head results)
// is made only when `hooks.wants(name)` says so. Names are paths built by `blockHook` (inside a
// block) or given whole (outside the blocks); the layer travels to hook functions as
// `hook.layer`.
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
  /** The block the hook point sits in (`blocks.3.attn.hook_z` -> 3), null outside the blocks. */
  readonly layer: number | null;
}

/** A hook point's shape in TransformerLens' dim names (`['batch', 'pos', 'd_model']`). */
export type HookShape = readonly string[];

/** The shapes hook points declare (each is a TransformerLens shape). */
export const SHAPE = {
  resid: ['batch', 'pos', 'd_model'],
  scale: ['batch', 'pos', '1'],
  head: ['batch', 'pos', 'head_index', 'd_head'],
  kvHead: ['batch', 'pos', 'kv_head_index', 'd_head'],
  pattern: ['batch', 'head_index', 'query_pos', 'key_pos'],
  headResult: ['batch', 'pos', 'head_index', 'd_model'],
  mlp: ['batch', 'pos', 'd_mlp'],
  router: ['batch', 'pos', 'n_experts'],
  perExpertSlot: ['batch', 'pos', 'experts_per_token'],
} as const satisfies Record<string, HookShape>;

/** The name of a hook point inside block `layer`: `blockHook(3, 'attn.hook_z')` is `blocks.3.attn.hook_z`. */
export function blockHook(layer: number, path: string): string {
  return `blocks.${layer}.${path}`;
}

/** The block index in a hook point name, or null for points outside the blocks. */
export function hookLayer(name: string): number | null {
  const m = /^blocks\.(\d+)\./.exec(name);
  return m ? Number(m[1]) : null;
}

/**
 * A hook reads an activation (it must not dispose it; to keep it past the call use
 * `keep(t.share())`, as `runWithCache` does) or returns a replacement of the same shape and
 * dtype, which the model then owns.
 */
export type HookFn = (activation: Tensor, hook: HookPoint) => Tensor | void;
export type HookFilter = string | RegExp | ((name: string) => boolean);
/**
 * `readOnly`: the hook only reads (it never returns a replacement; one that does throws), so a
 * backend may compute past its hook point before calling it (several blocks in one native call,
 * src/models/layers/fused-block.ts) and the hook still sees the same tensor.
 */
export interface HookOptions {
  readonly readOnly?: boolean;
}
/**
 * A backward hook reads the gradient flowing back through an activation (it must not dispose it;
 * `keep(g.share())` keeps it) or returns a replacement of the same shape and dtype.
 */
export type BackwardHookFn = (grad: Tensor, hook: HookPoint) => Tensor | void;

/** One forward hook as added: a hook added read-only and the same function added editable are two entries. */
interface HookEntry {
  match: (name: string) => boolean;
  fn: HookFn;
  readOnly: boolean;
}

function matcher(f: HookFilter): (name: string) => boolean {
  if (typeof f === 'string') return (n) => n === f;
  if (f instanceof RegExp) return (n) => f.test(n);
  return f;
}

/** The hooks of one forward call. */
export class Hooks {
  private readonly entries: HookEntry[] = [];
  private readonly memo = new Map<string, HookEntry[]>();
  private readonly editMemo = new Map<string, boolean>();
  private readonly layers = new Map<string, number | null>();
  private readonly backwardEntries: { match: (name: string) => boolean; fn: BackwardHookFn }[] = [];
  /** Index of the first query position in this call (0 for a prompt; the cache length while generating). */
  position = 0;
  /** Per-row token positions of this call's query positions (see `HookPoint.tokenPositions`). */
  tokenPositions?: Int32Array;

  constructor(list: readonly (readonly [HookFilter, HookFn])[] = []) {
    for (const [f, fn] of list) this.add(f, fn);
  }

  add(filter: HookFilter, fn: HookFn, o: HookOptions = {}): this {
    this.entries.push({ match: matcher(filter), fn, readOnly: !!o.readOnly });
    this.memo.clear();
    this.editMemo.clear();
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
    this.editMemo.clear();
  }

  get empty(): boolean {
    return this.entries.length === 0 && this.backwardEntries.length === 0;
  }

  /** True for a HookRecorder: models then take the path that fires every point (e.g. every expert). */
  get recording(): boolean {
    return false;
  }

  private point(name: string): HookPoint {
    let layer = this.layers.get(name);
    if (layer === undefined) this.layers.set(name, (layer = hookLayer(name)));
    return { name, position: this.position, tokenPositions: this.tokenPositions, layer };
  }

  /** The entries whose filter matches `name`, in the order they were added. */
  private matching(name: string): HookEntry[] {
    let f = this.memo.get(name);
    if (!f) {
      f = this.entries.filter((e) => e.match(name));
      this.memo.set(name, f);
    }
    return f;
  }

  /** Whether any hook listens at `name` (models use this to skip optional work). */
  wants(name: string): boolean {
    return (this.entries.length > 0 && this.matching(name).length > 0) || this.backwardEntries.some((e) => e.match(name));
  }

  /**
   * Whether a hook at `name` may change what the model continues with: a forward hook not added
   * as read-only, or any backward hook (it puts the activation on the tape). False where nothing
   * listens or only read-only hooks do.
   */
  editsAt(name: string): boolean {
    let e = this.editMemo.get(name);
    if (e === undefined) {
      e = this.entries.some((x) => !x.readOnly && x.match(name)) || this.backwardEntries.some((x) => x.match(name));
      this.editMemo.set(name, e);
    }
    return e;
  }

  /**
   * Passes `t` through the hooks at `name`; returns the tensor the model continues with. When a
   * hook replaces it, the original is disposed (the caller gave it to the hook point).
   */
  at(name: string, t: Tensor, _shape?: HookShape): Tensor {
    if (this.empty) return t;
    const entries = this.entries.length ? this.matching(name) : [];
    let cur = t;
    for (const e of entries) {
      const r = e.fn(cur, this.point(name));
      if (r && r !== cur) {
        if (e.readOnly) throw new Error(`hook at '${name}' was added as read-only but returned a replacement`);
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
      const point = this.point(name);
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

/** What a model declared at one hook point. */
export interface RecordedHookPoint {
  name: string;
  /** The declared shape (TransformerLens dim names); null where the site declared none. */
  shape: HookShape | null;
  /** The shape the tensor had in the recorded run. */
  actual: readonly number[];
}

/**
 * Hooks that want every point and change nothing, recording each point's name and declared
 * shape in firing order: one forward with it lists a model's hook points (CausalLM.hookPoints).
 */
export class HookRecorder extends Hooks {
  readonly points: RecordedHookPoint[] = [];
  private readonly seen = new Set<string>();

  override get empty(): boolean {
    return false;
  }
  override get recording(): boolean {
    return true;
  }
  override wants(): boolean {
    return true;
  }
  override at(name: string, t: Tensor, shape?: HookShape): Tensor {
    if (!this.seen.has(name)) {
      this.seen.add(name);
      this.points.push({ name, shape: shape ?? null, actual: [...t.shape] });
    }
    return t;
  }
}
