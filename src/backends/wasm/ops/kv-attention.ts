// Runtime glue of the packed KV-cache attention kernel (kernels/kvattn.wat.mjs): fills its
// parameter block with the addresses of the query, the output and the two packed streams, and
// splits the query rows over the thread pool. Not an op of the backend contract: the quantized
// cache (src/models/kvquant/cache.ts) calls it directly on the wasm backend and runs its reference
// (src/models/kvquant/reference.ts) elsewhere.
import type { View } from '../../../tensor/backend.js';
import type { KVAttentionArgs, PackedStreamViews } from '../../../tensor/packed-kv.js';
import { KERNEL_CONSTANTS } from '../generated/kernels.js';
import type { WasmRuntime } from '../runtime.js';
import { f32Bits } from './norm.js';
import { f16Table } from './qmatmul.js';
import { addr, inside, isContiguous, threadsFor } from './rows.js';

const { KVA, KVS, NB } = KERNEL_CONSTANTS.kvattn;

interface FastPath { fast: number }
/** Per layout object (a stream keeps its layout and table until it grows) and slice width. */
const fastPaths = new WeakMap<object, Map<number, FastPath>>();

function fastPath(s: PackedStreamViews, n: number, rt: WasmRuntime): FastPath {
  let byN = fastPaths.get(s.layout);
  if (!byN) fastPaths.set(s.layout, (byN = new Map()));
  let fp = byN.get(n);
  if (!fp) byN.set(n, (fp = findFastPath(s, n, rt)));
  return fp;
}

/**
 * Which decoder the kernel may use on head slices of `n` values (KVS.fast): 4-bit codes through
 * the table's byte planes, 8-bit codes whose table is the integers (q8_0's int8(i), uniform i) by
 * conversion. Both need whole 8-value chunks and, for group params, a slice made of
 * whole groups or lying inside one. 0: a value at a time.
 */
function findFastPath(s: PackedStreamViews, n: number, rt: WasmRuntime): FastPath {
  const L = s.layout;
  const none = { fast: 0 };
  if (n % 8 !== 0 || (L.params === 'group' && !((n % L.G === 0 && L.G % 8 === 0) || L.G % n === 0))) return none;
  if (L.bits === 4) return { fast: 4 };
  if (L.bits !== 8) return none;
  const lut = new Float32Array(rt.memory.bytes().buffer, addr(rt, s.main) + L.oLut, 256);
  if (lut.every((v, i) => v === ((i << 24) >> 24))) return { fast: 8 };
  if (lut.every((v, i) => v === i)) return { fast: 9 };
  return none;
}

export function runKVAttentionWasm(rt: WasmRuntime, a: KVAttentionArgs): void {
  const [B, HQ, TQ, D] = a.q.shape as [number, number, number, number];
  const DV = a.y.shape[3]!;
  if (a.q.strides[3] !== 1 || !isContiguous(a.y) || (a.mask && !isContiguous(a.mask))) throw new Error('kv attention: q needs a contiguous last axis, y and the mask contiguous');
  const heads = [a.k.heads, a.v.heads].flatMap((h) => (h ? [h.view] : []));
  for (const v of [a.q, a.y, a.k.main, a.k.out, a.v.main, a.v.out, ...heads, ...(a.mask ? [a.mask] : []), ...(a.rope ? [a.rope.table] : [])]) {
    if (!inside(v)) throw new Error('kv attention: a view reaches outside its buffer');
  }
  const G = HQ / a.hkv;
  const rows = B * a.hkv * TQ;
  const threads = threadsFor(rt, rows * a.tk * (D + DV) * 8, rows);
  // scores, decoded blocks, max and sum, a dummy slot; the sixteen-keys path's rows with exact
  // entries, channel planes and cos/sin rows; the sixteen-rows values' scales and offsets in f32
  const tkp = (a.tk + 3) & ~3;
  const stride = Math.ceil(((G * tkp + NB * (D + DV) + 2 * G + 1 + 4 + 3 * NB + 16 * D + (a.rope?.rotaryDim ?? 0) * ((a.tk + 63) & ~63) + 8 + 2 * tkp + 4) * 4) / 64) * 64;
  const scratch = rt.scratch('kvattn.scores', Math.max(64, stride * threads));
  const prm = rt.scratch('kvattn.params', KVA.BYTES);
  const P = new Int32Array(rt.memory.bytes().buffer, prm, KVA.BYTES / 4);
  const put = (at: number, x: number) => { P[at / 4] = x; };
  put(KVA.B, B); put(KVA.HQ, HQ); put(KVA.G, G); put(KVA.TQ, TQ); put(KVA.TK, a.tk); put(KVA.D, D); put(KVA.DV, DV);
  put(KVA.q, addr(rt, a.q)); put(KVA.qsb, a.q.strides[0]!); put(KVA.qsh, a.q.strides[1]!); put(KVA.qst, a.q.strides[2]!);
  put(KVA.y, addr(rt, a.y));
  put(KVA.mask, a.mask ? addr(rt, a.mask) : 0);
  put(KVA.causal, a.causal ? 1 : 0);
  put(KVA.scaleBits, f32Bits(a.scale));
  put(KVA.scratch, scratch); put(KVA.scratchStride, stride);
  put(KVA.tab, f16Table(rt));
  put(KVA.rope, a.rope ? addr(rt, a.rope.table) : 0);
  put(KVA.rot, a.rope?.rotaryDim ?? 0);
  put(KVA.ropeMode, a.rope?.mode === 'interleaved' ? 1 : 0);
  for (const [base, s, n] of [[KVA.k, a.k, D], [KVA.v, a.v, DV]] as const) {
    const L = s.layout;
    const fp = fastPath(s, n, rt);
    put(base + KVS.fast, fp.fast);
    put(base + KVS.main, addr(rt, s.main)); put(base + KVS.out, addr(rt, s.out));
    // codes a kv head at a time: the kernel reads slices [c0, c0 + n) inside one head's slice
    if (L.slices > 1 && L.R / L.slices !== n) throw new Error(`kv attention: the stream's codes are stored in slices of ${L.R / L.slices} values, the heads are ${n} wide`);
    put(base + KVS.bits, L.bits); put(base + KVS.R, L.R); put(base + KVS.rowBytes, L.sliceBytes);
    put(base + KVS.hstep, (L.cap - 1) * L.sliceBytes); put(base + KVS.S, L.R / L.slices);
    put(base + KVS.params, L.params === 'channel' ? 0 : 1); put(base + KVS.G, L.G); put(base + KVS.grpBytes, L.grpBytes);
    put(base + KVS.oGrp, L.oGrp); put(base + KVS.oRowptr, L.oRowptr); put(base + KVS.oPos, L.oPos);
    put(base + KVS.oLut, L.oLut); put(base + KVS.oChan, L.oChan); put(base + KVS.oVal, L.oVal);
    put(base + KVS.sparse, L.sparse ? 1 : 0);
    put(base + KVS.segs, L.sparse ? L.segs : 1); put(base + KVS.oSeg, L.oSeg);
    // one sequence with per-head lists (HeadEntries): the sixteen-a-vector paths read a head's entries from its list
    const hs = B === 1 && L.sparse && L.segs > 1 ? s.heads : undefined;
    put(base + KVS.hx, hs ? addr(rt, hs.view) : 0); put(base + KVS.hcap, hs?.cap ?? 0); put(base + KVS.hat, hs?.at ?? 0);
  }
  rt.pool.run('kv_attn_rows', [prm], threads);
}
