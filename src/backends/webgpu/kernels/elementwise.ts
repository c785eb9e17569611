// Elementwise kernels on strided views of any dtype: copy (and cast), fill, unary, binary, where,
// and the fused one-pass ops random, dropout, adamw and geluBackward.
// One thread per output element (a copy of 32-bit views: four, where the layout allows); each
// operand's element offset comes from the output index, the (collapsed) shape and that operand's
// strides, so broadcasts (stride 0), transposes and slices need no copy. Integer dtypes compute
// in i32, floats in f32.
import { contiguousStrides } from '../../../tensor/shape.js';
import { viewIsContiguous } from '../../../tensor/backend.js';
import type { BinaryFn, OpDesc, UnaryFn, View } from '../../../tensor/backend.js';
import { f32ToBf16Bits, f32ToF16Bits, roundToFloat, toIntDType, type DType } from '../../../tensor/dtype.js';
import { BUILTINS, Params, WG_INDEX, numel, type OpContext } from './context.js';
import { randomKey, WGSL_RANDOM } from '../../../tensor/random-hash.js';
import { MATH, PRELUDE, bitsOf, cdiv, inBinding, isFloatDType, loaders, outBinding, storers } from '../wgsl.js';
import { envVar } from '../../../io/env.js';

type Op<K extends OpDesc['op']> = Extract<OpDesc, { op: K }>;

const WG = 256;

/** Merges dims that are contiguous in every operand and drops size-1 dims. */
export function collapse(shape: readonly number[], strides: readonly (readonly number[])[]): { shape: number[]; strides: number[][] } {
  const dims: number[] = [];
  for (let d = 0; d < shape.length; d++) if (shape[d] !== 1) dims.push(d);
  const outShape: number[] = [];
  const outStrides: number[][] = strides.map(() => []);
  for (const d of dims) {
    const last = outShape.length - 1;
    if (last >= 0 && strides.every((s, k) => outStrides[k]![last] === s[d]! * shape[d]!)) {
      outShape[last]! *= shape[d]!;
      strides.forEach((s, k) => { outStrides[k]![last] = s[d]!; });
    } else {
      outShape.push(shape[d]!);
      strides.forEach((s, k) => outStrides[k]!.push(s[d]!));
    }
  }
  return { shape: outShape, strides: outStrides };
}

interface Operand { name: string; view: View; out?: boolean }

/**
 * Builds and runs an elementwise kernel over the output's shape. `body` sees `e_<name>` (u32 element
 * offset of each operand) and the load/store functions of wgsl.ts.
 */
function elementwise(ctx: OpContext, key: string, operands: Operand[], body: string, params: Params = new Params(), extra = ''): void {
  const shape = operands.find((o) => o.out)!.view.shape;
  const n = numel(shape);
  if (n === 0) return;
  const c = collapse(shape, operands.map((o) => o.view.strides));
  const R = c.shape.length;
  const base = params.length;
  // words: extra params..., n, shape[R], then per operand: offset, strides[R]
  const p = params.u32(n, ...c.shape);
  operands.forEach((o, k) => p.i32(o.view.offset, ...c.strides[k]!));
  const dtypes = operands.map((o) => `${o.name}:${o.view.dtype}${o.out ? 'o' : ''}`).join(',');
  const k = ctx.kernel(`ew ${key} R${R} ${dtypes} b${base}`, () => {
    const decls = operands.map((o, i) => (o.out ? outBinding(i + 1, o.name, o.view.dtype) : inBinding(i + 1, o.name))).join('\n');
    const fns = operands.map((o) => (o.out ? storers(o.name, o.view.dtype) + loaders(o.name, o.view.dtype, o.view.dtype !== 'f32' && o.view.dtype !== 'i32') : loaders(o.name, o.view.dtype))).join('\n');
    const idx: string[] = ['var rem = i;'];
    for (let d = R - 1; d >= 0; d--) {
      if (d > 0) idx.push(`let c${d} = i32(rem % P[${base + 1 + d}]); rem = rem / P[${base + 1 + d}];`);
      else idx.push('let c0 = i32(rem);');
    }
    operands.forEach((o, kk) => {
      const at = base + 1 + R + kk * (R + 1);
      const terms = [`bitcast<i32>(P[${at}])`];
      for (let d = 0; d < R; d++) terms.push(`c${d} * bitcast<i32>(P[${at + 1 + d}])`);
      idx.push(`let e_${o.name} = u32(${terms.join(' + ')});`);
    });
    return `${PRELUDE}${MATH}${extra}
@group(0) @binding(0) var<storage, read> P: array<u32>;
${decls}
${fns}
@compute @workgroup_size(${WG})
fn main(${BUILTINS}) {
  ${WG_INDEX}
  let i = wg * ${WG}u + li;
  if (i >= P[${base}]) { return; }
  ${idx.join('\n  ')}
  ${body}
}`;
  });
  const buffers = operands.map((o) => ctx.buffer(o.view));
  ctx.run(k, buffers, p, [cdiv(n, WG)]);
}

