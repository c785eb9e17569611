// A decode step of consecutive blocks on the native GEMM's runtime (Backend.fusedDecode): the
// wasm backend's views flattened to a DecodeCall (src/io/native-decode.ts). Taken when the library
// runs decode steps, the policy allows it, every activation is one of the library's, every
// quantized weight is in a format it takes (`qgemmTypes`), and every f32 view is tight in the wasm
// memory (a quantized weight may lie in host memory: its blocks are only read to pack it).
// Not for: when a step may be fused (src/models/layers/fused-decode.ts), or runs without a cache
// (native-gemm.ts tryNativeChain).
import type { BackendBuffer, FusedDecodeDesc, View } from '../../tensor/backend.js';
import type { WasmRuntime } from './runtime.js';
import type { GemmActivation, NativeGemm } from '../../io/native-gemm.js';
import type { DecodeParam } from '../../io/native-decode.js';
import { inside, tight, type NativeGemmPolicy } from './native-gemm.js';

/** Runs the step natively and returns true (the caches written, their buffers to be touched once), or returns false having written nothing. */
export function tryNativeDecode(
  rt: WasmRuntime, gemm: NativeGemm, policy: NativeGemmPolicy, versionOf: (b: BackendBuffer) => number,
  desc: FusedDecodeDesc, inputs: readonly View[], outputs: readonly View[],
): boolean {
  const n = desc.blocks.length;
  const hd = desc.head;
  if (!gemm.decode || !policy.decode || n === 0 || desc.quant.length !== n || inputs.length !== 1 + 13 * n + (hd ? 3 : 0) || outputs.length !== desc.taps.length + (hd ? 1 : 0)) return false;
  if (hd && (!policy.decodeHead || !gemm.qgemmTypes?.has(hd.quant))) return false;
  if (desc.taps[desc.taps.length - 1] !== n - 1 || desc.taps.some((t, i) => t < 0 || (i > 0 && t <= desc.taps[i - 1]!))) {
    throw new Error(`fusedDecode: taps [${desc.taps.join(', ')}] must ascend and end at the last of ${n} blocks`);
  }
  if (desc.blocks.some((b) => !gemm.activations.has(b.act as GemmActivation))) return false;
  if (desc.quant.some((q) => q.some((t) => t !== null && !gemm.qgemmTypes?.has(t)))) return false;
  const x = inputs[0]!;
  const ys = outputs.slice(0, desc.taps.length);
  if (x.shape.length !== 3 || x.dtype !== 'f32' || ys.some((y) => y.shape.length !== 3 || y.shape.some((s, i) => s !== x.shape[i]))) return false;
  const [batch, pos, d] = x.shape as [number, number, number];
  if (batch * pos < policy.minRows && !policy.decodeF32 && !hd && desc.quant.every((q) => q.every((t) => t === null))) return false;
  const H = desc.blocks[0]!.nHeads;
  if (desc.blocks.some((b) => b.nHeads !== H) || d % H !== 0) return false;
  const dh = d / H;
  const params = desc.blocks.map((_, i) => inputs.slice(1 + 12 * i, 13 + 12 * i));
  const caches = inputs.slice(1 + 12 * n, 1 + 13 * n);
  const [lnW, lnB, table] = inputs.slice(1 + 13 * n);
  const logits = hd ? outputs[outputs.length - 1]! : undefined;
  const V = hd?.vocab ?? 0;
  if (hd && (lnW!.shape.join() !== `${d}` || lnB!.shape.join() !== `${d}` || logits!.shape.join() !== `${batch},${pos},${V}`)) return false;
  const weightAt = [2, 4, 8, 10];
  const f32Views = [x, ...outputs, ...caches, ...params.flatMap((ps, i) => ps.filter((_, j) => !(weightAt.includes(j) && desc.quant[i]![weightAt.indexOf(j)]))),
    ...(hd ? [lnW!, lnB!] : [])];
  if (!f32Views.every((v) => v.dtype === 'f32' && tight(v) && rt.hostBytes(v.buffer) === null)) return false;
  const dMlps = params.map((p) => p[9]!.shape[0]!);
  const sizes = (f: number) => [d, d, 3 * d * d, 3 * d, d * d, d, d, d, d * f, f, f * d, d];
  for (let i = 0; i < n; i++) {
    const q = desc.quant[i]!;
    if (params[i]!.some((p, j) => { const w = weightAt.indexOf(j); return !(w >= 0 && q[w]) && p.shape.reduce((a, b) => a * b, 1) !== sizes(dMlps[i]!)[j]; })) return false;
    const c = caches[i]!.shape;
    if (c.length !== 5 || c[0] !== 2 || c[1] !== batch || c[2] !== H || c[4] !== dh || c[3]! < desc.past + pos) return false;
  }
  for (const v of f32Views) inside(v, 'decode');
  const f32 = new Float32Array(rt.memory.bytes().buffer);
  const at = (v: View, len: number) => { const o = rt.ptrOf(v.buffer) / 4 + v.offset; return f32.subarray(o, o + len); };
  const M = batch * pos;
  /** A quantized weight's blocks, in the wasm memory or in host memory. */
  const blocksOf = (p: View, type: string, what: string): DecodeParam => {
    if (p.dtype !== 'u8' || p.shape.length !== 1 || (p.shape[0]! > 1 && p.strides[0] !== 1)) throw new Error(`fusedDecode: ${what} (${type}) must be tight u8 blocks, got ${p.dtype}[${p.shape.join(',')}]`);
    const bytes = p.shape[0]!;
    const host = rt.hostBytes(p.buffer);
    const raw = host ? host.subarray(p.offset, p.offset + bytes) : rt.memory.bytes().subarray(rt.ptrOf(p.buffer) + p.offset, rt.ptrOf(p.buffer) + p.offset + bytes);
    return { data: new Float32Array(0), type, raw, key: p.buffer, version: versionOf(p.buffer) };
  };
  const f32Param = (p: View, len: number): DecodeParam => ({ data: at(p, len), key: p.buffer, version: versionOf(p.buffer) });
  const blocks = desc.blocks.map((b, i) => {
    const f = dMlps[i]!;
    const ps: DecodeParam[] = params[i]!.map((p, j) => {
      const type = weightAt.includes(j) ? desc.quant[i]![weightAt.indexOf(j)] : null;
      return type ? blocksOf(p, type, `block ${i} weight ${j}`) : f32Param(p, sizes(f)[j]!);
    });
    const cv = caches[i]!;
    const cap = cv.shape[3]!;
    return {
      nHeads: H, dMlp: f, eps1: b.eps1, eps2: b.eps2, scale: b.scale, act: b.act as GemmActivation, transB: b.transB, params: ps,
      cache: { data: at(cv, 2 * batch * H * cap * dh), cap, key: cv.buffer, version: versionOf(cv.buffer) },
    };
  });
  return gemm.decode({
    batch, pos, past: desc.past, dModel: d, blocks, x: at(x, M * d),
    outputs: desc.taps.map((block, i) => ({ block, y: at(outputs[i]!, M * d) })),
    head: hd && {
      eps: hd.eps, vocab: V, logits: at(logits!, M * V),
      params: [f32Param(lnW!, d), f32Param(lnB!, d), blocksOf(table!, hd.quant, 'the unembedding')],
    },
  });
}
