// Reductions along one axis: reduce (sum/mean/max/min/argmax/argmin), cumsum, topk, with the
// reference's NaN policy (max/min propagate NaN; arg* and topk rank NaN highest, first wins).
// Rows along the last axis of WG elements or more reduce in one workgroup each; shorter rows and
// other axes one thread per output. Sums and means with few outputs over a long axis (a bias
// gradient: [b·t, n] -> [n]; the norm of a whole tensor) split the axis over many workgroups and
// add the partial sums in a second pass, so the GPU is not left to a few threads.
import type { OpDesc } from '../../../tensor/backend.js';
import { BUILTINS, Params, WG_INDEX, splitAt, numel, type Dense, type OpContext } from './context.js';
import { PRELUDE, cdiv, inBinding, isFloatDType, loaders, outBinding, storers } from '../wgsl.js';

type Op<K extends OpDesc['op']> = Extract<OpDesc, { op: K }>;
const WG = 256;

function normAxis(ctx: OpContext, axis: number, rank: number): number {
  const a = axis < 0 ? axis + rank : axis;
  if (!Number.isInteger(a) || a < 0 || a >= rank) ctx.fail(`axis ${axis} out of range for rank ${rank}`);
  return a;
}

export function reduce(ctx: OpContext<Op<'reduce'>>): void {
  const x = ctx.inputs[0]!;
  const { fn } = ctx.op;
  const axis = normAxis(ctx, ctx.op.axis, x.shape.length);
  const [outer, n, inner] = splitAt(x.shape, axis);
  const y = ctx.outputs[0]!;
  if ((fn === 'argmax' || fn === 'argmin') && y.dtype !== 'i32') ctx.fail(`${fn} writes i32`);
  if (n === 0 && fn !== 'sum' && fn !== 'mean') ctx.fail(`cannot take ${fn} over axis ${axis} of size 0`);
  if (outer * inner === 0) return;
  const xd = ctx.dense(0);
  const yd = ctx.denseOut(0);
  const intPath = !isFloatDType(xd.dtype);
  const splits = !intPath && (fn === 'sum' || fn === 'mean') ? splitCount(outer, n, inner) : 1;
  if (splits > 1) {
    reduceSplit(ctx, xd, yd, outer, n, inner, splits);
    return;
  }
  // A workgroup per row pays off for long rows; a row shorter than the workgroup leaves most of
  // its threads idle at every barrier (on a software driver such as SwiftShader as costly as
  // working), so short rows take one thread each.
  const rowWise = inner === 1 && n >= WG && !intPath;
  const key = `reduce ${fn} ${xd.dtype}>${yd.dtype} ${rowWise ? 'row' : 'seq'}`;
  const k = ctx.kernel(key, () => {
    const T = intPath ? 'i32' : 'f32';
    const ld = intPath ? 'ldi_x' : 'ldf_x';
    const st = intPath ? 'sti_y' : 'stf_y';
    const better = (v: string, best: string) => (intPath
      ? (fn === 'max' || fn === 'argmax' ? `${v} > ${best}` : `${v} < ${best}`)
      : `is_nan(${v}) || ${fn === 'max' || fn === 'argmax' ? `${v} > ${best}` : `${v} < ${best}`}`);
    const head = `${PRELUDE}
@group(0) @binding(0) var<storage, read> P: array<u32>;
${inBinding(1, 'x')}
${outBinding(2, 'y', yd.dtype)}
${loaders('x', xd.dtype)}
${storers('y', yd.dtype)}`;
    if (!rowWise) {
      // P: outer, n, inner, xoff, yoff
      let loop: string;
      let fin: string;
      if (fn === 'sum' || fn === 'mean') {
        loop = `var s: ${T} = ${T}(0); for (var j = 0u; j < n; j++) { s = s + ${ld}(base + j * inner); }`;
        fin = fn === 'sum' ? `${st}(yo, s);` : 'stf_y(yo, s / f32(n));';
      } else {
        const arg = fn === 'argmax' || fn === 'argmin';
        const stop = intPath ? '' : 'if (is_nan(best)) { break; }';
        loop = `var best = ${ld}(base); var at = 0u;
    for (var j = 1u; j < n; j++) { ${stop} let v = ${ld}(base + j * inner); if (${better('v', 'best')}) { best = v; at = j; } }`;
        fin = arg ? 'sti_y(yo, i32(at));' : (intPath ? 'sti_y(yo, best);' : 'stf_y(yo, best);');
      }
      return `${head}
@compute @workgroup_size(${WG})
fn main(${BUILTINS}) {
  ${WG_INDEX}
  let t = wg * ${WG}u + li;
  let outer = P[0]; let n = P[1]; let inner = P[2];
  if (t >= outer * inner) { return; }
  let o = t / inner; let i = t % inner;
  let base = P[3] + o * n * inner + i;
  let yo = P[4] + t;
  ${loop}
  ${fin}
}`;
    }
    // One workgroup per row: strided partials, then a tree in shared memory.
    const arg = fn === 'argmax' || fn === 'argmin';
    const sum = fn === 'sum' || fn === 'mean';
    const cmp = fn === 'max' || fn === 'argmax' ? '>' : '<';
    return `${head}
var<workgroup> sv: array<f32, ${WG}>;
var<workgroup> si: array<u32, ${WG}>;
fn take(v: f32, vi: u32, best: f32, bi: u32) -> bool {
  if (is_nan(best)) { return is_nan(v) && vi < bi; }
  if (is_nan(v)) { return true; }
  return v ${cmp} best || (v == best && vi < bi);
}
@compute @workgroup_size(${WG})
fn main(${BUILTINS}) {
  ${WG_INDEX}
  let row = wg;
  let n = P[1];
  if (row >= P[0]) { return; }
  let base = P[3] + row * n;
  ${sum ? `var s = 0.0; for (var j = li; j < n; j += ${WG}u) { s = s + ldf_x(base + j); } sv[li] = s;`
    : `var best = ldf_x(base + min(li, n - 1u)); var bi = min(li, n - 1u);
  for (var j = li + ${WG}u; j < n; j += ${WG}u) { let v = ldf_x(base + j); if (take(v, j, best, bi)) { best = v; bi = j; } }
  sv[li] = best; si[li] = bi;`}
  workgroupBarrier();
  for (var w = ${WG / 2}u; w > 0u; w = w >> 1u) {
    if (li < w) {
      ${sum ? 'sv[li] = sv[li] + sv[li + w];' : 'if (take(sv[li + w], si[li + w], sv[li], si[li])) { sv[li] = sv[li + w]; si[li] = si[li + w]; }'}
    }
    workgroupBarrier();
  }
  if (li == 0u) {
    ${sum ? (fn === 'sum' ? 'stf_y(P[4] + row, sv[0]);' : 'stf_y(P[4] + row, sv[0] / f32(n));') : arg ? 'sti_y(P[4] + row, i32(si[0]));' : 'stf_y(P[4] + row, sv[0]);'}
  }
}`;
  });
  const p = new Params().u32(outer, n, inner, xd.offset, yd.offset);
  ctx.run(k, [xd.gpu, yd.gpu], p, [rowWise ? outer : cdiv(outer * inner, WG)]);
}

