// Native scaled dot-product attention for f32, built from the native GEMM and softmax kernels:
//   scores [b, hkv, group, tq, tk] = q · kᵀ        (batched GEMM; k repeated over the group by a stride-0 dim)
//   probs = softmax(scale · scores)                  (causal prefix with offset tk - tq, key mask; in place)
//   y [b, hkv, group, tq, dv] = probs · v            (batched GEMM, written straight into y)
// q, k, v may be any strided views (permuted [b, t, h, d] data, KV-cache slices): the GEMM packs
// through their strides. Probabilities go to the `probs` output when asked for and contiguous,
// else to a temporary. Threads: the GEMM splits over (batch × head) entries, softmax over rows.
// Difference from the reference: a key whose probability is exactly 0 (masked) still meets the
// GEMM, so an Inf/NaN in its v row would reach y (the reference skips it).
import type { OpDesc, View } from '../../backend.js';
import { matmulKernel } from '../matmul.js';
import type { NativeKernel, WasmRuntime } from '../runtime.js';
import { runSoftmax } from './norm.js';
import { addr, inside, isContiguous, numel, sameShape } from './rows.js';

type AttentionOp = Extract<OpDesc, { op: 'attention' }>;
const MATMUL_NT = { op: 'matmul', transA: false, transB: true } as const;
const MATMUL_NN = { op: 'matmul', transA: false, transB: false } as const;

export const attentionKernel: NativeKernel<AttentionOp> = {
  wasmKernels: ['gemm_f32', 'nm_softmax'],
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
    const sBuf = p ? p.buffer : rt.temp(B * HQ * TQ * TK * 4);
    if (!p) temps.push(sBuf);
    const scores: View = p ? split5(p, G) : contiguous(sBuf, 'f32', [B, HKV, G, TQ, TK]);
    const qk = [split5(q, G), repeat5(k, G)];
    if (!matmulKernel.handles(MATMUL_NT, qk, [scores])) return rt.runReference(op, inputs, outputs);
    matmulKernel.run(rt, MATMUL_NT, qk, [scores]);

    let mask: View | null = null;
    if (m) { // the key mask as a contiguous [b, tk] copy, viewed as [b, hkv, group, tq, tk]
      const mBuf = rt.temp(B * TK);
      temps.push(mBuf);
      const src = rt.memory.bytes();
      const dst = addr(rt, contiguous(mBuf, 'u8', [B, TK]));
      for (let b = 0; b < B; b++) {
        for (let j = 0; j < TK; j++) src[dst + b * TK + j] = src[rt.ptrOf(m.buffer) + m.offset + b * m.strides[0]! + j * m.strides[1]!]!;
      }
      mask = { buffer: mBuf, dtype: 'u8', shape: [B, HKV, G, TQ, TK], strides: [TK, 0, 0, 0, 1], offset: 0 };
    }
    runSoftmax(rt, { log: false, causal: op.causal }, scores, mask, scores, op.scale);

    const pv = [scores, repeat5(v, G)];
    const out = split5(y, G);
    if (!matmulKernel.handles(MATMUL_NN, pv, [out])) return rt.runReference(op, inputs, outputs);
    matmulKernel.run(rt, MATMUL_NN, pv, [out]);
  } finally {
    for (const t of temps) rt.release(t);
  }
}
