// f32 x f32 -> f32 matmul with 16-byte accesses: every operand is bound as vec4<f32>, tiles of
// BM x BN outputs (TM x TN per thread on a TX x TY grid of threads) over k-steps of BK, staged in
// workgroup memory with the next step's loads in flight in registers meanwhile. A tile whose k
// axis is the fast one is transposed into workgroup memory as it is stored; the inner loop reads
// vec4 rows of A and B and runs TM*TN/4 vec4 FMAs per k. Loads along an axis the tile divides
// carry no bounds test (H200: 4096³ 37.8 -> 40.6 TFLOP/s, 2048x768x3072 33.8 -> 39.0).
// Used when each operand's fast axis has unit stride and every other stride, offset and the
// fast dims are multiples of 4 (else the scalar tiled kernel in matmul.ts); outputs whose N or
// offset is not are stored element by element (the LM head: N = vocabulary size, whose loads of
// B's rows are clamped instead of tested: setF32PadN).
import type { OpContext } from './context.js';
import { PLAN_HEAD, alignedAxes, alignedKey, epiCode, epiKey, planParams, type Aligned, type Epilogue, type MatmulPlan } from './matmul-plan.js';
import { MATH, PRELUDE, lines } from '../wgsl.js';
import { envVar } from '../../../io/env.js';

/**
 * TM x TN outputs per thread, k-steps of BK; DB: two staging buffers; UN: unrolled k-step;
 * NP (single buffer only): no register prefetch of the next step (fewer live registers);
 * TX x TY threads along n and m (default 16 x 16).
 */
export interface F32Tile { TM: 4 | 8 | 16; TN: 4 | 8 | 16; BK: 8 | 16 | 32; DB?: boolean; UN?: boolean; NP?: boolean; TX?: 8 | 16 | 32; TY?: 8 | 16 | 32 }

let vec4On = true;
/** Turns the vec4 kernel off (the scalar tiled kernel runs instead), for comparisons. */
export function enableF32Vec4(on: boolean): void {
  vec4On = on;
}

let forced: F32Tile | null = null;
/** Fixes the tile (benchmarks and tuning); null restores the size heuristic. */
export function setF32Tile(t: F32Tile | null): void {
  forced = t;
}

/**
 * Tiles from sweeps on the H200 (bench/RESULTS.md, sixth pass), all single-buffered with 16-deep
 * unrolled k-steps. WIDE (8x16 outputs per thread, 128 threads, 128x128) beat 8x8 on 256 threads
 * by 10-15% from 600 tiles on, with or without bounds tests (the LM head: 27.9 -> 34.6
 * TFLOP/s), but lost at 384 tiles (2048x768x3072: 33 against 39), presumably its last wave
 * running half empty. Below 300 tiles of 128x128 the smaller tiles keep SMs busy; there the
 * 128-thread grids won on aligned shapes (GPT-2 prefill projections: up to +10%), and the
 * 256-thread ones stay for shapes that need bounds tests, where they were not compared.
 */
const WIDE: F32Tile = { TM: 8, TN: 16, BK: 16, DB: false, UN: true, TX: 8, TY: 16 };
const WIDE_MIN_TILES = 600;
/**
 * Aligned products of at least 256 tiles of 128x64 and fewer than 300 of 128x128: 8x8 per thread
 * on 8x8 threads (64x64 tiles, two warps). On the H200, GPT-2-medium at T=512: MLP up with GELU
 * 131.3 -> 129.4 us, MLP down in 4 k-ranges 122.7 -> 119.7, against 8x8 on 8x16 threads
 * (128x64; ACTLAB_WEBGPU_MID_TILE=128 keeps it); prefill GPU time 13.46 -> 13.34 ms.
 */
const MID: F32Tile = envVar('ACTLAB_WEBGPU_MID_TILE') === '128'
  ? { TM: 8, TN: 8, BK: 16, DB: false, UN: true, TX: 8, TY: 16 }
  : { TM: 8, TN: 8, BK: 16, DB: false, UN: true, TX: 8, TY: 8 };

function pickTile(p: MatmulPlan, batches: number): F32Tile {
  if (forced) return forced;
  const tiles = (bm: number, bn: number) => Math.ceil(p.M / bm) * Math.ceil(p.N / bn) * batches;
  const aligned = (bm: number, bn: number) => p.M % bm === 0 && p.N % bn === 0 && p.K % 16 === 0;
  if (tiles(128, 128) >= WIDE_MIN_TILES) return WIDE;
  if (tiles(128, 128) >= 300) return { TM: 8, TN: 8, BK: 16, DB: false, UN: true };
  if (tiles(128, 64) >= 256) return aligned(128, 64) ? MID : { TM: 8, TN: 4, BK: 16, DB: false, UN: true };
  return aligned(64, 64) ? { TM: 4, TN: 8, BK: 16, DB: false, UN: true, TX: 8, TY: 16 } : { TM: 4, TN: 4, BK: 16, DB: false };
}

