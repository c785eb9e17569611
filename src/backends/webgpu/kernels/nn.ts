// Row kernels of neural nets: softmax / log-softmax (causal, masked), layernorm, rmsnorm (one
// workgroup per long row, several short rows per workgroup, f32 accumulation), rotary embeddings, gather and scatterAdd.
import type { OpDesc, View } from '../../../tensor/backend.js';
import { BUILTINS, Params, WG_INDEX, numel, type DeferredSum, type OpContext } from './context.js';
import { MATH, PRELUDE, cdiv, inBinding, isFloatDType, loaders, outBinding, storers } from '../wgsl.js';
import { scatterAddChunked, scatterChunks } from './scatter.js';
import { NORM_SG_TUNING, SG_ENABLE, normSubgroups, sgNormMain, subgroupMinSize, type SgNorm } from './norm-subgroup.js';

type Op<K extends OpDesc['op']> = Extract<OpDesc, { op: K }>;
export const WG = 256;

/**
 * Threads that share one row: the whole workgroup for rows of WG elements or more; for shorter rows
 * a power of two with about 8 elements each, so that one workgroup holds WG / lanes rows. A short
 * row in a whole workgroup leaves most threads idle at every barrier, which on a software driver
 * (SwiftShader) costs as much as working. Rows of WG or more keep the one-row-per-workgroup order.
 */
export function rowLanes(n: number): number {
  if (n >= WG) return WG;
  let l = 1;
  while (l * 8 < n) l *= 2;
  return l;
}

/** The row layout inside a workgroup of `lanes`-thread rows: `lane`, `row` (global), `live`, `seg` (the row's first slot in shared arrays). */
export const rowsOf = (lanes: number, rowsParam: string) => `
  let lane = li % ${lanes}u;
  let seg = li - lane;
  let row = wg * ${WG / lanes}u + li / ${lanes}u;
  let live = row < ${rowsParam};`;

/** Tree reduction of one f32 per thread in `buf` within each row's `lanes` slots; leaves the result in buf[seg]. */
export const treeSum = (buf: string, lanes: number, op = '+') => `
  workgroupBarrier();
  for (var w = ${lanes >> 1}u; w > 0u; w = w >> 1u) {
    if (lane < w) { ${op === '+' ? `${buf}[li] = ${buf}[li] + ${buf}[li + w];` : `${buf}[li] = ${op}(${buf}[li], ${buf}[li + w]);`} }
    workgroupBarrier();
  }`;

/**
 * Lanes per row of the register kernel (rows of REG_MIN..REG_MAX elements): each lane holds its
 * at most 16 elements in registers, so x and the mask are read once and exp is taken once.
 */
const REG_MIN = 128;
const REG_MAX = 1024;
const regLanes = (k: number) => (k <= 512 ? 32 : 64);
/** `body` once for each i < n, i a constant (so the register arrays are indexed by constants only). */
const unrolled = (n: number, body: string) => Array.from({ length: n }, (_, i) => `{ const i = ${i}u;\n${body}\n  }`).join(' ');

/**
 * A mask view's element offset for a row, read in place (no dense copy of a broadcast mask):
 * its leading dims merged where they can be (a [q, k] mask broadcast over batch and heads is
 * [b·h, q] with strides [0, k]), at most three; null when more remain or the keys are not contiguous.
 */
function maskRows(v: View): { sizes: number[]; strides: number[] } | null {
  const r = v.shape.length;
  if (v.strides[r - 1] !== 1 && v.shape[r - 1]! > 1) return null;
  const sizes: number[] = [];
  const strides: number[] = [];
  for (let d = 0; d < r - 1; d++) {
    const n = v.shape[d]!, st = v.strides[d]!;
    if (n === 1) continue;
    const last = sizes.length - 1;
    if (last >= 0 && strides[last] === st * n) { sizes[last]! *= n; strides[last] = st; } else { sizes.push(n); strides.push(st); }
  }
  if (sizes.length > 3) return null;
  while (sizes.length < 3) { sizes.unshift(1); strides.unshift(0); }
  return { sizes, strides };
}

