// Prefill attention, flash-attention-2 style, register-blocked like a GEMM (f32 q/k/v, no
// probabilities). One workgroup of NT threads per (block of BQ query rows, batch·head[, run of
// keys]), by default 128 threads and 32 rows (FLASH2_TUNING: 16 to 64 rows, 1, 2 or 4 rows a
// thread); blocks are dispatched longest causal range first over all heads. The query block sits in
// workgroup memory; key and value tiles of BK rows are staged in workgroup memory, the next tile
// loaded into registers while the current one is in use (or, without prefetch, after a barrier);
// optionally each thread's query rows are read once into registers (qreg).
// Thread (ty, tx) = (li / 8, li % 8) owns query rows R·ty .. R·ty+R-1 (R = 4 by default): it
// computes their scores against keys tx + 8·jj (R x BK/8, vec4
// reads, keys swizzled or padded so the 8 lanes hit distinct banks) and their output columns
// 4·(tx + 8·cc) .. +3 (R x DV/8: P as vec4 of 4 keys, V as vec4 of 4 columns). The row max over the
// 8 lanes of a row goes through subgroup shuffles where every subgroup holds at least 8 lanes, else
// through workgroup memory; the row sum stays per lane until the end. P reuses the key tile's
// memory. Only tiles that cross the causal diagonal, the end of the keys or a key mask test each
// score. Where query blocks are few (under 128) and keys long, the keys are split in runs over
// workgroups and merged by a second pass. Output rows are written through strides: head-major [B, HQ, TQ, DV] or
// token-major [B, TQ, HQ, DV]. Same semantics as the row kernel (attention.ts).
import type { View } from '../../../tensor/backend.js';
import { BUILTINS, Params, WG_INDEX, type Dense, type OpContext } from './context.js';
import { MATH, PRELUDE, cdiv, inBinding, loaders, outBinding, storers } from '../wgsl.js';
import { envVar } from '../../../io/env.js';
import { HEAD_BASES, keyRuns, loadVec, stageRows, type Stage } from './attention-flash.js';

/**
 * The kernel's shape. reduce: the row max through workgroup memory ('wg') or picked ('auto'); BQ:
 * query rows per workgroup (16, 32 or 64); NT: threads per workgroup (8 per 1, 2 or 4 rows: 2·BQ,
 * 4·BQ or 8·BQ, at most 256); BK: keys per tile (0: picked); prefetch: the next K/V tile loaded into
 * registers while the current one is in use (else loaded after a barrier); qreg: each thread's query
 * rows held in registers for the scores (where rows a thread x D/4 <= 32); runs: key runs per query
 * block (0: picked from runTiles, the fewest key tiles per run; runTiles 0: never split).
 * ACTLAB_WEBGPU_FLASH2_TUNE sets any of them, e.g. "bq=32,nt=64,bk=64,prefetch=0,runs=2".
 */
export const FLASH2_TUNING = {
  reduce: 'auto' as 'auto' | 'wg', BQ: 32, NT: 128, BK: 0, prefetch: true, qreg: false, runs: 0,
  runTiles: Number(envVar('ACTLAB_WEBGPU_FLASH2_SPLIT') ?? 4),
};
export type Flash2Tuning = typeof FLASH2_TUNING;
/** The defaults above, to restore after comparisons. */
export const FLASH2_DEFAULTS: Readonly<Flash2Tuning> = { ...FLASH2_TUNING };

