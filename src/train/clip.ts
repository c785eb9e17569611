// Gradient clipping by global norm (PyTorch's clip_grad_norm_), and the per-tensor norms the
// trainer also uses to find non-finite gradients.
import { mul, square } from '../ops/elementwise.js';
import { sum } from '../ops/reduce.js';
import { zeros } from '../ops/creation.js';
import { noGrad } from '../autograd/tape.js';
import { dispatchInto, tidy } from '../tensor/engine.js';
import type { Tensor } from '../tensor/tensor.js';

/** ‖g‖₂ of each tensor, in float64 on the host (NaN/Inf when a gradient holds them). */
export function gradNorms(grads: ReadonlyMap<string, Tensor>): Map<string, number> {
  const out = new Map<string, number>();
  for (const [name, g] of grads) {
    out.set(name, g.size === 0 ? 0 : Math.sqrt(tidy(() => sum(square(g.reshape([-1])), 0).item())));
  }
  return out;
}

/**
 * `gradNorms` reading the device asynchronously, so it runs on every backend (WebGPU included); the
 * same numbers. Each squared norm is summed straight into its entry of one tensor, which is read
 * once (one round trip to the device instead of one per parameter, no copies).
 */
export async function gradNormsAsync(grads: ReadonlyMap<string, Tensor>): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  const names = [...grads.keys()].filter((n) => grads.get(n)!.size > 0);
  if (names.length) {
    const sq = noGrad(() => zeros([names.length], grads.get(names[0]!)!.dtype, { backend: grads.get(names[0]!)!.backend })); // [n]
    noGrad(() => names.forEach((n, i) => tidy(() => {
      dispatchInto({ op: 'reduce', fn: 'sum', axis: 0 }, [square(grads.get(n)!.reshape([-1]))], [sq.narrow(0, i, 1)]);
    })));
    try {
      const v = await sq.data();
      names.forEach((n, i) => out.set(n, Math.sqrt(v[i] as number)));
    } finally {
      sq.dispose();
    }
  }
  for (const [n, g] of grads) if (g.size === 0) out.set(n, 0);
  return new Map([...grads.keys()].map((n) => [n, out.get(n)!]));
}

/** The global norm sqrt(Σ ‖g‖²) of per-tensor norms. */
export function globalNorm(norms: Iterable<number>): number {
  let s = 0;
  for (const n of norms) s += n * n;
  return Math.sqrt(s);
}

/** The factor PyTorch scales gradients by: min(1, maxNorm / (norm + 1e-6)). */
export function clipFactor(norm: number, maxNorm: number): number {
  if (!(maxNorm > 0)) return 1;
  return Math.min(1, maxNorm / (norm + 1e-6));
}

/**
 * Scales `grads` so their global norm is at most `maxNorm`; returns the norm before clipping and
 * the scaled gradients (new tensors; the inputs are disposed when scaled).
 */
export function clipGradNorm(grads: Map<string, Tensor>, maxNorm: number): { norm: number; grads: Map<string, Tensor> } {
  const norm = globalNorm(gradNorms(grads).values());
  const f = clipFactor(norm, maxNorm);
  if (f === 1) return { norm, grads };
  const out = new Map<string, Tensor>();
  for (const [k, g] of grads) {
    out.set(k, mul(g, f));
    g.dispose();
  }
  return { norm, grads: out };
}
