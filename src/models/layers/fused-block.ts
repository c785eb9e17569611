// Whole GPT-2-style blocks (LayerNorm, causal multi-head attention on one qkv product, biased
// projections, a plain MLP) as one backend call: a run of consecutive blocks
// (`Backend.fusedBlocks`, tryFusedChain) or one block (`Backend.fusedBlock`, tryFusedBlock; on
// wasm both are one ONNX Runtime session), taken only when no one can tell the difference:
// - no hook listens inside a block: every hook point the model fires there (from
//   `CausalLM.hookPoints`) other than hook_resid_pre and hook_resid_post is unwanted, backward
//   hooks included, and the hooks are not a HookRecorder;
// - a run of blocks spans only residual sites (hook_resid_pre, and hook_resid_post but the last
//   block's) where no hook or only read-only hooks listen (`Hooks.editsAt`): they fire after the
//   call, in the order they fire op by op, on the residuals it wrote out, so they see the same
//   tensors; a hook that may replace the residual ends the run before it (the last block's
//   hook_resid_post may edit: nothing in the run comes after it);
// - no gradient flows (the call has no backward) and nothing is cached or masked (a prompt, no
//   KV cache, no padding);
// - the parts are the plain kind (f32 weights with biases, no sparsity or delta mode, no gate).
// Otherwise, or when the backend declines, the caller runs the block op by op, as before.
// Not for: deciding the backend's side (size, memory layout: src/backends/wasm/native-gemm.ts).
import type { FusedBlockDesc, FusedChainDesc } from '../../tensor/backend.js';
import { QuantizedTensor } from '../../tensor/quantized.js';
import { Tensor } from '../../tensor/tensor.js';
import type { ForwardContext } from '../model.js';
import { blockHook, SHAPE } from '../hook-point.js';
import type { Linear } from './linear.js';
import type { Mlp } from './mlp.js';
import type { Norm } from './norm.js';

export interface FusedBlockParts {
  ln1: Norm;
  ln2: Norm;
  /** q, k, v as one product [.., 3 · d_model] (q, then k, then v). */
  qkv: Linear;
  out: Linear;
  mlp: Mlp;
  nHeads: number;
  scale: number;
}

/** The block's output [batch, pos, d_model] from x (after hook_resid_pre), or undefined: run it op by op. */
export function tryFusedBlock(layer: number, x: Tensor, c: ForwardContext, p: FusedBlockParts): Tensor | undefined {
  const b = x.backend;
  if (!b.fusedBlock || !fusibleInput(x, c) || layer < (c.opByOpBefore ?? 0)) return undefined;
  const plan = blockPlan(layer, c, p);
  if (!plan) return undefined;
  const { desc, params } = plan;
  const y = Tensor.empty(x.shape, 'f32', b, 'fusedBlock'); // [batch, pos, d_model]
  const where = `blocks.${layer} (fused)`;
  if (!b.fusedBlock(desc, [x, ...params].map((t) => t.view(where)), y.view(where))) {
    y.dispose();
    return undefined;
  }
  return y;
}

/**
 * Blocks `start`, `start + 1`, ... (before `stop`, none in `skipped`) as one backend call, with
 * their residual hooks fired after it (see the header): returns the residual after the last
 * block run (after its hook_resid_post) and the next block's index; `declined` (the backend
 * would not run them: run them op by op, not even one by one fused: `c.opByOpBefore`) with the
 * index after them; or undefined: run block `start` as before. `partsOf` gives a block's parts
 * (undefined: that block cannot be fused).
 */
