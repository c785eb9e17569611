/// <reference types="@webgpu/types" />
// The WebGPU backend: buffers live on the GPU and every op of OpDesc runs as a WGSL kernel
// (kernels/*). Asynchronous: `exec` queues work and returns; `read` waits for it; `readSync`
// works only for buffers last written from JavaScript (token ids, masks), whose host copy is kept.
// A product split along K may leave its sum to its output's next use (kernels/context.ts
// DeferredSum): an addNorm reading it adds the partials itself (and stores the sum as it goes);
// any other use makes the sum first.
// Works in Node (the `webgpu` package, Dawn) and in browsers (navigator.gpu).
// Not for: kernel code (kernels/), device discovery (device.ts), batching (runtime.ts).
import type { Backend, BackendBuffer, OpDesc, OpName, View } from '../../tensor/backend.js';
import { checkByteRange, ownBuffer } from '../../tensor/backend.js';
import { OP_NAMES, SyncReadUnsupportedError, describeView, opParams } from '../../tensor/backend.js';
import { byteSize } from '../../tensor/dtype.js';
import { contiguousStrides } from '../../tensor/shape.js';
import { openDevice, WebGpuUnavailableError, type DeviceOptions, type GpuHandle } from './device.js';
import { GpuRuntime, type GpuBuffer, type Grid, type Kernel } from './runtime.js';
import { Params, numel, type Dense, type DeferredSum, type OpContext } from './kernels/context.js';
import { splitSum } from './kernels/matmul-gemv.js';
import { adamw, binary, copy, dropout, fill, geluBackward, random, isRowMajor, rowMajor, spliceBytes, unary, where } from './kernels/elementwise.js';
import { cumsum, reduce, topk } from './kernels/reduce.js';
import { linear, matmul } from './kernels/matmul.js';
import { envVar } from '../../io/env.js';
import { addNorm, addNormDeferredBuffers, gather, layernorm, rmsnorm, rope, scatterAdd, softmax, softmaxBackward } from './kernels/nn.js';
import { layernormBackward } from './kernels/norm-backward.js';
import { attention, ATTENTION_MAX_D } from './kernels/attention.js';
import { WEBGPU_QUANT_TYPES, dequantize, qmatmul } from './kernels/quant.js';
import { kvAppend, kvAttention, kvDequantize, kvStreamUnsupported } from './kernels/kv-cache.js';
import type { KVAttentionArgs, KVQuantSide, PackedKVDevice, PackedStreamViews, StreamLayout } from '../../tensor/packed-kv.js';
import { KVQ_ATTENTION_BUFFERS, kvqAppend, kvqAttention, kvqDequantize, kvqStreamUnsupported } from './kernels/kv-quant.js';

export { WebGpuUnavailableError } from './device.js';
export { WebGpuError } from './runtime.js';

type KernelFn = (ctx: OpContext<never>) => void;
/** Deferred split sums waiting at once (WebGpuBackend.addDeferred). */
const MAX_DEFERRED = 2;
const KERNELS: Partial<Record<OpName, KernelFn>> = {
  copy, fill, random, unary, binary, where, reduce, cumsum, topk, matmul, linear, softmax,
  layernorm, rmsnorm, rope, gather, scatterAdd, attention, dequantize, qmatmul, adamw, addNorm, geluBackward,
  layernormBackward, dropout, softmaxBackward,
} as Partial<Record<OpName, KernelFn>>;

export interface WebGpuBackendOptions extends DeviceOptions {
  /** Largest buffer whose host copy is kept for `readSync` after a write (default 1 MiB). */
  shadowLimitBytes?: number;
  /** Bytes of freed buffers kept for reuse (default 4 GiB). */
  poolLimitBytes?: number;
}

export class WebGpuBackend implements Backend, PackedKVDevice {
  readonly name = 'webgpu';
  readonly synchronous = false;
  /** Product, bias and activation in one dispatch (or two, split along K): fewer dispatches per layer. */
  readonly prefersFusedLinear = true;
  /** A residual add and the next norm in one dispatch: two fewer per block (ACTLAB_WEBGPU_ADDNORM=off: add, then the norm). */
  prefersFusedAddNorm = envVar('ACTLAB_WEBGPU_ADDNORM') !== 'off';
  /**
   * A split product's sum waits for the output's next use (kernels/context.ts DeferredSum): an
   * addNorm reading it adds the partials itself and stores the sum on the way, anything else
   * makes the sum first (ACTLAB_WEBGPU_DEFER_SUM=off: the sum right after the product).
   */
  deferSums = envVar('ACTLAB_WEBGPU_DEFER_SUM') !== 'off';
  readonly rt: GpuRuntime;
  private readonly kernels = new Map<string, Kernel>();
  /** The deferred sums, by output buffer. */
  private readonly deferred = new Map<GpuBuffer, DeferredSum>();
  private readonly shadowLimit: number;
  private disposed = false;
  /** Whether the dequantizing path of KVQuant attention has been announced (kvqAttentionDequantized). */
  private kvqNoted = false;

