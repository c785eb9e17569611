// Multi-head attention from per-head q, k, v: rotary embedding, KV cache, grouped-query heads,
// causal and padding masks, and the hook points of TransformerLens' attention:
//   <p>.hook_q / hook_k / hook_v   [batch, pos, head, d_head]
//   <p>.hook_rot_q / hook_rot_k    [batch, pos, head, d_head]   (rotary models)
//   <p>.hook_attn_scores           [batch, head, query_pos, key_pos]  (scaled, masked with -inf)
//   <p>.hook_pattern               [batch, head, query_pos, key_pos]
//   <p>.hook_z                     [batch, pos, head, d_head]
//   <p>.hook_result                [batch, pos, head, d_model]  (computed only when asked)
// The fused attention op runs unless someone listens at the scores; a pattern hook gets the
// fused op's probabilities, and P·V is recomputed only when the hook replaces them. A packed
// (quantized) cache attends where its codes lie unless scores or patterns are hooked.
import { add, mul, where } from '../../ops/elementwise.js';
import { tensor } from '../../ops/creation.js';
import { matmul } from '../../ops/linalg.js';
import { attention, rope, softmax } from '../../ops/nn.js';
import { sum } from '../../ops/reduce.js';
import { SHAPE, type Hooks } from '../hook-point.js';
import type { Tensor } from '../../tensor/tensor.js';
import type { KVCache } from './kv-cache.js';
import { KVCacheQuant } from '../kvquant/cache.js';
import { project, weightInOut, type Linear } from './linear.js';

export interface RopeInputs {
  positions: Tensor; // i32 [batch, pos]
  /** The same positions on the host, where the caller has them (a packed cache stores them with pre-RoPE keys). */
  positionsHost?: Int32Array;
  invFreq: Tensor; // f32 [rotary_dim / 2]
  rotaryDim: number;
  mode: 'half' | 'interleaved';
  /** Multiplies the rotated q and k (yarn); 1 otherwise. */
  attentionFactor: number;
}

export interface AttendContext {
  hooks: Hooks;
  /** 'blocks.{i}.attn' */
  prefix: string;
  layer: number;
  rope?: RopeInputs;
  cache?: KVCache;
  /** u8 [batch, key_pos], 1 = real token. */
  keyMask?: Tensor;
  /** Host copy of keyMask, for building explicit masks. */
  keyMaskHost?: Uint8Array;
  scale: number;
  output: Linear;
  /** Query i sees only the last `slidingWindow` keys (j > i - window), as Mistral; none by default. */
  slidingWindow?: number;
}

