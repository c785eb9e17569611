// Quantization-aware training (the whitepaper's QAT: Nagel et al. 2021, arXiv:2106.08295, §4):
// every step runs forward and backward on fake-quantized weights (src/quantize/fake.ts: the values
// the format gives back) and applies the gradient to the f32 weights underneath — the
// straight-through estimator, ∂Q(w)/∂w taken as 1. Plugs into actlab's trainer through its
// `aroundPass` option; `qatTrain` fine-tunes a model and leaves its f32 weights trained for the
// format, to be quantized by `actlab quantize` (or `fakeQuantizeModel`) afterwards.
import type { CausalLM } from '../models/model.js';
import { train, type TrainOptions, type TrainResult } from '../train/trainer.js';
import { fakeQuantizeModel, type FakeQuantResult } from './fake.js';
import type { ActlabQuantType } from '../quant/formats.js';

/** The trainer hook: fake-quantize before each pass, restore the f32 weights after it. */
export function qatPass(model: CausalLM, config: Record<string, unknown>, type: ActlabQuantType): NonNullable<TrainOptions['aroundPass']> & { passes: number } {
  let live: FakeQuantResult | null = null;
  const hook = {
    passes: 0,
    before(): void {
      live = fakeQuantizeModel(model, config, () => type);
      if (!Object.keys(live.applied).length) throw new Error(`QAT: no matrix of this model takes ${type} (rows not divisible by its block)`);
    },
    after(): void {
      live?.restore();
      live = null;
      hook.passes++;
    },
  };
  return hook;
}

/** Trains `model` on `data` with fake-quantized weights in `type` (trainer options as `train`). */
export function qatTrain(model: CausalLM, data: readonly ArrayLike<number>[], type: ActlabQuantType, o: TrainOptions & { modelConfig: Record<string, unknown> }): Promise<TrainResult> {
  return train(model, data, { ...o, aroundPass: qatPass(model, o.modelConfig, type) });
}
