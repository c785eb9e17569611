// KVCacheQuant: a generation cache that holds keys and values packed (codec.ts), quantized online
// as each step appends them, and attends over them where they lie: on wasm a kernel reads the codes
// (kernels/kvattn.wat.mjs), on js the reference (reference.ts) reads the same bytes. Same
// interface as KVCache (length, commit, dispose), chosen by `kvCache` on generate / eval / forward.
// Pre-RoPE keys: the cache stores keys before the rotary embedding with their positions, and RoPE
// is applied on read. Hooks that read scores or patterns get the dequantized cache (`dequantized`)
// and the explicit attention path; their numbers are the same as the kernel's to f32 rounding.
// On backends that cannot read buffers synchronously (webgpu) every cache stays on the device: new
// rows are rounded by a kernel (runKVAppend for q8_0 / q4_0, runKVQAppend for kvquant), attention
// and the dequantized views read the codes there. kvquant's exact values live there in a side table
// of K slots per block instead of the CSR list (KVQuantSide in src/tensor/packed-kv.ts: identical
// when a block holds K outliers or fewer, the K farthest out otherwise).
// Not for: calibration (calibrate.ts) or the bit layout (codec.ts).
import type { Backend } from '../../tensor/backend.js';
import { Tensor } from '../../tensor/tensor.js';
import { keep } from '../../tensor/engine.js';
import { KVCache } from '../layers/kv-cache.js';
import type { KVQuantSide, PackedKVDevice, PackedKVEncoder, PackedKVKernel, PackedStreamViews } from '../../tensor/packed-kv.js';
import { encodeRow, fixedLut, streamLayout, type RowEncoder, type StreamLayout } from './codec.js';
import { kvAttentionReference, dequantizeStream, type HostRope, type HostStream } from './reference.js';
import { kvSpecLabel, needsCalibration, resolveKVSpec, type KVCacheSpec, type ResolvedKVSpec } from './spec.js';

/** A backend with the packed-cache kernel (the wasm backend). */
type KVAttentionBackend = Backend & PackedKVKernel;

function kernelOf(b: Backend): KVAttentionBackend | undefined {
  return typeof (b as Partial<KVAttentionBackend>).runKVAttention === 'function' ? (b as KVAttentionBackend) : undefined;
}

/** A backend that encodes new rows where the stream lies (the wasm backend). */
function encoderOf(b: Backend): (Backend & PackedKVEncoder) | undefined {
  return typeof (b as Partial<PackedKVEncoder>).runKVEncode === 'function' ? (b as Backend & PackedKVEncoder) : undefined;
}

/** A backend that writes and reads packed rows on the device (webgpu). */
function deviceOf(b: Backend): (Backend & PackedKVDevice) | undefined {
  return typeof (b as Partial<PackedKVDevice>).runKVAppend === 'function' ? (b as Backend & PackedKVDevice) : undefined;
}

interface QStream {
  enc: RowEncoder;
  layout: StreamLayout;
  main: Tensor; // u8 [layout.bytes]
  out: Tensor; // u8 [layout.outBytes]
  nOut: number;
  /** Holds each row's rotary position (pre-RoPE keys). */
  positions: boolean;
  /** kvquant on the device: the exact values' side table in `out` (no CSR list). */
  side?: KVQuantSide;
  /** Per-channel outlier bounds f32 [2 · R] (lo, then hi) for a backend's encoder; made on first use. */
  bounds?: Tensor;
  /** The exact entries again a kv head at a time, for the wasm kernel (HeadEntries; one sequence). */
  heads?: { t: Tensor; cap: number; at: number; segs: number; rows: number };
}

/**
 * Exact slots per block of d values on the device: eight times the expected outliers, 4..8
 * (outliers gather in a few tokens: blocks of a model's keys with 3 of 16 values out of range
 * are common where 1% are on average).
 */
export function deviceSlots(share: number, d: number): number {
  return share > 0 ? Math.min(8, Math.max(4, Math.ceil(8 * share * d))) : 0;
}

/** The side table of a device KVQuant stream (offsets in its `out` buffer). */
function sideLayout(R: number, hkv: number, batch: number, K: number, hasLoHi: boolean, nuq: boolean, cap: number): KVQuantSide {
  const oSinkRow = hasLoHi ? 8 * R : 0;
  const oSink = oSinkRow + 4 * batch;
  const oSlots = oSink + 4 * batch * R;
  const W = K + Math.ceil(K / 4);
  return { K, block: R / hkv, hkv, batch, nuq, hasLoHi, oLoHi: 0, oSinkRow, oSink, oSlots, bytes: Math.max(4, oSlots + cap * hkv * W * 4) };
}

