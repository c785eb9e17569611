// The optional native GEMM of the wasm backend: a host library with AVX2/AVX-512 kernels that
// takes large f32 matrix products (prefill, training, caching) off the 128-bit wasm SIMD kernel.
// The core sees only the `NativeGemm` capability below; the platform adapter supplies it where it
// exists (Node with onnxruntime-node: src/io/node/native-gemm.ts) and the browser never loads it.
// This file decides which products go native (by size and layout) and flattens them to one 2-D
// product: matmuls, linear layers (product, bias and activation in one op) and the prefill
// attention of a layer whose q, k, v lie as the projections wrote them; every other op, and
// everything it declines, runs on the wasm kernels as before.
// Not for: the wasm GEMM itself (matmul.ts), or loading the host library.
import { fusedBlockValueShape, type BackendBuffer, type FusedBlockDesc, type FusedChainDesc, type OpDesc, type View } from '../../tensor/backend.js';
import type { WasmRuntime } from './runtime.js';
import type { GemmActivation, NativeGemm } from '../../io/native-gemm.js';

export type { AttentionCall, BlockCall, ChainBlock, ChainCall, GemmActivation, GemmCall, GemmWeight, NativeGemm, NativeGemmLoad } from '../../io/native-gemm.js';

type MatmulOp = Extract<OpDesc, { op: 'matmul' }>;
type LinearOp = Extract<OpDesc, { op: 'linear' }>;
type AttentionOp = Extract<OpDesc, { op: 'attention' }>;
type QmatmulOp = Extract<OpDesc, { op: 'qmatmul' }>;
type QlinearOp = Extract<OpDesc, { op: 'qlinear' }>;

/** When a product is large enough to go native. */
export interface NativeGemmPolicy {
  /** Fewest output rows (M over the flattened batch); decode's one-row products stay on wasm. */
  minRows: number;
  /** Fewest multiply-adds. */
  minMacs: number;
  /** Fewest query rows of an attention run natively (shorter ones, decode above all, stay on wasm). */
  minAttentionRows: number;
  /** Whole blocks in one native call where no hook can change anything inside them (Backend.fusedBlock); at least minAttentionRows positions. */
  blocks: boolean;
  /** Consecutive such blocks in one native call (Backend.fusedBlocks); false: one call per block. */
  chains: boolean;
  /** Steps over a KV cache of consecutive blocks no hook sees inside in one native call (Backend.fusedDecode, native-decode.ts). */
  decode: boolean;
  /** In such a step ending the model's blocks, the final norm and the unembedding in the same call (FusedDecodeDesc.head). */
  decodeHead: boolean;
  /**
   * Such steps of fewer than minRows rows whose blocks' weights are all f32 in one native call too;
   * off, they run op by op on wasm's f32 GEMV (faster at one row on an idle machine), while a
   * prompt filling the cache (minRows rows or more) and steps over quantized weights still go native.
   */
  decodeF32: boolean;
  /** Fewest activation rows of a product with a quantized weight run natively (qmatmul, qlinear). */
  minQuantRows: number;
  /** Fewest multiply-adds of a product with a quantized weight run natively (instead of minMacs). */
  minQuantMacs: number;
}

/**
 * Defaults measured on a 2-core Zen 5 (bench/gemm.ts, docs/native-cpu.md): the wasm f32 GEMV beats
 * MLAS at one row, and below ~2M multiply-adds the copies through host memory cost more than
 * the kernel gains. Quantized products (bench/qgemm.ts --m 1, Zen 4, CPU time, interleaved): from
 * GPT-2's qkv (2304×768, 1.8M multiply-adds) up MatMulNBits took 1.2–8× less CPU than the wasm
 * GEMV at one row in every type it takes; at 768×768 (0.6M) the order changed from run to run, so
 * those stay on wasm. Decode steps over f32 weights (bench/decode-ab.ts, a GPT-2-small-shaped F32
 * GGUF, 2 threads, interleaved): op by op took 0.83× the one call's time on a quiet machine (1.19×
 * under a load of 5), so decodeF32 is off.
 */
export const DEFAULT_NATIVE_GEMM_POLICY: NativeGemmPolicy = {
  minRows: 16, minMacs: 1 << 21, minAttentionRows: 64, minQuantRows: 1, minQuantMacs: 1 << 20, blocks: true, chains: true, decode: true, decodeHead: true, decodeF32: false,
};

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

/**
 * A linear layer (x [M, K] · w + bias, then the activation) natively: returns true when done.
 * `act` false: the caller applies the activation itself (the library has no node for it).
 */