/** Whether the vec4 kernel applies (see the header). */
export function f32Vec4Fits(p: MatmulPlan, adt: string, bdt: string, ydt: string): boolean {
  if (!vec4On || adt !== 'f32' || bdt !== 'f32' || ydt !== 'f32') return false;
  const m4 = (...xs: number[]) => xs.every((x) => x % 4 === 0);
  const aOk = (p.sak === 1 && m4(p.sam, p.K)) || (p.sam === 1 && m4(p.sak, p.M));
  const bOk = (p.sbn === 1 && m4(p.sbk, p.N)) || (p.sbk === 1 && m4(p.sbn, p.K));
  // the output is stored as vec4 when N and its offset allow, else element by element
  return aOk && bOk && m4(p.aoff, p.boff, ...p.abs, ...p.bbs);
}

/** Threads along n (TX) and m (TY), NT in all, and the BM x BN outputs of a workgroup. */
function grid(t: F32Tile) {
  const TX = t.TX ?? 16;
  const TY = t.TY ?? 16;
  return { TX, TY, NT: TX * TY, BM: TY * t.TM, BN: TX * t.TN };
}

/**
 * `clampB`: B's rows (k-fast B) past its last, P[19], are read as that last row, so loads along n
 * need no bounds test; the columns they make are past N and are not kept (see tiledF32).
 */