/** Rows of the axis one workgroup of the split reduction adds: per column (inner > 1), or per row (inner = 1). */
const SPLIT_ROWS_COLS = 128;
const SPLIT_ROWS_ROW = 4096;
/** Columns per workgroup of the split reduction when inner > 1 (its WG / SPLIT_COLS lanes each take every lane-th row). */
const SPLIT_COLS = 64;

/**
 * Parts the reduced axis is split into (1: not split). Split where the plain kernels would keep
 * few threads busy: fewer than 16k outputs over an axis long enough to give each part its share.
 */
function splitCount(outer: number, n: number, inner: number): number {
  if (inner === 1) return outer < 128 && n >= 2 * SPLIT_ROWS_ROW ? Math.min(256, Math.ceil(n / SPLIT_ROWS_ROW)) : 1;
  return outer * inner < 16384 && n >= 2 * SPLIT_ROWS_COLS ? Math.min(1024, Math.ceil(n / SPLIT_ROWS_COLS)) : 1;
}

/** Sum or mean of [outer, n, inner] over n in two passes: partial sums of `splits` parts of n into a temporary, then their sum. */
function reduceSplit(ctx: OpContext<Op<'reduce'>>, xd: Dense, yd: Dense, outer: number, n: number, inner: number, splits: number): void {
  const cols = inner === 1 ? 1 : SPLIT_COLS;
  const lanes = WG / cols;
  const chunk = Math.ceil(n / splits);
  const tiles = Math.ceil(inner / cols);
  const part = ctx.temp(outer * splits * inner * 4); // f32 [outer, splits, inner]
  const k1 = ctx.kernel(`reduce split ${xd.dtype} c${cols}`, () => `${PRELUDE}
@group(0) @binding(0) var<storage, read> P: array<u32>;
${inBinding(1, 'x')}
${outBinding(2, 'part', 'f32')}
${loaders('x', xd.dtype)}
${storers('part', 'f32')}
var<workgroup> sv: array<f32, ${WG}>;
@compute @workgroup_size(${WG})
fn main(${BUILTINS}) {
  ${WG_INDEX}
  // P: outer, n, inner, xoff, splits, chunk, tiles
  let n = P[1]; let inner = P[2]; let splits = P[4]; let tiles = P[6];
  let valid = wg < P[0] * splits * tiles;
  let tile = wg % tiles; let s = (wg / tiles) % splits; let o = wg / (tiles * splits);
  let col = tile * ${cols}u + li % ${cols}u; let lane = li / ${cols}u;
  let j1 = min(s * P[5] + P[5], n);
  var acc = 0.0;
  if (valid && col < inner) {
    for (var j = s * P[5] + lane; j < j1; j += ${lanes}u) { acc = acc + ldf_x(P[3] + (o * n + j) * inner + col); }
  }
  sv[li] = acc;
  workgroupBarrier();
  for (var w = ${lanes / 2}u; w > 0u; w = w >> 1u) {
    if (lane < w) { sv[li] = sv[li] + sv[li + w * ${cols}u]; }
    workgroupBarrier();
  }
  if (valid && lane == 0u && col < inner) { stf_part((o * splits + s) * inner + col, sv[li]); }
}`);
  ctx.run(k1, [xd.gpu, part.gpu], new Params().u32(outer, n, inner, xd.offset, splits, chunk, tiles), [outer * splits * tiles]);
  const k2 = ctx.kernel(`reduce split sum f32>${yd.dtype}`, () => `${PRELUDE}
@group(0) @binding(0) var<storage, read> P: array<u32>;
${inBinding(1, 'part')}
${outBinding(2, 'y', yd.dtype)}
${loaders('part', 'f32')}
${storers('y', yd.dtype)}
@compute @workgroup_size(${WG})
fn main(${BUILTINS}) {
  ${WG_INDEX}
  // P: outer, splits, inner, yoff, divisor (f32)
  let t = wg * ${WG}u + li;
  let splits = P[1]; let inner = P[2];
  if (t >= P[0] * inner) { return; }
  let o = t / inner; let i = t % inner;
  var s = 0.0;
  for (var k = 0u; k < splits; k++) { s = s + ldf_part((o * splits + k) * inner + i); }
  stf_y(P[3] + t, s / bitcast<f32>(P[4]));
}`);
  ctx.run(k2, [part.gpu, yd.gpu], new Params().u32(outer, splits, inner, yd.offset).f32(ctx.op.fn === 'mean' ? n : 1), [cdiv(outer * inner, WG)]);
}

