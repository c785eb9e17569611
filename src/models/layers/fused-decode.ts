// A forward step over a KV cache through a run of GPT-2-style blocks as one backend call
// (`Backend.fusedDecode`: on wasm with a native GEMM, one ONNX Runtime session), the new keys and
// values written into the model's own KVCache. The rules are tryFusedChain's (fused-block.ts): no
// hook listens inside a block, read-only residual hooks fire after the call on the residuals it
// wrote out, an editing one ends the run before it; no gradient, no recorder. Besides:
// - the cache is a plain f32 KVCache (a quantized one attends where its codes lie), every
//   sequence sees every cached position (no padding: an attention mask of ones is no mask);
// - the parts are the plain kind, each product's weight f32 or GGML blocks (the backend says
//   which formats it takes, and declines the others).
// When the run ends the model's blocks, the caller offers the head (final LayerNorm, a quantized
// unembedding) and no hook listens at ln_final nor edits the last hook_resid_post, the logits come
// out of the same call; where the backend declines the head, the blocks are asked again without it.
// Otherwise, or when the backend declines, the caller runs the blocks op by op, as before.
// Not for: steps without a cache (fused-block.ts), the backend's side (src/backends/wasm/native-decode.ts).
import type { FusedBlockDesc, FusedDecodeDesc } from '../../tensor/backend.js';
import { QuantizedTensor } from '../../tensor/quantized.js';
import { Tensor } from '../../tensor/tensor.js';
import type { ForwardContext } from '../model.js';
import { blockHook, SHAPE } from '../hook-point.js';
import { KVCache } from './kv-cache.js';
import { plainNorm, quietInside, type FusedBlockParts } from './fused-block.js';
import type { Linear } from './linear.js';
import type { Norm } from './norm.js';

/** The final norm and the unembedding, weight [vocab, d_model] (CausalLM.fusedHeadParts). */
export interface FusedHeadParts {
  norm: Norm;
  table: Tensor | QuantizedTensor;
}

/**
 * Blocks `start`, `start + 1`, ... (before `stop`, none in `skipped`) as one step over the cache:
 * returns the residual after the last one (after its hook_resid_post) and the next block's index,
 * with the logits [batch, pos, vocab] when `head` (offered only when `stop` is the model's end) was
 * run too; `declined` with the index after them (run them op by op); or undefined: not this way.
 */
export function tryFusedDecode(
  start: number, stop: number, skipped: ReadonlySet<number>, x: Tensor, c: ForwardContext,
  partsOf: (layer: number) => FusedBlockParts | undefined, head?: () => FusedHeadParts | undefined,
): { x: Tensor; next: number; logits?: Tensor } | { declined: number } | undefined {
  const b = x.backend;
  const h = c.hooks;
  const cache = c.cache;
  if (!b.fusedDecode || !cache || !plainCache(cache) || cache.length !== c.past || !noPadding(c)) return undefined;
  if (x.dtype !== 'f32' || x.rank !== 3 || x.requiresGrad || h.recording || start < (c.opByOpBefore ?? 0) || h.editsAt(blockHook(start, 'hook_resid_pre'))) return undefined;
  const plans: { desc: FusedBlockDesc; quant: (string | null)[]; params: Tensor[]; heads: number }[] = [];
  for (let l = start; l < stop && !skipped.has(l); l++) {
    if (l > start && (h.editsAt(blockHook(l - 1, 'hook_resid_post')) || h.editsAt(blockHook(l, 'hook_resid_pre')))) break;
    const p = partsOf(l);
    const plan = p && quietInside(l, c) ? decodePlan(p) : undefined;
    if (!plan) break;
    plans.push(plan);
  }
  const n = plans.length;
  if (n === 0) return undefined;
  const [batch, pos, d] = x.shape as [number, number, number];
  // each block's whole cache buffer, with room for the new positions
  const caches = plans.map((p, i) => cache.reserve(start + i, [batch, p.heads, pos, d / p.heads], 'f32', b)); // [2, batch, head, cap, d_head]
  const heard = (i: number) => i === n - 1 || h.wants(blockHook(start + i, 'hook_resid_post')) || h.wants(blockHook(start + i + 1, 'hook_resid_pre'));
  const taps = plans.map((_, i) => i).filter(heard);
  const desc: FusedDecodeDesc = { blocks: plans.map((p) => p.desc), taps, past: c.past, quant: plans.map((p) => p.quant) };
  const outs = taps.map(() => Tensor.empty(x.shape, 'f32', b, 'fusedDecode')); // [batch, pos, d_model] each
  const where = `blocks.${start}-${start + n - 1} (fused decode)`;
  const inputs = [x, ...plans.flatMap((p) => p.params), ...caches];
  const hp = start + n === stop && !h.editsAt(blockHook(stop - 1, 'hook_resid_post')) && !h.wants('ln_final.hook_scale') && !h.wants('ln_final.hook_normalized') ? headPlan(head?.(), d) : undefined;
  let logits: Tensor | undefined;
  if (hp) {
    logits = Tensor.empty([batch, pos, hp.desc.vocab], 'f32', b, 'fusedDecode'); // [batch, pos, vocab]
    if (!b.fusedDecode({ ...desc, head: hp.desc }, [...inputs, ...hp.params].map((t) => t.view(where)), [...outs, logits].map((t) => t.view(where)))) {
      logits.dispose();
      logits = undefined;
    }
  }
  if (!logits && !b.fusedDecode(desc, inputs.map((t) => t.view(where)), outs.map((t) => t.view(where)))) {
    for (const t of outs) t.dispose();
    return { declined: start + n };
  }
  cache.wrote(pos);
  // the residual hooks, in their op-by-op order; all but the last resid_post are read-only
  const after = new Map(taps.map((i, j) => [i, outs[j]!]));
  let y = x;
  for (let i = 0; i < n; i++) {
    const into = i === 0 ? x : after.get(i - 1);
    if (into) h.at(blockHook(start + i, 'hook_resid_pre'), into, SHAPE.resid);
    const out = after.get(i);
    if (out) y = h.at(blockHook(start + i, 'hook_resid_post'), out, SHAPE.resid); // [batch, pos, d_model]
  }
  return { x: y, next: start + n, logits };
}

