// Calibrated GGUF files: the input statistics of every linear layer over calibration tokens
// (H = Σ x xᵀ of the activation that feeds it, from the hook points calibrate.ts names), the
// tensor types of llama.cpp's Q4_K_M mix, and the encoder `convertToGguf` calls so that the
// K-quant matrices are written by GPTQ or the importance-matrix quantisers (gptq-kquants.ts)
// instead of llama.cpp's reference rounding.
import { runWithCache } from '../hooks/run.js';
import type { CausalLM } from '../models/model.js';
import { tensor } from '../ops/creation.js';
import { matmul } from '../ops/linalg.js';
import type { GgmlTypeName } from '../formats/gguf-quants.js';
import type { EncodeRequest } from '../formats/gguf-convert.js';
import { linearInputHook } from './calibrate.js';
import { calibratedKQuant, type InputStats, type KQuantMethod } from './gptq-kquants.js';
import type { GptqOptions } from './gptq.js';

/**
 * Runs `model` over `ids` in chunks of `ctx` tokens and sums, for each hook, x xᵀ of its
 * activation rows ([tokens, width], heads flattened) on the model's backend.
 */
export function inputStats(model: CausalLM, ids: readonly number[], hooks: readonly string[], ctx = Math.min(model.dims.nCtx, 256)): Map<string, InputStats> {
  const want = [...new Set(hooks)];
  const out = new Map<string, InputStats>();
  for (let at = 0; at < ids.length; at += ctx) {
    const chunk = ids.slice(at, at + ctx);
    const input = tensor(Int32Array.from(chunk), [1, chunk.length], 'i32', { backend: model.backend });
    const { logits, cache } = runWithCache(model, input, { names: want });
    try {
      for (const h of want) {
        const a = cache.get(h);
        const d = a.size / chunk.length;
        const x = a.reshape([chunk.length, d]); // [tokens, width]
        const xtx = matmul(x, x, { transA: true }); // [width, width]
        const v = xtx.dataSync() as Float32Array;
        xtx.dispose();
        x.dispose();
        let s = out.get(h);
        if (!s) { s = { H: new Float64Array(d * d), d, tokens: 0 }; out.set(h, s); }
        for (let i = 0; i < v.length; i++) s.H[i]! += v[i]!;
        s.tokens += chunk.length;
      }
    } finally {
      logits.dispose();
      cache.dispose();
      input.dispose();
    }
  }
  return out;
}

/** llama.cpp's use_more_bits: the first and last eighth of the layers and every third between. */
function useMoreBits(i: number, n: number): boolean {
  return i < Math.floor(n / 8) || i >= Math.floor((7 * n) / 8) || (i - Math.floor(n / 8)) % 3 === 2;
}

/**
 * The tensor types of llama.cpp's Q4_K_M (llama-quant.cpp's type rules, as llama-quantize at
 * commit 3f545be applies them) for the tensors of one file, given all their GGUF names: Q6_K for
 * the output matrix (the token embedding when it is tied), Q6_K for attn_v (or a fused attn_qkv)
 * and ffn_down in the layers use_more_bits picks, Q4_K for the other matrices. (Older llama.cpp
 * gave a fused attn_qkv Q5_K throughout.)
 */
export function q4KmTypes(ggufNames: readonly string[]): (name: string) => GgmlTypeName | undefined {
  const hasOutput = ggufNames.includes('output.weight');
  const nLayer = new Set(ggufNames.map((n) => /^blk\.(\d+)\./.exec(n)?.[1]).filter((x) => x !== undefined)).size;
  return (name) => {
    if (name === 'output.weight' || (!hasOutput && name === 'token_embd.weight')) return 'Q6_K';
    const layer = Number(/^blk\.(\d+)\./.exec(name)?.[1] ?? -1);
    if (/(attn_v|attn_qkv|ffn_down)\.weight$/.test(name)) return layer >= 0 && useMoreBits(layer, nLayer) ? 'Q6_K' : 'Q4_K';
    return undefined;
  };
}

/** The hook points whose statistics the HF weights `names` need. */
export function calibrationHooks(names: readonly string[], config: Record<string, unknown>): string[] {
  return [...new Set(names.map((n) => linearInputHook(n, config)).filter((h): h is string => h !== null))];
}

/**
 * The encoder for convertToGguf: 2-D Q4_K / Q5_K / Q6_K tensors whose HF source has known input
 * statistics are written by `method`; others (and other types) are left to the reference
 * quantisers (undefined). `onCalibrated` names each tensor written so.
 */
export function calibratedEncoder(
  method: KQuantMethod, config: Record<string, unknown>, stats: Map<string, InputStats>, o: GptqOptions & { onCalibrated?: (name: string, type: GgmlTypeName) => void } = {},
): (t: EncodeRequest) => Uint8Array | undefined {
  return (t) => {
    if (t.type !== 'Q4_K' && t.type !== 'Q5_K' && t.type !== 'Q6_K') return undefined;
    if (t.shape.length !== 2 || t.sources.length !== 1) return undefined;
    const hook = linearInputHook(t.sources[0]!, config);
    const s = hook ? stats.get(hook) : undefined;
    if (!s) return undefined;
    const [rows, cols] = t.shape as [number, number];
    if (s.d !== cols) throw new Error(`calibrated ${t.type}: tensor '${t.name}' [${rows}, ${cols}] reads ${cols} inputs, its input '${hook}' is ${s.d} wide`);
    const bytes = calibratedKQuant(method, t.type, t.values, rows, cols, s, o);
    o.onCalibrated?.(t.name, t.type);
    return bytes;
  };
}
