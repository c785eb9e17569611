// f16 x f16 matmul on tensor cores through Chromium's experimental subgroup matrices
// (16x16x16 fragments, f32 accumulation): each subgroup of a 4-subgroup workgroup owns a 64x64
// block (4x4 fragments) of a 128x128 output tile, loading fragments straight from the operands;
// each fragment goes through workgroup memory to be rounded to the output dtype.
// Experimental: used only when the adapter offers the feature, the layout fits (row-major A and
// B, K a multiple of 16, M and N multiples of 128) and ACTLAB_WEBGPU_SGMAT=1 (or `enableSubgroupMatmul`).
import type { OpDesc } from '../../backend.js';
import type { DType } from '../../../tensor/dtype.js';
import { Params, type Dense, type OpContext } from './context.js';
import { PRELUDE, outBinding, storers } from '../wgsl.js';
import type { MatmulPlan } from './matmul.js';

type Op<K extends OpDesc['op']> = Extract<OpDesc, { op: K }>;

let enabled = (globalThis as { process?: { env?: Record<string, string | undefined> } }).process?.env?.ACTLAB_WEBGPU_SGMAT === '1';

/** Turns the subgroup-matrix path on or off (it is off by default while experimental). */
export function enableSubgroupMatmul(on: boolean): void {
  enabled = on;
}

const F = 4; // fragments per subgroup per dim: a subgroup owns 64x64, the workgroup 128x128

export function trySubgroupMatmul(
  ctx: OpContext<Op<'matmul'>>, p: MatmulPlan, adt: DType, bdt: DType, ab: GPUBuffer, bb: GPUBuffer, y: Dense,
): boolean {
  if (!enabled || !ctx.features.subgroupMatrix || adt !== 'f16' || bdt !== 'f16') return false;
  if (p.sak !== 1 || p.sam !== p.K || p.sbn !== 1 || p.sbk !== p.N) return false;
  if (p.K % 16 !== 0 || p.M % 128 !== 0 || p.N % 128 !== 0 || y.offset % 2 !== 0) return false;
  const batches = p.bshape[0] * p.bshape[1] * p.bshape[2];
  const frag = (i: number, j: number) => `c${i}_${j}`;
  const all: [number, number][] = [];
  for (let i = 0; i < F; i++) for (let j = 0; j < F; j++) all.push([i, j]);
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
}`);
  ctx.run(k, [ab, bb, y.gpu], new Params().u32(p.M, p.K, p.N, ...p.bshape).i32(...p.abs, ...p.bbs, p.sam, p.sak, p.sbk, p.sbn, p.aoff, p.boff, y.offset), [p.N / 128, p.M / 128, batches]);
  return true;
}
