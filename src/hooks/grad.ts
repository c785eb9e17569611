// Gradients at hook points: d metric / d activation for the named activations of one forward
// pass (attribution, gradient × activation, attribution patching), via backward hooks.
import { clearTape, grad, tapeMark } from '../autograd/tape.js';
import { keep, tidy } from '../tensor/engine.js';
import { add } from '../ops/elementwise.js';
import type { Tensor } from '../tensor/tensor.js';
import type { CausalLM, ForwardOptions } from '../models/model.js';
import { Hooks } from '../models/hook-point.js';
import { assertHookNames } from './patterns.js';

export interface GradAtResult {
  /** The metric's value. */
  value: number;
  /** The gradient of the metric at each hook point asked for (same shape as the activation); the caller owns them. */
  grads: Map<string, Tensor>;
  /** The activations themselves, when `activations: true` (the caller owns them). */
  activations?: Map<string, Tensor>;
}

/**
 * Runs `model` on `input`, computes the scalar `metric(logits)` and returns its gradient with
 * respect to the activation at each of `names`. Parameters need not require grad; the tape is
 * freed before returning.
 */
export function gradAt(
  model: CausalLM, input: Tensor, metric: (logits: Tensor) => Tensor, names: readonly string[],
  o: Omit<ForwardOptions, 'hooks'> & { activations?: boolean } = {},
): GradAtResult {
  const r = gradAtDevice(model, input, metric, names, o);
  try {
    return { ...r, value: r.metric.item() };
  } finally {
    r.metric.dispose();
  }
}

/** `gradAt` with the metric left on the device (a [1] tensor the caller owns), for backends that read asynchronously. */
export function gradAtDevice(
  model: CausalLM, input: Tensor, metric: (logits: Tensor) => Tensor, names: readonly string[],
  o: Omit<ForwardOptions, 'hooks'> & { activations?: boolean } = {},
): Omit<GradAtResult, 'value'> & { metric: Tensor } {
  assertHookNames(names, model.hookPoints().map((h) => h.name), 'gradAt', model.dims.arch);
  const want = new Set(names);
  const grads = new Map<string, Tensor>();
  const acts = new Map<string, Tensor>();
  const hooks = new Hooks();
  if (o.activations) hooks.add((n) => want.has(n), (t, h) => { acts.get(h.name)?.dispose(); acts.set(h.name, keep(t.share())); });
  hooks.addBackward((n) => want.has(n), (g, h) => {
    const prev = grads.get(h.name);
    grads.set(h.name, prev ? keep(add(prev, g)) : keep(g.share()));
    prev?.dispose();
  });
  const mark = tapeMark();
  try {
    const value = tidy(() => {
      const logits = model.forward(input, { ...o, hooks });
      const m = metric(logits);
      if (m.size !== 1) throw new Error(`gradAt: the metric must be a scalar, got shape [${m.shape.join(', ')}]`);
      grad(m, []);
      return keep(m.reshape([1]));
    });
    return { metric: value, grads, ...(o.activations ? { activations: acts } : {}) };
  } catch (e) {
    for (const t of [...grads.values(), ...acts.values()]) t.dispose();
    throw e;
  } finally {
    clearTape(mark - 1);
  }
}
