/// <reference types="@webgpu/types" />
// What the WebGPU kernels run on: a pool of storage buffers, compiled pipelines cached by source,
// and a command stream that batches many dispatches into one submit (each dispatch's parameters
// go into one arena uploaded just before the submit, bound at a dynamic offset, so that the bind
// group of a kernel over the same buffers is made once and reused: decode repeats them).
// The pool hands out the lowest-numbered free buffer of a size class, so a repeated sequence of
// allocations (decode steps, forwards over one shape) gets the same buffers every time and finds
// its bind groups cached. Staging buffers for reads are pooled too.
// Errors (validation, out of memory, a lost device) are collected per batch and thrown at the
// next call with the backend and sizes named. For profiles, startTiming .. stopTiming runs each
// dispatch in a compute pass of its own between two GPU timestamps.
// Not for: op semantics (kernels/*), the Backend contract (src/tensor/backend.ts).
import type { BackendBuffer } from '../../tensor/backend.js';
import type { GpuHandle } from './device.js';
import { envVar } from '../../io/env.js';

export const USAGE = { MAP_READ: 1, COPY_SRC: 4, COPY_DST: 8, STORAGE: 128 } as const;

export interface GpuBuffer extends BackendBuffer {
  readonly backend: 'webgpu';
  readonly gpu: GPUBuffer;
  /** Bytes allocated (a multiple of 4, at least 16). */
  readonly size: number;
  freed: boolean;
  /** Host copy of what was last written from JavaScript, while no kernel has written since (for readSync). */
  shadow: Uint8Array | null;
}

export interface Kernel {
  readonly name: string;
  readonly pipeline: GPUComputePipeline;
  readonly layout: GPUBindGroupLayout;
  /** Distinguishes kernels in the bind-group cache. */
  readonly id: number;
}

/** Grid of workgroups; x is split into (x, y) above the per-dimension limit. */
export type Grid = [number, number?, number?];

export class WebGpuError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'WebGpuError';
  }
}

const ARENA_BYTES = 1 << 20;
/**
 * Dispatches per submit by default: the GPU starts on the first ones while the rest are encoded.
 * Decode is bound by host encoding (~150 dispatches a step): smaller batches let the GPU finish
 * all but the last few while the host still encodes (GPT-2 small on the H200: 3.08 ms/token at 32,
 * 3.70 at 96; bench/RESULTS.md).
 */
const BATCH_DISPATCHES = 32;
/** Largest staging buffer kept for the next read. */
const STAGING_KEEP_BYTES = 1 << 20;
/** Bind groups kept for reuse (all are dropped when a buffer is destroyed). */
const BIND_CACHE_MAX = 8192;
const COMPUTE = 4; // GPUShaderStage.COMPUTE

/** Storage bindings of group 0 (binding 0 must be the read-only parameter words), from the WGSL. */
function bindingLayout(code: string): GPUBindGroupLayoutEntry[] {
  const entries: GPUBindGroupLayoutEntry[] = [];
  for (const m of code.matchAll(/@group\(0\)\s*@binding\((\d+)\)\s*var<storage,\s*(read_write|read)>/g)) {
    const binding = Number(m[1]);
    const type = m[2] === 'read' ? 'read-only-storage' : 'storage';
    entries.push({ binding, visibility: COMPUTE, buffer: { type, hasDynamicOffset: binding === 0 } });
  }
  if (!entries.some((e) => e.binding === 0 && e.buffer?.type === 'read-only-storage')) {
    throw new WebGpuError('webgpu backend: a kernel must declare its parameter words as `@group(0) @binding(0) var<storage, read>`');
  }
  return entries.sort((a, b) => a.binding - b.binding);
}

