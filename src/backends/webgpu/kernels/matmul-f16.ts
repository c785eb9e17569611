// f16 x f16 matmul on tensor cores through Chromium's experimental subgroup matrices
// (16x16x16 fragments, f32 accumulation). A workgroup of SGM x SGN subgroups computes a
// BM x BN output tile, each subgroup FM x FN fragments of it. Tiles of A (BM x BK) and B (BK x BN)
// are staged in workgroup memory, one block per subgroup row / column (see `layout`); the next
// step's 16-byte loads are in flight in registers while this step multiplies. Edges in M, N and K
// are zero-filled on staging and masked on the store; each result fragment goes through
// workgroup memory to be rounded to the output dtype.
// Used when the adapter offers the feature (subgroup size 32), both operands are f16, A is
// row-major (k fast), B has n fast or k fast (B given transposed, as torch.nn.Linear stores its
// weight: its tile is staged n-major and read as a column-major right matrix), and
// strides/offsets/K/N are multiples of 8 halves; on by
// default, ACTLAB_WEBGPU_SGMAT=0 (or `enableSubgroupMatmul(false)`) turns it off.
import type { OpDesc } from '../../../tensor/backend.js';
import type { DType } from '../../../tensor/dtype.js';
import type { Dense, OpContext } from './context.js';
import { PRELUDE, lines, outBinding, storers } from '../wgsl.js';
import { PLAN_HEAD, alignedAxes, alignedKey, planParams, type Aligned, type MatmulPlan } from './matmul-plan.js';
import { envVar } from '../../../io/env.js';

type Op<K extends OpDesc['op']> = Extract<OpDesc, { op: K }>;

let enabled = envVar('ACTLAB_WEBGPU_SGMAT') !== '0';

/** Turns the subgroup-matrix path on or off. */
export function enableSubgroupMatmul(on: boolean): void {
  enabled = on;
}

/** SGM x SGN subgroups of FM x FN fragments each, k-steps of BK. */
export interface SgTile { SGM: number; SGN: number; FM: number; FN: number; BK?: 32 | 64 }
let forced: SgTile | null = null;
/** Fixes the tile (benchmarks and tuning); null restores the heuristic. */
export function setSubgroupTile(t: SgTile | null): void {
  forced = t;
}

/** ACTLAB_WEBGPU_SGTILE=SGM,SGN,FM,FN fixes the tile from the environment (experiments). */
function envTile(): SgTile | null {
  const v = envVar('ACTLAB_WEBGPU_SGTILE')?.split(',').map(Number);
  return v && v.length === 4 && v.every((x) => Number.isInteger(x) && x > 0) ? { SGM: v[0]!, SGN: v[1]!, FM: v[2]!, FN: v[3]! } : null;
}
const fromEnv = envTile();

function pickTile(p: MatmulPlan, batches: number): SgTile {
  if (forced) return forced;
  if (fromEnv) return fromEnv;
  const tiles = (bm: number, bn: number) => Math.ceil(p.M / bm) * Math.ceil(p.N / bn) * batches;
  // H200 sweeps (bench/RESULTS.md): 2x2 subgroups of 4x4 fragments for many tiles; below that,
  // 4x4 subgroups of 2x2 fragments (same 128x128 tile, 512 threads)
  if (tiles(128, 128) >= 600) return { SGM: 2, SGN: 2, FM: 4, FN: 4 };
  return { SGM: 4, SGN: 4, FM: 2, FN: 2 };
}

/**
 * Workgroup-memory layout of the staged tiles. Each subgroup reads its fragments from its own
 * block, At[g] (its 16*FM rows of A, k fast, rows padded to SA halves) and Bt[h] (BK rows of its
 * 16*FN columns of B, padded to SB; with `kFastB`, its 16*FN columns as rows, k fast, padded to
 * SA like A), so every subgroupMatrixLoad takes a constant offset into the
 * block: Tint's robustness pass then proves the load in bounds instead of wrapping each one in a
 * branch (H200, robustness on: 4096³ 125 -> 168 TFLOP/s, 2048x768x3072 80 -> 101).
 */