export function tryNativeLinear(
  rt: WasmRuntime, gemm: NativeGemm, policy: NativeGemmPolicy, versionOf: (b: BackendBuffer) => number,
  op: LinearOp, inputs: readonly View[], outputs: readonly View[], act: boolean,
): boolean {
  if (inputs.length !== 3 || outputs.length !== 1) return false;
  const [x, w, bias] = inputs as [View, View, View];
  const y = outputs[0]!;
  if (x.dtype !== 'f32' || w.dtype !== 'f32' || bias.dtype !== 'f32' || y.dtype !== 'f32') return false;
  const plan = planGemm({ op: 'matmul', transA: false, transB: op.transB }, x, w, y, rt, policy);
  const N = plan?.N;
  if (!plan || bias.shape.length !== 1 || bias.shape[0] !== N || (N > 1 && bias.strides[0] !== 1)) return false;
  inside(bias, 'bias');
  const f32 = new Float32Array(rt.memory.bytes().buffer);
  const { M, K } = plan;
  const b0 = rt.ptrOf(bias.buffer) / 4 + bias.offset;
  gemm.gemm({
    M, N, K, transA: false, transB: plan.transB,
    a: f32.subarray(plan.a, plan.a + M * K),
    b: f32.subarray(plan.b, plan.b + K * N),
    c: f32.subarray(plan.c, plan.c + M * N),
    weight: { key: w.buffer, version: versionOf(w.buffer), layout: `${w.offset}:${w.strides.join(',')}:${w.shape.join(',')}:${plan.transB}` },
    bias: { data: f32.subarray(b0, b0 + N), key: bias.buffer, version: versionOf(bias.buffer) },
    act: act && op.act ? (op.act as GemmActivation) : undefined,
  });
  return true;
}

/**
 * A prefill attention natively (both products and the softmax): returns true when done. Taken
 * when every query head has its own key/value head, no key mask, at least minAttentionRows
 * queries, and q, k, v are the [batch, head, pos, d] views of tight [batch, pos, head, d] data
 * (what splitting the projections gives); y tight, in head or token order as the op asks; a
 * KV-cache slice, grouped heads or decode stay on wasm.
 */
export function tryNativeAttention(
  rt: WasmRuntime, gemm: NativeGemm, policy: NativeGemmPolicy, op: AttentionOp, inputs: readonly View[], outputs: readonly View[],
): boolean {
  if (!gemm.attention || op.masked || inputs.length !== 3 || outputs.length !== (op.returnProbs ? 2 : 1)) return false;
  const [q, k, v] = inputs as [View, View, View];
  const [y, p] = outputs as [View, View | undefined];
  if (![q, k, v, y, ...(p ? [p] : [])].every((t) => t.dtype === 'f32' && t.shape.length === 4)) return false;
  const [B, H, TQ, D] = q.shape as [number, number, number, number];
  const [Bk, Hk, TK, Dk] = k.shape as [number, number, number, number];
  const DV = v.shape[3]!;
  if (Bk !== B || Hk !== H || Dk !== D || v.shape[0] !== B || v.shape[1] !== H || v.shape[2] !== TK) return false;
  if (TQ < policy.minAttentionRows || B * H * TQ * TK * (D + DV) < policy.minMacs || (op.causal && TK < TQ)) return false;
  if (!headsSplit(q) || !headsSplit(k) || !headsSplit(v) || !tight(y) || (p && !tight(p))) return false;
  for (const [t, what] of [[q, 'q'], [k, 'k'], [v, 'v'], [y, 'y'], ...(p ? [[p, 'probs'] as const] : [])] as const) inside(t, what);
  const f32 = new Float32Array(rt.memory.bytes().buffer);
  const at = (t: View, n: number) => { const o = rt.ptrOf(t.buffer) / 4 + t.offset; return f32.subarray(o, o + n); };
  gemm.attention({
    B, H, TQ, TK, D, DV, scale: op.scale, causal: op.causal,
    q: at(q, B * TQ * H * D), k: at(k, B * TK * H * D), v: at(v, B * TK * H * DV),
    y: at(y, B * H * TQ * DV), tokenMajor: op.tokenMajor, probs: p ? at(p, B * H * TQ * TK) : undefined,
  });
  return true;
}

/**
 * A product with a quantized weight natively (the library's MatMulNBits for the formats it takes
 * exactly): returns true when done. x [M, K] and y [M, N] tight in the memory; the weight's blocks
 * are read (from the memory, or from host memory for a weight kept there) only when it is packed.
 * qlinear: its bias (tight [N] in the memory) goes into the same call, and its activation too when
 * `act` (the library has it); otherwise the caller applies the activation.
 */
