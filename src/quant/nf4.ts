// NF4, QLoRA's 4-bit NormalFloat (Dettmers et al. 2023, "QLoRA: Efficient Finetuning of Quantized
// LLMs", arXiv:2305.14314): blocks of 64 weights share their absmax (an f32: 4.5 bits per weight),
// each weight the nearest of the 16 normal quantiles of src/quant/codebook.ts. Double quantisation
// (QLoRA §3) quantises the absmax constants themselves to 8 bits; QLoRA takes blocks of 256
// constants across the whole tensor, actlab takes the constants of one row (cols / 64 of them,
// 64 for cols = 4096) with an f32 low end and step per row, so each row stays self-contained:
// 4 + 8/64 + 64/cols bits per weight (4.14 at cols = 4096; QLoRA's 4.127).
import { BOOKS } from './codebook.js';
import type { GroupLayout } from './group.js';

export const NF4: GroupLayout = { book: BOOKS.nf4, group: 64, scale: 'f32', offset: false, clip: 'absmax' };
export const NF4_DQ: GroupLayout = { book: BOOKS.nf4, group: 64, scale: 'u8', offset: false, clip: 'absmax' };
