// The wasm backend's native GEMM in Node: ONNX Runtime's MLAS kernels (AVX2 / AVX-512) through
// onnxruntime-node, one tiny Gemm session per weight (B and the layer's bias initializers, so ORT
// packs B once) and one per shape for products whose B changes (training, SAE steps: B an input,
// packed per call); an activation after the product runs in a small session of its own, and a
// prefill's attention (both batched products and the softmax) in another; consecutive whole
// blocks no hook can change inside run as one session (onnx-block.ts), made on their second
// call, from which the values inside them that read-only hooks want are fetched by name; a step
// over a KV cache of blocks no hook sees inside is one session too (native-decode.ts, onnx-decode.ts).
// A weight is packed on its second product with unchanged values (a buffer written in between gets
// a new version), so a training step that changes every weight never pays for packing.
// Why the synchronous binding: actlab's wasm backend is synchronous, and onnxruntime-node's public
// `InferenceSession.run` only defers the binding's synchronous `run` to a later tick; the package
// is pinned to an exact version, and a missing binding is reported as "no native GEMM".
// Why the copies: the binding takes only ArrayBuffer-backed arrays, and the wasm memory is a
// SharedArrayBuffer, so A goes in and C comes out through host staging arrays (O(M·K + M·N)
// against the product's O(M·N·K)); a product with a large C runs in blocks of rows, so that the
// staging stays under MAX_STAGE_ELEMS (the logits at T=512 would need 103 MB) and warm in cache.
// Products with a Q4_0 or Q8_0 weight run MatMulNBits (src/io/node/onnx-qgemm.ts) in a session per
// weight, packed on the first product (a quantized weight is not trained), the activation rounded
// to 8 bits per block by MLAS (accuracy_level 4), as ggml does.
// Not for: the browser, or any op other than matrix products (src/backends/wasm/native-gemm.ts).
import { createRequire } from 'node:module';
import type * as Protobuf from 'protobufjs';
import type { AttentionCall, BlockCall, ChainCall, GemmActivation, GemmCall, NativeGemm, NativeGemmLoad, QGemmCall } from '../native-gemm.js';
import { BLOCK_VALUE_NAMES, blockValueOutput, encodeChain } from './onnx-block.js';
import { fusedBlockValueShape } from '../../tensor/backend.js';
import { GemmModelWriter, ONNX_ACTIVATIONS } from './onnx-gemm.js';
import { NBITS_TYPES, ggmlToNBits } from './onnx-qgemm.js';
import { DecodeSessions } from './native-decode.js';
import type { DecodeCall } from '../native-decode.js';

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
interface TensorCtor {
  new (type: 'float32', data: Float32Array, dims: readonly number[]): unknown;
  new (type: 'int64', data: BigInt64Array, dims: readonly number[]): unknown;
}

/** Sessions kept for products whose B changes between calls, by shape (least recently used dropped). */
const MAX_DYNAMIC_SESSIONS = 32;
/** Elements of C staged per run (32 MB): larger products run in blocks of rows. */
const MAX_STAGE_ELEMS = 8 << 20;
/**
 * Bytes of the values inside a chain (all of them, held by ORT until the run ends) up to which a
 * plain call runs on the chain's session with values rather than on a plain session of its own
 * (GPT-2 small, 12 blocks: 90 MB at 1 × 128 rows, 585 MB at 1 × 512).
 */
const SHARED_VALUES_BYTES = 128 << 20;

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
  /** The bias buffer and its version baked into the session (null: none). */
  biasKey: object | null;
  biasVersion: number;
  /** Products seen with this version; packed from the second one. */
  uses: number;
  /** Bytes of B and bias copied into the session (its packed copy is about as large). */
  bytes: number;
  session: OrtSession | null;
}

/** The session of consecutive whole blocks and the parameters (buffers, versions) baked into it. */
interface PackedChain {
  keys: object[];
  versions: number[];
  uses: number;
  bytes: number;
  session: OrtSession | null;
}

