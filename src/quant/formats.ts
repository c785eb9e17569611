// actlab's own weight formats by name: each a packed group layout (src/quant/group.ts) with its
// family, its paper and its defaults, and the checks every quantizer shares (finite weights, rows
// a whole number of blocks). The byte layouts are repeated as plain numbers in
// src/tensor/quantized.ts (the engine needs no quantizer); a test keeps the two equal.
import type { GgmlQuantType, QuantType } from '../tensor/backend.js';
import { FP4, FP8_E4M3, FP8_E5M2 } from './fp.js';
import { INT8, int4Layout } from './int.js';
import { LLM_FP4 } from './llm-fp4-formats.js';
import { NF4, NF4_DQ } from './nf4.js';
import { decodeGroups, encodeGroups, groupRowBytes, layoutBlock, type Clip, type GroupLayout } from './group.js';

export type ActlabQuantType = Exclude<QuantType, GgmlQuantType>;

export interface WeightFormat {
  type: ActlabQuantType;
  family: 'int8' | 'int4' | 'nf4' | 'fp8' | 'fp4' | 'llm-fp4';
  layout: GroupLayout;
  /** The paper the format and its defaults come from. */
  cite: string;
}

const WHITEPAPER = 'Nagel et al. 2021, A White Paper on Neural Network Quantization (arXiv:2106.08295)';
const fmt = (type: ActlabQuantType, family: WeightFormat['family'], layout: GroupLayout, cite: string): WeightFormat => ({ type, family, layout, cite });

export const WEIGHT_FORMATS: Record<ActlabQuantType, WeightFormat> = {
  int8: fmt('int8', 'int8', INT8, WHITEPAPER),
  int4_g32: fmt('int4_g32', 'int4', int4Layout(32, false), WHITEPAPER),
  int4_g64: fmt('int4_g64', 'int4', int4Layout(64, false), WHITEPAPER),
  int4_g128: fmt('int4_g128', 'int4', int4Layout(128, false), WHITEPAPER),
  int4a_g32: fmt('int4a_g32', 'int4', int4Layout(32, true), WHITEPAPER),
  int4a_g64: fmt('int4a_g64', 'int4', int4Layout(64, true), WHITEPAPER),
  int4a_g128: fmt('int4a_g128', 'int4', int4Layout(128, true), WHITEPAPER),
  nf4: fmt('nf4', 'nf4', NF4, 'Dettmers et al. 2023, QLoRA (arXiv:2305.14314)'),
  nf4_dq: fmt('nf4_dq', 'nf4', NF4_DQ, 'Dettmers et al. 2023, QLoRA (arXiv:2305.14314), double quantization'),
  fp8_e4m3: fmt('fp8_e4m3', 'fp8', FP8_E4M3, 'Micikevicius et al. 2022, FP8 Formats for Deep Learning (arXiv:2209.05433)'),
  fp8_e5m2: fmt('fp8_e5m2', 'fp8', FP8_E5M2, 'Micikevicius et al. 2022, FP8 Formats for Deep Learning (arXiv:2209.05433)'),
  fp4: fmt('fp4', 'fp4', FP4, 'OCP Microscaling Formats (MX) v1.0, E2M1 elements'),
  llmfp4_e1m2: fmt('llmfp4_e1m2', 'llm-fp4', LLM_FP4.e1m2, 'Liu et al. 2023, LLM-FP4 (arXiv:2310.16836)'),
  llmfp4_e2m1: fmt('llmfp4_e2m1', 'llm-fp4', LLM_FP4.e2m1, 'Liu et al. 2023, LLM-FP4 (arXiv:2310.16836)'),
  llmfp4_e3m0: fmt('llmfp4_e3m0', 'llm-fp4', LLM_FP4.e3m0, 'Liu et al. 2023, LLM-FP4 (arXiv:2310.16836)'),
};

export const ACTLAB_QUANT_TYPES = Object.keys(WEIGHT_FORMATS) as ActlabQuantType[];

export function isActlabQuantType(t: string): t is ActlabQuantType {
  return Object.prototype.hasOwnProperty.call(WEIGHT_FORMATS, t);
}

export function weightFormat(type: string, where = 'quantize'): WeightFormat {
  if (!isActlabQuantType(type)) throw new Error(`${where}: unknown weight format '${type}' (actlab's formats: ${ACTLAB_QUANT_TYPES.join(', ')})`);
  return WEIGHT_FORMATS[type];
}

/** Bits per weight of a [rows, cols] matrix in `type` (scales and tails included). */
export function bitsPerWeight(type: ActlabQuantType, cols: number): number {
  return (8 * groupRowBytes(WEIGHT_FORMATS[type].layout, cols)) / cols;
}

/** Throws unless `cols` is a whole number of the format's blocks, naming `what`. */
export function checkDivides(type: ActlabQuantType, cols: number, what: string): void {
  const { values } = layoutBlock(WEIGHT_FORMATS[type].layout);
  if (!Number.isInteger(cols) || cols <= 0 || cols % values) {
    throw new Error(`${what}: rows of ${cols} values are not a whole number of ${type} blocks of ${values}`);
  }
}

/** Throws naming `what` and the first index that is NaN or ±Inf. */
export function checkFinite(values: Float32Array, what: string): void {
  for (let i = 0; i < values.length; i++) {
    if (!Number.isFinite(values[i]!)) throw new Error(`${what}: value ${i} is ${values[i]}; weights to quantize must be finite`);
  }
}

/** A weight matrix [rows, cols] -> its packed bytes in `type` (checked: finite, divisible). */
export function quantizeWeights(type: ActlabQuantType, values: Float32Array, rows: number, cols: number, o: { what?: string; clip?: Clip } = {}): Uint8Array {
  const what = o.what ?? `${type} weight [${rows}, ${cols}]`;
  const f = weightFormat(type, what);
  checkDivides(type, cols, what);
  if (values.length !== rows * cols) throw new Error(`${what}: ${values.length} values for a [${rows}, ${cols}] matrix`);
  checkFinite(values, what);
  return encodeGroups(f.layout, values, rows, cols, o.clip);
}

/** Packed bytes of `type` -> f32 [rows * cols]. */
export function dequantizeWeights(type: ActlabQuantType, raw: Uint8Array, rows: number, cols: number): Float32Array {
  return decodeGroups(WEIGHT_FORMATS[type].layout, raw, rows, cols);
}

/** `quantizeWeights` then `dequantizeWeights`: the values the format gives back (fake quantization). */
export function fakeQuantizeWeights(type: ActlabQuantType, values: Float32Array, rows: number, cols: number, o: { what?: string; clip?: Clip } = {}): Float32Array {
  return dequantizeWeights(type, quantizeWeights(type, values, rows, cols, o), rows, cols);
}