/**
 * The head's description and parameters (norm weight, bias, the unembedding's blocks), or
 * undefined: unembed apart. Only a quantized unembedding goes in: an f32 one measured the same
 * speed either way (the wasm GEMV runs it apart) and would cost the call another f32 copy of it.
 */
function headPlan(p: FusedHeadParts | undefined, d: number): { desc: NonNullable<FusedDecodeDesc['head']>; params: Tensor[] } | undefined {
  if (!p || !plainNorm(p.norm) || !(p.table instanceof QuantizedTensor)) return undefined;
  const { table } = p;
  const params = [p.norm.weight!, p.norm.bias!, table.raw];
  if (params.some((t) => t.requiresGrad) || p.norm.weight!.dtype !== 'f32' || p.norm.bias!.dtype !== 'f32' || table.raw.dtype !== 'u8' || table.shape.length !== 2 || table.shape[1] !== d) return undefined;
  return { desc: { eps: p.norm.eps, vocab: table.shape[0]!, quant: table.type }, params };
}

/** A plain f32 KVCache (not a subclass: a quantized cache keeps its own layout). */
function plainCache(cache: KVCache): boolean {
  return Object.getPrototypeOf(cache) === KVCache.prototype;
}

/** No key is masked (no mask, or a mask of ones). */
function noPadding(c: ForwardContext): boolean {
  return !c.keyMaskHost || c.keyMaskHost.every((m) => m === 1);
}

/** The block's description, weight formats and parameters (a quantized weight as its blocks), or undefined: op by op. */
function decodePlan(p: FusedBlockParts): { desc: FusedBlockDesc; quant: (string | null)[]; params: Tensor[]; heads: number } | undefined {
  const { mlp } = p;
  if (mlp.up || mlp.sparse || !plainNorm(p.ln1) || !plainNorm(p.ln2)) return undefined;
  const linears = [p.qkv, p.out, mlp.in, mlp.out];
  if (!linears.every(plainLinear)) return undefined;
  const weight = (l: Linear) => (l.weight instanceof QuantizedTensor ? l.weight.raw : l.weight);
  const params = [p.ln1.weight!, p.ln1.bias!, weight(p.qkv), p.qkv.bias!, weight(p.out), p.out.bias!, p.ln2.weight!, p.ln2.bias!,
    weight(mlp.in), mlp.in.bias!, weight(mlp.out), mlp.out.bias!] as Tensor[];
  if (params.some((t) => t.requiresGrad)) return undefined;
  const quant = linears.map((l) => (l.weight instanceof QuantizedTensor ? l.weight.type : null));
  // a quantized weight is [out, in] (ggml's layout): its product is x · Wᵀ
  const transB = linears.map((l) => l.weight instanceof QuantizedTensor || l.layout === 'out_in') as [boolean, boolean, boolean, boolean];
  if (params.some((t, j) => t.dtype !== (quant[[2, 4, 8, 10].indexOf(j)] ? 'u8' : 'f32'))) return undefined;
  const desc: FusedBlockDesc = { nHeads: p.nHeads, eps1: p.ln1.eps, eps2: p.ln2.eps, scale: p.scale, act: mlp.act, transB };
  return { desc, quant, params, heads: p.nHeads };
}

function plainLinear(l: Linear): boolean {
  return !!l.bias && !l.sparse && !l.delta;
}