class OrtGemm implements NativeGemm {
  readonly name: string;
  private readonly packed = new Map<object, Map<string, Packed>>();
  /**
   * Sessions of consecutive whole blocks (one block: a chain of one), by the buffer of the first
   * block's qkv weight, then by the number of blocks and whether the values inside are outputs
   * (`12`, `12:inner`).
   */
  private readonly chains = new Map<object, Map<string, PackedChain>>();
  /** The int64 shape inputs of a block (SPLIT, HEADS, ROWS), by `${batch}x${pos}`. */
  private readonly blockShapes = new Map<string, Record<string, unknown>>();
  private readonly dynamic = new Map<string, OrtSession>();
  /** Host staging arrays by role (A, B, bias, C, ...), grown as needed. */
  private readonly stages = new Map<string, Float32Array<ArrayBuffer>>();
  /** Causal masks (0 / -inf) by `${TQ}x${TK}`. */
  private readonly masks = new Map<string, Float32Array<ArrayBuffer>>();
  readonly activations: ReadonlySet<GemmActivation> = ONNX_ACTIVATIONS;
  readonly qgemmTypes: ReadonlySet<string> = NBITS_TYPES;
  private disposed = false;
  /** Decode steps of runs of blocks with their KV caches (native-decode.ts). */
  private readonly decodes: DecodeSessions;

  constructor(
    private readonly Session: new () => OrtSession,
    private readonly Tensor: TensorCtor,
    private readonly writer: GemmModelWriter,
    private readonly threads: number,
    version: string,
  ) {
    this.name = `onnxruntime-node ${version} (MLAS), ${threads} thread${threads === 1 ? '' : 's'}`;
    this.decodes = new DecodeSessions({
      writer,
      tensor: (type: 'float32' | 'int64', data: Float32Array | BigInt64Array, dims: readonly number[]) => new Tensor(type as 'float32', data as Float32Array, dims),
      // ACTLAB_NATIVE_DECODE_SPIN=1: a decode step's ORT threads spin between its parallel sections
      // (and stop when the call returns). Off by default: on a shared 2-core machine (load ~3) steps
      // took 1.45–2× longer with it (bench/RESULTS.md); on an idle one the wake-ups it saves are
      // most of what a second thread loses.
      createSession: (model) => this.createSession(model, true, 'all', process.env.ACTLAB_NATIVE_DECODE_SPIN === '1'),
    });
  }

  gemm(call: GemmCall): void {
    if (this.disposed) throw new Error('native gemm: used after dispose');
    const { M, N, K } = call;
    const packed = call.weight ? this.packedSession(call) : { session: null, fresh: false };
    let run = packed.session;
    const feeds: Record<string, unknown> = {};
    if (!run) {
      // B per call. A weight seen for the first time is copied to a temporary (it is packed on its
      // next product, and a staging array as large as the unembedding would stay for nothing);
      // a B that changes between calls (training) reuses the staging array.
      const b = packed.fresh ? new Float32Array(K * N) : this.stage('B', K * N);
      b.set(call.b);
      feeds.B = new this.Tensor('float32', b, call.transB ? [N, K] : [K, N]);
      if (call.bias) {
        const bias = this.stage('bias', N);
        bias.set(call.bias.data);
        feeds.bias = new this.Tensor('float32', bias, [N]);
      }
      run = this.dynamicSession(K, N, call.transA, call.transB, !!call.bias);
    }
    const act = call.act ? this.activationSession(call.act) : null;
    // blocks of rows (A stored [K, M] when transA: one block)
    const blocks = call.transA ? 1 : Math.ceil((M * N) / MAX_STAGE_ELEMS);
    const rows = Math.ceil(M / Math.max(1, blocks));
    for (let r0 = 0; r0 < M; r0 += rows) {
      const m = Math.min(rows, M - r0);
      const a = this.stage('A', m * K);
      a.set(call.transA ? call.a : call.a.subarray(r0 * K, (r0 + m) * K));
      feeds.A = new this.Tensor('float32', a, call.transA ? [K, M] : [m, K]);
      const c = this.stage('C', m * N);
      run.run(feeds, { C: new this.Tensor('float32', c, [m, N]) }, {});
      if (act) {
        const y = this.stage('act', m * N);
        act.run({ X: new this.Tensor('float32', c, [m, N]) }, { Y: new this.Tensor('float32', y, [m, N]) }, {});
        call.c.set(y, r0 * N);
      } else {
        call.c.set(c, r0 * N);
      }
    }
  }

