// The WebAssembly backend: buffers live in one shared WebAssembly.Memory, ops with a native kernel
// (kernels/index.ts) run WebAssembly SIMD code on a thread pool, every other op runs the reference
// kernels on views of that memory. Synchronous: `exec` returns when the work is done.
// In a browser, threads need a cross-origin isolated page, and the calling thread must be allowed
// to block: on a browser's main thread the backend runs single-threaded; create it inside a Web
// Worker to use several threads.
// Weights (`allocWeights`: quantized blocks) go into the memory up to `heapWeightBytes`, past it
// into host memory (JavaScript ArrayBuffers), so that the weights of a model are not bounded by
// the 4 GiB a wasm32 memory holds: qmatmul streams such a weight into the memory in row panels,
// every other op on it runs the reference kernel on its host bytes.
// Large f32 matrix products go to a native GEMM when the platform has one (native-gemm.ts: ONNX
// Runtime's MLAS in Node); without it, or in a browser, they run on the wasm kernel, said once.
// With it the backend prefers the fused 'linear' op (product, bias and activation in one native
// call); a linear op it does not take natively runs as matmul, add and unary on its kernels.
import type { Backend, BackendBuffer, FusedBlockDesc, FusedChainDesc, FusedDecodeDesc, OpDesc, OpName, View } from '../../tensor/backend.js';
import { tryNativeDecode } from './native-decode.js';
import { checkByteRange, ownBuffer, settled } from '../../tensor/backend.js';
import { hasReferenceKernel, runReference } from '../js/kernels.js';
import { detectFeatures, base64ToBytes, isNode, type WasmFeatures } from './features.js';
import { KERNEL_MODULES } from './generated/kernels.js';
import { NATIVE_KERNELS, nativeOpNames } from './kernels/index.js';
import { WasmMemory } from './memory.js';
import { ThreadPool, type KernelModule } from './pool.js';
import type { NativeKernel, WasmRuntime } from './runtime.js';
import { canBlock, hardwareThreads } from './workers.js';
import { runKVAttentionWasm } from './ops/kv-attention.js';
import { runKVEncodeWasm } from './ops/kv-encode.js';
import type { KVAttentionArgs, KVEncodeArgs } from '../../tensor/packed-kv.js';
import { DEFAULT_NATIVE_GEMM_POLICY, tryNativeAttention, tryNativeBlock, tryNativeChain, tryNativeLinear, tryNativeMatmul, tryNativeQmatmul, type GemmActivation, type NativeGemm, type NativeGemmPolicy } from './native-gemm.js';
import { envVar } from '../../io/env.js';
import { byteSize } from '../../tensor/dtype.js';

export interface WasmBuffer extends BackendBuffer {
  readonly backend: 'wasm';
  /** Address in the memory (-1 for a host buffer). */
  readonly ptr: number;
  /** The bytes of a weight kept outside the memory. */
  readonly host?: Uint8Array;
  /** Counted against heapWeightBytes. */
  readonly heapWeight?: boolean;
  freed: boolean;
  /** Bumped when the buffer is written, so that a native GEMM knows when a packed weight went stale. */
  version: number;
}

/** Default cap on weight bytes inside the memory: half of a wasm32 memory, the rest left to activations, caches and scratch. */
export const HEAP_WEIGHT_BYTES = 2 * 2 ** 30;

export interface WasmBackendOptions {
  /** Threads including the calling one; default: all hardware threads (1 on a browser main thread). */
  threads?: number;
  /** Use relaxed-SIMD kernels when the runtime has them (default true; ACTLAB_WASM_RELAXED=0 turns off). */
  relaxed?: boolean;
  /**
   * Fill every new buffer with 0xFF bytes (NaN as f32) instead of leaving what the memory held, so
   * that a kernel which leaves part of its output unwritten fails a comparison. For tests.
   */
  poison?: boolean;
  /** Cap on the wasm memory in bytes (default: the 4 GiB a wasm32 memory can address). */
  maxBytes?: number;
  /**
   * Weight bytes (`allocWeights`) kept inside the memory; weights past it live in host memory and
   * are streamed in by the products that read them (default HEAP_WEIGHT_BYTES, 2 GiB; 0: every
   * weight outside, Infinity: all inside).
   */
  heapWeightBytes?: number;
  /** Bytes of a host weight copied into the memory per kernel call (default 8 MiB). */
  weightPanelBytes?: number;
  /**
   * Large matrix products on a native GEMM: default (undefined) the platform's when it has one;
   * false never (ACTLAB_NATIVE_GEMM=0 does the same); or this one (tests, embedders).
   */
  nativeGemm?: NativeGemm | false;
  /** When a product counts as large (DEFAULT_NATIVE_GEMM_POLICY where not given). */
  nativeGemmPolicy?: Partial<NativeGemmPolicy>;
}

