// The two residual wirings of a transformer block, with the block-level hook points:
//   blocks.{i}.hook_resid_pre  [batch, pos, d_model]
//   blocks.{i}.hook_attn_in    [batch, pos, d_model]  (the attention sublayer's input, before ln1)
//   blocks.{i}.hook_attn_out   [batch, pos, d_model]
//   blocks.{i}.hook_resid_mid  [batch, pos, d_model]  (sequential blocks only)
//   blocks.{i}.hook_mlp_in     [batch, pos, d_model]  (the MLP sublayer's input, before ln2)
//   blocks.{i}.hook_mlp_out    [batch, pos, d_model]
//   blocks.{i}.hook_resid_post [batch, pos, d_model]
import { add } from '../../ops/elementwise.js';
import type { Tensor } from '../../tensor/tensor.js';
import type { ForwardContext } from '../model.js';
import type { Hooks } from '../hook-point.js';
import { addThenNorm, applyNorm, normOf, type Norm } from './norm.js';
import { blockHook, SHAPE } from '../hook-point.js';
import { tryFusedBlock, type FusedBlockParts } from './fused-block.js';

export interface BlockParts {
  ln1: Norm;
  ln2: Norm;
  /** normalized input [batch, pos, d_model] -> attention output [batch, pos, d_model] */
  attn: (x: Tensor) => Tensor;
  /** normalized input -> MLP (or MoE) output */
  mlp: (x: Tensor) => Tensor;
  /** The same block as parts a backend may run in one call while no hook can change anything inside (fused-block.ts). */
  fused?: FusedBlockParts;
  /**
   * The norm that reads this block's output (the next block's ln1, or the final norm) and its
   * hook prefix: a backend that fuses a residual add with a norm computes it with the last add.
   */
  nextNorm?: { norm: Norm; prefix: string };
}

/** x + attn(ln1(x)), then + mlp(ln2(·)): GPT-2, Llama, Mistral, Qwen2, Gemma, Mixtral, Qwen2-MoE. */
export function sequentialBlock(i: number, x: Tensor, c: ForwardContext, p: BlockParts): Tensor {
  const h = c.hooks;
  // the norm of x computed ahead with the add that made x (the previous block's last, or the embedding's)
  const ahead = c.normAhead;
  c.normAhead = undefined;
  x = h.at(blockHook(i, 'hook_resid_pre'), x, SHAPE.resid); // [batch, pos, d_model]
  const fused = p.fused && tryFusedBlock(i, x, c, p.fused); // [batch, pos, d_model]
  if (fused) {
    ahead?.y?.dispose();
    return h.at(blockHook(i, 'hook_resid_post'), fused, SHAPE.resid);
  }
  const attnIn = branch(h, blockHook(i, 'hook_attn_in'), x); // [batch, pos, d_model]
  const attnOut = h.at(blockHook(i, 'hook_attn_out'), p.attn(normOf(attnIn, p.ln1, h, blockHook(i, 'ln1'), ahead)), SHAPE.resid); // [batch, pos, d_model]
  const midSum = addThenNorm(x, attnOut, p.ln2, h, blockHook(i, 'ln2'));
  const mid = h.at(blockHook(i, 'hook_resid_mid'), midSum.sum, SHAPE.resid); // [batch, pos, d_model]
  const mlpIn = branch(h, blockHook(i, 'hook_mlp_in'), mid); // [batch, pos, d_model]
  const mlpOut = h.at(blockHook(i, 'hook_mlp_out'), p.mlp(normOf(mlpIn, p.ln2, h, blockHook(i, 'ln2'), midSum)), SHAPE.resid); // [batch, pos, d_model]
  if (!p.nextNorm) return h.at(blockHook(i, 'hook_resid_post'), add(mid, mlpOut), SHAPE.resid); // [batch, pos, d_model]
  const post = addThenNorm(mid, mlpOut, p.nextNorm.norm, h, p.nextNorm.prefix);
  c.normAhead = post;
  return h.at(blockHook(i, 'hook_resid_post'), post.sum, SHAPE.resid); // [batch, pos, d_model]
}

/**
 * A sublayer's input hook (hook_attn_in, hook_mlp_in): the hook gets its own handle on x, so a
 * replacement (which disposes what the hook point was given) leaves x for the residual add.
 */
function branch(h: Hooks, name: string, x: Tensor): Tensor {
  return h.wants(name) ? h.at(name, x.share(), SHAPE.resid) : x;
}

/** x + attn(ln1(x)) + mlp(ln2(x)): GPT-NeoX / Pythia with use_parallel_residual. */
export function parallelBlock(i: number, x: Tensor, c: ForwardContext, p: BlockParts): Tensor {
  const h = c.hooks;
  x = h.at(blockHook(i, 'hook_resid_pre'), x, SHAPE.resid); // [batch, pos, d_model]
  const attnIn = branch(h, blockHook(i, 'hook_attn_in'), x); // [batch, pos, d_model]
  const attnOut = h.at(blockHook(i, 'hook_attn_out'), p.attn(applyNorm(attnIn, p.ln1, h, blockHook(i, 'ln1'))), SHAPE.resid); // [batch, pos, d_model]
  const mlpIn = branch(h, blockHook(i, 'hook_mlp_in'), x); // [batch, pos, d_model]
  const mlpOut = h.at(blockHook(i, 'hook_mlp_out'), p.mlp(applyNorm(mlpIn, p.ln2, h, blockHook(i, 'ln2'))), SHAPE.resid); // [batch, pos, d_model]
  return h.at(blockHook(i, 'hook_resid_post'), add(add(x, attnOut), mlpOut), SHAPE.resid); // [batch, pos, d_model]
}
