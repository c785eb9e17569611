// What a native wasm kernel sees of the backend: the shared memory, the thread pool, buffer
// addresses, reusable scratch, and the reference path for cases it does not handle.
// Not for: buffer ownership rules (backend.ts).
import type { BackendBuffer, OpDesc, View } from '../../tensor/backend.js';
import type { WasmMemory } from './memory.js';
import type { ThreadPool } from './pool.js';

export interface WasmRuntime {
  readonly memory: WasmMemory;
  readonly pool: ThreadPool;
  /** Threads a large job should use (the pool's size unless limited by options). */
  readonly threads: number;
  /** Bytes of a host weight copied into the memory per kernel call. */
  readonly weightPanelBytes: number;
  /** Address of a buffer in the shared memory. */
  ptrOf(buffer: BackendBuffer): number;
  /** The bytes of a buffer kept outside the shared memory (host weights), or null for one inside it. */
  hostBytes(buffer: BackendBuffer): Uint8Array | null;
  /** A named scratch area of at least `byteLength` bytes, kept between calls. */
  scratch(name: string, byteLength: number): number;
  /** Temporary buffer; free with `release`. */
  temp(byteLength: number): BackendBuffer;
  release(buffer: BackendBuffer): void;
  runReference(op: OpDesc, inputs: readonly View[], outputs: readonly View[]): void;
}

/** A kernel implemented in wasm for one op; `handles` may decline views it does not cover. */
export interface NativeKernel<O extends OpDesc = OpDesc> {
  /** Exported wasm functions it uses (for listing). */
  readonly wasmKernels: readonly string[];
  handles(op: O, inputs: readonly View[], outputs: readonly View[]): boolean;
  run(rt: WasmRuntime, op: O, inputs: readonly View[], outputs: readonly View[]): void;
}
