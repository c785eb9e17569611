// The contract of a native decode step (what src/io/node/native-decode.ts offers the wasm backend):
// consecutive GPT-2-style blocks run as one call over T new positions that attend to P cached ones,
// the new keys and values written into the caller's KV cache. Only the contract lives here; when a
// forward step may go this way is decided in src/models/layers/fused-decode.ts, the views in
// src/backends/wasm/native-decode.ts.
// Not for: runs of blocks without a cache (ChainCall in native-gemm.ts).
import type { BlockWiring, GemmBias } from './native-gemm.js';

/** A parameter of a decode block: f32 values, or a product's weight in GGML blocks (row after row, [out, in]). */
export interface DecodeParam extends GemmBias {
  /** The GGML block format of a quantized weight ('q8_0', ...); absent: `data` holds f32 values. */
  readonly type?: string;
  /** The blocks of a quantized weight (read when the step's session is made). */
  readonly raw?: Uint8Array;
}

/** One block of a DecodeCall: the wiring of BlockCall (native-gemm.ts), weights f32 or quantized. */
export interface DecodeBlock extends BlockWiring {
  /** ln1 w, ln1 b, Wqkv, bqkv, Wo, bo, ln2 w, ln2 b, Wfc, bfc, Wproj, bproj. */
  readonly params: readonly DecodeParam[];
  /**
   * The block's KV cache [2, batch, heads, cap, d_head] (keys, then values), a tight view of the
   * backend's memory: positions [0, past) are read, [past, past + pos) written by the call. `key`
   * and `version` say whether its values are those the call last wrote (the backend bumps the
   * version once after the call: `version + 1` is what it will read then).
   */
  readonly cache: { readonly data: Float32Array; readonly cap: number; readonly key: object; readonly version: number };
}

/** The final LayerNorm and the unembedding after the last block, in the same call. */
export interface DecodeHead {
  readonly eps: number;
  readonly vocab: number;
  /** norm weight, norm bias (f32), the unembedding's GGML blocks [vocab, d_model]. */
  readonly params: readonly [DecodeParam, DecodeParam, DecodeParam];
  /** [batch · pos, vocab], a tight view of the backend's memory. */
  readonly logits: Float32Array;
}

/**
 * T = `pos` new positions of `batch` sequences through consecutive blocks, each attending to its
 * `past` cached positions and causally to the new ones: `x` [batch · pos, d_model] into the first
 * block; `outputs` the residuals after the listed blocks (ascending, the last one included), tight
 * views of the backend's memory.
 */
export interface DecodeCall {
  readonly batch: number;
  readonly pos: number;
  readonly past: number;
  readonly dModel: number;
  readonly blocks: readonly DecodeBlock[];
  readonly x: Float32Array;
  readonly outputs: readonly { readonly block: number; readonly y: Float32Array }[];
  /** Present: the logits of the last block's output too. */
  readonly head?: DecodeHead;
}
