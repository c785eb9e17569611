// Calibrated GGUF K-quants: a linear layer's weight written as Q4_K / Q5_K / Q6_K blocks from
// its input statistics on calibration text, by one of two methods.
// - 'imatrix': llama.cpp's importance-matrix quantisers (gguf-kquants-weighted.ts) with the
//   importance of input column i = mean x_i² over the calibration tokens (= diag H / tokens).
// - 'gptq': GPTQ (gptq.ts) on the K-quant grid: at each super-block (256 input columns) the block's
//   scales and mins are fitted by the imatrix quantiser on the weights as GPTQ has updated them so
//   far, then each column is rounded onto that grid and its error spread over the later columns.
// Both write ordinary GGUF blocks: actlab's kernels and llama.cpp run them unchanged.
import { kBlockGrid, K_BLOCK_BYTES, quantizeKBlockWeighted, quantizeKWeighted, setKBlockLevels, type KQuantType } from '../formats/gguf-kquants-weighted.js';
import { gptq, type GptqOptions } from './gptq.js';

const QK_K = 256;
export type KQuantMethod = 'imatrix' | 'gptq';
export const K_QUANT_METHODS: readonly KQuantMethod[] = ['imatrix', 'gptq'];

/** A layer input's second moments over calibration tokens: H = Σ x xᵀ ([d, d], row-major). */
export interface InputStats {
  H: Float64Array;
  d: number;
  tokens: number;
}

/** Mean x_i² per input column: llama.cpp's importance matrix entry for the layer. */
export function importanceOf(s: InputStats): Float64Array {
  const imp = new Float64Array(s.d);
  for (let i = 0; i < s.d; i++) imp[i] = s.H[i * s.d + i]! / Math.max(1, s.tokens);
  return imp;
}

/**
 * GPTQ of W [rows, cols] onto `type`'s grid: the block bytes and the values they decode to
 * (in doubles; the f32 decode of the bytes agrees to rounding).
 */
export function gptqKQuant(type: KQuantType, W: ArrayLike<number>, rows: number, cols: number, stats: InputStats, o: GptqOptions = {}): { bytes: Uint8Array; values: Float32Array } {
  if (cols % QK_K) throw new Error(`GPTQ ${type}: rows of ${cols} values are not a whole number of ${QK_K}-value super-blocks`);
  if (stats.d !== cols) throw new Error(`GPTQ ${type}: the input statistics are ${stats.d} wide, the weight has ${cols} columns`);
  const imp = importanceOf(stats);
  const nb = cols / QK_K, bb = K_BLOCK_BYTES[type];
  const bytes = new Uint8Array(rows * nb * bb);
  const scale = new Float64Array(rows * QK_K), offset = new Float64Array(rows * QK_K);
  const L = new Uint8Array(rows * QK_K);
  let block = -1;
  let nmax = 0;
  const flush = () => {
    if (block < 0) return;
    for (let r = 0; r < rows; r++) setKBlockLevels(type, bytes, (r * nb + block) * bb, L.subarray(r * QK_K, (r + 1) * QK_K));
  };
  const values = gptq(W, rows, cols, stats.H, {
    groupSize: QK_K,
    fitGroup(w, _rows, _cols, c0) {
      flush();
      block = c0 / QK_K;
      for (let r = 0; r < rows; r++) {
        const o = (r * nb + block) * bb;
        quantizeKBlockWeighted(type, w, r * cols + c0, imp, c0, bytes, o);
        nmax = kBlockGrid(type, bytes, o, scale, offset, r * QK_K);
      }
    },
    round(r, c, v) {
      const k = r * QK_K + (c - block * QK_K);
      const s = scale[k]!;
      const l = s ? Math.round(Math.min(nmax, Math.max(0, (v - offset[k]!) / s))) : type === 'Q6_K' ? 32 : 0;
      L[k] = l;
      return s * l + offset[k]!;
    },
  }, o);
  flush();
  return { bytes, values };
}

/** W [rows, cols] as `type` by `method` with the layer's input statistics. */
export function calibratedKQuant(method: KQuantMethod, type: KQuantType, W: ArrayLike<number>, rows: number, cols: number, stats: InputStats, o: GptqOptions = {}): Uint8Array {
  if (method === 'gptq') return gptqKQuant(type, W, rows, cols, stats, o).bytes;
  if (stats.d !== cols) throw new Error(`imatrix ${type}: the input statistics are ${stats.d} wide, the weight has ${cols} columns`);
  return quantizeKWeighted(type, W, cols, importanceOf(stats));
}
