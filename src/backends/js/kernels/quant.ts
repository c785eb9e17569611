// Reference kernels of GGML block formats: `dequantize`, `qmatmul` and `qlinear` (qmatmul + bias + activation), the specification that the
// fast kernels are tested against.
//   q8_0: 34 bytes = f16 d, 32 x int8 q;            value = d * q
//   q4_0: 18 bytes = f16 d, 16 bytes of nibbles;     element j = low nibble of byte j,
//         element j + 16 = high nibble of byte j;    value = d * (nibble - 8)
//   q4_1, q5_0, q5_1, iq4_nl (32 values) and q4_k, q5_k, q6_k (256-value super-blocks): decoded
//         as ggml-quants.c's dequantize_row_* do (src/formats/gguf-quants.ts holds every decoder,
//         shared with the GGUF reader).
// qmatmul is specified as dequantize-then-f32: W's values exactly as `dequantize` gives them (f32),
// products of x and W summed in float64, rounded once to f32. Backends that quantize x to 8 bits
// per block (as ggml does) differ from it by that rounding; the conformance matrix holds the budget.
import type { OpDesc, QuantType } from '../../../tensor/backend.js';
import { QUANT_BLOCK } from '../../../tensor/quantized.js';
import { dequantizeGgml, type GgmlTypeName } from '../../../formats/gguf-quants.js';
import { dequantizeWeights, isActlabQuantType } from '../../../quant/formats.js';
import { numel } from '../access.js';
import type { KernelContext } from './context.js';
import { unaryFn } from './elementwise.js';

type Op<K extends OpDesc['op']> = Extract<OpDesc, { op: K }>;

/**
 * `n` values of `type` from raw blocks (n a whole number of blocks; the caller checks sizes);
 * actlab's formats (src/quant/formats.ts) in rows of `cols`.
 */
export function dequantizeBlocks(raw: Uint8Array, type: QuantType, n: number, cols = QUANT_BLOCK[type].values): Float32Array {
  if (isActlabQuantType(type)) return dequantizeWeights(type, raw, n / cols, cols);
  return dequantizeGgml(QUANT_BLOCK[type].ggml as GgmlTypeName, raw, n);
}

function rawBytes(ctx: KernelContext, i: number): Uint8Array {
  if (ctx.input(i).dtype !== 'u8') ctx.fail(`raw input ${i} must be u8`);
  return Uint8Array.from(ctx.read(i));
}

export function dequantize(ctx: KernelContext<Op<'dequantize'>>): void {
  ctx.expectArity(1, 1);
  const { type } = ctx.op;
  const block = QUANT_BLOCK[type];
  if (!block) ctx.fail(`unknown quant type '${type}'`);
  if (ctx.input(0).dtype !== 'u8') ctx.fail('raw input must be u8');
  const nOut = numel(ctx.output(0).shape);
  const cols = block.tail ? ctx.output(0).shape.at(-1) ?? 0 : block.values;
  if (nOut % block.values !== 0 || cols % block.values !== 0) ctx.fail(`output size ${nOut} (rows of ${cols}) is not a multiple of ${block.values}`);
  const need = (nOut / cols) * ((cols / block.values) * block.bytes + block.tail);
  const nIn = numel(ctx.input(0).shape);
  if (nIn !== need) ctx.fail(`expected ${need} raw bytes for ${nOut} values, got ${nIn}`);
  ctx.write(0, dequantizeBlocks(rawBytes(ctx, 0), type, nOut, cols));
}

export function qmatmul(ctx: KernelContext<Op<'qmatmul'>>): void {
  ctx.expectArity(2, 1);
  ctx.write(0, product(ctx));
}

/** y = act(x · dequantize(w)ᵀ + bias): the product in float64, then the bias, then the activation, rounded once. */
export function qlinear(ctx: KernelContext<Op<'qlinear'>>): void {
  ctx.expectArity(3, 1);
  const Y = product(ctx);
  const N = ctx.output(0).shape[1]!;
  ctx.expectShape(ctx.input(2), [N], 'bias');
  const bias = ctx.read(2);
  const f = ctx.op.act ? unaryFn(ctx.op.act) : null;
  for (let i = 0; i < Y.length; i++) {
    const s = Y[i]! + bias[i % N]!;
    Y[i] = f ? f(s) : s;
  }
  ctx.write(0, Y);
}

/** x [M, K] (input 0) · dequantize(w)ᵀ (input 1, [N, K]) in float64, checked against output 0 [M, N]. */
function product(ctx: KernelContext<Op<'qmatmul'> | Op<'qlinear'>>): Float64Array {
  const { type } = ctx.op;
  const block = QUANT_BLOCK[type];
  if (!block) ctx.fail(`unknown quant type '${type}'`);
  const x = ctx.input(0);
  const y = ctx.output(0);
  if (x.dtype !== 'f32' || x.shape.length !== 2) ctx.fail('x must be f32 [M, K]');
  const [M, K] = x.shape as [number, number];
  if (y.shape.length !== 2 || y.shape[0] !== M) ctx.fail('output must be [M, N]');
  const N = y.shape[1]!;
  if (K % block.values) ctx.fail(`K = ${K} is not a multiple of the ${type} block of ${block.values}`);
  const nIn = numel(ctx.input(1).shape);
  const need = N * ((K / block.values) * block.bytes + block.tail);
  if (nIn !== need) ctx.fail(`expected ${need} raw bytes for a [${N}, ${K}] weight, got ${nIn}`);
  const W = dequantizeBlocks(rawBytes(ctx, 1), type, N * K, K); // [N, K]
  const X = ctx.read(0); // [M, K]
  const Y = new Float64Array(M * N);
  for (let m = 0; m < M; m++) {
    for (let n = 0; n < N; n++) {
      let s = 0;
      for (let k = 0; k < K; k++) s += X[m * K + k]! * W[n * K + k]!;
      Y[m * N + n] = s;
    }
  }
  return Y;
}
