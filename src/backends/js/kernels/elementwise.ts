// Reference elementwise ops: copy (cast), fill, random, dropout, unary, binary, where, adamw, geluBackward; and erf/erfc to full
// double precision for gelu_erf. Inputs arrive already broadcast (stride 0 where repeated).
import type { BinaryFn, OpDesc, UnaryFn } from '../../../tensor/backend.js';
import { isFloat, roundToFloat } from '../../../tensor/dtype.js';
import { numel } from '../access.js';
import { randomUniformAt } from '../../../tensor/random-hash.js';
import type { KernelContext } from './context.js';

type Op<K extends OpDesc['op']> = Extract<OpDesc, { op: K }>;

const TWO_OVER_SQRT_PI = 1.1283791670955126; // 2 / sqrt(pi)
const ONE_OVER_SQRT_PI = 0.5641895835477563;
const SQRT_2_OVER_PI = 0.7978845608028654;
const SQRT_HALF = 0.7071067811865476;

/**
 * erf(x) for |x| < 1 by the all-positive series erf(x) = 2/sqrt(pi) e^{-x^2} sum_n 2^n x^{2n+1}
 * / (2n+1)!!, which has no cancellation; beyond, 1 - erfc(x). Relative error ~1e-15.
 */
export function erf(x: number): number {
  if (Number.isNaN(x)) return NaN;
  const ax = Math.abs(x);
  if (ax >= 1) return Math.sign(x) * (1 - erfcLarge(ax));
  const x2 = ax * ax;
  let term = ax;
  let sum = ax;
  for (let n = 1; n < 100; n++) {
    term *= (2 * x2) / (2 * n + 1);
    sum += term;
    if (term < sum * 1e-17) break;
  }
  return Math.sign(x) * TWO_OVER_SQRT_PI * Math.exp(-x2) * sum;
}

/** erfc(x) = 1 - erf(x), accurate in relative terms for large positive x too. */
export function erfc(x: number): number {
  if (Number.isNaN(x)) return NaN;
  if (x < 0) return 2 - erfc(-x);
  if (x < 1) return 1 - erf(x);
  return erfcLarge(x);
}

/**
 * erfc for x >= 1 by its continued fraction e^{-x^2}/sqrt(pi) / (x + (1/2)/(x + 1/(x + (3/2)/(x + ...))))
 * (modified Lentz; under 200 terms at x = 1, fewer further out).
 */
function erfcLarge(x: number): number {
  if (x > 27.3) return 0; // below the smallest subnormal
  const tiny = 1e-300;
  let f = x;
  let c = x;
  let d = 0;
  for (let n = 1; n < 1000; n++) {
    const a = n / 2;
    d = x + a * d;
    d = d === 0 ? 1 / tiny : 1 / d;
    c = x + a / c;
    if (c === 0) c = tiny;
    const delta = c * d;
    f *= delta;
    if (Math.abs(delta - 1) < 1e-16) break;
  }
  return (ONE_OVER_SQRT_PI * expNegSquare(x)) / f;
}

/** e^{-x^2} without the error of rounding x^2 first (which matters when x^2 is in the hundreds). */
function expNegSquare(x: number): number {
  const hi = Math.fround(x); // 24 significant bits, so hi * hi is exact in f64
  const lo = x - hi;
  return Math.exp(-hi * hi) * Math.exp(-(2 * hi * lo + lo * lo));
}

function sigmoid(x: number): number {
  if (x >= 0) return 1 / (1 + Math.exp(-x));
  const e = Math.exp(x);
  return e / (1 + e);
}

export function unaryFn(fn: UnaryFn): (x: number) => number {
  switch (fn) {
    case 'neg': return (x) => -x;
    case 'exp': return Math.exp;
    case 'log': return Math.log;
    case 'sqrt': return Math.sqrt;
    case 'rsqrt': return (x) => 1 / Math.sqrt(x);
    case 'tanh': return Math.tanh;
    case 'abs': return Math.abs;
    case 'sign': return (x) => (x > 0 ? 1 : x < 0 ? -1 : x === 0 ? 0 : NaN);
    case 'relu': return (x) => (x > 0 ? x : Number.isNaN(x) ? NaN : 0);
    case 'sigmoid': return sigmoid;
    case 'silu': return (x) => (x === -Infinity ? 0 : x * sigmoid(x));
    case 'gelu_tanh': return (x) => {
      if (!Number.isFinite(x)) return x === -Infinity ? 0 : x;
      return 0.5 * x * (1 + Math.tanh(SQRT_2_OVER_PI * (x + 0.044715 * x * x * x)));
    };
    // 0.5 x (1 + erf(x/sqrt2)) written as 0.5 x erfc(-x/sqrt2), exact in the far negative tail
    case 'gelu_erf': return (x) => (x === -Infinity ? 0 : 0.5 * x * erfc(-x * SQRT_HALF));
    case 'square': return (x) => x * x;
    case 'recip': return (x) => 1 / x;
    case 'sin': return Math.sin;
    case 'cos': return Math.cos;
  }
}

