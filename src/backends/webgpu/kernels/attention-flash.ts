// Tiled attention for prefill (flash-attention style), used when the probabilities are not asked
// for and there are enough query rows: one workgroup per (batch·head, block of BQ query rows).
// The query block is staged in workgroup memory once; the keys and values are walked in tiles of
// BK rows staged in workgroup memory, with an online softmax (running max and sum per row) and the
// output accumulated in registers. Causal tiles above the diagonal of the block are skipped.
// A thread owns RPT query rows (strided by BQ/RPT) against 8 key lanes: it computes an RPT x BK/8
// block of scores and RPT rows x DV/32 vec4 columns of the output. Same semantics as the row
// kernel in attention.ts (grouped-query heads, causal offset tk - tq, u8 key mask, fully masked
// rows give zeros). When the probabilities are asked for (a pattern hook), a second walk over the
// key tiles recomputes the scores with each row's final max and sum and writes them (zeros past
// the last visible key). Where query blocks are few and keys long, the keys are split in runs over
// workgroups (each writes an unnormalized partial and its max and sum) and a second pass merges
// them (mergeRuns). Not for: decode (few query rows: attention.ts).
import type { View } from '../../../tensor/backend.js';
import { BUILTINS, Params, WG_INDEX, type Dense, type OpContext } from './context.js';
import { MATH, PRELUDE, inBinding, loaders, outBinding, storers } from '../wgsl.js';
import { envVar } from '../../../io/env.js';
import { mergeRuns, yStrides } from './attention-flash2.js';

/** Query rows per workgroup, rows per thread, keys per tile. */
export interface FlashTile { BQ: number; RPT: number; BK: number }

export const FLASH_MAX_D = 128;
/** Fewest query rows per (batch, head) that take this kernel. */
export const FLASH_MIN_TQ = 8;
let tile: FlashTile | null = null;
let enabled = envVar('ACTLAB_WEBGPU_FLASH') !== '0';

/** How a strided operand is staged: `unit` when its rows are runs of unit stride whose length is a multiple of 4 (four independent loads a vec4, no per-element test). */
export interface Stage { dst: string; stride: string; rows: number; n4: number; n: string; row: string; ok: string; at: string; col: string; ld: string; unit: boolean }

/** WGSL: the vec4 of row r, columns c..c+3 of the operand into `x` (zeros past the row's end). */
export function loadVec(o: Stage): string {
  if (o.unit) return `if (${o.ok}) { let at = ${o.at} + i32(c); x = vec4<f32>(${o.ld}(u32(at)), ${o.ld}(u32(at + 1)), ${o.ld}(u32(at + 2)), ${o.ld}(u32(at + 3))); }`;
  return `if (${o.ok}) {
      let at = ${o.at};
      for (var u = 0u; u < 4u; u++) { if (c + u < ${o.n}) { x[u] = ${o.ld}(u32(at + i32(c + u) * ${o.col})); } }
    }`;
}

/**
 * WGSL that stages `rows` rows of a strided operand into workgroup memory as vec4 (n values a
 * row, zero-padded to n4 vec4; rows past the end read as zeros): g is the row's index in the
 * operand, `at` its first element, `col` the element stride.
 */
export function stageRows(o: Stage, NT: number): string {
  return `  for (var e = li; e < ${o.rows * o.n4}u; e += ${NT}u) {
    let r = e / ${o.n4}u; let c = (e % ${o.n4}u) * 4u; ${o.row}
    var x = vec4<f32>(0.0);
    ${loadVec(o)}
    ${o.dst}[r * ${o.stride} + e % ${o.n4}u] = x;
  }`;
}

/**
 * The same in two halves, for a tile staged while the previous one is in use: `load` fills
 * registers <reg>0.. (each thread's share, all loads independent), `store` writes them out.
 */