export function softmax(ctx: OpContext<Op<'softmax'>>): void {
  const { log, causal, masked } = ctx.op;
  const x = ctx.inputs[0]!;
  const rank = x.shape.length;
  if (rank < (causal ? 2 : 1)) ctx.fail(`x needs rank >= ${causal ? 2 : 1}`);
  const k = x.shape[rank - 1]!;
  const q = causal ? x.shape[rank - 2]! : 1;
  const rows = k === 0 ? 0 : numel(x.shape) / k;
  if (rows === 0) return;
  const xd = ctx.dense(0);
  const mv = masked ? ctx.inputs[1]! : null;
  if (mv && mv.shape.join() !== x.shape.join()) ctx.fail('the mask must be broadcast to the shape of x');
  const inPlace = mv ? maskRows(mv) : null;
  const md = mv && !inPlace ? ctx.dense(1) : null;
  // the mask's rows: [sizes, strides] of three leading dims, and its offset (a dense copy: rows of k)
  const mrows = inPlace ?? { sizes: [1, 1, rows], strides: [0, 0, k] };
  const yd = ctx.denseOut(0);
  const reg = k >= REG_MIN && k <= REG_MAX;
  const L = reg ? regLanes(k) : rowLanes(k);
  const E = reg ? Math.ceil(k / L) : 0;
  const head = `${PRELUDE}${MATH}
@group(0) @binding(0) var<storage, read> P: array<u32>;
${inBinding(1, 'x')}
${outBinding(2, 'y', yd.dtype)}
${masked ? inBinding(3, 'm') : ''}
${loaders('x', xd.dtype)}
${storers('y', yd.dtype)}
${masked ? loaders('m', 'u8') : ''}
var<workgroup> red: array<f32, ${WG}>;
var<workgroup> cnt: array<f32, ${WG}>;
// P: k, q, rows, xoff, yoff, moff, mask sizes (3), mask strides (3)
fn mask_row(row: u32) -> u32 {
  let i2 = row % P[8]; let i1 = (row / P[8]) % P[7]; let i0 = row / (P[8] * P[7]);
  return P[5] + i0 * P[9] + i1 * P[10] + i2 * P[11];
}
// mb: the row's first mask element (mask_row(row), taken once per row)
fn keep(row: u32, mb: u32, j: u32) -> bool {
  ${causal ? 'if (i32(j) > i32(row % P[1]) + i32(P[0]) - i32(P[1])) { return false; }' : ''}
  ${masked ? 'if (ldb_m(mb + j) == 0u) { return false; }' : ''}
  return true;
}`;
  const key = `softmax ${xd.dtype}>${yd.dtype} ${log ? 'log' : ''} ${causal ? 'causal' : ''} ${masked ? 'masked' : ''} ${reg ? `reg${L}x${E}` : `l${L}`}`;
  const kern = ctx.kernel(key, () => reg ? `${head}
var<workgroup> sm: array<f32, ${WG}>;
@compute @workgroup_size(${WG})
fn main(${BUILTINS}) {
  ${WG_INDEX}
  ${rowsOf(L, 'P[2]')}
  // Rows past the end take no elements but still meet every barrier.
  let k = select(0u, P[0], live);
  let xb = P[3] + row * P[0];
  let yb = P[4] + row * P[0];
  let mb = ${masked ? 'mask_row(row)' : '0u'};
  // element lane + i·${L} of the row in v[i]; bit i of kept: not hidden
  var v: array<f32, ${E}>;
  var kept = 0u;
  var mx = -inf_f32(); var n = 0.0;
  ${unrolled(E, `    let j = lane + i * ${L}u;
    v[i] = 0.0;
    if (j < k && keep(row, mb, j)) { v[i] = ldf_x(xb + j); kept |= 1u << i; mx = max_nan(mx, v[i]); n = n + 1.0; }`)}
  red[li] = mx; cnt[li] = n;
  workgroupBarrier();
  var m = -inf_f32(); var c = 0.0;
  for (var t = 0u; t < ${L}u; t++) { m = max_nan(m, red[seg + t]); c = c + cnt[seg + t]; }
  var s = 0.0;
  ${unrolled(E, `    if ((kept & (1u << i)) != 0u) { let e = exp_safe(v[i] - m); s = s + e; ${log ? '' : 'v[i] = e;'} }`)}
  sm[li] = s;
  workgroupBarrier();
  var total = 0.0;
  for (var t = 0u; t < ${L}u; t++) { total = total + sm[seg + t]; }
  let ls = log_safe(total);
  ${unrolled(E, `    let j = lane + i * ${L}u;
    if (j < k) {
      var o = ${log ? '-inf_f32()' : '0.0'};
      if (c > 0.0 && (kept & (1u << i)) != 0u) { o = ${log ? 'v[i] - m - ls' : 'v[i] / total'}; }
      stf_y(yb + j, o);
    }`)}
}` : `${head}
@compute @workgroup_size(${WG})
fn main(${BUILTINS}) {
  ${WG_INDEX}
  ${rowsOf(L, 'P[2]')}
  // Rows past the end take no elements but still meet every barrier.
  let k = select(0u, P[0], live);
  let xb = P[3] + row * P[0];
  let yb = P[4] + row * P[0];
  let mb = ${masked ? 'mask_row(row)' : '0u'};
  var mx = -inf_f32(); var n = 0.0;
  for (var j = lane; j < k; j += ${L}u) { if (keep(row, mb, j)) { mx = max_nan(mx, ldf_x(xb + j)); n = n + 1.0; } }
  red[li] = mx; cnt[li] = n;
  workgroupBarrier();
  for (var w = ${L >> 1}u; w > 0u; w = w >> 1u) {
    if (lane < w) { red[li] = max_nan(red[li], red[li + w]); cnt[li] = cnt[li] + cnt[li + w]; }
    workgroupBarrier();
  }
  let m = red[seg];
  let any = cnt[seg] > 0.0;
  workgroupBarrier();
  var s = 0.0;
  for (var j = lane; j < k; j += ${L}u) { if (keep(row, mb, j)) { s = s + exp_safe(ldf_x(xb + j) - m); } }
  red[li] = s;
  ${treeSum('red', L)}
  let total = red[seg];
  let ls = log_safe(total);
  for (var j = lane; j < k; j += ${L}u) {
    var v = ${log ? '-inf_f32()' : '0.0'};
    if (any && keep(row, mb, j)) {
      let d = ldf_x(xb + j) - m;
      v = ${log ? 'd - ls' : 'exp_safe(d) / total'};
    }
    stf_y(yb + j, v);
  }
}`);
  const bufs = [xd.gpu, yd.gpu];
  if (md) bufs.push(md.gpu);
  else if (mv) bufs.push(ctx.buffer(mv));
  const moff = md?.offset ?? mv?.offset ?? 0;
  ctx.run(kern, bufs, new Params().u32(k, q, rows, xd.offset, yd.offset, moff, ...mrows.sizes, ...mrows.strides), [cdiv(rows, WG / L)]);
}

