// The layer norm's gradient in one pass over each row (`layernormBackward`): the row's mean and
// variance recomputed from x, then the row means of ĝ = dy · weight and of ĝ · x̂, then dx (and
// dy · x̂ for the weight's gradient). Rows laid out as the forward norm's (nn.ts), f32 accumulation.
import type { OpDesc } from '../../../tensor/backend.js';
import { BUILTINS, Params, WG_INDEX, numel, type OpContext } from './context.js';
import { WG, rowLanes, rowsOf, treeSum } from './nn.js';
import { MATH, PRELUDE, cdiv, inBinding, isFloatDType, loaders, outBinding, storers } from '../wgsl.js';

type Op<K extends OpDesc['op']> = Extract<OpDesc, { op: K }>;

export function layernormBackward(ctx: OpContext<Op<'layernormBackward'>>): void {
  const { eps, hasWeight } = ctx.op;
  if (ctx.inputs.length !== (hasWeight ? 3 : 2) || ctx.outputs.length !== (hasWeight ? 2 : 1)) {
    ctx.fail(`layernormBackward takes x${hasWeight ? ', weight' : ''}, dy and gives dx${hasWeight ? ', dy·x̂' : ''}`);
  }
  const x = ctx.inputs[0]!;
  if (x.shape.length === 0) ctx.fail('x needs rank >= 1');
  const d = x.shape[x.shape.length - 1]!;
  const dyAt = hasWeight ? 2 : 1;
  if (hasWeight && numel(ctx.inputs[1]!.shape) !== d) ctx.fail(`weight must have ${d} elements`);
  for (const v of [...ctx.inputs, ...ctx.outputs]) if (!isFloatDType(v.dtype)) ctx.fail(`layernormBackward works on float tensors, got ${v.dtype}`);
  for (const v of [ctx.inputs[dyAt]!, ...ctx.outputs]) if (v.shape.join() !== x.shape.join()) ctx.fail('dy and the outputs must have the shape of x');
  const rows = d === 0 ? 0 : numel(x.shape) / d;
  if (rows === 0) return;
  const xd = ctx.dense(0);
  const wd = hasWeight ? ctx.dense(1) : null;
  const gd = ctx.dense(dyAt);
  const dxd = ctx.denseOut(0);
  const hd = hasWeight ? ctx.denseOut(1) : null;
  const L = rowLanes(d);
  const key = `layernormBackward ${xd.dtype},${gd.dtype}>${dxd.dtype} w${wd?.dtype ?? '-'}${hd ? `>${hd.dtype}` : ''} l${L}`;
  const kern = ctx.kernel(key, () => `${PRELUDE}${MATH}
@group(0) @binding(0) var<storage, read> P: array<u32>;
${inBinding(1, 'x')}
${inBinding(2, 'dy')}
${outBinding(3, 'dx', dxd.dtype)}
${wd ? `${inBinding(4, 'w')}\n${outBinding(5, 'h', hd!.dtype)}` : ''}
${loaders('x', xd.dtype)}
${loaders('dy', gd.dtype)}
${storers('dx', dxd.dtype)}
${wd ? `${loaders('w', wd.dtype)}\n${storers('h', hd!.dtype)}` : ''}
var<workgroup> red: array<f32, ${WG}>;
var<workgroup> red2: array<f32, ${WG}>;
fn ghat(j: u32, gb: u32) -> f32 { return ldf_dy(gb + j)${wd ? ' * ldf_w(P[5] + j)' : ''}; }
@compute @workgroup_size(${WG})
fn main(${BUILTINS}) {
  ${WG_INDEX}
  ${rowsOf(L, 'P[1]')}
  // Rows past the end take no elements but still meet every barrier.
  let d = select(0u, P[0], live);
  let xb = P[2] + row * P[0];
  let gb = P[3] + row * P[0];
  let ob = row * P[0];
  var s = 0.0;
  for (var j = lane; j < d; j += ${L}u) { s = s + ldf_x(xb + j); }
  red[li] = s;
  ${treeSum('red', L)}
  let mean = red[seg] / f32(d);
  workgroupBarrier();
  var q = 0.0;
  for (var j = lane; j < d; j += ${L}u) { let c = ldf_x(xb + j) - mean; q = q + c * c; }
  red[li] = q;
  ${treeSum('red', L)}
  let rstd = 1.0 / sqrt_safe(red[seg] / f32(d) + bitcast<f32>(P[4]));
  workgroupBarrier();
  var sg = 0.0;
  var sgx = 0.0;
  for (var j = lane; j < d; j += ${L}u) { let g = ghat(j, gb); sg = sg + g; sgx = sgx + g * (ldf_x(xb + j) - mean) * rstd; }
  red[li] = sg;
  red2[li] = sgx;
  workgroupBarrier();
  for (var w = ${L >> 1}u; w > 0u; w = w >> 1u) {
    if (lane < w) { red[li] = red[li] + red[li + w]; red2[li] = red2[li] + red2[li + w]; }
    workgroupBarrier();
  }
  let mg = red[seg] / f32(d);
  let mgx = red2[seg] / f32(d);
  for (var j = lane; j < d; j += ${L}u) {
    let xhat = (ldf_x(xb + j) - mean) * rstd;
    stf_dx(P[6] + ob + j, rstd * (ghat(j, gb) - mg - xhat * mgx));
    ${wd ? 'stf_h(P[7] + ob + j, ldf_dy(gb + j) * xhat);' : ''}
  }
}`);
  const bufs = [xd.gpu, gd.gpu, dxd.gpu];
  if (wd) bufs.push(wd.gpu, hd!.gpu);
  const p = new Params().u32(d, rows, xd.offset, gd.offset).f32(eps).u32(wd?.offset ?? 0, dxd.offset, hd?.offset ?? 0);
  ctx.run(kern, bufs, p, [cdiv(rows, WG / L)]);
}