  qgemm(call: QGemmCall): void {
    if (this.disposed) throw new Error('native gemm: used after dispose');
    const { M, N, K } = call;
    const session = this.quantSession(call);
    const rows = Math.max(1, Math.floor(MAX_STAGE_ELEMS / N));
    for (let r0 = 0; r0 < M; r0 += rows) {
      const m = Math.min(rows, M - r0);
      const a = this.stage('A', m * K);
      a.set(call.x.subarray(r0 * K, (r0 + m) * K));
      const c = this.stage('C', m * N);
      session.run({ A: new this.Tensor('float32', a, [m, K]) }, { C: new this.Tensor('float32', c, [m, N]) }, {});
      call.y.set(c, r0 * N);
    }
  }

  attention(call: AttentionCall): void {
    if (this.disposed) throw new Error('native gemm: used after dispose');
    const { B, H, TQ, TK, D, DV } = call;
    const put = (role: string, src: Float32Array, dims: number[]) => {
      const t = this.stage(role, src.length);
      t.set(src);
      return new this.Tensor('float32', t, dims);
    };
    const feeds = {
      Q: put('Q', call.q, [B, TQ, H, D]), K: put('K', call.k, [B, TK, H, D]), V: put('V', call.v, [B, TK, H, DV]),
      SCALE: new this.Tensor('float32', new Float32Array([call.scale]), []),
      MASK: new this.Tensor('float32', this.mask(TQ, TK, call.causal), [TQ, TK]),
    };
    const y = this.stage('Y', B * H * TQ * DV);
    const fetches: Record<string, unknown> = { Y: new this.Tensor('float32', y, [B, H, TQ, DV]) };
    const p = call.probs ? this.stage('P', B * H * TQ * TK) : null;
    if (p) fetches.P = new this.Tensor('float32', p, [B, H, TQ, TK]);
    this.attentionSession(!!p).run(feeds, fetches, {});
    if (!call.tokenMajor) call.y.set(y);
    else {
      // rows of DV from head order [B, H, TQ] to token order [B, TQ, H]
      for (let b = 0; b < B; b++) for (let h = 0; h < H; h++) for (let i = 0; i < TQ; i++) {
        const from = ((b * H + h) * TQ + i) * DV;
        call.y.set(y.subarray(from, from + DV), ((b * TQ + i) * H + h) * DV);
      }
    }
    if (p) call.probs!.set(p);
  }

  block(call: BlockCall): boolean {
    const { batch, pos, dModel, x, y } = call;
    return this.chain({ batch, pos, dModel, x, blocks: [call], outputs: [{ block: 0, y }] });
  }

  chain(call: ChainCall): boolean {
    if (this.disposed) throw new Error('native gemm: used after dispose');
    const { batch, pos, dModel: d } = call;
    const nHeads = call.blocks[0]?.nHeads ?? 0;
    // one HEADS input serves every block
    if (!nHeads || call.blocks.some((b) => b.nHeads !== nHeads)) return false;
    const last = call.outputs[call.outputs.length - 1];
    if (!last || last.block !== call.blocks.length - 1) throw new Error(`native gemm: a chain of ${call.blocks.length} blocks must write out its last block's output`);
    const M = batch * pos;
    const session = this.chainSession(call);
    if (!session) return false;
    const x = this.stage('X', M * d);
    x.set(call.x);
    const shapeKey = `${batch}x${pos}:${nHeads}`;
    let shapes = this.blockShapes.get(shapeKey);
    if (!shapes) {
      const i64 = (v: number[]) => new this.Tensor('int64', BigInt64Array.from(v.map(BigInt)), [v.length]);
      shapes = { SPLIT: i64([d, d, d]), HEADS: i64([batch, pos, nHeads, d / nHeads]), ROWS: i64([M, d]) };
      if (this.blockShapes.size >= 8) this.blockShapes.clear();
      this.blockShapes.set(shapeKey, shapes);
    }
    // one staging array per output read out (the residual after each listened-to block)
    const ys = call.outputs.map((o) => this.stage(`Y${o.block}`, M * d));
    const fetches: Record<string, unknown> = {};
    call.outputs.forEach((o, i) => { fetches[`Y${o.block}`] = new this.Tensor('float32', ys[i]!, [M, d]); });
    // the values inside the blocks asked for, in arrays ORT allocates (the binding returns every
    // fetched output in a new array, a preallocated one as a copy: a staging array per value
    // saved nothing over a cache of every value, bench/RESULTS.md)
    const reads = call.reads ?? [];
    for (const r of reads) fetches[blockValueOutput(r.block, r.value)] = null;
    const got = session.run({ X: new this.Tensor('float32', x, [M, d]), MASK: new this.Tensor('float32', this.mask(pos, pos, true), [pos, pos]), ...shapes }, fetches, {});
    call.outputs.forEach((o, i) => o.y.set(ys[i]!));
    for (const r of reads) {
      const name = blockValueOutput(r.block, r.value);
      const data = (got[name] as { data?: unknown } | undefined)?.data;
      if (!(data instanceof Float32Array) || data.length !== r.y.length) {
        throw new Error(`native gemm: chain output ${name} came back as ${data instanceof Float32Array ? `${data.length} floats` : typeof data}, expected ${r.y.length} floats`);
      }
      r.y.set(data);
    }
    return true;
  }