export function cumsum(ctx: OpContext<Op<'cumsum'>>): void {
  const x = ctx.inputs[0]!;
  const axis = normAxis(ctx, ctx.op.axis, x.shape.length);
  const [outer, n, inner] = splitAt(x.shape, axis);
  if (outer * n * inner === 0) return;
  const xd = ctx.dense(0);
  const yd = ctx.denseOut(0);
  const intPath = !isFloatDType(xd.dtype) && !isFloatDType(yd.dtype);
  const k = ctx.kernel(`cumsum ${xd.dtype}>${yd.dtype}`, () => `${PRELUDE}
@group(0) @binding(0) var<storage, read> P: array<u32>;
${inBinding(1, 'x')}
${outBinding(2, 'y', yd.dtype)}
${loaders('x', xd.dtype)}
${storers('y', yd.dtype)}
@compute @workgroup_size(${WG})
fn main(${BUILTINS}) {
  ${WG_INDEX}
  let t = wg * ${WG}u + li;
  let outer = P[0]; let n = P[1]; let inner = P[2];
  if (t >= outer * inner) { return; }
  let o = t / inner; let i = t % inner;
  let at = o * n * inner + i;
  var s = ${intPath ? '0' : '0.0'};
  for (var j = 0u; j < n; j++) {
    s = s + ${intPath ? 'ldi_x' : 'ldf_x'}(P[3] + at + j * inner);
    ${intPath ? 'sti_y' : 'stf_y'}(P[4] + at + j * inner, s);
  }
}`);
  ctx.run(k, [xd.gpu, yd.gpu], new Params().u32(outer, n, inner, xd.offset, yd.offset), [cdiv(outer * inner, WG)]);
}

