// Whole GPT-2-style blocks (LayerNorm, causal multi-head attention on one qkv product, biased
// projections, a plain MLP) as one backend call: a run of consecutive blocks
// (`Backend.fusedBlocks`, tryFusedChain) or one block (`Backend.fusedBlock`, tryFusedBlock; on
// wasm both are one ONNX Runtime session), taken only when no one can tell the difference:
// - inside a block only read-only hooks listen (`Hooks.editsAt`), and only at the points the call
//   can write out (SITES: the residuals, q, k, v, scores, pattern, z, attn_out, the MLP's pre and
//   post activation, mlp_out; not the norms' points, hook_result, backward hooks or a
//   HookRecorder); they fire after the call, in the order the block fires them op by op (its
//   recorded hook points, `CausalLM.blockHookNames`), with the same names, shapes and values, on
//   the tensors it wrote out. One block alone (tryFusedBlock) takes no hook inside;
// - a run of blocks spans only residual sites (hook_resid_pre, and hook_resid_post but the last
//   block's) where no hook or only read-only hooks listen: a hook that may replace the residual
//   ends the run before it (the last block's hook_resid_post may edit: nothing in the run comes
//   after it);
// - no gradient flows (the call has no backward) and nothing is cached or masked (a prompt, no
//   KV cache, no padding);
// - the parts are the plain kind (f32 weights with biases, no sparsity or delta mode, no gate).
// Otherwise, or when the backend declines, the caller runs the block op by op, as before.
// Not for: deciding the backend's side (size, memory layout: src/backends/wasm/native-gemm.ts).
import { fusedBlockValueShape, type FusedBlockDesc, type FusedBlockRead, type FusedBlockValue, type FusedChainDesc } from '../../tensor/backend.js';
import { QuantizedTensor } from '../../tensor/quantized.js';
import { Tensor } from '../../tensor/tensor.js';
import type { ForwardContext } from '../model.js';
import { blockHook, SHAPE, type HookShape } from '../hook-point.js';
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

/**
 * The hook points inside a block (names after `blocks.{i}.`) that a fused call can feed, from
 * the block's input, its output, or a value it writes out, with the shapes they declare op by op
 * (layers/block.ts, attention.ts, mlp.ts).
 */
const SITES: Readonly<Record<string, { from: 'in' | 'out' | FusedBlockValue; shape: HookShape; part?: number }>> = {
  hook_resid_pre: { from: 'in', shape: SHAPE.resid },
  hook_attn_in: { from: 'in', shape: SHAPE.resid },
  'attn.hook_q': { from: 'qkv', part: 0, shape: SHAPE.head },
  'attn.hook_k': { from: 'qkv', part: 1, shape: SHAPE.kvHead },
  'attn.hook_v': { from: 'qkv', part: 2, shape: SHAPE.kvHead },
  'attn.hook_attn_scores': { from: 'scores', shape: SHAPE.pattern },
  'attn.hook_pattern': { from: 'pattern', shape: SHAPE.pattern },
  'attn.hook_z': { from: 'z', shape: SHAPE.head },
  hook_attn_out: { from: 'attn_out', shape: SHAPE.resid },
  hook_resid_mid: { from: 'resid_mid', shape: SHAPE.resid },
  hook_mlp_in: { from: 'resid_mid', shape: SHAPE.resid },
  'mlp.hook_pre': { from: 'mlp_pre', shape: SHAPE.mlp },
  'mlp.hook_post': { from: 'mlp_post', shape: SHAPE.mlp },
  hook_mlp_out: { from: 'mlp_out', shape: SHAPE.resid },
  hook_resid_post: { from: 'out', shape: SHAPE.resid },
};

/** A block's fused call: its description, parameters, and the hook points inside that listen (firing order, names after the prefix). */
interface BlockPlan {
  desc: FusedBlockDesc;
  params: Tensor[];
  heard: string[];
}

/** The block's output [batch, pos, d_model] from x (after hook_resid_pre), or undefined: run it op by op. */
export function tryFusedBlock(layer: number, x: Tensor, c: ForwardContext, p: FusedBlockParts): Tensor | undefined {
  const b = x.backend;
  if (!b.fusedBlock || !fusibleInput(x, c) || layer < (c.opByOpBefore ?? 0)) return undefined;
  const plan = blockPlan(layer, c, p);
  if (!plan || plan.heard.some((n) => n !== 'hook_resid_pre' && n !== 'hook_resid_post')) return undefined;
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
 * their hooks fired after it (see the header): returns the residual after the last block run
 * (after its hook_resid_post) and the next block's index; `declined` (the backend would not run
 * them: run them op by op, not even one by one fused: `c.opByOpBefore`) with the index after
 * them; or undefined: run block `start` as before. `partsOf` gives a block's parts (undefined:
 * that block cannot be fused).
 */
