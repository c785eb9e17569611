// `actlab quantize`: any model actlab loads (HF folder, GGUF, llama2.c) -> a GGUF file in Q8_0,
// Q4_0, Q4_K, Q6_K (or F16/F32), with per-tensor overrides for mixed files, written atomically
// with a progress bar. A GGUF input keeps its tokenizer (its `tokenizer.*` metadata, types
// included), so llama.cpp runs the result. Rows that no block of the type divides fall back to F16
// (named on stderr) or stop the command (`--on-indivisible error`). `--type q4_k_m` is llama.cpp's
// Q4_K_M mix (Q6_K / Q5_K where llama-quantize puts them); `--method gptq|imatrix` with `--calib`
// writes the K-quant matrices from their inputs' statistics on calibration text (GPTQ, or llama.cpp's
// importance-matrix quantisers) instead of llama.cpp's reference rounding.
import cliProgress from 'cli-progress';
import type { Command } from 'commander';
import { convertToGguf, type EncodeRequest } from '../formats/gguf-convert.js';
import { hfConfigToGgufMetadata, planGgufTensors } from '../formats/gguf-hf.js';
import { calibratedEncoder, calibrationHooks, inputStats, q4KmTypes } from '../quantize/gguf-calibrated.js';
import { K_QUANT_METHODS, type KQuantMethod } from '../quantize/gptq-kquants.js';
import { ggufMetadataTyped } from '../formats/gguf.js';
import type { GgmlTypeName } from '../formats/gguf-quants.js';
import type { GgufWriteValue } from '../formats/gguf-write.js';
import { NodeFileSource } from '../io/node/file-source.js';
import { NodeFileStore } from '../io/node/file-store.js';
import { openCheckpoint } from '../models/checkpoint.js';
import { disposeBackends, initBackend } from '../tensor/engine.js';
import { action, int } from './options.js';
import { calibIds, isPackedTypeName, PACKED_TYPE_HELP, quantizePackedCommand } from './quantize-packed.js';

/** --type names -> GGML types. */
export const QUANTIZE_TYPES: Record<string, GgmlTypeName> = {
  q8_0: 'Q8_0', q4_0: 'Q4_0', q4_k: 'Q4_K', q5_k: 'Q5_K', q6_k: 'Q6_K', f16: 'F16', f32: 'F32', bf16: 'BF16',
};

function typeOf(name: string, where: string): GgmlTypeName {
  const t = QUANTIZE_TYPES[name.toLowerCase()];
  if (!t) throw new Error(`${where}: unknown type '${name}' (actlab writes ${Object.keys(QUANTIZE_TYPES).join(', ')})`);
  return t;
}

export interface QuantizeArgs {
  model: string;
  type: string;
  out: string;
  tensorType?: string[];
  onIndivisible?: string;
  tokenizer?: string;
  json?: boolean;
  calib?: string;
  calibTokens?: number;
  fold?: string;
  method?: string;
  damp?: number;
}

/** `--type` names of llama.cpp's mixes: the base type and the per-tensor rule. */
const MIXES: Record<string, { base: GgmlTypeName; rule: (names: readonly string[]) => (name: string) => GgmlTypeName | undefined }> = {
  q4_k_m: { base: 'Q4_K', rule: q4KmTypes },
};