  decode(call: DecodeCall): boolean {
    if (this.disposed) throw new Error('native gemm: used after dispose');
    return this.decodes.run(call);
  }

  forget(key: object): void {
    this.decodes.forget(key);
    for (const [first, byLength] of this.chains) {
      for (const [n, c] of byLength) if (c.keys.includes(key)) { c.session?.dispose(); byLength.delete(n); }
      if (!byLength.size) this.chains.delete(first);
    }
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

  heldBytes(): { packed: number; staging: number; note: string } {
    let packed = 0;
    let sessions = 0;
    for (const m of this.packed.values()) for (const p of m.values()) if (p.session) { packed += p.bytes; sessions++; }
    for (const m of this.chains.values()) for (const c of m.values()) if (c.session) { packed += c.bytes; sessions++; }
    const dec = this.decodes.heldBytes();
    packed += dec.packed;
    sessions += dec.sessions;
    let staging = 0;
    for (const a of this.stages.values()) staging += a.byteLength;
    for (const a of this.masks.values()) staging += a.byteLength;
    staging += dec.mirrors;
    // measured with onnxruntime-node 1.30: a one-node session holds its packed B (the weight's size
    // plus MLAS's padding) and ~3 MB of its own (graph, kernels, allocator) whatever the options
    return { packed, staging, note: `${sessions} packed + ${this.dynamic.size} other sessions, each with ~3 MB of ORT's own besides the packed weight` };
  }

  dispose(): void {
    if (this.disposed) return;
    for (const key of [...this.packed.keys()]) this.forget(key);
    for (const m of this.chains.values()) for (const c of m.values()) c.session?.dispose();
    this.chains.clear();
    this.decodes.dispose();
    for (const s of this.dynamic.values()) s.dispose();
    this.dynamic.clear();
    this.stages.clear();
    this.masks.clear();
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

  /**
   * The packed session for this weight (and bias), or null while it is on its first product (or
   * changed); `fresh` when this key and layout were never seen before.
   */
  private packedSession(call: GemmCall): { session: OrtSession | null; fresh: boolean } {
    const w = call.weight!;
    const bias = call.bias;
    let byLayout = this.packed.get(w.key);
    if (!byLayout) this.packed.set(w.key, (byLayout = new Map()));
    const layout = bias ? `${w.layout}+bias` : w.layout;
    const p = byLayout.get(layout);
    const same = p && p.version === w.version && p.biasKey === (bias?.key ?? null) && p.biasVersion === (bias?.version ?? 0);
    if (!same) {
      p?.session?.dispose();
      byLayout.set(layout, { version: w.version, biasKey: bias?.key ?? null, biasVersion: bias?.version ?? 0, uses: 1, session: null, bytes: (call.K * call.N + (bias ? call.N : 0)) * 4 });
      return { session: null, fresh: !p };
    }
    if (!p.session && ++p.uses >= 2) {
      const model = this.writer.encode({ K: call.K, N: call.N, transA: call.transA, transB: call.transB, weight: call.b, bias: bias?.data });
      p.session = this.createSession(model);
    }
    return { session: p.session, fresh: false };
  }

  /**
   * The session of these consecutive blocks, or null while their parameters are on their first
   * call with these values (made on the second, as a weight is packed on its second product).
   * Every block's output is a graph output, so any set of them can be read out of one session.
   * A call that reads values inside the blocks gets a second session where those are graph
   * outputs too: ORT keeps every graph output of a run until its end, fetched or not, so in the
   * plain session they raised the peak RSS of GPT-2 small's 12 blocks at 8 × 128 rows from ~1410
   * to ~2090 MB (bench/RESULTS.md). The blocks' weights are packed once, though: making the
   * session with values drops the plain one of the same blocks, and a plain call whose values
   * would take at most SHARED_VALUES_BYTES runs on the session with values (fetching only the
   * residuals; ORT allocating every value made its call ~3% slower at 1 × 128 rows); a larger
   * plain call gets a plain session again.
   */
  private chainSession(call: ChainCall): OrtSession | null {
    const keys = call.blocks.flatMap((b) => b.params.map((p) => p.key));
    const versions = call.blocks.flatMap((b) => b.params.map((p) => p.version));
    const first = call.blocks[0]!.params[2]!.key;
    let byLength = this.chains.get(first);
    if (!byLength) this.chains.set(first, (byLength = new Map()));
    const inner = !!call.reads?.length;
    const plainKey = `${call.blocks.length}`;
    const innerKey = `${plainKey}:inner`;
    const current = (c: PackedChain | undefined): boolean =>
      !!c && c.keys.length === keys.length && c.keys.every((k, i) => k === keys[i]) && c.versions.every((v, i) => v === versions[i]);
    if (!inner) {
      const shared = byLength.get(innerKey);
      if (shared?.session && current(shared) && chainValueBytes(call) <= SHARED_VALUES_BYTES) return shared.session;
    }
    const n = inner ? innerKey : plainKey;
    const c = byLength.get(n);
    if (!c || !current(c)) {
      c?.session?.dispose();
      const bytes = call.blocks.reduce((s, b) => s + b.params.reduce((t, p) => t + p.data.byteLength, 0), 0);
      byLength.set(n, { keys, versions, uses: 1, bytes, session: null });
      return null;
    }
    if (!c.session && ++c.uses >= 2) {
      const model = encodeChain(this.writer, {
        dModel: call.dModel,
        blocks: call.blocks.map((b) => ({ dMlp: b.dMlp, eps1: b.eps1, eps2: b.eps2, scale: b.scale, act: b.act, transB: b.transB, params: b.params.map((p) => p.data) })),
        outputs: call.blocks.map((_, i) => i),
        inner,
      });
      // no arena: each session's arena would keep its own intermediates (qkv, scores, the MLP's
      // hidden layer: ~70 MB per block at 8 x 128 rows), where malloc reuses one heap for all
      // blocks (measured: 650 MB less peak RSS over 12 blocks, the same CPU time)
      c.session = this.createSession(model, false, 'all');
      if (inner) {
        // one packed copy of these blocks: small plain calls run on this session from now on
        const plain = byLength.get(plainKey);
        if (current(plain)) {
          plain!.session?.dispose();
          byLength.delete(plainKey);
        }
      }
    }
    return c.session;
  }

  /**
   * The MatMulNBits session of this quantized weight (with this bias and activation, for a linear
   * layer), made (its blocks repacked) when missing or when the weight or bias was written since.
   */
  private quantSession(call: QGemmCall): OrtSession {
    const w = call.weight;
    const bias = call.bias;
    let byLayout = this.packed.get(w.key);
    if (!byLayout) this.packed.set(w.key, (byLayout = new Map()));
    const layout = `${call.type}:${w.layout}${bias ? '+bias' : ''}${call.act ? `+${call.act}` : ''}`;
    const p = byLayout.get(layout);
    if (p?.session && p.version === w.version && p.biasKey === (bias?.key ?? null) && p.biasVersion === (bias?.version ?? 0)) return p.session;
    p?.session?.dispose();
    const nb = ggmlToNBits(call.type, call.raw(), call.N, call.K);
    const model = this.writer.encodeNBits({
      K: call.K, N: call.N, bits: nb.bits, block: nb.block, accuracyLevel: 4, codes: nb.codes, scales: nb.scales, offsets: nb.offsets,
      bias: bias ? Float32Array.from(bias.data) : undefined, act: call.act,
    });
    const session = this.createSession(model);
    byLayout.set(layout, {
      version: w.version, biasKey: bias?.key ?? null, biasVersion: bias?.version ?? 0, uses: 1,
      bytes: nb.codes.byteLength + nb.scales.byteLength + (nb.offsets?.byteLength ?? 0) + (bias ? call.N * 4 : 0), session,
    });
    return session;
  }

  /** A grow-only host array for one role, cut to `n` elements. */
  private stage(role: string, n: number): Float32Array<ArrayBuffer> {
    let arr = this.stages.get(role);
    if (!arr || arr.length < n) {
      arr = new Float32Array(Math.max(n, Math.ceil((arr?.length ?? 0) * 1.5)));
      this.stages.set(role, arr);
    }
    return arr.subarray(0, n);
  }

  /** [TQ, TK]: 0 where query i sees key j (causal: j <= i + TK - TQ), -inf elsewhere. */
  private mask(TQ: number, TK: number, causal: boolean): Float32Array<ArrayBuffer> {
    const key = `${TQ}x${TK}:${causal}`;
    let m = this.masks.get(key);
    if (!m) {
      m = new Float32Array(TQ * TK);
      if (causal) for (let i = 0; i < TQ; i++) m.fill(-Infinity, i * TK + Math.max(0, i + TK - TQ + 1), (i + 1) * TK);
      if (this.masks.size >= 8) this.masks.clear();
      this.masks.set(key, m);
    }
    return m;
  }

  private activationSession(act: GemmActivation): OrtSession {
    return this.cached(`act:${act}`, () => this.writer.encodeActivation(act));
  }

  private attentionSession(probs: boolean): OrtSession {
    // intermediates (scores, probabilities) live in ORT's arena, reused from call to call
    return this.cached(`attention:${probs}`, () => this.writer.encodeAttention({ probs }), true);
  }

  private dynamicSession(K: number, N: number, transA: boolean, transB: boolean, bias: boolean): OrtSession {
    return this.cached(`${K}x${N}:${transA}:${transB}:${bias}`, () => this.writer.encode({ K, N, transA, transB, bias: bias ? 'input' : undefined }));
  }

  /** A session kept by key (least recently used dropped past MAX_DYNAMIC_SESSIONS). */
  private cached(key: string, model: () => Uint8Array, arena = false): OrtSession {
    let s = this.dynamic.get(key);
    if (s) {
      this.dynamic.delete(key); // re-insert: most recently used last
    } else {
      s = this.createSession(model(), arena);
      if (this.dynamic.size >= MAX_DYNAMIC_SESSIONS) {
        const [oldKey, old] = this.dynamic.entries().next().value as [string, OrtSession];
        old.dispose();
        this.dynamic.delete(oldKey);
      }
    }
    this.dynamic.set(key, s);
    return s;
  }

  private createSession(model: Uint8Array, arena = false, level: 'basic' | 'all' = 'basic', spin = false): OrtSession {
    const s = new this.Session();
    s.loadModel(model.buffer as ArrayBuffer, model.byteOffset, model.byteLength, {
      intraOpNumThreads: this.threads,
      interOpNumThreads: 1,
      executionMode: 'sequential',
      graphOptimizationLevel: level,
      // a product's output is preallocated (staging) and its inputs are host arrays: ORT's arena
      // would only hold memory; attention's intermediates reuse it
      enableCpuMemArena: arena,
      enableMemPattern: arena,
      // idle ORT threads must not spin while the wasm threads run the other ops (with `spin`, they
      // spin inside a call and stop at its end)
      extra: { session: spin ? { intra_op: { allow_spinning: '1' }, force_spinning_stop: '1' } : { intra_op: { allow_spinning: '0' } } },
    });
    return s;
  }
}

/** Bytes of every value inside the blocks of `call` (BLOCK_VALUE_NAMES) for one run. */
function chainValueBytes(call: ChainCall): number {
  const { batch, pos, dModel: d } = call;
  return 4 * call.blocks.reduce((s, b) => s + BLOCK_VALUE_NAMES.reduce((t, v) => t + fusedBlockValueShape(v, batch, pos, b.nHeads, d, b.dMlp).reduce((a, n) => a * n, 1), 0), 0);
}

function firstLine(e: unknown): string {
  return String(e instanceof Error ? e.message : e).split('\n')[0]!;
}