export class GpuRuntime {
  readonly device: GPUDevice;
  private readonly pipelines = new Map<string, Kernel>();
  private readonly pool = new Map<number, GPUBuffer[]>();
  private pooledBytes = 0;
  private readonly poolLimit: number;
  private encoder: GPUCommandEncoder | null = null;
  private pass: GPUComputePassEncoder | null = null;
  private dispatches = 0;
  private readonly arena: GPUBuffer;
  private readonly arenaHost = new Uint8Array(ARENA_BYTES);
  private arenaUsed = 0;
  private readonly align: number;
  private toDestroy: GPUBuffer[] = [];
  private readonly pendingChecks: Promise<void>[] = [];
  private firstError: string | null = null;
  private lost: string | null = null;
  private scoped = false;
  private readonly bindCache = new Map<string, GPUBindGroup>();
  /** Reuse bind groups (off: one per dispatch, for comparisons). */
  reuseBindGroups = true;
  /** Dispatches queued before a submit (ACTLAB_WEBGPU_BATCH overrides the default). */
  batchDispatches = BATCH_DISPATCHES;
  private readonly staging = new Map<number, GPUBuffer[]>();
  private readonly bufferIds = new WeakMap<GPUBuffer, number>();
  private nextId = 1;
  live = 0;
  /** GPU timestamps around each dispatch while a profile is taken (startTiming .. stopTiming). */
  private timing: { set: GPUQuerySet; names: string[]; max: number } | null = null;
  /** Counters for reports and benchmarks. */
  readonly stats = { dispatches: 0, submits: 0, reads: 0, readBytes: 0, writes: 0, writeBytes: 0, pipelines: 0, bindGroups: 0, buffersCreated: 0 };

  constructor(readonly handle: GpuHandle, opts: { poolLimitBytes?: number } = {}) {
    this.device = handle.device;
    this.align = Math.max(16, this.device.limits.minStorageBufferOffsetAlignment);
    this.poolLimit = opts.poolLimitBytes ?? 4 * 2 ** 30;
    const batch = Number(envVar('ACTLAB_WEBGPU_BATCH'));
    if (Number.isInteger(batch) && batch > 0) this.batchDispatches = batch;
    this.arena = this.device.createBuffer({ size: ARENA_BYTES, usage: USAGE.STORAGE | USAGE.COPY_DST, label: 'actlab params' });
    void this.device.lost.then((info) => {
      this.lost = `webgpu backend: device lost (${info.reason}): ${info.message || 'no message'}`;
    });
  }

  get maxBinding(): number {
    return this.device.limits.maxStorageBufferBindingSize;
  }

  // ---- errors ----

  /** Throws the first error seen so far (a lost device, a failed kernel, an allocation that ran out of memory). */
  check(what: string): void {
    if (this.lost) throw new WebGpuError(`${this.lost} (during ${what})`);
    if (this.firstError) {
      const e = this.firstError;
      this.firstError = null;
      throw new WebGpuError(e);
    }
  }

  private record(message: string): void {
    if (!this.firstError) this.firstError = message;
  }

  private openScopes(): void {
    if (this.scoped) return;
    this.device.pushErrorScope('internal');
    this.device.pushErrorScope('out-of-memory');
    this.device.pushErrorScope('validation');
    this.scoped = true;
  }

  private closeScopes(what: string): void {
    if (!this.scoped) return;
    this.scoped = false;
    const names = ['validation error', 'out of memory', 'internal error'];
    for (const kind of names) {
      this.pendingChecks.push(this.device.popErrorScope().then((err) => {
        if (err) this.record(`webgpu backend: ${kind} in ${what}: ${err.message}`);
      }, () => undefined));
    }
  }

  // ---- buffers ----

  private static sizeClass(n: number): number {
    const b = Math.max(16, Math.ceil(n / 4) * 4);
    if (b <= 4096) return Math.ceil(b / 256) * 256;
    const step = 2 ** (Math.floor(Math.log2(b)) - 3);
    return Math.ceil(b / step) * step;
  }