  constructor(readonly handle: GpuHandle, opts: WebGpuBackendOptions = {}) {
    this.rt = new GpuRuntime(handle, { poolLimitBytes: opts.poolLimitBytes });
    this.shadowLimit = opts.shadowLimitBytes ?? 1 << 20;
  }

  alloc(byteLength: number): GpuBuffer {
    this.alive('alloc');
    return this.rt.alloc(byteLength);
  }

  free(buffer: BackendBuffer): void {
    if (this.disposed) return;
    const b = this.own(buffer, 'free');
    const d = this.deferred.get(b);
    if (d) { this.deferred.delete(b); this.rt.free(d.part); }
    this.settle(b, true);
    this.rt.free(b);
  }

  write(buffer: BackendBuffer, byteOffset: number, bytes: Uint8Array): void {
    this.alive('write');
    const b = this.own(buffer, 'write');
    this.checkRange(b, byteOffset, bytes.byteLength, 'write');
    this.settle(b, true);
    this.rt.write(b, byteOffset, bytes, (dst, off, data) => {
      const ctx = this.context({ op: 'copy' }, [], []);
      spliceBytes(ctx, dst.gpu, off, data);
      ctx.finish();
    });
    if (byteOffset === 0 && bytes.byteLength === b.byteLength && b.byteLength <= this.shadowLimit) b.shadow = bytes.slice();
    else if (b.shadow) b.shadow.set(bytes, byteOffset);
  }

  read(buffer: BackendBuffer, byteOffset: number, byteLength: number): Promise<Uint8Array> {
    try {
      this.alive('read');
      const b = this.own(buffer, 'read');
      this.checkRange(b, byteOffset, byteLength, 'read');
      this.settle(b, false);
      return this.rt.read(b, byteOffset, byteLength);
    } catch (e) {
      return Promise.reject(e);
    }
  }

  readSync(buffer: BackendBuffer, byteOffset: number, byteLength: number): Uint8Array {
    const b = this.own(buffer, 'read');
    this.checkRange(b, byteOffset, byteLength, 'read');
    if (b.shadow) return b.shadow.slice(byteOffset, byteOffset + byteLength);
    throw new SyncReadUnsupportedError(this.name);
  }

  supportsOp(op: OpDesc, inputs: readonly View[], outputs: readonly View[]): boolean {
    if (!Object.prototype.hasOwnProperty.call(KERNELS, op.op)) return false;
    if (![...inputs, ...outputs].every((v) => v.buffer.backend === 'webgpu')) return false;
    if ((op.op === 'dequantize' || op.op === 'qmatmul') && !WEBGPU_QUANT_TYPES.has(op.type)) return false;
    if (op.op === 'attention') {
      const d = inputs[0]?.shape[3] ?? 0;
      const dv = inputs[2]?.shape[3] ?? 0;
      if (d > ATTENTION_MAX_D || dv > ATTENTION_MAX_D) return false;
    }
    const max = this.rt.maxBinding;
    return [...inputs, ...outputs].every((v) => v.buffer.byteLength <= max);
  }

  exec(op: OpDesc, inputs: readonly View[], outputs: readonly View[]): void {
    this.alive(`exec '${op.op}'`);
    for (const v of [...inputs, ...outputs]) this.own(v.buffer, `exec '${op.op}'`);
    const fused = this.settleFor(op, inputs, outputs);
    // A buffer may not be read and written by one dispatch: copy aliased inputs first.
    const outBufs = new Set(outputs.map((v) => v.buffer));
    const ctx = this.context(op, inputs, outputs, fused);
    try {
      const ins = inputs.map((v) => (outBufs.has(v.buffer) ? ctx.copyToTemp(v) : v));
      ctx.setInputs(ins);
      KERNELS[op.op]!(ctx as unknown as OpContext<never>);
      // the addNorm stored the sum into its b as it added the partials: nothing waits any more
      if (fused) { this.deferred.delete(fused.y); this.rt.free(fused.part); }
    } finally {
      ctx.finish();
    }
    for (const v of outputs) (v.buffer as GpuBuffer).shadow = null;
  }

  // ---- the packed KV cache (kernels/kv-cache.ts): called by the cache, not ops of OpDesc ----