function stageRegs(o: Stage, NT: number, reg: string): { decl: string; load: string; store: string } {
  const L = Math.ceil((o.rows * o.n4) / NT);
  const exact = (o.rows * o.n4) % NT === 0;
  const each = (f: (l: number) => string) => Array.from({ length: L }, (_, l) => f(l)).join('\n');
  return {
    decl: each((l) => `  var ${reg}${l} = vec4<f32>(0.0);`),
    load: each((l) => `    { let e = li + ${l * NT}u; let r = e / ${o.n4}u; let c = (e % ${o.n4}u) * 4u; ${o.row}
      var x = vec4<f32>(0.0);
      ${exact ? '' : `if (e < ${o.rows * o.n4}u) `}{ ${loadVec(o)} }
      ${reg}${l} = x; }`),
    store: each((l) => `    { let e = li + ${l * NT}u; ${exact ? '' : `if (e < ${o.rows * o.n4}u) `}{ ${o.dst}[(e / ${o.n4}u) * ${o.stride} + e % ${o.n4}u] = ${reg}${l}; } }`),
  };
}

const splitEnv = envVar('ACTLAB_WEBGPU_FLASH_SPLIT');
/** Fewest key tiles per run of a split (0: no split); ACTLAB_WEBGPU_FLASH_SPLIT sets it too. */
let runTiles = splitEnv === undefined || splitEnv === '' ? 4 : Math.max(0, Number(splitEnv) || 0);
/** For comparisons: the fewest key tiles per run when long key ranges are split over workgroups (0: never split). */
export function setFlashKeySplit(tiles: number): void { runTiles = tiles; }

/**
 * Runs of keys per query block: where there are fewer query blocks than about two per SM of a large
 * GPU (132 SMs) and the keys span at least two runs of `runTiles` tiles, split them into up to 8
 * runs, so that the longest causal block no longer walks every key in one workgroup (H200, GPT-2
 * medium at T=512: 128 query blocks, 16 key tiles for the last; attention 0.119 -> 0.102 ms).
 */
export function keyRuns(blocks: number, TK: number, BK: number, tilesPerRun = runTiles, enoughBlocks = 264): number {
  if (!(tilesPerRun > 0) || blocks >= enoughBlocks) return 1;
  const tiles = Math.ceil(TK / BK);
  return Math.max(1, Math.min(8, Math.floor(tiles / tilesPerRun)));
}

/** WGSL: the first element of head h's query rows and of its key/value head kvh's rows (b, h, kvh in scope; the attention params' strides). */
export const HEAD_BASES = `let qb = sp(13) + i32(b) * sp(9) + i32(h) * sp(10);
  let kb = sp(18) + i32(b) * sp(14) + i32(kvh) * sp(15);
  let vb = sp(23) + i32(b) * sp(19) + i32(kvh) * sp(20);`;

/** For tuning: a fixed tile (null: the default pick). */
export function setFlashTile(t: FlashTile | null): void { tile = t; }
export function enableFlashAttention(on: boolean): void { enabled = on; }

export function flashEligible(TQ: number, D: number, DV: number): boolean {
  return enabled && TQ >= FLASH_MIN_TQ && D <= FLASH_MAX_D && DV <= FLASH_MAX_D;
}

const vec4Stride = (n4: number) => (n4 % 2 === 1 ? n4 : n4 + 1); // odd: 8 lanes hit 8 bank groups

const tileBytes = (t: FlashTile, D4: number, DV4: number) => 16 * (t.BQ * vec4Stride(D4) + t.BK * vec4Stride(D4) + t.BK * DV4) + 4 * (t.BQ * t.BK + t.BQ * 8);

/** Whether the smallest tile for heads of D and DV fits `maxBytes` of workgroup memory (else the row kernel serves). */
export function flashFits(D: number, DV: number, maxBytes: number): boolean {
  const D4 = Math.ceil(D / 4);
  const DV4 = Math.ceil(DV / 4);
  return tileBytes(pick(D4, DV4, maxBytes), D4, DV4) <= maxBytes;
}

