// What a WebGPU kernel receives: the runtime, ways to bind views (made contiguous on the GPU when
// the kernel needs it), temporaries freed after the op, a cached pipeline lookup, and a parameter
// word builder. Not for: WGSL itself (wgsl.ts and the kernel files).
import { numel, splitAt } from '../../../tensor/shape.js';
export { numel, splitAt };
import type { OpDesc, View } from '../../../tensor/backend.js';
import type { DType } from '../../../tensor/dtype.js';
import type { GpuBuffer, GpuRuntime, Grid, Kernel } from '../runtime.js';

/** Parameter words of one dispatch (binding 0 of every kernel). */
export class Params {
  private readonly words: number[] = [];
  private static readonly f = new Float32Array(1);
  private static readonly u = new Uint32Array(Params.f.buffer);
  u32(...v: number[]): this {
    for (const x of v) this.words.push(x >>> 0);
    return this;
  }
  i32(...v: number[]): this {
    for (const x of v) this.words.push(x | 0);
    return this;
  }
  f32(...v: number[]): this {
    for (const x of v) {
      Params.f[0] = x;
      this.words.push(Params.u[0]!);
    }
    return this;
  }
  get length(): number {
    return this.words.length;
  }
  build(): Uint32Array {
    return Uint32Array.from(this.words.length ? this.words : [0]);
  }
}

/** A view made contiguous: its buffer and element offset. */
export interface Dense {
  gpu: GPUBuffer;
  offset: number;
  dtype: DType;
  shape: readonly number[];
}

/**
 * The k-range partials of a split product whose sum is made only when its output is next used
 * (WebGpuBackend's deferred sums): y[e] = epi(part[e] + part[MN + e] + ... , e % N), bias optional.
 * An addNorm whose b is that output adds the partials itself and stores the sum into b as it
 * goes (one dispatch fewer).
 */
export interface DeferredSum {
  /** S k-ranges of MN partial sums each, from element 0; owned by the deferral. */
  part: GpuBuffer;
  S: number;
  MN: number;
  N: number;
  /** Where the sum goes: the output's buffer and element offset. */
  y: GpuBuffer;
  yoff: number;
  /** The bias (f32, at element boff) added to each sum, no activation. */
  bias: GpuBuffer | null;
  boff: number;
}

export interface OpContext<O extends OpDesc = OpDesc> {
  readonly op: O;
  readonly inputs: readonly View[];
  readonly outputs: readonly View[];
  readonly rt: GpuRuntime;
  readonly features: { f16: boolean; subgroups: boolean; subgroupMatrix: boolean; subgroupMinSize: number };
  /** The GPU buffer of a view (any layout). */
  buffer(v: View): GPUBuffer;
  /** Input i as a contiguous row-major array (copied on the GPU when it is not one). */
  dense(i: number): Dense;
  /**
   * Output j as a contiguous array to write: the output itself when it is contiguous, else a
   * temporary that is copied into the output view when the op ends.
   */
  denseOut(j: number): Dense;
  /** A contiguous copy of `v` at offset 0 of a temporary (for kernels that need aligned offsets). */
  denseCopy(v: View): Dense;
  /** A temporary buffer freed when the op ends. */
  temp(byteLength: number): GpuBuffer;
  /** A pipeline compiled once per key. */
  kernel(key: string, make: () => string): Kernel;
  run(k: Kernel, buffers: readonly GPUBuffer[], params: Params, grid: Grid): void;
  fail(detail: string): never;
  /**
   * Hands output 0's split sum to the backend to make when the output is next used (see
   * DeferredSum); absent where the backend does not defer. Call only when `canDefer()` said yes.
   */
  defer?(s: Omit<DeferredSum, 'y' | 'yoff'>): void;
  /** Whether output 0 (contiguous, f32) may take a deferred sum. */
  canDefer?(): boolean;
  /** The deferred sum that input i stands for, where this op may add its partials itself. */
  deferredInput?(i: number): DeferredSum | null;
}

/** The linear workgroup index of a 1-d grid folded into (x, y). */
export const WG_INDEX = 'let wg = wid.x + wid.y * nwg.x;';
export const BUILTINS =
  '@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) li: u32';
