// The contract between the tensor frontend and a device: untyped buffers, strided views over them,
// and one `exec` entry point for a small closed set of ops. Shape inference, validation and
// broadcasting happen in the frontend (src/ops); a backend only computes.
// Designed for devices whose memory JavaScript cannot see (WebGPU): reads may be asynchronous
// and `readSync` may refuse.
import type { DType } from './dtype.js';
import { isContiguous } from './shape.js';

/** An opaque allocation owned by one backend. `byteLength` is what was asked for. */
export interface BackendBuffer {
  readonly backend: string;
  readonly byteLength: number;
}

/**
 * A strided view of a buffer as the backend receives it. `offset` and `strides` count elements
 * (for packed 4-bit types, nibbles). A stride of 0 repeats an element (broadcast).
 */
export interface View {
  readonly buffer: BackendBuffer;
  readonly dtype: DType;
  readonly shape: readonly number[];
  readonly strides: readonly number[];
  readonly offset: number;
}

export type UnaryFn =
  | 'neg' | 'exp' | 'log' | 'sqrt' | 'rsqrt' | 'tanh' | 'abs' | 'sign'
  | 'relu' | 'sigmoid' | 'silu' | 'gelu_tanh' | 'gelu_erf' | 'square' | 'recip' | 'sin' | 'cos';
export type BinaryFn =
  | 'add' | 'sub' | 'mul' | 'div' | 'pow' | 'maximum' | 'minimum'
  | 'eq' | 'ne' | 'lt' | 'le' | 'gt' | 'ge';
export type ReduceFn = 'sum' | 'mean' | 'max' | 'min' | 'argmax' | 'argmin';
/**
 * Block formats a tensor can stay in: GGML's (lower-case ggml type names) and actlab's own
 * (src/quant/formats.ts); block sizes in src/tensor/quantized.ts.
 */
export type GgmlQuantType = 'q8_0' | 'q4_0' | 'q4_k' | 'q6_k' | 'q4_1' | 'q5_0' | 'q5_1' | 'q5_k' | 'iq4_nl';
export type QuantType = GgmlQuantType
  | 'int8' | 'int4_g32' | 'int4_g64' | 'int4_g128' | 'int4a_g32' | 'int4a_g64' | 'int4a_g128'
  | 'nf4' | 'nf4_dq' | 'fp8_e4m3' | 'fp8_e5m2' | 'fp4' | 'llmfp4_e1m2' | 'llmfp4_e2m1' | 'llmfp4_e3m0';

/**
 * The closed set of ops a backend implements. Inputs and outputs are listed per op with their
 * shapes; the frontend guarantees the shapes and dtypes given here, and allocates the outputs
 * (contiguous unless said otherwise). `[...]` is any number of leading dims.
 */
