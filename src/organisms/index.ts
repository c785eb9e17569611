// The model organisms actlab trains and ships (models/organisms/<name>): how to train each with
// actlab's own trainer, and how to evaluate the committed weights.
import type { Backend } from '../tensor/backend.js';
import { inductionReads } from '../analysis/induction.js';
import { readAsync, readSync, type Reads } from '../tensor/read.js';
import type { CausalLM } from '../models/model.js';
import { train, type StepInfo } from '../train/trainer.js';
import { evaluateAsync, evaluateReads, initToy } from './common.js';
import { ablateHead, inContextLossDropReads, inductionConfig, inductionData, inductionTrainingData, INDUCTION } from './induction.js';
import { fourierReads, modularAdditionConfig, modularAdditionData, P } from './modular-addition.js';

export const ORGANISMS = ['modular-addition', 'induction'] as const;
export type OrganismName = (typeof ORGANISMS)[number];

export interface OrganismTrainOptions {
  backend: Backend;
  outDir: string;
  steps?: number;
  seed?: number;
  /** Evaluate (and report through onEval) every this many steps. */
  evalEvery?: number;
  onStep?: (s: StepInfo) => void;
  onEval?: (e: Record<string, unknown>) => void;
  resume?: boolean;
  /** induction: heads ("L.H") zeroed during training. */
  ablate?: string[];
}

export function organismConfig(name: OrganismName): Record<string, unknown> {
  return name === 'modular-addition' ? modularAdditionConfig() : inductionConfig();
}

/** The training recipe of each organism (the defaults reproduce the committed models). */
export const RECIPES = {
  'modular-addition': { steps: 6000, lr: 3e-3, weightDecay: 1.0, betas: [0.9, 0.98] as [number, number], warmupSteps: 10, frac: 0.3, dataSeed: 598, d_model: 64 },
  induction: { steps: 3000, lr: 1e-3, weightDecay: 0.01, betas: [0.9, 0.99] as [number, number], warmupSteps: 50, batchSize: 32, examples: 16384, dataSeed: 1 },
};

export async function trainOrganism(name: OrganismName, o: OrganismTrainOptions): Promise<CausalLM> {
  const seed = o.seed ?? 0;
  if (name === 'modular-addition') {
    const r = RECIPES[name];
    const config = { ...modularAdditionConfig(), d_model: r.d_model, d_head: r.d_model / 4, d_mlp: 4 * r.d_model, train_fraction: r.frac, data_seed: r.dataSeed };
    const model = initToy(config, o.backend, seed);
    const { train: tr, test } = modularAdditionData(P, r.frac, r.dataSeed);
    await train(model, tr, {
      steps: o.steps ?? r.steps, batchSize: tr.length, lr: r.lr, weightDecay: r.weightDecay, betas: r.betas, warmupSteps: r.warmupSteps,
      minLr: r.lr, lossPositions: [2], seed, outDir: o.outDir, checkpointEvery: 500, resume: o.resume, config,
      onStep: async (s) => {
        o.onStep?.(s);
        if (o.evalEvery && s.step % o.evalEvery === 0) {
          // Read asynchronously, so that evaluation runs on every backend (WebGPU included).
          const trainAcc = (await evaluateAsync(model, tr, [2])).accuracy;
          o.onEval?.({ step: s.step, train_loss: s.loss, train_accuracy: trainAcc, ...prefix('test', await evaluateAsync(model, test, [2])) });
        }
      },
    });
    return model;
  }
  const r = RECIPES.induction;
  const config = { ...inductionConfig(), data_seed: r.dataSeed };
  const model = initToy(config, o.backend, seed);
  const data = inductionTrainingData(r.examples, r.dataSeed);
  const held = inductionData(64, r.dataSeed + 1);
  const clamps = (o.ablate ?? []).map((s) => { const [l, h] = s.split('.').map(Number); return ablateHead(l!, h!); });
  const run = () => train(model, data, {
    steps: o.steps ?? r.steps, batchSize: r.batchSize, lr: r.lr, weightDecay: r.weightDecay, betas: r.betas, warmupSteps: r.warmupSteps,
    minLr: r.lr / 10, seed, outDir: o.outDir, checkpointEvery: 400, resume: o.resume, config,
    onStep: async (s) => {
      o.onStep?.(s);
      if (o.evalEvery && (s.step % o.evalEvery === 0 || s.step === 1)) o.onEval?.({ step: s.step, train_loss: s.loss, ...await readAsync(inductionEvalReads(model, held)) });
    },
  });
  if (clamps.length) await model.withHooks(clamps, run); else await run();
  return model;
}

