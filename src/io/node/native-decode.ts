// Decode steps on ONNX Runtime (the NativeGemm's `decode`, src/io/native-decode.ts): one session per
// run of consecutive blocks (onnx-decode.ts), weights packed when it is made, and per block a host
// mirror of its KV cache in the graph's layout [pos, batch, heads, d_head] for keys and for values.
// Why a mirror: ORT's node binding takes only ArrayBuffer-backed arrays and the wasm memory is a
// SharedArrayBuffer, so the cache cannot be handed over as it lies; the mirror's first P rows are
// a tight view (no copy per step), the step's new rows are fetched straight into the mirror's next
// rows and copied into the caller's cache (the cache stays the caller's object). A mirror is
// trusted only while its cache buffer is the one it last wrote, at the version it left it, holding
// the same number of positions; otherwise it is filled again from the cache (a new cache, growth,
// a step that ran op by op).
// Not for: deciding when a step may run natively (src/models/layers/fused-decode.ts), the views
// (src/backends/wasm/native-decode.ts).
import type { DecodeCall } from '../native-decode.js';
import { encodeDecode, type DecodeBlockSpec, type DecodeProduct } from './onnx-decode.js';
import type { GemmModelWriter } from './onnx-gemm.js';
import { ggmlToNBits } from './onnx-qgemm.js';

/** What this needs of the ORT binding (native-gemm.ts owns it). */
export interface DecodeRuntime {
  readonly writer: GemmModelWriter;
  tensor(type: 'float32', data: Float32Array, dims: readonly number[]): unknown;
  tensor(type: 'int64', data: BigInt64Array, dims: readonly number[]): unknown;
  createSession(model: Uint8Array): { run(feeds: Record<string, unknown>, fetches: Record<string, unknown>, options: object): unknown; dispose(): void };
}

type Session = ReturnType<DecodeRuntime['createSession']>;

/** One block's cache as the graph reads it. */
interface Mirror {
  /** The cache buffer it copies, and that buffer's version once the last step's rows were written. */
  key: object | null;
  version: number;
  /** Positions held. */
  n: number;
  /** Elements per position (batch · heads · d_head). */
  row: number;
  k: Float32Array<ArrayBuffer>;
  v: Float32Array<ArrayBuffer>;
}

interface Entry {
  keys: object[];
  versions: number[];
  bytes: number;
  session: Session;
  mirrors: Mirror[];
}

export class DecodeSessions {
  /** By the buffer of the first block's qkv weight, then by the number of blocks. */
  private readonly entries = new Map<object, Map<number, Entry>>();
  private readonly shapes = new Map<string, Record<string, unknown>>();
  private stageX = new Float32Array(0);
  private readonly stageY = new Map<number, Float32Array<ArrayBuffer>>();
  private zeros = new Float32Array(0);

  constructor(private readonly rt: DecodeRuntime) {}

