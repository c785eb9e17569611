// The optional native GEMM of the wasm backend: a host library with AVX2/AVX-512 kernels that
// takes large f32 matrix products (prefill, training, caching) off the 128-bit wasm SIMD kernel.
// The core sees only the `NativeGemm` capability below; the platform adapter supplies it where it
// exists (Node with onnxruntime-node: src/io/node/native-gemm.ts) and the browser never loads it.
// This file decides which products go native (by size and layout) and flattens them to one 2-D
// product; every other op, and every product it declines, runs on the wasm kernels as before.
// Not for: the wasm GEMM itself (matmul.ts), or loading the host library.
import type { BackendBuffer, OpDesc, View } from '../../tensor/backend.js';
import type { WasmRuntime } from './runtime.js';
import type { NativeGemm } from '../../io/native-gemm.js';

export type { GemmCall, GemmWeight, NativeGemm, NativeGemmLoad } from '../../io/native-gemm.js';

type MatmulOp = Extract<OpDesc, { op: 'matmul' }>;

/** When a product is large enough to go native. */
export interface NativeGemmPolicy {
  /** Fewest output rows (M over the flattened batch); decode's one-row products stay on wasm. */
  minRows: number;
  /** Fewest multiply-adds. */
  minMacs: number;
}

/**
 * Defaults measured on a 2-core Zen 5 (bench/gemm.ts, docs/native-cpu.md): the wasm GEMV beats
 * MLAS at one row, and below ~2M multiply-adds the copies through host memory cost more than
 * the kernel gains.
 */
export const DEFAULT_NATIVE_GEMM_POLICY: NativeGemmPolicy = { minRows: 16, minMacs: 1 << 21 };

/** A product flattened to 2-D, with element offsets into the memory's f32 view. */
interface Plan {
  M: number;
  N: number;
  K: number;
  a: number;
  b: number;
  c: number;
  transA: boolean;
  transB: boolean;
}

/**
 * Runs the matmul natively and returns true, or returns false (nothing done) when the product is
 * small or its layout does not flatten to one tight 2-D product (batched B, strided rows).
 */
export function tryNativeMatmul(
  rt: WasmRuntime, gemm: NativeGemm, policy: NativeGemmPolicy, versionOf: (b: BackendBuffer) => number,
  op: MatmulOp, inputs: readonly View[], outputs: readonly View[],
): boolean {
  if (inputs.length !== 2 || outputs.length !== 1) return false;
  const [a, b] = inputs as [View, View];
  const y = outputs[0]!;
  if (a.dtype !== 'f32' || b.dtype !== 'f32' || y.dtype !== 'f32') return false;
  const plan = planGemm(op, a, b, y, rt, policy);
  if (!plan) return false;
  const f32 = new Float32Array(rt.memory.bytes().buffer);
  const { M, N, K } = plan;
  gemm.gemm({
    M, N, K, transA: plan.transA, transB: plan.transB,
    a: f32.subarray(plan.a, plan.a + M * K),
    b: f32.subarray(plan.b, plan.b + K * N),
    c: f32.subarray(plan.c, plan.c + M * N),
    weight: { key: b.buffer, version: versionOf(b.buffer), layout: `${b.offset}:${b.strides.join(',')}:${b.shape.join(',')}:${plan.transB}` },
  });
  return true;
}

function planGemm(op: MatmulOp, a: View, b: View, y: View, rt: WasmRuntime, policy: NativeGemmPolicy): Plan | null {
  const r = y.shape.length;
  if (r < 2 || a.shape.length !== r || b.shape.length !== r) return null;
  const [a0, a1] = [a.shape[r - 2]!, a.shape[r - 1]!];
  const [b0, b1] = [b.shape[r - 2]!, b.shape[r - 1]!];
  const [M, K] = op.transA ? [a1, a0] : [a0, a1];
  const [Kb, N] = op.transB ? [b1, b0] : [b0, b1];
  const batch = y.shape.slice(0, -2);
  if (K !== Kb || y.shape[r - 2] !== M || y.shape[r - 1] !== N || batch.some((s, i) => a.shape[i] !== s || b.shape[i] !== s)) return null;
  const nBatch = batch.reduce((p, s) => p * s, 1);
  const rows = nBatch * M;
  if (rows < policy.minRows || rows * N * K < policy.minMacs || K === 0) return null;
  // one B for every batch entry (a weight broadcast over [batch, pos]), stored tight
  if (batch.some((s, i) => s > 1 && b.strides[i] !== 0)) return null;
  if (!tight2d(b, r)) return null;
  // A and C: tight over all dims, so that the batch folds into the rows; a transposed A only unbatched
  if (!tight(a) || !tight(y)) return null;
  if (op.transA && nBatch > 1) return null;
  for (const [v, what] of [[a, 'a'], [b, 'b'], [y, 'y']] as const) inside(v, what);
  const base = (v: View) => rt.ptrOf(v.buffer) / 4 + v.offset;
  return { M: rows, N, K, a: base(a), b: base(b), c: base(y), transA: !!op.transA, transB: !!op.transB };
}

/** Row-major contiguous, ignoring the strides of size-1 dims. */
function tight(v: View): boolean {
  let want = 1;
  for (let d = v.shape.length - 1; d >= 0; d--) {
    if (v.shape[d]! !== 1 && v.strides[d] !== want) return false;
    want *= v.shape[d]!;
  }
  return true;
}

/** The last two dims row-major contiguous. */
function tight2d(v: View, r: number): boolean {
  const [rows, cols] = [v.shape[r - 2]!, v.shape[r - 1]!];
  return (cols === 1 || v.strides[r - 1] === 1) && (rows === 1 || v.strides[r - 2] === cols);
}

/** Throws unless the view's elements lie inside its buffer (the native library does not check). */
function inside(v: View, what: string): void {
  let hi = v.offset;
  for (let d = 0; d < v.shape.length; d++) hi += (v.shape[d]! - 1) * Math.max(0, v.strides[d]!);
  if (v.offset < 0 || (hi + 1) * 4 > v.buffer.byteLength) {
    throw new Error(`native matmul: ${what} f32[${v.shape.join(',')}] reaches element ${hi}, outside its ${v.buffer.byteLength}-byte buffer`);
  }
}