function code(t: F32Tile, aKFast: boolean, bKFast: boolean, vecOut: boolean, al: Aligned, epi: Epilogue | null, clampB = false): string {
  const { TM, TN, BK } = t;
  const DB = t.DB ?? true;
  const UN = t.UN ?? false;
  const NP = !DB && (t.NP ?? false);
  const { TX, TY, NT, BM, BN } = grid(t);
  const SA = BM + (aKFast ? 4 : 0); // row of the staged A tile (padded when stored transposed)
  const SB = BN + (bKFast ? 4 : 0);
  const A4 = (BK * SA) / 4; // vec4 per buffer
  const B4 = (BK * SB) / 4;
  // Loads per thread: a tile of R x BK (R = BM or BN) has R*BK/4 vec4, NT threads.
  const LA = (BM * BK) / 4 / NT;
  const LB = (BN * BK) / 4 / NT;
  if (!Number.isInteger(LA) || !Number.isInteger(LB)) throw new Error(`f32 tile ${TM}x${TN}x${BK} on ${TX}x${TY} threads: loads do not divide among them`);
  // Thread mapping of a load (row r along m/n, k): kFast: 4 lanes along k of a row then rows;
  // else R/4 lanes along the row, then k.
  const map = (kFast: boolean, R: number, L: number, name: string) => {
    if (kFast) {
      const per = BK / 4; // vec4 per row
      return { init: `let ${name}r = li / ${per}u; let ${name}k = (li % ${per}u) * 4u;`, r: (l: number) => `${name}r + ${l * (NT / per)}u`, k: () => `${name}k` , L };
    }
    const per = R / 4;
    return { init: `let ${name}r = (li % ${per}u) * 4u; let ${name}k = li / ${per}u;`, r: () => `${name}r`, k: (l: number) => `${name}k + ${l * (NT / per)}u`, L };
  };
  const ma = map(aKFast, BM, LA, 'a');
  const mb = map(bKFast, BN, LB, 'b');
  // global vec4 index of (row, k) of an operand
  const ga = (r: string, k: string) => aKFast ? `(abase + (m0 + ${r}) * sam + k0 + ${k}) >> 2u` : `(abase + (k0 + ${k}) * sak + m0 + ${r}) >> 2u`;
  const gb = (r: string, k: string) => bKFast ? `(bbase + ${clampB ? `min(n0 + ${r}, P[19] - 1u)` : `(n0 + ${r})`} * sbn + k0 + ${k}) >> 2u` : `(bbase + (k0 + ${k}) * sbk + n0 + ${r}) >> 2u`;
  // bounds tests only along the axes the tile does not divide (none: plain loads)
  const loadCond = (r: string, k: string, R: string, rOk: boolean) => [rOk ? '' : `${r} < ${R}`, al.k ? '' : `k0 + ${k} < K`].filter(Boolean).join(' && ');
  // a clamped index keeps the load inside the buffer when the element is masked
  const load = (arr: string, idx: string, cond: string) => cond === '' ? `${arr}[${idx}]` : `select(vec4<f32>(0.0), ${arr}[select(0u, ${idx}, ${cond})], ${cond})`;
  const ldA = (l: number) => load('a', ga(ma.r(l), ma.k(l)), loadCond(ma.r(l), ma.k(l), 'rm', al.m));
  const ldB = (l: number) => load('b', gb(mb.r(l), mb.k(l)), loadCond(mb.r(l), mb.k(l), 'rn', al.n || clampB));
  const store = (kFast: boolean, S: number, arr: string, off: string, r: string, k: string, v: string) => kFast
    ? lines(4, (c) => `      ${arr}[${off} + ((${k} + ${c}u) * ${S}u + ${r}) / 4u][(${r}) % 4u] = ${v}[${c}];`)
      .replace(/\[\(([^\]]*)\) % 4u\]/g, '[($1) & 3u]')
    : `      ${arr}[${off} + ((${k}) * ${S}u + ${r}) / 4u] = ${v};`;
  // output row of a thread's i-th row: groups of 4 rows, 4*TY rows apart (columns: 4*TX apart)
  const mRow = (i: number) => `${Math.floor(i / 4) * 4 * TY}u + ty * 4u + ${i % 4}u`;
  const inner = (kk: string) => `    {
${lines(TM / 4, (g) => `      let a${g} = As[ao + ${kk} * ${SA / 4}u + ${g * TY}u];`)}
${lines(TN / 4, (g) => `      let b${g} = Bs[bo + ${kk} * ${SB / 4}u + ${g * TX}u];`)}
${lines((TM * TN) / 4, (q) => {
    const i = Math.floor(q / (TN / 4));
    const g = q % (TN / 4);
    return `      c${q} = fma(vec4<f32>(a${Math.floor(i / 4)}[${i % 4}]), b${g}, c${q});`;
  })}
    }`;
  // the stored value of output column (expression) n: the epilogue's when there is one
  const out = (v: string, n: string) => (epi ? `epi(${v}, ${n})` : v);
  return `${epi ? `${PRELUDE}${MATH}` : ''}
@group(0) @binding(0) var<storage, read> P: array<u32>;
@group(0) @binding(1) var<storage, read> a: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> b: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> y: array<${vecOut ? 'vec4<f32>' : 'f32'}>;
${epi ? epiCode(epi, 4, 19) : ''}
var<workgroup> As: array<vec4<f32>, ${(DB ? 2 : 1) * A4}>;
var<workgroup> Bs: array<vec4<f32>, ${(DB ? 2 : 1) * B4}>;
@compute @workgroup_size(${NT})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  ${PLAN_HEAD}
  let m0 = wid.y * ${BM}u; let n0 = wid.x * ${BN}u;
  let tx = li % ${TX}u; let ty = li / ${TX}u;
  ${ma.init}
  ${mb.init}
  let rm = M - min(M, m0); let rn = N - min(N, n0);
${lines(LA, (l) => `  var ra${l}: vec4<f32>;`)}
${lines(LB, (l) => `  var rb${l}: vec4<f32>;`)}
${lines((TM * TN) / 4, (q) => `  var c${q} = vec4<f32>(0.0);`)}
  let ntiles = (K + ${BK - 1}u) / ${BK}u;
  var k0 = 0u;
${lines(LA, (l) => `  ra${l} = ${ldA(l)};`)}
${lines(LB, (l) => `  rb${l} = ${ldB(l)};`)}
${DB ? `  {
${lines(LA, (l) => store(aKFast, SA, 'As', '0u', ma.r(l), ma.k(l), `ra${l}`))}
${lines(LB, (l) => store(bKFast, SB, 'Bs', '0u', mb.r(l), mb.k(l), `rb${l}`))}
  }` : ''}
${DB ? '  workgroupBarrier();' : ''}
  for (var t = 0u; t < ntiles; t++) {
    let cur = ${DB ? '(t & 1u)' : '0u'};
    let nxt = t + 1u < ntiles;
${DB ? '' : `    if (t > 0u) { workgroupBarrier(); }
${NP ? `    k0 = t * ${BK}u;
    if (t > 0u) {
${lines(LA, (l) => `      ra${l} = ${ldA(l)};`)}
${lines(LB, (l) => `      rb${l} = ${ldB(l)};`)}
    }` : ''}
