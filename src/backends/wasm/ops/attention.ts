// Native scaled dot-product attention for f32. A few query rows (decode: tq <= FUSED_MAX_TQ) take
// the fused row kernel nm_attn_rows (scores, softmax and p·v per query row, keys and values read
// once, one dispatch); longer queries are built from the native GEMM and softmax kernels:
//   scores [b, hkv, group, tq, tk] = q · kᵀ        (batched GEMM; k repeated over the group by a stride-0 dim)
//   probs = softmax(scale · scores)                  (causal prefix with offset tk - tq, key mask; in place)
//   y [b, hkv, group, tq, dv] = probs · v            (batched GEMM, written straight into y)
// Causal queries run in blocks of rows, each against the keys its last row sees.
// q, k, v may be any strided views (permuted [b, t, h, d] data, KV-cache slices): the GEMM packs
// through their strides. Probabilities go to the `probs` output when asked for and contiguous,
// else to a temporary. Threads: the GEMM splits over (batch × head) entries, softmax over rows.
// Difference from the reference, GEMM path only: a key whose probability is exactly 0 (masked)
// still meets the GEMM, so an Inf/NaN in its v row would reach y (the reference and the fused
// kernel skip it).
import type { OpDesc, View } from '../../../tensor/backend.js';
import { matmulKernel } from '../matmul.js';
import type { NativeKernel, WasmRuntime } from '../runtime.js';
import { KERNEL_CONSTANTS } from '../generated/kernels.js';
import { f32Bits, runSoftmax } from './norm.js';
import { addr, inside, isContiguous, numel, sameShape, threadsFor } from './rows.js';

type AttentionOp = Extract<OpDesc, { op: 'attention' }>;
const MATMUL_NT = { op: 'matmul', transA: false, transB: true } as const;
const MATMUL_NN = { op: 'matmul', transA: false, transB: false } as const;
const A = KERNEL_CONSTANTS.norm.ATTN;
/** Query rows per (batch, head) up to which the fused row kernel runs (above: GEMM, GEMM-bound). */
const FUSED_MAX_TQ = 4;
/** Causal attention runs its query rows in up to MAX_CAUSAL_BLOCKS blocks of at least MIN_CAUSAL_BLOCK rows. */
const MAX_CAUSAL_BLOCKS = 8;
const MIN_CAUSAL_BLOCK = 32;
/** Keys + values of a fused call from which the kernel touches them all before computing. */
const TOUCH_MIN_BYTES = 512 << 10;

export const attentionKernel: NativeKernel<AttentionOp> = {
  wasmKernels: ['gemm_f32', 'nm_softmax', 'nm_attn_rows'],
  handles(op, inputs, outputs) {
    if (inputs.length !== (op.masked ? 4 : 3) || outputs.length !== (op.returnProbs ? 2 : 1)) return false;
    const [q, k, v, m] = inputs as [View, View, View, View | undefined];
    const [y, p] = outputs as [View, View | undefined];
    if (![q, k, v, y, ...(p ? [p] : [])].every((t) => t.dtype === 'f32' && t.shape.length === 4)) return false;
    const [B, HQ, TQ, D] = q.shape as [number, number, number, number];
    const [, HKV, TK] = k.shape as [number, number, number, number];
    const DV = v.shape[3]!;
    return HKV > 0 && HQ % HKV === 0 && sameShape(k.shape, [B, HKV, TK, D]) && sameShape(v.shape, [B, HKV, TK, DV]) &&
      sameShape(y.shape, [B, HQ, TQ, DV]) && (!p || (sameShape(p.shape, [B, HQ, TQ, TK]) && isContiguous(p))) &&
      (!m || (m.dtype === 'u8' && sameShape(m.shape, [B, TK]))) &&
      [...inputs, ...outputs].every(inside);
  },
  run: runAttention,
};

/** A 5-d view [b, hkv, group, t, c] of a 4-d [b, h, t, c] view, h split as (hkv, group). */
function split5(v: View, group: number): View {
  const [B, H, T, C] = v.shape as [number, number, number, number];
  const [s0, s1, s2, s3] = v.strides as [number, number, number, number];
  return { ...v, shape: [B, H / group, group, T, C], strides: [s0, s1 * group, s1, s2, s3] };
}