function layout(t: SgTile, kFastB: boolean) {
  const BK = t.BK ?? 32;
  const NT = 32 * t.SGM * t.SGN;
  const RA = 16 * t.FM; // rows of A per block
  const CB = 16 * t.FN; // columns of B per block
  const SA = BK + 8; // padding: 8 rows of 16 bytes a fragment row apart fall in distinct banks
  const SB = CB + 8;
  const APR = BK / 8; // 16-byte chunks per row of the A tile
  // per row of the B tile (k rows of n; with kFastB, n rows of k, as A)
  const BPR = kFastB ? APR : (16 * t.SGN * t.FN) / 8;
  const LA = (t.SGM * RA * APR) / NT;
  const LB = kFastB ? (t.SGN * CB * APR) / NT : (BK * BPR) / NT;
  const ABLK = RA * SA, BBLK = kFastB ? CB * SA : BK * SB;
  const smem = 2 * (t.SGM * ABLK + t.SGN * BBLK) + 4 * 256 * t.SGM * t.SGN;
  return { BK, NT, RA, CB, SA, SB, APR, BPR, LA, LB, ABLK, BBLK, smem };
}

function code(t: SgTile, ydt: DType, al: Aligned, kFastB: boolean): string {
  const { SGM, SGN, FM, FN } = t;
  const { BK, NT, RA, CB, SA, SB, APR, BPR, LA, LB, ABLK, BBLK } = layout(t, kFastB);
  if (!Number.isInteger(LA) || !Number.isInteger(LB)) throw new Error(`subgroup tile ${JSON.stringify(t)}: loads do not divide among ${NT} threads`);
  const ar = (l: number) => `ar + ${(l * NT) / APR}u`;
  const bk = (l: number) => `bk + ${(l * NT) / BPR}u`;
  const masked = (v: string, ...conds: string[]) => {
    const c = conds.filter(Boolean).join(' && ');
    return c ? `select(vec4<u32>(0u), ${v}, ${c})` : v;
  };
  const ldA = (l: number) => masked(`a[(abase + (m0 + ${ar(l)}) * sam + k0 + ak) >> 3u]`, al.m ? '' : `m0 + ${ar(l)} < M`, al.k ? '' : 'k0 + ak < K');
  // kFastB: thread li loads 8 halves along k of B's column n0 + bk(l) (bk = li / BPR, bn = (li % BPR) * 8 is the k offset)
  const ldB = (l: number) => kFastB
    ? masked(`b[(bbase + (n0 + ${bk(l)}) * sbn + k0 + bn) >> 3u]`, al.n ? '' : `n0 + ${bk(l)} < N`, al.k ? '' : 'k0 + bn < K')
    : masked(`b[(bbase + (k0 + ${bk(l)}) * sbk + n0 + bn) >> 3u]`, al.k ? '' : `k0 + ${bk(l)} < K`, al.n ? '' : 'n0 + bn < N');
  const loads = (ind: string) => [...Array.from({ length: LA }, (_, l) => `${ind}ra${l} = ${ldA(l)};`), ...Array.from({ length: LB }, (_, l) => `${ind}rb${l} = ${ldB(l)};`)].join('\n');
  // 8 f16 stores per 16-byte chunk (subgroupMatrixLoad wants an array<f16>; the compiler merges them)
  const st = (blk: string, idx: string, v: string) => lines(4, (c) => `      { let h = bitcast<vec2<f16>>(${v}[${c}]); ${blk}[${idx} + ${2 * c}u] = h.x; ${blk}[${idx} + ${2 * c + 1}u] = h.y; }`);
  const stores = () => [
    ...Array.from({ length: LA }, (_, l) => `    { let r = ${ar(l)};\n${st(`At[r / ${RA}u]`, `(r % ${RA}u) * ${SA}u + ak`, `ra${l}`)}\n    }`),
    ...Array.from({ length: LB }, (_, l) => kFastB
      ? `    { let r = ${bk(l)};\n${st(`Bt[r / ${CB}u]`, `(r % ${CB}u) * ${SA}u + bn`, `rb${l}`)}\n    }`
      : `    {\n${st(`Bt[bn / ${CB}u]`, `(${bk(l)}) * ${SB}u + bn % ${CB}u`, `rb${l}`)}\n    }`),
  ].join('\n');
  const frags: [number, number][] = [];
  for (let i = 0; i < FM; i++) for (let j = 0; j < FN; j++) frags.push([i, j]);
  const kstep = (ks: number) => `    {
${lines(FM, (i) => `      let a${i} = subgroupMatrixLoad<subgroup_matrix_left<f16, 16, 16>, row_major>(&At[sgm], ${16 * i * SA + ks}u, ${SA}u);`)}
${lines(FN, (j) => kFastB
    ? `      let b${j} = subgroupMatrixLoad<subgroup_matrix_right<f16, 16, 16>, col_major>(&Bt[sgn], ${16 * j * SA + ks}u, ${SA}u);`
    : `      let b${j} = subgroupMatrixLoad<subgroup_matrix_right<f16, 16, 16>, row_major>(&Bt[sgn], ${ks * SB + 16 * j}u, ${SB}u);`)}
${frags.map(([i, j]) => `      c${i}_${j} = subgroupMatrixMultiplyAccumulate(a${i}, b${j}, c${i}_${j});`).join('\n')}
    }`;
  const loop = `  for (var t = 0u; t < ntiles; t++) {
    if (t > 0u) { workgroupBarrier(); }
${stores()}
    workgroupBarrier();
    k0 = (t + 1u) * ${BK}u;
    if (t + 1u < ntiles) {
${loads('      ')}
    }
${Array.from({ length: BK / 16 }, (_, s) => kstep(16 * s)).join('\n')}
  }`;
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
var<workgroup> At: array<array<f16, ${ABLK}>, ${SGM}>;
var<workgroup> Bt: array<array<f16, ${BBLK}>, ${SGN}>;
var<workgroup> stage: array<array<f32, 256>, ${SGM * SGN}>;
@compute @workgroup_size(${NT})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) li: u32,
        @builtin(subgroup_invocation_id) sl: u32) {
  ${PLAN_HEAD}
  let m0 = wid.y * ${16 * SGM * FM}u; let n0 = wid.x * ${16 * SGN * FN}u;
  let sg = li / 32u;
  let sgm = sg / ${SGN}u; let sgn = sg % ${SGN}u;
  let ar = li / ${APR}u; let ak = (li % ${APR}u) * 8u;
  let bk = li / ${BPR}u; let bn = (li % ${BPR}u) * 8u;
${lines(LA, (l) => `  var ra${l}: vec4<u32>;`)}
${lines(LB, (l) => `  var rb${l}: vec4<u32>;`)}
${frags.map(([i, j]) => `  var c${i}_${j} = subgroup_matrix_result<f32, 16, 16>();`).join('\n')}
  let ntiles = (K + ${BK - 1}u) / ${BK}u;
  var k0 = 0u;
${loads('  ')}
${loop}
${frags.map(([i, j]) => `  subgroupMatrixStore<row_major>(&stage[sg], 0u, c${i}_${j}, 16u);
  workgroupBarrier();
  for (var e = sl * 2u; e < 256u; e += 64u) {
    let m = m0 + sgm * ${RA}u + ${16 * i}u + e / 16u; let n = n0 + sgn * ${CB}u + ${16 * j}u + e % 16u;
    if (m < M && n < N) { stf2_y(ybase + m * N + n, stage[sg][e], stage[sg][e + 1u]); }
  }
  workgroupBarrier();`).join('\n')}
}`;
}

export function trySubgroupMatmul(
  ctx: OpContext<Op<'matmul'>>, p: MatmulPlan, adt: DType, bdt: DType, ab: GPUBuffer, bb: GPUBuffer, y: Dense,
): boolean {
  if (!enabled || !ctx.features.subgroupMatrix || adt !== 'f16' || bdt !== 'f16') return false;
  if (p.M <= 8 || p.sak !== 1 || (p.sbn !== 1 && p.sbk !== 1)) return false;
  const kFastB = p.sbn !== 1;
  const m8 = (...xs: number[]) => xs.every((x) => x % 8 === 0);
  if (!m8(p.K, p.N, p.sam, kFastB ? p.sbn : p.sbk, p.aoff, p.boff, ...p.abs, ...p.bbs) || y.offset % 2 !== 0) return false;
  const batches = p.bshape[0] * p.bshape[1] * p.bshape[2];
  const t = pickTile(p, batches);
  const L = layout(t, kFastB);
  if (L.smem > ctx.rt.device.limits.maxComputeWorkgroupStorageSize) return false;
  const al = alignedAxes(p, 16 * t.SGM * t.FM, 16 * t.SGN * t.FN, L.BK);
  const k = ctx.kernel(`mm sgmat ${t.SGM}x${t.SGN}x${t.FM}x${t.FN}x${L.BK}${kFastB ? ' Bt' : ''} f16>${y.dtype}${alignedKey(al)}`, () => code(t, y.dtype, al, kFastB));
  ctx.run(k, [ab, bb, y.gpu], planParams(p, y.offset), [Math.ceil(p.N / (16 * t.SGN * t.FN)), Math.ceil(p.M / (16 * t.SGM * t.FM)), batches]);
  return true;
}