export type OpDesc =
  /** in: x (any view); out: y (any view, same shape). Converts dtype on the way (this is also `cast`). */
  | { op: 'copy' }
  /** out: y (any view). */
  | { op: 'fill'; value: number }
  /**
   * out: y (any view, f32): uniform numbers in [0, 1), y[i] = randomUniformAt(seed, i) for
   * the row-major index i of each element (src/tensor/random-hash.ts): the same numbers on every backend.
   */
  | { op: 'random'; seed: number }
  /** in: x; out: y, same shape; float dtypes. */
  | { op: 'unary'; fn: UnaryFn }
  /** in: a, b (already broadcast to the output shape, stride 0 where repeated); out: y. Comparisons give u8 0/1. */
  | { op: 'binary'; fn: BinaryFn }
  /** in: cond (u8), a, b (broadcast views); out: y = cond ? a : b. */
  | { op: 'where' }
  /** in: x [..., n, ...]; out: y with `axis` of size 1 (arg* give i32). */
  | { op: 'reduce'; fn: ReduceFn; axis: number }
  /** in: x; out: y, same shape, running sum along `axis`. */
  | { op: 'cumsum'; axis: number }
  /** in: x [..., n]; out: values [..., k], indices i32 [..., k], largest first, ties by lower index. */
  | { op: 'topk'; k: number }
  /**
   * in: a [...batch, M, K] (or [..., K, M] when transA), b [...batch, K, N] (or [..., N, K] when transB),
   * batch dims already broadcast; out: y [...batch, M, N]. Transposition is also visible in the strides;
   * the flags only say which logical layout the shapes are given in.
   */
  | { op: 'matmul'; transA: boolean; transB: boolean }
  /**
   * A linear layer with its epilogue. in: x [M, K], w [K, N] (or [N, K] when transB), bias [N];
   * out: y [M, N] = act(x · w + bias), act a UnaryFn or none. Backends that fuse it say so with
   * `prefersFusedLinear`; models use matmul + add (+ unary) elsewhere.
   */
  | { op: 'linear'; transB: boolean; act: UnaryFn | null }
  /**
   * in: x [..., q, k], optional mask (u8 1 = keep, broadcast to x's shape); out: y same shape.
   * `causal` hides key j > i + (k - q) for query i. Fully hidden rows give 0 (softmax) / -Inf (log).
   */
  | { op: 'softmax'; log: boolean; causal: boolean; masked: boolean }
  /** in: x [..., d], optional weight [d], optional bias [d]; out: y. */
  | { op: 'layernorm'; eps: number; hasWeight: boolean; hasBias: boolean }
  /** in: x [..., d], optional weight [d]; out: y = x / rms(x) * (offset + weight). */
  | { op: 'rmsnorm'; eps: number; offset: number; hasWeight: boolean }
  /**
   * A residual add and the norm of its result in one op. in: a [..., d], b (a's shape), optional
   * weight [d], optional bias [d] (layer only); out: s = a + b (a's dtype), y = norm(s) as
   * 'layernorm' (kind 'layer') or 'rmsnorm' (kind 'rms', with `offset`) computes it from s as
   * stored. Backends that fuse it say so with `prefersFusedAddNorm`; elsewhere models use add and
   * the norm.
   */
  | { op: 'addNorm'; kind: 'layer' | 'rms'; eps: number; offset: number; hasWeight: boolean; hasBias: boolean }
  /**
   * in: x [b, t, h, d], positions i32 [b, t], invFreq f32 [rotaryDim / 2]; out: y [b, t, h, d].
   * Rotates the first `rotaryDim` channels; 'half' pairs (i, i + rotaryDim/2), 'interleaved' pairs (2i, 2i+1).
   */
  | { op: 'rope'; mode: 'half' | 'interleaved'; rotaryDim: number }
  /** in: table [n, ...row], ids i32 [...idx]; out: y [...idx, ...row]. */
  | { op: 'gather' }
  /** in: target [n, ...row], ids i32 [m], src [m, ...row]; out: y = target with src rows added at ids. */
  | { op: 'scatterAdd' }
  /**
   * in: q [b, hq, tq, d], k [b, hkv, tk, d], v [b, hkv, tk, dv], optional keyMask u8 [b, tk] (1 = attend);
   * out: y [b, hq, tq, dv], and probs [b, hq, tq, tk] when `returnProbs`. hq is a multiple of hkv
   * (grouped-query: head h reads kv head floor(h / (hq / hkv))). `causal` as in softmax.
   */
  /** tokenMajor: y is [b, tq, hq, dv] (position before head) instead of [b, hq, tq, dv]. */
  | { op: 'attention'; scale: number; causal: boolean; masked: boolean; returnProbs: boolean; tokenMajor?: boolean }
  /**
   * in: raw u8 [rows * rowBytes] (GGML blocks, or actlab's rows: blocks then a per-row tail);
   * out: f32 [rows, cols] (or any shape whose last dim is cols).
   */
  | { op: 'dequantize'; type: QuantType }
  /**
   * in: x f32 [M, K] (contiguous), w u8 [N * rowBytes(K)] (raw blocks, quantRowBytes; row n of
   * the weight = output n, K a multiple of the block size); out: y f32 [M, N] = x · dequantize(w)ᵀ.
   * Backends may quantize x to 8 bits per block on the way, as ggml does (the conformance matrix
   * states the error budget this leaves).
   */
  | { op: 'qmatmul'; type: QuantType }
  /**
   * qmatmul with a linear layer's epilogue. in: x, w as qmatmul, bias f32 [N]; out: y f32 [M, N] =
   * act(x · dequantize(w)ᵀ + bias), act a UnaryFn or none. Decode runs one op per projection
   * instead of three; backends without it get qmatmul, add and unary (ops/quant.ts `qlinear`).
   */
  | { op: 'qlinear'; type: QuantType; act: UnaryFn | null }
  /**
   * Activation sparsity, input side. in: x f32 [M, K], w f32 [K, N] (a linear layer stored [in, out]);
   * out: y f32 [M, N] = x · w, where row k of w is read only for the rows m with x[m, k] ≠ 0 (a zero
   * activation skips its weight row, so 0 · Inf in w gives 0 here, not NaN). An optional third input,
   * thresholds t f32 [K] (`thresholded` set), also skips x[m, k] with |x[m, k]| < t[k]: thresholding
   * fused into the product (a NaN activation is never skipped).
   */
  | { op: 'sparseMatmul'; thresholded?: boolean }
  /**
   * Activation sparsity, output side. in: x f32 [M, K], w f32 [N, K] (a linear layer stored [out, in]),
   * mask f32 [M, N]; out: y f32 [M, N] = x · w[n]ᵀ where mask[m, n] ≠ 0, else 0 (row n of w is read
   * only for the rows that need it).
   */
  | { op: 'maskedMatmul' }
  /**
   * One AdamW update (PyTorch's, decoupled weight decay), fused. in: p, g, m, v (f32, one shape);
   * out: p', m', v' (f32, same shape). With g̃ = g·gradScale: m' = β1·m + (1-β1)·g̃,
   * v' = β2·v + (1-β2)·g̃², p' = p·(1 - lr·weightDecay) - lr/(1-β1^step) · m' / (√v' / √(1-β2^step) + eps).
   */
  | { op: 'adamw'; lr: number; beta1: number; beta2: number; eps: number; weightDecay: number; step: number; gradScale: number }
  /**
   * The gradient of a gelu, fused. in: x, dy (one float dtype and shape); out: dx = gelu'(x) · dy
   * (same dtype and shape), gelu' the derivative of unary `fn` (1 at +Inf, 0 at -Inf). Autograd
   * uses it where a backend runs it natively (one pass instead of about fifteen elementwise ops).
   */
  | { op: 'geluBackward'; fn: 'gelu_tanh' | 'gelu_erf' }
  /**
   * The gradient of a 'layernorm', fused. in: x [..., d], weight [d] when `hasWeight`, dy (x's
   * shape); out: dx (x's shape) = rstd · (ĝ - mean(ĝ) - x̂ · mean(ĝ · x̂)) with ĝ = dy · weight,
   * x̂ = (x - mean(x)) · rstd, rstd = 1 / √(var(x) + eps), the row statistics recomputed from x;
   * with a weight also dy · x̂ (x's shape), whose column sums are the weight's gradient. Autograd
   * uses it where a backend runs it natively (one pass instead of about fifteen).
   */
  | { op: 'layernormBackward'; eps: number; hasWeight: boolean }
  /**
   * Inverted dropout in one pass. in: x (float); out: y (x's shape and dtype), y[i] = x[i] · s where
   * randomUniformAt(seed, i) >= p (p rounded to f32), else 0; s = 1 / (1 - p) rounded to x's dtype,
   * i the row-major index: the elements and values of `random` compared with p, then a product and
   * a `where`. Its gradient is the same op on dy.
   */
  | { op: 'dropout'; p: number; seed: number }
  /**
   * The gradient of a softmax over the last axis, from its output. in: y, dy (one float dtype and
   * shape); out: dx = y ⊙ (dy − Σ_row y ⊙ dy) (same dtype and shape). Autograd uses it where a
   * backend runs it natively (one pass over each row instead of four over the whole tensor).
   */
  | { op: 'softmaxBackward' };