/** q [b, tq, h, dh], k/v [b, tq, hkv, dh] -> attention output [b, tq, d_model] (before hook_attn_out). */
export function attend(q: Tensor, k: Tensor, v: Tensor, c: AttendContext): Tensor {
  const { hooks, prefix: p } = c;
  q = hooks.at(`${p}.hook_q`, q, SHAPE.head); // [batch, pos, head, d_head]
  k = hooks.at(`${p}.hook_k`, k, SHAPE.kvHead); // [batch, pos, kv_head, d_head]
  v = hooks.at(`${p}.hook_v`, v, SHAPE.kvHead); // [batch, pos, kv_head, d_head]
  // a packed cache holding pre-RoPE keys stores k as it is here and rotates on read
  const quant = c.cache instanceof KVCacheQuant ? c.cache : undefined;
  const kPre = k;
  if (c.rope) {
    const r = c.rope;
    q = rope(q, r.positions, r.invFreq, { mode: r.mode, rotaryDim: r.rotaryDim });
    if (!quant?.preRope || hooks.wants(`${p}.hook_rot_k`)) k = rope(k, r.positions, r.invFreq, { mode: r.mode, rotaryDim: r.rotaryDim });
    if (r.attentionFactor !== 1) { q = mul(q, r.attentionFactor); if (k !== kPre) k = mul(k, r.attentionFactor); }
    q = hooks.at(`${p}.hook_rot_q`, q, SHAPE.head); // [batch, pos, head, d_head]
    if (k !== kPre) k = hooks.at(`${p}.hook_rot_k`, k, SHAPE.kvHead); // [batch, pos, kv_head, d_head]
  }
  const [b, tq, h, dh] = q.shape as [number, number, number, number];
  const hkv = k.shape[2]!;
  let kh = k.permute([0, 2, 1, 3]); // [batch, kv_head, pos, d_head]
  let vh = v.permute([0, 2, 1, 3]);
  const qh = q.permute([0, 2, 1, 3]); // [batch, head, pos, d_head]
  let out: Tensor | undefined; // [batch, head, query_pos, d_head]
  if (quant) {
    const r = c.rope;
    const cacheRope = r && { invFreq: r.invFreq, rotaryDim: r.rotaryDim, mode: r.mode };
    const pre = quant.preRope && !!r;
    quant.store(c.layer, (pre ? kPre : k).permute([0, 2, 1, 3]), vh, r ? (r.positionsHost ?? (r.positions.dataSync() as Int32Array)) : undefined, c.keyMaskHost);
    const tkNow = quant.length + tq;
    const explicit = hooks.wants(`${p}.hook_attn_scores`) || hooks.wants(`${p}.hook_pattern`) || (c.slidingWindow !== undefined && tkNow > c.slidingWindow);
    if (!explicit) {
      out = quant.attend(c.layer, qh, { scale: c.scale * (pre ? r.attentionFactor : 1), keyMask: c.keyMask, keyMaskHost: c.keyMaskHost, rope: cacheRope });
    } else {
      ({ k: kh, v: vh } = quant.dequantized(c.layer, cacheRope));
      if (pre && r.attentionFactor !== 1) kh = mul(kh, r.attentionFactor);
    }
  } else if (c.cache) ({ k: kh, v: vh } = c.cache.append(c.layer, kh, vh));
  const tk = kh.shape[2]!;

  const g = h / hkv;
  const applyPattern = (pattern: Tensor) => matmul(pattern.reshape([b, hkv, g, tq, tk]), vh.unsqueeze(2)).reshape([b, h, tq, vh.shape[3]!]);
  const windowed = c.slidingWindow !== undefined && tk > c.slidingWindow;
  if (out) {
    // the packed cache attended already
  } else if (hooks.wants(`${p}.hook_attn_scores`) || windowed) {
    // Scores are asked for, or a sliding window hides old keys (the fused op knows only causal and
    // padding masks): the explicit path (scores -> mask -> softmax -> pattern -> P·V).
    const q5 = qh.reshape([b, hkv, g, tq, dh]);
    let scores = matmul(q5, kh.unsqueeze(2), { transB: true }).reshape([b, h, tq, tk]);
    scores = mul(scores, c.scale);
    // Without padding the mask is the same for every sequence: one [1, 1, q, k] broadcast over the batch.
    const mask = visibleMask(c.keyMaskHost ? b : 1, tq, tk, c.keyMaskHost, q, windowed ? c.slidingWindow : undefined);
    scores = hooks.at(`${p}.hook_attn_scores`, where(mask, scores, -Infinity), SHAPE.pattern); // [batch, head, query_pos, key_pos]
    const pattern = hooks.at(`${p}.hook_pattern`, softmax(scores, { mask }), SHAPE.pattern); // [batch, head, query_pos, key_pos]
    out = applyPattern(pattern);
  } else if (hooks.wants(`${p}.hook_pattern`)) {
    // The fused op also returns the probabilities; P·V is redone only if a hook replaces them.
    const r = attention(qh, kh, vh, { causal: true, scale: c.scale, keyMask: c.keyMask, returnProbs: true });
    const pattern = hooks.at(`${p}.hook_pattern`, r.probs!, SHAPE.pattern); // [batch, head, query_pos, key_pos]
    out = pattern === r.probs ? r.out : applyPattern(pattern);
  } else {
    // token-major output [batch, pos, head, d_head]: z below is a free view of it
    out = attention(qh, kh, vh, { causal: true, scale: c.scale, keyMask: c.keyMask, tokenMajor: true }).out.permute([0, 2, 1, 3]);
  }
  const z = hooks.at(`${p}.hook_z`, out.permute([0, 2, 1, 3]), SHAPE.head); // [batch, pos, head, d_head]
  const dv = z.shape[3]!;
  if (hooks.wants(`${p}.hook_result`)) {
    const wo = weightInOut(c.output).reshape([h, dv, -1]); // [head, d_head, d_model]
    let result = matmul(z.permute([0, 2, 1, 3]), wo).permute([0, 2, 1, 3]); // [batch, pos, head, d_model]
    result = hooks.at(`${p}.hook_result`, result, SHAPE.headResult); // [batch, pos, head, d_model]
    const summed = sum(result, 2);
    return c.output.bias ? add(summed, c.output.bias) : summed;
  }
  return project(z.reshape([b, tq, h * dv]), c.output);
}

/**
 * u8 [batch, 1, query, key]: 1 where query i may see key j — causal with offset, not padding,
 * and within the sliding window when there is one (key positions count cached keys too).
 */
function visibleMask(b: number, tq: number, tk: number, keyMask: Uint8Array | undefined, like: Tensor, window?: number): Tensor {
  const m = new Uint8Array(b * tq * tk);
  for (let s = 0; s < b; s++) {
    for (let i = 0; i < tq; i++) {
      const last = Math.min(tk - 1, i + tk - tq);
      const first = window === undefined ? 0 : Math.max(0, last - window + 1);
      for (let j = first; j <= last; j++) m[(s * tq + i) * tk + j] = keyMask ? keyMask[s * tk + j]! : 1;
    }
  }
  return tensor(m, [b, 1, tq, tk], 'u8', { backend: like.backend });
}
