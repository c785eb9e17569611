// The wasm backend's native GEMM in Node: ONNX Runtime's MLAS kernels (AVX2 / AVX-512) through
// onnxruntime-node, one tiny Gemm session per weight (B an initializer, so ORT packs it once)
// and one per shape for products whose B changes (training, SAE steps: B an input, packed per call).
// A weight is packed on its second product with unchanged values (a buffer written in between gets
// a new version), so a training step that changes every weight never pays for packing.
// Why the synchronous binding: actlab's wasm backend is synchronous, and onnxruntime-node's public
// `InferenceSession.run` only defers the binding's synchronous `run` to a later tick; the package
// is pinned to an exact version, and a missing binding is reported as "no native GEMM".
// Why the copies: the binding takes only ArrayBuffer-backed arrays, and the wasm memory is a
// SharedArrayBuffer, so A goes in and C comes out through host staging arrays (O(M·K + M·N)
// against the product's O(M·N·K)).
// Not for: the browser, or any op other than f32 matrix products (src/backends/wasm/native-gemm.ts).
import { createRequire } from 'node:module';
import type * as Protobuf from 'protobufjs';
import type { GemmCall, NativeGemm, NativeGemmLoad } from '../native-gemm.js';
import { GemmModelWriter } from './onnx-gemm.js';

/** The part of onnxruntime-node's binding used here (dist/binding.d.ts of 1.30.0). */
interface OrtSession {
  loadModel(buffer: ArrayBuffer, byteOffset: number, byteLength: number, options: object): void;
  run(feeds: Record<string, unknown>, fetches: Record<string, unknown>, options: object): Record<string, unknown>;
  dispose(): void;
}
interface OrtBinding {
  binding: { InferenceSession: new () => OrtSession };
  initOrt(): void;
}
type TensorCtor = new (type: 'float32', data: Float32Array, dims: readonly number[]) => unknown;

/** Sessions kept for products whose B changes between calls, by shape (least recently used dropped). */
const MAX_DYNAMIC_SESSIONS = 32;

/** Loads onnxruntime-node and protobufjs; without either, says why. */
export function loadNativeGemm(threads: number): NativeGemmLoad {
  const require = createRequire(import.meta.url);
  let ort: { Tensor: TensorCtor };
  let bindingModule: OrtBinding;
  let protobuf: typeof Protobuf;
  let version: string;
  try {
    ort = require('onnxruntime-node') as { Tensor: TensorCtor };
    bindingModule = require('onnxruntime-node/dist/binding.js') as OrtBinding;
    version = (require('onnxruntime-node/package.json') as { version: string }).version;
  } catch (e) {
    return { gemm: null, reason: `onnxruntime-node is not installed or does not load (${firstLine(e)})` };
  }
  try {
    protobuf = require('protobufjs') as typeof Protobuf;
  } catch (e) {
    return { gemm: null, reason: `protobufjs is not installed (${firstLine(e)})` };
  }
  if (typeof bindingModule.binding?.InferenceSession !== 'function' || typeof bindingModule.initOrt !== 'function') {
    return { gemm: null, reason: `onnxruntime-node ${version} has no synchronous binding at dist/binding.js` };
  }
  try {
    bindingModule.initOrt();
    const gemm = new OrtGemm(bindingModule.binding.InferenceSession, ort.Tensor, new GemmModelWriter(protobuf), threads, version);
    gemm.selfTest();
    return { gemm };
  } catch (e) {
    return { gemm: null, reason: `onnxruntime-node ${version} failed its first product (${firstLine(e)})` };
  }
}

interface Packed {
  version: number;
  /** Products seen with this version; packed from the second one. */
  uses: number;
  session: OrtSession | null;
}

class OrtGemm implements NativeGemm {
  readonly name: string;
  private readonly packed = new Map<object, Map<string, Packed>>();
  private readonly dynamic = new Map<string, OrtSession>();
  private stageA: Float32Array<ArrayBuffer> = new Float32Array(0);
  private stageB: Float32Array<ArrayBuffer> = new Float32Array(0);
  private stageC: Float32Array<ArrayBuffer> = new Float32Array(0);
  private disposed = false;

  constructor(
    private readonly Session: new () => OrtSession,
    private readonly Tensor: TensorCtor,
    private readonly writer: GemmModelWriter,
    private readonly threads: number,
    version: string,
  ) {
    this.name = `onnxruntime-node ${version} (MLAS), ${threads} thread${threads === 1 ? '' : 's'}`;
  }