function prefix(p: string, o: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.entries(o).map(([k, v]) => [`${p}_${k}`, v]));
}

/** In-context loss drop and per-head induction scores on held-out sequences. */
export function inductionEval(model: CausalLM, held = inductionData(64, RECIPES.induction.dataSeed + 1)): Record<string, unknown> {
  return readSync(inductionEvalReads(model, held));
}

function* inductionEvalReads(model: CausalLM, held = inductionData(64, RECIPES.induction.dataSeed + 1)): Reads<Record<string, unknown>> {
  const icl = yield* inContextLossDropReads(model, held);
  const ind = yield* inductionReads(model, { length: INDUCTION.segment, bos: INDUCTION.bos, minId: INDUCTION.minId, sequences: 8, copying: false });
  return {
    in_context_loss_drop: icl.drop, first_half_loss: icl.first, second_half_loss: icl.second,
    heads: ind.heads.map((h) => ({ layer: h.layer, head: h.head, score: h.score, prev_token: h.prev_token })),
  };
}

/** What `actlab organisms eval NAME --json` prints for a trained model. */
export function evaluateOrganism(name: OrganismName, model: CausalLM): Record<string, unknown> {
  return readSync(evaluateOrganismReads(name, model));
}

/** `evaluateOrganism` on any backend (WebGPU included): every read is asynchronous. */
export function evaluateOrganismAsync(name: OrganismName, model: CausalLM): Promise<Record<string, unknown>> {
  return readAsync(evaluateOrganismReads(name, model));
}

function* evaluateOrganismReads(name: OrganismName, model: CausalLM): Reads<Record<string, unknown>> {
  const cfg = (model as CausalLM & { hfConfig: Record<string, unknown> }).hfConfig;
  if (name === 'modular-addition') {
    const { train: tr, test } = modularAdditionData(Number(cfg.p ?? P), Number(cfg.train_fraction ?? 0.3), Number(cfg.data_seed ?? 598));
    const f = yield* fourierReads(model, Number(cfg.p ?? P));
    const trainAcc = (yield* evaluateReads(model, tr, [2])).accuracy;
    const testAcc = (yield* evaluateReads(model, test, [2])).accuracy;
    return {
      train_accuracy: trainAcc, test_accuracy: testAcc,
      key_frequencies: f.keyFrequencies, key_frequency_share: f.keyShare, neurons_explained_by_one_frequency: f.neuronsExplained,
      fourier: f,
    };
  }
  const e = yield* inductionEvalReads(model);
  const heads = (e.heads as { layer: number; head: number; score: number }[]).filter((h) => h.score >= 0.4).sort((a, b) => b.score - a.score);
  return { in_context_loss_drop: e.in_context_loss_drop, first_half_loss: e.first_half_loss, second_half_loss: e.second_half_loss, induction_heads: heads, all_heads: e.heads };
}

// The organisms' data, analyses and interventions, for library use (`actlab/organisms`).
export { initToy, evaluate } from './common.js';
export { ablateHead, inContextLossDrop, inductionConfig, inductionData, inductionTrainingData, INDUCTION } from './induction.js';
export { fourierAnalysis, modularAdditionConfig, modularAdditionData, P, type FourierReport } from './modular-addition.js';
export { PlantedInductionModel, type PlantedOptions, type PlantedTruth } from './planted.js';
