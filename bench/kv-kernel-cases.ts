// The attention-alone set-up that bench/kv-quant.ts (--only kernel) and bench/kvattn-ab.ts share:
// one query over 512 stored positions of 16 kv heads of 64, random keys and values, the 4-bit
// calibrations (keys per channel in ±2.57, values' τ at 2.57, a uniform 16-level codebook for nuq)
// and the caches compared, with the attention options (scale, half-mode RoPE over the whole head).
import type { Backend } from '../src/tensor/backend.js';
import type { Tensor } from '../src/tensor/tensor.js';
import { Rng, tensor } from '../src/ops/creation.js';
import type { KVCacheSpec, KVCalibration } from '../src/models/kvquant/spec.js';

export const KERNEL_SHAPE = { hkv: 16, d: 64, tk: 512 } as const;

export interface KernelCases {
  k: Tensor; v: Tensor; q: Tensor; inv: Tensor;
  /** The packed caches: kvquant-4, uniform 4-bit without outliers or sink, q4_0, q8_0. */
  specs: { kvquant4: KVCacheSpec; uniform4: KVCacheSpec; q4_0: KVCacheSpec; q8_0: KVCacheSpec };
  attend: { scale: number; rope: { invFreq: Tensor; rotaryDim: number; mode: 'half' } };
}

/** The tensors (owned by the caller) and specs, drawn from Rng(1) in a fixed order. */
export function kernelCases(backend: Backend): KernelCases {
  const { hkv, d, tk } = KERNEL_SHAPE;
  const R = hkv * d;
  const rng = new Rng(1);
  const k = tensor(Float32Array.from({ length: R * tk }, () => rng.normal()), [1, hkv, tk, d], 'f32', { backend });
  const v = tensor(Float32Array.from({ length: R * tk }, () => rng.normal()), [1, hkv, tk, d], 'f32', { backend });
  const q = tensor(Float32Array.from({ length: R }, () => rng.normal()), [1, hkv, 1, d], 'f32', { backend });
  const inv = tensor(Array.from({ length: d / 2 }, (_, i) => 1 / 10000 ** ((2 * i) / d)), [d / 2], 'f32', { backend });
  const lut = Array.from({ length: 16 }, (_, i) => -1 + (2 * i) / 15);
  const cal = (nuq: boolean, share: number): KVCalibration => ({
    bits: 4, keys: 'per-channel', preRope: true, nuq, outliers: share, tokens: 1000,
    layers: [{ keys: { lo: new Array(R).fill(-2.57), hi: new Array(R).fill(2.57), lut: nuq ? lut : undefined }, values: { tau: share ? 2.57 : undefined, lut: nuq ? lut : undefined } }],
  });
  return {
    k, v, q, inv,
    specs: {
      kvquant4: { type: 'kvquant', bits: 4, calibration: cal(true, 0.01) },
      uniform4: { type: 'kvquant', bits: 4, nuq: false, outliers: 0, sink: false, calibration: cal(false, 0) },
      q4_0: { type: 'q4_0' },
      q8_0: { type: 'q8_0' },
    },
    attend: { scale: 1 / Math.sqrt(d), rope: { invFreq: inv, rotaryDim: d, mode: 'half' } },
  };
}
