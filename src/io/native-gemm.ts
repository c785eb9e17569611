// The native GEMM capability a platform may offer the wasm backend (Node: onnxruntime-node's MLAS,
// src/io/node/native-gemm.ts; the browser has none). Only the contract lives here; which products
// go native is decided in src/backends/wasm/native-gemm.ts.

/** B of a product, when it is read from a buffer the backend tracks (a weight, usually). */
export interface GemmWeight {
  /** The buffer B lies in: the same key, version and layout mean the same values. */
  readonly key: object;
  /** Bumped by the backend whenever anything writes into that buffer. */
  readonly version: number;
  /** B's place and layout in that buffer. */
  readonly layout: string;
}

/**
 * One row-major f32 product C = op(A)·op(B), with op(A) [M, K] and op(B) [K, N]. `a`, `b`, `c` are
 * tight views of the backend's memory: A stored [M, K] (or [K, M] when transA), B stored [K, N]
 * (or [N, K] when transB), C [M, N], written by the call.
 */
export interface GemmCall {
  readonly M: number;
  readonly N: number;
  readonly K: number;
  readonly a: Float32Array;
  readonly transA: boolean;
  readonly b: Float32Array;
  readonly transB: boolean;
  readonly c: Float32Array;
  readonly weight?: GemmWeight;
}

export interface NativeGemm {
  /** What runs the products, e.g. 'onnxruntime-node 1.30.0 (MLAS)'. */
  readonly name: string;
  /** Computes one product synchronously; may keep B packed across calls while `weight` is unchanged. */
  gemm(call: GemmCall): void;
  /** Drops whatever is kept for products whose B lies in `key` (it was freed). */
  forget(key: object): void;
  /** How many weights it holds packed (for tests and `info()`). */
  packedCount(): number;
  dispose(): void;
}

/** What the platform gives: the capability, or why there is none. */
export type NativeGemmLoad = { gemm: NativeGemm } | { gemm: null; reason: string };