interface QLayer {
  k: QStream;
  v: QStream;
  batch: number;
  hkv: number;
  d: number;
  dv: number;
}

/** What the attention layer hands the cache about the rotary embedding. */
export interface CacheRope {
  invFreq: Tensor; // f32 [rotaryDim / 2]
  rotaryDim: number;
  mode: 'half' | 'interleaved';
}

export interface KVMemory {
  /** Bytes the packed streams use per token, all layers: codes, group params, row pointers, segment index, positions, sparse entries. */
  bytesPerToken: number;
  /** The same for an f32 cache. */
  f32BytesPerToken: number;
  /** Bytes that do not grow with the context (lookup tables, per-channel ranges), all layers. */
  fixedBytes: number;
  /** Positions held (tokens × sequences). */
  tokens: number;
  /** Exact (sparse) entries over all values held (streams on the device: their slots, used or not). */
  sparseShare: number;
  /** Of bytesPerToken and fixedBytes: the wasm kernel's per-head lists of the exact entries (HeadEntries; 0 where none are kept). */
  headLists: { bytesPerToken: number; fixedBytes: number };
}

export class KVCacheQuant extends KVCache {
  readonly spec: ResolvedKVSpec;
  readonly label: string;
  private qlayers: (QLayer | undefined)[] = [];
  private qpending = 0;
  private ropeHost?: { table: Float32Array; invFreq: Float32Array; rotaryDim: number; mode: 'half' | 'interleaved' };
  private ropeDevice?: Tensor;

  constructor(spec: KVCacheSpec, readonly backend: Backend) {
    super();
    this.spec = resolveKVSpec(spec);
    this.label = kvSpecLabel(spec);
    if (!backend.synchronous && !deviceOf(backend)) {
      throw new Error(`KV cache ${this.label}: the ${backend.name} backend has no packed KV-cache kernel (every type runs on wasm and webgpu, and js runs the reference): use --backend wasm or an f32 cache`);
    }
    const c = this.spec.calibration;
    if (needsCalibration(this.spec)) {
      if (!c) throw new Error(`KV cache ${this.label}: needs an offline calibration (calibrateKV) for per-channel keys, nuq or outliers`);
      const same = c.bits === this.spec.bits && c.keys === this.spec.keys && c.preRope === this.spec.preRope && c.nuq === this.spec.nuq && c.outliers === this.spec.outliers;
      if (!same) throw new Error(`KV cache ${this.label}: the calibration was fitted for ${kvSpecLabel({ type: 'kvquant', ...c })}; calibrate for this spec`);
    }
  }

  /** Whether keys are stored before RoPE (and rotated on read). */
  get preRope(): boolean {
    return this.spec.type === 'kvquant' && this.spec.preRope;
  }

  /** The backend when it holds the cache on the device (webgpu). */
  private get device(): (Backend & PackedKVDevice) | undefined {
    return this.backend.synchronous ? undefined : deviceOf(this.backend);
  }

  /** Whether `wasm` runs the packed kernel here (else the js reference reads the bytes). */
  get native(): boolean {
    return !!kernelOf(this.backend);
  }

  private encoders(layer: number, R: number): { k: RowEncoder; v: RowEncoder } {
    const s = this.spec;
    if (s.type !== 'kvquant') {
      if (R % 32) throw new RangeError(`KV cache ${s.type}: rows of kv_head · d_head = ${R} values are not a whole number of 32-value blocks`);
      const e: RowEncoder = { kind: s.type, bits: s.bits, R, params: 'group', G: 32, grpBytes: 2, lut: fixedLut(s.type, s.bits), tau: Infinity };
      return { k: e, v: e };
    }
    const cal = s.calibration?.layers[layer];
    if (needsCalibration(s) && !cal) throw new Error(`KV cache ${this.label}: the calibration has no layer ${layer}`);
    const kind = s.nuq ? 'nuq' : 'uniform';
    const lutOf = (l?: number[]) => (s.nuq ? Float32Array.from(l!) : fixedLut('uniform', s.bits));
    const perToken = (c?: { tau?: number; lut?: number[] }): RowEncoder => ({
      kind, bits: s.bits, R, params: 'group', G: R, grpBytes: 4, lut: lutOf(c?.lut), tau: s.outliers > 0 ? (c?.tau ?? Infinity) : Infinity,
    });
    let k: RowEncoder;
    if (s.keys === 'per-channel') {
      const lo = Float32Array.from(cal!.keys.lo!), hi = Float32Array.from(cal!.keys.hi!);
      if (lo.length !== R) throw new Error(`KV cache ${this.label}: the calibration has ${lo.length} key channels at layer ${layer}, the model ${R}`);
      const n = (1 << s.bits) - 1;
      k = {
        kind, bits: s.bits, R, params: 'channel', G: R, grpBytes: 0, lut: lutOf(cal!.keys.lut), tau: Infinity,
        chanScale: Float32Array.from(lo, (l, c) => (s.nuq ? (hi[c]! - l) / 2 : (hi[c]! - l) / n)),
        chanOffset: Float32Array.from(lo, (l, c) => (s.nuq ? (hi[c]! + l) / 2 : l)),
        ...(s.outliers > 0 ? { lo, hi } : {}),
      };
    } else k = perToken(cal?.keys);
    return { k, v: perToken(cal?.values) };
  }

