// `actlab quantize --type int8|int4|nf4|fp8|fp4|llm-fp4|mixed:B ...`: a model -> actlab's
// quantized checkpoint folder (src/quantize/write.ts: packed safetensors + config.json with its
// quantization_config + the tokenizer), loadable by every command. `llm-fp4` searches each
// matrix's 4-bit float format on calibration inputs (--calib TEXT); `mixed:B` allocates formats
// to matrices from their measured sensitivity at B bits per weight on average (src/quantize/mixed.ts)
// and prints the uniform allocation's predicted KL beside it.
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import cliProgress from 'cli-progress';
import { NodeFileStore } from '../io/node/file-store.js';
import { openCheckpoint } from '../models/checkpoint.js';
import { loadModel } from '../models/load.js';
import { ACTLAB_QUANT_TYPES, isActlabQuantType, type ActlabQuantType } from '../quant/formats.js';
import { checkCalibration, collectInputs, linearInputHook } from '../quantize/calibrate.js';
import { applyFold, expBiasFactors, foldGroups, searchScaleFold } from '../quant/fold.js';
import { allocateBits, measureSensitivity, uniformAt, type Allocation } from '../quantize/mixed.js';
import { packTensors, readAllF32, writePackedCheckpoint, type TensorChoice } from '../quantize/write.js';
import { disposeBackends, initBackend } from '../tensor/engine.js';
import { tokenizerFiles } from '../tokenizer/load.js';
import { pickBackend } from './common.js';

/** --type names of actlab's own formats (besides every format's own name). */
const ALIASES: Record<string, ActlabQuantType | 'llm-fp4'> = { int4: 'int4_g128', fp8: 'fp8_e4m3', 'llm-fp4': 'llm-fp4', llmfp4: 'llm-fp4' };

export const PACKED_TYPE_HELP = `int8, int4 (= int4_g128), int4_g32|g64|g128, int4a_g32|g64|g128 (asymmetric), nf4, nf4_dq, fp8 (= fp8_e4m3), fp8_e5m2, fp4, llm-fp4, mixed:BITS`;

export function packedChoice(name: string, where: string): ActlabQuantType | 'llm-fp4' {
  const n = name.toLowerCase();
  const t = ALIASES[n] ?? (isActlabQuantType(n) ? n : undefined);
  if (!t) throw new Error(`${where}: unknown type '${name}' (actlab's formats: ${PACKED_TYPE_HELP})`);
  return t;
}

/** Whether --type names one of actlab's formats (or mixed:B) rather than a GGUF type. */
export function isPackedTypeName(name: string): boolean {
  const n = name.toLowerCase();
  return n.startsWith('mixed:') || n in ALIASES || ACTLAB_QUANT_TYPES.includes(n as ActlabQuantType);
}

export interface PackedQuantizeArgs {
  model: string;
  type: string;
  out: string;
  tensorType?: string[];
  onIndivisible?: string;
  tokenizer?: string;
  calib?: string;
  calibTokens?: number;
  fold?: string;
  json?: boolean;
}

/** Calibration token ids from --calib (the first `max` tokens of the text). */
export async function calibIds(a: PackedQuantizeArgs, need: number, what: string): Promise<{ ids: number[]; loaded: Awaited<ReturnType<typeof loadModel>> }> {
  if (!a.calib) throw new Error(`${what} needs calibration text: pass --calib FILE (at least ${need} tokens)`);
  let text: string;
  try {
    text = readFileSync(a.calib, 'utf8');
  } catch (e) {
    throw new Error(`--calib: cannot read ${a.calib} (${(e as Error).message})`);
  }
  const loaded = await loadModel(a.model, { backend: await pickBackend('auto'), tokenizerPath: a.tokenizer, quantized: 'dequantize' });
  if (!loaded.tokenizer) throw new Error(`${loaded.source} has no tokenizer for --calib; pass --tokenizer FILE`);
  const max = a.calibTokens ?? 1024;
  const ids = loaded.tokenizer.encode(text.slice(0, max * 16), { addSpecialTokens: true }).slice(0, max);
  checkCalibration(ids, need, `${what} (--calib ${a.calib})`);
  return { ids, loaded };
}