/** Parses "bq=32,nt=64,bk=64,prefetch=0,runs=2,split=4,reduce=wg" into tuning fields (unknown key or bad value: error). */
export function parseFlash2Tuning(spec: string, where = 'ACTLAB_WEBGPU_FLASH2_TUNE'): Partial<Flash2Tuning> {
  const out: Partial<Flash2Tuning> = {};
  for (const part of spec.split(',').map((x) => x.trim()).filter(Boolean)) {
    const [k, v = ''] = part.split('=').map((x) => x.trim().toLowerCase()) as [string, string?];
    const n = Number(v);
    const bad = () => new Error(`${where}: bad value '${v}' for '${k}' in '${spec}'`);
    if (k === 'reduce') { if (v !== 'auto' && v !== 'wg') throw bad(); out.reduce = v; }
    else if (k === 'prefetch' || k === 'qreg') { if (v !== '0' && v !== '1') throw bad(); out[k] = v === '1'; }
    else if (k === 'bq' || k === 'nt' || k === 'bk' || k === 'runs' || k === 'split') {
      if (!Number.isInteger(n) || n < 0) throw bad();
      if (k === 'bq') out.BQ = n; else if (k === 'nt') out.NT = n; else if (k === 'bk') out.BK = n; else if (k === 'runs') out.runs = n; else out.runTiles = n;
    } else throw new Error(`${where}: unknown key '${k}' in '${spec}' (bq, nt, bk, prefetch, qreg, runs, split, reduce)`);
  }
  return out;
}
const tuneEnv = envVar('ACTLAB_WEBGPU_FLASH2_TUNE');
if (tuneEnv) Object.assign(FLASH2_TUNING, parseFlash2Tuning(tuneEnv));

/** Workgroup shape from the tuning: rows BQ, threads NT, rows per thread R (8 lanes a row). */
function shape(): { BQ: number; NT: number; R: number } {
  const { BQ, NT } = FLASH2_TUNING;
  const R = (BQ * 8) / NT;
  if (![16, 32, 64].includes(BQ) || ![1, 2, 4].includes(R) || NT > 256) {
    throw new Error(`flash2 tuning: BQ ${BQ} with NT ${NT} threads (BQ 16, 32 or 64; NT = 2, 4 or 8 x BQ, at most 256)`);
  }
  return { BQ, NT, R };
}

const lines = (n: number, f: (i: number) => string, sep = '\n') => Array.from({ length: n }, (_, i) => f(i)).join(sep);

interface Layout { BK: number; KS: number; swz: boolean; KPN: number; sg: boolean; bytes: number }

function layout(D4: number, DV4: number, BK: number, sg: boolean, BQ: number): Layout {
  const swz = D4 % 8 === 0;
  const KS = swz || D4 % 2 === 1 ? D4 : D4 + 1;
  const KPN = Math.max(BK * KS, (BQ * BK) / 4);
  const bytes = 16 * (BQ * D4 + KPN + BK * DV4) + (sg ? 0 : 4 * BQ * 8);
  return { BK, KS, swz, KPN, sg, bytes };
}

/** The layout for these head sizes, or null when none fits the workgroup memory (then the older kernel serves). */
function pick(ctx: OpContext, D4: number, DV4: number): Layout | null {
  return pickLayout(ctx.features, ctx.rt.device.limits.maxComputeWorkgroupStorageSize, D4, DV4);
}

/** Whether the kernel's tile for heads of D and DV fits a device with these features and workgroup memory (tests). */
export const flash2TileFits = (f: { subgroups: boolean; subgroupMinSize: number }, maxWorkgroupBytes: number, D: number, DV: number) =>
  pickLayout(f, maxWorkgroupBytes, Math.ceil(D / 4), Math.ceil(DV / 4)) !== null;

function pickLayout(f: { subgroups: boolean; subgroupMinSize: number }, max: number, D4: number, DV4: number): Layout | null {
  const sg = FLASH2_TUNING.reduce === 'auto' && f.subgroups && f.subgroupMinSize >= 8;
  const { BQ } = shape();
  // 64 keys a tile only with the subgroup reduction (the 48 KiB of a large GPU hold no reduction
  // array beside it); without subgroups 16 (SwiftShader's compiler runs out of memory on 32 and 64
  // with a key mask or odd head sizes)
  for (const BK of FLASH2_TUNING.BK ? [FLASH2_TUNING.BK] : sg ? [64, 32, 16] : [16]) {
    const l = layout(D4, DV4, BK, sg, BQ);
    if (l.bytes <= max) return l;
  }
  return null;
}

/** Whether the kernel takes this problem (f32 q, k, v; no probabilities; the tile fits). */
export function flash2Fits(ctx: OpContext, q: View, k: View, v: View, D: number, DV: number): boolean {
  if (q.dtype !== 'f32' || k.dtype !== 'f32' || v.dtype !== 'f32' || D > 128 || DV > 128) return false;
  return pick(ctx, Math.ceil(D / 4), Math.ceil(DV / 4)) !== null;
}