/**
 * dx = y ⊙ (dy − Σ_row y ⊙ dy) (softmax's gradient from its output) in one pass over each row, laid
 * out as softmax's: rows of REG_MIN..REG_MAX in registers (y and dy read once), others read twice.
 */
export function softmaxBackward(ctx: OpContext<Op<'softmaxBackward'>>): void {
  const [y, dy] = ctx.inputs;
  const [dx] = ctx.outputs;
  if (!y || !dy || !dx || ctx.inputs.length !== 2 || ctx.outputs.length !== 1) ctx.fail('softmaxBackward takes y, dy and gives dx');
  if (y.shape.length === 0) ctx.fail('y needs rank >= 1');
  for (const v of [y, dy, dx]) {
    if (!isFloatDType(v.dtype)) ctx.fail(`softmaxBackward works on float tensors, got ${v.dtype}`);
    if (v.shape.join() !== y.shape.join()) ctx.fail('softmaxBackward operands must share one shape');
  }
  const k = y.shape[y.shape.length - 1]!;
  const rows = k === 0 ? 0 : numel(y.shape) / k;
  if (rows === 0) return;
  const yd = ctx.dense(0);
  const gd = ctx.dense(1);
  const od = ctx.denseOut(0);
  const reg = k >= REG_MIN && k <= REG_MAX;
  const L = reg ? regLanes(k) : rowLanes(k);
  const E = reg ? Math.ceil(k / L) : 0;
  const kern = ctx.kernel(`softmaxBackward ${yd.dtype},${gd.dtype}>${od.dtype} ${reg ? `reg${L}x${E}` : `l${L}`}`, () => `${PRELUDE}
@group(0) @binding(0) var<storage, read> P: array<u32>;
${inBinding(1, 'y')}
${inBinding(2, 'dy')}
${outBinding(3, 'dx', od.dtype)}
${loaders('y', yd.dtype)}
${loaders('dy', gd.dtype)}
${storers('dx', od.dtype)}
var<workgroup> red: array<f32, ${WG}>;
@compute @workgroup_size(${WG})
fn main(${BUILTINS}) {
  ${WG_INDEX}
  // P: k, rows, yoff, dyoff, dxoff
  ${rowsOf(L, 'P[1]')}
  // Rows past the end take no elements but still meet every barrier.
  let k = select(0u, P[0], live);
  let yb = P[2] + row * P[0];
  let gb = P[3] + row * P[0];
  let ob = P[4] + row * P[0];
  var s = 0.0;
  ${reg ? `var a: array<f32, ${E}>;
  var b: array<f32, ${E}>;
  ${unrolled(E, `    let j = lane + i * ${L}u;
    a[i] = 0.0; b[i] = 0.0;
    if (j < k) { a[i] = ldf_y(yb + j); b[i] = ldf_dy(gb + j); s = s + a[i] * b[i]; }`)}
  red[li] = s;
  workgroupBarrier();
  var t = 0.0;
  for (var l = 0u; l < ${L}u; l++) { t = t + red[seg + l]; }
  ${unrolled(E, `    let j = lane + i * ${L}u;
    if (j < k) { stf_dx(ob + j, a[i] * (b[i] - t)); }`)}` : `for (var j = lane; j < k; j += ${L}u) { s = s + ldf_y(yb + j) * ldf_dy(gb + j); }
  red[li] = s;
  ${treeSum('red', L)}
  let t = red[seg];
  for (var j = lane; j < k; j += ${L}u) { stf_dx(ob + j, ldf_y(yb + j) * (ldf_dy(gb + j) - t)); }`}
}`);
  ctx.run(kern, [yd.gpu, gd.gpu, od.gpu], new Params().u32(k, rows, yd.offset, gd.offset, od.offset), [cdiv(rows, WG / L)]);
}