export function topk(ctx: OpContext<Op<'topk'>>): void {
  const x = ctx.inputs[0]!;
  const { k } = ctx.op;
  const n = x.shape[x.shape.length - 1]!;
  if (!Number.isInteger(k) || k < 0 || k > n) ctx.fail(`k=${k} must be an integer in [0, ${n}]`);
  if (ctx.outputs[1]!.dtype !== 'i32') ctx.fail('indices must be i32');
  const rows = n === 0 ? 0 : numel(x.shape) / n;
  if (rows === 0 || k === 0) return;
  const xd = ctx.dense(0);
  const vd = ctx.denseOut(0);
  const id = ctx.denseOut(1);
  // One thread per element: its rank among its row (NaN above all, ties by index); rank < k writes.
  const kern = ctx.kernel(`topk ${xd.dtype}>${vd.dtype}`, () => `${PRELUDE}
@group(0) @binding(0) var<storage, read> P: array<u32>;
${inBinding(1, 'x')}
${outBinding(2, 'v', vd.dtype)}
${outBinding(3, 'ix', 'i32')}
${loaders('x', xd.dtype)}
${storers('v', vd.dtype)}
${storers('ix', 'i32')}
fn above(a: f32, ai: u32, b: f32, bi: u32) -> bool {
  let an = is_nan(a); let bn = is_nan(b);
  if (an != bn) { return an; }
  if (!an && a != b) { return a > b; }
  return ai < bi;
}
@compute @workgroup_size(${WG})
fn main(${BUILTINS}) {
  ${WG_INDEX}
  let t = wg * ${WG}u + li;
  let rows = P[0]; let n = P[1]; let k = P[2];
  if (t >= rows * n) { return; }
  let r = t / n; let i = t % n;
  let base = P[3] + r * n;
  let v = ldf_x(base + i);
  var rank = 0u;
  for (var j = 0u; j < n; j++) { if (j != i && above(ldf_x(base + j), j, v, i)) { rank++; if (rank >= k) { break; } } }
  if (rank < k) {
    stb_v(P[4] + r * k + rank, ldb_x(base + i));
    sti_ix(P[5] + r * k + rank, i32(i));
  }
}`);
  if (xd.dtype !== vd.dtype) ctx.fail('values must have the input dtype');
  if (n >= SELECT_MIN_N && k <= SELECT_MAX_K) {
    topkSelect(ctx, rows, n, k, xd, vd, id);
    return;
  }
  ctx.run(kern, [xd.gpu, vd.gpu, id.gpu], new Params().u32(rows, n, k, xd.offset, vd.offset, id.offset), [cdiv(rows * n, WG)]);
}

/** Rows at least this long take the radix-select kernel (the rank kernel reads O(n·k) per row element). */
const SELECT_MIN_N = 512;
/** Largest k the radix-select kernel ranks in workgroup memory. */
const SELECT_MAX_K = 1024;

/**
 * Top-k of long rows, one workgroup per row: a radix select over order-preserving u32 keys (NaN
 * highest, -0 = +0; four passes of an 8-bit histogram) finds the k-th largest key K and how many
 * entries equal to K to take; a pass in index order collects the entries above K and the first of
 * those equal to K (ties keep the lower index); each collected entry's rank among them gives its
 * output slot. The same result as the rank kernel, in O(n) reads per row instead of O(n·k).
 */