export function tryNativeQmatmul(
  rt: WasmRuntime, gemm: NativeGemm, policy: NativeGemmPolicy, versionOf: (b: BackendBuffer) => number,
  op: QmatmulOp | QlinearOp, inputs: readonly View[], outputs: readonly View[], act = false,
): boolean {
  const linear = op.op === 'qlinear';
  if (!gemm.qgemm || !gemm.qgemmTypes?.has(op.type) || inputs.length !== (linear ? 3 : 2) || outputs.length !== 1) return false;
  const [x, w, bias] = inputs as [View, View, View | undefined];
  const y = outputs[0]!;
  if (x.dtype !== 'f32' || y.dtype !== 'f32' || w.dtype !== 'u8' || x.shape.length !== 2 || y.shape.length !== 2 || w.shape.length !== 1) return false;
  const [M, K] = x.shape as [number, number];
  const N = y.shape[1]!;
  if (M < policy.minQuantRows || M * N * K < policy.minQuantMacs || y.shape[0] !== M || !tight(x) || !tight(y) || (w.shape[0]! > 1 && w.strides[0] !== 1)) return false;
  if (bias && (bias.dtype !== 'f32' || bias.shape.length !== 1 || bias.shape[0] !== N || (N > 1 && bias.strides[0] !== 1) || rt.hostBytes(bias.buffer))) return false;
  inside(x, 'x');
  inside(y, 'y');
  if (bias) inside(bias, 'bias');
  const bytes = w.shape[0]!;
  if (w.offset < 0 || w.offset + bytes > w.buffer.byteLength) throw new Error(`native qmatmul: weight ${op.type}[${N}, ${K}] (${bytes} bytes at ${w.offset}) outside its ${w.buffer.byteLength}-byte buffer`);
  const f32 = new Float32Array(rt.memory.bytes().buffer);
  const x0 = rt.ptrOf(x.buffer) / 4 + x.offset;
  const y0 = rt.ptrOf(y.buffer) / 4 + y.offset;
  gemm.qgemm({
    type: op.type, M, N, K,
    x: f32.subarray(x0, x0 + M * K),
    y: f32.subarray(y0, y0 + M * N),
    raw: () => {
      const host = rt.hostBytes(w.buffer);
      return host ? host.subarray(w.offset, w.offset + bytes) : rt.memory.bytes().subarray(rt.ptrOf(w.buffer) + w.offset, rt.ptrOf(w.buffer) + w.offset + bytes);
    },
    weight: { key: w.buffer, version: versionOf(w.buffer), layout: `${w.offset}:${N}x${K}` },
    ...(bias ? { bias: { data: f32.subarray(rt.ptrOf(bias.buffer) / 4 + bias.offset, rt.ptrOf(bias.buffer) / 4 + bias.offset + N), key: bias.buffer, version: versionOf(bias.buffer) } } : {}),
    ...(linear && act && op.act ? { act: op.act as GemmActivation } : {}),
  });
  return true;
}