  private newStream(enc: RowEncoder, capRows: number, outCap: number, positions: boolean, segs: number, slices: number, dev?: { hkv: number; batch: number }): QStream {
    // kvquant on the device: exact values in a side table (sideLayout), no CSR list
    const onDevice = dev && this.spec.type === 'kvquant';
    const sparse = !onDevice && (this.spec.sink || Number.isFinite(enc.tau) || !!enc.lo);
    const layout = streamLayout(enc.bits, enc.R, enc.params, enc.G, enc.grpBytes, capRows, outCap, positions, sparse, segs, slices);
    const side = onDevice ? sideLayout(enc.R, dev.hkv, dev.batch, deviceSlots(this.spec.outliers, enc.R / dev.hkv), !!enc.lo, enc.kind === 'nuq', capRows) : undefined;
    if (side) {
      const why = deviceOf(this.backend)!.kvqStreamUnsupported(layout, side);
      if (why) throw new Error(`KV cache ${this.label}: the ${this.backend.name} backend cannot hold a stream with ${why} (every type runs on wasm): use --backend wasm`);
    }
    const main = keep(Tensor.empty([layout.bytes], 'u8', this.backend, 'kvCacheQuant'));
    const out = keep(Tensor.empty([side ? side.bytes : Math.max(4, layout.outBytes)], 'u8', this.backend, 'kvCacheQuant'));
    if (side) {
      // outlier ranges, no sink row yet (0xffffffff), an empty sink table
      const pre = new Uint8Array(side.oSlots);
      const pv = new DataView(pre.buffer);
      if (side.hasLoHi) for (let c = 0; c < enc.R; c++) { pv.setFloat32(4 * c, enc.lo![c]!, true); pv.setFloat32(4 * (enc.R + c), enc.hi![c]!, true); }
      for (let b = 0; b < side.batch; b++) pv.setUint32(side.oSinkRow + 4 * b, 0xffffffff, true);
      this.backend.write(out.view().buffer, 0, pre);
    }
    const head = new Uint8Array(layout.bytes - layout.oRowptr);
    const dv = new DataView(head.buffer);
    new Uint8Array(head.buffer, layout.oLut - layout.oRowptr, enc.lut.length * 4).set(new Uint8Array(enc.lut.buffer, enc.lut.byteOffset, enc.lut.length * 4));
    if (enc.params === 'channel') {
      for (let c = 0; c < enc.R; c++) {
        dv.setFloat32(layout.oChan - layout.oRowptr + 4 * c, enc.chanScale![c]!, true);
        dv.setFloat32(layout.oChan - layout.oRowptr + 4 * (enc.R + c), enc.chanOffset![c]!, true);
      }
    }
    this.backend.write(main.view().buffer, layout.oRowptr, head);
    return { enc, layout, main, out, nOut: 0, positions, ...(side ? { side } : {}) };
  }

  private views(s: QStream): PackedStreamViews {
    const heads = s.heads && { view: s.heads.t.view(), cap: s.heads.cap, at: s.heads.at };
    return { layout: s.layout, main: s.main.view(), out: s.out.view(), ...(s.side ? { side: s.side } : {}), ...(heads ? { heads } : {}) };
  }

  /**
   * Per-head lists of the exact entries (HeadEntries) with room for `cap` each, the counts and the
   * entries of `from` kept: made where the wasm kernel reads a one-sequence stream whose segment
   * index has a segment a head (heads of 32 to 256 values).
   */
  private headLists(segs: number, cap: number, from?: QStream['heads']): QStream['heads'] {
    const at = (4 * segs + 15) & ~15;
    const t = keep(Tensor.empty([at + segs * cap * 8], 'u8', this.backend, 'kvCacheQuant'));
    const b = this.backend, buf = t.view().buffer;
    if (!from) {
      b.write(buf, 0, new Uint8Array(4 * segs));
      return { t, cap, at, segs, rows: 0 };
    }
    const counts = b.readSync(from.t.view().buffer, 0, 4 * segs);
    b.write(buf, 0, counts);
    const n = new Int32Array(counts.buffer, counts.byteOffset, segs);
    for (let h = 0; h < segs; h++) if (n[h]! > 0) b.write(buf, at + h * cap * 8, b.readSync(from.t.view().buffer, from.at + h * from.cap * 8, n[h]! * 8));
    from.t.dispose();
    return { t, cap, at, segs, rows: from.rows };
  }