export function binaryFn(fn: BinaryFn, intOut: boolean): (a: number, b: number) => number {
  switch (fn) {
    case 'add': return (a, b) => a + b;
    case 'sub': return (a, b) => a - b;
    case 'mul': return (a, b) => a * b;
    // integer division truncates toward zero (the int write does the truncation)
    case 'div': return intOut ? (a, b) => Math.trunc(a / b) : (a, b) => a / b;
    case 'pow': return Math.pow;
    case 'maximum': return (a, b) => (Number.isNaN(a) || Number.isNaN(b) ? NaN : Math.max(a, b));
    case 'minimum': return (a, b) => (Number.isNaN(a) || Number.isNaN(b) ? NaN : Math.min(a, b));
    case 'eq': return (a, b) => (a === b ? 1 : 0);
    case 'ne': return (a, b) => (a !== b ? 1 : 0);
    case 'lt': return (a, b) => (a < b ? 1 : 0);
    case 'le': return (a, b) => (a <= b ? 1 : 0);
    case 'gt': return (a, b) => (a > b ? 1 : 0);
    case 'ge': return (a, b) => (a >= b ? 1 : 0);
  }
}

function expectSameShapes(ctx: KernelContext): void {
  const shape = ctx.output(0).shape;
  for (const v of ctx.inputs) ctx.expectShape(v, shape, 'every input');
}

export function copy(ctx: KernelContext<Op<'copy'>>): void {
  ctx.expectArity(1, 1);
  if (numel(ctx.input(0).shape) !== numel(ctx.output(0).shape)) ctx.fail('input and output sizes differ');
  ctx.write(0, ctx.read(0));
}

export function fill(ctx: KernelContext<Op<'fill'>>): void {
  ctx.expectArity(0, 1);
  ctx.write(0, new Float64Array(numel(ctx.output(0).shape)).fill(ctx.op.value));
}

export function random(ctx: KernelContext<Op<'random'>>): void {
  ctx.expectArity(0, 1);
  const y = ctx.output(0);
  if (y.dtype !== 'f32') ctx.fail(`random writes f32, got ${y.dtype}`);
  const out = new Float64Array(numel(y.shape));
  for (let i = 0; i < out.length; i++) out[i] = randomUniformAt(ctx.op.seed, i);
  ctx.write(0, out);
}

export function dropout(ctx: KernelContext<Op<'dropout'>>): void {
  ctx.expectArity(1, 1);
  expectSameShapes(ctx);
  const { p, seed } = ctx.op;
  const x = ctx.input(0);
  if (!isFloat(x.dtype) || ctx.output(0).dtype !== x.dtype) ctx.fail(`dropout works on one float dtype, got ${x.dtype} -> ${ctx.output(0).dtype}`);
  if (!(p >= 0 && p < 1)) ctx.fail(`p must lie in [0, 1), got ${p}`);
  const keepAt = Math.fround(p);
  const scale = roundToFloat(1 / (1 - p), x.dtype as 'f32' | 'f16' | 'bf16');
  const y = ctx.read(0);
  for (let i = 0; i < y.length; i++) y[i] = randomUniformAt(seed, i) >= keepAt ? y[i]! * scale : 0;
  ctx.write(0, y);
}