/** A [b, h, t, d] view of tight [b, t, h, d] data (size-1 dims' strides ignored). */
function headsSplit(v: View): boolean {
  const [B, H, T, D] = v.shape as [number, number, number, number];
  const want = [T * H * D, D, H * D, 1];
  return [B, H, T, D].every((n, i) => n === 1 || v.strides[i] === want[i]);
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
export function tight(v: View): boolean {
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
export function inside(v: View, what: string): void {
  let hi = v.offset;
  for (let d = 0; d < v.shape.length; d++) hi += (v.shape[d]! - 1) * Math.max(0, v.strides[d]!);
  if (v.offset < 0 || (hi + 1) * 4 > v.buffer.byteLength) {
    throw new Error(`native matmul: ${what} f32[${v.shape.join(',')}] reaches element ${hi}, outside its ${v.buffer.byteLength}-byte buffer`);
  }
}

/**
 * A whole block natively (`Backend.fusedBlock`): returns true when done. Taken when the library
 * runs blocks, the activation is one of its own, there are at least minAttentionRows positions,
 * and every view is tight f32 in the wasm memory (a weight kept in host memory declines).
 */
export function tryNativeBlock(
  rt: WasmRuntime, gemm: NativeGemm, policy: NativeGemmPolicy, versionOf: (b: BackendBuffer) => number,
  desc: FusedBlockDesc, inputs: readonly View[], y: View,
): boolean {
  return tryNativeChain(rt, gemm, policy, versionOf, { blocks: [desc], taps: [0] }, inputs, [y]);
}

/**
 * Consecutive whole blocks natively in one call (`Backend.fusedBlocks`): returns true when done.
 * Taken as tryNativeBlock, for every block; the outputs are the residuals after the blocks in
 * `desc.taps` (the last one included), then the values inside them in `desc.reads` (only where
 * the library runs chains, in one call).
 */
export function tryNativeChain(
  rt: WasmRuntime, gemm: NativeGemm, policy: NativeGemmPolicy, versionOf: (b: BackendBuffer) => number,
  desc: FusedChainDesc, inputs: readonly View[], outputs: readonly View[],
): boolean {
  const n = desc.blocks.length;
  const reads = desc.reads ?? [];
  const run = gemm.chain ? gemm.chain.bind(gemm) : n === 1 && gemm.block && !reads.length ? null : undefined;
  if (!policy.blocks || run === undefined || n === 0 || inputs.length !== 1 + 12 * n || outputs.length !== desc.taps.length + reads.length) return false;
  // values inside the blocks come out of one chain call only
  if (reads.length && (run === null || (n > 1 && !policy.chains))) return false;
  if (desc.taps[desc.taps.length - 1] !== n - 1 || desc.taps.some((t, i) => t < 0 || (i > 0 && t <= desc.taps[i - 1]!))) {
    throw new Error(`fusedBlocks: taps [${desc.taps.join(', ')}] must ascend and end at the last of ${n} blocks`);
  }
  if (desc.blocks.some((b) => !gemm.activations.has(b.act as GemmActivation))) return false;
  const x = inputs[0]!;
  const taps = outputs.slice(0, desc.taps.length);
  if (x.shape.length !== 3 || taps.some((y) => !shapesMatch(x.shape, y.shape))) return false;
  const [batch, pos, d] = x.shape as [number, number, number];
  if (pos < policy.minAttentionRows || desc.blocks.some((b) => d % b.nHeads !== 0)) return false;
  if (![...inputs, ...outputs].every((v) => v.dtype === 'f32' && tight(v) && rt.hostBytes(v.buffer) === null)) return false;
  const blockParams = desc.blocks.map((_, i) => inputs.slice(1 + 12 * i, 13 + 12 * i));
  const dMlps = blockParams.map((p) => p[9]!.shape[0]!);
  const readShape = (i: number) => { const r = reads[i]!; return fusedBlockValueShape(r.value, batch, pos, desc.blocks[r.block]!.nHeads, d, dMlps[r.block]!); };
  if (reads.some((r, i) => r.block < 0 || r.block >= n || !shapesMatch(readShape(i), outputs[taps.length + i]!.shape))) {
    throw new Error(`fusedBlocks: reads [${reads.map((r, i) => `${r.block}.${r.value} f32[${outputs[taps.length + i]?.shape.join(',')}]`).join(', ')}] do not match ${n} blocks on x f32[${x.shape.join(',')}]`);
  }
  const sizes = (f: number) => [d, d, 3 * d * d, 3 * d, d * d, d, d, d, d * f, f, f * d, d];
  if (blockParams.some((ps, i) => ps.some((p, j) => p.shape.reduce((a, b) => a * b, 1) !== sizes(dMlps[i]!)[j]))) return false;
  for (const v of [...inputs, ...outputs]) inside(v, 'block');
  const f32 = new Float32Array(rt.memory.bytes().buffer);
  const at = (v: View, len: number) => { const o = rt.ptrOf(v.buffer) / 4 + v.offset; return f32.subarray(o, o + len); };
  const M = batch * pos;
  const blocks = desc.blocks.map((b, i) => ({
    nHeads: b.nHeads, dMlp: dMlps[i]!, eps1: b.eps1, eps2: b.eps2, scale: b.scale, act: b.act as GemmActivation, transB: b.transB,
    params: blockParams[i]!.map((p, j) => ({ data: at(p, sizes(dMlps[i]!)[j]!), key: p.buffer, version: versionOf(p.buffer) })),
  }));
  const ys = taps.map((y) => at(y, M * d));
  if (run === null) return gemm.block!({ batch, pos, dModel: d, ...blocks[0]!, x: at(x, M * d), y: ys[0]! });
  if (n > 1 && !policy.chains && gemm.block) {
    // one call per block (the residual between them through host arrays); every block is offered
    // even after one declines, so that all are packed by the next forward
    const between = [new Float32Array(M * d), new Float32Array(M * d)];
    let done = true;
    let from = at(x, M * d);
    blocks.forEach((b, i) => {
      const tap = desc.taps.indexOf(i);
      const to = tap >= 0 ? ys[tap]! : between[i % 2]!;
      done = gemm.block!({ batch, pos, dModel: d, ...b, x: from, y: to }) && done;
      from = to;
    });
    return done;
  }
  const read = reads.map((r, i) => ({ ...r, y: at(outputs[taps.length + i]!, readShape(i).reduce((a, b) => a * b, 1)) }));
  return run({ batch, pos, dModel: d, blocks, x: at(x, M * d), outputs: desc.taps.map((block, i) => ({ block, y: ys[i]! })), ...(read.length ? { reads: read } : {}) });
}

function shapesMatch(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((n, i) => n === b[i]);
}
