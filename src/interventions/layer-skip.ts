// Layer skipping from the voids analysis ("Void in Language Models", Shemiranifar 2025, arXiv
// 2505.14467: L2 Adaptive Computation, LAC, α = 0.8). Two ways to skip void blocks:
//   'static' — the blocks that LAC calls voids for at least half of the prompt's tokens are left
//              out of every forward pass (model.skippedLayers): real compute saved.
//   'mask'   — the paper's per-token halting: each block runs, and for each token whose change of
//              the residual norm Δℓ = ‖hℓ‖ − ‖hℓ₋₁‖ falls below α·(max − min of its earlier Δ)
//              the block's update is dropped (hℓ := hℓ₋₁). The compute that a halting kernel could
//              save is the share of (token, block) updates dropped; masking itself saves none.
// `layerSkipReport` measures what skipping costs: KL(full ‖ skipped) of the next-token
// distributions and top-1 agreement over a reference text, and greedy generations side by side.
import { noGrad } from '../autograd/tape.js';
import type { HookFilter, HookFn, HookPoint } from '../models/hook-point.js';
import { tensor } from '../ops/creation.js';
import { where } from '../ops/elementwise.js';
import { logSoftmax } from '../ops/nn.js';
import { generate } from '../models/generate.js';
import type { CausalLM } from '../models/model.js';
import { tidy } from '../tensor/engine.js';
import type { Tensor } from '../tensor/tensor.js';
import { layerVoids } from '../analysis/voids.js';

/** Runs `fn` with `layers` skipped by every forward pass, then restores the previous set. */
export function withSkippedLayers<T>(model: CausalLM, layers: readonly number[], fn: () => T): T {
  const L = model.dims.nLayers;
  for (const l of layers) if (!Number.isInteger(l) || l < 0 || l >= L) throw new RangeError(`layer skipping: layer ${l} is out of range; this model has ${L} blocks (0–${L - 1})`);
  const before = [...model.skippedLayers];
  for (const l of layers) model.skippedLayers.add(l);
  const restore = () => { model.skippedLayers.clear(); for (const l of before) model.skippedLayers.add(l); };
  let out: T;
  try {
    out = fn();
  } catch (e) {
    restore();
    throw e;
  }
  if (out instanceof Promise) return out.finally(restore) as T;
  restore();
  return out;
}

/** Row norms ‖x[b, t, :]‖ of a residual [batch, pos, d_model], on the host. */
function rowNorms(x: Tensor): Float64Array {
  const d = x.shape[2]!;
  const data = x.dataSync();
  const out = new Float64Array(data.length / d);
  for (let r = 0; r < out.length; r++) {
    let s = 0;
    for (let j = 0; j < d; j++) s += data[r * d + j]! ** 2;
    out[r] = Math.sqrt(s);
  }
  return out;
}

export interface LacMaskStats {
  /** Per block: (token, block) updates dropped, and tokens seen. */
  dropped: number[];
  tokens: number[];
}

/**
 * Hooks for LAC's per-token halting: a block's update is dropped for the tokens it is a void for
 * (decided on the fly from the Δ of the earlier blocks, as `lacVoids` does on a plain run). The
 * first block is never a void. `stats` accumulates over every forward pass the hooks see.
 */
export function lacMaskHooks(model: CausalLM, alpha = 0.8): { hooks: [HookFilter, HookFn][]; stats: LacMaskStats } {
  const L = model.dims.nLayers;
  const stats: LacMaskStats = { dropped: new Array<number>(L).fill(0), tokens: new Array<number>(L).fill(0) };
  let pre: Tensor | null = null;
  let preNorm: Float64Array | null = null;
  let deltas: number[][] = []; // per token row, Δ of the blocks so far
  const layerOf = (h: HookPoint) => h.layer!;
  const onPre: HookFn = (x, h) => {
    const l = layerOf(h);
    const n = rowNorms(x);
    if (l === 0 || deltas.length !== n.length) deltas = Array.from({ length: n.length }, () => []);
    pre = x.share(); // belongs to the forward pass's scope
    preNorm = n;
  };
  const onPost: HookFn = (x, h) => {
    const l = layerOf(h);
    if (!pre || !preNorm) return undefined;
    const post = rowNorms(x);
    const drop = new Uint8Array(post.length);
    for (let r = 0; r < post.length; r++) {
      const d = post[r]! - preNorm[r]!;
      const earlier = deltas[r]!;
      if (earlier.length > 0 && d < alpha * (Math.max(...earlier) - Math.min(...earlier))) drop[r] = 1;
      earlier.push(d);
      stats.dropped[l]! += drop[r]!;
      stats.tokens[l]!++;
    }
    const p = pre;
    pre = null;
    preNorm = null;
    if (!drop.some((v) => v)) return undefined;
    const [b, t] = x.shape as [number, number];
    return where(tensor(drop, [b, t, 1], 'u8', { backend: x.backend }), p, x);
  };
  return {
    hooks: [[/^blocks\.\d+\.hook_resid_pre$/, onPre], [/^blocks\.\d+\.hook_resid_post$/, onPost]],
    stats,
  };
}