/** k or v [b, hkv, t, c] repeated over the group: [b, hkv, group, t, c] with a stride-0 dim. */
function repeat5(v: View, group: number): View {
  const [B, H, T, C] = v.shape as [number, number, number, number];
  const [s0, s1, s2, s3] = v.strides as [number, number, number, number];
  return { ...v, shape: [B, H, group, T, C], strides: [s0, s1, 0, s2, s3] };
}

function contiguous(buffer: View['buffer'], dtype: View['dtype'], shape: number[]): View {
  const strides = new Array<number>(shape.length);
  let acc = 1;
  for (let i = shape.length - 1; i >= 0; i--) { strides[i] = acc; acc *= shape[i]!; }
  return { buffer, dtype, shape, strides, offset: 0 };
}

function runAttention(rt: WasmRuntime, op: AttentionOp, inputs: readonly View[], outputs: readonly View[]): void {
  const [q, k, v, m] = inputs as [View, View, View, View | undefined];
  const [y, p] = outputs as [View, View | undefined];
  const [B, HQ, TQ] = q.shape as [number, number, number, number];
  const [, HKV, TK] = k.shape as [number, number, number, number];
  const G = HQ / HKV;
  if (numel(y.shape) === 0 && (!p || numel(p.shape) === 0)) return;
  if (TK === 0) {
    new Float32Array(rt.memory.bytes().buffer, addr(rt, y), numel(y.shape)).fill(0);
    return;
  }
  const temps: View['buffer'][] = [];
  try {
    const mask = m ? keyMask(rt, m, B, TK, temps) : null;
    if (TQ <= FUSED_MAX_TQ && [q, k, v, y].every((t) => t.shape[3]! <= 1 || t.strides[3] === 1)) {
      return runFused(rt, op, q, k, v, y, p, mask);
    }
    const sBuf = p ? p.buffer : rt.temp(B * HQ * TQ * TK * 4);
    if (!p) temps.push(sBuf);
    const scores: View = p ? split5(p, G) : contiguous(sBuf, 'f32', [B, HKV, G, TQ, TK]);
    const DV = v.shape[3]!;
    const [q5, k5, v5, y5] = [split5(q, G), repeat5(k, G), repeat5(v, G), split5(y, G)];
    const mask5: View | null = mask && { ...mask, shape: [B, HKV, G, TQ, TK], strides: [TK, 0, 0, 0, 1] };
    // causal: query rows in blocks, each against the keys its last row sees (skips most of the
    // hidden upper triangle); the hidden tail of the block's rows is zeroed only if probs are kept
    const nBlocks = op.causal ? Math.min(MAX_CAUSAL_BLOCKS, Math.ceil(TQ / MIN_CAUSAL_BLOCK)) : 1;
    const rows = Math.ceil(TQ / nBlocks);
    for (let i0 = 0; i0 < TQ; i0 += rows) {
      const i1 = Math.min(TQ, i0 + rows);
      const seen = op.causal ? Math.min(TK, i1 + TK - TQ) : TK;
      const blockRows = (v5x: View, width: number) => narrow5(v5x, i0, i1 - i0, width);
      if (seen <= 0) { // nothing visible: zero outputs (and probs)
        fill0(rt, blockRows(y5, DV));
        if (p) fill0(rt, blockRows(scores, TK));
        continue;
      }
      const s = blockRows(scores, seen);
      const qk = [blockRows(q5, q.shape[3]!), narrow5(k5, 0, seen, k.shape[3]!)];
      if (!matmulKernel.handles(MATMUL_NT, qk, [s])) return rt.runReference(op, inputs, outputs);
      matmulKernel.run(rt, MATMUL_NT, qk, [s]);
      runSoftmax(rt, { log: false, causal: op.causal }, s, mask5 && blockRows(mask5, seen), s, op.scale);
      if (p && seen < TK) { // probabilities past `seen` are hidden: zero
        const tail = blockRows(scores, TK - seen);
        fill0(rt, { ...tail, offset: tail.offset + seen });
      }
      const pv = [s, narrow5(v5, 0, seen, DV)];
      const out = blockRows(y5, DV);
      if (!matmulKernel.handles(MATMUL_NN, pv, [out])) return rt.runReference(op, inputs, outputs);
      matmulKernel.run(rt, MATMUL_NN, pv, [out]);
    }
  } finally {
    for (const t of temps) rt.release(t);
  }
}