  alloc(byteLength: number): GpuBuffer {
    this.check('alloc');
    if (!Number.isInteger(byteLength) || byteLength < 0) throw new WebGpuError(`webgpu backend: cannot allocate ${byteLength} bytes`);
    const size = GpuRuntime.sizeClass(byteLength);
    const max = this.device.limits.maxBufferSize;
    if (size > max) {
      throw new WebGpuError(`webgpu backend: cannot allocate ${fmtBytes(byteLength)}: the adapter's largest buffer is ${fmtBytes(max)}`);
    }
    let gpu = this.pool.get(size)?.pop();
    if (gpu) {
      this.pooledBytes -= size;
    } else {
      this.device.pushErrorScope('out-of-memory');
      gpu = this.device.createBuffer({ size, usage: USAGE.STORAGE | USAGE.COPY_SRC | USAGE.COPY_DST });
      this.bufferIds.set(gpu, this.nextId++);
      this.stats.buffersCreated++;
      const inUse = this.live;
      this.pendingChecks.push(this.device.popErrorScope().then((err) => {
        if (err) this.record(`webgpu backend: out of memory allocating ${fmtBytes(byteLength)} (${fmtBytes(inUse)} already in use): ${err.message}`);
      }, () => undefined));
    }
    this.live += byteLength;
    return { backend: 'webgpu', byteLength, gpu, size, freed: false, shadow: null };
  }