${lines(LA, (l) => store(aKFast, SA, 'As', '0u', ma.r(l), ma.k(l), `ra${l}`))}
${lines(LB, (l) => store(bKFast, SB, 'Bs', '0u', mb.r(l), mb.k(l), `rb${l}`))}
    workgroupBarrier();`}
    k0 = (t + 1u) * ${BK}u;
${NP ? '' : `    if (nxt) {
${lines(LA, (l) => `      ra${l} = ${ldA(l)};`)}
${lines(LB, (l) => `      rb${l} = ${ldB(l)};`)}
    }`}
    let ao = cur * ${A4}u + ty; let bo = cur * ${B4}u + tx;
${UN ? lines(BK, (kk) => inner(`${kk}u`)) : `    for (var kk = 0u; kk < ${BK}u; kk++) {
${inner('kk')}
    }`}
${DB ? `    if (nxt) {
      let off = (1u - cur);
${lines(LA, (l) => store(aKFast, SA, 'As', `off * ${A4}u`, ma.r(l), ma.k(l), `ra${l}`))}
${lines(LB, (l) => store(bKFast, SB, 'Bs', `off * ${B4}u`, mb.r(l), mb.k(l), `rb${l}`))}
    }
    workgroupBarrier();` : ''}
  }
${lines(TM, (i) => `  { let m = ${mRow(i)}; if (m < rm) {
${lines(TN / 4, (g) => vecOut
    ? `    { let n = ${g * 4 * TX}u + tx * 4u; if (n < rn) { let v = c${i * (TN / 4) + g}; let nn = n0 + n; y[(ybase + (m0 + m) * N + nn) >> 2u] = ${epi ? 'vec4<f32>(epi(v.x, nn), epi(v.y, nn + 1u), epi(v.z, nn + 2u), epi(v.w, nn + 3u))' : 'v'}; } }`
    : `    { let n = ${g * 4 * TX}u + tx * 4u; let o = ybase + (m0 + m) * N + n0 + n;
${lines(4, (c) => `      if (n + ${c}u < rn) { y[o + ${c}u] = ${out(`c${i * (TN / 4) + g}[${c}]`, `n0 + n + ${c}u`)}; }`)} }`)}
  } }`)}
}`;
}

/** Bytes of workgroup memory a tile takes (one or two buffers of each operand's tile). */
function smemBytes(t: F32Tile, aKFast: boolean, bKFast: boolean): number {
  const { BM, BN } = grid(t);
  return (t.DB === false ? 1 : 2) * 4 * t.BK * (BM + (aKFast ? 4 : 0) + BN + (bKFast ? 4 : 0));
}

export function tiledF32(ctx: OpContext, p: MatmulPlan, ab: GPUBuffer, bb: GPUBuffer, yb: GPUBuffer, yoff: number, batches: number, epi: Epilogue | null = null): void {
  const aKFast = p.sak === 1;
  const bKFast = p.sbn !== 1;
  let t = pickTile(p, batches);
  // halve the k-step where the device offers less workgroup memory (32 KiB is the WebGPU default)
  if (smemBytes(t, aKFast, bKFast) > ctx.rt.device.limits.maxComputeWorkgroupStorageSize && t.TM === 8) t = { ...t, BK: 8 };
  const vecOut = p.N % 4 === 0 && yoff % 4 === 0;
  const { TX, TY, BM, BN } = grid(t);
  const al = alignedAxes(p, BM, BN, t.BK);
  // loads along n without bounds tests: a k-fast B's rows past N clamped to its last (setF32PadN)
  const clampB = padMode === 'clamp' && bKFast && !epi && !al.n && p.N >= 4 * BN;
  const key = `mm f32v4 ${t.TM}x${t.TN}x${t.BK}${t.DB === false ? ' sb' : ''}${t.UN ? ' un' : ''}${t.NP && t.DB === false ? ' np' : ''} ${TX}x${TY} ${aKFast ? 'aK' : 'aM'} ${bKFast ? 'bK' : 'bN'}${vecOut ? '' : ' y1'}${alignedKey(al)}${epiKey(epi)}${clampB ? ' clampB' : ''}`;
  const k = ctx.kernel(key, () => code(t, aKFast, bKFast, vecOut, al, epi, clampB));
  const params = planParams(p, yoff);
  if (epi) params.u32(epi.boff);
  if (clampB) params.u32(p.N);
  ctx.run(k, epi ? [ab, bb, yb, epi.bias] : [ab, bb, yb], params, [Math.ceil(p.N / BN), Math.ceil(p.M / BM), batches]);
}

type PadMode = 'clamp' | 'off';
let padMode: PadMode = envVar('ACTLAB_WEBGPU_PADN') === 'off' ? 'off' : 'clamp';
/**
 * Products with k-fast B (a tied LM head: B = the embedding [vocab, d]) whose N the tile does not
 * divide: 'clamp' (the default) reads B's rows past N as its last row, so no load tests bounds
 * (the columns they make are past N and not stored; H200, GPT-2-medium's LM head at T=512: 1470
 * -> 1262 us); 'off' tests bounds on every load. ACTLAB_WEBGPU_PADN=off sets it too.
 */
export function setF32PadN(m: PadMode): void {
  padMode = m;
}
