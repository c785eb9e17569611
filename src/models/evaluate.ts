// Language-model evaluation as llama.cpp's llama-perplexity does it: the token stream is cut into
// chunks of `ctx` tokens, each chunk runs as one forward pass, and only the second half of each
// chunk is scored (every scored token then sees at least ctx/2 tokens of context). Metrics:
// perplexity exp(mean NLL); with a reference model, the mean KL divergence KL(ref ‖ model) of the
// next-token distributions and the top-1 agreement (as `--kl-divergence`); tokens per second of
// the evaluated model's forward passes.
// Not for: file reading or tokenisation (the caller hands token ids).
import { tidy } from '../tensor/engine.js';
import { tensor } from '../ops/creation.js';
import { logSoftmax } from '../ops/nn.js';
import type { CausalLM } from './model.js';
import { KVCacheQuant, type KVMemory } from './kvquant/cache.js';
import type { KVCacheSpec } from './kvquant/spec.js';

export interface EvalOptions {
  /** Tokens per chunk (default: min(model context, 512)). */
  ctx?: number;
  /** Stop after this many chunks. */
  maxChunks?: number;
  /** The reference model for KL divergence and top-1 agreement (same vocabulary). */
  ref?: CausalLM;
  onChunk?: (done: number, total: number) => void;
  /**
   * Run the evaluated model over a quantized KV cache (src/models/kvquant): each chunk is appended to a
   * fresh cache and attends over its packed keys and values, as llama-perplexity does with -ctk/-ctv.
   */
  kvCache?: KVCacheSpec;
}

export interface EvalResult {
  ctx: number;
  chunks: number;
  /** Tokens scored (the second half of each chunk). */
  scored: number;
  perplexity: number;
  nll: number;
  /** Mean KL(ref ‖ model) in nats per scored token (with a reference). */
  kl?: number;
  /** Fraction of scored positions where both models' argmax agree (with a reference). */
  top1?: number;
  /** The reference model's perplexity on the same tokens. */
  refPerplexity?: number;
  /** Tokens through the evaluated model per second of its forward passes. */
  tokensPerSecond: number;
  /** With kvCache: the packed cache's memory after the last chunk. */
  kvMemory?: KVMemory;
}

const now = (): number => (typeof performance !== 'undefined' ? performance.now() : Date.now());

/**
 * Log-probabilities [pos, vocab] of one chunk (a host copy), always taken in f32: an f16 model's
 * logits are widened first, so that f16 rounding of the log-probabilities (up to 2^-7 near -5)
 * does not swamp a KL of 1e-6 (and make it negative).
 */
function logProbs(model: CausalLM, ids: number[], cache?: KVCacheQuant): Float32Array {
  return tidy(() => {
    const x = tensor(ids, [1, ids.length], 'i32', { backend: model.backend });
    const logits = model.forward(x, cache ? { cache } : {});
    return logSoftmax(logits.dtype === 'f32' ? logits : logits.cast('f32')).dataSync() as Float32Array;
  });
}

export function evaluateLM(model: CausalLM, ids: readonly number[], o: EvalOptions = {}): EvalResult {
  const ctx = o.ctx ?? Math.min(model.dims.nCtx, 512);
  if (!Number.isInteger(ctx) || ctx < 2) throw new RangeError(`evaluate: ctx must be an integer >= 2, got ${ctx}`);
  if (ctx > model.dims.nCtx) throw new RangeError(`evaluate: ctx ${ctx} exceeds the model's context of ${model.dims.nCtx}`);
  if (o.ref && o.ref.dims.vocabSize !== model.dims.vocabSize) {
    throw new Error(`evaluate: the reference model's vocabulary (${o.ref.dims.vocabSize}) differs from the model's (${model.dims.vocabSize})`);
  }
  let chunks = Math.floor(ids.length / ctx);
  if (o.maxChunks !== undefined) chunks = Math.min(chunks, o.maxChunks);
  if (chunks < 1) throw new RangeError(`evaluate: ${ids.length} tokens do not fill one chunk of ${ctx}; give more text or a smaller ctx`);
  const V = model.dims.vocabSize;
  const first = Math.floor(ctx / 2);
  let nll = 0, refNll = 0, kl = 0, agree = 0, scored = 0, ms = 0;
  let kvMemory: KVMemory | undefined;
  for (let c = 0; c < chunks; c++) {
    const chunk = ids.slice(c * ctx, (c + 1) * ctx) as number[];
    const cache = o.kvCache ? new KVCacheQuant(o.kvCache, model.backend) : undefined;
    const t0 = now();
    let lp: Float32Array;
    try {
      lp = logProbs(model, chunk, cache);
      kvMemory = cache?.memory();
    } finally {
      cache?.dispose();
    }
    ms += now() - t0;
    const rp = o.ref ? logProbs(o.ref, chunk) : null;
    // position i predicts token i + 1; score predictions of the second half
    for (let i = first; i < ctx - 1; i++) {
      const row = i * V;
      nll -= lp[row + chunk[i + 1]!]!;
      scored++;
      if (!rp) continue;
      refNll -= rp[row + chunk[i + 1]!]!;
      let s = 0, am = 0, ar = 0;
      for (let v = 0; v < V; v++) {
        const r = rp[row + v]!;
        if (r > -Infinity) s += Math.exp(r) * (r - lp[row + v]!);
        if (lp[row + v]! > lp[row + am]!) am = v;
        if (r > rp[row + ar]!) ar = v;
      }
      kl += s;
      if (am === ar) agree++;
    }
    o.onChunk?.(c + 1, chunks);
  }
  const out: EvalResult = {
    ctx, chunks, scored, nll: nll / scored, perplexity: Math.exp(nll / scored), tokensPerSecond: (chunks * ctx) / (ms / 1000),
    ...(kvMemory ? { kvMemory } : {}),
  };
  if (o.ref) {
    out.kl = kl / scored;
    out.top1 = agree / scored;
    out.refPerplexity = Math.exp(refNll / scored);
  }
  return out;
}

/**
 * Mean KL(ref ‖ model) in nats and top-1 agreement over the rows of two logit arrays
 * ([rows, vocab] each, raw logits: each row is log-softmaxed here in f64), e.g. an f16 model's
 * logits against its f32 original's on the same tokens.
 */
export function compareLogits(ref: ArrayLike<number>, logits: ArrayLike<number>, vocab: number): { kl: number; top1: number; rows: number } {
  if (ref.length !== logits.length || ref.length % vocab !== 0) throw new RangeError(`compareLogits: ${ref.length} and ${logits.length} values are not both [rows, ${vocab}]`);
  const rows = ref.length / vocab;
  const lse = (x: ArrayLike<number>, o: number) => {
    let m = -Infinity;
    for (let v = 0; v < vocab; v++) m = Math.max(m, x[o + v]!);
    let s = 0;
    for (let v = 0; v < vocab; v++) s += Math.exp(x[o + v]! - m);
    return m + Math.log(s);
  };
  let kl = 0, agree = 0;
  for (let r = 0; r < rows; r++) {
    const o = r * vocab;
    const lr = lse(ref, o), lm = lse(logits, o);
    let s = 0, am = o, ar = o;
    for (let v = o; v < o + vocab; v++) {
      const p = ref[v]! - lr;
      s += Math.exp(p) * (p - (logits[v]! - lm));
      if (logits[v]! > logits[am]!) am = v;
      if (ref[v]! > ref[ar]!) ar = v;
    }
    kl += s;
    if (am === ar) agree++;
  }
  return { kl: kl / rows, top1: agree / rows, rows };
}
