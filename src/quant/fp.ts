// Floating-point weight formats. FP8 (Micikevicius et al. 2022, "FP8 Formats for Deep Learning",
// arXiv:2209.05433; the OCP 8-bit floating point specification): E4M3 (max 448, no Inf) and E5M2
// (IEEE-like, max 57344), one f32 scale per output channel mapping the row's absmax onto the
// format's largest value, as the paper's post-training weight recipe does. FP4 E2M1 (OCP
// Microscaling Formats v1.0, MXFP4's element type): blocks of 32 values sharing a scale; MX stores
// it as a power of two (E8M0, 4.25 bits per weight), actlab as an f16 (4.5 bits per weight, the same
// bytes as ggml's Q4_0) so the block's absmax lands exactly on ±6.
import { BOOKS } from './codebook.js';
import type { GroupLayout } from './group.js';

export const FP8_E4M3: GroupLayout = { book: BOOKS.fp8_e4m3, group: 0, scale: 'row', offset: false, clip: 'absmax' };
export const FP8_E5M2: GroupLayout = { book: BOOKS.fp8_e5m2, group: 0, scale: 'row', offset: false, clip: 'absmax' };
export const FP4: GroupLayout = { book: BOOKS.fp4_e2m1, group: 32, scale: 'f16', offset: false, clip: 'absmax' };