  kvStreamUnsupported(layout: StreamLayout): string {
    return kvStreamUnsupported(layout);
  }

  kvqStreamUnsupported(layout: StreamLayout, side: KVQuantSide): string {
    return kvqStreamUnsupported(layout, side);
  }

  runKVAttention(a: KVAttentionArgs): void {
    if (a.k.side && KVQ_ATTENTION_BUFFERS > this.handle.device.limits.maxStorageBuffersPerShaderStage) { this.kvqAttentionDequantized(a); return; }
    const ins = [a.q, a.k.main, a.v.main, ...(a.k.side ? [a.k.out, a.v.out] : []), ...(a.mask ? [a.mask] : []), ...(a.rope ? [a.rope.table] : [])];
    this.custom('kvAttention', ins, [a.y], (ctx) => (a.k.side ? kvqAttention(ctx, a) : kvAttention(ctx, a)));
  }

  /**
   * Attention over KVQuant streams on a device that cannot bind the packed kernel's buffers: keys
   * (rotated) and values dequantized into temporaries, then the attention op; said once.
   */
  private kvqAttentionDequantized(a: KVAttentionArgs): void {
    if (!this.kvqNoted) {
      this.kvqNoted = true;
      console.warn(`actlab: this WebGPU device binds ${this.handle.device.limits.maxStorageBuffersPerShaderStage} storage buffers a kernel, the packed KV-cache attention needs ${KVQ_ATTENTION_BUFFERS}: keys and values are dequantized for each attention instead (same results, more memory traffic)`);
    }
    const B = a.q.shape[0]!;
    const f32 = (d: number): View => {
      const shape = [B, a.hkv, a.tk, d];
      return { buffer: this.alloc(4 * Math.max(1, B * a.hkv * a.tk * d)), dtype: 'f32', shape, strides: contiguousStrides(shape), offset: 0 };
    };
    const k = f32(a.q.shape[3]!);
    const v = f32(a.y.shape[3]!);
    try {
      this.runKVDequantize(a.k, k, a.rope);
      this.runKVDequantize(a.v, v);
      this.exec({ op: 'attention', scale: a.scale, causal: a.causal, masked: !!a.mask, returnProbs: false }, [a.q, k, v, ...(a.mask ? [a.mask] : [])], [a.y]);
    } finally {
      this.free(k.buffer);
      this.free(v.buffer);
    }
  }

  runKVQAppend(x: View, stream: PackedStreamViews, row0: number, o: { tau: number; positions?: Int32Array; sinkT?: Int32Array }): void {
    this.custom('kvqAppend', [x], [stream.main, stream.out], (ctx) => kvqAppend(ctx, x, stream, row0, o));
  }

  runKVAppend(x: View, stream: PackedStreamViews, kind: 'q8_0' | 'q4_0', row0: number): void {
    this.custom('kvAppend', [x], [stream.main], (ctx) => kvAppend(ctx, x, stream, kind, row0));
  }

  runKVDequantize(stream: PackedStreamViews, y: View, rope?: KVAttentionArgs['rope']): void {
    const ins = [stream.main, ...(stream.side ? [stream.out] : []), ...(rope ? [rope.table] : [])];
    this.custom('kvDequantize', ins, [y], (ctx) => (stream.side ? kvqDequantize(ctx, stream, y, rope) : kvDequantize(ctx, stream, y)));
  }

  /** Runs a kernel outside the op set with an op's context (temporaries, pipeline cache, errors). */
  private custom(name: string, inputs: readonly View[], outputs: readonly View[], fn: (ctx: OpContext) => void): void {
    this.alive(name);
    for (const v of [...inputs, ...outputs]) this.own(v.buffer, name);
    this.settleFor({ op: name } as unknown as OpDesc, inputs, outputs);
    const ctx = this.context({ op: name } as unknown as OpDesc, inputs, outputs);
    try {
      fn(ctx);
    } finally {
      ctx.finish();
    }
    for (const v of outputs) (v.buffer as GpuBuffer).shadow = null;
  }

  flush(): Promise<void> {
    if (this.disposed) return Promise.resolve();
    return this.rt.flush();
  }

  memoryInUse(): number {
    return this.rt.live;
  }

  info(): Record<string, string | number | boolean> {
    const a = this.handle.adapterInfo;
    const f = this.handle.features;
    return {
      kind: 'WebGPU (WGSL kernels)',
      adapter: [a.vendor, a.architecture, a.device].filter(Boolean).join(' ') || a.description || 'unknown',
      shaderF16: f.f16,
      subgroups: f.subgroups,
      subgroupMatrix: f.subgroupMatrix,
      maxBufferBytes: this.handle.device.limits.maxBufferSize,
      maxBindingBytes: this.handle.device.limits.maxStorageBufferBindingSize,
      pipelines: this.rt.stats.pipelines,
    };
  }

