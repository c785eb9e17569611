// Relevance patching (RelP; Rezaei Jafari, Eberle, Khakzar, Nanda 2025, "RelP: Faithful and
// Efficient Circuit Discovery via Relevance Patching", arXiv 2508.21258, reference code
// github.com/FarnoushRJ/RelP): attribution patching with the local gradients replaced by the
// propagation coefficients of Layer-wise Relevance Propagation,
//   effect of a unit = Σ (a_corrupt − a_clean) · ∂̃metric/∂a at the clean run,
// where ∂̃ is the gradient under these rules (the paper's defaults, its Table of rules):
//   'ln'        LN-rule (Ali et al. 2022): LayerNorm / RMSNorm divide by a constant — the scale
//               sqrt(var + eps) is detached; centring and the weight stay linear.
//   'identity'  Identity-rule (Rezaei Jafari et al. 2024): an activation f passes relevance through
//               unchanged: f(x) is computed as x · [f(x) / x] with the ratio detached.
//   'half'      Half-rule (Rezaei Jafari et al. 2024; Arras et al. 2019): a multiplicative gate
//               (act(gate) · up of gated MLPs) sends half of the gradient to each factor.
//   'attention' AH-rule (Ali et al. 2022): the attention pattern is a constant, so relevance flows
//               through the values only (none through queries and keys).
// Linear layers keep the plain gradient (LRP-0). Each rule is a forward hook that keeps the
// activation's value and changes only what backward sees, at the hook points the models already
// have (`*.hook_scale`, `attn.hook_pattern`, `mlp.hook_pre` / `hook_pre_linear` / `hook_post`,
// the experts' MLPs included); so every architecture gets them, and the forward values (and the
// corrupted run) are those of the plain model. With every rule on, a model without biases is a
// linear function of its residual stream under these gradients, and relevance is conserved:
// Σ h · ∂̃metric/∂h is the metric at every layer (test/relp.test.ts checks it).
// Not covered: the Qwen2-MoE shared-expert sigmoid gate and the router weights keep their plain
// gradient; backward hooks at mlp.hook_pre / hook_pre_linear see no gradient under 'identity'
// (the rule rebuilds the MLP output from those activations).
import { noGrad } from '../autograd/tape.js';
import { gradAt, type GradAtResult } from '../hooks/grad.js';
import type { HookFilter, HookFn } from '../models/hook-point.js';
import { add, div, eq, mul, sign, unary, where } from '../ops/elementwise.js';
import { activation } from '../models/layers/mlp.js';
import type { CausalLM } from '../models/model.js';
import type { Tensor } from '../tensor/tensor.js';
import type { UnaryFn } from '../tensor/backend.js';
import { attributionPatching, type PatchingResult, type PatchSite } from './patching.js';

export type LrpRule = 'ln' | 'identity' | 'half' | 'attention';
/** RelP's default rules. */
export const LRP_RULES: readonly LrpRule[] = ['ln', 'identity', 'half', 'attention'];

/** A handle on `t` that backward does not pass through (PyTorch's `detach`). */
export function detach(t: Tensor): Tensor {
  return noGrad(() => t.share());
}

/** x + (sign(x) + [x = 0]) · 1e-6, as the reference code's `stabilize`; the shift carries no gradient. */
function stabilize(x: Tensor): Tensor {
  const shift = noGrad(() => where(eq(x, 0), 1e-6, mul(sign(x), 1e-6)));
  return add(x, shift);
}

/** The activation of a gated MLP (act(gate) · up), from the checkpoint config; null for plain MLPs. */
export function gatedActivation(model: CausalLM): UnaryFn | null {
  const arch = model.dims.arch;
  const cfg = model.hfConfig;
  switch (arch) {
    case 'llama': case 'mistral': case 'qwen2': case 'mixtral': case 'qwen2_moe':
      return activation(cfg.hidden_act ?? 'silu', `${arch} config.hidden_act`);
    case 'gemma':
      return activation(cfg.hidden_activation ?? 'gelu_pytorch_tanh', 'gemma config.hidden_activation');
    default:
      return null;
  }
}

