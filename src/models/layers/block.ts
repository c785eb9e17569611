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
import { applyNorm, type Norm } from './norm.js';

export interface BlockParts {
  ln1: Norm;
  ln2: Norm;
  /** normalized input [batch, pos, d_model] -> attention output [batch, pos, d_model] */
  attn: (x: Tensor) => Tensor;
  /** normalized input -> MLP (or MoE) output */
  mlp: (x: Tensor) => Tensor;
}

/** x + attn(ln1(x)), then + mlp(ln2(·)): GPT-2, Llama, Mistral, Qwen2, Gemma, Mixtral, Qwen2-MoE. */
export function sequentialBlock(i: number, x: Tensor, c: ForwardContext, p: BlockParts): Tensor {
  const h = c.hooks;
  const b = `blocks.${i}`;
  x = h.at(`${b}.hook_resid_pre`, x); // [batch, pos, d_model]
  const attnIn = h.at(`${b}.hook_attn_in`, x); // [batch, pos, d_model]
  const attnOut = h.at(`${b}.hook_attn_out`, p.attn(applyNorm(attnIn, p.ln1, h, `${b}.ln1`))); // [batch, pos, d_model]
  const mid = h.at(`${b}.hook_resid_mid`, add(x, attnOut)); // [batch, pos, d_model]
  const mlpIn = h.at(`${b}.hook_mlp_in`, mid); // [batch, pos, d_model]
  const mlpOut = h.at(`${b}.hook_mlp_out`, p.mlp(applyNorm(mlpIn, p.ln2, h, `${b}.ln2`))); // [batch, pos, d_model]
  return h.at(`${b}.hook_resid_post`, add(mid, mlpOut)); // [batch, pos, d_model]
}

/** x + attn(ln1(x)) + mlp(ln2(x)): GPT-NeoX / Pythia with use_parallel_residual. */
export function parallelBlock(i: number, x: Tensor, c: ForwardContext, p: BlockParts): Tensor {
  const h = c.hooks;
  const b = `blocks.${i}`;
  x = h.at(`${b}.hook_resid_pre`, x); // [batch, pos, d_model]
  const attnIn = h.at(`${b}.hook_attn_in`, x); // [batch, pos, d_model]
  const attnOut = h.at(`${b}.hook_attn_out`, p.attn(applyNorm(attnIn, p.ln1, h, `${b}.ln1`))); // [batch, pos, d_model]
  const mlpIn = h.at(`${b}.hook_mlp_in`, x); // [batch, pos, d_model]
  const mlpOut = h.at(`${b}.hook_mlp_out`, p.mlp(applyNorm(mlpIn, p.ln2, h, `${b}.ln2`))); // [batch, pos, d_model]
  return h.at(`${b}.hook_resid_post`, add(add(x, attnOut), mlpOut)); // [batch, pos, d_model]
}

/** The hook points of one block, with shapes, for `hookPoints()`. */
export function blockHookPoints(i: number, o: { parallel?: boolean; rotary?: boolean; gated?: boolean; experts?: number }): { name: string; shape: string[] }[] {
  const b = `blocks.${i}`;
  const d = ['batch', 'pos', 'd_model'];
  const head = ['batch', 'pos', 'head_index', 'd_head'];
  const kv = ['batch', 'pos', 'kv_head_index', 'd_head'];
  const pat = ['batch', 'head_index', 'query_pos', 'key_pos'];
  const mlp = ['batch', 'pos', 'd_mlp'];
  const scale = ['batch', 'pos', '1'];
  const list: [string, string[]][] = [
    ['hook_resid_pre', d], ['hook_attn_in', d], ['ln1.hook_scale', scale], ['ln1.hook_normalized', d],
    ['attn.hook_q', head], ['attn.hook_k', kv], ['attn.hook_v', kv],
    ...(o.rotary ? [['attn.hook_rot_q', head], ['attn.hook_rot_k', kv]] as [string, string[]][] : []),
    ['attn.hook_attn_scores', pat], ['attn.hook_pattern', pat], ['attn.hook_z', head],
    ['attn.hook_result', ['batch', 'pos', 'head_index', 'd_model']], ['hook_attn_out', d],
    ...(o.parallel ? [] : [['hook_resid_mid', d]] as [string, string[]][]),
    ['hook_mlp_in', d], ['ln2.hook_scale', scale], ['ln2.hook_normalized', d],
  ];
  if (o.experts) {
    list.push(['mlp.hook_router_logits', ['batch', 'pos', 'n_experts']], ['mlp.hook_expert_weights', ['batch', 'pos', 'experts_per_token']], ['mlp.hook_expert_indices', ['batch', 'pos', 'experts_per_token']]);
    for (let e = 0; e < o.experts; e++) list.push([`mlp.experts.${e}.hook_post`, ['routed_tokens', 'd_mlp']]);
  } else {
    list.push(['mlp.hook_pre', mlp], ...(o.gated ? [['mlp.hook_pre_linear', mlp]] as [string, string[]][] : []), ['mlp.hook_post', mlp]);
  }
  list.push(['hook_mlp_out', d], ['hook_resid_post', d]);
  return list.map(([n, s]) => ({ name: `${b}.${n}`, shape: s }));
}