export type OpName = OpDesc['op'];
export const OP_NAMES: readonly OpName[] = [
  'copy', 'fill', 'random', 'unary', 'binary', 'where', 'reduce', 'cumsum', 'topk', 'matmul', 'linear', 'softmax',
  'layernorm', 'rmsnorm', 'rope', 'gather', 'scatterAdd', 'attention', 'dequantize', 'qmatmul', 'adamw',
  'sparseMatmul', 'maskedMatmul', 'qlinear', 'addNorm', 'geluBackward', 'layernormBackward', 'dropout',
  'softmaxBackward',
];

export interface Backend {
  readonly name: string;
  /** True when `exec` has finished its work on return, so `readSync` can follow at once. */
  readonly synchronous: boolean;
  alloc(byteLength: number): BackendBuffer;
  /**
   * Memory for a weight that ops only read (quantized blocks): a backend may place it outside the
   * memory its kernels address and stream it in where it is used (wasm: past a cap, in host
   * memory). Optional; `alloc` otherwise.
   */
  allocWeights?(byteLength: number): BackendBuffer;
  free(buffer: BackendBuffer): void;
  write(buffer: BackendBuffer, byteOffset: number, bytes: Uint8Array): void;
  read(buffer: BackendBuffer, byteOffset: number, byteLength: number): Promise<Uint8Array>;
  /** Throws `SyncReadUnsupportedError` on backends whose memory cannot be read synchronously. */
  readSync(buffer: BackendBuffer, byteOffset: number, byteLength: number): Uint8Array;
  /** Whether `exec` can run this op on these views (dtypes, contiguity, ...). */
  supportsOp(op: OpDesc, inputs: readonly View[], outputs: readonly View[]): boolean;
  exec(op: OpDesc, inputs: readonly View[], outputs: readonly View[]): void;
  /** Wait until all queued work is done (a no-op on synchronous backends). */
  flush(): Promise<void>;
  /** Bytes currently allocated. */
  memoryInUse(): number;
  /** What the backend runs on (threads, SIMD features, adapter...), for reports. */
  info?(): Record<string, string | number | boolean>;
  /** True when its 'linear' op (product, bias, activation in one) beats matmul + add + unary. */
  readonly prefersFusedLinear?: boolean;
  /** True when its 'addNorm' op (residual add and norm in one) beats add then the norm. */
  readonly prefersFusedAddNorm?: boolean;
  /**
   * A whole pre-LN transformer block in one call, where the backend has a runtime for it (wasm
   * with a native GEMM): inputs x [batch, pos, d_model] then the block's parameters in the order
   * of `FusedBlockDesc`; writes y [batch, pos, d_model] and returns true, or returns false having
   * written nothing (the caller then runs the block op by op). Not an op: it has no reference
   * kernel, no gradient and no hook inside; src/models/layers/fused-block.ts says when it may run.
   */
  fusedBlock?(desc: FusedBlockDesc, inputs: readonly View[], output: View): boolean;
  /**
   * Consecutive pre-LN blocks in one call: inputs x [batch, pos, d_model], then each block's
   * parameters in the order of `FusedBlockDesc`; outputs, in order, the residual after each block
   * listed in `desc.taps` [batch, pos, d_model], then the values inside the blocks listed in
   * `desc.reads` (for read-only hooks there). Returns false having written nothing when it
   * declines (the caller then runs the blocks one by one). Not an op, as fusedBlock.
   */
  fusedBlocks?(desc: FusedChainDesc, inputs: readonly View[], outputs: readonly View[]): boolean;
  /**
   * A step of consecutive pre-LN blocks with their KV caches in one call: inputs x [batch, pos,
   * d_model], each block's parameters (FusedBlockDesc's order; a quantized weight as its u8 blocks,
   * its format in `desc.quant`), then each block's cache [2, batch, heads, cap, d_head]; reads the
   * cache's first `desc.past` positions and writes the new ones after them; outputs as fusedBlocks.
   * Returns false having written nothing when it declines. Not an op, as fusedBlock.
   */
  fusedDecode?(desc: FusedDecodeDesc, inputs: readonly View[], outputs: readonly View[]): boolean;
  /** Op names that run on the backend's own kernels (the rest fall back to the reference code). */
  nativeOps?(): readonly OpName[];
  dispose(): void;
}