  /** Whether some head's list lacks room for a whole head of entries. */
  private headsFull(h: NonNullable<QStream['heads']>, perHead: number): boolean {
    const c = this.backend.readSync(h.t.view().buffer, 0, 4 * h.segs);
    const n = new Int32Array(c.buffer, c.byteOffset, h.segs);
    return n.some((x) => x + perHead > h.cap);
  }

  /** Moves a stream into buffers of `capRows` rows / `outCap` entries, keeping its first `rows` rows. */
  private grow(s: QStream, rows: number, capRows: number, outCap: number): QStream {
    const n = this.newStream(s.enc, capRows, outCap, s.positions, s.layout.segs, s.layout.slices, s.side && { hkv: s.side.hkv, batch: s.side.batch });
    n.bounds = s.bounds;
    n.heads = s.heads;
    const o = s.layout, L = n.layout, b = this.backend;
    if (this.device) {
      // codes, group scales, positions and the side table copied on the device, as 32-bit words
      // (every region starts at a multiple of 4)
      const words = (t: Tensor, at: number, len: number) => ({ buffer: t.view().buffer, dtype: 'i32' as const, shape: [len], strides: [1], offset: at / 4 });
      const copy = (from: number, to: number, len: number, src = s.main, dst = n.main) => {
        const w = Math.ceil(len / 4);
        if (w > 0) b.exec({ op: 'copy' }, [words(src, from, w)], [words(dst, to, w)]);
      };
      copy(0, 0, rows * o.rowBytes);
      copy(o.oGrp, L.oGrp, rows * (o.params === 'group' ? (o.R / o.G) * o.grpBytes : 0));
      if (s.positions) copy(o.oPos, L.oPos, rows * 4);
      if (s.side && n.side) {
        const W = s.side.K + Math.ceil(s.side.K / 4);
        copy(0, 0, s.side.oSlots, s.out, n.out);
        copy(s.side.oSlots, n.side.oSlots, rows * s.side.hkv * W * 4, s.out, n.out);
      }
      s.main.dispose();
      s.out.dispose();
      return n;
    }
    const read = (t: Tensor, at: number, len: number) => b.readSync(t.view().buffer, at, len);
    const copy = (from: number, to: number, len: number) => { if (len > 0) b.write(n.main.view().buffer, to, read(s.main, from, len)); };
    for (let h = 0; h < o.slices; h++) copy(h * o.cap * o.sliceBytes, h * L.cap * L.sliceBytes, rows * o.sliceBytes);
    copy(o.oGrp, L.oGrp, rows * (o.R / o.G) * o.grpBytes * (o.params === 'group' ? 1 : 0));
    if (o.sparse) copy(o.oRowptr, L.oRowptr, (rows + 1) * 4);
    if (o.segs > 1) copy(o.oSeg, L.oSeg, rows * o.segs * 2);
    if (s.positions) copy(o.oPos, L.oPos, rows * 4);
    if (s.nOut > 0) {
      b.write(n.out.view().buffer, 0, read(s.out, 0, 2 * s.nOut));
      b.write(n.out.view().buffer, L.oVal, read(s.out, o.oVal, 4 * s.nOut));
    }
    n.nOut = s.nOut;
    s.main.dispose();
    s.out.dispose();
    return n;
  }