export async function quantizePackedCommand(a: PackedQuantizeArgs): Promise<number> {
  const spec = a.type.toLowerCase();
  const mixed = spec.startsWith('mixed:') ? Number(spec.slice(6)) : null;
  if (mixed !== null && !(mixed > 0 && mixed <= 32)) throw new Error(`--type ${a.type}: the bit budget must be a number of bits per weight, e.g. mixed:4.5`);
  const base = mixed === null ? packedChoice(a.type, '--type') : null;
  const overrides = (a.tensorType ?? []).map((s) => {
    const eq = s.lastIndexOf('=');
    if (eq <= 0) throw new Error(`--tensor-type: '${s}' is not PATTERN=TYPE (e.g. 'down_proj=int8')`);
    let re: RegExp;
    try { re = new RegExp(s.slice(0, eq)); } catch (e) { throw new Error(`--tensor-type: '${s.slice(0, eq)}' is not a regular expression (${(e as Error).message})`); }
    return { re, type: packedChoice(s.slice(eq + 1), `--tensor-type ${s}`) };
  });
  const onIndivisible = a.onIndivisible ?? 'fallback';
  if (onIndivisible !== 'fallback' && onIndivisible !== 'error') throw new Error(`--on-indivisible: '${onIndivisible}' is neither 'fallback' nor 'error'`);
  if (existsSync(a.out) && !existsSync(`${a.out}/config.json`) && readdirNonEmpty(a.out)) throw new Error(`--out ${a.out}: a folder that is not empty and holds no model; choose a new or empty folder`);

  if (a.fold !== undefined && a.fold !== 'exp-bias' && a.fold !== 'scale') throw new Error(`--fold: '${a.fold}' is neither 'exp-bias' nor 'scale'`);
  const ck = await openCheckpoint(a.model, { tokenizerPath: a.tokenizer, memoryBudget: 0 });
  const js = await initBackend('js');
  const notes: string[] = [];
  let allocation: Allocation | undefined;
  let uniform: Allocation | undefined;
  let calib: Map<string, Float32Array> | undefined;
  try {
    const all = await readAllF32(ck.weights, js);
    const wantsLlmFp4 = base === 'llm-fp4' || overrides.some((o) => o.type === 'llm-fp4');
    const groups = a.fold ? foldGroups([...all.keys()], ck.config) : [];
    if (a.fold && !groups.length) throw new Error(`--fold ${a.fold}: no norm feeding linear layers is known in this ${ck.config.model_type} checkpoint`);
    if (mixed !== null || (wantsLlmFp4 && a.calib) || a.fold) {
      const { ids, loaded } = await calibIds(a, mixed !== null ? 128 : 64, mixed !== null ? `--type ${a.type}` : a.fold ? `--fold ${a.fold}` : 'the LLM-FP4 search');
      try {
        if (wantsLlmFp4 || a.fold) {
          const hooks = [...all.keys()].map((n) => linearInputHook(n, ck.config)).filter((h): h is string => !!h);
          calib = collectInputs(loaded.model, ids, [...hooks, ...groups.map((g) => g.hook)]);
          if (!hooks.length) notes.push('no calibration hooks known for this architecture: LLM-FP4 searched on the weights\' own error');
        }
        if (mixed !== null) {
          const ctx = Math.min(loaded.model.dims.nCtx, 128);
          const chunks: number[][] = [];
          for (let i = 0; i + ctx <= ids.length && chunks.length < 4; i += ctx) chunks.push(ids.slice(i, i + ctx));
          const bar = process.stderr.isTTY && !a.json ? new cliProgress.SingleBar({ stream: process.stderr, format: 'sensitivity |{bar}| {value}/{total} matrices' }, cliProgress.Presets.shades_classic) : null;
          bar?.start(1, 0);
          const sens = measureSensitivity(loaded.model, ck.config, chunks, undefined, (d, n) => { bar?.setTotal(n); bar?.update(d); });
          bar?.stop();
          allocation = allocateBits(sens, mixed);
          uniform = uniformAt(sens, mixed);
        }
      } finally {
        loaded.model.dispose();
      }
    } else if (wantsLlmFp4) {
      notes.push('no --calib: LLM-FP4 searched each matrix on its own squared error');
    }
    const choose = (name: string): TensorChoice => overrides.find((o) => o.re.test(name))?.type ?? (allocation ? allocation.types[name] ?? null : base);
    const folds: Record<string, unknown>[] = [];
    for (const g of groups) {
      const x = calib!.get(g.hook)!;
      const d = all.get(g.norm)!.values.length;
      let f: Float32Array;
      if (a.fold === 'exp-bias') {
        f = expBiasFactors(x, d);
        folds.push({ norm: g.norm, channels_shifted: f.filter((v) => v !== 1).length, min_factor: Math.min(...f) });
      } else {
        const typeOf = (n: string) => { const c = choose(n); return c === 'llm-fp4' ? 'llmfp4_e2m1' : c; };
        const r = searchScaleFold(all, g, x, typeOf);
        f = r.factors;
        folds.push({ norm: g.norm, alpha: r.alpha, error: r.error, error_unfolded: r.errorUnfolded });
      }
      applyFold(all, g, f);
      calib!.set(g.hook, x.map((v, i) => v / f[i % d]!)); // the consumers now read x / f
    }
    const fallbacks: string[] = [];
    const bar = process.stderr.isTTY && !a.json ? new cliProgress.SingleBar({ stream: process.stderr, hideCursor: true, format: 'quantize |{bar}| {value}/{total} tensors {tensor}' }, cliProgress.Presets.shades_classic) : null;
    let started = false;
    const report = packTensors(all, ck.config, {
      choose,
      calib: (name) => { const h = linearInputHook(name, ck.config); return h ? calib?.get(h) : undefined; },
      onIndivisible,
      onFallback: (name, shape, wanted) => fallbacks.push(`${name} [${shape.join(', ')}] (${wanted} -> f32)`),
      onTensor: (name, done, total) => { if (!bar) return; if (!started) { bar.start(total, 0, { tensor: '' }); started = true; } bar.update(done, { tensor: name }); },
    });
    bar?.stop();
    if (!report.tensors.some((t) => t.packed)) {
      throw new Error(`--type ${a.type}: no matrix of ${ck.source} could be packed (${fallbacks.length} kept f32 because their rows are not whole blocks: ${fallbacks.slice(0, 3).join('; ')}${fallbacks.length > 3 ? '; ...' : ''}); nothing written`);
    }
    const origin = a.tokenizer ?? (ck.format === 'llama2c' ? [ck.source.replace(/[^/\\]*$/, 'tokenizer.bin')].find(existsSync) : ck.source);
    const files = origin ? await tokenizerFiles(origin) : [];
    const quantization: Record<string, unknown> = { type: a.type, ...(allocation ? { mixed: { budget: mixed, allocation: allocation.types, uniform: uniform?.types[Object.keys(uniform.types)[0]!] } } : {}) };
    if (Object.keys(report.llmFp4).length) quantization.llm_fp4 = report.llmFp4;
    if (a.fold) quantization.fold = { kind: a.fold, norms: folds };
    await writePackedCheckpoint(new NodeFileStore(), a.out, ck.config, report, { files, quantization });
    const summary = {
      out: a.out, type: a.type, bits_per_weight: report.bitsPerWeight, tensors: report.counts, fallbacks, notes, ...(a.fold ? { fold: { kind: a.fold, norms: folds } } : {}),
      ...(Object.keys(report.llmFp4).length ? { llm_fp4: report.llmFp4 } : {}),
      ...(allocation ? { mixed: { budget: mixed, bits_per_weight: allocation.bitsPerWeight, predicted_kl: allocation.predictedKl, allocation: allocation.types, uniform: { type: Object.values(uniform!.types)[0], bits_per_weight: uniform!.bitsPerWeight, predicted_kl: uniform!.predictedKl } } } : {}),
    };
    if (a.json) console.log(JSON.stringify(summary));
    else {
      for (const f of fallbacks) process.stderr.write(`actlab: rows not divisible by the block, kept f32: ${f}\n`);
      for (const n of notes) process.stderr.write(`actlab: ${n}\n`);
      if (allocation) {
        console.log(`mixed ${mixed}: ${allocation.bitsPerWeight.toFixed(3)} bits/weight, predicted KL ${allocation.predictedKl.toExponential(3)}; uniform ${Object.values(uniform!.types)[0]} at ${uniform!.bitsPerWeight.toFixed(3)}: ${uniform!.predictedKl.toExponential(3)}`);
      }
      console.log(`wrote ${a.out}: ${Object.entries(report.counts).map(([t, n]) => `${n} ${t}`).join(', ')}; ${report.bitsPerWeight.toFixed(3)} bits per packed weight`);
    }
    return 0;
  } finally {
    await ck.weights.close();
    disposeBackends();
  }
}

function readdirNonEmpty(dir: string): boolean {
  if (!statSync(dir).isDirectory()) throw new Error(`--out ${dir}: a file; actlab's formats are written as a model folder`);
  return readdirSync(dir).length > 0;
}