/** The native GEMM a backend uses, or why it has none. */
export type WasmNativeGemm = { gemm: NativeGemm; policy: NativeGemmPolicy } | { gemm: null; reason: string };

export class WasmBackend implements Backend {
  readonly name = 'wasm';
  readonly synchronous = true;
  private live = 0;
  private heapWeights = 0;
  private hostWeights = 0;
  private readonly scratchAreas = new Map<string, { ptr: number; size: number }>();
  private disposed = false;
  /** What native kernels see; also used by tests and benchmarks. */
  readonly runtime: WasmRuntime;

  constructor(
    readonly memory: WasmMemory,
    readonly pool: ThreadPool,
    readonly features: WasmFeatures,
    private readonly poison = false,
    private readonly heapWeightBytes = HEAP_WEIGHT_BYTES,
    weightPanelBytes = 8 << 20,
    /** Large products' native GEMM, or why there is none. */
    readonly native: WasmNativeGemm = { gemm: null, reason: 'not asked for' },
  ) {
    const self = this;
    this.runtime = {
      memory, pool, threads: pool.threads, weightPanelBytes,
      ptrOf: (b) => {
        const w = self.own(b, 'kernel');
        if (w.host) throw new Error(`wasm backend: a kernel asked for the address of a ${w.byteLength}-byte weight kept in host memory`);
        return w.ptr;
      },
      hostBytes: (b) => self.own(b, 'kernel').host ?? null,
      scratch: (name, n) => self.scratch(name, n),
      temp: (n) => self.alloc(n),
      release: (b) => self.free(b),
      runReference: (op, inputs, outputs) => runReference(op, inputs, outputs, (b) => self.bytesOf(b, op.op)),
    };
  }

  /** Linear layers as one op while a native GEMM runs them (bias and activation in the same call). */
  get prefersFusedLinear(): boolean {
    return this.native.gemm !== null;
  }

  /**
   * A whole block on the native GEMM's runtime (Backend.fusedBlock): present only while the native
   * GEMM runs blocks and the policy allows them, so models ask nothing (no hook-point listing) otherwise.
   */
  get fusedBlock(): ((desc: FusedBlockDesc, inputs: readonly View[], output: View) => boolean) | undefined {
    const n = this.native;
    if (!n.gemm?.block || !n.policy.blocks) return undefined;
    return this.runBlock;
  }

  private readonly runBlock = (desc: FusedBlockDesc, inputs: readonly View[], output: View): boolean => {
    this.alive('fusedBlock');
    const { gemm, policy } = this.native as { gemm: NativeGemm; policy: NativeGemmPolicy };
    const versionOf = (b: BackendBuffer) => (b as WasmBuffer).version;
    if (!tryNativeBlock(this.runtime, gemm, policy, versionOf, desc, inputs, output)) return false;
    this.touch(output.buffer);
    return true;
  };

  /** Consecutive whole blocks in one native call (Backend.fusedBlocks), under the same conditions as fusedBlock. */
  get fusedBlocks(): ((desc: FusedChainDesc, inputs: readonly View[], outputs: readonly View[]) => boolean) | undefined {
    const n = this.native;
    if (!n.gemm?.chain || !n.policy.blocks) return undefined;
    return this.runChain; // one block per call unless policy.chains (read per call)
  }

