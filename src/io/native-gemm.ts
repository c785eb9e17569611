// The native GEMM capability a platform may offer the wasm backend (Node: onnxruntime-node's MLAS,
// src/io/node/native-gemm.ts; the browser has none). Only the contract lives here; which products
// go native is decided in src/backends/wasm/native-gemm.ts.
import type { FusedBlockValue } from '../tensor/backend.js';
import type { DecodeCall } from './native-decode.js';

/** B of a product, when it is read from a buffer the backend tracks (a weight, usually). */
export interface GemmWeight {
  /** The buffer B lies in: the same key, version and layout mean the same values. */
  readonly key: object;
  /** Bumped by the backend whenever anything writes into that buffer. */
  readonly version: number;
  /** B's place and layout in that buffer. */
  readonly layout: string;
}

/** Activations a native GEMM may apply to its output, in the engine's names (UnaryFn). */
export type GemmActivation = 'relu' | 'gelu_tanh' | 'gelu_erf' | 'silu' | 'sigmoid' | 'tanh';

/** The bias of a linear layer, added to every row of C before the activation. */
export interface GemmBias {
  /** [N], a tight view of the backend's memory. */
  readonly data: Float32Array;
  /** The buffer it lies in and that buffer's version (as GemmWeight's): unchanged means the same values. */
  readonly key: object;
  readonly version: number;
}

/**
 * One row-major f32 product C = act(op(A)·op(B) + bias), with op(A) [M, K] and op(B) [K, N]. `a`,
 * `b`, `c` are tight views of the backend's memory: A stored [M, K] (or [K, M] when transA), B
 * stored [K, N] (or [N, K] when transB), C [M, N], written by the call. `bias` and `act` are
 * optional (a plain product without them); `act` only from the GEMM's `activations`.
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
  readonly bias?: GemmBias;
  readonly act?: GemmActivation;
}

/**
 * Scaled dot-product attention of one layer with every query head beside its own key/value head,
 * in the layout the projections write: q [B, TQ, H, D], k [B, TK, H, D], v [B, TK, H, DV], tight
 * views of the backend's memory; y [B, H, TQ, DV] (or [B, TQ, H, DV] when tokenMajor) and, when given, probs [B, H, TQ, TK] written by
 * the call. Causal: query i sees keys j <= i + TK - TQ.
 */
export interface AttentionCall {
  readonly B: number;
  readonly H: number;
  readonly TQ: number;
  readonly TK: number;
  readonly D: number;
  readonly DV: number;
  readonly q: Float32Array;
  readonly k: Float32Array;
  readonly v: Float32Array;
  readonly scale: number;
  readonly causal: boolean;
  /** [B, H, TQ, DV], or [B, TQ, H, DV] when `tokenMajor` */
  readonly y: Float32Array;
  readonly tokenMajor?: boolean;
  readonly probs?: Float32Array;
}

/**
 * y [M, N] = act(x [M, K] · Wᵀ + bias) with W [N, K] in a GGML block format the library takes (`qgemmTypes`),
 * as the library computes it (activations rounded to 8 bits per block, as ggml does). `x`, `y`:
 * tight views of the backend's memory; `raw`: W's blocks, row after row (read when the weight is
 * packed: on its first product, and again when its buffer's version changes).
 */
export interface QGemmCall {
  readonly type: string;
  readonly M: number;
  readonly N: number;
  readonly K: number;
  readonly x: Float32Array;
  readonly y: Float32Array;
  readonly raw: () => Uint8Array;
  readonly weight: GemmWeight;
  /** Added to every row of y (a linear layer's bias), before `act`. */
  readonly bias?: GemmBias;
  /** Applied to y last (only from the GEMM's `activations`). */
  readonly act?: GemmActivation;
}

