// Making tensors: from values, filled, ranges, and seeded random numbers.
import type { Backend } from '../tensor/backend.js';
import type { DType } from '../tensor/dtype.js';
import { dispatchInto, getBackend } from '../tensor/engine.js';
import { assertShape, numel } from '../tensor/shape.js';
import { Tensor } from '../tensor/tensor.js';

export interface Placement {
  backend?: Backend;
}

/** A tensor from a flat or nested array of numbers; the shape is inferred from nesting when omitted. */
export function tensor(values: ArrayLike<number> | unknown[], shape?: readonly number[], dtype: DType = 'f32', at: Placement = {}): Tensor {
  let flat: ArrayLike<number>;
  let s = shape;
  if (Array.isArray(values) && values.some((v) => Array.isArray(v))) {
    const inferred: number[] = [];
    for (let v: unknown = values; Array.isArray(v); v = v[0]) inferred.push(v.length);
    flat = (values as unknown[]).flat(Infinity) as number[];
    s ??= inferred;
  } else {
    flat = values as ArrayLike<number>;
    s ??= [flat.length];
  }
  return Tensor.from(flat, s, dtype, at.backend ?? getBackend());
}

export function scalar(value: number, dtype: DType = 'f32', at: Placement = {}): Tensor {
  return Tensor.from([value], [], dtype, at.backend ?? getBackend());
}

export function full(shape: readonly number[], value: number, dtype: DType = 'f32', at: Placement = {}): Tensor {
  const t = Tensor.empty(assertShape(shape, 'full'), dtype, at.backend ?? getBackend(), 'full');
  if (numel(shape) > 0) dispatchInto({ op: 'fill', value }, [], [t]);
  return t;
}

export function zeros(shape: readonly number[], dtype: DType = 'f32', at: Placement = {}): Tensor {
  return full(shape, 0, dtype, at);
}

export function ones(shape: readonly number[], dtype: DType = 'f32', at: Placement = {}): Tensor {
  return full(shape, 1, dtype, at);
}

/** [start, start + step, ...) below `end`. */
export function arange(start: number, end?: number, step = 1, dtype: DType = 'i32', at: Placement = {}): Tensor {
  if (end === undefined) [start, end] = [0, start];
  if (step === 0) throw new RangeError('arange: step must not be 0');
  const n = Math.max(0, Math.ceil((end - start) / step));
  return Tensor.from(Float64Array.from({ length: n }, (_, i) => start + i * step), [n], dtype, at.backend ?? getBackend());
}

/** A small, fast, seedable generator (SplitMix32 seeding xoshiro128**), so runs repeat exactly. */
export class Rng {
  private s = new Uint32Array(4);
  constructor(seed = 0) {
    let x = seed >>> 0;
    for (let i = 0; i < 4; i++) {
      x = (x + 0x9e3779b9) >>> 0;
      let z = x;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
      this.s[i] = (z ^ (z >>> 16)) >>> 0;
    }
  }
  /** Uniform 32-bit unsigned integer. */
  nextU32(): number {
    const s = this.s;
    const r = Math.imul(rotl(Math.imul(s[1]!, 5), 7), 9) >>> 0;
    const t = s[1]! << 9;
    s[2]! ^= s[0]!; s[3]! ^= s[1]!; s[1]! ^= s[2]!; s[0]! ^= s[3]!;
    s[2]! ^= t; s[3] = rotl(s[3]!, 11);
    return r;
  }
  /** Uniform in [0, 1). */
  uniform(): number {
    return this.nextU32() / 4294967296;
  }
  /** Standard normal (Box-Muller). */
  normal(): number {
    const u = 1 - this.uniform();
    const v = this.uniform();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  }
  /**
   * Fills `out` with mean + std * normal(), the same values as that many `normal()` calls, with
   * the generator's state held in locals (about 10x faster than a call per value: random model
   * weights of GPT-2 size are 124M values).
   */
  fillNormal(out: Float32Array, mean = 0, std = 1): Float32Array {
    const st = this.s;
    let s0 = st[0]!, s1 = st[1]!, s2 = st[2]!, s3 = st[3]!;
    const twoPi = 2 * Math.PI;
    for (let i = 0; i < out.length; i++) {
      // Two xoshiro128** outputs (nextU32 inlined), then Box-Muller as in normal().
      let x = Math.imul(s1, 5);
      let r = Math.imul(((x << 7) | (x >>> 25)), 9) >>> 0;
      let t = s1 << 9;
      s2 ^= s0; s3 ^= s1; s1 ^= s2; s0 ^= s3; s2 ^= t; s3 = (s3 << 11) | (s3 >>> 21);
      const u = 1 - (r >>> 0) / 4294967296;
      x = Math.imul(s1, 5);
      r = Math.imul(((x << 7) | (x >>> 25)), 9) >>> 0;
      t = s1 << 9;
      s2 ^= s0; s3 ^= s1; s1 ^= s2; s0 ^= s3; s2 ^= t; s3 = (s3 << 11) | (s3 >>> 21);
      const v = r / 4294967296;
      out[i] = mean + std * (Math.sqrt(-2 * Math.log(u)) * Math.cos(twoPi * v));
    }
    st[0] = s0; st[1] = s1; st[2] = s2; st[3] = s3;
    return out;
  }
  /** Uniform integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.uniform() * n);
  }
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}

export function randn(shape: readonly number[], opts: { seed?: number; std?: number; mean?: number; dtype?: DType } & Placement = {}): Tensor {
  const rng = new Rng(opts.seed ?? 0);
  const std = opts.std ?? 1;
  const mean = opts.mean ?? 0;
  const v = rng.fillNormal(new Float32Array(numel(shape)), mean, std);
  return Tensor.from(v, shape, opts.dtype ?? 'f32', opts.backend ?? getBackend());
}

export function rand(shape: readonly number[], opts: { seed?: number; low?: number; high?: number; dtype?: DType } & Placement = {}): Tensor {
  const rng = new Rng(opts.seed ?? 0);
  const lo = opts.low ?? 0;
  const hi = opts.high ?? 1;
  const v = new Float32Array(numel(shape));
  for (let i = 0; i < v.length; i++) v[i] = lo + (hi - lo) * rng.uniform();
  return Tensor.from(v, shape, opts.dtype ?? 'f32', opts.backend ?? getBackend());
}
