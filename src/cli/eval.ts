// `actlab eval`: perplexity of a model on a text file, and with --ref the mean KL divergence to
// the reference model's next-token distribution and the top-1 agreement, as llama.cpp's
// `llama-perplexity --kl-divergence` reports them (chunks of --ctx tokens, second half scored:
// src/models/evaluate.ts), plus tokens/s. Both models read the text through the evaluated
// model's tokenizer.
import { readFileSync } from 'node:fs';
import { Option, type Command } from 'commander';
import { evaluateLM } from '../models/evaluate.js';
import { disposeBackends } from '../tensor/engine.js';
import { inputIds, loadForCli, weightMemory, type ModelArgs } from './common.js';
import { action, int, MODEL_DTYPES, modelOptions } from './options.js';
import { applyQuantEval, quantEvalOptions, type QuantEvalArgs } from './eval-quant.js';
import { sparsityForEval, type SparsityArgs } from './eval-sparsity.js';
import { checkKVCacheArg, kvCacheOptions, kvCacheSpec, kvMemoryText, type KVCacheArgs } from './kv-cache.js';
import { parseSparsity } from '../sparsity/spec.js';

export interface EvalArgs extends ModelArgs, QuantEvalArgs, KVCacheArgs, SparsityArgs {
  ref?: string;
  refDtype?: 'f32' | 'f16' | 'bf16';
  data: string;
  ctx?: number;
  chunks?: number;
  json?: boolean;
}

export async function evalCommand(a: EvalArgs): Promise<number> {
  checkKVCacheArg(a);
  let text: string;
  try {
    text = readFileSync(a.data, 'utf8');
  } catch (e) {
    throw new Error(`--data: cannot read ${a.data} (${(e as Error).message})`);
  }
  if (a.sparsity) parseSparsity(a.sparsity); // a bad spec fails before any model is read
  const m = await loadForCli(a);
  // with --sparsity the dense checkpoint is the reference unless --ref names one; the reference
  // runs in f32 unless --ref-dtype says otherwise (so `--dtype f16 --ref SAME` is f16's KL to f32)
  const ref = a.ref || a.sparsity ? await loadForCli({ ...a, model: a.ref ?? a.model, dtype: a.refDtype ?? 'f32' }) : undefined;
  let sp: ReturnType<typeof sparsityForEval> | undefined;
  try {
    // With --chunks, tokenize only as much text as the chunks need (a tokenizer in JavaScript
    // takes seconds per megabyte): a prefix, doubled until it yields enough tokens.
    let ids: number[];
    // kvquant types calibrate on the tokens after the evaluated chunks unless given --kv-calib-data
    const calib = a.kvCache?.startsWith('kvquant') && a.kvCalibData === undefined ? (a.kvCalibTokens ?? 2048) : 0;
    const need = a.chunks !== undefined ? a.chunks * (a.ctx ?? Math.min(m.model.dims.nCtx, 512)) + calib : Infinity;
    for (let chars = Number.isFinite(need) ? need * 8 : text.length; ; chars *= 2) {
      ids = inputIds({ prompt: text.slice(0, chars) }, m, false);
      if (ids.length >= need + (a.sparsity ? a.calibrationTokens ?? 512 : 0) || chars >= text.length) break;
    }
    sp = a.sparsity ? sparsityForEval(a, m, ids) : undefined;
    if (sp) ids = ids.slice(sp.skip);
    const ctx = a.ctx ?? Math.min(m.model.dims.nCtx, 512);
    const used = Math.min(Math.floor(ids.length / ctx), a.chunks ?? Infinity) * ctx;
    const all = ids;
    const kvCache = kvCacheSpec(a, m, () => all.slice(used));
    const quant = applyQuantEval(m, a);
    const r = m.model.withHooks(quant?.hooks ?? [], () => evaluateLM(m.model, ids, {
      ctx: a.ctx, maxChunks: a.chunks, ref: ref?.model, kvCache,
      onChunk: a.json ? undefined : (d, n) => process.stderr.write(`\reval: chunk ${d}/${n}`),
    }));
    quant?.restore();
    if (!a.json) process.stderr.write('\n');
    const mem = weightMemory(m);
    const out = {
      model: m.source, dtype: a.dtype ?? 'f32', ref: ref?.source, ...(ref ? { ref_dtype: a.refDtype ?? 'f32' } : {}), data: a.data, tokens: ids.length, ctx: r.ctx, chunks: r.chunks, scored: r.scored,
      perplexity: r.perplexity, nll: r.nll, ...(r.kl !== undefined ? { kl_divergence: r.kl, top1_agreement: r.top1, ref_perplexity: r.refPerplexity } : {}),
      tokens_per_second: r.tokensPerSecond, memory: mem.json, ...(quant ? { quantization: quant.summary } : {}), ...(sp ? { sparsity: sp.json } : {}),
      ...(r.kvMemory ? { kv_cache: { type: a.kvCache, bytes_per_token: r.kvMemory.bytesPerToken, ratio_to_f32: r.kvMemory.bytesPerToken / r.kvMemory.f32BytesPerToken, fixed_bytes: r.kvMemory.fixedBytes, exact_share: r.kvMemory.sparseShare } } : {}),
    };
    if (a.json) console.log(JSON.stringify(out));
    else {
      console.log(`${m.source} on ${a.data}: ${r.scored} tokens scored in ${r.chunks} chunks of ${r.ctx}`);
      if (sp) console.log(sp.text);
      console.log(`perplexity ${r.perplexity.toFixed(4)}${r.refPerplexity !== undefined ? ` (reference ${r.refPerplexity.toFixed(4)})` : ''}`);
      if (r.kl !== undefined) console.log(`mean KL(ref || model) ${r.kl.toExponential(4)} nats, top-1 agreement ${(100 * r.top1!).toFixed(2)}%`);
      console.log(`${r.tokensPerSecond.toFixed(1)} tokens/s; ${mem.text}`);
      if (quant) console.log(`quantization: ${JSON.stringify(quant.summary)}`);
      if (r.kvMemory) console.log(kvMemoryText(a.kvCache!, r.kvMemory));
    }
    return 0;
  } finally {
    sp?.applied.remove();
    m.model.dispose();
    ref?.model.dispose();
    disposeBackends();
  }
}

export function register(program: Command): void {
  kvCacheOptions(quantEvalOptions(modelOptions(program.command('eval').description('Perplexity on a text file; with --ref, mean KL divergence and top-1 agreement to a reference model (as llama-perplexity --kl-divergence)'), { dtype: true }))
    .option('--ref <M>', 'the reference model (e.g. the F32 or F16 original)')
    .addOption(new Option('--ref-dtype <d>', 'the reference model\'s weights and activations').choices(MODEL_DTYPES).default('f32'))
    .requiredOption('--data <file>', 'a UTF-8 text file')
    .option('--ctx <n>', 'tokens per chunk (default: min(model context, 512)); the second half of each chunk is scored', int(2))
    .option('--chunks <n>', 'at most this many chunks', int(1))
    .option('--sparsity <spec>', 'activation sparsity: topk:F|topk:K|threshold:T|cats:F|chess:F|chess+:F (docs/sparsity.md); compared with the dense model')
    .option('--calibration <file>', 'calibration text for --sparsity (default: the start of --data, then not scored)')
    .option('--calibration-tokens <n>', 'calibration tokens for --sparsity (default 512)', int(1))
    .option('--json', 'print one JSON object'))
    .action(action(evalCommand));
}