  nativeOps(): readonly OpName[] {
    return OP_NAMES.filter((o) => Object.prototype.hasOwnProperty.call(KERNELS, o));
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.rt.dispose();
  }

  private alive(what: string): void {
    if (this.disposed) throw new Error(`webgpu backend: ${what} after dispose`);
  }

  private own(buffer: BackendBuffer, what: string): GpuBuffer {
    return ownBuffer<GpuBuffer>('webgpu', buffer, 'gpu', what);
  }

  private checkRange(b: GpuBuffer, byteOffset: number, byteLength: number, what: string): void {
    checkByteRange('webgpu', b, byteOffset, byteLength, what);
  }

  private context(op: OpDesc, inputs: readonly View[], outputs: readonly View[], fused: DeferredSum | null = null): ExecContext {
    return new ExecContext(this, op, inputs, outputs, this.kernels, fused);
  }

  // ---- deferred sums of split products (kernels/context.ts DeferredSum) ----

  /**
   * Takes a split product's partials (its exec already made what its output held); the sum is made
   * at the output's next use. At most MAX_DEFERRED wait at once, the oldest made first: outputs
   * nothing reads, kept alive until a forward ends, would otherwise hold their partials.
   */
  addDeferred(d: DeferredSum): void {
    this.deferred.set(d.y, d);
    while (this.deferred.size > MAX_DEFERRED) this.makeSum(this.deferred.values().next().value!);
  }

  /** How many split sums wait for their output's next use (tests, diagnostics). */
  deferredSums(): number {
    return this.deferred.size;
  }

  /**
   * Before an op: makes the deferred sums its inputs read or its outputs overwrite (outputs that are
   * a deferred sum's bias too), except b of an addNorm that can add the partials itself (returned).
   */
  private settleFor(op: OpDesc, inputs: readonly View[], outputs: readonly View[]): DeferredSum | null {
    if (!this.deferred.size) return null;
    let fused = op.op === 'addNorm' && inputs[1] ? this.fusable(inputs[1]) : null;
    // the norm adds the partials itself only where the device lets it bind them all
    if (fused && addNormDeferredBuffers(inputs.length - 2, !!fused.bias) > this.handle.device.limits.maxStorageBuffersPerShaderStage) fused = null;
    inputs.forEach((v, i) => { if (!(fused && i === 1)) this.settle(v.buffer, false); });
    for (const v of outputs) this.settle(v.buffer, true);
    if (fused && !this.deferred.has(fused.y)) fused = null; // made above: another view of it was used
    return fused;
  }

  private fusable(v: View): DeferredSum | null {
    const d = this.deferred.get(v.buffer as GpuBuffer);
    return d && v.dtype === 'f32' && isRowMajor(v) && v.offset === d.yoff && numel(v.shape) === d.MN ? d : null;
  }

  /** Makes now the deferred sum held in `b` and, with `asBias`, those that add `b` as their bias. */
  private settle(b: BackendBuffer, asBias: boolean): void {
    if (!this.deferred.size) return;
    const d = this.deferred.get(b as GpuBuffer);
    if (d) this.makeSum(d);
    if (asBias) for (const e of [...this.deferred.values()]) if (e.bias === b) this.makeSum(e);
  }

  private makeSum(d: DeferredSum): void {
    this.deferred.delete(d.y);
    const ctx = this.context({ op: 'linear' } as OpDesc, [], []);
    try {
      splitSum(ctx, d.part.gpu, d.S, d.MN, 1, 'f32', d.y.gpu, d.yoff, d.bias ? { bias: d.bias.gpu, boff: d.boff, act: null, N: d.N } : null);
    } finally {
      ctx.finish();
      this.rt.free(d.part);
    }
  }
}

/** One op's execution: the OpContext the kernels see, plus its temporaries. */
class ExecContext implements OpContext {
  private temps: GpuBuffer[] = [];
  private copyBacks: { from: View; to: View }[] = [];
  inputs: readonly View[];

  constructor(
    private readonly be: WebGpuBackend,
    readonly op: OpDesc,
    inputs: readonly View[],
    readonly outputs: readonly View[],
    private readonly cache: Map<string, Kernel>,
    private readonly fused: DeferredSum | null = null,
  ) {
    this.inputs = inputs;
  }

  canDefer(): boolean {
    const y = this.outputs[0];
    return this.be.deferSums && !!y && y.dtype === 'f32' && isRowMajor(y);
  }

