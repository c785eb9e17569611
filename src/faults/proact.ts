// Clipped activations against faults (ProAct: Mousavi et al. 2024, "ProAct: Progressive Training
// for Hybrid Clipped Activation Function to Enhance Resilience of DNNs", and Ranger before it): a
// bit flip in an exponent turns a value into something huge that then swamps the layers after it;
// clamping each neuron to the range it took on clean calibration data bounds the damage.
// Bounds per neuron (the last dim of a hook point) are the min and max over calibration tokens
// (Ranger's / ProAct's neuron-wise initialisation; both ends, as a transformer's activations are
// signed). `granularity`: 'neuron' keeps them per neuron, 'layer' takes the layer's extremes for
// every neuron, 'hybrid' is ProAct's mix (layer-wise everywhere but the last site, neuron-wise
// there). ProAct's progressive fine-tuning of the bounds by distillation is not done here: the
// bounds are the calibrated ones. A NaN (out of every bound) becomes 0.
import { tensor } from '../ops/creation.js';
import { eq, maximum, minimum, where } from '../ops/elementwise.js';
import { keep, tidy } from '../tensor/engine.js';
import type { Tensor } from '../tensor/tensor.js';
import type { HookFn } from '../models/hook-point.js';
import type { CausalLM } from '../models/model.js';
import { hookGlobs } from './sites.js';

export type BoundGranularity = 'neuron' | 'layer' | 'hybrid';

export interface ClipBounds {
  /** Hook point name. */
  name: string;
  lo: Float32Array; // [d]
  hi: Float32Array; // [d]
}

/** Fewest calibration tokens the bounds accept. */
export const MIN_CLIP_TOKENS = 16;

/** Per-neuron min/max at the hook points matching `sites` (globs) over `data` (token sequences). */
export function calibrateClipBounds(model: CausalLM, data: readonly (readonly number[])[], sites: string, granularity: BoundGranularity = 'neuron'): ClipBounds[] {
  const names = hookGlobs(model, sites, '--clip-sites');
  const tokens = data.reduce((n, d) => n + d.length, 0);
  if (tokens < MIN_CLIP_TOKENS) throw new Error(`clipping bounds: calibration needs at least ${MIN_CLIP_TOKENS} tokens, got ${tokens}`);
  const acc = new Map<string, { lo: Float32Array; hi: Float32Array }>();
  const hooks: [string, HookFn][] = names.map((n) => [n, (a: Tensor) => {
    const d = a.shape.at(-1)!;
    const v = a.dataSync();
    let b = acc.get(n);
    if (!b) acc.set(n, (b = { lo: new Float32Array(d).fill(Infinity), hi: new Float32Array(d).fill(-Infinity) }));
    for (let i = 0; i < v.length; i++) {
      const j = i % d;
      const x = v[i]!;
      if (x < b.lo[j]!) b.lo[j] = x;
      if (x > b.hi[j]!) b.hi[j] = x;
    }
  }]);
  model.withHooks(hooks, () => {
    for (const seq of data) {
      const x = tensor([...seq], [1, seq.length], 'i32', { backend: model.backend });
      try {
        model.forward(x).dispose();
      } finally {
        x.dispose();
      }
    }
  });
  const out = names.filter((n) => acc.has(n)).map((n) => ({ name: n, ...acc.get(n)! }));
  if (!out.length) throw new Error(`clipping bounds: no hook point matching '${sites}' fired`);
  out.forEach((b, i) => {
    const layerWise = granularity === 'layer' || (granularity === 'hybrid' && i < out.length - 1);
    if (!layerWise) return;
    const lo = Math.min(...b.lo);
    const hi = Math.max(...b.hi);
    b.lo.fill(lo);
    b.hi.fill(hi);
  });
  return out;
}

/** x clamped per neuron into [lo, hi] (broadcast over the last dim); NaN -> 0. Caller owns the result. */
export function clip(x: Tensor, lo: Tensor, hi: Tensor): Tensor {
  return tidy(() => where(eq(x, x), maximum(minimum(x, hi), lo), 0));
}

/** Hooks that clamp each calibrated site to its bounds; `dispose()` frees the bound tensors. */
export function clipHooks(model: CausalLM, bounds: readonly ClipBounds[]): { hooks: [string, HookFn][]; dispose(): void } {
  const made: Tensor[] = [];
  const hooks = bounds.map((b): [string, HookFn] => {
    const lo = keep(tensor(b.lo, [b.lo.length], 'f32', { backend: model.backend }));
    const hi = keep(tensor(b.hi, [b.hi.length], 'f32', { backend: model.backend }));
    made.push(lo, hi);
    return [b.name, (a) => clip(a, lo, hi)];
  });
  return { hooks, dispose: () => { for (const t of made) t.dispose(); } };
}
