// The parameter block of the packed KV-cache attention module (kvattn.wat.mjs) and of its two
// streams: i32 fields at byte offsets, filled by the runtime glue (src/backends/wasm/ops/kv-attention.ts)
// and read by the generated functions. Not for: the stream's own layout (src/models/kvquant/codec.ts).

/** One stream's fields (byte offsets inside its sub-block); addresses are absolute. */
export const KVS = {
  main: 0, out: 4, bits: 8, R: 12, rowBytes: 16, params: 20, G: 24, grpBytes: 28,
  oGrp: 32, oRowptr: 36, oPos: 40, oLut: 44, oChan: 48, oVal: 52, sparse: 56,
  /** 0: a value at a time; 4: 4-bit codes through the table's byte planes; 8: 8-bit lut[i] = int8(i); 9: 8-bit lut[i] = i. */
  fast: 60,
  /** Segments per row of the sparse index and its u16 [rows · segs] table (codec.ts). */
  segs: 64, oSeg: 68,
  /** Codes a kv head slice at a time: bytes between slices h and h + 1 of a row ((cap − 1) · rowBytes), and the slice width. rowBytes is then one slice's. */
  hstep: 72, S: 76,
  /** The exact entries a kv head at a time (HeadEntries in src/tensor/packed-kv.ts): address or 0, each head's room, head 0's byte offset. */
  hx: 80, hcap: 84, hat: 88, BYTES: 96,
};
/** Parameter block (i32 fields at byte offsets); q strides in elements; y contiguous [b, hq, tq, dv]. */
export const KVA = {
  B: 0, HQ: 4, G: 8, TQ: 12, TK: 16, D: 20, DV: 24, q: 28, qsb: 32, qsh: 36, qst: 40, y: 44,
  mask: 48, causal: 52, scaleBits: 56, scratch: 60, scratchStride: 64, tab: 68,
  rope: 72, rot: 76, ropeMode: 80, k: 128, v: 224, BYTES: 320,
};
/** Keys (and values) decoded per block. */
export const NB = 64;
