// Reference dequantization of GGML block formats (32 values per block, f16 scale first).
//   q8_0: 34 bytes = f16 d, 32 x int8 q;            value = d * q
//   q4_0: 18 bytes = f16 d, 16 bytes of nibbles;     element j = low nibble of byte j,
//         element j + 16 = high nibble of byte j;    value = d * (nibble - 8)
import type { OpDesc, QuantType } from '../../../tensor/backend.js';
import { f16BitsToF32 } from '../../../tensor/dtype.js';
import { numel } from '../access.js';
import type { KernelContext } from './context.js';

type Op<K extends OpDesc['op']> = Extract<OpDesc, { op: K }>;

export const QUANT_BLOCK: Record<QuantType, { values: number; bytes: number }> = {
  q8_0: { values: 32, bytes: 34 },
  q4_0: { values: 32, bytes: 18 },
};

export function dequantize(ctx: KernelContext<Op<'dequantize'>>): void {
  ctx.expectArity(1, 1);
  const { type } = ctx.op;
  const block = QUANT_BLOCK[type];
  if (!block) ctx.fail(`unknown quant type '${type}'`);
  if (ctx.input(0).dtype !== 'u8') ctx.fail('raw input must be u8');
  const nOut = numel(ctx.output(0).shape);
  if (nOut % block.values !== 0) ctx.fail(`output size ${nOut} is not a multiple of ${block.values}`);
  const nBlocks = nOut / block.values;
  const nIn = numel(ctx.input(0).shape);
  if (nIn !== nBlocks * block.bytes) ctx.fail(`expected ${nBlocks * block.bytes} raw bytes for ${nBlocks} blocks, got ${nIn}`);

  const raw = ctx.read(0);
  const y = new Float64Array(nOut);
  for (let blk = 0; blk < nBlocks; blk++) {
    const at = blk * block.bytes;
    const d = f16BitsToF32(raw[at]! | (raw[at + 1]! << 8));
    const out = blk * 32;
    if (type === 'q8_0') {
      for (let j = 0; j < 32; j++) {
        const q = raw[at + 2 + j]!;
        y[out + j] = d * (q >= 128 ? q - 256 : q);
      }
    } else {
      for (let j = 0; j < 16; j++) {
        const byte = raw[at + 2 + j]!;
        y[out + j] = d * ((byte & 0xf) - 8);
        y[out + j + 16] = d * ((byte >>> 4) - 8);
      }
    }
  }
  ctx.write(0, y);
}