const isInt = (d: DType) => !isFloatDType(d);

export function copy(ctx: OpContext<Op<'copy'>>): void {
  const [x] = ctx.inputs;
  const [y] = ctx.outputs;
  if (!x || !y || ctx.inputs.length !== 1 || ctx.outputs.length !== 1) ctx.fail('copy takes one input and one output');
  if (numel(x.shape) !== numel(y.shape)) ctx.fail('input and output sizes differ');
  // Same element count, possibly different shapes: give the input the output's shape when it is
  // contiguous; otherwise shapes must match.
  let xv: View = x;
  if (x.shape.join() !== y.shape.join()) {
    if (!isRowMajor(x)) ctx.fail('a reshaping copy needs a contiguous input');
    xv = { ...x, shape: y.shape, strides: rowMajor(y.shape) };
  }
  if (x.dtype === y.dtype && copyVec4(ctx, xv, y)) return;
  const body = x.dtype === y.dtype ? 'stb_y(e_y, ldb_x(e_x));'
    : isInt(x.dtype) && isInt(y.dtype) ? 'sti_y(e_y, ldi_x(e_x));'
      : 'stf_y(e_y, ldf_x(e_x));';
  elementwise(ctx, `copy`, [{ name: 'x', view: xv }, { name: 'y', view: y, out: true }], body);
}

let vec4Copy = envVar('ACTLAB_WEBGPU_COPY_V4') !== '0';
/** Turns the 16-byte copy of 32-bit views on or off (one element a thread instead); ACTLAB_WEBGPU_COPY_V4=0 starts it off. */
export function setCopyVec4(on: boolean): void {
  vec4Copy = on;
}

/**
 * A copy of 32-bit elements four at a time (16-byte loads and stores, a quarter of the index
 * arithmetic: a head transpose [b, h, t, d] -> [b, t, h, d] is bound by it), where the collapsed
 * views' last dim is contiguous in both, a multiple of 4, and every offset and stride is too.
 * False (nothing run) where they are not.
 */
function copyVec4(ctx: OpContext, x: View, y: View): boolean {
  if (!vec4Copy || bitsOf(x.dtype) !== 32) return false;
  const c = collapse(y.shape, [x.strides, y.strides]);
  const R = c.shape.length;
  const n = numel(y.shape);
  if (R === 0 || n === 0) return false;
  const [xs, ys] = c.strides as [number[], number[]];
  if (xs[R - 1] !== 1 || ys[R - 1] !== 1 || c.shape[R - 1]! % 4 !== 0 || x.offset % 4 !== 0 || y.offset % 4 !== 0) return false;
  if (xs.some((v, d) => d < R - 1 && v % 4 !== 0) || ys.some((v, d) => d < R - 1 && v % 4 !== 0)) return false;
  // in units of 4 elements
  const shape4 = c.shape.map((v, d) => (d === R - 1 ? v / 4 : v));
  const st4 = (st: number[]) => st.map((v, d) => (d === R - 1 ? 1 : v / 4));
  const p = new Params().u32(n / 4, ...shape4).i32(x.offset / 4, ...st4(xs)).i32(y.offset / 4, ...st4(ys));
  const k = ctx.kernel(`ew copy4 R${R}`, () => {
    const idx: string[] = ['var rem = i;'];
    for (let d = R - 1; d > 0; d--) idx.push(`let c${d} = i32(rem % P[${1 + d}]); rem = rem / P[${1 + d}];`);
    idx.push('let c0 = i32(rem);');
    const at = (k: number) => {
      const b = 1 + R + k * (R + 1);
      return `u32(${[`bitcast<i32>(P[${b}])`, ...Array.from({ length: R }, (_, d) => `c${d} * bitcast<i32>(P[${b + 1 + d}])`)].join(' + ')})`;
    };
    return `@group(0) @binding(0) var<storage, read> P: array<u32>;
@group(0) @binding(1) var<storage, read> x: array<vec4<u32>>;
@group(0) @binding(2) var<storage, read_write> y: array<vec4<u32>>;
@compute @workgroup_size(${WG})
fn main(${BUILTINS}) {
  ${WG_INDEX}
  let i = wg * ${WG}u + li;
  if (i >= P[0]) { return; }
  ${idx.join('\n  ')}
  y[${at(1)}] = x[${at(0)}];
}`;
  });
  ctx.run(k, [ctx.buffer(x), ctx.buffer(y)], p, [cdiv(n / 4, WG)]);
  return true;
}