  run(call: DecodeCall): boolean {
    const { batch: B, pos: T, past: P, dModel: d } = call;
    const H = call.blocks[0]?.nHeads ?? 0;
    if (!H || call.blocks.some((b) => b.nHeads !== H) || d % H !== 0) return false;
    const last = call.outputs[call.outputs.length - 1];
    if (!last || last.block !== call.blocks.length - 1) throw new Error(`native decode: a run of ${call.blocks.length} blocks must write out its last block's output`);
    const dh = d / H;
    const M = B * T;
    const e = this.entry(call);
    const row = B * H * dh;
    const feeds: Record<string, unknown> = { ...this.shapeInputs(B, T, H, d), MASK: this.rt.tensor('float32', this.mask(T, P), [T, P + T]) };
    const fetches: Record<string, unknown> = {};
    call.blocks.forEach((b, i) => {
      const m = this.sync(e.mirrors[i]!, b.cache, B, H, dh, P, T);
      const dims = (n: number) => [n, B, H, dh];
      feeds[`PK${i}`] = this.rt.tensor('float32', m.k.subarray(0, P * row), dims(P));
      feeds[`PV${i}`] = this.rt.tensor('float32', m.v.subarray(0, P * row), dims(P));
      fetches[`NK${i}`] = this.rt.tensor('float32', m.k.subarray(P * row, (P + T) * row), dims(T));
      fetches[`NV${i}`] = this.rt.tensor('float32', m.v.subarray(P * row, (P + T) * row), dims(T));
    });
    if (this.stageX.length < M * d) this.stageX = new Float32Array(M * d);
    const x = this.stageX.subarray(0, M * d);
    x.set(call.x);
    feeds.X = this.rt.tensor('float32', x, [M, d]);
    const ys = call.outputs.map((o) => {
      let s = this.stageY.get(o.block);
      if (!s || s.length < M * d) this.stageY.set(o.block, (s = new Float32Array(M * d)));
      const y = s.subarray(0, M * d);
      fetches[`Y${o.block}`] = this.rt.tensor('float32', y, [M, d]);
      return y;
    });
    e.session.run(feeds, fetches, {});
    call.outputs.forEach((o, i) => o.y.set(ys[i]!));
    // the new rows into the caller's cache [2, batch, heads, cap, d_head]
    call.blocks.forEach((b, i) => {
      const m = e.mirrors[i]!;
      const { data, cap } = b.cache;
      for (let t = 0; t < T; t++) {
        for (let bh = 0; bh < B * H; bh++) {
          const from = (P + t) * row + bh * dh;
          const to = (bh * cap + P + t) * dh;
          data.set(m.k.subarray(from, from + dh), to);
          data.set(m.v.subarray(from, from + dh), to + B * H * cap * dh);
        }
      }
      m.key = b.cache.key;
      m.version = b.cache.version + 1;
      m.n = P + T;
    });
    return true;
  }

  forget(key: object): void {
    for (const [first, byLength] of this.entries) {
      for (const [n, e] of byLength) if (e.keys.includes(key)) { e.session.dispose(); byLength.delete(n); }
      if (!byLength.size) this.entries.delete(first);
    }
  }

  /** Bytes of weights baked into sessions, and of cache mirrors. */
  heldBytes(): { packed: number; mirrors: number; sessions: number } {
    let packed = 0;
    let mirrors = 0;
    let sessions = 0;
    for (const m of this.entries.values()) {
      for (const e of m.values()) {
        packed += e.bytes;
        sessions++;
        for (const r of e.mirrors) mirrors += r.k.byteLength + r.v.byteLength;
      }
    }
    return { packed, mirrors, sessions };
  }

  dispose(): void {
    for (const m of this.entries.values()) for (const e of m.values()) e.session.dispose();
    this.entries.clear();
    this.shapes.clear();
  }