  private readonly runChain = (desc: FusedChainDesc, inputs: readonly View[], outputs: readonly View[]): boolean => {
    this.alive('fusedBlocks');
    const { gemm, policy } = this.native as { gemm: NativeGemm; policy: NativeGemmPolicy };
    const versionOf = (b: BackendBuffer) => (b as WasmBuffer).version;
    if (!tryNativeChain(this.runtime, gemm, policy, versionOf, desc, inputs, outputs)) return false;
    for (const y of outputs) this.touch(y.buffer);
    return true;
  };

  /** A step of consecutive blocks over their KV caches in one native call (Backend.fusedDecode): present while the native GEMM runs them and the policy allows. */
  get fusedDecode(): ((desc: FusedDecodeDesc, inputs: readonly View[], outputs: readonly View[]) => boolean) | undefined {
    const n = this.native;
    return n.gemm?.decode && n.policy.decode ? this.runDecode : undefined;
  }

  private readonly runDecode = (desc: FusedDecodeDesc, inputs: readonly View[], outputs: readonly View[]): boolean => {
    this.alive('fusedDecode');
    const { gemm, policy } = this.native as { gemm: NativeGemm; policy: NativeGemmPolicy };
    this.pool.park(); // the wasm workers' spinning would take a core from ORT's threads
    if (!tryNativeDecode(this.runtime, gemm, policy, (b) => (b as WasmBuffer).version, desc, inputs, outputs)) return false;
    // outputs, then each cache once (the library expects its cache at version + 1)
    for (const y of outputs) this.touch(y.buffer);
    for (const c of inputs.slice(1 + 12 * desc.blocks.length, 1 + 13 * desc.blocks.length)) this.touch(c.buffer);
    return true;
  };

  alloc(byteLength: number): WasmBuffer {
    this.alive('alloc');
    const ptr = this.memory.alloc(byteLength);
    if (this.poison) this.memory.bytes().fill(0xff, ptr, ptr + byteLength);
    this.live += byteLength;
    return { backend: 'wasm', byteLength, ptr, freed: false, version: 0 };
  }

  /** A weight's memory: inside the wasm memory while under heapWeightBytes, else in host memory. */
  allocWeights(byteLength: number): WasmBuffer {
    this.alive('allocWeights');
    if (this.heapWeights + byteLength <= this.heapWeightBytes) {
      const b = { ...this.alloc(byteLength), heapWeight: true };
      this.heapWeights += byteLength;
      return b;
    }
    let host: Uint8Array;
    try {
      host = new Uint8Array(byteLength);
    } catch (e) {
      throw new Error(`wasm backend: cannot allocate ${byteLength} bytes of host memory for a weight (${(e as Error).message})`);
    }
    this.live += byteLength;
    this.hostWeights += byteLength;
    return { backend: 'wasm', byteLength, ptr: -1, host, freed: false, version: 0 };
  }

  free(buffer: BackendBuffer): void {
    const b = this.own(buffer, 'free');
    b.freed = true;
    this.native.gemm?.forget(b);
    this.live -= b.byteLength;
    if (b.host) { this.hostWeights -= b.byteLength; return; }
    if (b.heapWeight) this.heapWeights -= b.byteLength;
    this.memory.free(b.ptr);
  }

  write(buffer: BackendBuffer, byteOffset: number, bytes: Uint8Array): void {
    const b = this.own(buffer, 'write');
    this.checkRange(b, byteOffset, bytes.byteLength, 'write');
    this.touch(b);
    if (b.host) b.host.set(bytes, byteOffset);
    else this.memory.bytes().set(bytes, b.ptr + byteOffset);
  }

  read(buffer: BackendBuffer, byteOffset: number, byteLength: number): Promise<Uint8Array> {
    return settled(() => this.readSync(buffer, byteOffset, byteLength));
  }

  readSync(buffer: BackendBuffer, byteOffset: number, byteLength: number): Uint8Array {
    const b = this.own(buffer, 'read');
    this.checkRange(b, byteOffset, byteLength, 'read');
    if (b.host) return b.host.slice(byteOffset, byteOffset + byteLength);
    return this.memory.bytes().slice(b.ptr + byteOffset, b.ptr + byteOffset + byteLength);
  }