export function layernorm(ctx: OpContext<Op<'layernorm'>>): void {
  const { eps, hasWeight, hasBias } = ctx.op;
  norm(ctx, 'layer', eps, 0, hasWeight, hasBias);
}

export function rmsnorm(ctx: OpContext<Op<'rmsnorm'>>): void {
  const { eps, offset, hasWeight } = ctx.op;
  norm(ctx, 'rms', eps, offset, hasWeight, false);
}

/** s = a + b and y = norm(s) in one pass over each row (the norm reads s back as stored). */
/**
 * Storage buffers the addNorm kernel binds when its b is a deferred split sum: P, a, y, the
 * parameters, the partials, the sum, the product's bias (when it has one) and b's own buffer.
 */
export const addNormDeferredBuffers = (params: number, bias: boolean) => 6 + params + (bias ? 1 : 0);

export function addNorm(ctx: OpContext<Op<'addNorm'>>): void {
  const { kind, eps, offset, hasWeight, hasBias } = ctx.op;
  if (kind !== 'layer' && kind !== 'rms') ctx.fail(`unknown kind '${kind}'`);
  if (ctx.inputs.length !== 2 + Number(hasWeight) + Number(hasBias) || ctx.outputs.length !== 2) ctx.fail('addNorm takes a, b, the flagged parameters and two outputs');
  norm(ctx, kind, eps, offset, hasWeight, hasBias, true);
}

