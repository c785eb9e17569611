// f16 x f16 matmul on tensor cores through Chromium's experimental subgroup matrices
// (16x16x16 fragments, f32 accumulation). A workgroup of SGM x SGN subgroups computes a
// BM x BN output tile, each subgroup FM x FN fragments of it. Tiles of A (BM x 32) and B (32 x BN)
// are staged in two workgroup buffers (one barrier per k-step, the next step's 16-byte loads in
// flight in registers meanwhile); fragments are loaded from workgroup memory. Edges in M, N and K
// are zero-filled on staging and masked on the store; each result fragment goes through
// workgroup memory to be rounded to the output dtype.
// Used when the adapter offers the feature (subgroup size 32), both operands are f16, A is
// row-major (k fast) and B has n fast, and strides/offsets/K/N are multiples of 8 halves; on by
// default, ACTLAB_WEBGPU_SGMAT=0 (or `enableSubgroupMatmul(false)`) turns it off.
import type { OpDesc } from '../../backend.js';
import type { DType } from '../../../tensor/dtype.js';
import { Params, type Dense, type OpContext } from './context.js';
import { PRELUDE, outBinding, storers } from '../wgsl.js';
import type { MatmulPlan } from './matmul.js';
import { envVar } from '../../../io/env.js';

type Op<K extends OpDesc['op']> = Extract<OpDesc, { op: K }>;

let enabled = envVar('ACTLAB_WEBGPU_SGMAT') !== '0';

/** Turns the subgroup-matrix path on or off. */
export function enableSubgroupMatmul(on: boolean): void {
  enabled = on;
}

export interface SgTile { SGM: number; SGN: number; FM: number; FN: number; DB?: boolean; G?: boolean }
let forced: SgTile | null = null;
/** Fixes the tile (benchmarks and tuning); null restores the heuristic. */
export function setSubgroupTile(t: SgTile | null): void {
  forced = t;
}

/** ACTLAB_WEBGPU_SGTILE=SGM,SGN,FM,FN fixes the tile from the environment (experiments). */
function envTile(): SgTile | null {
  const v = envVar('ACTLAB_WEBGPU_SGTILE')?.split(',').map(Number);
  return v && v.length === 4 && v.every((x) => Number.isInteger(x) && x > 0) ? { SGM: v[0]!, SGN: v[1]!, FM: v[2]!, FN: v[3]!, DB: false } : null;
}
const fromEnv = envTile();

function pickTile(p: MatmulPlan, batches: number): SgTile {
  if (forced) return forced;
  if (fromEnv) return fromEnv;
  const tiles = (bm: number, bn: number) => Math.ceil(p.M / bm) * Math.ceil(p.N / bn) * batches;
  // H200 sweeps (bench/RESULTS.md): 2x2 subgroups of 4x4 fragments for many tiles; below that,
  // 4x4 subgroups of 2x2 fragments (same 128x128 tile, 512 threads: 80.9 vs 66.9 TFLOP/s at
  // 2048x768x3072)
  if (tiles(128, 128) >= 600) return { SGM: 2, SGN: 2, FM: 4, FN: 4, DB: false };
  return { SGM: 4, SGN: 4, FM: 2, FN: 2, DB: false };
}

const BK = 32;
const lines = (n: number, f: (i: number) => string) => Array.from({ length: n }, (_, i) => f(i)).join('\n');