/** The MLP prefix of an MLP hook name (`blocks.0.mlp`, `blocks.1.mlp.experts.3`, ...). */
function mlpPrefix(name: string): string {
  return name.slice(0, name.lastIndexOf('.'));
}

/**
 * Forward hooks that make backward compute LRP propagation coefficients under `rules` (values
 * unchanged). Each call makes fresh hooks (they hold state within one forward pass).
 */
export function lrpHooks(model: CausalLM, rules: readonly LrpRule[] = LRP_RULES): [HookFilter, HookFn][] {
  for (const r of rules) if (!LRP_RULES.includes(r)) throw new Error(`LRP rule '${r}' is not one of ${LRP_RULES.join(', ')}`);
  const on = new Set(rules);
  const hooks: [HookFilter, HookFn][] = [];
  if (on.has('ln')) hooks.push([/(^|\.)ln(1|2|_final)\.hook_scale$/, (s) => detach(s)]);
  if (on.has('attention')) hooks.push([/\.attn\.hook_pattern$/, (p) => detach(p)]);
  if (!on.has('identity') && !on.has('half')) return hooks;
  const act = gatedActivation(model);
  const pre = new Map<string, Tensor>();
  const lin = new Map<string, Tensor>();
  // The tensors kept here belong to the forward pass's scope; each is used by the hook_post of
  // the same MLP, later in the same pass.
  hooks.push([/\.mlp(\.experts\.\d+|\.shared_expert)?\.hook_pre$/, (t, h) => { pre.set(mlpPrefix(h.name), t); }]);
  hooks.push([/\.mlp(\.experts\.\d+|\.shared_expert)?\.hook_pre_linear$/, (t, h) => { lin.set(mlpPrefix(h.name), t); }]);
  hooks.push([/\.mlp(\.experts\.\d+|\.shared_expert)?\.hook_post$/, (post, h) => {
    const p = mlpPrefix(h.name);
    const x = pre.get(p);
    const up = lin.get(p);
    pre.delete(p);
    lin.delete(p);
    if (!x) return undefined;
    if (!up) {
      // Plain MLP: post = f(x). Identity-rule: f(x) = stab(x) · [f(x) / stab(x)].
      if (!on.has('identity')) return undefined;
      const s = stabilize(x);
      return mul(s, noGrad(() => div(post, s)));
    }
    if (!act) throw new Error(`RelP: ${model.dims.arch} has a gated MLP at '${p}' whose activation is unknown`);
    // Gated MLP: post = f(x) · up.
    let gate: Tensor;
    if (on.has('identity')) {
      const s = stabilize(x);
      gate = mul(s, noGrad(() => div(unary(act, x), s)));
    } else gate = unary(act, x);
    const prod = mul(gate, up);
    if (!on.has('half')) return prod;
    // Half-rule: value prod, gradient prod/2 (each factor gets half of the plain product rule).
    const half = mul(prod, 0.5);
    return add(half, detach(half));
  }]);
  return hooks;
}

/** Gradients of `metric` at `names` under LRP rules (relevance = activation · this). */
export function lrpGradAt(
  model: CausalLM, input: Tensor, metric: (logits: Tensor) => Tensor, names: readonly string[],
  o: { rules?: readonly LrpRule[]; activations?: boolean } = {},
): GradAtResult {
  return model.withHooks(lrpHooks(model, o.rules), () => gradAt(model, input, metric, names, { activations: o.activations }));
}

/**
 * Relevance patching: attribution patching with LRP propagation coefficients in place of the
 * gradient (two forward passes and one backward pass).
 */
export function relevancePatching(
  model: CausalLM, clean: Tensor, corrupt: Tensor, metric: (logits: Tensor) => Tensor, site: PatchSite,
  o: { layers?: number[]; rules?: readonly LrpRule[] } = {},
): PatchingResult {
  return attributionPatching(model, clean, corrupt, metric, site, { layers: o.layers, cleanHooks: lrpHooks(model, o.rules) });
}