/**
 * A GPT-2-style block: mid = x + MHA(LN1(x)) (q, k, v split from one biased product, causal, every
 * query head with its own key/value head), y = mid + MLP(LN2(mid)) (biased products around `act`).
 * Parameters, in order: ln1 weight, ln1 bias, Wqkv, bqkv, Wo, bo, ln2 weight, ln2 bias, Wfc,
 * bfc, Wproj, bproj; a weight is stored [out, in] when its `transB` entry is set, else [in, out].
 */
export interface FusedBlockDesc {
  readonly nHeads: number;
  readonly eps1: number;
  readonly eps2: number;
  readonly scale: number;
  readonly act: UnaryFn;
  /** transB of the qkv, attention output, MLP input and MLP output products. */
  readonly transB: readonly [boolean, boolean, boolean, boolean];
}

/** Consecutive `FusedBlockDesc` blocks, of which the outputs listed in `taps` are read out. */
export interface FusedChainDesc {
  readonly blocks: readonly FusedBlockDesc[];
  /** Indices into `blocks`, ascending, whose output is written out; the last block's always is. */
  readonly taps: readonly number[];
  /** Values inside the blocks also written out, after the taps' outputs, in this order (none: absent or empty). */
  readonly reads?: readonly FusedBlockRead[];
}

/**
 * A value inside a fused block that the call can write out (for read-only hooks there), each
 * tight in the shape `fusedBlockValueShape` gives: qkv [batch, pos, 3 · d_model] (q, then k, then
 * v, each [.., head, d_head] split off it), z [batch, pos, head, d_head];
 * scores (scaled, -inf where causality hides a key) and pattern [batch, head, query_pos, key_pos];
 * attn_out, resid_mid and mlp_out [batch, pos, d_model]; mlp_pre and mlp_post [batch, pos, d_mlp].
 */