function code(t: SgTile, ydt: DType): string {
  const { SGM, SGN, FM, FN } = t;
  const DB = t.DB ?? true;
  const NT = 32 * SGM * SGN;
  const BM = 16 * SGM * FM;
  const BN = 16 * SGN * FN;
  const SA = BK + 8;
  const SB = BN + 8;
  const A1 = BM * SA; // halves per buffer
  const B1 = BK * SB;
  const APR = BK / 8; // vec4<u32> per row of the A tile
  const BPR = BN / 8;
  const LA = (BM * APR) / NT;
  const LB = (BK * BPR) / NT;
  if (!Number.isInteger(LA) || !Number.isInteger(LB)) throw new Error(`subgroup tile ${JSON.stringify(t)}: loads do not divide among ${NT} threads`);
  const ar = (l: number) => `ar + ${(l * NT) / APR}u`;
  const bk = (l: number) => `bk + ${(l * NT) / BPR}u`;
  const ldA = (l: number) => `select(vec4<u32>(0u), a[(abase + (m0 + ${ar(l)}) * sam + k0 + ak) >> 3u], m0 + ${ar(l)} < M && k0 + ak < K)`;
  const ldB = (l: number) => `select(vec4<u32>(0u), b[(bbase + (k0 + ${bk(l)}) * sbk + n0 + bn) >> 3u], k0 + ${bk(l)} < K && n0 + bn < N)`;
  const st = (arr: string, idx: string, v: string) => lines(4, (c) => `      { let h = bitcast<vec2<f16>>(${v}[${c}]); ${arr}[${idx} + ${2 * c}u] = h.x; ${arr}[${idx} + ${2 * c + 1}u] = h.y; }`);
  const stA = (off: string) => lines(LA, (l) => st('As', `${off} + (${ar(l)}) * ${SA}u + ak`, `ra${l}`));
  const stB = (off: string) => lines(LB, (l) => st('Bs', `${off} + (${bk(l)}) * ${SB}u + bn`, `rb${l}`));
  const frags: [number, number][] = [];
  for (let i = 0; i < FM; i++) for (let j = 0; j < FN; j++) frags.push([i, j]);
  return `enable f16;
enable subgroups;
enable chromium_experimental_subgroup_matrix;
diagnostic(off, chromium.subgroup_matrix_uniformity);
${PRELUDE}
@group(0) @binding(0) var<storage, read> P: array<u32>;
@group(0) @binding(1) var<storage, read> a: array<vec4<u32>>;
@group(0) @binding(2) var<storage, read> b: array<vec4<u32>>;
${outBinding(3, 'y', ydt)}
${storers('y', ydt)}
var<workgroup> As: array<f16, ${(DB ? 2 : 1) * A1}>;
var<workgroup> Bs: array<f16, ${(DB ? 2 : 1) * B1}>;
var<workgroup> stage: array<f32, ${SGM * SGN * 256}>;
@compute @workgroup_size(${NT})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) li: u32,
        @builtin(subgroup_invocation_id) sl: u32) {
  let M = P[0]; let K = P[1]; let N = P[2];
  let z = wid.z;
  let z0 = z % P[3]; let z1 = (z / P[3]) % P[4]; let z2 = z / (P[3] * P[4]);
  let abase = u32(bitcast<i32>(P[16]) + i32(z0) * bitcast<i32>(P[6]) + i32(z1) * bitcast<i32>(P[7]) + i32(z2) * bitcast<i32>(P[8]));
  let bbase = u32(bitcast<i32>(P[17]) + i32(z0) * bitcast<i32>(P[9]) + i32(z1) * bitcast<i32>(P[10]) + i32(z2) * bitcast<i32>(P[11]));
  let sam = P[12]; let sbk = P[14];
  let ybase = P[18] + z * M * N;
  let m0 = wid.y * ${BM}u; let n0 = wid.x * ${BN}u;
  let sg = li / 32u;
  let sm = (sg / ${SGN}u) * ${16 * FM}u; let sn = (sg % ${SGN}u) * ${16 * FN}u;
  let ar = li / ${APR}u; let ak = (li % ${APR}u) * 8u;
  let bk = li / ${BPR}u; let bn = (li % ${BPR}u) * 8u;
${lines(LA, (l) => `  var ra${l}: vec4<u32>;`)}
${lines(LB, (l) => `  var rb${l}: vec4<u32>;`)}
${frags.map(([i, j]) => `  var c${i}_${j} = subgroup_matrix_result<f32, 16, 16>();`).join('\n')}
  let ntiles = (K + ${BK - 1}u) / ${BK}u;
  var k0 = 0u;
${lines(LA, (l) => `  ra${l} = ${ldA(l)};`)}
${lines(LB, (l) => `  rb${l} = ${ldB(l)};`)}
${DB ? `${stA('0u')}
${stB('0u')}
  workgroupBarrier();` : ''}
  for (var t = 0u; t < ntiles; t++) {
    let cur = ${DB ? 't & 1u' : '0u'};
    let nxt = t + 1u < ntiles;
${DB ? '' : `    if (t > 0u) { workgroupBarrier(); }
${stA('0u')}
${stB('0u')}
    workgroupBarrier();`}
    k0 = (t + 1u) * ${BK}u;
    if (nxt) {
${lines(LA, (l) => `      ra${l} = ${ldA(l)};`)}
${lines(LB, (l) => `      rb${l} = ${ldB(l)};`)}
    }
    let ao = cur * ${A1}u + sm * ${SA}u; let bo = cur * ${B1}u + sn;
    for (var ks = 0u; ks < ${BK}u; ks += 16u) {
${lines(FM, (i) => `      let a${i} = subgroupMatrixLoad<subgroup_matrix_left<f16, 16, 16>, row_major>(&As, ao + ${16 * i * SA}u + ks, ${SA}u);`)}
${lines(FN, (j) => `      let b${j} = subgroupMatrixLoad<subgroup_matrix_right<f16, 16, 16>, row_major>(&Bs, bo + ks * ${SB}u + ${16 * j}u, ${SB}u);`)}
${frags.map(([i, j]) => `      c${i}_${j} = subgroupMatrixMultiplyAccumulate(a${i}, b${j}, c${i}_${j});`).join('\n')}
    }
${DB ? `    if (nxt) {
      let off = 1u - cur;
${stA(`off * ${A1}u`)}
${stB(`off * ${B1}u`)}
    }
    workgroupBarrier();` : ''}
  }
${frags.map(([i, j]) => `  subgroupMatrixStore<row_major>(&stage, sg * 256u, c${i}_${j}, 16u);
  workgroupBarrier();
  for (var e = sl * 2u; e < 256u; e += 64u) {
    let m = m0 + sm + ${16 * i}u + e / 16u; let n = n0 + sn + ${16 * j}u + e % 16u;
    if (m < M && n < N) { stf2_y(ybase + m * N + n, stage[sg * 256u + e], stage[sg * 256u + e + 1u]); }
  }
  workgroupBarrier();`).join('\n')}
}`;
}


