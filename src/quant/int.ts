// Integer weight formats of the integer-quantization whitepaper (Nagel et al. 2021, "A White
// Paper on Neural Network Quantization", arXiv:2106.08295; and Krishnamoorthi 2018,
// arXiv:1806.08342): int8 symmetric per output channel (one f32 scale per row, range [-127, 127],
// min-max range: at 8 bits the paper finds min-max per-channel weights within 0.1-1% of float),
// and int4 group-wise, symmetric ([-7, 7], f16 scale) or asymmetric (uint4 with an f16 scale and
// offset, zero kept inside the range), groups of 32, 64 or 128 values, with the paper's MSE range
// setting (§3.4: at 4 bits min-max clips too little).
// Not for: activations (src/quantize/acts.ts).
import { BOOKS } from './codebook.js';
import type { GroupLayout } from './group.js';

export const INT8: GroupLayout = { book: BOOKS.int8, group: 0, scale: 'row', offset: false, qmax: 127, clip: 'absmax' };

export const INT4_GROUPS = [32, 64, 128] as const;

export const int4Layout = (group: (typeof INT4_GROUPS)[number], asym: boolean): GroupLayout => asym
  ? { book: BOOKS.uint4, group, scale: 'f16', offset: true, clip: 'mse' }
  : { book: BOOKS.int4, group, scale: 'f16', offset: false, qmax: 7, clip: 'mse' };