  free(b: GpuBuffer): void {
    if (b.freed) throw new WebGpuError(`webgpu backend: double free of a ${b.byteLength}-byte buffer`);
    b.freed = true;
    b.shadow = null;
    this.live -= b.byteLength;
    if (this.pooledBytes + b.size <= this.poolLimit) {
      let list = this.pool.get(b.size);
      if (!list) this.pool.set(b.size, (list = []));
      // kept by descending id: pop() gives the lowest-numbered buffer
      const id = this.bufferIds.get(b.gpu)!;
      let lo = 0;
      let hi = list.length;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if (this.bufferIds.get(list[mid]!)! > id) lo = mid + 1;
        else hi = mid;
      }
      list.splice(lo, 0, b.gpu);
      this.pooledBytes += b.size;
    } else {
      this.toDestroy.push(b.gpu);
    }
  }

  /** Releases pooled buffers (after the queued work that may use them has been submitted). */
  trimPool(): void {
    for (const list of this.pool.values()) this.toDestroy.push(...list);
    this.pool.clear();
    this.pooledBytes = 0;
  }

  /** Uploads bytes; queued kernels are submitted first so that they see the old contents. */
  write(b: GpuBuffer, byteOffset: number, bytes: Uint8Array, splice: (b: GpuBuffer, off: number, bytes: Uint8Array) => void): void {
    this.check('write');
    this.stats.writes++;
    this.stats.writeBytes += bytes.byteLength;
    if (bytes.byteLength === 0) return;
    const end = byteOffset + bytes.byteLength;
    const alignedTail = end === b.byteLength || end % 4 === 0;
    if (byteOffset % 4 !== 0 || !alignedTail) {
      splice(b, byteOffset, bytes);
      return;
    }
    this.submit('write');
    const padded = bytes.byteLength % 4 === 0 ? bytes : (() => {
      const p = new Uint8Array(Math.ceil(bytes.byteLength / 4) * 4);
      p.set(bytes);
      return p;
    })();
    this.device.queue.writeBuffer(b.gpu, byteOffset, padded.buffer as ArrayBuffer, padded.byteOffset, padded.byteLength);
  }

  /** Copies a byte range to the host: submits the queued work, then maps a staging buffer. */
  async read(b: GpuBuffer, byteOffset: number, byteLength: number): Promise<Uint8Array> {
    this.check('read');
    this.stats.reads++;
    this.stats.readBytes += byteLength;
    if (byteLength === 0) return new Uint8Array(0);
    const start = byteOffset & ~3;
    const end = Math.min(b.size, Math.ceil((byteOffset + byteLength) / 4) * 4);
    const stagingSize = GpuRuntime.sizeClass(end - start);
    const staging = this.staging.get(stagingSize)?.pop() ?? this.device.createBuffer({ size: stagingSize, usage: USAGE.MAP_READ | USAGE.COPY_DST });
    this.endPass();
    this.openScopes();
    this.enc().copyBufferToBuffer(b.gpu, start, staging, 0, end - start);
    this.submit('read');
    try {
      await staging.mapAsync(1, 0, end - start);
    } catch (e) {
      await this.settle();
      this.check('read');
      throw new WebGpuError(`webgpu backend: reading ${fmtBytes(byteLength)} back failed: ${(e as Error).message}`);
    }
    const out = new Uint8Array(staging.getMappedRange(0, end - start)).slice(byteOffset - start, byteOffset - start + byteLength);
    staging.unmap();
    if (stagingSize <= STAGING_KEEP_BYTES) {
      let list = this.staging.get(stagingSize);
      if (!list) this.staging.set(stagingSize, (list = []));
      list.push(staging);
    } else staging.destroy();
    await this.settle();
    this.check('read');
    return out;
  }

  // ---- kernels ----

  kernel(name: string, code: string): Kernel {
    const have = this.pipelines.get(code);
    if (have) return have;
    const entries = bindingLayout(code);
    // every binding is a storage buffer: past the device's limit Dawn would fail later, in a batch
    const max = this.device.limits.maxStorageBuffersPerShaderStage;
    if (entries.length > max) throw new WebGpuError(`webgpu backend: kernel '${name}' binds ${entries.length} storage buffers; this device allows ${max} a kernel`);
    const module = this.device.createShaderModule({ code, label: name });
    const layout = this.device.createBindGroupLayout({ entries, label: name });
    const pipelineLayout = this.device.createPipelineLayout({ bindGroupLayouts: [layout] });
    const pipeline = this.device.createComputePipeline({ layout: pipelineLayout, compute: { module, entryPoint: 'main' }, label: name });
    const k = { name, pipeline, layout, id: this.nextId++ };
    this.pipelines.set(code, k);
    this.stats.pipelines++;
    return k;
  }

  private enc(): GPUCommandEncoder {
    if (!this.encoder) this.encoder = this.device.createCommandEncoder();
    return this.encoder;
  }

  private endPass(): void {
    if (this.pass) {
      this.pass.end();
      this.pass = null;
    }
  }

  /**
   * Queues one dispatch: binding 0 is the parameter words, bindings 1.. the buffers in order.
   * The grid's x may exceed the per-dimension limit; it is then folded into y (kernels compute
   * their linear workgroup index as `wid.x + wid.y * nwg.x`).
   */
  dispatch(k: Kernel, buffers: readonly GPUBuffer[], params: Uint32Array, grid: Grid): void {
    this.check(`kernel ${k.name}`);
    let [x, y = 1, z = 1] = grid;
    if (x === 0 || y === 0 || z === 0) return;
    const lim = this.device.limits.maxComputeWorkgroupsPerDimension;
    if (x > lim) {
      if (y !== 1) throw new WebGpuError(`webgpu backend: kernel ${k.name}: grid ${grid.join('x')} too large`);
      y = Math.ceil(x / lim);
      x = lim;
    }
    if (y > lim || z > lim) throw new WebGpuError(`webgpu backend: kernel ${k.name}: grid ${grid.join('x')} too large`);
    // parameter bindings come in sizes of 64 bytes (part of the bind group's key)
    const bytes = Math.max(64, Math.ceil(params.byteLength / 64) * 64);
    if (this.arenaUsed + bytes > ARENA_BYTES) this.submit('params arena full');
    const off = this.arenaUsed;
    this.arenaHost.set(new Uint8Array(params.buffer, params.byteOffset, params.byteLength), off);
    this.arenaUsed = Math.ceil((off + bytes) / this.align) * this.align;
    this.openScopes();
    const group = this.bindGroup(k, buffers, bytes);
    const t = this.timing && this.timing.names.length < this.timing.max ? this.timing : null;
    if (t) { // a pass of its own, timestamps at its start and end
      this.endPass();
      const i = 2 * t.names.length;
      this.pass = this.enc().beginComputePass({ timestampWrites: { querySet: t.set, beginningOfPassWriteIndex: i, endOfPassWriteIndex: i + 1 } });
      t.names.push(k.name);
    }
    if (!this.pass) this.pass = this.enc().beginComputePass();
    this.pass.setPipeline(k.pipeline);
    this.pass.setBindGroup(0, group, [off]);
    this.pass.dispatchWorkgroups(x, y, z);
    if (t) this.endPass();
    this.stats.dispatches++;
    if (++this.dispatches >= this.batchDispatches) this.submit('batch');
  }

  private bindGroup(k: Kernel, buffers: readonly GPUBuffer[], paramBytes: number): GPUBindGroup {
    let key = `${k.id}:${paramBytes}`;
    for (const b of buffers) {
      let id = this.bufferIds.get(b);
      if (id === undefined) this.bufferIds.set(b, (id = this.nextId++));
      key += `:${id}`;
    }
    let group = this.reuseBindGroups ? this.bindCache.get(key) : undefined;
    if (!group) {
      const entries: GPUBindGroupEntry[] = [{ binding: 0, resource: { buffer: this.arena, offset: 0, size: paramBytes } }];
      buffers.forEach((buffer, i) => entries.push({ binding: i + 1, resource: { buffer } }));
      group = this.device.createBindGroup({ layout: k.layout, entries });
      this.stats.bindGroups++;
      if (this.bindCache.size >= BIND_CACHE_MAX) this.bindCache.clear();
      this.bindCache.set(key, group);
    }
    return group;
  }

  /** Submits what is queued (parameters first). */
  submit(what = 'submit'): void {
    this.endPass();
    if (this.encoder) {
      if (this.arenaUsed > 0) this.device.queue.writeBuffer(this.arena, 0, this.arenaHost.buffer, 0, this.arenaUsed);
      this.device.queue.submit([this.encoder.finish()]);
      this.stats.submits++;
      this.encoder = null;
    }
    this.closeScopes(what);
    this.arenaUsed = 0;
    this.dispatches = 0;
    if (this.toDestroy.length) this.bindCache.clear();
    for (const b of this.toDestroy) b.destroy();
    this.toDestroy = [];
  }

  /** Starts a profile: up to `max` following dispatches each run in a pass of their own between two GPU timestamps. */
  startTiming(max = 2048): void { // 4096 queries: the most a query set holds
    if (!this.handle.features.timestamps) throw new WebGpuError('webgpu backend: this device offers no timestamp-query: no GPU profile');
    this.submit('timing');
    this.timing?.set.destroy();
    this.timing = { set: this.device.createQuerySet({ type: 'timestamp', count: 2 * max }), names: [], max };
  }

  /** Ends the profile: each timed dispatch's kernel name and GPU milliseconds, in order. */
  async stopTiming(): Promise<{ name: string; ms: number }[]> {
    const t = this.timing;
    if (!t) throw new WebGpuError('webgpu backend: stopTiming without startTiming');
    this.timing = null;
    const n = 2 * t.names.length;
    if (n === 0) { t.set.destroy(); return []; }
    const resolved = this.device.createBuffer({ size: n * 8, usage: 0x200 | USAGE.COPY_SRC }); // QUERY_RESOLVE
    const host = this.device.createBuffer({ size: n * 8, usage: USAGE.MAP_READ | USAGE.COPY_DST });
    this.endPass(); // dispatches past `max` may have left one open
    this.enc().resolveQuerySet(t.set, 0, n, resolved, 0);
    this.enc().copyBufferToBuffer(resolved, 0, host, 0, n * 8);
    await this.flush();
    await host.mapAsync(1); // GPUMapMode.READ
    const ts = new BigUint64Array(host.getMappedRange().slice(0));
    host.unmap();
    for (const b of [resolved, host]) b.destroy();
    t.set.destroy();
    return t.names.map((name, i) => ({ name, ms: Number(ts[2 * i + 1]! - ts[2 * i]!) / 1e6 }));
  }

  private async settle(): Promise<void> {
    const checks = this.pendingChecks.splice(0);
    await Promise.all(checks);
  }

  /** Waits until all queued work has run; throws the first error seen. */
  async flush(): Promise<void> {
    this.check('flush');
    this.submit('flush');
    await this.device.queue.onSubmittedWorkDone();
    await this.settle();
    this.check('flush');
  }

  dispose(): void {
    this.submit('dispose');
    this.trimPool();
    for (const list of this.staging.values()) for (const b of list) b.destroy();
    this.staging.clear();
    this.submit('dispose');
    this.arena.destroy();
    this.device.destroy();
  }
}

export function fmtBytes(n: number): string {
  if (n < 1024) return `${n} bytes`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n / 1024;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) { v /= 1024; u++; }
  return `${n} bytes (${v.toFixed(v < 10 ? 2 : 1)} ${units[u]})`;
}