/** Row-major strides of `shape`. */
export const rowMajor = contiguousStrides;

/** Row-major contiguous from its offset (the contract's definition). */
export const isRowMajor = viewIsContiguous;

/** Raw bits of `value` stored as dtype `d`. */
export function valueBits(value: number, d: DType): number {
  switch (d) {
    case 'f32': { const f = new Float32Array([value]); return new Uint32Array(f.buffer)[0]!; }
    case 'f16': return f32ToF16Bits(value);
    case 'bf16': return f32ToBf16Bits(value);
    case 'i32': return toIntDType(value, 'i32') >>> 0;
    case 'i8': return toIntDType(value, 'i8') & 0xff;
    case 'u8': return toIntDType(value, 'u8');
    case 'i4': return toIntDType(value, 'i4') & 0xf;
    case 'u4': return toIntDType(value, 'u4');
  }
}

export function fill(ctx: OpContext<Op<'fill'>>): void {
  const [y] = ctx.outputs;
  if (!y || ctx.inputs.length !== 0) ctx.fail('fill takes no input and one output');
  const p = new Params().u32(valueBits(ctx.op.value, y.dtype));
  elementwise(ctx, 'fill', [{ name: 'y', view: y, out: true }], 'stb_y(e_y, P[0]);', p);
}

/** Uniform [0, 1) numbers from the counter-based hash of src/tensor/random-hash.ts (the key is a parameter, so one kernel serves every seed). */
export function random(ctx: OpContext<Op<'random'>>): void {
  const [y] = ctx.outputs;
  if (!y || ctx.inputs.length !== 0) ctx.fail('random takes no input and one output');
  if (y.dtype !== 'f32') ctx.fail(`random writes f32, got ${y.dtype}`);
  const p = new Params().u32(randomKey(ctx.op.seed));
  elementwise(ctx, 'random', [{ name: 'y', view: y, out: true }], 'stf_y(e_y, rand_uniform(i, P[0]));', p, WGSL_RANDOM);
}

/**
 * Inverted dropout in one pass: element i kept where `rand_uniform(i, key)` >= p (the `random` op's
 * number, p as an f32) and scaled by 1/(1-p) rounded to x's dtype (the reference's values), else 0.
 */
export function dropout(ctx: OpContext<Op<'dropout'>>): void {
  const [x] = ctx.inputs;
  const [y] = ctx.outputs;
  if (!x || !y || ctx.inputs.length !== 1 || ctx.outputs.length !== 1) ctx.fail('dropout takes x and gives y');
  if (!isFloatDType(x.dtype) || y.dtype !== x.dtype) ctx.fail(`dropout works on one float dtype, got ${x.dtype} -> ${y.dtype}`);
  if (x.shape.join() !== y.shape.join()) ctx.fail('dropout: x and y must share one shape');
  const { p, seed } = ctx.op;
  if (!(p >= 0 && p < 1)) ctx.fail(`p must lie in [0, 1), got ${p}`);
  const prm = new Params().u32(randomKey(seed)).f32(p, roundToFloat(1 / (1 - p), x.dtype as 'f32' | 'f16' | 'bf16'));
  const body = 'stf_y(e_y, select(0.0, ldf_x(e_x) * bitcast<f32>(P[2]), rand_uniform(i, P[0]) >= bitcast<f32>(P[1])));';
  elementwise(ctx, 'dropout', [{ name: 'x', view: x }, { name: 'y', view: y, out: true }], body, prm, WGSL_RANDOM);
}

