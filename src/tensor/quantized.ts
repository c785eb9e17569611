// QuantizedTensor: a weight matrix kept in GGML blocks exactly as the file stores them (memory =
// the file's bytes), multiplied where it lies by the `qmatmul` op. Rows are outputs, blocks run
// along each row ([rows, cols] with cols a multiple of the block size), as GGUF stores the weights
// of linear layers and embeddings.
// Not for: arithmetic (src/ops/quant.ts: qmatmul, dequantize, embedding rows) or quantizers.
import type { Backend, QuantType } from './backend.js';
import { ShapeError } from './errors.js';
import { fmtShape } from './shape.js';
import { Tensor } from './tensor.js';

/** Values and bytes per block of each format (ggml's type traits), and the GGML type name. */
export const QUANT_BLOCK: Record<QuantType, { values: number; bytes: number; ggml: string }> = {
  q8_0: { values: 32, bytes: 34, ggml: 'Q8_0' },
  q4_0: { values: 32, bytes: 18, ggml: 'Q4_0' },
  q4_k: { values: 256, bytes: 144, ggml: 'Q4_K' },
  q6_k: { values: 256, bytes: 210, ggml: 'Q6_K' },
  q4_1: { values: 32, bytes: 20, ggml: 'Q4_1' },
  q5_0: { values: 32, bytes: 22, ggml: 'Q5_0' },
  q5_1: { values: 32, bytes: 24, ggml: 'Q5_1' },
  q5_k: { values: 256, bytes: 176, ggml: 'Q5_K' },
  iq4_nl: { values: 32, bytes: 18, ggml: 'IQ4_NL' },
};

export const QUANT_TYPES = Object.keys(QUANT_BLOCK) as QuantType[];

export function isQuantType(t: string): t is QuantType {
  return Object.prototype.hasOwnProperty.call(QUANT_BLOCK, t);
}

/** Bytes of one row of `cols` values of `type`; throws naming `what` when blocks do not divide it. */
export function quantRowBytes(type: QuantType, cols: number, what = 'tensor'): number {
  const b = QUANT_BLOCK[type];
  if (!b) throw new ShapeError(`${what}: unknown quant type '${type}' (have ${QUANT_TYPES.join(', ')})`);
  if (!Number.isInteger(cols) || cols <= 0 || cols % b.values) {
    throw new ShapeError(`${what}: rows of ${cols} values are not a whole number of ${type} blocks of ${b.values}`);
  }
  return (cols / b.values) * b.bytes;
}

export class QuantizedTensor {
  /** Bytes of one row. */
  readonly rowBytes: number;

  /** Takes ownership of `raw` (u8 [rows * rowBytes]). Prefer `QuantizedTensor.fromBytes`. */
  constructor(readonly raw: Tensor, readonly type: QuantType, readonly shape: readonly [number, number]) {
    const [rows, cols] = shape;
    this.rowBytes = quantRowBytes(type, cols, `${type}${fmtShape(shape)}`);
    if (raw.dtype !== 'u8' || raw.rank !== 1 || raw.size !== rows * this.rowBytes) {
      throw new ShapeError(`${type}${fmtShape(shape)} needs u8[${rows * this.rowBytes}] raw blocks, got ${raw.dtype}${fmtShape(raw.shape)}`);
    }
  }

  /** A quantized [rows, cols] matrix over a copy of `bytes` on `backend`; throws when the bytes are short or long. */
  static fromBytes(bytes: Uint8Array, type: QuantType, shape: readonly number[], backend: Backend, what = 'tensor'): QuantizedTensor {
    if (shape.length !== 2) throw new ShapeError(`${what}: a quantized tensor is a matrix, got shape ${fmtShape(shape)}`);
    const rowBytes = quantRowBytes(type, shape[1]!, what);
    const need = shape[0]! * rowBytes;
    if (bytes.byteLength !== need) {
      throw new ShapeError(`${what}: ${type}${fmtShape(shape)} needs ${need} bytes, got ${bytes.byteLength} (${bytes.byteLength < need ? 'truncated' : 'too long'})`);
    }
    return new QuantizedTensor(Tensor.fromBytes(bytes, [need], 'u8', backend, { weight: true }), type, [shape[0]!, shape[1]!]);
  }

  get backend(): Backend {
    return this.raw.backend;
  }

  get rank(): number {
    return 2;
  }

  /** Bytes held (the file's bytes for this tensor). */
  get bytes(): number {
    return this.raw.size;
  }

  get bitsPerWeight(): number {
    const b = QUANT_BLOCK[this.type];
    return (8 * b.bytes) / b.values;
  }

  get isDisposed(): boolean {
    return this.raw.isDisposed;
  }

  dispose(): void {
    this.raw.dispose();
  }

  toString(): string {
    return `QuantizedTensor(${this.type}${fmtShape(this.shape)}, ${this.bytes} bytes)`;
  }
}
