// How scatterAdd on WebGPU splits its ids (src/backends/webgpu/kernels/scatter.ts): chunks of at
// most 256 ids, each chunk's partial sums within the 32 MB cap, else the one-pass kernel. The
// kernels themselves are checked against the js reference by the conformance cases.
import { describe, expect, it } from 'vitest';
import { scatterChunks } from '../src/backends/webgpu/kernels/scatter.js';

describe('scatterAdd chunks on WebGPU', () => {
  it('cuts the ids into chunks of at most 256 whose partials fit the cap, else runs in one pass', () => {
    // the embedding gradients of the shakespeare-char step
    expect(scatterChunks(65, 384, 16384)).toBe(64);
    expect(scatterChunks(256, 384, 16384)).toBe(64);
    expect(scatterChunks(33, 70, 4099)).toBe(17);
    // few ids: one chunk, the one-pass kernel
    expect(scatterChunks(65, 384, 200)).toBe(1);
    // partials over the cap (GPT-2's 50257 × 768 table; a 3000 × 1024 table with 768 ids, where
    // fewer chunks would each hold more than 256 ids): the one-pass kernel
    expect(scatterChunks(50257, 768, 16384)).toBe(1);
    expect(scatterChunks(3000, 1024, 768)).toBe(1);
    for (const [rows, len, m] of [[65, 384, 16384], [256, 384, 16384], [33, 70, 4099], [1000, 64, 100000]]) {
      const c = scatterChunks(rows!, len!, m!);
      if (c > 1) {
        expect(Math.ceil(m! / c)).toBeLessThanOrEqual(256);
        expect(c * rows! * len! * 4).toBeLessThanOrEqual(32 << 20);
      }
    }
  });
});
