// Dequantization of GGML blocks (32 values each, f16 scale first): q8_0 (34 bytes: d, 32 x i8)
// and q4_0 (18 bytes: d, 16 bytes of nibbles, low nibbles first). One thread per value; the
// products are exact in f32, as in the reference.
import type { OpDesc } from '../../../tensor/backend.js';
import { BUILTINS, Params, WG_INDEX, numel, type OpContext } from './context.js';
import { PRELUDE, cdiv, inBinding, loaders, outBinding, storers } from '../wgsl.js';

type Op<K extends OpDesc['op']> = Extract<OpDesc, { op: K }>;
const BLOCK: Record<string, number | undefined> = { q8_0: 34, q4_0: 18 };

/** The formats these kernels decode (others are declined in supportsOp). */
export const WEBGPU_QUANT_TYPES = new Set(Object.keys(BLOCK));

export function dequantize(ctx: OpContext<Op<'dequantize'>>): void {
  const { type } = ctx.op;
  const bytes = BLOCK[type];
  if (!bytes) ctx.fail(`unknown quant type '${type}'`);
  if (ctx.inputs[0]!.dtype !== 'u8') ctx.fail('raw input must be u8');
  const nOut = numel(ctx.outputs[0]!.shape);
  if (nOut % 32 !== 0) ctx.fail(`output size ${nOut} is not a multiple of 32`);
  const nBlocks = nOut / 32;
  if (numel(ctx.inputs[0]!.shape) !== nBlocks * bytes) ctx.fail(`expected ${nBlocks * bytes} raw bytes for ${nBlocks} blocks`);
  if (nOut === 0) return;
  const rd = ctx.dense(0);
  const yd = ctx.denseOut(0);
  const k = ctx.kernel(`dequantize ${type}>${yd.dtype}`, () => `${PRELUDE}
@group(0) @binding(0) var<storage, read> P: array<u32>;
${inBinding(1, 'r')}
${outBinding(2, 'y', yd.dtype)}
${loaders('r', 'u8')}
${storers('y', yd.dtype)}
@compute @workgroup_size(256)
fn main(${BUILTINS}) {
  ${WG_INDEX}
  let e = wg * 256u + li;
  if (e >= P[0]) { return; }
  let blk = e / 32u; let j = e % 32u;
  let at = P[1] + blk * ${bytes}u;
  let d = f16_to_f32(ldb_r(at) | (ldb_r(at + 1u) << 8u));
  ${type === 'q8_0'
    ? 'let q = f32(bitcast<i32>(ldb_r(at + 2u + j) << 24u) >> 24u);'
    : 'let bv = ldb_r(at + 2u + (j % 16u)); let q = f32(i32(select(bv & 0xfu, bv >> 4u, j >= 16u)) - 8);'}
  stf_y(P[2] + e, d * q);
}`);
  ctx.run(k, [rd.gpu, yd.gpu], new Params().u32(nOut, rd.offset, yd.offset), [cdiv(nOut, 256)]);
}
