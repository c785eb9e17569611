// The user API over hook points, in TransformerLens' words: runWithCache (keep what you ask for)
// and runWithHooks (read or replace activations during one call). Scoped hooks that span several
// calls (generation included) are `model.withHooks(hooks, fn)`.
import { concat } from '../ops/layout.js';
import { keep, tidy } from '../tensor/engine.js';
import type { Tensor } from '../tensor/tensor.js';
import type { CausalLM, ForwardOptions } from '../models/model.js';
import { ActivationCache } from './cache.js';
import { assertHookNames } from './patterns.js';
import { Hooks, type HookFilter, type HookFn } from '../models/hook-point.js';

export interface RunWithCacheOptions extends Omit<ForwardOptions, 'hooks'> {
  /** Which activations to keep: names, a RegExp, or a predicate (default: every hook point). */
  names?: readonly string[] | RegExp | ((name: string) => boolean);
  /** Keep only these positions (query positions for patterns and scores). */
  positions?: readonly number[];
  /** Other hooks that run during this call (before the cache sees the activation). */
  hooks?: readonly (readonly [HookFilter, HookFn])[];
}

/** The axis of `name`'s activation that indexes positions (query positions for attention maps). */
export function positionAxis(name: string): number | null {
  if (/\.experts\.\d+\./.test(name)) return null;
  if (name.endsWith('hook_pattern') || name.endsWith('hook_attn_scores')) return 2;
  return 1;
}

function filterOf(n: RunWithCacheOptions['names']): (name: string) => boolean {
  if (!n) return () => true;
  if (n instanceof RegExp) return (x) => n.test(x);
  if (typeof n === 'function') return n;
  const s = new Set(n);
  return (x) => s.has(x);
}

/** Runs the model once, returning logits and an ActivationCache of only what was asked for. */
export function runWithCache(model: CausalLM, input: Tensor, o: RunWithCacheOptions = {}): { logits: Tensor; cache: ActivationCache } {
  const entries = new Map<string, Tensor>();
  const want = filterOf(o.names);
  if (Array.isArray(o.names)) assertHookNames(o.names as string[], model.hookPoints().map((h) => h.name), 'runWithCache', model.dims.arch);
  const pos = o.positions ? [...o.positions] : undefined;
  const hooks = new Hooks(o.hooks ?? []);
  hooks.add(want, (t, h) => {
    const axis = pos ? positionAxis(h.name) : null;
    let kept: Tensor;
    if (axis === null || !pos) kept = t.share();
    else kept = tidy(() => selectPositions(t, axis, pos));
    entries.get(h.name)?.dispose();
    entries.set(h.name, keep(kept));
  }, { readOnly: true });
  try {
    const logits = model.forward(input, { ...o, hooks });
    return { logits, cache: new ActivationCache(entries, model) };
  } catch (e) {
    for (const t of entries.values()) t.dispose();
    throw e;
  }
}

function selectPositions(t: Tensor, axis: number, pos: number[]): Tensor {
  const n = t.shape[axis]!;
  for (const p of pos) if (p < -n || p >= n) throw new RangeError(`runWithCache: position ${p} out of range for ${n} positions`);
  return concat(pos.map((p) => t.narrow(axis, p < 0 ? p + n : p, 1)), axis);
}

/** Runs the model once with `hooks` ([filter, fn] pairs) and returns the logits. */
export function runWithHooks(model: CausalLM, input: Tensor, o: Omit<ForwardOptions, 'hooks'> & { hooks: readonly (readonly [HookFilter, HookFn])[] }): Tensor {
  return model.forward(input, { ...o, hooks: new Hooks(o.hooks) });
}