  supportsOp(op: OpDesc, inputs: readonly View[], outputs: readonly View[]): boolean {
    if (!hasReferenceKernel(op)) return false;
    for (const v of inputs) if (v.buffer.backend !== 'wasm') return false;
    for (const v of outputs) if (v.buffer.backend !== 'wasm') return false;
    return true;
  }

  exec(op: OpDesc, inputs: readonly View[], outputs: readonly View[]): void {
    this.alive(`exec '${op.op}'`);
    if (op.op === 'attention' && op.tokenMajor) {
      for (const o of outputs) this.touch(o.buffer);
      if (this.native.gemm && tryNativeAttention(this.runtime, this.native.gemm, this.native.policy, op, inputs, outputs)) return;
      // head-major [b, hq, tq, dv] into a temporary, then copied into y [b, tq, hq, dv] (the same
      // numbers as head-major output: the GEMM path's blocking differs for a strided y)
      const y = outputs[0]!;
      const [B, TQ, HQ, DV] = y.shape as [number, number, number, number];
      const tmp = this.runtime.temp(Math.max(4, byteSize(y.dtype, B * HQ * TQ * DV)));
      try {
        const yh: View = { buffer: tmp, dtype: y.dtype, shape: [B, HQ, TQ, DV], strides: [HQ * TQ * DV, TQ * DV, DV, 1], offset: 0 };
        this.exec({ ...op, tokenMajor: false }, inputs, [yh, ...outputs.slice(1)]);
        const yt: View = { ...yh, shape: [B, TQ, HQ, DV], strides: [HQ * TQ * DV, DV, TQ * DV, 1] };
        this.exec({ op: 'copy' }, [yt], [y]);
      } finally {
        this.runtime.release(tmp);
      }
      return;
    }
    for (const o of outputs) this.touch(o.buffer);
    const { gemm } = this.native;
    if (gemm) {
      const { policy } = this.native;
      const versionOf = (b: BackendBuffer) => (b as WasmBuffer).version;
      if (op.op === 'matmul' && tryNativeMatmul(this.runtime, gemm, policy, versionOf, op, inputs, outputs)) return;
      if (op.op === 'attention' && tryNativeAttention(this.runtime, gemm, policy, op, inputs, outputs)) return;
      if (op.op === 'qmatmul' && this.nativeReaches(op, inputs, outputs) && (this.pool.park(), tryNativeQmatmul(this.runtime, gemm, policy, versionOf, op, inputs, outputs))) return;
      if (op.op === 'qlinear' && this.nativeReaches(op, inputs, outputs)) {
        // product and bias on MLAS, the activation too where the library has it (else on wasm, in place)
        const act = !!op.act && gemm.activations.has(op.act as GemmActivation);
        if (tryNativeQmatmul(this.runtime, gemm, policy, versionOf, op, inputs, outputs, act)) {
          if (op.act && !act) this.exec({ op: 'unary', fn: op.act }, outputs, outputs);
          return;
        }
      }
      if (op.op === 'linear') {
        const act = !!op.act && gemm.activations.has(op.act as GemmActivation);
        if (tryNativeLinear(this.runtime, gemm, policy, versionOf, op, inputs, outputs, act)) {
          if (op.act && !act) this.exec({ op: 'unary', fn: op.act }, outputs, outputs);
          return;
        }
        return this.linearUnfused(op, inputs, outputs);
      }
    }
    const native = NATIVE_KERNELS[op.op] as NativeKernel | undefined;
    if (native && this.nativeReaches(op, inputs, outputs) && native.handles(op, inputs, outputs)) native.run(this.runtime, op, inputs, outputs);
    else this.runtime.runReference(op, inputs, outputs);
  }

  /** y = act(x · w + bias) as matmul, add and unary, each in place on y (a product too small for the native GEMM). */
  private linearUnfused(op: Extract<OpDesc, { op: 'linear' }>, inputs: readonly View[], outputs: readonly View[]): void {
    const [x, w, bias] = inputs as [View, View, View];
    const y = outputs[0]!;
    if (x.shape.length !== 2 || y.shape.length !== 2 || bias.shape.length !== 1) return this.runtime.runReference(op, inputs, outputs);
    this.exec({ op: 'matmul', transA: false, transB: op.transB }, [x, w], [y]);
    const rows: View = { ...bias, shape: y.shape, strides: [0, bias.strides[0]!] }; // bias broadcast over the rows
    this.exec({ op: 'binary', fn: 'add' }, [y, rows], [y]);
    if (op.act) this.exec({ op: 'unary', fn: op.act }, [y], [y]);
  }