function topkSelect(
  ctx: OpContext<Op<'topk'>>, rows: number, n: number, k: number,
  xd: ReturnType<OpContext['dense']>, vd: ReturnType<OpContext['denseOut']>, id: ReturnType<OpContext['denseOut']>,
): void {
  const kern = ctx.kernel(`topk-select ${xd.dtype}>${vd.dtype}`, () => `${PRELUDE}
@group(0) @binding(0) var<storage, read> P: array<u32>;
${inBinding(1, 'x')}
${outBinding(2, 'v', vd.dtype)}
${outBinding(3, 'ix', 'i32')}
${loaders('x', xd.dtype)}
${storers('v', vd.dtype)}
${storers('ix', 'i32')}
var<workgroup> hist: array<atomic<u32>, 256>;
var<workgroup> scan: array<u32, ${WG}>;
var<workgroup> state: array<u32, 4>; // prefix, mask, still to take at the k-th key, equal keys seen
var<workgroup> count: atomic<u32>;
var<workgroup> candKey: array<u32, ${SELECT_MAX_K}>;
var<workgroup> candIdx: array<u32, ${SELECT_MAX_K}>;
fn key_of(v: f32) -> u32 {
  if (is_nan(v)) { return 0xffffffffu; }
  let b = select(bitcast<u32>(v), 0u, v == 0.0);
  return select(b | 0x80000000u, ~b, (b & 0x80000000u) != 0u);
}
@compute @workgroup_size(${WG})
fn main(${BUILTINS}) {
  ${WG_INDEX}
  let r = wg;
  let n = P[1]; let k = P[2];
  if (r >= P[0]) { return; }
  let base = P[3] + r * n;
  if (li == 0u) { state[0] = 0u; state[1] = 0u; state[2] = k; state[3] = 0u; atomicStore(&count, 0u); }
  for (var round = 0u; round < 4u; round++) {
    let shift = 24u - 8u * round;
    atomicStore(&hist[li], 0u);
    workgroupBarrier();
    let prefix = state[0]; let mask = state[1];
    for (var i = li; i < n; i += ${WG}u) {
      let kk = key_of(ldf_x(base + i));
      if ((kk & mask) == prefix) { atomicAdd(&hist[(kk >> shift) & 255u], 1u); }
    }
    workgroupBarrier();
    if (li == 0u) {
      var want = state[2];
      var b = 256u;
      loop {
        b--;
        let h = atomicLoad(&hist[b]);
        if (h >= want || b == 0u) { break; }
        want -= h;
      }
      state[0] = prefix | (b << shift); state[1] = mask | (255u << shift); state[2] = want;
    }
    workgroupBarrier();
  }
  let K = state[0]; let take = state[2];
  // Index order: every entry above K, and the first \`take\` entries equal to K.
  for (var c = 0u; c < n; c += ${WG}u) {
    let i = c + li;
    var kk = 0u;
    if (i < n) { kk = key_of(ldf_x(base + i)); }
    let eq = select(0u, 1u, i < n && kk == K);
    scan[li] = eq;
    workgroupBarrier();
    for (var off = 1u; off < ${WG}u; off <<= 1u) {
      var part = 0u;
      if (li >= off) { part = scan[li - off]; }
      workgroupBarrier();
      scan[li] += part;
      workgroupBarrier();
    }
    let seen = state[3];
    let before = seen + scan[li] - eq;
    if (i < n && (kk > K || (eq == 1u && before < take))) {
      let slot = atomicAdd(&count, 1u);
      candKey[slot] = kk; candIdx[slot] = i;
    }
    workgroupBarrier();
    if (li == ${WG - 1}u) { state[3] = seen + scan[li]; }
    workgroupBarrier();
  }
  for (var j = li; j < k; j += ${WG}u) {
    let kj = candKey[j]; let ij = candIdx[j];
    var rank = 0u;
    for (var t = 0u; t < k; t++) {
      let kt = candKey[t];
      if (kt > kj || (kt == kj && candIdx[t] < ij)) { rank++; }
    }
    stb_v(P[4] + r * k + rank, ldb_x(base + ij));
    sti_ix(P[5] + r * k + rank, i32(ij));
  }
}`);
  ctx.run(kern, [xd.gpu, vd.gpu, id.gpu], new Params().u32(rows, n, k, xd.offset, vd.offset, id.offset), [rows]);
}