/** Fragments loaded straight from the operands (M and N multiples of 128): 4 subgroups of 4x4 fragments. */
function globalCode(ydt: DType): string {
  const F = 4;
  const frag = (i: number, j: number) => `c${i}_${j}`;
  const all: [number, number][] = [];
  for (let i = 0; i < F; i++) for (let j = 0; j < F; j++) all.push([i, j]);
  const y = { dtype: ydt };
  return `enable f16;
enable subgroups;
enable chromium_experimental_subgroup_matrix;
diagnostic(off, chromium.subgroup_matrix_uniformity);
${PRELUDE}
@group(0) @binding(0) var<storage, read> P: array<u32>;
@group(0) @binding(1) var<storage, read> a: array<f16>;
@group(0) @binding(2) var<storage, read> b: array<f16>;
${outBinding(3, 'y', y.dtype)}
${storers('y', y.dtype)}
var<workgroup> stage: array<f32, ${4 * 256}>;
@compute @workgroup_size(128)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) li: u32,
        @builtin(subgroup_size) sgs: u32, @builtin(subgroup_invocation_id) sl: u32) {
  let M = P[0]; let K = P[1]; let N = P[2];
  let z = wid.z;
  let z0 = z % P[3]; let z1 = (z / P[3]) % P[4]; let z2 = z / (P[3] * P[4]);
  let abase = u32(bitcast<i32>(P[16]) + i32(z0) * bitcast<i32>(P[6]) + i32(z1) * bitcast<i32>(P[7]) + i32(z2) * bitcast<i32>(P[8]));
  let bbase = u32(bitcast<i32>(P[17]) + i32(z0) * bitcast<i32>(P[9]) + i32(z1) * bitcast<i32>(P[10]) + i32(z2) * bitcast<i32>(P[11]));
  let ybase = P[18] + z * M * N;
  let sg = li / sgs;
  let m0 = wid.y * 128u + (sg / 2u) * 64u;
  let n0 = wid.x * 128u + (sg % 2u) * 64u;
${all.map(([i, j]) => `  var ${frag(i, j)} = subgroup_matrix_result<f32, 16, 16>();`).join('\n')}
  for (var k0 = 0u; k0 < K; k0 += 16u) {
${Array.from({ length: F }, (_, i) => `    let a${i} = subgroupMatrixLoad<subgroup_matrix_left<f16, 16, 16>, row_major>(&a, abase + (m0 + ${16 * i}u) * K + k0, K);`).join('\n')}
${Array.from({ length: F }, (_, j) => `    let b${j} = subgroupMatrixLoad<subgroup_matrix_right<f16, 16, 16>, row_major>(&b, bbase + k0 * N + n0 + ${16 * j}u, N);`).join('\n')}
${all.map(([i, j]) => `    ${frag(i, j)} = subgroupMatrixMultiplyAccumulate(a${i}, b${j}, ${frag(i, j)});`).join('\n')}
  }
${all.map(([i, j]) => `  subgroupMatrixStore<row_major>(&stage, sg * 256u, ${frag(i, j)}, 16u);
  workgroupBarrier();
  for (var e = sl * 2u; e < 256u; e += sgs * 2u) {
    stf2_y(ybase + (m0 + ${16 * i}u + e / 16u) * N + n0 + ${16 * j}u + e % 16u, stage[sg * 256u + e], stage[sg * 256u + e + 1u]);
  }
  workgroupBarrier();`).join('\n')}
}`;
}