  /** Native kernels address the memory only; a host weight is streamed in by qmatmul and qlinear (their input 1), read by the reference elsewhere. */
  private nativeReaches(op: OpDesc, inputs: readonly View[], outputs: readonly View[]): boolean {
    const host = (v: View) => !!(v.buffer as WasmBuffer).host;
    if (!inputs.some(host) && !outputs.some(host)) return true;
    return (op.op === 'qmatmul' || op.op === 'qlinear') && !host(inputs[0]!) && !host(inputs[2] ?? inputs[0]!) && !outputs.some(host);
  }

  /** Whether `exec` would run this op natively (else on the reference kernels). */
  isNative(op: OpDesc, inputs: readonly View[], outputs: readonly View[]): boolean {
    const native = NATIVE_KERNELS[op.op] as NativeKernel | undefined;
    return !!native && this.nativeReaches(op, inputs, outputs) && native.handles(op, inputs, outputs);
  }

  /** Attention over a packed KV cache where its codes lie (src/models/kvquant/cache.ts; not a contract op). */
  runKVAttention(args: KVAttentionArgs): void {
    this.alive('kv attention');
    this.touch(args.y.buffer);
    runKVAttentionWasm(this.runtime, args);
  }

  /** A packed KV-cache stream's new rows quantized where the stream lies (src/models/kvquant/cache.ts; not a contract op). */
  runKVEncode(args: KVEncodeArgs): { rows: number; nOut: number } {
    this.alive('kv encode');
    return runKVEncodeWasm(this.runtime, args);
  }

  /** Ops that have a native wasm kernel (for some dtypes / layouts). */
  nativeOps(): readonly OpName[] {
    return nativeOpNames();
  }

  flush(): Promise<void> {
    return Promise.resolve();
  }

  memoryInUse(): number {
    return this.live;
  }

  info(): Record<string, string | number | boolean> {
    return {
      kind: 'WebAssembly SIMD128',
      threads: this.pool.threads,
      relaxedSimd: this.features.relaxed,
      ...(this.features.relaxedNote ? { relaxedNote: this.features.relaxedNote } : {}),
      memoryBytes: this.memory.byteLength(),
      hostWeightBytes: this.hostWeights,
      nativeOps: this.nativeOps().join(','),
      nativeGemm: this.native.gemm ? this.native.gemm.name : `off (${this.native.reason})`,
      ...(this.native.gemm?.qgemmTypes?.size ? { nativeQuantTypes: [...this.native.gemm.qgemmTypes].join(',') } : {}),
      ...this.nativeHeld(),
    };
  }

  /** The native GEMM's host memory (packed weights, staging), in MB, where it says. */
  private nativeHeld(): Record<string, string | number> {
    const held = this.native.gemm?.heldBytes?.();
    if (!held) return {};
    const mb = (n: number) => Math.round(n / 2 ** 20);
    return { nativeGemmPackedMB: mb(held.packed), nativeGemmStagingMB: mb(held.staging), ...(held.note ? { nativeGemmNote: held.note } : {}) };
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.native.gemm?.dispose();
    this.pool.dispose();
    this.live = 0;
  }

  private touch(buffer: BackendBuffer): void {
    (buffer as WasmBuffer).version++; // a field, not a WeakMap: this runs for every output of every op
  }

  private bytesOf(buffer: BackendBuffer, what: string): Uint8Array {
    const b = this.own(buffer, `exec '${what}'`);
    if (b.host) return b.host;
    return this.memory.bytes().subarray(b.ptr, b.ptr + b.byteLength);
  }

  private scratch(name: string, byteLength: number): number {
    const have = this.scratchAreas.get(name);
    if (have && have.size >= byteLength) return have.ptr;
    if (have) this.memory.free(have.ptr);
    const size = Math.max(byteLength, have ? have.size * 2 : 0);
    const ptr = this.memory.alloc(size);
    this.scratchAreas.set(name, { ptr, size });
    return ptr;
  }

