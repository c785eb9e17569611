// Decode steps on ONNX Runtime (the NativeGemm's `decode`, src/io/native-decode.ts): one session per
// run of consecutive blocks (onnx-decode.ts), weights packed when it is made, and per block a host
// mirror of its KV cache in the graph's layout: keys transposed [batch, heads, d_head, C], values
// [batch, heads, C, d_head], C the mirror's capacity (grown by 64 positions, one for all blocks).
// Why a mirror: ORT's node binding takes only ArrayBuffer-backed arrays and the wasm memory is a
// SharedArrayBuffer, so the cache cannot be handed over as it lies; the whole mirror goes in as it
// is (no copy of the past per step: the capacity past the cached positions is masked), the step's
// new keys and values come out and are written into the mirror and into the caller's cache (the
// cache stays the caller's object). A mirror is trusted only while its cache buffer is the one it
// last wrote, at the version it left it, holding the same number of positions; otherwise it is
// filled again from the cache (a new cache, growth, a step that ran op by op).
// Not for: deciding when a step may run natively (src/models/layers/fused-decode.ts), the views
// (src/backends/wasm/native-decode.ts).
import type { DecodeCall, DecodeParam } from '../native-decode.js';
import { encodeDecode, type DecodeBlockSpec, type DecodeHeadSpec, type DecodeProduct } from './onnx-decode.js';
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
  /** Positions it has room for, and the geometry (batch · heads, d_head) it was laid out for. */
  cap: number;
  bh: number;
  dh: number;
  /** [batch, heads, d_head, cap] */
  k: Float32Array<ArrayBuffer>;
  /** [batch, heads, cap, d_head] */
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
  /** By the buffer of the first block's qkv weight, then by the number of blocks and whether the head is in. */
  private readonly entries = new Map<object, Map<string, Entry>>();
  private readonly shapes = new Map<string, Record<string, unknown>>();
  /** Host staging arrays by role (X, Y{i}, NK{i}, NV{i}), grown as needed. */
  private readonly stages = new Map<string, Float32Array<ArrayBuffer>>();
  private readonly stageViews = new Map<string, Float32Array<ArrayBuffer>>();
  /** ORT tensors kept by role while their array and dims stay (wrap). */
  private readonly wrapped = new Map<string, { data: Float32Array<ArrayBuffer>; key: string; tensor: unknown }>();
  private partsKey = '';
  private partsTensor: unknown;
  private maskKey = '';
  private lastMask = new Float32Array(0);

  constructor(private readonly rt: DecodeRuntime) {}

  run(call: DecodeCall): boolean {
    const { batch: B, pos: T, past: P, dModel: d } = call;
    const H = call.blocks[0]?.nHeads ?? 0;
    if (!H || call.blocks.some((b) => b.nHeads !== H) || d % H !== 0) return false;
    const last = call.outputs[call.outputs.length - 1];
    if (!last || last.block !== call.blocks.length - 1) throw new Error(`native decode: a run of ${call.blocks.length} blocks must write out its last block's output`);
    const dh = d / H;
    const M = B * T;
    const BH = B * H;
    const e = this.entry(call);
    // one capacity for every block's mirror (one mask serves them all)
    // (grown 64 positions past the next multiple of 64: the masked capacity is read every step, so
    // it is kept short, and a mirror is laid out anew at most once per 64 steps)
    let C = Math.max(16, ...e.mirrors.map((m) => (m.bh === BH && m.dh === dh ? m.cap : 0)));
    if (C < P + T) C = Math.ceil((P + T) / 64) * 64 + 64;
    const feeds: Record<string, unknown> = {
      ...this.shapeInputs(B, T, H, d), PARTS: this.parts(C, T), MASK: this.wrap('MASK', this.mask(T, P, C), [T, C + T]),
    };
    const fetches: Record<string, unknown> = {};
    const fresh = call.blocks.map((b, i) => {
      const m = this.sync(e.mirrors[i]!, b.cache, BH, dh, P, C);
      feeds[`PK${i}`] = this.wrap(`PK${i}`, m.k, [B, H, dh, C]);
      feeds[`PV${i}`] = this.wrap(`PV${i}`, m.v, [B, H, C, dh]);
      const nk = this.stage(`NK${i}`, BH * dh * T);
      const nv = this.stage(`NV${i}`, BH * T * dh);
      fetches[`NK${i}`] = this.wrap(`NK${i}`, nk, [B, H, dh, T]);
      fetches[`NV${i}`] = this.wrap(`NV${i}`, nv, [B, H, T, dh]);
      return { m, nk, nv };
    });
    const x = this.stage('X', M * d);
    x.set(call.x);
    feeds.X = this.wrap('X', x, [M, d]);
    const ys = call.outputs.map((o) => {
      const y = this.stage(`Y${o.block}`, M * d);
      fetches[`Y${o.block}`] = this.wrap(`Y${o.block}`, y, [M, d]);
      return y;
    });
    const V = call.head?.vocab ?? 0;
    const logits = call.head && this.stage('LOGITS', M * V);
    if (logits) fetches.LOGITS = this.wrap('LOGITS', logits, [M, V]);
    e.session.run(feeds, fetches, {});
    call.outputs.forEach((o, i) => o.y.set(ys[i]!));
    if (logits) call.head!.logits.set(logits);
    // the new rows into the mirror and into the caller's cache [2, batch, heads, cap, d_head]
    call.blocks.forEach((b, i) => {
      const { m, nk, nv } = fresh[i]!;
      const { data, cap } = b.cache;
      const values = BH * cap * dh;
      for (let bh = 0; bh < BH; bh++) {
        for (let t = 0; t < T; t++) {
          const row = (bh * cap + P + t) * dh;
          if (T === 1) {
            // one new position: its keys of this head lie together in NK
            const kr = nk.subarray(bh * dh, (bh + 1) * dh);
            for (let j = 0, o = bh * dh * C + P; j < dh; j++, o += C) m.k[o] = kr[j]!;
            data.set(kr, row);
          } else {
            for (let j = 0; j < dh; j++) {
              const kj = nk[(bh * dh + j) * T + t]!;
              m.k[(bh * dh + j) * C + P + t] = kj;
              data[row + j] = kj;
            }
          }
          const vr = nv.subarray((bh * T + t) * dh, (bh * T + t + 1) * dh);
          m.v.set(vr, (bh * C + P + t) * dh);
          data.set(vr, values + row);
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
    this.stages.clear();
    this.stageViews.clear();
    this.wrapped.clear();
  }

  /** The session of these blocks with these parameter values, made (weights packed) when missing or stale. */
  private entry(call: DecodeCall): Entry {
    const all = [...call.blocks.flatMap((b) => b.params), ...(call.head?.params ?? [])];
    const keys = all.map((p) => p.key);
    const versions = all.map((p) => p.version);
    const first = call.blocks[0]!.params[2]!.key;
    let byLength = this.entries.get(first);
    if (!byLength) this.entries.set(first, (byLength = new Map()));
    const n = `${call.blocks.length}${call.head ? '+head' : ''}`;
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
    let head: DecodeHeadSpec | undefined;
    if (call.head) {
      const [w, b, table] = call.head.params;
      const f32 = (p: DecodeParam, what: string) => { if (p.type) throw new Error(`native decode: the final norm's ${what} is ${p.type}, expected f32`); return p.data; };
      const V = call.head.vocab;
      const d = call.dModel;
      if (!table.type) throw new Error('native decode: the unembedding in the call must be quantized (GGML blocks)');
      const nbits = ggmlToNBits(table.type, table.raw!, V, d);
      bytes += nbits.codes.byteLength + nbits.scales.byteLength + (nbits.offsets?.byteLength ?? 0);
      const product: DecodeProduct = { nbits };
      head = { eps: call.head.eps, vocab: V, norm: [f32(w, 'weight'), f32(b, 'bias')], product };
    }
    const session = this.rt.createSession(encodeDecode(this.rt.writer, { dModel: call.dModel, blocks, head }));
    const mirrors = call.blocks.map((): Mirror => ({ key: null, version: -1, n: 0, cap: 0, bh: 0, dh: 0, k: new Float32Array(0), v: new Float32Array(0) }));
    const e: Entry = { keys, versions, bytes, session, mirrors };
    byLength.set(n, e);
    return e;
  }

  /** The mirror at capacity C holding the cache's first P positions (filled from the cache when it is not the cache's copy). */
  private sync(m: Mirror, cache: DecodeCall['blocks'][number]['cache'], BH: number, dh: number, P: number, C: number): Mirror {
    const fresh = m.key === cache.key && m.version === cache.version && m.n === P && m.bh === BH && m.dh === dh;
    if (m.cap !== C || m.bh !== BH || m.dh !== dh) {
      const k = new Float32Array(BH * dh * C);
      const v = new Float32Array(BH * C * dh);
      if (fresh) {
        for (let r = 0; r < BH * dh; r++) k.set(m.k.subarray(r * m.cap, r * m.cap + P), r * C);
        for (let bh = 0; bh < BH; bh++) v.set(m.v.subarray(bh * m.cap * dh, (bh * m.cap + P) * dh), bh * C * dh);
      }
      Object.assign(m, { k, v, cap: C, bh: BH, dh });
    }
    if (fresh) return m;
    const { data, cap } = cache;
    const values = BH * cap * dh;
    for (let bh = 0; bh < BH; bh++) {
      for (let t = 0; t < P; t++) {
        const row = (bh * cap + t) * dh;
        for (let j = 0; j < dh; j++) m.k[(bh * dh + j) * C + t] = data[row + j]!;
        m.v.set(data.subarray(values + row, values + row + dh), (bh * C + t) * dh);
      }
    }
    m.key = cache.key;
    m.version = cache.version;
    m.n = P;
    return m;
  }

  /** A grow-only host array for one role, cut to `n` elements (the same view while `n` is). */
  private stage(role: string, n: number): Float32Array<ArrayBuffer> {
    let a = this.stages.get(role);
    if (!a || a.length < n) this.stages.set(role, (a = new Float32Array(Math.max(n, Math.ceil((a?.length ?? 0) * 1.5)))));
    let v = this.stageViews.get(role);
    if (v?.buffer !== a.buffer || v.length !== n) this.stageViews.set(role, (v = a.subarray(0, n)));
    return v;
  }

  /** ORT's tensor over `data` for one role, made again only when the array or its dims change. */
  private wrap(role: string, data: Float32Array<ArrayBuffer>, dims: number[]): unknown {
    const key = dims.join(',');
    const w = this.wrapped.get(role);
    if (w && w.data === data && w.key === key) return w.tensor;
    const tensor = this.rt.tensor('float32', data, dims);
    this.wrapped.set(role, { data, key, tensor });
    return tensor;
  }

  private parts(C: number, T: number): unknown {
    const key = `${C}:${T}`;
    if (this.partsKey !== key) {
      this.partsKey = key;
      this.partsTensor = this.rt.tensor('int64', BigInt64Array.from([BigInt(C), BigInt(T)]), [2]);
    }
    return this.partsTensor;
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

  /** [T, C + T]: 0 where new position i sees a key (the P cached ones, and new ones up to i), -inf elsewhere (one array per T and C, refilled). */
  private mask(T: number, P: number, C: number): Float32Array<ArrayBuffer> {
    const key = `${T}:${P}:${C}`;
    if (this.maskKey === key) return this.lastMask;
    const m = this.lastMask.length === T * (C + T) ? this.lastMask.fill(0) : new Float32Array(T * (C + T));
    for (let i = 0; i < T; i++) {
      m.fill(-Infinity, i * (C + T) + P, i * (C + T) + C);
      m.fill(-Infinity, i * (C + T) + C + i + 1, (i + 1) * (C + T));
    }
    this.maskKey = key;
    this.lastMask = m;
    return m;
  }
}