/** Runs of keys per query block: split where the blocks alone would leave a large GPU (132 SMs) short of work. */
function runsOf(blocks: number, TK: number, BK: number): number {
  if (FLASH2_TUNING.runs > 0) return Math.max(1, Math.min(8, FLASH2_TUNING.runs, Math.ceil(TK / BK)));
  // the older kernel's rule, this kernel's tiles a run, no split from 128 blocks on: on the H200,
  // 32 rows a block unsplit against 64 rows in 2 runs and the merge, GPU µs a layer (bench/RESULTS.md):
  // [1,16,512,64] 70.8 vs 81.9, [1,12,512,64] 62.6 vs 62.0, [1,16,128,64] 26.5 vs 36.5 (64 rows unsplit)
  return keyRuns(blocks, TK, BK, FLASH2_TUNING.runTiles, 128);
}

/** The tile's prefetch: each thread's share of the rows in registers (load), then into workgroup memory (store). */
function regs(o: Stage, reg: string, idx: (r: string, c: string) => string, NT: number) {
  const L = Math.ceil((o.rows * o.n4) / NT);
  const exact = (o.rows * o.n4) % NT === 0;
  return {
    decl: lines(L, (l) => `  var ${reg}${l} = vec4<f32>(0.0);`),
    load: lines(L, (l) => `    { let e = li + ${l * NT}u; let r = e / ${o.n4}u; let c = (e % ${o.n4}u) * 4u; ${o.row}
      var x = vec4<f32>(0.0);
      ${exact ? '' : `if (e < ${o.rows * o.n4}u) `}{ ${loadVec(o)} }
      ${reg}${l} = x; }`),
    store: lines(L, (l) => `    { let e = li + ${l * NT}u; ${exact ? '' : `if (e < ${o.rows * o.n4}u) `}{ let r = e / ${o.n4}u; ${o.dst}[${idx('r', `e % ${o.n4}u`)}] = ${reg}${l}; } }`),
  };
}