function norm(ctx: OpContext, kind: 'layer' | 'rms', eps: number, offset: number, hasW: boolean, hasB: boolean, residual = false): void {
  const x = ctx.inputs[0]!;
  if (x.shape.length === 0) ctx.fail('x needs rank >= 1');
  const d = x.shape[x.shape.length - 1]!;
  const rows = d === 0 ? 0 : numel(x.shape) / d;
  if (rows === 0) return;
  const p0 = residual ? 2 : 1; // the first parameter's input
  if (residual && numel(ctx.inputs[1]!.shape) !== numel(x.shape)) ctx.fail('b must have the shape of a');
  for (let i = p0; i < ctx.inputs.length; i++) if (numel(ctx.inputs[i]!.shape) !== d) ctx.fail(`parameter ${i - p0} must have ${d} elements`);
  const xd = ctx.dense(0);
  // b a split product's partials whose sum was deferred (context.ts DeferredSum): added here
  const ds = residual ? ctx.deferredInput?.(1) ?? null : null;
  const rd = residual ? (ds ? { gpu: ds.part.gpu, offset: 0, dtype: 'f32' as const, shape: ctx.inputs[1]!.shape } : ctx.dense(1)) : null;
  const wd = hasW ? ctx.dense(p0) : null;
  const bd = hasB ? ctx.dense(p0 + (hasW ? 1 : 0)) : null;
  // residual: output 0 is the sum, output 1 the norm
  const sd = residual ? ctx.denseOut(0) : null;
  const yd = ctx.denseOut(residual ? 1 : 0);
  // subgroup sums (norm-subgroup.ts) where the adapter has them and the rows are many (prefill,
  // training), else the tree kernel below: decode keeps the tree's summation order, whose rounding
  // the 8-bit activations of the quantized GEMV follow as the wasm backend's do
  const sgOn = normSubgroups(ctx) && rows >= NORM_SG_TUNING.minRows;
  const L = sgOn ? Math.min(rowLanes(d), NORM_SG_TUNING.lanes) : rowLanes(d);
  // threads a workgroup: the subgroup kernel's choice (at least one row), else WG
  const wgSize = sgOn ? Math.max(L, NORM_SG_TUNING.wg) : WG;
  const E = Math.ceil(d / L);
  const sg: SgNorm | null = sgOn
    ? { kind, L, E: E <= NORM_SG_TUNING.regMax ? E : 0, minSg: subgroupMinSize(ctx), residual: !!rd, reload: !!sd && sd.dtype !== 'f32', hasW: !!wd, hasB: !!bd }
    : null;
  const key = `norm ${kind} ${xd.dtype}>${yd.dtype} w${wd?.dtype ?? '-'} b${bd?.dtype ?? '-'} l${L}${rd ? ` +${rd.dtype}>${sd!.dtype}` : ''}${sg ? ` sg${sg.E}/${sg.minSg} w${wgSize}` : ''}${ds ? ` dsum${ds.S}${ds.bias ? 'b' : ''}` : ''}`;
  const kern = ctx.kernel(key, () => {
    let bi = 3;
    const wb = wd ? bi++ : 0;
    const bb = bd ? bi++ : 0;
    const rb = rd ? bi++ : 0;
    const sb = rd ? bi++ : 0;
    const db = ds?.bias ? bi++ : 0;
    const yb = ds ? bi++ : 0;
    // with a residual the row is read back from s (as stored: rounded to s's dtype)
    const src = rd ? 'sum' : 'x';
    const xb = rd ? 'sb' : 'xb';
    const scale = kind === 'layer'
      ? `var v = (ldf_${src}(${xb} + j) - mean) * inv; ${wd ? 'v = v * ldf_w(P[5] + j);' : ''} ${bd ? 'v = v + ldf_bias(P[6] + j);' : ''}`
      : `var v = ldf_${src}(${xb} + j) * inv; ${wd ? 'v = v * (bitcast<f32>(P[8]) + ldf_w(P[5] + j));' : ''}`;
    return `${sg ? SG_ENABLE : ''}${PRELUDE}${MATH}
@group(0) @binding(0) var<storage, read> P: array<u32>;
${inBinding(1, 'x')}
${outBinding(2, 'y', yd.dtype)}
${wd ? inBinding(wb, 'w') : ''}
${bd ? inBinding(bb, 'bias') : ''}
${rd ? `${ds ? deferredLoader(ds, rb, db, yb) : inBinding(rb, 'r')}\n${outBinding(sb, 'sum', sd!.dtype)}` : ''}
${loaders('x', xd.dtype)}
${storers('y', yd.dtype)}
${wd ? loaders('w', wd.dtype) : ''}
${bd ? loaders('bias', bd.dtype) : ''}
${rd ? `${ds ? '' : loaders('r', rd.dtype)}\n${loaders('sum', sd!.dtype, sd!.dtype !== 'f32')}\n${storers('sum', sd!.dtype)}` : ''}
${sg ? sgNormMain(sg, wgSize, BUILTINS, WG_INDEX) : `var<workgroup> red: array<f32, ${WG}>;
@compute @workgroup_size(${WG})
fn main(${BUILTINS}) {
  ${WG_INDEX}
  ${rowsOf(L, 'P[1]')}
  // Rows past the end take no elements but still meet every barrier.
  let d = select(0u, P[0], live);
  let xb = P[2] + row * P[0];
  let yb = P[3] + row * P[0];
  let eps = bitcast<f32>(P[4]);
  ${rd ? `let sb = P[10] + row * P[0];
  let rrb = P[9] + row * P[0];
  // each lane reads back only the elements it stored
  for (var j = lane; j < d; j += ${L}u) { stf_sum(sb + j, ldf_x(xb + j) + ldf_r(rrb + j)); }` : ''}
  ${kind === 'layer' ? `
  var s = 0.0;
  for (var j = lane; j < d; j += ${L}u) { s = s + ldf_${src}(${xb} + j); }
  red[li] = s;
  ${treeSum('red', L)}
  let mean = red[seg] / f32(d);
  workgroupBarrier();
  var q = 0.0;
  for (var j = lane; j < d; j += ${L}u) { let c = ldf_${src}(${xb} + j) - mean; q = q + c * c; }
  red[li] = q;
  ${treeSum('red', L)}
  let inv = 1.0 / sqrt_safe(red[seg] / f32(d) + eps);` : `
  var q = 0.0;
  for (var j = lane; j < d; j += ${L}u) { let c = ldf_${src}(${xb} + j); q = q + c * c; }
  red[li] = q;
  ${treeSum('red', L)}
  let inv = 1.0 / sqrt_safe(red[seg] / f32(d) + eps);`}
  for (var j = lane; j < d; j += ${L}u) {
    ${scale}
    stf_y(yb + j, v);
  }
}`}`;
  });
  const bufs = [xd.gpu, yd.gpu];
  if (wd) bufs.push(wd.gpu);
  if (bd) bufs.push(bd.gpu);
  if (rd) bufs.push(rd.gpu, sd!.gpu);
  if (ds?.bias) bufs.push(ds.bias.gpu);
  if (ds) bufs.push(ds.y.gpu);
  const p = new Params().u32(d, rows, xd.offset, yd.offset).f32(eps).u32(wd?.offset ?? 0, bd?.offset ?? 0, 0).f32(offset)
    .u32(rd?.offset ?? 0, sd?.offset ?? 0);
  if (ds) p.u32(ds.MN, ds.boff, ds.N, ds.yoff);
  ctx.run(kern, bufs, p, [cdiv(rows, wgSize / L)]);
}

