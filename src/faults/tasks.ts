// The tasks fault injection is measured on: the organisms' own tasks (modular addition's answer
// after `a b =`; the induction model's second repeat of a random segment) and next-token
// prediction on text (the second half of chunks), each with clean calibration inputs apart from
// the evaluated ones.
import { Rng } from '../ops/creation.js';
import type { CausalLM } from '../models/model.js';
import { INDUCTION, inductionData } from '../organisms/induction.js';
import { modularAdditionData, P } from '../organisms/modular-addition.js';
import type { FaultTask } from './evaluate.js';

/** The organism's task when `model` is one (config.organism), else null. */
export function organismTask(model: CausalLM, n = 256): FaultTask | null {
  let cfg: Record<string, unknown>;
  try {
    cfg = model.hfConfig;
  } catch {
    return null;
  }
  if (cfg.organism === 'modular-addition') {
    const p = Number(cfg.p ?? P);
    const { train, test } = modularAdditionData(p, Number(cfg.train_fraction ?? 0.3), Number(cfg.data_seed ?? 598));
    const pick = (xs: number[][], k: number, seed: number) => { const r = new Rng(seed); return Array.from({ length: Math.min(k, xs.length) }, () => xs[r.int(xs.length)]!); };
    return { name: 'modular-addition (held-out pairs)', data: pick(test, n, 11), positions: [2], calibration: pick(train, 64, 12) };
  }
  if (cfg.organism === 'induction') {
    const L = INDUCTION.segment;
    // [BOS] r r: positions L+1 .. 2L-1 predict the second repeat's tokens 2..L
    return { name: 'induction (second repeat)', data: inductionData(Math.max(8, n / 4), 1001), positions: Array.from({ length: L - 1 }, (_, i) => L + 1 + i), calibration: inductionData(16, 2002) };
  }
  return null;
}

/** Next-token prediction on text: chunks of ctx + 1 tokens, second half scored; the first `calib` chunks calibrate. */
export function textTask(ids: readonly number[], ctx: number, chunks = 8, calib = 8): FaultTask {
  const need = (chunks + calib) * (ctx + 1);
  if (ids.length < need) throw new Error(`faults: the text gives ${ids.length} tokens; ${chunks} chunks of ${ctx + 1} plus ${calib} for calibration need ${need} (give more text, or fewer --chunks / a smaller --ctx)`);
  const all = Array.from({ length: chunks + calib }, (_, c) => ids.slice(c * (ctx + 1), (c + 1) * (ctx + 1)) as number[]);
  return {
    name: 'text (next token, second half of each chunk)', data: all.slice(calib), calibration: all.slice(0, calib),
    positions: Array.from({ length: ctx - Math.floor(ctx / 2) }, (_, i) => Math.floor(ctx / 2) + i),
  };
}