export function trySubgroupMatmul(
  ctx: OpContext<Op<'matmul'>>, p: MatmulPlan, adt: DType, bdt: DType, ab: GPUBuffer, bb: GPUBuffer, y: Dense,
): boolean {
  if (!enabled || !ctx.features.subgroupMatrix || adt !== 'f16' || bdt !== 'f16') return false;
  if (p.M <= 8 || p.sak !== 1 || p.sbn !== 1) return false;
  const m8 = (...xs: number[]) => xs.every((x) => x % 8 === 0);
  if (!m8(p.K, p.N, p.sam, p.sbk, p.aoff, p.boff, ...p.abs, ...p.bbs) || y.offset % 2 !== 0) return false;
  const batches = p.bshape[0] * p.bshape[1] * p.bshape[2];
  const t = pickTile(p, batches);
  if (t.G) {
    if (p.M % 128 !== 0 || p.N % 128 !== 0 || p.K % 16 !== 0 || p.sam !== p.K || p.sbk !== p.N) return false;
    const k = ctx.kernel(`mm sgmat global f16>${y.dtype}`, () => globalCode(y.dtype));
    ctx.run(k, [ab, bb, y.gpu], new Params().u32(p.M, p.K, p.N, ...p.bshape).i32(...p.abs, ...p.bbs, p.sam, p.sak, p.sbk, p.sbn, p.aoff, p.boff, y.offset), [p.N / 128, p.M / 128, batches]);
    return true;
  }
  const smem = (t.DB === false ? 1 : 2) * 2 * (16 * t.SGM * t.FM * (BK + 8) + BK * (16 * t.SGN * t.FN + 8)) + 4 * 256 * t.SGM * t.SGN;
  if (smem > ctx.rt.device.limits.maxComputeWorkgroupStorageSize) return false;
  const k = ctx.kernel(`mm sgmat ${t.SGM}x${t.SGN}x${t.FM}x${t.FN}${t.DB === false ? ' sb' : ''} f16>${y.dtype}`, () => code(t, y.dtype));
  ctx.run(k, [ab, bb, y.gpu], new Params().u32(p.M, p.K, p.N, ...p.bshape).i32(...p.abs, ...p.bbs, p.sam, p.sak, p.sbk, p.sbn, p.aoff, p.boff, y.offset), [Math.ceil(p.N / (16 * t.SGN * t.FN)), Math.ceil(p.M / (16 * t.SGM * t.FM)), batches]);
  return true;
}