/**
 * WGSL of b's loader when b is a deferred split sum: the S partials added in the order splitSum
 * adds them, then the bias (P[11] = MN, P[12] the bias offset, P[13] = N), so the value is the
 * one the sum would have stored; the loader also stores it into b's own buffer (at P[14]), so b
 * holds its sum after this dispatch (each element is loaded once, by one lane).
 */
function deferredLoader(ds: DeferredSum, rb: number, db: number, yb: number): string {
  const terms = Array.from({ length: ds.S }, (_, i) => `r[${i === 0 ? 'e' : `${i}u * P[11] + e`}]`).join(' + ');
  return `@group(0) @binding(${rb}) var<storage, read> r: array<f32>;
${ds.bias ? `@group(0) @binding(${db}) var<storage, read> rbias: array<f32>;` : ''}
@group(0) @binding(${yb}) var<storage, read_write> ry: array<f32>;
fn ldf_r(e: u32) -> f32 { let s = ${terms}; let v = ${ds.bias ? 's + rbias[P[12] + e % P[13]]' : 's'}; ry[P[14] + e] = v; return v; }`;
}

export function rope(ctx: OpContext<Op<'rope'>>): void {
  const { mode, rotaryDim: r } = ctx.op;
  const x = ctx.inputs[0]!;
  if (x.shape.length !== 4) ctx.fail('x must be [b, t, h, d]');
  const [B, T, H, D] = x.shape as [number, number, number, number];
  if (!Number.isInteger(r) || r < 0 || r % 2 !== 0 || r > D) ctx.fail(`rotaryDim ${r} must be even and <= d=${D}`);
  if (mode !== 'half' && mode !== 'interleaved') ctx.fail(`unknown mode '${mode}'`);
  const n = B * T * H * D;
  if (n === 0) return;
  const xd = ctx.dense(0);
  const pd = ctx.dense(1);
  const fd = ctx.dense(2);
  const yd = ctx.denseOut(0);
  const kern = ctx.kernel(`rope ${mode} ${xd.dtype}>${yd.dtype} ${pd.dtype} ${fd.dtype}`, () => `${PRELUDE}${MATH}
@group(0) @binding(0) var<storage, read> P: array<u32>;
${inBinding(1, 'x')}
${inBinding(2, 'pos')}
${inBinding(3, 'fr')}
${outBinding(4, 'y', yd.dtype)}
${loaders('x', xd.dtype)}
${loaders('pos', pd.dtype)}
${loaders('fr', fd.dtype)}
${storers('y', yd.dtype)}
@compute @workgroup_size(${WG})
fn main(${BUILTINS}) {
  ${WG_INDEX}
  let e = wg * ${WG}u + li;
  let n = P[0]; let D = P[1]; let HD = P[2]; let r = P[3];
  if (e >= n) { return; }
  let c = e % D;
  let row = e - c;
  if (c >= r) { stf_y(P[5] + e, ldf_x(P[4] + e)); return; }
  let half = r / 2u;
  ${mode === 'half'
    ? 'let i = c % half; let first = c < half; let partner = select(c - half, c + half, first);'
    : 'let i = c / 2u; let first = (c & 1u) == 0u; let partner = c ^ 1u;'}
  let bt = e / HD;
  let ang = angle_pf(ldi_pos(P[6] + bt), ldf_fr(P[7] + i));
  let sc = sincos_acc(ang); let cs = sc.y; let sn = sc.x;
  let me = ldf_x(P[4] + row + c);
  let other = ldf_x(P[4] + row + partner);
  let v = select(me * cs + other * sn, me * cs - other * sn, first);
  stf_y(P[5] + e, v);
}`);
  ctx.run(kern, [xd.gpu, pd.gpu, fd.gpu, yd.gpu], new Params().u32(n, D, H * D, r, xd.offset, yd.offset, pd.offset, fd.offset), [cdiv(n, WG)]);
}

