// The packed KV-cache stream as backends see it: where a stream keeps its codes, group params,
// row pointers, positions, lookup table and per-channel ranges (byte offsets in its main buffer),
// and the arguments of attention over two such streams. Beside the backend contract (backend.ts)
// because it is the same kind of agreement: the quantized cache (src/models/kvquant) writes the
// bytes, and a backend with a packed-cache kernel (wasm, webgpu) reads them with `runKVAttention`.
// The bit layout and the decode rule are codec.ts's (src/models/kvquant/codec.ts).
// Not an op of the closed set in backend.ts: the cache calls it directly where a backend has it.
import type { View } from './backend.js';

export interface StreamLayout {
  bits: number;
  /** Values per row (kv_head · d_head). */
  R: number;
  rowBytes: number;
  params: 'channel' | 'group';
  /** Values per group ('group'). */
  G: number;
  /** Bytes of one group's params: 2 (f16 scale) or 4 (f16 scale, f16 offset); 0 for 'channel'. */
  grpBytes: number;
  /** Rows the buffers hold. */
  cap: number;
  oGrp: number;
  oRowptr: number;
  oPos: number;
  oLut: number;
  oChan: number;
  bytes: number;
  /** Outlier entries the outlier buffer holds. */
  outCap: number;
  oVal: number;
  outBytes: number;
  /** Whether rows have sparse entries (else no rowptr is stored). */
  sparse: boolean;
  /**
   * Segments of a row in the sparse index (1: none): the row's R values split into `segs` slices of
   * R / segs (a kv head's each), and u16 [cap · segs] at oSeg holds, per (row, segment), the
   * segment's first exact entry counted from the row's first (rowptr[row]). A kernel reading one
   * head slice finds its entries without scanning the row's others.
   */
  segs: number;
  oSeg: number;
  /**
   * Code slices of a row (1: row-major codes): with `slices` > 1 the codes are stored a kv head at
   * a time, slice h of every row contiguous (sliceBytes each, cap rows per slice), so a kernel
   * reading one head streams through memory instead of striding over the other heads' codes.
   * Code c of row r then lies at bit c · bits from byte (h · (cap − 1) + r) · sliceBytes, h = c / (R / slices).
   */
  slices: number;
  sliceBytes: number;
}

export interface PackedStreamViews {
  layout: StreamLayout;
  main: View; // u8 [layout.bytes]
  out: View; // u8 [layout.outBytes], or [side.bytes] where the stream has a device side table
  /** A KVQuant stream held on the device: its exact values in a side table (no CSR list). */
  side?: KVQuantSide;
  /** The exact entries again, a kv head at a time (wasm, one sequence): see HeadEntries. */
  heads?: HeadEntries;
}

/**
 * A stream's exact entries a kv head at a time, beside its CSR list (wasm, one sequence, heads of
 * 32 to 256 values: one segment of the index a head): i32 counts [segs] at 0, then from `at` head h's
 * entries at at + h · cap · 8 in row order, each (row · 256 + channel within the head) u32 and an
 * f32: the exact value where the stream's scale and offset are per channel (keys), the exact value
 * less the dense value its code decodes to where they are per group (values: lut[code] · scale +
 * offset, f32 as codec.ts decodes it). The encoder appends a row's entries to their heads; the
 * attention kernel writes a key block's entries of one head over the decoded keys in one pass and
 * adds p_t · (x − v_t) to the values' weighted sum (no per-row search).
 */
export interface HeadEntries {
  view: View; // u8 [at + segs · cap · 8]
  /** Entries each head has room for. */
  cap: number;
  /** Byte offset of head 0's entries. */
  at: number;
}

/**
 * Where a KVQuant stream held on the device keeps what the host codec keeps in its CSR list (byte
 * offsets in the `out` buffer): per-channel outlier ranges, each sequence's sink row (f32) and the
 * row index it replaces, and per block (a kv head's slice of a row) K exact slots: K f32 values,
 * then K channel bytes (channel within the block + 1; 0 = empty) in ceil(K / 4) words.
 * The rule that fills them: src/backends/webgpu/kernels/kv-quant.ts.
 */
export interface KVQuantSide {
  /** Exact slots per block (0: no outliers kept). */
  K: number;
  /** Values per block (d_head). */
  block: number;
  hkv: number;
  /** Sequences (the sink table holds one row each). */
  batch: number;
  /** Codebook lookups (nearest entry) rather than uniform levels. */
  nuq: boolean;
  /** Per-channel outlier ranges lo f32 [R], hi f32 [R] at oLoHi (keys with outliers). */
  hasLoHi: boolean;
  oLoHi: number;
  /** u32 [batch]: the row each sequence's sink replaces (0xffffffff: none yet). */
  oSinkRow: number;
  /** f32 [batch, R]. */
  oSink: number;
  /** u32 [cap · hkv · (K + ceil(K / 4))]. */
  oSlots: number;
  bytes: number;
}