/** A fused AdamW update: four f32 inputs (p, g, m, v), three f32 outputs (p', m', v'), one pass. */
export function adamw(ctx: OpContext<Op<'adamw'>>): void {
  const [p, g, m, v] = ctx.inputs;
  const [po, mo, vo] = ctx.outputs;
  if (!p || !g || !m || !v || !po || !mo || !vo || ctx.inputs.length !== 4 || ctx.outputs.length !== 3) ctx.fail('adamw takes p, g, m, v and gives p, m, v');
  for (const x of [...ctx.inputs, ...ctx.outputs]) {
    if (x.dtype !== 'f32') ctx.fail(`adamw works on f32, got ${x.dtype}`);
    if (x.shape.join() !== p.shape.join()) ctx.fail('adamw operands must share one shape');
  }
  const { lr, beta1: b1, beta2: b2, eps, weightDecay: wd, step, gradScale } = ctx.op;
  // P[0..6]: b1, 1-b1, b2, 1-b2, 1-lr·wd, lr/(1-b1^t), 1/sqrt(1-b2^t); P[7]: eps; P[8]: gradScale
  const prm = new Params().f32(b1, 1 - b1, b2, 1 - b2, 1 - lr * wd, lr / (1 - b1 ** step), 1 / Math.sqrt(1 - b2 ** step), eps, gradScale);
  const f = (k: number) => `bitcast<f32>(P[${k}])`;
  const body = `let gi = ldf_g(e_g) * ${f(8)};
  let mi = ${f(0)} * ldf_m(e_m) + ${f(1)} * gi;
  let vi = ${f(2)} * ldf_v(e_v) + ${f(3)} * gi * gi;
  stf_mo(e_mo, mi);
  stf_vo(e_vo, vi);
  stf_po(e_po, ldf_p(e_p) * ${f(4)} - ${f(5)} * mi / (sqrt(vi) * ${f(6)} + ${f(7)}));`;
  elementwise(ctx, 'adamw', [
    { name: 'p', view: p }, { name: 'g', view: g }, { name: 'm', view: m }, { name: 'v', view: v },
    { name: 'po', view: po, out: true }, { name: 'mo', view: mo, out: true }, { name: 'vo', view: vo, out: true },
  ], body, prm);
}

/**
 * dx = gelu'(x) · dy in one pass (the reference's formulas: 1 - tanh² and 1 + tanh from e^{-2|u|});
 * past |x| = 1e18 (where x² would overflow) the derivative is its limit, 1 or 0.
 */
export function geluBackward(ctx: OpContext<Op<'geluBackward'>>): void {
  const [x, dy] = ctx.inputs;
  const [dx] = ctx.outputs;
  if (!x || !dy || !dx || ctx.inputs.length !== 2 || ctx.outputs.length !== 1) ctx.fail('geluBackward takes x, dy and gives dx');
  for (const v of [x, dy, dx]) {
    if (!isFloatDType(v.dtype)) ctx.fail(`geluBackward works on float tensors, got ${v.dtype}`);
    if (v.shape.join() !== x.shape.join()) ctx.fail('geluBackward operands must share one shape');
  }
  const d = ctx.op.fn === 'gelu_erf'
    ? `let d = 0.5 * erfc_acc(-x * 0.7071067811865476) + x * exp(-0.5 * x * x) * 0.3989422804014327;`
    : `let u = 0.7978845608028654 * (x + 0.044715 * x * x * x);
  let s = exp(-2.0 * abs(u));
  let one_plus_t = select(2.0 * s, 2.0, u >= 0.0) / (1.0 + s);
  let d = 0.5 * one_plus_t + 0.5 * x * (4.0 * s / ((1.0 + s) * (1.0 + s))) * 0.7978845608028654 * (1.0 + 0.134145 * x * x);`;
  const body = `let x = ldf_x(e_x);
  ${d}
  stf_dx(e_dx, select(d, select(0.0, 1.0, x > 0.0), abs(x) > 1e18) * ldf_dy(e_dy));`;
  elementwise(ctx, `geluBackward ${ctx.op.fn}`, [{ name: 'x', view: x }, { name: 'dy', view: dy }, { name: 'dx', view: dx, out: true }], body);
}