export function gather(ctx: OpContext<Op<'gather'>>): void {
  const table = ctx.inputs[0]!;
  if (table.shape.length === 0) ctx.fail('table needs rank >= 1');
  const rows = table.shape[0]!;
  const rowLen = numel(table.shape.slice(1));
  const nIds = numel(ctx.inputs[1]!.shape);
  const n = nIds * rowLen;
  if (n === 0) return;
  const td = ctx.dense(0);
  const id = ctx.dense(1);
  const yd = ctx.denseOut(0);
  if (td.dtype !== yd.dtype) ctx.fail('output dtype must be the table dtype');
  const kern = ctx.kernel(`gather ${td.dtype} ${id.dtype}`, () => `${PRELUDE}
@group(0) @binding(0) var<storage, read> P: array<u32>;
${inBinding(1, 't')}
${inBinding(2, 'ids')}
${outBinding(3, 'y', yd.dtype)}
${loaders('t', td.dtype)}
${loaders('ids', id.dtype)}
${storers('y', yd.dtype)}
@compute @workgroup_size(${WG})
fn main(${BUILTINS}) {
  ${WG_INDEX}
  let e = wg * ${WG}u + li;
  if (e >= P[0]) { return; }
  let len = P[1];
  let i = e / len; let j = e % len;
  let id = ldi_ids(P[4] + i);
  // Out-of-range ids (rejected by the reference) read as zeros here: a kernel cannot throw.
  var bits = 0u;
  if (id >= 0 && u32(id) < P[2]) { bits = ldb_t(P[3] + u32(id) * len + j); }
  stb_y(P[5] + e, bits);
}`);
  ctx.run(kern, [td.gpu, id.gpu, yd.gpu], new Params().u32(n, rowLen, rows, td.offset, id.offset, yd.offset), [cdiv(n, WG)]);
}