  /** The session of these blocks with these parameter values, made (weights packed) when missing or stale. */
  private entry(call: DecodeCall): Entry {
    const keys = call.blocks.flatMap((b) => b.params.map((p) => p.key));
    const versions = call.blocks.flatMap((b) => b.params.map((p) => p.version));
    const first = call.blocks[0]!.params[2]!.key;
    let byLength = this.entries.get(first);
    if (!byLength) this.entries.set(first, (byLength = new Map()));
    const n = call.blocks.length;
    const old = byLength.get(n);
    if (old && old.keys.length === keys.length && old.keys.every((k, i) => k === keys[i]) && old.versions.every((v, i) => v === versions[i])) return old;
    old?.session.dispose();
    let bytes = 0;
    const blocks: DecodeBlockSpec[] = call.blocks.map((b) => {
      const p = b.params;
      const f32 = (j: number) => { const t = p[j]!; if (t.type) throw new Error(`native decode: parameter ${j} is ${t.type}, expected f32`); return t.data; };
      const d = call.dModel;
      const dims: [number, number][] = [[d, 3 * d], [d, d], [d, b.dMlp], [b.dMlp, d]];
      const product = (j: number): DecodeProduct => {
        const w = p[[2, 4, 8, 10][j]!]!;
        const bias = Float32Array.from(f32([3, 5, 9, 11][j]!));
        const [K, N] = dims[j]!;
        if (!w.type) { bytes += w.data.byteLength + bias.byteLength; return { w: w.data, transB: b.transB[j]!, bias }; }
        const nbits = ggmlToNBits(w.type, w.raw!, N, K);
        bytes += nbits.codes.byteLength + nbits.scales.byteLength + (nbits.offsets?.byteLength ?? 0) + bias.byteLength;
        return { nbits, bias };
      };
      return {
        dMlp: b.dMlp, eps1: b.eps1, eps2: b.eps2, scale: b.scale, act: b.act,
        norms: [f32(0), f32(1), f32(6), f32(7)], products: [product(0), product(1), product(2), product(3)],
      };
    });
    const session = this.rt.createSession(encodeDecode(this.rt.writer, { dModel: call.dModel, blocks }));
    const mirrors = call.blocks.map((): Mirror => ({ key: null, version: -1, n: 0, row: 0, k: new Float32Array(0), v: new Float32Array(0) }));
    const e: Entry = { keys, versions, bytes, session, mirrors };
    byLength.set(n, e);
    return e;
  }

  /** The mirror holding the cache's first P positions, with room for T more (filled from the cache when it is not the cache's copy). */
  private sync(m: Mirror, cache: DecodeCall['blocks'][number]['cache'], B: number, H: number, dh: number, P: number, T: number): Mirror {
    const row = B * H * dh;
    const fresh = m.key === cache.key && m.version === cache.version && m.n === P && m.row === row;
    if (m.k.length < (P + T) * row || m.row !== row) {
      const cap = Math.max(P + T, 2 * (m.row === row ? m.k.length / row : 0), 16);
      const k = new Float32Array(cap * row);
      const v = new Float32Array(cap * row);
      if (fresh) { k.set(m.k.subarray(0, P * row)); v.set(m.v.subarray(0, P * row)); }
      m.k = k;
      m.v = v;
      m.row = row;
    }
    if (fresh) return m;
    const { data, cap } = cache;
    for (let t = 0; t < P; t++) {
      for (let bh = 0; bh < B * H; bh++) {
        const from = (bh * cap + t) * dh;
        m.k.set(data.subarray(from, from + dh), t * row + bh * dh);
        m.v.set(data.subarray(from + B * H * cap * dh, from + B * H * cap * dh + dh), t * row + bh * dh);
      }
    }
    m.key = cache.key;
    m.version = cache.version;
    m.n = P;
    return m;
  }

  private shapeInputs(B: number, T: number, H: number, d: number): Record<string, unknown> {
    const key = `${B}x${T}:${H}:${d}`;
    let s = this.shapes.get(key);
    if (!s) {
      const i64 = (v: number[]) => this.rt.tensor('int64', BigInt64Array.from(v.map(BigInt)), [v.length]);
      s = { SPLIT: i64([d, d, d]), HEADS: i64([B, T, H, d / H]), ROWS: i64([B * T, d]) };
      if (this.shapes.size >= 8) this.shapes.clear();
      this.shapes.set(key, s);
    }
    return s;
  }

  /** [T, P + T]: 0 where new position i sees key j (j <= P + i), -inf elsewhere; one step (T = 1) sees all. */
  private mask(T: number, P: number): Float32Array {
    if (T === 1) {
      if (this.zeros.length < P + 1) this.zeros = new Float32Array(2 * (P + 1));
      return this.zeros.subarray(0, P + 1);
    }
    const m = new Float32Array(T * (P + T));
    for (let i = 0; i < T; i++) m.fill(-Infinity, i * (P + T) + P + i + 1, (i + 1) * (P + T));
    return m;
  }
}