/**
 * How gelu_tanh is written: 'sigmoid' (the default) as x·σ(2u) = x / (1 + e^{-2u}), the same
 * function as 0.5·x·(1 + tanh u) with one exp, one division and no branch, and without the
 * cancellation of 1 + tanh u for x < 0 (MATH's gelu_tanh_acc); 'tanh' the older tanh_acc form
 * (ACTLAB_WEBGPU_GELU=tanh), kept for comparisons. Read once: kernels are cached by op name.
 */
const geluTanhForm: 'sigmoid' | 'tanh' = envVar('ACTLAB_WEBGPU_GELU') === 'tanh' ? 'tanh' : 'sigmoid';

export function unaryExpr(fn: UnaryFn): string {
  switch (fn) {
    case 'neg': return '-x';
    case 'exp': return 'exp_safe(x)';
    case 'log': return 'log_safe(x)';
    case 'sqrt': return 'sqrt_safe(x)';
    case 'rsqrt': return '1.0 / sqrt_safe(x)';
    case 'tanh': return 'tanh_acc(x)';
    case 'abs': return 'abs(x)';
    case 'sign': return 'select(select(select(x, -1.0, x < 0.0), 1.0, x > 0.0), x, is_nan(x))';
    case 'relu': return 'select(select(0.0, x, x > 0.0), x, is_nan(x))';
    case 'sigmoid': return 'sigmoid_acc(x)';
    case 'silu': return 'select(x * sigmoid_acc(x), 0.0, is_inf(x) && x < 0.0)';
    case 'gelu_tanh': return geluTanhForm === 'tanh'
      ? 'select(select(0.5 * x * (1.0 + tanh_acc(0.7978845608028654 * (x + 0.044715 * x * x * x))), x, is_inf(x) && x > 0.0), 0.0, is_inf(x) && x < 0.0)'
      : 'gelu_tanh_acc(x)';
    case 'gelu_erf': return 'select(0.5 * x * erfc_acc(-x * 0.7071067811865476), 0.0, is_inf(x) && x < 0.0)';
    case 'square': return 'x * x';
    case 'recip': return '1.0 / x';
    case 'sin': return 'sin_acc(x)';
    case 'cos': return 'cos_acc(x)';
  }
}

function unaryIntExpr(fn: UnaryFn): string | null {
  switch (fn) {
    case 'neg': return '-x';
    case 'abs': return 'abs(x)';
    case 'sign': return 'sign(x)';
    case 'relu': return 'max(x, 0)';
    case 'square': return 'x * x';
    default: return null;
  }
}

export function unary(ctx: OpContext<Op<'unary'>>): void {
  const [x] = ctx.inputs;
  const [y] = ctx.outputs;
  if (!x || !y) ctx.fail('unary takes one input and one output');
  const intExpr = isInt(y.dtype) && isInt(x.dtype) ? unaryIntExpr(ctx.op.fn) : null;
  const body = intExpr ? `let x = ldi_x(e_x); sti_y(e_y, ${intExpr});` : `let x = ldf_x(e_x); stf_y(e_y, ${unaryExpr(ctx.op.fn)});`;
  elementwise(ctx, `unary ${ctx.op.fn}`, [{ name: 'x', view: x }, { name: 'y', view: y, out: true }], body);
}

const COMPARISONS = new Set<BinaryFn>(['eq', 'ne', 'lt', 'le', 'gt', 'ge']);

function binaryFloat(fn: BinaryFn): string {
  switch (fn) {
    case 'add': return 'a + b';
    case 'sub': return 'a - b';
    case 'mul': return 'a * b';
    case 'div': return 'a / b';
    case 'pow': return 'pow_js(a, b)';
    case 'maximum': return 'max_nan(a, b)';
    case 'minimum': return 'min_nan(a, b)';
    case 'eq': return 'a == b';
    case 'ne': return '!(a == b)';
    case 'lt': return 'a < b';
    case 'le': return 'a <= b';
    case 'gt': return 'a > b';
    case 'ge': return 'a >= b';
  }
}