/** Multiply-adds ×2 per token of each block and of the LM head, from the weights (active experts only). */
export function flopsPerToken(model: CausalLM, context: number): { blocks: number[]; head: number } {
  const L = model.dims.nLayers;
  const blocks = new Array<number>(L).fill(0);
  const { nExperts, expertsPerToken } = model.dims;
  for (const [name, t] of model.parameters()) {
    if (t.rank !== 2) continue;
    const m = /(?:^|\.)(?:layers|h|blocks)\.(\d+)\./.exec(name);
    if (!m) continue;
    const share = nExperts && /\.experts\.\d+\./.test(name) ? (expertsPerToken ?? 1) / nExperts : 1;
    blocks[Number(m[1])]! += 2 * t.size * share;
  }
  // Attention scores and the weighted sum of values: 2 · 2 · context · heads · d_head.
  for (let l = 0; l < L; l++) blocks[l]! += 4 * context * model.dims.nHeads * model.dims.dHead;
  return { blocks, head: 2 * model.dims.vocabSize * model.dims.dModel };
}

export interface LayerSkipReport {
  mode: 'static' | 'mask';
  alpha: number;
  /** The LAC void rate of each block on the prompt. */
  voidRate: number[];
  /** Static: the blocks skipped. */
  skipped: number[];
  /** Static: share of the blocks' FLOPs and of the whole forward's FLOPs saved. Mask: the share of (token, block) updates dropped. */
  computeSaved: { blocks: number; total: number };
  /** Over the reference text (prompt + the full model's greedy continuation), teacher-forced. */
  quality: { kl: number; top1: number; nllFull: number; nllSkipped: number; positions: number };
  generation: { full: number[]; skipped: number[]; sameTokens: number };
}

/** Log-probabilities [pos, vocab] of one sequence, teacher-forced. */
function logProbs(model: CausalLM, ids: readonly number[]): Float32Array {
  return noGrad(() => tidy(() => logSoftmax(model.forward(tensor(ids, [1, ids.length], 'i32', { backend: model.backend }))).dataSync() as Float32Array));
}

/**
 * Skips the void blocks of `model` on `prompt` (LAC, α = 0.8) and measures the cost: compute
 * saved, KL and top-1 agreement against the full model over the prompt and its greedy
 * continuation of `maxNewTokens`, and the skipped model's own greedy continuation.
 */
export function layerSkipReport(model: CausalLM, prompt: readonly number[], o: { mode?: 'static' | 'mask'; alpha?: number; maxNewTokens?: number; minVoidRate?: number } = {}): LayerSkipReport {
  const mode = o.mode ?? 'static';
  const alpha = o.alpha ?? 0.8;
  const steps = o.maxNewTokens ?? 32;
  const voids = layerVoids(model, prompt, { alpha, generateTokens: 0 });
  const voidRate = voids.prompt.void_rate;
  const skipped = voidRate.flatMap((r, l) => (l > 0 && r >= (o.minVoidRate ?? 0.5) ? [l] : []));
  const gen = (ids: readonly number[]) => generate(model, [ids], { maxNewTokens: steps, eosTokenIds: [] }).newIds[0]!;
  const full = gen(prompt);
  const text = [...prompt, ...full];
  const lpFull = logProbs(model, text);
  let lpSkip: Float32Array;
  let genSkip: number[];
  let computeSaved: LayerSkipReport['computeSaved'];
  const fl = flopsPerToken(model, text.length);
  const blockTotal = fl.blocks.reduce((a, b) => a + b, 0);
  if (mode === 'static') {
    [lpSkip, genSkip] = withSkippedLayers(model, skipped, () => [logProbs(model, text), gen(prompt)] as const) as [Float32Array, number[]];
    const saved = skipped.reduce((a, l) => a + fl.blocks[l]!, 0);
    computeSaved = { blocks: saved / blockTotal, total: saved / (blockTotal + fl.head) };
  } else {
    const m = lacMaskHooks(model, alpha);
    lpSkip = model.withHooks(m.hooks, () => logProbs(model, text));
    const dropped = m.stats.dropped.reduce((a, b, l) => a + (b / Math.max(1, m.stats.tokens[l]!)) * fl.blocks[l]!, 0);
    genSkip = model.withHooks(lacMaskHooks(model, alpha).hooks, () => gen(prompt));
    computeSaved = { blocks: dropped / blockTotal, total: dropped / (blockTotal + fl.head) };
  }
  const V = model.dims.vocabSize;
  const T = text.length;
  let kl = 0;
  let agree = 0;
  let nllF = 0;
  let nllS = 0;
  for (let t = 0; t < T; t++) {
    const a = lpFull.subarray(t * V, (t + 1) * V);
    const b = lpSkip.subarray(t * V, (t + 1) * V);
    let k = 0;
    let am = 0;
    let bm = 0;
    for (let v = 0; v < V; v++) {
      k += Math.exp(a[v]!) * (a[v]! - b[v]!);
      if (a[v]! > a[am]!) am = v;
      if (b[v]! > b[bm]!) bm = v;
    }
    kl += k;
    if (am === bm) agree++;
    if (t + 1 < T) { nllF -= a[text[t + 1]!]!; nllS -= b[text[t + 1]!]!; }
  }
  let same = 0;
  while (same < full.length && full[same] === genSkip[same]) same++;
  return {
    mode, alpha, voidRate, skipped: mode === 'static' ? skipped : [], computeSaved,
    quality: { kl: kl / T, top1: agree / T, nllFull: nllF / (T - 1), nllSkipped: nllS / (T - 1), positions: T },
    generation: { full, skipped: genSkip, sameTokens: same },
  };
}