export type FusedBlockValue = 'qkv' | 'scores' | 'pattern' | 'z' | 'attn_out' | 'resid_mid' | 'mlp_pre' | 'mlp_post' | 'mlp_out';

/** One value written out of a fused chain: `value` of block `block` (an index into `FusedChainDesc.blocks`). */
export interface FusedBlockRead {
  readonly block: number;
  readonly value: FusedBlockValue;
}

/** The shape of a fused block's value (see FusedBlockValue) for x [batch, pos, d_model]. */
export function fusedBlockValueShape(value: FusedBlockValue, batch: number, pos: number, nHeads: number, dModel: number, dMlp: number): number[] {
  switch (value) {
    case 'qkv': return [batch, pos, 3 * dModel];
    case 'z': return [batch, pos, nHeads, dModel / nHeads];
    case 'scores': case 'pattern': return [batch, nHeads, pos, pos];
    case 'mlp_pre': case 'mlp_post': return [batch, pos, dMlp];
    default: return [batch, pos, dModel];
  }
}

/**
 * A FusedChainDesc over cached positions (Backend.fusedDecode). Inputs: x, each block's 12
 * parameters, each block's cache [2, batch, heads, cap, d_head]; with a head also the final norm's
 * weight and bias and the unembedding's weight. Outputs: the taps' residuals; with a head also the
 * logits [batch, pos, vocab].
 */
export interface FusedDecodeDesc extends FusedChainDesc {
  /** Positions already in the caches. */
  readonly past: number;
  /** Per block, the GGML format of the qkv, attention output, MLP input and MLP output weights (null: f32). */
  readonly quant: readonly (readonly (string | null)[])[];
  /** The final LayerNorm and a quantized unembedding after the last block (weight [vocab, d_model] in GGML format `quant`). */
  readonly head?: { readonly eps: number; readonly vocab: number; readonly quant: string };
}

export class UnsupportedOpError extends Error {
  constructor(readonly backend: string, readonly op: OpDesc, detail: string) {
    super(`backend '${backend}' does not support op '${op.op}'${opParams(op)}: ${detail}`);
    this.name = 'UnsupportedOpError';
  }
}

export class SyncReadUnsupportedError extends Error {
  constructor(readonly backend: string) {
    super(`backend '${backend}' cannot read synchronously; use await tensor.data()`);
    this.name = 'SyncReadUnsupportedError';
  }
}

export function opParams(op: OpDesc): string {
  const rest = Object.entries(op).filter(([k]) => k !== 'op');
  return rest.length ? `(${rest.map(([k, v]) => `${k}=${v}`).join(', ')})` : '';
}

export function describeView(v: View): string {
  return `${v.dtype}[${v.shape.join(',')}]`;
}

/** True when the view is row-major contiguous from its offset (size-1 dims may have any stride). */
export function viewIsContiguous(v: View): boolean {
  return isContiguous(v.shape, v.strides);
}

/**
 * `buffer` as this backend's own buffer type (it must carry `field`), alive; otherwise an error
 * naming the backend and the operation `what`.
 */
export function ownBuffer<B extends BackendBuffer & { freed: boolean }>(backend: string, buffer: BackendBuffer, field: string, what: string): B {
  if (buffer.backend !== backend || !(field in buffer)) {
    throw new Error(`${backend} backend: ${what} got a buffer of backend '${buffer.backend}'`);
  }
  const b = buffer as B;
  if (b.freed) throw new Error(`${backend} backend: ${what} on a freed buffer (${b.byteLength} bytes)`);
  return b;
}

/** Throws, naming the backend and the operation, unless [byteOffset, byteOffset + byteLength) lies in `buffer`. */
export function checkByteRange(backend: string, buffer: BackendBuffer, byteOffset: number, byteLength: number, what: string): void {
  if (byteOffset < 0 || byteLength < 0 || byteOffset + byteLength > buffer.byteLength) {
    throw new Error(`${backend} backend: ${what} of ${byteLength} bytes at ${byteOffset} outside a ${buffer.byteLength}-byte buffer`);
  }
}

/** `f()` as a settled promise (its value, or its error as a rejection): `read` of host-memory backends. */
export function settled<T>(f: () => T): Promise<T> {
  try {
    return Promise.resolve(f());
  } catch (e) {
    return Promise.reject(e);
  }
}

/** Whether backend `b` runs every op in `ops` on its own kernels (nativeOps), not the reference's. */
export function runsNatively(b: Backend, ...ops: OpName[]): boolean {
  const native = b.nativeOps?.() ?? [];
  return ops.every((op) => native.includes(op));
}