export async function quantizeCommand(a: QuantizeArgs): Promise<number> {
  if (isPackedTypeName(a.type)) return quantizePackedCommand(a);
  const mix = MIXES[a.type.toLowerCase()];
  const type = mix ? mix.base : typeOf(a.type, '--type');
  const method = (a.method ?? 'rtn').toLowerCase();
  if (method !== 'rtn' && !K_QUANT_METHODS.includes(method as KQuantMethod)) throw new Error(`--method: '${a.method}' is not rtn, ${K_QUANT_METHODS.join(' or ')}`);
  if (method !== 'rtn' && !a.calib) throw new Error(`--method ${method} needs calibration text: pass --calib FILE`);
  const overrides = (a.tensorType ?? []).map((spec) => {
    const eq = spec.lastIndexOf('=');
    if (eq <= 0) throw new Error(`--tensor-type: '${spec}' is not PATTERN=TYPE (e.g. 'ffn_down=q6_k')`);
    let re: RegExp;
    try {
      re = new RegExp(spec.slice(0, eq));
    } catch (e) {
      throw new Error(`--tensor-type: '${spec.slice(0, eq)}' is not a regular expression (${(e as Error).message})`);
    }
    return { re, type: typeOf(spec.slice(eq + 1), `--tensor-type ${spec}`) };
  });
  const onIndivisible = a.onIndivisible ?? 'fallback';
  if (onIndivisible !== 'fallback' && onIndivisible !== 'error') throw new Error(`--on-indivisible: '${onIndivisible}' is neither 'fallback' nor 'error'`);
  const ck = await openCheckpoint(a.model, { tokenizerPath: a.tokenizer, memoryBudget: 0 });
  const backend = await initBackend('js');
  const bar = process.stderr.isTTY && !a.json
    ? new cliProgress.SingleBar({ stream: process.stderr, hideCursor: true, format: 'quantize |{bar}| {value}/{total} tensors {tensor}' }, cliProgress.Presets.shades_classic)
    : null;
  const fallbacks: string[] = [];
  const counts: Record<string, number> = {};
  const calibrated: string[] = [];
  try {
    const ggufNames = planGgufTensors(hfConfigToGgufMetadata(ck.config).arch, ck.weights.names(), ck.config).map((t) => t.gguf);
    const mixRule = mix?.rule(ggufNames);
    let encode: ((t: EncodeRequest) => Uint8Array | undefined) | undefined;
    if (method !== 'rtn') {
      const { ids, loaded } = await calibIds(a, 64, `--method ${method}`);
      try {
        const stats = inputStats(loaded.model, ids, calibrationHooks(ck.weights.names(), ck.config));
        if (!stats.size) throw new Error(`--method ${method}: no calibration hooks are known for ${ck.source}'s architecture`);
        encode = calibratedEncoder(method as KQuantMethod, ck.config, stats, { damp: a.damp, onCalibrated: (name) => calibrated.push(name) });
      } finally {
        loaded.model.dispose();
      }
    }
    let metadata: Record<string, GgufWriteValue> = { 'general.name': ck.source.split('/').pop() ?? ck.source };
    if (ck.format === 'gguf') {
      const src = await NodeFileSource.open(ck.source);
      try {
        metadata = { ...metadata, ...(await ggufMetadataTyped(src, 'tokenizer.')) as Record<string, GgufWriteValue> };
      } finally {
        await src.close();
      }
    }
    let started = false;
    await convertToGguf(new NodeFileStore(), a.out, ck.weights, ck.config, backend, {
      type,
      typeFor: (name) => overrides.find((o) => o.re.test(name))?.type ?? mixRule?.(name),
      encode,
      onIndivisible,
      onFallback: (name, shape, wanted) => fallbacks.push(`${name} [${shape.join(', ')}] (${wanted} -> F16)`),
      onTensor: (name, done, total) => {
        if (!bar) return;
        if (!started) { bar.start(total, 0, { tensor: '' }); started = true; }
        bar.update(done, { tensor: name });
      },
      onEncoded: (_name, t) => { counts[t] = (counts[t] ?? 0) + 1; },
      metadata,
    });
    bar?.stop();
    const summary = { out: a.out, type: mix ? a.type.toUpperCase() : type, method, tensors: counts, calibrated: calibrated.length, fallbacks };
    if (a.json) console.log(JSON.stringify(summary));
    else {
      for (const f of fallbacks) process.stderr.write(`actlab: rows not divisible by the block: ${f}\n`);
      console.log(`wrote ${a.out}: ${Object.entries(counts).map(([t, n]) => `${n} ${t}`).join(', ')}${method !== 'rtn' ? ` (${calibrated.length} by ${method})` : ''}`);
    }
    return 0;
  } finally {
    bar?.stop();
    await ck.weights.close();
    disposeBackends();
  }
}

export function register(program: Command): void {
  program.command('quantize')
    .description("Write a model as a GGUF file in Q8_0, Q4_0, Q4_K or Q6_K (mixed per tensor with --tensor-type), loadable by llama.cpp, or in actlab's own formats as a model folder (docs/quantization.md)")
    .requiredOption('--model <path>', 'HF folder, GGUF file, llama2.c .bin or hub id')
    .requiredOption('--type <type>', `type of the 2-D weights: GGUF ${Object.keys(QUANTIZE_TYPES).join(', ')}, or llama.cpp's mix ${Object.keys(MIXES).join(', ')}; actlab's ${PACKED_TYPE_HELP}`)
    .requiredOption('--out <file>', 'output .gguf, or the model folder for actlab\'s formats (files written to a temporary name, then renamed)')
    .option('--calib <file>', 'calibration text (--method gptq|imatrix, llm-fp4 search, mixed:BITS sensitivity)')
    .option('--method <method>', "GGUF K-quants: 'rtn' (llama.cpp's reference rounding, default), 'gptq' (GPTQ on the K-quant grid) or 'imatrix' (llama.cpp's importance-matrix quantisers); gptq and imatrix need --calib")
    .option('--damp <fraction>', 'GPTQ: damping of the Hessian as a fraction of its mean diagonal (default 0.01)', parseFloat)
    .option('--calib-tokens <n>', 'calibration tokens to use (default 1024)', int(16))
    .option('--fold <kind>', "actlab's formats: fold per-channel scales between norms and their linear layers before quantizing: 'exp-bias' (LLM-FP4) or 'scale' (scale folding of outliers); needs --calib")
    .option('--tensor-type <pattern=type...>', "per-tensor types by regular expression on GGUF names, e.g. 'ffn_down=q6_k' 'output=q8_0'")
    .option('--on-indivisible <mode>', "rows a block does not divide: 'fallback' to F16 (default) or 'error'", 'fallback')
    .option('--tokenizer <file>', 'llama2.c tokenizer .bin')
    .option('--json', 'print a JSON summary')
    .action(action(quantizeCommand));
}