  /**
   * Quantizes and appends k [batch, kv_head, t, d] (before RoPE when `preRope`) and v
   * [batch, kv_head, t, dv] at `layer`. `positions` (batch-major [batch · t]) are the rotary
   * positions of the new keys; `keyMask` [batch, past + t] marks real tokens (the sink is each
   * sequence's first real token).
   */
  store(layer: number, k: Tensor, v: Tensor, positions?: Int32Array, keyMask?: Uint8Array): void {
    const [B, hkv, T, d] = k.shape as [number, number, number, number];
    const dv = v.shape[3]!;
    const R = hkv * d;
    if (dv !== d) throw new Error(`KV cache ${this.label}: keys and values of different head sizes (${d}, ${dv}) are not supported`);
    let l = this.qlayers[layer];
    const past = this.length;
    const needRows = (past + T) * B;
    if (!l) {
      const e = this.encoders(layer, R);
      const cap = Math.max(16, past + T) * B;
      // The kernel reads a kv head's slice of each row; where slices are long (heads of 32 values
      // and more) a segment index per head finds the slice's exact entries without scanning the
      // row's others. Short slices scan the row's few entries (and save the index's 2 bytes a head).
      const segs = d >= 32 ? hkv : 1;
      // Codes a kv head at a time (each head's rows contiguous: the wasm kernel streams through them)
      // where a head's codes are whole bytes; row-major on the device (its kernels read rows).
      const slices = !this.device && (d * e.k.bits) % 8 === 0 ? hkv : 1;
      // positions are kept only where RoPE will be applied on read (pre-RoPE keys of a rotary model)
      const dev = this.device ? { hkv, batch: B } : undefined;
      l = { k: this.newStream(e.k, cap, 64, this.preRope && positions !== undefined, segs, slices, dev), v: this.newStream(e.v, cap, 64, false, segs, slices, dev), batch: B, hkv, d, dv };
      if (B === 1 && segs > 1 && Math.max(d, dv) <= 256 && kernelOf(this.backend) && encoderOf(this.backend) && !this.device) {
        for (const s of [l.k, l.v]) if (s.layout.sparse) s.heads = this.headLists(segs, 4 * d);
      }
      this.qlayers[layer] = l;
    }
    if (l.batch !== B || l.hkv !== hkv || l.d !== d) throw new Error(`KV cache ${this.label}: layer ${layer} holds [${l.batch}, ${l.hkv}, *, ${l.d}], got ${k.shape.join('x')}`);
    const total = past + T;
    const isSink = (b: number, t: number): boolean => {
      if (!this.spec.sink) return false;
      const col = past + t;
      if (!keyMask) return col === 0;
      if (!keyMask[b * total + col]) return false;
      for (let j = 0; j < col; j++) if (keyMask[b * total + j]) return false;
      return true;
    };
    const dev = this.device;
    if (dev && this.spec.type === 'kvquant') {
      // encoded on the device: no host read of k or v (the host sends the step's positions and sink rows)
      const sinkT = new Int32Array(B).fill(-1);
      for (let b = 0; b < B; b++) for (let t = 0; t < T; t++) if (sinkT[b]! < 0 && isSink(b, t)) sinkT[b] = t;
      const pos = Int32Array.from({ length: B * T }, (_, i) => (positions ? positions[i]! : past + (i % T)));
      for (const p of pos) this.maxPos = Math.max(this.maxPos, p);
      for (const [which, x] of [['k', k], ['v', v]] as const) {
        let s = l[which];
        if (needRows > s.layout.cap) s = l[which] = this.grow(s, past * B, Math.max(needRows, 2 * s.layout.cap), s.layout.outCap);
        const xc = x.isContiguous ? x : x.contiguous();
        try {
          dev.runKVQAppend(xc.view(), this.views(s), past * B, { tau: s.enc.tau, positions: s.positions ? pos : undefined, sinkT });
        } finally {
          if (xc !== x) xc.dispose();
        }
      }
      this.qpending = T;
      return;
    }
    if (dev) {
      // rounded on the device: no host read of k or v
      const kind = this.spec.type as 'q8_0' | 'q4_0';
      for (const [which, x] of [['k', k], ['v', v]] as const) {
        let s = l[which];
        if (needRows > s.layout.cap) s = l[which] = this.grow(s, past * B, Math.max(needRows, 2 * s.layout.cap), s.layout.outCap);
        const xc = x.isContiguous ? x : x.contiguous();
        try {
          dev.runKVAppend(xc.view(), { layout: s.layout, main: s.main.view(), out: s.out.view() }, kind, past * B);
        } finally {
          if (xc !== x) xc.dispose();
        }
      }
      this.qpending = T;
      return;
    }
    const enc = encoderOf(this.backend);
    if (enc) {
      this.storeEncoded(enc, l, k, v, past, positions, this.sinkRows(B, T, past, keyMask));
      this.qpending = T;
      return;
    }
    const kx = k.dataSync() as Float32Array, vx = v.dataSync() as Float32Array;
    for (const [which, x] of [['k', kx], ['v', vx]] as const) {
      let s = l[which];
      const rows: ReturnType<typeof encodeRow>[] = [];
      const row = new Float32Array(R);
      for (let t = 0; t < T; t++) {
        for (let b = 0; b < B; b++) {
          for (let h = 0; h < hkv; h++) row.set(x.subarray(((b * hkv + h) * T + t) * d, ((b * hkv + h) * T + t + 1) * d), h * d);
          rows.push(encodeRow(s.enc, row, isSink(b, t)));
        }
      }
      const nNew = rows.reduce((a, r) => a + r.outIdx.length, 0);
      if (needRows > s.layout.cap || s.nOut + nNew > s.layout.outCap) {
        const cap = needRows > s.layout.cap ? Math.max(needRows, 2 * s.layout.cap) : s.layout.cap;
        const outCap = s.nOut + nNew > s.layout.outCap ? Math.max(s.nOut + nNew, 2 * s.layout.outCap) : s.layout.outCap;
        s = l[which] = this.grow(s, past * B, cap, outCap);
      }
      const L = s.layout, r0 = past * B, n = T * B;
      const codes = new Uint8Array(n * L.rowBytes);
      const nGroups = L.params === 'group' ? L.R / L.G : 0;
      const grp = new Uint8Array(n * nGroups * L.grpBytes);
      const rowptr = new Int32Array(n);
      const segs = L.segs, S = L.R / segs;
      const seg = new Uint16Array(segs > 1 ? n * segs : 0);
      const pos = new Int32Array(n);
      const idx = new Uint16Array(nNew), val = new Float32Array(nNew);
      let e = 0;
      rows.forEach((r, i) => {
        // slice-major: slice h of the n new rows together (StreamLayout.slices)
        for (let h = 0; h < L.slices; h++) codes.set(r.codes.subarray(h * L.sliceBytes, (h + 1) * L.sliceBytes), (h * n + i) * L.sliceBytes);
        grp.set(r.grp, i * nGroups * L.grpBytes);
        for (let j = 0; j < r.outIdx.length; j++, e++) { idx[e] = r.outIdx[j]!; val[e] = r.outVal[j]!; }
        if (segs > 1) {
          // entries are in channel order: a segment starts at the first entry at or past its first channel
          let j = 0;
          for (let g = 0; g < segs; g++) {
            while (j < r.outIdx.length && r.outIdx[j]! < g * S) j++;
            seg[i * segs + g] = j;
          }
        }
        rowptr[i] = s.nOut + e;
        const t = Math.floor(i / B), b = i % B;
        pos[i] = positions ? positions[b * T + t]! : past + t;
        this.maxPos = Math.max(this.maxPos, pos[i]!);
      });
      const buf = s.main.view().buffer, ob = s.out.view().buffer, w = this.backend;
      const bytes = (a: ArrayBufferView) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
      for (let h = 0; h < L.slices; h++) w.write(buf, (h * L.cap + r0) * L.sliceBytes, codes.subarray(h * n * L.sliceBytes, (h + 1) * n * L.sliceBytes));
      if (grp.length) w.write(buf, L.oGrp + r0 * nGroups * L.grpBytes, grp);
      if (L.sparse) w.write(buf, L.oRowptr + 4 * (r0 + 1), bytes(rowptr));
      if (segs > 1) w.write(buf, L.oSeg + 2 * segs * r0, bytes(seg));
      if (s.positions) w.write(buf, L.oPos + 4 * r0, bytes(pos));
      if (nNew) {
        w.write(ob, 2 * s.nOut, bytes(idx));
        w.write(ob, L.oVal + 4 * s.nOut, bytes(val));
      }
      s.nOut += nNew;
    }
    this.qpending = T;
  }

