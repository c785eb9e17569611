// f16 x f16 matmul on tensor cores through Chromium's experimental subgroup matrices
// (16x16x16 fragments, f32 accumulation): each subgroup of a 4-subgroup workgroup owns a 32x32
// block (2x2 fragments) of a 64x64 output tile, loading fragments straight from the operands;
// the tile goes through workgroup memory to be rounded to f16 and written with bounds.
// Experimental: used only when the adapter offers the feature, the layout fits (row-major A and
// B, K a multiple of 16, M and N at least 64) and ACTLAB_WEBGPU_SGMAT=1 (or `enableSubgroupMatmul`).
import type { OpDesc } from '../../backend.js';
import type { DType } from '../../../tensor/dtype.js';
import { Params, type Dense, type OpContext } from './context.js';
import { PRELUDE, cdiv, outBinding, storers } from '../wgsl.js';
import type { MatmulPlan } from './matmul.js';

type Op<K extends OpDesc['op']> = Extract<OpDesc, { op: K }>;

let enabled = (globalThis as { process?: { env?: Record<string, string | undefined> } }).process?.env?.ACTLAB_WEBGPU_SGMAT === '1';

/** Turns the subgroup-matrix path on or off (it is off by default while experimental). */
export function enableSubgroupMatmul(on: boolean): void {
  enabled = on;
}

export function trySubgroupMatmul(
  ctx: OpContext<Op<'matmul'>>, p: MatmulPlan, adt: DType, bdt: DType, ab: GPUBuffer, bb: GPUBuffer, y: Dense,
): boolean {
  if (!enabled || !ctx.features.subgroupMatrix || adt !== 'f16' || bdt !== 'f16') return false;
  if (p.sak !== 1 || p.sam !== p.K || p.sbn !== 1 || p.sbk !== p.N) return false;
  if (p.K % 16 !== 0 || p.M < 64 || p.N < 64 || p.aoff % 2 !== 0 || p.boff % 2 !== 0) return false;
  const batches = p.bshape[0] * p.bshape[1] * p.bshape[2];
  const k = ctx.kernel(`mm sgmat f16>${y.dtype}`, () => `enable f16;
enable subgroups;
enable chromium_experimental_subgroup_matrix;
diagnostic(off, chromium.subgroup_matrix_uniformity);
${PRELUDE}
@group(0) @binding(0) var<storage, read> P: array<u32>;
@group(0) @binding(1) var<storage, read> a: array<f16>;
@group(0) @binding(2) var<storage, read> b: array<f16>;
${outBinding(3, 'y', y.dtype)}
${storers('y', y.dtype)}
var<workgroup> tile: array<f32, 4096>;
@compute @workgroup_size(128)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) li: u32, @builtin(subgroup_size) sgs: u32) {
  let M = P[0]; let K = P[1]; let N = P[2];
  let z = wid.z;
  let z0 = z % P[3]; let z1 = (z / P[3]) % P[4]; let z2 = z / (P[3] * P[4]);
  let abase = u32(bitcast<i32>(P[16]) + i32(z0) * bitcast<i32>(P[6]) + i32(z1) * bitcast<i32>(P[7]) + i32(z2) * bitcast<i32>(P[8]));
  let bbase = u32(bitcast<i32>(P[17]) + i32(z0) * bitcast<i32>(P[9]) + i32(z1) * bitcast<i32>(P[10]) + i32(z2) * bitcast<i32>(P[11]));
  let ybase = P[18] + z * M * N;
  let sg = li / sgs;
  let m0 = wid.y * 64u + (sg / 2u) * 32u;
  let n0 = wid.x * 64u + (sg % 2u) * 32u;
  let mA = min(m0, M - 32u);
  let nB = min(n0, N - 32u);
  var c00 = subgroup_matrix_result<f32, 16, 16>();
  var c01 = subgroup_matrix_result<f32, 16, 16>();
  var c10 = subgroup_matrix_result<f32, 16, 16>();
  var c11 = subgroup_matrix_result<f32, 16, 16>();
  for (var k0 = 0u; k0 < K; k0 += 16u) {
    let a0 = subgroupMatrixLoad<subgroup_matrix_left<f16, 16, 16>, row_major>(&a, abase + mA * K + k0, K);
    let a1 = subgroupMatrixLoad<subgroup_matrix_left<f16, 16, 16>, row_major>(&a, abase + (mA + 16u) * K + k0, K);
    let b0 = subgroupMatrixLoad<subgroup_matrix_right<f16, 16, 16>, row_major>(&b, bbase + k0 * N + nB, N);
    let b1 = subgroupMatrixLoad<subgroup_matrix_right<f16, 16, 16>, row_major>(&b, bbase + k0 * N + nB + 16u, N);
    c00 = subgroupMatrixMultiplyAccumulate(a0, b0, c00);
    c01 = subgroupMatrixMultiplyAccumulate(a0, b1, c01);
    c10 = subgroupMatrixMultiplyAccumulate(a1, b0, c10);
    c11 = subgroupMatrixMultiplyAccumulate(a1, b1, c11);
  }
  let t = (sg / 2u) * 32u * 64u + (sg % 2u) * 32u;
  subgroupMatrixStore<row_major>(&tile, t, c00, 64u);
  subgroupMatrixStore<row_major>(&tile, t + 16u, c01, 64u);
  subgroupMatrixStore<row_major>(&tile, t + 16u * 64u, c10, 64u);
  subgroupMatrixStore<row_major>(&tile, t + 16u * 64u + 16u, c11, 64u);
  workgroupBarrier();
  // Blocks were computed at (mA, nB), shifted inside the matrix at its edges: write what belongs here.
  for (var e = li; e < 4096u; e += 128u) {
    let q = e / 1024u; let r = (e % 1024u) / 32u; let c = e % 32u;
    let bm = wid.y * 64u + (q / 2u) * 32u; let bn = wid.x * 64u + (q % 2u) * 32u;
    let am = min(bm, M - 32u) + r; let an = min(bn, N - 32u) + c;
    if (bm < M && bn < N && am >= bm && an >= bn && am < M && an < N) {
      stf_y(ybase + am * N + an, tile[(q / 2u) * 2048u + r * 64u + (q % 2u) * 32u + c]);
    }
  }
}`);
  ctx.run(k, [ab, bb, y.gpu], new Params().u32(p.M, p.K, p.N, ...p.bshape).i32(...p.abs, ...p.bbs, p.sam, p.sak, p.sbk, p.sbn, p.aoff, p.boff, y.offset), [cdiv(p.N, 64), cdiv(p.M, 64), batches]);
  return true;
}