  gemm(call: GemmCall): void {
    if (this.disposed) throw new Error('native gemm: used after dispose');
    const { M, N, K } = call;
    const session = call.weight ? this.packedSession(call) : null;
    this.stageA = fit(this.stageA, M * K);
    this.stageC = fit(this.stageC, M * N);
    const a = this.stageA.subarray(0, M * K);
    const c = this.stageC.subarray(0, M * N);
    a.set(call.a);
    const feeds: Record<string, unknown> = { A: new this.Tensor('float32', a, call.transA ? [K, M] : [M, K]) };
    const bDims = call.transB ? [N, K] : [K, N];
    let run = session;
    if (!run) {
      this.stageB = fit(this.stageB, K * N);
      const b = this.stageB.subarray(0, K * N);
      b.set(call.b);
      feeds.B = new this.Tensor('float32', b, bDims);
      run = this.dynamicSession(K, N, call.transA, call.transB);
    }
    run.run(feeds, { C: new this.Tensor('float32', c, [M, N]) }, {});
    call.c.set(c);
  }

  forget(key: object): void {
    const byLayout = this.packed.get(key);
    if (!byLayout) return;
    for (const p of byLayout.values()) p.session?.dispose();
    this.packed.delete(key);
  }

  packedCount(): number {
    let n = 0;
    for (const m of this.packed.values()) for (const p of m.values()) if (p.session) n++;
    return n;
  }

  dispose(): void {
    if (this.disposed) return;
    for (const key of [...this.packed.keys()]) this.forget(key);
    for (const s of this.dynamic.values()) s.dispose();
    this.dynamic.clear();
    this.stageA = this.stageB = this.stageC = new Float32Array(0);
    this.disposed = true;
  }

  /** A 2x3 · 3x2 product through both kinds of session, checked, so a broken install is caught at load. */
  selfTest(): void {
    const a = new Float32Array([1, 2, 3, 4, 5, 6]);
    const b = new Float32Array([1, 0, 0, 1, 1, 1]);
    const c = new Float32Array(4);
    this.gemm({ M: 2, N: 2, K: 3, a, transA: false, b, transB: false, c });
    const want = [4, 5, 10, 11];
    if (want.some((w, i) => c[i] !== w)) throw new Error(`self-test gave [${[...c].join(', ')}], expected [${want.join(', ')}]`);
  }

  /** The packed session for this weight, or null while it is on its first product (or changed). */
  private packedSession(call: GemmCall): OrtSession | null {
    const w = call.weight!;
    let byLayout = this.packed.get(w.key);
    if (!byLayout) this.packed.set(w.key, (byLayout = new Map()));
    const p = byLayout.get(w.layout);
    if (!p || p.version !== w.version) {
      p?.session?.dispose();
      byLayout.set(w.layout, { version: w.version, uses: 1, session: null });
      return null;
    }
    if (!p.session && ++p.uses >= 2) {
      p.session = this.createSession(this.writer.encode({ K: call.K, N: call.N, transA: call.transA, transB: call.transB, weight: call.b }));
    }
    return p.session;
  }

  private dynamicSession(K: number, N: number, transA: boolean, transB: boolean): OrtSession {
    const key = `${K}x${N}:${transA}:${transB}`;
    let s = this.dynamic.get(key);
    if (s) {
      this.dynamic.delete(key); // re-insert: most recently used last
    } else {
      s = this.createSession(this.writer.encode({ K, N, transA, transB }));
      if (this.dynamic.size >= MAX_DYNAMIC_SESSIONS) {
        const [oldKey, old] = this.dynamic.entries().next().value as [string, OrtSession];
        old.dispose();
        this.dynamic.delete(oldKey);
      }
    }
    this.dynamic.set(key, s);
    return s;
  }

  private createSession(model: Uint8Array): OrtSession {
    const s = new this.Session();
    s.loadModel(model.buffer as ArrayBuffer, model.byteOffset, model.byteLength, {
      intraOpNumThreads: this.threads,
      interOpNumThreads: 1,
      executionMode: 'sequential',
      graphOptimizationLevel: 'basic',
      // the output is preallocated (staging) and inputs are host arrays: ORT's arena would only hold memory
      enableCpuMemArena: false,
      // idle ORT threads must not spin while the wasm threads run the other ops
      extra: { session: { intra_op: { allow_spinning: '0' } } },
    });
    return s;
  }
}

/** `arr` if it holds `n` elements, else a larger one (grown by half again, to limit reallocation). */
function fit(arr: Float32Array<ArrayBuffer>, n: number): Float32Array<ArrayBuffer> {
  return arr.length >= n ? arr : new Float32Array(Math.max(n, Math.ceil(arr.length * 1.5)));
}

function firstLine(e: unknown): string {
  return String(e instanceof Error ? e.message : e).split('\n')[0]!;
}