  /** u8 [t · b]: 1 where new row t · b + s is its sequence's first real token (kept exact); undefined when none is. */
  private sinkRows(B: number, T: number, past: number, keyMask?: Uint8Array): Uint8Array | undefined {
    if (!this.spec.sink || (!keyMask && past > 0)) return undefined;
    const total = past + T;
    let out: Uint8Array | undefined;
    for (let b = 0; b < B; b++) {
      // the first real column of sequence b, if it is among the new ones
      let col = 0;
      if (keyMask) while (col < total && !keyMask[b * total + col]) col++;
      if (col >= past && col < total) (out ??= new Uint8Array(T * B))[(col - past) * B + b] = 1;
    }
    return out;
  }

  /** Encodes the new rows of both streams with the backend's encoder, growing the buffers as it asks. */
  private storeEncoded(enc: PackedKVEncoder, l: QLayer, k: Tensor, v: Tensor, past: number, positions: Int32Array | undefined, sink: Uint8Array | undefined): void {
    const B = l.batch, T = k.shape[2]!, n = B * T, needRows = (past + T) * B;
    for (const [which, x] of [['k', k], ['v', v]] as const) {
      let s = l[which];
      if (needRows > s.layout.cap) s = l[which] = this.grow(s, past * B, Math.max(needRows, 2 * s.layout.cap), s.layout.outCap);
      const e = s.enc;
      if (e.lo && !s.bounds) {
        const b = new Float32Array(2 * e.R);
        b.set(e.lo);
        b.set(e.hi!, e.R);
        s.bounds = keep(Tensor.from(b, [2 * e.R], 'f32', this.backend));
      }
      const xc = x.view().strides[3] === 1 ? x : x.contiguous();
      try {
        for (let from = 0; ;) {
          const r = enc.runKVEncode({
            x: xc.view(), stream: this.views(s), kind: e.kind, tau: e.tau, bounds: s.bounds?.view(),
            row0: past * B, past, nOut: s.nOut, holdsPositions: s.positions, positions, sink, from,
            trimHeads: !!s.heads && s.heads.rows > past * B + from,
          });
          s.nOut = r.nOut;
          if (s.heads) s.heads.rows = past * B + r.rows;
          if (r.rows >= n) break;
          // the outlier buffer (or a head's list) lacks room for a row's exact entries: grow it, keep the rows written
          from = r.rows;
          if (s.nOut + e.R > s.layout.outCap) s = l[which] = this.grow(s, past * B + from, s.layout.cap, Math.max(2 * s.layout.outCap, s.nOut + e.R));
          const h = s.heads;
          if (h && this.headsFull(h, e.R / h.segs)) s.heads = this.headLists(h.segs, 2 * h.cap, h);
        }
      } finally {
        if (xc !== x) xc.dispose();
      }
    }
    if (positions) for (let i = 0; i < positions.length; i++) this.maxPos = Math.max(this.maxPos, positions[i]!);
    else this.maxPos = Math.max(this.maxPos, past + T - 1);
  }