/** Rows [start, start + n) of dim 3 of a 5-d view, and its last dim cut to `width`. */
function narrow5(v: View, start: number, n: number, width: number): View {
  const shape = [...v.shape];
  shape[3] = n;
  shape[4] = width;
  return { ...v, shape, offset: v.offset + start * v.strides[3]! };
}

/** Zeroes a 5-d f32 view in place, a row at a time (a native fill where the row is contiguous). */
function fill0(rt: WasmRuntime, v: View): void {
  if (numel(v.shape) === 0) return;
  const [d0, d1, d2, d3, n] = v.shape as [number, number, number, number, number];
  const [s0, s1, s2, s3, s4] = v.strides as [number, number, number, number, number];
  const f = new Float32Array(rt.memory.bytes().buffer, rt.ptrOf(v.buffer), v.buffer.byteLength >> 2);
  for (let a = 0; a < d0; a++) for (let b = 0; b < d1; b++) for (let c = 0; c < d2; c++) {
    for (let r = 0; r < d3; r++) {
      const at = v.offset + a * s0 + b * s1 + c * s2 + r * s3;
      if (s4 === 1) f.fill(0, at, at + n);
      else for (let j = 0; j < n; j++) f[at + j * s4] = 0;
    }
  }
}

/** The key mask as a contiguous u8 [b, tk] copy (a temporary, released by the caller). */
function keyMask(rt: WasmRuntime, m: View, B: number, TK: number, temps: View['buffer'][]): View {
  const mBuf = rt.temp(Math.max(1, B * TK));
  temps.push(mBuf);
  const bytes = rt.memory.bytes();
  const dst = rt.ptrOf(mBuf);
  const src = rt.ptrOf(m.buffer) + m.offset;
  for (let b = 0; b < B; b++) {
    for (let j = 0; j < TK; j++) bytes[dst + b * TK + j] = bytes[src + b * m.strides[0]! + j * m.strides[1]!]!;
  }
  return contiguous(mBuf, 'u8', [B, TK]);
}

function runFused(rt: WasmRuntime, op: AttentionOp, q: View, k: View, v: View, y: View, p: View | undefined, mask: View | null): void {
  const [B, HQ, TQ, D] = q.shape as [number, number, number, number];
  const [, HKV, TK] = k.shape as [number, number, number, number];
  const DV = v.shape[3]!;
  const rows = B * HQ * TQ;
  const threads = threadsFor(rt, rows * TK * (D + DV), rows);
  const stride = Math.ceil((TK * 4) / 64) * 64;
  const scratch = rt.scratch('attn.scores', Math.max(64, stride * threads));
  const prm = rt.scratch('attn.params', A.BYTES);
  const P = new Int32Array(rt.memory.bytes().buffer, prm, A.BYTES / 4);
  // field offsets read from the constants directly (no per-call key strings: this runs every layer of every decode step)
  P[A.B / 4] = B; P[A.HQ / 4] = HQ; P[A.G / 4] = HQ / HKV; P[A.TQ / 4] = TQ; P[A.TK / 4] = TK; P[A.D / 4] = D; P[A.DV / 4] = DV;
  const operand = (t: View, at: number, sb: number, sh: number, st: number) => {
    P[at / 4] = addr(rt, t);
    P[sb / 4] = t.strides[0]!; P[sh / 4] = t.strides[1]!; P[st / 4] = t.strides[2]!;
  };
  operand(q, A.q, A.qsb, A.qsh, A.qst);
  operand(k, A.k, A.ksb, A.ksh, A.kst);
  operand(v, A.v, A.vsb, A.vsh, A.vst);
  operand(y, A.y, A.ysb, A.ysh, A.yst);
  P[A.probs / 4] = p ? addr(rt, p) : 0;
  P[A.mask / 4] = mask ? addr(rt, mask) : 0;
  P[A.causal / 4] = op.causal ? 1 : 0;
  P[A.scaleBits / 4] = f32Bits(op.scale);
  P[A.scratch / 4] = scratch;
  P[A.scratchStride / 4] = stride;
  // large caches are cold in decode (the weights streamed since evicted them): touch them first
  P[A.touch / 4] = B * HKV * TK * (D + DV) * 4 >= TOUCH_MIN_BYTES ? 1 : 0;
  rt.pool.run('nm_attn_rows', [prm], threads);
}