export function adamw(ctx: KernelContext<Op<'adamw'>>): void {
  ctx.expectArity(4, 3);
  expectSameShapes(ctx);
  for (const v of [...ctx.inputs, ...ctx.outputs]) if (v.dtype !== 'f32') ctx.fail(`adamw works on f32, got ${v.dtype}`);
  const { lr, beta1: b1, beta2: b2, eps, weightDecay: wd, step, gradScale } = ctx.op;
  const p = ctx.read(0), g = ctx.read(1), m = ctx.read(2), v = ctx.read(3);
  const bc1 = 1 - b1 ** step;
  const sbc2 = Math.sqrt(1 - b2 ** step);
  for (let i = 0; i < p.length; i++) {
    const gi = g[i]! * gradScale;
    m[i] = b1 * m[i]! + (1 - b1) * gi;
    v[i] = b2 * v[i]! + (1 - b2) * gi * gi;
    p[i] = p[i]! * (1 - lr * wd) - (lr / bc1) * m[i]! / (Math.sqrt(v[i]!) / sbc2 + eps);
  }
  ctx.write(0, p);
  ctx.write(1, m);
  ctx.write(2, v);
}

/** gelu'(x): exact in f64 (1 - tanh² and 1 + tanh from e^{-2|u|}, no cancellation); 1 at +Inf, 0 at -Inf. */
function geluDerivative(fn: Op<'geluBackward'>['fn']): (x: number) => number {
  const tail = (x: number) => (x > 0 ? 1 : x < 0 ? 0 : NaN);
  if (fn === 'gelu_erf') return (x) => (Number.isFinite(x) ? 0.5 * erfc(-x * SQRT_HALF) + x * Math.exp(-0.5 * x * x) * ONE_OVER_SQRT_PI * SQRT_HALF : tail(x));
  return (x) => {
    if (!Number.isFinite(x)) return tail(x);
    // gelu = x/2 (1 + tanh u), u = c (x + 0.044715 x³): gelu' = (1 + tanh u)/2 + x/2 (1 - tanh² u) c (1 + 3·0.044715 x²)
    const u = SQRT_2_OVER_PI * (x + 0.044715 * x * x * x);
    const s = Math.exp(-2 * Math.abs(u));
    const onePlusT = u >= 0 ? 2 / (1 + s) : (2 * s) / (1 + s);
    const sech2 = (4 * s) / ((1 + s) * (1 + s));
    return 0.5 * onePlusT + 0.5 * x * sech2 * SQRT_2_OVER_PI * (1 + 3 * 0.044715 * x * x);
  };
}

export function geluBackward(ctx: KernelContext<Op<'geluBackward'>>): void {
  ctx.expectArity(2, 1);
  expectSameShapes(ctx);
  for (const v of [...ctx.inputs, ...ctx.outputs]) if (!isFloat(v.dtype)) ctx.fail(`geluBackward works on float tensors, got ${v.dtype}`);
  const d = geluDerivative(ctx.op.fn);
  const x = ctx.read(0), dy = ctx.read(1);
  for (let i = 0; i < x.length; i++) x[i] = d(x[i]!) * dy[i]!;
  ctx.write(0, x);
}

export function unary(ctx: KernelContext<Op<'unary'>>): void {
  ctx.expectArity(1, 1);
  expectSameShapes(ctx);
  const f = unaryFn(ctx.op.fn);
  const x = ctx.read(0);
  for (let i = 0; i < x.length; i++) x[i] = f(x[i]!);
  ctx.write(0, x);
}

const COMPARISONS: readonly BinaryFn[] = ['eq', 'ne', 'lt', 'le', 'gt', 'ge'];

export function binary(ctx: KernelContext<Op<'binary'>>): void {
  ctx.expectArity(2, 1);
  expectSameShapes(ctx);
  const y = ctx.output(0);
  if (COMPARISONS.includes(ctx.op.fn) && y.dtype !== 'u8') ctx.fail('comparisons write a u8 output');
  const intOut = y.dtype !== 'f32' && y.dtype !== 'f16' && y.dtype !== 'bf16';
  const f = binaryFn(ctx.op.fn, intOut);
  const a = ctx.read(0);
  const b = ctx.read(1);
  for (let i = 0; i < a.length; i++) a[i] = f(a[i]!, b[i]!);
  ctx.write(0, a);
}

export function where(ctx: KernelContext<Op<'where'>>): void {
  ctx.expectArity(3, 1);
  expectSameShapes(ctx);
  const cond = ctx.read(0);
  const a = ctx.read(1);
  const b = ctx.read(2);
  for (let i = 0; i < a.length; i++) if (cond[i] === 0) a[i] = b[i]!;
  ctx.write(0, a);
}