export function tryFusedChain(
  start: number, stop: number, skipped: ReadonlySet<number>, x: Tensor, c: ForwardContext,
  partsOf: (layer: number) => FusedBlockParts | undefined,
): { x: Tensor; next: number } | { declined: number } | undefined {
  const b = x.backend;
  const h = c.hooks;
  if (!b.fusedBlocks || !fusibleInput(x, c) || start < (c.opByOpBefore ?? 0) || h.editsAt(blockHook(start, 'hook_resid_pre'))) return undefined;
  const plans: BlockPlan[] = [];
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
  const hears = (i: number, from: string) => plans[i]!.heard.some((s) => SITES[s]!.from === from);
  // the residual after block start + i is read out where a hook listens to it, and after the last
  const taps = plans.map((_, i) => i).filter((i) => i === n - 1 || hears(i, 'out') || hears(i + 1, 'in'));
  // the values inside the blocks that hooks listen to, each once
  const reads: FusedBlockRead[] = [];
  plans.forEach((p, block) => {
    for (const s of p.heard) {
      const from = SITES[s]!.from;
      if (from !== 'in' && from !== 'out' && !reads.some((r) => r.block === block && r.value === from)) reads.push({ block, value: from });
    }
  });
  const desc: FusedChainDesc = { blocks: plans.map((p) => p.desc), taps, ...(reads.length ? { reads } : {}) };
  const [batch, pos, d] = x.shape as [number, number, number];
  const outs = taps.map(() => Tensor.empty(x.shape, 'f32', b, 'fusedBlocks')); // [batch, pos, d_model] each
  const values = reads.map((r) => {
    const p = plans[r.block]!;
    return Tensor.empty(fusedBlockValueShape(r.value, batch, pos, p.desc.nHeads, d, p.params[9]!.shape[0]!), 'f32', b, 'fusedBlocks'); // see FusedBlockValue
  });
  const where = `blocks.${start}-${start + n - 1} (fused)`;
  if (!b.fusedBlocks(desc, [x, ...plans.flatMap((p) => p.params)].map((t) => t.view(where)), [...outs, ...values].map((t) => t.view(where)))) {
    for (const t of [...outs, ...values]) t.dispose();
    return { declined: start + n };
  }
  // the hooks, in their op-by-op order; all but the last block's hook_resid_post are read-only
  const after = new Map(taps.map((i, j) => [i, outs[j]!]));
  const valueOf = (i: number, from: string) => {
    if (from === 'in') return i === 0 ? x : after.get(i - 1)!;
    if (from === 'out') return after.get(i)!;
    return values[reads.findIndex((r) => r.block === i && r.value === from)]!;
  };
  const views: Tensor[] = [];
  let y = after.get(n - 1)!;
  plans.forEach((p, i) => {
    for (const s of p.heard) {
      const site = SITES[s]!;
      let t = valueOf(i, site.from);
      if (site.part !== undefined) {
        // q, k or v: a view into qkv [batch, pos, 3 · d_model] -> [batch, pos, head, d_head]
        t = t.reshape([batch, pos, 3, p.desc.nHeads, -1]).narrow(2, site.part, 1).squeeze(2);
        views.push(t);
      }
      t = h.at(blockHook(start + i, s), t, site.shape);
      if (i === n - 1 && s === 'hook_resid_post') y = t; // [batch, pos, d_model]
    }
  });
  for (const t of [...views, ...values]) t.dispose();
  return { x: y, next: start + n };
}

function fusibleInput(x: Tensor, c: ForwardContext): boolean {
  return !c.cache && !c.keyMask && x.dtype === 'f32' && x.rank === 3 && !x.requiresGrad && !c.hooks.recording;
}

/** Block `layer`'s fused call, or undefined when it must run op by op. */
function blockPlan(layer: number, c: ForwardContext, p: FusedBlockParts): BlockPlan | undefined {
  const { mlp } = p;
  if (mlp.up || mlp.sparse || !plainNorm(p.ln1) || !plainNorm(p.ln2)) return undefined;
  const linears = [p.qkv, p.out, mlp.in, mlp.out];
  if (!linears.every(plainLinear)) return undefined;
  const params = [p.ln1.weight!, p.ln1.bias!, p.qkv.weight, p.qkv.bias!, p.out.weight, p.out.bias!, p.ln2.weight!, p.ln2.bias!,
    mlp.in.weight, mlp.in.bias!, mlp.out.weight, mlp.out.bias!] as Tensor[];
  if (params.some((t) => t.requiresGrad || t.dtype !== 'f32')) return undefined;
  const heard = heardInside(layer, c);
  if (!heard) return undefined;
  const desc: FusedBlockDesc = {
    nHeads: p.nHeads, eps1: p.ln1.eps, eps2: p.ln2.eps, scale: p.scale, act: mlp.act,
    transB: linears.map((l) => l.layout === 'out_in') as [boolean, boolean, boolean, boolean],
  };
  return { desc, params, heard };
}

/** No hook can see inside block `layer` (its residuals between blocks aside). */
export function quietInside(layer: number, c: ForwardContext): boolean {
  return heardInside(layer, c)?.every((s) => s === 'hook_resid_pre' || s === 'hook_resid_post') ?? false;
}

/**
 * The hook points of block `layer` that hooks listen to (names after `blocks.{layer}.`, in firing
 * order), or undefined when one of them is not a SITE or may edit there (the residuals between
 * blocks excepted: tryFusedChain decides about those).
 */
function heardInside(layer: number, c: ForwardContext): string[] | undefined {
  const h = c.hooks;
  if (h.empty) return [];
  if (h.recording || !c.blockHookNames) return undefined;
  const prefix = blockHook(layer, '');
  const heard: string[] = [];
  for (const name of c.blockHookNames(layer)) {
    if (!h.wants(name)) continue;
    const s = name.slice(prefix.length);
    if (!SITES[s] || (s !== 'hook_resid_pre' && s !== 'hook_resid_post' && h.editsAt(name))) return undefined;
    heard.push(s);
  }
  return heard;
}

export function plainNorm(n: Norm): boolean {
  return n.kind === 'layernorm' && !!n.weight && !!n.bias && !n.offset;
}

function plainLinear(l: Linear): boolean {
  return !!l.bias && !l.sparse && !l.delta && !(l.weight instanceof QuantizedTensor);
}
