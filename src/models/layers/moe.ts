// A mixture-of-experts feed-forward layer: a linear router, softmax, top-k experts per token
// (optionally renormalised), each expert a gated MLP run on the tokens routed to it, and an
// optional shared expert behind a sigmoid gate (Qwen2-MoE). Hook points under <p> = blocks.{i}.mlp:
//   <p>.hook_router_logits        [batch, pos, n_experts]
//   <p>.hook_expert_weights       [batch, pos, experts_per_token]
//   <p>.hook_expert_indices       [batch, pos, experts_per_token]  (i32)
//   <p>.experts.{e}.hook_pre / hook_pre_linear / hook_post   [routed_tokens, d_mlp]
//   <p>.shared_expert.hook_*      [batch, pos, d_mlp]
import { div, mul, sigmoid, add } from '../../ops/elementwise.js';
import { arange, tensor, zeros } from '../../ops/creation.js';
import { gather, scatterAdd, softmax } from '../../ops/nn.js';
import { sum, topk } from '../../ops/reduce.js';
import { SHAPE, type Hooks, type HookShape } from '../hook-point.js';
import type { Tensor } from '../../tensor/tensor.js';
import { project, type Linear } from './linear.js';
import { runMlp, type Mlp } from './mlp.js';

export interface Moe {
  router: Linear;
  experts: Mlp[];
  topK: number;
  /** Divide the top-k probabilities by their sum (Mixtral always; Qwen2-MoE per norm_topk_prob). */
  normTopK: boolean;
  shared?: { mlp: Mlp; gate: Linear };
}

/** Expert MLPs see the tokens routed to them, [routed_tokens, d_model]. */
const ROUTED: HookShape = ['routed_tokens'];

export function runMoe(x: Tensor, m: Moe, hooks: Hooks, p: string): Tensor {
  const [b, t, d] = x.shape as [number, number, number];
  const n = b * t;
  const logits = hooks.at(`${p}.hook_router_logits`, project(x, m.router), SHAPE.router); // [batch, pos, n_experts]
  const probs = softmax(logits);
  const top = topk(probs, m.topK);
  let weights = m.normTopK ? div(top.values, sum(top.values, -1, { keepDims: true })) : top.values;
  weights = hooks.at(`${p}.hook_expert_weights`, weights, SHAPE.perExpertSlot); // [batch, pos, experts_per_token]
  const indices = hooks.at(`${p}.hook_expert_indices`, top.indices, SHAPE.perExpertSlot); // [batch, pos, experts_per_token]
  // The dense path on asynchronous backends, and when recording hook points (every expert fires).
  if (!x.backend.synchronous || hooks.recording) return denseMoe(x, m, weights, indices, hooks, p);
  const chosen = indices.dataSync();
  const flatX = x.reshape([n, d]);
  const flatW = weights.reshape([n * m.topK]);
  let out = zeros([n, d], x.dtype, { backend: x.backend });
  for (let e = 0; e < m.experts.length; e++) {
    const rows: number[] = [];
    const slots: number[] = [];
    for (let i = 0; i < n * m.topK; i++) {
      if (chosen[i] === e) { rows.push(Math.floor(i / m.topK)); slots.push(i); }
    }
    if (rows.length === 0) continue;
    const ids = tensor(rows, [rows.length], 'i32', { backend: x.backend });
    const w = gather(flatW, tensor(slots, [slots.length], 'i32', { backend: x.backend })).reshape([rows.length, 1]);
    const y = runMlp(gather(flatX, ids), m.experts[e]!, hooks, `${p}.experts.${e}`, ROUTED); // [routed_tokens, d_model]
    out = scatterAdd(out, ids, mul(y, w));
  }
  return addShared(out.reshape([b, t, d]), x, m, hooks, p);
}

function addShared(result: Tensor, x: Tensor, m: Moe, hooks: Hooks, p: string): Tensor {
  if (!m.shared) return result;
  const s = runMlp(x, m.shared.mlp, hooks, `${p}.shared_expert`);
  return add(result, mul(s, sigmoid(project(x, m.shared.gate))));
}

/**
 * The same layer without reading the routing back to JavaScript (for asynchronous backends such
 * as WebGPU): the top-k weights are scattered on the device into a dense [tokens, experts] matrix
 * (zero where an expert was not chosen) and every expert runs on every token. Costs n_experts /
 * k times the expert compute; the expert hooks then see all tokens ([batch·pos, d_mlp]).
 */
function denseMoe(x: Tensor, m: Moe, weights: Tensor, indices: Tensor, hooks: Hooks, p: string): Tensor {
  const [b, t, d] = x.shape as [number, number, number];
  const n = b * t;
  const E = m.experts.length;
  const k = m.topK;
  const rowBase = mul(arange(0, n, 1, 'i32', { backend: x.backend }).reshape([n, 1]), E); // [n, 1]
  const slots = add(indices.reshape([n, k]), rowBase).reshape([n * k]); // token·E + expert
  const dense = scatterAdd(zeros([n * E, 1], x.dtype, { backend: x.backend }), slots, weights.reshape([n * k, 1])).reshape([n, E]);
  const flatX = x.reshape([n, d]);
  let out = zeros([n, d], x.dtype, { backend: x.backend });
  for (let e = 0; e < E; e++) {
    const y = runMlp(flatX, m.experts[e]!, hooks, `${p}.experts.${e}`, ROUTED); // [tokens, d_model]
    out = add(out, mul(y, dense.narrow(1, e, 1)));
  }
  return addShared(out.reshape([b, t, d]), x, m, hooks, p);
}