  private host(s: QStream): HostStream {
    return { layout: s.layout, bytes: { main: s.main.bytesSync(), out: s.out.bytesSync() } };
  }

  /** cos/sin of every position up to `maxPos` (host and device copies grow together). */
  private ropeTable(rope: CacheRope, maxPos: number): HostRope {
    const half = rope.rotaryDim / 2;
    let h = this.ropeHost;
    if (!h || h.table.length < (maxPos + 1) * half * 2) {
      const invFreq = h?.invFreq ?? (rope.invFreq.dataSync() as Float32Array);
      const n = Math.max(maxPos + 1, 2 * (h ? h.table.length / (2 * half) : 0), 64);
      const table = new Float32Array(n * half * 2);
      for (let p = 0; p < n; p++) {
        for (let i = 0; i < half; i++) {
          const a = p * invFreq[i]!;
          table[p * 2 * half + i] = Math.cos(a);
          table[(p * 2 + 1) * half + i] = Math.sin(a);
        }
      }
      h = this.ropeHost = { table, invFreq, rotaryDim: rope.rotaryDim, mode: rope.mode };
      this.ropeDevice?.dispose();
      this.ropeDevice = undefined;
    }
    return { table: h.table, rotaryDim: h.rotaryDim, mode: h.mode };
  }

  /** The largest rotary position stored so far. */
  private maxPos = 0;

  /**
   * Attention of q [batch, head, tq, d] over every position held at `layer` (the step's included)
   * -> [batch, head, tq, dv]. Causal with offset tk − tq; keyMask u8 [batch, tk].
   */
  attend(layer: number, q: Tensor, o: { scale: number; keyMask?: Tensor; keyMaskHost?: Uint8Array; rope?: CacheRope; reference?: boolean }): Tensor {
    const l = this.qlayers[layer];
    if (!l) throw new Error(`KV cache ${this.label}: nothing stored at layer ${layer}`);
    const [B, HQ, TQ] = q.shape as [number, number, number, number];
    const tk = this.length + this.qpending;
    const rope = this.preRope && o.rope ? this.ropeTable(o.rope, this.maxPos) : undefined;
    const y = Tensor.empty([B, HQ, TQ, l.dv], 'f32', this.backend, 'kvAttention');
    const kb = kernelOf(this.backend);
    if (kb && !o.reference) {
      const qc = q.view().strides[3] === 1 ? q : q.contiguous();
      try {
        if (rope && !this.ropeDevice) this.ropeDevice = keep(Tensor.from(rope.table, [rope.table.length], 'f32', this.backend));
        const mask = o.keyMask ? (o.keyMask.isContiguous ? o.keyMask : o.keyMask.contiguous()) : undefined;
        try {
          kb.runKVAttention({
            q: qc.view(), y: y.view(), mask: mask?.view(),
            k: this.views(l.k),
            v: this.views(l.v),
            rope: rope ? { table: this.ropeDevice!.view(), rotaryDim: rope.rotaryDim, mode: rope.mode } : undefined,
            hkv: l.hkv, tk, scale: o.scale, causal: true,
          });
        } finally {
          if (mask && mask !== o.keyMask) mask.dispose();
        }
      } finally {
        if (qc !== q) qc.dispose();
      }
      return y;
    }
    const qd = Float32Array.from(q.dataSync() as Float32Array);
    const out = kvAttentionReference(qd, [B, HQ, TQ, q.shape[3]!], this.host(l.k), this.host(l.v), {
      hkv: l.hkv, tk, dv: l.dv, scale: o.scale, causal: true, mask: o.keyMaskHost, rope,
    });
    y.dispose();
    return Tensor.from(out, [B, HQ, TQ, l.dv], 'f32', this.backend);
  }

