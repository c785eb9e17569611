// The quantization options of `actlab eval`: --weights TYPE fake-quantizes the loaded model's
// matrices in place (src/quantize/fake.ts: the values of actlab's packed format, products in f32),
// --acts FORMAT fake-quantizes activations at the linear layers' inputs (or --acts-hooks REGEX)
// with ranges calibrated on --calib text (src/quantize/acts.ts), and --act-report prints the
// per-layer ranges and errors. W8A8: --weights int8 --acts int8; W4A8: --weights int4_g32 --acts int8.
import { readFileSync } from 'node:fs';
import { Option, type Command } from 'commander';
import type { LoadedModel } from '../models/load.js';
import type { HookFn } from '../models/hook-point.js';
import { actQuantHooks, actReport, calibrateActivations, parseActFormat, type ActQuantOptions } from '../quantize/acts.js';
import { linearInputHook } from '../quantize/calibrate.js';
import { fakeQuantizeModel } from '../quantize/fake.js';
import { WeightMap } from '../models/weights.js';
import { packedChoice } from './quantize-packed.js';
import { int } from './options.js';

export interface QuantEvalArgs {
  weights?: string;
  acts?: string;
  actsGranularity?: string;
  actsRange?: string;
  actsPercentile?: number;
  actsExpBias?: boolean;
  actsHooks?: string;
  calib?: string;
  calibTokens?: number;
  actReport?: boolean;
}

export function quantEvalOptions(c: Command): Command {
  return c
    .option('--weights <type>', "fake-quantize the model's matrices in one of actlab's formats (int8, int4_g32, nf4, fp8, fp4, ...)")
    .option('--acts <format>', 'fake-quantize activations: int8, int4, fp8 (= fp8_e4m3), fp8_e5m2, fp4')
    .addOption(new Option('--acts-granularity <g>', 'one scale per tensor, per channel, or per token (dynamic)').choices(['tensor', 'channel', 'token']).default('tensor'))
    .addOption(new Option('--acts-range <r>', 'static range calibration').choices(['minmax', 'percentile', 'mse']).default('mse'))
    .option('--acts-percentile <p>', 'percentile of |x| for --acts-range percentile', Number, 99.99)
    .option('--acts-exp-bias', "LLM-FP4's per-channel exponent bias on a per-tensor scale")
    .option('--acts-hooks <regex>', 'hook points to quantize (default: the inputs of the linear layers)')
    .option('--calib <file>', 'calibration text for the activation ranges (a text other than --data)')
    .option('--calib-tokens <n>', 'calibration tokens (default 512)', int(16))
    .option('--act-report', 'print the per-layer activation report (range, scale, error)');
}

export interface QuantEvalSetup {
  hooks: [string, HookFn][];
  summary: Record<string, unknown>;
  restore(): void;
}

export function applyQuantEval(m: LoadedModel, a: QuantEvalArgs): QuantEvalSetup | null {
  if (!a.weights && !a.acts) return null;
  const summary: Record<string, unknown> = {};
  let restore = (): void => {};
  if (a.weights) {
    const t = packedChoice(a.weights, '--weights');
    if (t === 'llm-fp4') throw new Error("--weights llm-fp4 needs the calibrated search: write the model with 'actlab quantize --type llm-fp4 --calib FILE' and evaluate that folder");
    const r = fakeQuantizeModel(m.model, m.config, () => t);
    restore = r.restore;
    if (!Object.keys(r.applied).length) {
      r.restore();
      throw new Error(`--weights ${a.weights}: no matrix of this model has rows that ${t} blocks divide (${r.skipped.length} matrices tried); pick a smaller group`);
    }
    if (r.skipped.length) process.stderr.write(`actlab: --weights ${t}: kept f32 (rows not divisible): ${r.skipped.join(', ')}\n`);
    summary.weights = { type: t, matrices: Object.keys(r.applied).length, kept_f32: r.skipped };
  }
  let hooks: [string, HookFn][] = [];
  if (a.acts) {
    const o: ActQuantOptions = {
      format: parseActFormat(a.acts, '--acts'), granularity: (a.actsGranularity ?? 'tensor') as ActQuantOptions['granularity'],
      range: (a.actsRange ?? 'mse') as ActQuantOptions['range'], percentile: a.actsPercentile, expBias: !!a.actsExpBias,
    };
    let names: string[];
    if (a.actsHooks) {
      let re: RegExp;
      try { re = new RegExp(a.actsHooks); } catch (e) { throw new Error(`--acts-hooks: '${a.actsHooks}' is not a regular expression (${(e as Error).message})`); }
      names = m.model.hookPoints().map((h) => h.name).filter((n) => re.test(n));
      if (!names.length) throw new Error(`--acts-hooks ${a.actsHooks}: no hook point of this model matches (see 'actlab hooks')`);
    } else {
      // the checkpoint's names (a packed model has no f32 parameters to list)
      const map = Object.values(m.model).find((v) => v instanceof WeightMap) as WeightMap | undefined;
      names = [...new Set((map?.names() ?? []).map((n) => linearInputHook(n, m.config)).filter((h): h is string => !!h))];
      if (!names.length) throw new Error(`--acts: no linear-layer inputs known for ${m.config.model_type}; name the hook points with --acts-hooks REGEX`);
    }
    if (!a.calib) throw new Error('--acts needs calibration text for its ranges: pass --calib FILE (a text other than --data)');
    if (!m.tokenizer) throw new Error(`${m.source} has no tokenizer for --calib; pass --tokenizer FILE`);
    let text: string;
    try { text = readFileSync(a.calib, 'utf8'); } catch (e) { throw new Error(`--calib: cannot read ${a.calib} (${(e as Error).message})`); }
    const max = a.calibTokens ?? 512;
    const ids = m.tokenizer.encode(text.slice(0, max * 16), { addSpecialTokens: true }).slice(0, max);
    const cal = calibrateActivations(m.model, ids, names, o);
    hooks = actQuantHooks(cal, o);
    summary.acts = { ...o, hooks: names.length, calibration_tokens: ids.length, ...(a.actReport ? { report: actReport(cal) } : {}) };
  }
  return { hooks, summary, restore };
}