export interface NativeGemm {
  /** What runs the products, e.g. 'onnxruntime-node 1.30.0 (MLAS)'. */
  readonly name: string;
  /** The activations it can apply to a product's output (the backend applies any other itself). */
  readonly activations: ReadonlySet<GemmActivation>;
  /** Computes one product synchronously; may keep B packed across calls while `weight` is unchanged. */
  gemm(call: GemmCall): void;
  /** Runs an attention's two batched products (and its softmax) natively, where the library can. */
  attention?(call: AttentionCall): void;
  /**
   * Runs a whole transformer block natively (see BlockCall) and returns true, or returns false
   * without writing: its weights are seen for the first time with these values (they are packed on
   * the next call, as a GEMM's B is).
   */
  block?(call: BlockCall): boolean;
  /**
   * Runs consecutive blocks natively in one call (see ChainCall) and returns true, or returns
   * false without writing, as `block`.
   */
  chain?(call: ChainCall): boolean;
  /**
   * Runs a decode step of consecutive blocks with their KV caches natively (see DecodeCall,
   * native-decode.ts) and returns true, or returns false without writing.
   */
  decode?(call: DecodeCall): boolean;
  /** Block formats whose products it runs without expanding the weight (absent: none). */
  readonly qgemmTypes?: ReadonlySet<string>;
  /** A product with a quantized weight, packed once per weight (only for `qgemmTypes`). */
  qgemm?(call: QGemmCall): void;
  /** Drops whatever is kept for products whose B lies in `key` (it was freed). */
  forget(key: object): void;
  /** How many weights it holds packed (for tests and `info()`). */
  packedCount(): number;
  /** Host memory it holds: packed weights (as the library counts them, where it can say) and staging, in bytes. */
  heldBytes?(): { packed: number; staging: number; note?: string };
  dispose(): void;
}

/** What the platform gives: the capability, or why there is none. */
export type NativeGemmLoad = { gemm: NativeGemm } | { gemm: null; reason: string };


/** A GPT-2-style block's shape and settings, as BlockCall and DecodeBlock (native-decode.ts) take them. */
export interface BlockWiring {
  readonly nHeads: number;
  readonly dMlp: number;
  readonly eps1: number;
  readonly eps2: number;
  readonly scale: number;
  readonly act: GemmActivation;
  /** transB of the qkv, attention output, MLP input and MLP output products (a quantized weight is [out, in]). */
  readonly transB: readonly [boolean, boolean, boolean, boolean];
}

/**
 * A pre-LN transformer block (GPT-2's wiring) as one native call:
 *   mid = x + attn(LN1(x)) · Wo + bo;   y = mid + act(LN2(mid) · Wfc + bfc) · Wproj + bproj
 * with causal multi-head attention (every query head with its own key/value head, no mask beyond
 * causality) over q, k, v split from LN1(x) · Wqkv + bqkv ([.., 3 · d_model]: q, then k, then v).
 * `x` and `y` are [batch · pos, d_model], tight views of the backend's memory; `params` are, in
 * order: ln1 weight, ln1 bias, Wqkv, bqkv, Wo, bo, ln2 weight, ln2 bias, Wfc, bfc, Wproj, bproj,
 * each a tight view with its buffer and version (a weight stored [out, in] when its `transB` is set).
 */
export interface BlockCall extends BlockWiring {
  readonly batch: number;
  readonly pos: number;
  readonly dModel: number;
  readonly x: Float32Array;
  readonly y: Float32Array;
  readonly params: readonly GemmBias[];
}


/** One block of a ChainCall: BlockCall's fields that are not the input and output. */
export type ChainBlock = Omit<BlockCall, 'batch' | 'pos' | 'dModel' | 'x' | 'y'>;

/**
 * Consecutive blocks as one native call (each as BlockCall describes): `x` [batch · pos, d_model]
 * goes into the first; `outputs` lists the blocks whose output is written out ([batch · pos,
 * d_model] each, tight views of the backend's memory), by index into `blocks`, ascending, the last
 * block always among them.
 */
export interface ChainCall {
  readonly batch: number;
  readonly pos: number;
  readonly dModel: number;
  readonly blocks: readonly ChainBlock[];
  readonly x: Float32Array;
  readonly outputs: readonly { readonly block: number; readonly y: Float32Array }[];
  /** Values inside the blocks also written out (tight, as `fusedBlockValueShape` gives); none when absent. */
  readonly reads?: readonly { readonly block: number; readonly value: FusedBlockValue; readonly y: Float32Array }[];
}
