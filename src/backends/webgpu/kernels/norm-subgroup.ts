// The row sums of layer norm, RMS norm and the residual add + norm through subgroup shuffles, where
// the adapter has subgroups: the lanes of a row are summed by butterflies within each subgroup, then
// (rows wider than the smallest subgroup) the subgroups' sums meet in workgroup memory behind one
// barrier. The tree kernel of nn.ts spends log2(lanes) + 1 barriers on each sum (and one between
// the two of a layer norm); this one one per sum, none for rows of at most the smallest subgroup.
// Rows of at most `regMax` (16) elements a lane are kept in registers (x read once, mean then centered
// variance from them, as the tree kernel computes them: same f32 numerics, other summation order).
// Layout: L lanes a row (nn.ts's `rowLanes`, capped by NORM_SG_TUNING.lanes), WG / L rows a
// workgroup. The butterfly assumes, as quant-gemv.ts does, that a subgroup is sgs consecutive
// local invocations starting at a multiple of sgs (how Vulkan drivers group a one-dimensional
// workgroup); any power-of-two size works.
// Not for: the bindings and dispatch (nn.ts `norm`), the backward (norm-backward.ts).
import { envVar } from '../../../io/env.js';
import type { OpContext } from './context.js';

let enabled = envVar('ACTLAB_WEBGPU_NORM_SG') !== '0';
/** Turns the subgroup norm kernels on or off (the tree kernels run instead); ACTLAB_WEBGPU_NORM_SG=0 starts it off. */
export function setNormSubgroups(on: boolean): void {
  enabled = on;
}

/** Whether the norm kernels take the subgroup path on this adapter. */
export const normSubgroups = (ctx: OpContext) => enabled && ctx.features.subgroups;

/** The adapter's smallest subgroup size (WebGPU's least, 4, where the adapter does not say). */
export function subgroupMinSize(ctx: OpContext): number {
  const info = (ctx.rt.handle.adapter as { info?: { subgroupMinSize?: number } }).info;
  const n = info?.subgroupMinSize;
  return n && n >= 1 ? n : 4;
}

/**
 * Choices of the subgroup kernel, for benchmarks that compare them in one run: `lanes` a row at
 * most (fewer for short rows, as `rowLanes` gives; 32 on a GPU of 32-wide subgroups: one subgroup
 * a row, no workgroup memory), `wg` threads a workgroup (a power of two, at least the subgroup
 * size; at least one row's lanes), `regMax` elements a lane kept in registers at most, `minRows`
 * the fewest rows that take the subgroup kernel (fewer, as in decode: the tree kernel's order).
 */
export const NORM_SG_TUNING = { lanes: 256, wg: 256, regMax: 16, minRows: 16 };

/** WGSL header of a kernel that uses subgroups (before everything else in the module). */
export const SG_ENABLE = 'enable subgroups;\ndiagnostic(off, subgroup_uniformity);\n';

export interface SgNorm {
  kind: 'layer' | 'rms';
  /** lanes per row (a power of two, at most the workgroup) */
  L: number;
  /** elements per lane kept in registers; 0: read the row again from memory at each pass */
  E: number;
  /** the adapter's smallest subgroup: rows of at most this many lanes skip workgroup memory */
  minSg: number;
  /** with a residual: the row is a + b, stored to `sum` and read back from it when `reload` (not f32) */
  residual: boolean;
  reload: boolean;
  hasW: boolean;
  hasB: boolean;
}

/**
 * WGSL: `dst` = the sum over the row's L lanes of each lane's `src`, in every lane. `buf` is a
 * workgroup array of WG f32 that no other sum uses (so no barrier guards its reuse).
 */