/** y (head-major or token-major through its strides) = softmax(q kᵀ · scale) v; `md` the dense u8 key mask. */
export function flashAttention2(ctx: OpContext, q: View, k: View, v: View, md: Dense | null, yd: Dense, scale: number, causal: boolean, tokenMajor: boolean): void {
  const [B, HQ, TQ, D] = q.shape as [number, number, number, number];
  const [, HKV, TK] = k.shape as [number, number, number, number];
  const DV = v.shape[3]!;
  const D4 = Math.ceil(D / 4);
  const DV4 = Math.ceil(DV / 4);
  const L = pick(ctx, D4, DV4);
  if (!L) ctx.fail(`flash2: no tile fits head sizes ${D}/${DV}`);
  const { BK, KS, swz, KPN, sg } = L;
  const { BQ, NT, R } = shape();
  const pre = FLASH2_TUNING.prefetch;
  const qreg = FLASH2_TUNING.qreg && R * D4 <= 32; // else too many registers: Q stays in workgroup memory
  const JN = BK / 8;
  const NC = Math.ceil(DV4 / 8);
  const BK4 = BK / 4;
  const nqb = Math.ceil(TQ / BQ);
  const NKC = runsOf(B * HQ * nqb, TK, BK);
  const KC = Math.ceil(Math.ceil(TK / NKC) / BK) * BK;
  const unitQ = q.strides[3] === 1 && D % 4 === 0;
  const unitK = k.strides[3] === 1 && D % 4 === 0;
  const unitV = v.strides[3] === 1 && DV % 4 === 0;
  const key = `flash2 d${D}v${DV} bk${BK} ${sg ? 'sg' : 'wg'} ${causal ? 'c' : ''}${md ? 'm' : ''} u${Number(unitQ)}${Number(unitK)}${Number(unitV)}${NKC > 1 ? ` split${NKC}` : ''}${BQ !== 64 || NT !== 128 ? ` q${BQ}t${NT}` : ''}${pre ? '' : ' nopf'}${qreg ? ' qreg' : ''}`;
  const kIdx = (r: string, c: string) => (swz ? `${r} * ${KS}u + ((${c}) ^ (${r} & 7u))` : `${r} * ${KS}u + ${c}`);
  const kr = regs({ dst: 'KP', stride: '', rows: BK, n4: D4, n: 'D', row: 'let g = kn + i32(r);', ok: 'g < i32(TK)', at: 'kb + g * sp(16)', col: 'sp(17)', ld: 'ldf_k', unit: unitK }, 'rk', kIdx, NT);
  const vr = regs({ dst: 'Vs', stride: '', rows: BK, n4: DV4, n: 'DV', row: 'let g = kn + i32(r);', ok: 'g < i32(TK)', at: 'vb + g * sp(21)', col: 'sp(22)', ld: 'ldf_v', unit: unitV }, 'rv', (r, c) => `${r} * ${DV4}u + ${c}`, NT);
  const RJ = (f: (i: number, j: number) => string, sep = '\n') => lines(R, (i) => lines(JN, (j) => f(i, j), sep), sep);
  const RC = (f: (i: number, c: number) => string, sep = '\n') => lines(R, (i) => lines(NC, (c) => f(i, c), sep), sep);
  const colOk = (c: number) => 8 * c + 8 <= DV4; // every lane's column c is inside the row
  // the 8 lanes of a row: the max of x over them
  const rowMax = (x: string) => (sg ? lines(3, (s) => `    ${x} = max(${x}, subgroupShuffleXor(${x}, ${1 << s}u));`) : '');
  const kern = ctx.kernel(key, () => `${sg ? 'enable subgroups;\ndiagnostic(off, subgroup_uniformity);\n' : ''}${PRELUDE}${MATH}
@group(0) @binding(0) var<storage, read> P: array<u32>;
${inBinding(1, 'q')}
${inBinding(2, 'k')}
${inBinding(3, 'v')}
${NKC > 1 ? '@group(0) @binding(4) var<storage, read_write> part: array<f32>;' : outBinding(4, 'y', yd.dtype)}
${md ? inBinding(5, 'mask') : ''}
${loaders('q', q.dtype)}
${loaders('k', k.dtype)}
${loaders('v', v.dtype)}
${NKC > 1 ? '' : storers('y', yd.dtype)}
${md ? loaders('mask', 'u8') : ''}
const D = ${D}u; const DV = ${DV}u; const D4 = ${D4}u; const DV4 = ${DV4}u;
const BQ = ${BQ}u; const BK = ${BK}u;
var<workgroup> Qs: array<vec4<f32>, ${BQ * D4}>;
// the key tile [BK][${KS}] (vec4 column c of row r at ${swz ? 'c ^ (r & 7)' : 'c'}), then P [BQ][BK]
var<workgroup> KP: array<vec4<f32>, ${KPN}>;
var<workgroup> Vs: array<vec4<f32>, ${BK * DV4}>;
${sg ? '' : `var<workgroup> red: array<vec4<f32>, ${BQ * 2}>;`}
fn sp(i: u32) -> i32 { return bitcast<i32>(P[i]); }
@compute @workgroup_size(${NT})
fn main(${BUILTINS}) {
  ${WG_INDEX}
  // P: B HQ TQ D | HKV TK DV group | scale | q strides 4, q off | k strides 4, k off | v strides 4, v off | y off, mask off, - | ML, KC | y strides b, h, t
  let HQ = P[1]; let TQ = P[2]; let TK = P[5]; let group = P[7];
  let scale = bitcast<f32>(P[8]);
  let nqb = (TQ + BQ - 1u) / BQ;
  let BH = P[0] * HQ;
  if (wg >= BH * nqb * ${NKC}u) { return; }
  let kc = wg % ${NKC}u;
  let rest = wg / ${NKC}u;
  let bh = rest % BH;
  let q0 = (nqb - 1u - rest / BH) * BQ; // the longest causal blocks first, over all heads
  let h = bh % HQ; let b = bh / HQ; let kvh = h / group;
  let tx = li % 8u; let ty = li / 8u;
  ${HEAD_BASES}
${stageRows({ dst: 'Qs', stride: 'D4', rows: BQ, n4: D4, n: 'D', row: 'let g = q0 + r;', ok: 'g < TQ', at: 'qb + i32(g) * sp(11)', col: 'sp(12)', ld: 'ldf_q', unit: unitQ }, NT)}
  let qlast = i32(min(q0 + BQ, TQ)) - 1;
  let off = i32(TK) - i32(TQ);
  let kend = ${causal ? 'min(qlast + off, i32(TK) - 1)' : 'i32(TK) - 1'};
  let kbeg = i32(kc * P[28]);
  let kstop = min(kend, kbeg + i32(P[28]) - 1);
  let r0 = ty * ${R}u; // this thread's first row in the block
${qreg ? `  workgroupBarrier(); // the query rows of this thread in registers
${lines(R, (i) => lines(D4, (c) => `  let qr${i}_${c} = Qs[(r0 + ${i}u) * D4 + ${c}u];`))}` : ''}
${lines(R, (i) => `  var m${i} = -inf_f32(); var l${i} = 0.0;`)}
${RC((i, c) => `  var o${i}_${c} = vec4<f32>(0.0);`)}
${kr.decl}
${vr.decl}
${pre ? `  if (kbeg <= kstop) {
    let kn = kbeg;
${kr.load}
${vr.load}
  }` : ''}
  for (var k0 = kbeg; k0 <= kstop; k0 += i32(BK)) {
    workgroupBarrier();
${pre ? '' : `    { let kn = k0;
${kr.load}
${vr.load}
    }`}
${kr.store}
${vr.store}
    workgroupBarrier();
${pre ? `    if (k0 + i32(BK) <= kstop) {
      let kn = k0 + i32(BK);
${kr.load}
${vr.load}
    }` : ''}
    // scores: rows r0 + i against keys k0 + tx + 8 jj
${RJ((i, j) => `    var s${i}_${j} = 0.0;`)}
${qreg ? lines(D4, (c) => `    {
${lines(JN, (j) => `      let k${j} = KP[${kIdx(`(tx + ${8 * j}u)`, `${c}u`).replace(/\(\(tx \+ (\d+)u\) & 7u\)/, 'tx')}];`)}
${RJ((i, j) => `      s${i}_${j} = fma(qr${i}_${c}.w, k${j}.w, fma(qr${i}_${c}.z, k${j}.z, fma(qr${i}_${c}.y, k${j}.y, fma(qr${i}_${c}.x, k${j}.x, s${i}_${j}))));`)}
    }`) : `    for (var c = 0u; c < D4; c++) {
${lines(R, (i) => `      let q${i} = Qs[(r0 + ${i}u) * D4 + c];`)}
${lines(JN, (j) => `      let k${j} = KP[${kIdx(`(tx + ${8 * j}u)`, 'c').replace(/\(\(tx \+ (\d+)u\) & 7u\)/, 'tx')}];`)}
${RJ((i, j) => `      s${i}_${j} = fma(q${i}.w, k${j}.w, fma(q${i}.z, k${j}.z, fma(q${i}.y, k${j}.y, fma(q${i}.x, k${j}.x, s${i}_${j}))));`)}
    }`}
${RJ((i, j) => `    s${i}_${j} = s${i}_${j} * scale;`)}
    // every score visible: no tests (the first row of the block sees the whole tile, no mask)
    let full = ${md ? 'false' : `k0 + i32(BK) <= i32(TK)${causal ? ' && k0 + i32(BK) - 1 <= i32(q0) + off' : ''}`};
    if (!full) {
${lines(R, (i) => `      let lim${i} = ${causal ? `i32(q0 + r0 + ${i}u) + off` : 'i32(TK) - 1'};`)}
${lines(JN, (j) => `      let j${j} = k0 + i32(tx + ${8 * j}u);
      let kept${j} = (j${j} < i32(TK))${md ? ` & (ldb_mask(P[25] + b * TK + u32(min(j${j}, i32(TK) - 1))) != 0u)` : ''};`)}
${RJ((i, j) => `      s${i}_${j} = select(-inf_f32(), s${i}_${j}, kept${j} && j${j} <= lim${i});`)}
    }
${lines(R, (i) => `    var c${i} = max(${lines(JN, (j) => `s${i}_${j}`, ', ').replace(/^(.*)$/, (a) => (JN > 2 ? nestMax(a) : a))});`)}
${sg ? lines(R, (i) => rowMax(`c${i}`)) : `${lines(R, (i) => `    red[(r0 + ${i}u) * 2u + tx / 4u][tx % 4u] = c${i};`)}`}
    workgroupBarrier(); // the key tile is read: P may take its place
${sg ? '' : lines(R, (i) => `    { let a = max(red[(r0 + ${i}u) * 2u], red[(r0 + ${i}u) * 2u + 1u]); c${i} = max(max(a.x, a.y), max(a.z, a.w)); }`)}
${lines(R, (i) => `    {
      let nm = max(m${i}, c${i});
      let live = nm != -inf_f32(); // no visible key yet: nothing changes
      let alpha = select(1.0, exp_safe(m${i} - nm), live);
${lines(JN, (j) => `      let p${j} = select(0.0, exp_safe(s${i}_${j} - nm), live && s${i}_${j} != -inf_f32());
      KP[(r0 + ${i}u) * ${BK4}u + (tx + ${8 * j}u) / 4u][tx % 4u] = p${j};`)}
      l${i} = l${i} * alpha + (${lines(JN, (j) => `p${j}`, ' + ')});
${lines(NC, (c) => `      o${i}_${c} = o${i}_${c} * alpha;`)}
      m${i} = nm;
    }`)}
    workgroupBarrier();
    for (var j4 = 0u; j4 < ${BK4}u; j4++) {
${lines(R, (i) => `      let p${i} = KP[(r0 + ${i}u) * ${BK4}u + j4];`)}
${lines(4, (u) => `      {
        let j = j4 * 4u + ${u}u;
${lines(NC, (c) => `        ${colOk(c) ? '' : `if (tx + ${8 * c}u < DV4) `}{
          let vv = Vs[j * DV4 + tx + ${8 * c}u];
${lines(R, (i) => `          o${i}_${c} = fma(vec4<f32>(p${i}[${u}]), vv, o${i}_${c});`)}
        }`)}
      }`)}
    }
  }
  // the row sums over the 8 lanes
${sg ? lines(R, (i) => lines(3, (s) => `  l${i} = l${i} + subgroupShuffleXor(l${i}, ${1 << s}u);`)) : `  workgroupBarrier();
${lines(R, (i) => `  red[(r0 + ${i}u) * 2u + tx / 4u][tx % 4u] = l${i};`)}
  workgroupBarrier();
${lines(R, (i) => `  { let a = red[(r0 + ${i}u) * 2u] + red[(r0 + ${i}u) * 2u + 1u]; l${i} = (a.x + a.y) + (a.z + a.w); }`)}`}
${lines(R, (i) => `  {
    let i = q0 + r0 + ${i}u;
    if (i < TQ) {${NKC > 1 ? `
      // unnormalized partial: rows [(bh * NKC + kc) * TQ + i] of DV values, then the (max, sum) pairs
      let pr = (bh * ${NKC}u + kc) * TQ + i;
      if (tx == 0u) { part[P[27] + pr * 2u] = m${i}; part[P[27] + pr * 2u + 1u] = l${i}; }
${lines(NC, (c) => `      { let cc = (tx + ${8 * c}u) * 4u; for (var u = 0u; u < 4u; u++) { if (cc + u < DV) { part[pr * DV + cc + u] = o${i}_${c}[u]; } } }`)}` : `
      let yb = P[24] + b * P[29] + h * P[30] + i * P[31];
      let o = select(0.0, 1.0 / l${i}, l${i} > 0.0);
${lines(NC, (c) => `      { let cc = (tx + ${8 * c}u) * 4u; let w = o${i}_${c} * o; for (var u = 0u; u < 4u; u++) { if (cc + u < DV) { stf_y(yb + cc + u, w[u]); } } }`)}`}
    }
  }`)}
}`);
  const ys = yStrides(B, HQ, TQ, DV, tokenMajor);
  const p = new Params()
    .u32(B, HQ, TQ, D, HKV, TK, DV, HQ / HKV).f32(scale)
    .i32(...q.strides, q.offset, ...k.strides, k.offset, ...v.strides, v.offset)
    .u32(yd.offset, md?.offset ?? 0, 0);
  const rows = B * HQ * TQ;
  const part = NKC > 1 ? ctx.temp(rows * NKC * (DV + 2) * 4) : null;
  p.u32(rows * NKC * DV, KC, ...ys);
  const bufs = [ctx.buffer(q), ctx.buffer(k), ctx.buffer(v), part ? part.gpu : yd.gpu];
  if (md) bufs.push(md.gpu);
  ctx.run(kern, bufs, p, [B * HQ * nqb * NKC]);
  if (part) mergeRuns(ctx, part.gpu, NKC, B, HQ, TQ, DV, yd, ys);
}