export interface KVAttentionArgs {
  q: View; // f32 [b, hq, tq, d], last axis contiguous
  y: View; // f32 [b, hq, tq, dv], contiguous
  mask?: View; // u8 [b, tk], contiguous
  k: PackedStreamViews;
  v: PackedStreamViews;
  /** Pre-RoPE keys: cos and sin table f32 [positions, 2, rot / 2]. */
  rope?: { table: View; rotaryDim: number; mode: 'half' | 'interleaved' };
  hkv: number;
  /** Key positions held (rows = tk · b). */
  tk: number;
  scale: number;
  causal: boolean;
}

/** A backend that attends over packed streams where they lie. */
export interface PackedKVKernel {
  runKVAttention(args: KVAttentionArgs): void;
}

/** A stream's new rows for the encoder (the rule is codec.ts's encodeRow, byte for byte). */
export interface KVEncodeArgs {
  x: View; // f32 [b, kv_head, t, d], last axis contiguous
  stream: PackedStreamViews;
  kind: 'q8_0' | 'q4_0' | 'uniform' | 'nuq';
  /** Group outliers: |x − median(group)| > tau kept exact (Infinity: none). */
  tau: number;
  /** Channel outliers: f32 [2 · R], lo then hi of each channel; values outside are kept exact. */
  bounds?: View;
  /** The first new row's index in the stream (rows held before: past · b). */
  row0: number;
  /** Positions held before (a new row at step t of the call has position past + t unless `positions` says otherwise). */
  past: number;
  /** Exact entries the stream holds before the call. */
  nOut: number;
  /** Whether the stream keeps each row's rotary position; `positions` (batch-major [b · t]) gives them. */
  holdsPositions: boolean;
  positions?: Int32Array;
  /** u8 [t · b] (new row i = t · b + s): 1 where the row is a sink, kept exact. */
  sink?: Uint8Array;
  /** The first new row to encode (default 0). */
  from?: number;
  /** The stream's head lists hold entries of rows from row0 + from on (rows written again): dropped first. */
  trimHeads?: boolean;
}

/** A backend that encodes a stream's new rows where the stream lies (the wasm backend). */
export interface PackedKVEncoder {
  /**
   * Encodes new rows from `from` until all are written or the outlier buffer lacks room for a whole
   * row of exact entries; returns the first row not written and the exact entries then held.
   */
  runKVEncode(args: KVEncodeArgs): { rows: number; nOut: number };
}

/**
 * A backend whose packed-cache kernels also write the rows and decode streams on the device (no
 * host reads: webgpu), for q8_0 / q4_0 streams (group parameters, nothing kept exact) and KVQuant
 * streams with a device side table.
 */
export interface PackedKVDevice extends PackedKVKernel {
  /** Why this backend cannot hold a stream of this layout on the device ('' when it can). */
  kvStreamUnsupported(layout: StreamLayout): string;
  /** Rows [row0, row0 + b·t) of `stream` from x f32 [b, kv_head, t, d] (contiguous), rounded as ggml's `kind`. */
  runKVAppend(x: View, stream: PackedStreamViews, kind: 'q8_0' | 'q4_0', row0: number): void;
  /**
   * y f32 [b, kv_head, tk, d] (contiguous) = the first tk · b rows of `stream` decoded (keys rotated
   * at their stored positions when `rope`: KVQuant's pre-RoPE keys).
   */
  runKVDequantize(stream: PackedStreamViews, y: View, rope?: KVAttentionArgs['rope']): void;
  /** Why this backend cannot hold a KVQuant stream with this side table ('' when it can). */
  kvqStreamUnsupported(layout: StreamLayout, side: KVQuantSide): string;
  /**
   * Rows [row0, row0 + b·t) of a KVQuant stream (with `side`) from x f32 [b, kv_head, t, d]
   * (contiguous): codes, row scales, exact slots (`tau`: the per-token outlier threshold), the sink
   * rows (sinkT[b]: the step t holding sequence b's first token, −1: none) and the rotary positions
   * (batch-major [b · t], where the stream keeps them).
   */
  runKVQAppend(x: View, stream: PackedStreamViews, row0: number, o: { tau: number; positions?: Int32Array; sinkT?: Int32Array }): void;
}
