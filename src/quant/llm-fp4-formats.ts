// LLM-FP4's 4-bit weight formats (Liu et al. 2023, "LLM-FP4: 4-Bit Floating-Point Quantized
// Transformers", arXiv:2310.16836): per output channel a real-valued scale (an f32 after the
// row's codes), codes of a sign-magnitude minifloat whose exponent/mantissa split (E1M2, E2M1,
// E3M0) is chosen per layer by the search in src/quant/llm-fp4.ts. The format's exponent bias only
// moves its range, which the per-channel scale already sets, so the search's clipping range is the
// scale's ratio to the channel's absmax.
import { BOOKS } from './codebook.js';
import type { GroupLayout } from './group.js';

const perChannel = (book: GroupLayout['book']): GroupLayout => ({ book, group: 0, scale: 'row', offset: false, clip: 'mse' });

export const LLM_FP4 = { e1m2: perChannel(BOOKS.fp4_e1m2), e2m1: perChannel(BOOKS.fp4_e2m1), e3m0: perChannel(BOOKS.fp4_e3m0) } as const;
export type LlmFp4Split = keyof typeof LLM_FP4;