/** Element strides (batch, head, position) of the output: head-major [B, HQ, TQ, DV] or token-major [B, TQ, HQ, DV]. */
export function yStrides(B: number, HQ: number, TQ: number, DV: number, tokenMajor: boolean): number[] {
  return tokenMajor ? [TQ * HQ * DV, DV, HQ * DV] : [HQ * TQ * DV, TQ * DV, DV];
}

/** max(a, b, c, ...) as nested two-argument max calls. */
function nestMax(list: string): string {
  const xs = list.split(', ');
  while (xs.length > 1) {
    const next: string[] = [];
    for (let i = 0; i < xs.length; i += 2) next.push(i + 1 < xs.length ? `max(${xs[i]}, ${xs[i + 1]})` : xs[i]!);
    xs.splice(0, xs.length, ...next);
  }
  return xs[0]!.replace(/^max\((.*)\)$/, '$1');
}

/**
 * y = the partials of the key runs merged: per query row and column, each run's unnormalized
 * output weighted by exp(its max - the overall max), over the sum of its weighted sums (rows that
 * saw no key: 0); y written through its strides (b, h, t).
 */
export function mergeRuns(ctx: OpContext, part: GPUBuffer, NKC: number, B: number, HQ: number, TQ: number, DV: number, yd: Dense, ys: number[]): void {
  const rows = B * HQ * TQ;
  const k = ctx.kernel(`flash2 merge ${yd.dtype} ${NKC}`, () => `${PRELUDE}${MATH}
@group(0) @binding(0) var<storage, read> P: array<u32>;
@group(0) @binding(1) var<storage, read> part: array<f32>;
${outBinding(2, 'y', yd.dtype)}
${storers('y', yd.dtype)}
@compute @workgroup_size(256)
fn main(${BUILTINS}) {
  ${WG_INDEX}
  let TQ = P[0]; let DV = P[1]; let HQ = P[2]; let ML = P[4];
  let e = wg * 256u + li;
  if (e >= P[3] * DV) { return; }
  let row = e / DV; let d = e % DV;
  let bh = row / TQ; let i = row % TQ;
  var mc: array<f32, ${NKC}>;
  var mx = -inf_f32();
  for (var c = 0u; c < ${NKC}u; c++) { mc[c] = part[ML + ((bh * ${NKC}u + c) * TQ + i) * 2u]; mx = max(mx, mc[c]); }
  var l = 0.0; var o = 0.0;
  for (var c = 0u; c < ${NKC}u; c++) {
    let pr = (bh * ${NKC}u + c) * TQ + i;
    if (mc[c] != -inf_f32()) { let w = exp_safe(mc[c] - mx); l = l + part[ML + pr * 2u + 1u] * w; o = o + part[pr * DV + d] * w; }
  }
  stf_y(P[5] + (bh / HQ) * P[6] + (bh % HQ) * P[7] + i * P[8] + d, select(0.0, o / l, l > 0.0));
}`);
  ctx.run(k, [part, yd.gpu], new Params().u32(TQ, DV, HQ, rows, rows * NKC * DV, yd.offset, ...ys), [cdiv(rows * DV, 256)]);
}
