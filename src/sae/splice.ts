// Splicing an SAE (or transcoder) into a model: hooks that replace the activation at the SAE's
// site by its reconstruction, firing the SAE's own hook points under the site's name, as SAELens'
// HookedSAETransformer names them (`blocks.2.hook_resid_post.sae.hook_sae_acts_post`, ...), so a
// feature can be read, ablated, clamped or steered with ordinary hooks on those names.
// A transcoder reads its input site (hook_name) and replaces its output site (hook_name_out).
// Not for: metrics (eval.ts).
import { Hooks, NO_HOOKS, type HookFilter, type HookFn } from '../models/hook-point.js';
import { CausalLM, type ForwardOptions, type HookPointInfo } from '../models/model.js';
import { add, sub } from '../ops/elementwise.js';
import { keep } from '../tensor/engine.js';
import type { Tensor } from '../tensor/tensor.js';
import { hookName, hookNameOut, isTranscoder } from './config.js';
import type { Sae } from './sae.js';

export interface SpliceOptions {
  /** The model hook the SAE reads (default: its cfg's hook_name). */
  site?: string;
  /** Transcoders: the hook it replaces (default: hook_name_out). */
  outSite?: string;
  /** Hooks on the SAE's hook points, by full name ('<site>.sae.hook_sae_acts_post', ...). */
  hooks?: readonly (readonly [HookFilter, HookFn])[];
  /** Keep the SAE's error, so the model's output changes only through what the hooks change. */
  useErrorTerm?: boolean;
}

/** The site the SAE reads, from options or its config; an error naming the SAE when neither says. */
export function saeSite(sae: Sae, site?: string): string {
  const s = site ?? hookName(sae.cfg);
  if (!s) throw new Error(`SAE (${sae.cfg.architecture}, d_in ${sae.dIn}): its cfg.json names no hook_name; give the site explicitly`);
  return s;
}

/** [filter, fn] pairs to pass to runWithHooks / model.withHooks. */
export function saeHooks(sae: Sae, o: SpliceOptions = {}): [HookFilter, HookFn][] {
  const site = saeSite(sae, o.site);
  const prefix = `${site}.sae.`;
  const inner = new Hooks(o.hooks ?? []);
  if (!isTranscoder(sae.cfg)) {
    return [[site, (x) => sae.forward(x, { hooks: inner, prefix, useErrorTerm: o.useErrorTerm })]];
  }
  const outSite = o.outSite ?? hookNameOut(sae.cfg)!;
  if (outSite === site) throw new Error(`transcoder at ${site}: its output site (hook_name_out) must differ from its input site`);
  let input: Tensor | null = null;
  return [
    [site, (x) => { input?.dispose(); input = keep(x.share()); }],
    [outSite, (y) => {
      if (!input) throw new Error(`transcoder: ${outSite} fired before ${site}; is ${site} upstream of ${outSite} in this model?`);
      const x = input;
      input = null;
      try {
        const out = sae.forward(x, { hooks: inner, prefix });
        if (!o.useErrorTerm) return out;
        const clean = sae.forward(x, { prefix });
        const err = inner.at(`${prefix}hook_sae_error`, sub(y, clean));
        clean.dispose();
        const r = add(out, err);
        out.dispose();
        return r;
      } finally {
        x.dispose();
      }
    }],
  ];
}

/**
 * Attaches the SAE to `model` until `remove()`: every forward pass (runWithCache, runWithHooks,
 * generate, the interventions API) runs through it, and its hook points are hook points of the
 * model (listed by hookPoints(), with their shapes), so the interventions API addresses features:
 * `{ hook: 'blocks.2.hook_resid_post.sae.hook_sae_acts_post', unit: { dims: [17] }, op: 'set', value: 5 }`.
 * The SAE's points fire into the model's hooks of each call (persistent ones included).
 * Transcoders are not attached this way (use saeHooks).
 */
export function attachSae(model: CausalLM, sae: Sae, o: Omit<SpliceOptions, 'hooks' | 'outSite'> = {}): { site: string; remove: () => void } {
  if (isTranscoder(sae.cfg)) throw new Error('attachSae: transcoders splice through saeHooks (two sites)');
  const site = saeSite(sae, o.site);
  const points = model.hookPoints();
  const at = points.findIndex((p) => p.name === site);
  if (at < 0) throw new Error(`attachSae: the model has no hook '${site}'`);
  const owner = model as unknown as { forward: CausalLM['forward']; hookPoints: CausalLM['hookPoints']; hookPointShapes: CausalLM['hookPointShapes'] };
  if (Object.prototype.hasOwnProperty.call(owner, 'forward')) throw new Error('attachSae: an SAE is already attached to this model; remove it first');
  const prefix = `${site}.sae.`;
  const width = (n: number) => ['batch', 'pos', String(n)];
  const saePoints: HookPointInfo[] = [
    { name: `${prefix}hook_sae_input`, shape: width(sae.dIn) },
    { name: `${prefix}hook_sae_acts_pre`, shape: width(sae.dSae) },
    { name: `${prefix}hook_sae_acts_post`, shape: width(sae.dSae) },
    { name: `${prefix}hook_sae_recons`, shape: width(sae.dOut) },
    ...(o.useErrorTerm ? [{ name: `${prefix}hook_sae_error`, shape: width(sae.dOut) }] : []),
    { name: `${prefix}hook_sae_output`, shape: width(sae.dOut) },
  ];
  const forward = CausalLM.prototype.forward;
  owner.forward = function (this: CausalLM, input: Tensor, fo: ForwardOptions = {}): Tensor {
    const call = fo.hooks ?? NO_HOOKS;
    const all = Hooks.merge(this.persistentHooks, call);
    const splice = new Hooks([[site, (x: Tensor) => sae.forward(x, { hooks: all, prefix, useErrorTerm: o.useErrorTerm })]]);
    return forward.call(this, input, { ...fo, hooks: Hooks.merge(splice, call) });
  };
  const own = model.hookPoints.bind(model);
  owner.hookPoints = () => {
    const list = own();
    const i = list.findIndex((p) => p.name === site);
    return [...list.slice(0, i + 1), ...saePoints, ...list.slice(i + 1)];
  };
  const shapes = CausalLM.prototype.hookPointShapes;
  owner.hookPointShapes = function (this: CausalLM) {
    return shapes.call(this).map((p) => ({ name: p.name, shape: p.shape.map((s) => (typeof s === 'string' && /^\d+$/.test(s) ? Number(s) : s)) }));
  };
  return {
    site,
    remove: () => {
      delete (owner as { forward?: unknown }).forward;
      delete (owner as { hookPoints?: unknown }).hookPoints;
      delete (owner as { hookPointShapes?: unknown }).hookPointShapes;
    },
  };
}