  defer(s: Omit<DeferredSum, 'y' | 'yoff'>): void {
    const y = this.outputs[0]!;
    this.be.addDeferred({ ...s, y: y.buffer as GpuBuffer, yoff: y.offset });
  }

  deferredInput(i: number): DeferredSum | null {
    return i === 1 ? this.fused : null;
  }

  get rt(): GpuRuntime {
    return this.be.rt;
  }

  get features() {
    return this.be.handle.features;
  }

  setInputs(v: readonly View[]): void {
    this.inputs = v;
  }

  buffer(v: View): GPUBuffer {
    return (v.buffer as GpuBuffer).gpu;
  }

  temp(byteLength: number): GpuBuffer {
    const t = this.rt.alloc(byteLength);
    this.temps.push(t);
    return t;
  }

  /** A contiguous copy of `v` in a temporary. */
  copyToTemp(v: View): View {
    const t = this.temp(byteSize(v.dtype, numel(v.shape)));
    const to: View = { buffer: t, dtype: v.dtype, shape: v.shape, strides: rowMajor(v.shape), offset: 0 };
    this.subCopy(v, to);
    return to;
  }

  private subCopy(from: View, to: View): void {
    const sub = new ExecContext(this.be, { op: 'copy' }, [from], [to], this.cache);
    copy(sub as unknown as OpContext<Extract<OpDesc, { op: 'copy' }>>);
    sub.finish();
  }

  dense(i: number): Dense {
    const v = this.inputs[i];
    if (!v) this.fail(`missing input ${i}`);
    const d = isRowMajor(v) ? v : this.copyToTemp(v);
    return { gpu: this.buffer(d), offset: d.offset, dtype: d.dtype, shape: d.shape };
  }

  denseCopy(v: View): Dense {
    const d = this.copyToTemp(v);
    return { gpu: this.buffer(d), offset: 0, dtype: d.dtype, shape: d.shape };
  }

  denseOut(j: number): Dense {
    const v = this.outputs[j];
    if (!v) this.fail(`missing output ${j}`);
    if (isRowMajor(v)) return { gpu: this.buffer(v), offset: v.offset, dtype: v.dtype, shape: v.shape };
    const t = this.temp(byteSize(v.dtype, numel(v.shape)));
    const from: View = { buffer: t, dtype: v.dtype, shape: v.shape, strides: rowMajor(v.shape), offset: 0 };
    this.copyBacks.push({ from, to: v });
    return { gpu: t.gpu, offset: 0, dtype: v.dtype, shape: v.shape };
  }

  kernel(key: string, make: () => string): Kernel {
    let k = this.cache.get(key);
    if (!k) {
      k = this.rt.kernel(key, make());
      this.cache.set(key, k);
    }
    return k;
  }

  run(k: Kernel, buffers: readonly GPUBuffer[], params: Params, grid: Grid): void {
    this.rt.dispatch(k, buffers, params.build(), grid);
  }

  /** Copies temporaries back into non-contiguous outputs and releases them. */
  finish(): void {
    const backs = this.copyBacks.splice(0);
    for (const { from, to } of backs) this.subCopy(from, to);
    for (const t of this.temps.splice(0)) this.rt.free(t);
  }

  fail(detail: string): never {
    const ins = this.inputs.map(describeView).join(', ');
    const outs = this.outputs.map(describeView).join(', ');
    throw new Error(`webgpu backend: op '${this.op.op}'${opParams(this.op)}: ${detail} (inputs: ${ins || 'none'}; outputs: ${outs || 'none'})`);
  }
}

export interface CreateWebGpuOptions extends WebGpuBackendOptions {
  /**
   * A CPU backend to use instead when no WebGPU device can be had ('wasm' or 'js'); the reason is
   * passed to `onFallback` (default: printed to stderr / the console). Off unless given.
   */
  fallback?: 'wasm' | 'js';
  onFallback?: (reason: Error) => void;
}

/** Opens the adapter and device; throws WebGpuUnavailableError (or falls back when allowed). */
export async function createWebGpuBackend(opts: CreateWebGpuOptions = {}): Promise<Backend> {
  try {
    return new WebGpuBackend(await openDevice(opts), opts);
  } catch (e) {
    if (!opts.fallback || !(e instanceof WebGpuUnavailableError)) throw e;
    (opts.onFallback ?? ((r: Error) => console.warn(`actlab: ${r.message}; falling back to the ${opts.fallback} backend`)))(e);
    if (opts.fallback === 'wasm') return (await import('../wasm/backend.js')).createWasmBackend();
    return (await import('../js/backend.js')).createJsBackend();
  }
}