  private alive(what: string): void {
    if (this.disposed) throw new Error(`wasm backend: ${what} after dispose`);
  }

  private own(buffer: BackendBuffer, what: string): WasmBuffer {
    return ownBuffer<WasmBuffer>('wasm', buffer, 'ptr', what);
  }

  private checkRange(b: WasmBuffer, byteOffset: number, byteLength: number, what: string): void {
    checkByteRange('wasm', b, byteOffset, byteLength, what);
  }
}

/** Compiles the kernels (relaxed SIMD when available), starts the thread pool. */
export async function createWasmBackend(opts: WasmBackendOptions = {}): Promise<WasmBackend> {
  const features = await detectFeatures(opts.relaxed);
  if (!features.simd) throw new Error('wasm backend: this runtime has no WebAssembly SIMD128');
  if (!features.threads) throw new Error('wasm backend: this runtime has no shared WebAssembly memory (threads)');
  let threads = opts.threads ?? (await hardwareThreads());
  if (!Number.isInteger(threads) || threads < 1) throw new Error(`wasm backend: threads must be a positive integer, got ${opts.threads}`);
  if (!canBlock()) threads = 1; // a browser main thread may not Atomics.wait
  const modules: KernelModule[] = await Promise.all(KERNEL_MODULES.map(async (m) => ({
    name: m.name,
    exportNames: m.exportNames,
    module: await WebAssembly.compile(base64ToBytes(features.relaxed ? m.relaxed : m.simd)),
  })));
  if (opts.maxBytes !== undefined && !(opts.maxBytes > 0)) throw new Error(`wasm backend: maxBytes must be a positive number, got ${opts.maxBytes}`);
  if (opts.heapWeightBytes !== undefined && !(opts.heapWeightBytes >= 0)) throw new Error(`wasm backend: heapWeightBytes must be a number >= 0, got ${opts.heapWeightBytes}`);
  const memory = new WasmMemory(undefined, opts.maxBytes);
  const pool = await ThreadPool.create(memory, modules, threads);
  if (opts.weightPanelBytes !== undefined && !(opts.weightPanelBytes >= 1)) throw new Error(`wasm backend: weightPanelBytes must be a number >= 1, got ${opts.weightPanelBytes}`);
  const native = await nativeGemmFor(opts, threads);
  return new WasmBackend(memory, pool, features, opts.poison, opts.heapWeightBytes, opts.weightPanelBytes, native);
}

const PLATFORM_MODULE = '../../io/platform.js';
let toldNoNative = false;

async function nativeGemmFor(opts: WasmBackendOptions, threads: number): Promise<WasmNativeGemm> {
  const policy = { ...DEFAULT_NATIVE_GEMM_POLICY, ...opts.nativeGemmPolicy };
  if (envVar('ACTLAB_NATIVE_DECODE') === '0') policy.decode = false; // decode steps op by op (A/B measurements)
  if (opts.nativeGemm === false) return { gemm: null, reason: 'turned off by the nativeGemm option' };
  if (opts.nativeGemm) return { gemm: opts.nativeGemm, policy };
  if (envVar('ACTLAB_NATIVE_GEMM') === '0') return { gemm: null, reason: 'turned off by ACTLAB_NATIVE_GEMM=0' };
  if (!isNode()) return { gemm: null, reason: 'a browser has none' }; // quietly: the browser never has one
  // a computed specifier: browser bundles of the wasm backend must not pull in the platform adapters
  const platform = await ((await import(/* @vite-ignore */ PLATFORM_MODULE)) as typeof import('../../io/platform.js')).getPlatform();
  const load = platform.nativeGemm ? await platform.nativeGemm(threads) : { gemm: null, reason: `the ${platform.name} platform has none` };
  if (load.gemm) return { gemm: load.gemm, policy };
  if (!toldNoNative) {
    toldNoNative = true;
    console.warn(`actlab: no native GEMM (${load.reason}); large matrix products run on wasm SIMD`);
  }
  return load;
}
