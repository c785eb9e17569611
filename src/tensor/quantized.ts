// QuantizedTensor: a weight matrix kept in GGML blocks (or actlab's own packed rows,
// src/quant/formats.ts) exactly as the file stores them (memory = the file's bytes), multiplied
// where it lies by the `qmatmul` op. Rows are outputs, blocks run
// along each row ([rows, cols] with cols a multiple of the block size), as GGUF stores the weights
// of linear layers and embeddings.
// Not for: arithmetic (src/ops/quant.ts: qmatmul, dequantize, embedding rows) or quantizers.
import type { Backend, QuantType } from './backend.js';
import { ShapeError } from './errors.js';
import { fmtShape } from './shape.js';
import { Tensor } from './tensor.js';

export interface QuantBlock {
  values: number;
  bytes: number;
  /** Bytes after each row's blocks (actlab's per-channel scales); 0 for GGML's formats. */
  tail: number;
  /** The GGML type name, for GGML's formats. */
  ggml?: string;
}

/**
 * Values and bytes per block of each format (ggml's type traits; actlab's formats as
 * src/quant/group.ts lays them out, kept equal by test/quant-formats.test.ts), and the GGML name.
 */
export const QUANT_BLOCK: Record<QuantType, QuantBlock> = {
  q8_0: { values: 32, bytes: 34, tail: 0, ggml: 'Q8_0' },
  q4_0: { values: 32, bytes: 18, tail: 0, ggml: 'Q4_0' },
  q4_k: { values: 256, bytes: 144, tail: 0, ggml: 'Q4_K' },
  q6_k: { values: 256, bytes: 210, tail: 0, ggml: 'Q6_K' },
  q4_1: { values: 32, bytes: 20, tail: 0, ggml: 'Q4_1' },
  q5_0: { values: 32, bytes: 22, tail: 0, ggml: 'Q5_0' },
  q5_1: { values: 32, bytes: 24, tail: 0, ggml: 'Q5_1' },
  q5_k: { values: 256, bytes: 176, tail: 0, ggml: 'Q5_K' },
  iq4_nl: { values: 32, bytes: 18, tail: 0, ggml: 'IQ4_NL' },
  int8: { values: 32, bytes: 32, tail: 4 },
  int4_g32: { values: 32, bytes: 18, tail: 0 },
  int4_g64: { values: 64, bytes: 34, tail: 0 },
  int4_g128: { values: 128, bytes: 66, tail: 0 },
  int4a_g32: { values: 32, bytes: 20, tail: 0 },
  int4a_g64: { values: 64, bytes: 36, tail: 0 },
  int4a_g128: { values: 128, bytes: 68, tail: 0 },
  nf4: { values: 64, bytes: 36, tail: 0 },
  nf4_dq: { values: 64, bytes: 33, tail: 8 },
  fp8_e4m3: { values: 32, bytes: 32, tail: 4 },
  fp8_e5m2: { values: 32, bytes: 32, tail: 4 },
  fp4: { values: 32, bytes: 18, tail: 0 },
  llmfp4_e1m2: { values: 32, bytes: 16, tail: 4 },
  llmfp4_e2m1: { values: 32, bytes: 16, tail: 4 },
  llmfp4_e3m0: { values: 32, bytes: 16, tail: 4 },
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
  return (cols / b.values) * b.bytes + b.tail;
}

/**
 * ggml's get_scale_min_k4: the 6-bit scale and min of sub-block j (0..7) from the 12 packed scale
 * bytes of a Q4_K / Q5_K super-block (read by the GGUF writers and the native repacking alike).
 */
export function scaleMinK4(sc: Uint8Array, j: number): [number, number] {
  return j < 4 ? [sc[j]! & 63, sc[j + 4]! & 63] : [(sc[j + 4]! & 0xf) | ((sc[j - 4]! >> 6) << 4), (sc[j + 4]! >> 4) | ((sc[j]! >> 6) << 4)];
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
    return (8 * this.rowBytes) / this.shape[1];
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