  /** The held keys (rotated) and values dequantized, f32 [batch, kv_head, tk, d] each (new tensors). */
  dequantized(layer: number, rope?: CacheRope): { k: Tensor; v: Tensor } {
    const l = this.qlayers[layer];
    if (!l) throw new Error(`KV cache ${this.label}: nothing stored at layer ${layer}`);
    const tk = this.length + this.qpending;
    const dev = this.device;
    if (dev) {
      const r = this.preRope && rope && l.k.positions ? this.ropeTable(rope, this.maxPos) : undefined;
      if (r && !this.ropeDevice) this.ropeDevice = keep(Tensor.from(r.table, [r.table.length], 'f32', this.backend));
      const out = (s: QStream, d: number, rot?: HostRope) => {
        const y = Tensor.empty([l.batch, l.hkv, tk, d], 'f32', this.backend, 'kvCacheQuant');
        dev.runKVDequantize(this.views(s), y.view(), rot && { table: this.ropeDevice!.view(), rotaryDim: rot.rotaryDim, mode: rot.mode });
        return y;
      };
      return { k: out(l.k, l.d, r), v: out(l.v, l.dv) };
    }
    const r = this.preRope && rope ? this.ropeTable(rope, this.maxPos) : undefined;
    const k = dequantizeStream(this.host(l.k), l.batch, l.hkv, tk, l.d, r);
    const v = dequantizeStream(this.host(l.v), l.batch, l.hkv, tk, l.dv);
    return {
      k: Tensor.from(k, [l.batch, l.hkv, tk, l.d], 'f32', this.backend),
      v: Tensor.from(v, [l.batch, l.hkv, tk, l.dv], 'f32', this.backend),
    };
  }

  /** KVCache's interface for callers that want f32 views: stores, then returns the dequantized cache. */
  override append(layer: number, k: Tensor, v: Tensor): { k: Tensor; v: Tensor } {
    if (this.preRope) throw new Error(`KV cache ${this.label}: pre-RoPE keys need the attention layer's packed path (store + attend)`);
    this.store(layer, k, v);
    return this.dequantized(layer);
  }

  override commit(): void {
    this.length += this.qpending;
    this.qpending = 0;
  }

  /** Bytes held per token, against an f32 cache of the same positions. */
  memory(): KVMemory {
    let bytes = 0, f32 = 0, fixed = 0, sparse = 0, values = 0, listBytes = 0, listFixed = 0;
    for (const l of this.qlayers) {
      if (!l) continue;
      const rows = this.length * l.batch;
      for (const s of [l.k, l.v]) {
        const L = s.layout;
        const nGroups = L.params === 'group' ? L.R / L.G : 0;
        bytes += rows * (L.rowBytes + nGroups * L.grpBytes + (L.sparse ? 4 : 0) + (L.segs > 1 ? 2 * L.segs : 0) + (s.positions ? 4 : 0)) + 6 * s.nOut;
        // the per-head lists: each entry once more (8 bytes), their counts fixed
        if (s.heads) { listBytes += 8 * s.nOut; listFixed += s.heads.at; }
        fixed += 4 * (1 << L.bits) + (L.params === 'channel' ? 8 * L.R : 0);
        if (s.side) {
          // the device's side table: K slots per block whether used or not; ranges and sink rows fixed
          const W = s.side.K + Math.ceil(s.side.K / 4);
          bytes += rows * s.side.hkv * W * 4;
          fixed += s.side.oSlots;
          sparse += rows * s.side.hkv * s.side.K;
        }
        f32 += rows * L.R * 4;
        sparse += s.nOut;
        values += rows * L.R;
      }
    }
    const tokens = this.length * (this.qlayers.find(Boolean)?.batch ?? 1);
    return {
      bytesPerToken: tokens ? (bytes + listBytes) / tokens : 0, f32BytesPerToken: tokens ? f32 / tokens : 0, fixedBytes: fixed + listFixed, tokens, sparseShare: values ? sparse / values : 0,
      headLists: { bytesPerToken: tokens ? listBytes / tokens : 0, fixedBytes: listFixed },
    };
  }

  override dispose(): void {
    for (const l of this.qlayers) if (l) for (const s of [l.k, l.v]) { s.main.dispose(); s.out.dispose(); s.bounds?.dispose(); s.heads?.t.dispose(); }
    this.qlayers = [];
    this.ropeDevice?.dispose();
    this.ropeDevice = undefined;
    this.length = 0;
    this.qpending = 0;
    this.maxPos = 0;
  }
}