function rowSum(src: string, dst: string, buf: string, o: SgNorm): string {
  const shared = o.L > o.minSg;
  return `var ${dst} = ${src};
  for (var o = 1u; o < g; o = o << 1u) { ${dst} = ${dst} + subgroupShuffleXor(${dst}, o); }${shared ? `
  if (lane % g == 0u) { ${buf}[li] = ${dst}; }
  workgroupBarrier();
  ${dst} = 0.0;
  for (var t = seg; t < seg + ${o.L}u; t += g) { ${dst} = ${dst} + ${buf}[t]; }` : ''}`;
}

/** `body` for each of the lane's elements j (i a constant in the register form), guarded by j < d. */
function each(o: SgNorm, body: string): string {
  if (!o.E) return `for (var j = lane; j < d; j += ${o.L}u) { ${body} }`;
  return Array.from({ length: o.E }, (_, i) => `{ const i = ${i}u; let j = lane + ${i * o.L}u; if (j < d) { ${body} } }`).join('\n  ');
}

/**
 * WGSL of the workgroup arrays and `fn main` of the subgroup norm kernel; the bindings, loaders
 * and parameters are nn.ts's (P: d, rows, xoff, yoff, eps, woff, boff, -, offset, roff, soff).
 */
export function sgNormMain(o: SgNorm, WG: number, builtins: string, wgIndex: string): string {
  const reg = o.E > 0;
  // the element j of the row as the norm sees it
  const val = reg ? 'v[i]' : o.residual ? 'ldf_sum(sb + j)' : 'ldf_x(xb + j)';
  const load = o.residual
    ? `let a = ldf_x(xb + j) + ldf_r(rrb + j); stf_sum(sb + j, a);${reg ? ` v[i] = ${o.reload ? 'ldf_sum(sb + j)' : 'a'};` : ''}`
    : reg ? 'v[i] = ldf_x(xb + j);' : '';
  const out = o.kind === 'layer'
    ? `var y = (${val} - mean) * inv; ${o.hasW ? 'y = y * ldf_w(P[5] + j);' : ''} ${o.hasB ? 'y = y + ldf_bias(P[6] + j);' : ''}`
    : `var y = ${val} * inv; ${o.hasW ? 'y = y * (bitcast<f32>(P[8]) + ldf_w(P[5] + j));' : ''}`;
  const stats = o.kind === 'layer' ? `
  var s = 0.0;
  ${each(o, `s = s + ${val};`)}
  ${rowSum('s', 'total', 'redA', o)}
  let mean = total / f32(d);
  var q = 0.0;
  ${each(o, `let c = ${val} - mean; q = q + c * c;`)}
  ${rowSum('q', 'sq', 'redB', o)}` : `
  var q = 0.0;
  ${each(o, `let c = ${val}; q = q + c * c;`)}
  ${rowSum('q', 'sq', 'redB', o)}`;
  return `${o.L > o.minSg ? `var<workgroup> redA: array<f32, ${WG}>;\nvar<workgroup> redB: array<f32, ${WG}>;` : ''}
@compute @workgroup_size(${WG})
fn main(${builtins}, @builtin(subgroup_size) sgs: u32) {
  ${wgIndex}
  let lane = li % ${o.L}u;
  let seg = li - lane;
  let row = wg * ${WG / o.L}u + li / ${o.L}u;
  // Rows past the end take no elements but still meet every barrier and shuffle.
  let d = select(0u, P[0], row < P[1]);
  let xb = P[2] + row * P[0];
  let yb = P[3] + row * P[0];
  let eps = bitcast<f32>(P[4]);
  // lanes of the row summed within one subgroup
  let g = min(${o.L}u, sgs);
  ${o.residual ? 'let sb = P[10] + row * P[0];\n  let rrb = P[9] + row * P[0];' : ''}
  ${reg ? `var v: array<f32, ${o.E}>;` : ''}
  ${load ? each(o, load) : ''}
  ${stats}
  let inv = 1.0 / sqrt_safe(sq / f32(d) + eps);
  ${each(o, `${out} stf_y(yb + j, y);`)}
}`;
}