function pick(D4: number, DV4: number, maxBytes: number): FlashTile {
  const bytes = (t: FlashTile) => tileBytes(t, D4, DV4);
  // H200, [1, 16, 512, 64] causal: 64/2/32 0.116 ms, 32/2/16 0.140, 64/4/32 0.146, 32/2/32 0.185,
  // 16/2/32 0.223, 32/4/32 0.273 (the row kernel 0.886); where memory is short, keys first to 16
  const t = { ...(tile ?? { BQ: 64, RPT: 2, BK: 32 }) };
  while (t.BK > 16 && bytes(t) > maxBytes) t.BK /= 2;
  while (t.BQ > 8 * t.RPT && bytes(t) > maxBytes) t.BQ /= 2;
  while (t.BK > 8 && bytes(t) > maxBytes) t.BK /= 2;
  return t;
}

/** y = softmax(q kᵀ · scale) v with the query rows in blocks; `md` is the dense u8 key mask, `pd` the probabilities (when asked for). */
export function flashAttention(ctx: OpContext, q: View, k: View, v: View, md: Dense | null, yd: Dense, scale: number, causal: boolean, pd: Dense | null = null, tokenMajor = false): void {
  const [B, HQ, TQ, D] = q.shape as [number, number, number, number];
  const [, HKV, TK] = k.shape as [number, number, number, number];
  const DV = v.shape[3]!;
  const D4 = Math.ceil(D / 4);
  const DV4 = Math.ceil(DV / 4);
  const t = pick(D4, DV4, ctx.rt.device.limits.maxComputeWorkgroupStorageSize);
  const { BQ, RPT, BK } = t;
  const RQ = BQ / RPT; // row groups: thread (ty, tx) owns rows ty + RQ * ii
  const NT = RQ * 8;
  const JN = BK / 8;
  const NC = Math.ceil(DV4 / 8);
  const QS = vec4Stride(D4);
  const nqb = Math.ceil(TQ / BQ);
  const unitQ = q.strides[3] === 1 && D % 4 === 0;
  const unitK = k.strides[3] === 1 && D % 4 === 0;
  const unitV = v.strides[3] === 1 && DV % 4 === 0;
  // keys in runs of KC over workgroups where the query blocks alone would leave the GPU idle
  const NKC = pd ? 1 : keyRuns(B * HQ * nqb, TK, BK);
  const KC = Math.ceil(Math.ceil(TK / NKC) / BK) * BK;
  const key = `flash ${q.dtype}${k.dtype}${v.dtype}>${yd.dtype} d${D}v${DV} ${BQ}/${RPT}/${BK} ${causal ? 'c' : ''}${md ? 'm' : ''}${pd ? `p${pd.dtype}` : ''} u${Number(unitQ)}${Number(unitK)}${Number(unitV)}${NKC > 1 ? ` split${NKC}` : ''}`;
  // the scores of key tile k0 for this thread's rows, scaled and masked (-inf where hidden), into s
  const scores = `    var s: array<array<f32, ${JN}>, ${RPT}>;
    for (var ii = 0u; ii < ${RPT}u; ii++) { for (var jj = 0u; jj < ${JN}u; jj++) { s[ii][jj] = 0.0; } }
    for (var c = 0u; c < D4; c++) {
      var kv: array<vec4<f32>, ${JN}>;
      for (var jj = 0u; jj < ${JN}u; jj++) { kv[jj] = Ks[(tx + 8u * jj) * QS + c]; }
      for (var ii = 0u; ii < ${RPT}u; ii++) {
        let qv = Qs[(ty + RQ * ii) * QS + c];
        for (var jj = 0u; jj < ${JN}u; jj++) {
          let p = qv * kv[jj];
          s[ii][jj] = s[ii][jj] + ((p.x + p.y) + (p.z + p.w));
        }
      }
    }
    for (var ii = 0u; ii < ${RPT}u; ii++) {
      let limit = ${causal ? 'i32(q0 + ty + RQ * ii) + i32(TK) - i32(TQ)' : 'i32(TK) - 1'};
      for (var jj = 0u; jj < ${JN}u; jj++) {
        let jg = k0 + i32(tx + 8u * jj);
        var kept = jg <= limit && jg < i32(TK);
        ${md ? 'if (kept) { kept = ldb_mask(P[25] + b * TK + u32(jg)) != 0u; }' : ''}
        s[ii][jj] = select(-inf_f32(), s[ii][jj] * scale, kept);
      }
    }`;
  // key / value rows of the tile starting at key `at`
  const kStage = (at: string): Stage => ({ dst: 'Ks', stride: 'QS', rows: BK, n4: D4, n: 'D', row: `let g = ${at} + i32(r);`, ok: 'g < i32(TK)', at: 'kb + g * sp(16)', col: 'sp(17)', ld: 'ldf_k', unit: unitK });
  const vStage = (at: string): Stage => ({ dst: 'Vs', stride: 'DV4', rows: BK, n4: DV4, n: 'DV', row: `let g = ${at} + i32(r);`, ok: 'g < i32(TK)', at: 'vb + g * sp(21)', col: 'sp(22)', ld: 'ldf_v', unit: unitV });
  const stageK = stageRows(kStage('k0'), NT);
  // the next tile's keys and values are loaded into registers while this one is in use
  const kr = stageRegs(kStage('kn'), NT, 'rk');
  const vr = stageRegs(vStage('kn'), NT, 'rv');
  const kern = ctx.kernel(key, () => `${PRELUDE}${MATH}
@group(0) @binding(0) var<storage, read> P: array<u32>;
${inBinding(1, 'q')}
${inBinding(2, 'k')}
${inBinding(3, 'v')}
${NKC > 1 ? '@group(0) @binding(4) var<storage, read_write> part: array<f32>;' : outBinding(4, 'y', yd.dtype)}
${md ? inBinding(5, 'mask') : ''}
${pd ? outBinding(md ? 6 : 5, 'pr', pd.dtype) : ''}
${pd ? storers('pr', pd.dtype) : ''}
${loaders('q', q.dtype)}
${loaders('k', k.dtype)}
${loaders('v', v.dtype)}
${NKC > 1 ? '' : storers('y', yd.dtype)}
${md ? loaders('mask', 'u8') : ''}
const D = ${D}u; const DV = ${DV}u; const D4 = ${D4}u; const DV4 = ${DV4}u; const QS = ${QS}u;
const BQ = ${BQ}u; const BK = ${BK}u; const RQ = ${RQ}u; const NT = ${NT}u;
var<workgroup> Qs: array<vec4<f32>, ${BQ * QS}>;
var<workgroup> Ks: array<vec4<f32>, ${BK * QS}>;
var<workgroup> Vs: array<vec4<f32>, ${BK * DV4}>;
var<workgroup> Ps: array<f32, ${BQ * BK}>;
var<workgroup> red: array<f32, ${BQ * 8}>;
fn sp(i: u32) -> i32 { return bitcast<i32>(P[i]); }
@compute @workgroup_size(${NT})
fn main(${BUILTINS}) {
  ${WG_INDEX}
  // P: B HQ TQ D | HKV TK DV group | scale | q strides 4, q off | k strides 4, k off | v strides 4, v off | y off, mask off
  let HQ = P[1]; let TQ = P[2]; let TK = P[5]; let group = P[7];
  let scale = bitcast<f32>(P[8]);
  let nqb = (TQ + BQ - 1u) / BQ;
  if (wg >= P[0] * HQ * nqb * ${NKC}u) { return; }
  let kc = wg % ${NKC}u; // this workgroup's run of keys
  let bq = wg / ${NKC}u;
  let bh = bq / nqb;
  let q0 = (nqb - 1u - bq % nqb) * BQ; // the longest causal blocks first
  let h = bh % HQ; let b = bh / HQ; let kvh = h / group;
  let tx = li % 8u; let ty = li / 8u;
  ${HEAD_BASES}
${stageRows({ dst: 'Qs', stride: 'QS', rows: BQ, n4: D4, n: 'D', row: 'let g = q0 + r;', ok: 'g < TQ', at: 'qb + i32(g) * sp(11)', col: 'sp(12)', ld: 'ldf_q', unit: unitQ }, NT)}
  let qlast = i32(min(q0 + BQ, TQ)) - 1;
  let kend = ${causal ? 'min(qlast + i32(TK) - i32(TQ), i32(TK) - 1)' : 'i32(TK) - 1'};
  let kbeg = i32(kc * P[28]);
  let kstop = min(kend, kbeg + i32(P[28]) - 1);
  var m: array<f32, ${RPT}>;
  var l: array<f32, ${RPT}>;
  var acc: array<vec4<f32>, ${RPT * NC}>;
  for (var ii = 0u; ii < ${RPT}u; ii++) { m[ii] = -inf_f32(); l[ii] = 0.0; }
  for (var a = 0u; a < ${RPT * NC}u; a++) { acc[a] = vec4<f32>(0.0); }
${kr.decl}
${vr.decl}
  if (kbeg <= kstop) {
    let kn = kbeg;
${kr.load}
${vr.load}
  }
  for (var k0 = kbeg; k0 <= kstop; k0 += i32(BK)) {
    workgroupBarrier();
${kr.store}
${vr.store}
    workgroupBarrier();
    if (k0 + i32(BK) <= kstop) {
      let kn = k0 + i32(BK);
${kr.load}
${vr.load}
    }
${scores}
    for (var ii = 0u; ii < ${RPT}u; ii++) {
      var pm = -inf_f32();
      for (var jj = 0u; jj < ${JN}u; jj++) { pm = max(pm, s[ii][jj]); }
      red[(ty + RQ * ii) * 8u + tx] = pm;
    }
    workgroupBarrier();
    for (var ii = 0u; ii < ${RPT}u; ii++) {
      let r = ty + RQ * ii;
      var cm = red[r * 8u];
      for (var t = 1u; t < 8u; t++) { cm = max(cm, red[r * 8u + t]); }
      let nm = max(m[ii], cm);
      let live = nm != -inf_f32(); // no visible key yet: nothing changes
      let alpha = select(1.0, exp_safe(m[ii] - nm), live);
      var ps = 0.0;
      for (var jj = 0u; jj < ${JN}u; jj++) {
        let p = select(0.0, exp_safe(s[ii][jj] - nm), live && s[ii][jj] != -inf_f32());
        Ps[r * BK + tx + 8u * jj] = p;
        ps = ps + p;
      }
      l[ii] = l[ii] * alpha + ps;
      for (var cc = 0u; cc < ${NC}u; cc++) { acc[ii * ${NC}u + cc] = acc[ii * ${NC}u + cc] * alpha; }
      m[ii] = nm;
    }
    workgroupBarrier();
    let nj = min(BK, u32(i32(TK) - k0));
    for (var j = 0u; j < nj; j++) {
      var pv: array<f32, ${RPT}>;
      for (var ii = 0u; ii < ${RPT}u; ii++) { pv[ii] = Ps[(ty + RQ * ii) * BK + j]; }
      for (var cc = 0u; cc < ${NC}u; cc++) {
        let c = tx + 8u * cc;
        if (c < DV4) {
          let vv = Vs[j * DV4 + c];
          for (var ii = 0u; ii < ${RPT}u; ii++) { acc[ii * ${NC}u + cc] = fma(vec4<f32>(pv[ii]), vv, acc[ii * ${NC}u + cc]); }
        }
      }
    }
  }
  workgroupBarrier();
  for (var ii = 0u; ii < ${RPT}u; ii++) { red[(ty + RQ * ii) * 8u + tx] = l[ii]; }
  workgroupBarrier();
  var lts: array<f32, ${RPT}>;
  for (var ii = 0u; ii < ${RPT}u; ii++) {
    let r = ty + RQ * ii;
    var lt = 0.0;
    for (var t = 0u; t < 8u; t++) { lt = lt + red[r * 8u + t]; }
    lts[ii] = lt;
  }
  for (var ii = 0u; ii < ${RPT}u; ii++) {
    let r = ty + RQ * ii; let i = q0 + r;
    if (i >= TQ) { continue; }
    let lt = lts[ii];${NKC > 1 ? `
    // unnormalized partial: rows [(bh * NKC + kc) * TQ + i] of DV values, then (max, sum) pairs after all of them
    let pr = (bh * ${NKC}u + kc) * TQ + i;
    if (tx == 0u) { part[P[27] + pr * 2u] = m[ii]; part[P[27] + pr * 2u + 1u] = lt; }
    for (var cc = 0u; cc < ${NC}u; cc++) {
      let c = (tx + 8u * cc) * 4u;
      if (c >= DV) { continue; }
      for (var u = 0u; u < 4u; u++) { if (c + u < DV) { part[pr * DV + c + u] = acc[ii * ${NC}u + cc][u]; } }
    }
  }` : `
    let yb = P[24] + (bh / HQ) * P[29] + h * P[30] + i * P[31];
    for (var cc = 0u; cc < ${NC}u; cc++) {
      let c = (tx + 8u * cc) * 4u;
      if (c >= DV) { continue; }
      let o = select(vec4<f32>(0.0), acc[ii * ${NC}u + cc] / lt, lt > 0.0);
      for (var u = 0u; u < 4u; u++) { if (c + u < DV) { stf_y(yb + c + u, o[u]); } }
    }
  }`}${pd ? `
  // the probabilities: the scores again, with each row's final max and sum
  for (var k0 = 0; k0 <= kend; k0 += i32(BK)) {
    workgroupBarrier();
${stageK}
    workgroupBarrier();
${scores}
    for (var ii = 0u; ii < ${RPT}u; ii++) {
      let i = q0 + ty + RQ * ii;
      if (i >= TQ) { continue; }
      let pb = P[26] + (bh * TQ + i) * TK;
      for (var jj = 0u; jj < ${JN}u; jj++) {
        let jg = k0 + i32(tx + 8u * jj);
        if (jg < i32(TK)) {
          let p = select(0.0, exp_safe(s[ii][jj] - m[ii]) / lts[ii], lts[ii] > 0.0 && s[ii][jj] != -inf_f32());
          stf_pr(pb + u32(jg), p);
        }
      }
    }
  }
  // keys past the last one the block sees
  for (var ii = 0u; ii < ${RPT}u; ii++) {
    let i = q0 + ty + RQ * ii;
    if (i >= TQ) { continue; }
    let pb = P[26] + (bh * TQ + i) * TK;
    for (var j = u32(max(kend + 1, 0)) + tx; j < TK; j += 8u) { stf_pr(pb + j, 0.0); }
  }` : ''}
}`);
  const p = new Params()
    .u32(B, HQ, TQ, D, HKV, TK, DV, HQ / HKV).f32(scale)
    .i32(...q.strides, q.offset, ...k.strides, k.offset, ...v.strides, v.offset)
    .u32(yd.offset, md?.offset ?? 0, pd?.offset ?? 0);
  const rows = B * HQ * TQ;
  const part = NKC > 1 ? ctx.temp(rows * NKC * (DV + 2) * 4) : null;
  const ys = yStrides(B, HQ, TQ, DV, tokenMajor);
  p.u32(rows * NKC * DV, KC, ...ys); // where the (max, sum) pairs of the partials start; keys per run; y strides (b, h, t)
  const bufs = [ctx.buffer(q), ctx.buffer(k), ctx.buffer(v), part ? part.gpu : yd.gpu];
  if (md) bufs.push(md.gpu);
  if (pd) bufs.push(pd.gpu);
  ctx.run(kern, bufs, p, [B * HQ * nqb * NKC]);
  if (part) mergeRuns(ctx, part.gpu, NKC, B, HQ, TQ, DV, yd, ys);
}