export function scatterAdd(ctx: OpContext<Op<'scatterAdd'>>): void {
  const target = ctx.inputs[0]!;
  if (target.shape.length === 0) ctx.fail('target needs rank >= 1');
  if (ctx.inputs[1]!.shape.length !== 1) ctx.fail('ids must be 1-d');
  const rowLen = numel(target.shape.slice(1));
  const m = ctx.inputs[1]!.shape[0]!;
  const n = numel(target.shape);
  if (n === 0) return;
  const td = ctx.dense(0);
  const id = ctx.dense(1);
  const sd = ctx.dense(2);
  const yd = ctx.denseOut(0);
  const intPath = !isFloatDType(yd.dtype);
  const chunks = intPath ? 1 : scatterChunks(target.shape[0]!, rowLen, m);
  if (chunks >= 2) return scatterAddChunked(ctx, td, id, sd, yd, target.shape[0]!, rowLen, m, chunks);
  const kern = ctx.kernel(`scatterAdd ${td.dtype} ${sd.dtype}>${yd.dtype}`, () => `${PRELUDE}
@group(0) @binding(0) var<storage, read> P: array<u32>;
${inBinding(1, 't')}
${inBinding(2, 'ids')}
${inBinding(3, 's')}
${outBinding(4, 'y', yd.dtype)}
${loaders('t', td.dtype)}
${loaders('ids', id.dtype)}
${loaders('s', sd.dtype)}
${storers('y', yd.dtype)}
@compute @workgroup_size(${WG})
fn main(${BUILTINS}) {
  ${WG_INDEX}
  let e = wg * ${WG}u + li;
  if (e >= P[0]) { return; }
  let len = P[1];
  let r = i32(e / len); let j = e % len;
  var acc = ${intPath ? 'ldi_t' : 'ldf_t'}(P[3] + e);
  for (var i = 0u; i < P[2]; i++) {
    if (ldi_ids(P[4] + i) == r) { acc = acc + ${intPath ? 'ldi_s' : 'ldf_s'}(P[5] + i * len + j); }
  }
  ${intPath ? 'sti_y' : 'stf_y'}(P[6] + e, acc);
}`);
  ctx.run(kern, [td.gpu, id.gpu, sd.gpu, yd.gpu], new Params().u32(n, rowLen, m, td.offset, id.offset, sd.offset, yd.offset), [cdiv(n, WG)]);
}
