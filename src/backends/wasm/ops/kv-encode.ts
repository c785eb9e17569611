// Runtime glue of the packed KV-cache encoder (kernels/kvenc.wat.mjs): fills its parameter block
// with the stream's layout, the new rows' positions and sink flags, and runs it on the calling
// thread (a step's rows are a few hundred values: no work to split). Not an op of the backend
// contract: the quantized cache (src/models/kvquant/cache.ts) calls it directly on the wasm
// backend and encodes with codec.ts elsewhere.
import type { KVEncodeArgs } from '../../../tensor/packed-kv.js';
import { KERNEL_CONSTANTS } from '../generated/kernels.js';
import type { WasmRuntime } from '../runtime.js';
import { f16Table } from './qmatmul.js';
import { addr, inside } from './rows.js';

const { KVE } = KERNEL_CONSTANTS.kvenc;
const KINDS = { q8_0: 0, q4_0: 1, uniform: 2, nuq: 3 } as const;

export function runKVEncodeWasm(rt: WasmRuntime, a: KVEncodeArgs): { rows: number; nOut: number } {
  const [B, HKV, T, D] = a.x.shape as [number, number, number, number];
  const L = a.stream.layout;
  if (a.x.dtype !== 'f32' || a.x.strides[3] !== 1) throw new Error('kv encode: x must be f32 with a contiguous last axis');
  if (HKV * D !== L.R) throw new Error(`kv encode: rows of ${HKV} heads × ${D} values do not fill the stream's rows of ${L.R}`);
  if (a.kind === 'q8_0' || a.kind === 'q4_0' ? L.params !== 'group' || L.G !== 32 : false) throw new Error(`kv encode: ${a.kind} needs groups of 32`);
  if (a.bounds && a.bounds.shape[0] !== 2 * L.R) throw new Error(`kv encode: bounds must be f32 [${2 * L.R}]`);
  const hs = a.stream.heads;
  if (hs && !(L.sparse && L.segs > 1 && L.R / L.segs <= 256)) throw new Error('kv encode: head entries need a segment index with heads of at most 256 values');
  for (const v of [a.x, a.stream.main, a.stream.out, ...(a.bounds ? [a.bounds] : []), ...(hs ? [hs.view] : [])]) {
    if (!inside(v)) throw new Error('kv encode: a view reaches outside its buffer');
  }
  const n = B * T;
  const rows0 = a.from ?? 0;
  if (a.row0 + n > L.cap) throw new Error(`kv encode: rows up to ${a.row0 + n} exceed the stream's ${L.cap}`);
  const G = L.params === 'group' ? L.G : 1;
  const work = (4 * L.R + 8 * G + L.R + 15) & ~15;
  const tab = f16Table(rt);
  const prm = rt.scratch('kvenc.params', KVE.BYTES);
  const scratch = rt.scratch('kvenc.work', work + 4 * n + n + 16);
  const posAt = scratch + work, sinkAt = posAt + 4 * n;
  const mem = rt.memory.bytes().buffer;
  if (a.holdsPositions) {
    const pos = new Int32Array(mem, posAt, n);
    for (let i = rows0; i < n; i++) {
      const t = Math.floor(i / B), b = i - t * B;
      pos[i] = a.positions ? a.positions[b * T + t]! : a.past + t;
    }
  }
  if (a.sink) new Uint8Array(mem, sinkAt, n).set(a.sink.subarray(0, n));
  const P = new Int32Array(mem, prm, KVE.BYTES / 4);
  const put = (at: number, x: number) => { P[at / 4] = x; };
  put(KVE.x, addr(rt, a.x)); put(KVE.xsb, a.x.strides[0]!); put(KVE.xsh, a.x.strides[1]!); put(KVE.xst, a.x.strides[2]!);
  put(KVE.B, B); put(KVE.HKV, HKV); put(KVE.T, T); put(KVE.D, D);
  put(KVE.main, addr(rt, a.stream.main)); put(KVE.out, addr(rt, a.stream.out));
  put(KVE.bits, L.bits); put(KVE.R, L.R); put(KVE.params, L.params === 'channel' ? 0 : 1); put(KVE.G, G); put(KVE.grpBytes, L.grpBytes);
  put(KVE.oGrp, L.oGrp); put(KVE.oRowptr, L.oRowptr); put(KVE.sparse, L.sparse ? 1 : 0);
  put(KVE.segs, L.sparse ? L.segs : 1); put(KVE.oSeg, L.oSeg);
  put(KVE.oPos, a.holdsPositions ? L.oPos : 0); put(KVE.oLut, L.oLut); put(KVE.oChan, L.oChan); put(KVE.oVal, L.oVal);
  put(KVE.slices, L.slices); put(KVE.sliceBytes, L.sliceBytes); put(KVE.cap, L.cap);
  put(KVE.kind, KINDS[a.kind]);
  put(KVE.bounds, a.bounds ? addr(rt, a.bounds) : 0);
  put(KVE.row0, a.row0); put(KVE.i0, rows0); put(KVE.n, n); put(KVE.nOut, a.nOut); put(KVE.outCap, L.sparse ? L.outCap : 0);
  put(KVE.pos, posAt); put(KVE.sink, a.sink ? sinkAt : 0);
  put(KVE.hx, hs ? addr(rt, hs.view) : 0); put(KVE.hcap, hs?.cap ?? 0); put(KVE.hat, hs?.at ?? 0); put(KVE.htrim, a.trimHeads ? 1 : 0);
  put(KVE.tab, tab); put(KVE.scratch, scratch); put(KVE.mids, rt.scratch('kvenc.mids', 128));
  new DataView(mem, prm + KVE.tau, 8).setFloat64(0, Number.isFinite(a.tau) ? a.tau : 0, true);
  put(KVE.hasTau, Number.isFinite(a.tau) ? 1 : 0);
  rt.pool.run('kv_encode', [prm], 1);
  return { rows: P[KVE.rowsDone / 4]!, nOut: P[KVE.nOutDone / 4]! };
}