export function tryFusedChain(
  start: number, stop: number, skipped: ReadonlySet<number>, x: Tensor, c: ForwardContext,
  partsOf: (layer: number) => FusedBlockParts | undefined,
): { x: Tensor; next: number } | { declined: number } | undefined {
  const b = x.backend;
  const h = c.hooks;
  if (!b.fusedBlocks || !fusibleInput(x, c) || start < (c.opByOpBefore ?? 0) || h.editsAt(blockHook(start, 'hook_resid_pre'))) return undefined;
  const plans: NonNullable<ReturnType<typeof blockPlan>>[] = [];
  for (let l = start; l < stop && !skipped.has(l); l++) {
    // into block l > start: the residual between l - 1 and l must reach it unchanged
    if (l > start && (h.editsAt(blockHook(l - 1, 'hook_resid_post')) || h.editsAt(blockHook(l, 'hook_resid_pre')))) break;
    const p = partsOf(l);
    const plan = p && blockPlan(l, c, p);
    if (!plan) break;
    plans.push(plan);
  }
  const n = plans.length;
  if (n === 0) return undefined;
  // the residual after block start + i is read out where a hook listens to it, and after the last
  const heard = (i: number) => i === n - 1 || h.wants(blockHook(start + i, 'hook_resid_post')) || h.wants(blockHook(start + i + 1, 'hook_resid_pre'));
  const taps = plans.map((_, i) => i).filter(heard);
  const desc: FusedChainDesc = { blocks: plans.map((p) => p.desc), taps };
  const outs = taps.map(() => Tensor.empty(x.shape, 'f32', b, 'fusedBlocks')); // [batch, pos, d_model] each
  const where = `blocks.${start}-${start + n - 1} (fused)`;
  if (!b.fusedBlocks(desc, [x, ...plans.flatMap((p) => p.params)].map((t) => t.view(where)), outs.map((t) => t.view(where)))) {
    for (const t of outs) t.dispose();
    return { declined: start + n };
  }
  // the residual hooks, in their op-by-op order; all but the last resid_post are read-only
  const after = new Map(taps.map((i, j) => [i, outs[j]!]));
  let y = x;
  for (let i = 0; i < n; i++) {
    const into = i === 0 ? x : after.get(i - 1);
    if (into) h.at(blockHook(start + i, 'hook_resid_pre'), into, SHAPE.resid);
    const out = after.get(i);
    if (out) y = h.at(blockHook(start + i, 'hook_resid_post'), out, SHAPE.resid); // [batch, pos, d_model]
  }
  return { x: y, next: start + n };
}

function fusibleInput(x: Tensor, c: ForwardContext): boolean {
  return !c.cache && !c.keyMask && x.dtype === 'f32' && x.rank === 3 && !x.requiresGrad && !c.hooks.recording;
}

/** Block `layer`'s description and parameters for a fused call, or undefined when it must run op by op. */
function blockPlan(layer: number, c: ForwardContext, p: FusedBlockParts): { desc: FusedBlockDesc; params: Tensor[] } | undefined {
  const { mlp } = p;
  if (mlp.up || mlp.sparse || !plainNorm(p.ln1) || !plainNorm(p.ln2)) return undefined;
  const linears = [p.qkv, p.out, mlp.in, mlp.out];
  if (!linears.every(plainLinear)) return undefined;
  const params = [p.ln1.weight!, p.ln1.bias!, p.qkv.weight, p.qkv.bias!, p.out.weight, p.out.bias!, p.ln2.weight!, p.ln2.bias!,
    mlp.in.weight, mlp.in.bias!, mlp.out.weight, mlp.out.bias!] as Tensor[];
  if (params.some((t) => t.requiresGrad || t.dtype !== 'f32')) return undefined;
  if (!quietInside(layer, c)) return undefined;
  const desc: FusedBlockDesc = {
    nHeads: p.nHeads, eps1: p.ln1.eps, eps2: p.ln2.eps, scale: p.scale, act: mlp.act,
    transB: linears.map((l) => l.layout === 'out_in') as [boolean, boolean, boolean, boolean],
  };
  return { desc, params };
}

/** No hook can see inside block `layer`. */
export function quietInside(layer: number, c: ForwardContext): boolean {
  const h = c.hooks;
  if (h.empty) return true;
  if (h.recording || !c.blockHookNames) return false;
  return c.blockHookNames(layer).every((n) => n.endsWith('.hook_resid_pre') || n.endsWith('.hook_resid_post') || !h.wants(n));
}

export function plainNorm(n: Norm): boolean {
  return n.kind === 'layernorm' && !!n.weight && !!n.bias && !n.offset;
}

function plainLinear(l: Linear): boolean {
  return !!l.bias && !l.sparse && !l.delta && !(l.weight instanceof QuantizedTensor);
}