function binaryInt(fn: BinaryFn): string {
  switch (fn) {
    case 'add': return 'a + b';
    case 'sub': return 'a - b';
    case 'mul': return 'a * b';
    // truncating division; x/0 saturates as the reference's f64 result does (0/0 -> 0)
    case 'div': return 'select(select(select(-2147483647 - 1, 2147483647, a > 0), 0, a == 0), a / select(b, 1, b == 0), b != 0)';
    case 'pow': return 'f32_to_int(pow_js(f32(a), f32(b)), -2147483647 - 1, 2147483647)';
    case 'maximum': return 'max(a, b)';
    case 'minimum': return 'min(a, b)';
    case 'eq': return 'a == b';
    case 'ne': return 'a != b';
    case 'lt': return 'a < b';
    case 'le': return 'a <= b';
    case 'gt': return 'a > b';
    case 'ge': return 'a >= b';
  }
}

export function binary(ctx: OpContext<Op<'binary'>>): void {
  const [a, b] = ctx.inputs;
  const [y] = ctx.outputs;
  if (!a || !b || !y) ctx.fail('binary takes two inputs and one output');
  const fn = ctx.op.fn;
  const cmp = COMPARISONS.has(fn);
  if (cmp && y.dtype !== 'u8') ctx.fail('comparisons write a u8 output');
  const intPath = cmp ? isInt(a.dtype) && isInt(b.dtype) : isInt(y.dtype) && isInt(a.dtype) && isInt(b.dtype);
  let body: string;
  if (intPath) {
    body = `let a = ldi_a(e_a); let b = ldi_b(e_b); ${cmp ? `sti_y(e_y, select(0, 1, ${binaryInt(fn)}));` : `sti_y(e_y, ${binaryInt(fn)});`}`;
  } else {
    const expr = binaryFloat(fn);
    const store = cmp ? `sti_y(e_y, select(0, 1, ${expr}));`
      : isInt(y.dtype) && fn === 'div' ? `stf_y(e_y, trunc(${expr}));` : `stf_y(e_y, ${expr});`;
    body = `let a = ldf_a(e_a); let b = ldf_b(e_b); ${store}`;
  }
  elementwise(ctx, `binary ${fn}`, [{ name: 'a', view: a }, { name: 'b', view: b }, { name: 'y', view: y, out: true }], body);
}

export function where(ctx: OpContext<Op<'where'>>): void {
  const [c, a, b] = ctx.inputs;
  const [y] = ctx.outputs;
  if (!c || !a || !b || !y) ctx.fail('where takes cond, a, b and one output');
  const same = a.dtype === y.dtype && b.dtype === y.dtype;
  const body = same ? 'stb_y(e_y, select(ldb_b(e_b), ldb_a(e_a), ldb_c(e_c) != 0u));'
    : isInt(y.dtype) ? 'sti_y(e_y, select(ldi_b(e_b), ldi_a(e_a), ldb_c(e_c) != 0u));'
      : 'stf_y(e_y, select(ldf_b(e_b), ldf_a(e_a), ldb_c(e_c) != 0u));';
  elementwise(ctx, 'where', [{ name: 'c', view: c }, { name: 'a', view: a }, { name: 'b', view: b }, { name: 'y', view: y, out: true }], body);
}

/** Writes host bytes into an unaligned byte range of a buffer (word-aligned uploads cannot). */
export function spliceBytes(ctx: OpContext, dst: GPUBuffer, byteOffset: number, bytes: Uint8Array): void {
  const lead = byteOffset % 4;
  const padded = new Uint8Array(Math.ceil((lead + bytes.byteLength) / 4) * 4);
  padded.set(bytes, lead);
  const src = ctx.temp(padded.byteLength);
  ctx.rt.write(src, 0, padded, () => ctx.fail('unreachable'));
  const k = ctx.kernel('splice', () => `
@group(0) @binding(0) var<storage, read> P: array<u32>;
@group(0) @binding(1) var<storage, read> S: array<u32>;
@group(0) @binding(2) var<storage, read_write> D: array<atomic<u32>>;
@compute @workgroup_size(${WG})
fn main(${BUILTINS}) {
  ${WG_INDEX}
  let i = wg * ${WG}u + li;
  if (i >= P[1]) { return; }
  let at = (P[0] & 3u) + i;
  let bv = (S[at >> 2u] >> ((at & 3u) * 8u)) & 0xffu;
  let to = P[0] + i;
  let s = (to & 3u) * 8u;
  atomicAnd(&D[to >> 2u], ~(0xffu << s));
  atomicOr(&D[to >> 2u], bv << s);
}`);
  ctx.run(k, [src.gpu, dst], new Params().u32(byteOffset, bytes.byteLength), [cdiv(bytes.byteLength, WG)]);
}
