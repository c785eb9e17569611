// The GGUF block decoders against ggml's own values: fixtures/gguf-quants/ggml-blocks.json holds
// one block of each type as llama.cpp's llama-quantize wrote it and the f32 values ggml's
// dequantize_row_* gives for it (made by test-shared/gguf-quants-ggml.test.ts, which checks whole
// files against ggml when the llama.cpp peers are present). Also: a GGUF holding these types loads.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { BLOCK_DECODERS, dequantizeGgml, GGML_BLOCK, type GgmlTypeName } from '../src/formats/gguf-quants.js';
import { GgufFile } from '../src/formats/gguf.js';
import { writeGgufBytes } from '../src/formats/gguf-write.js';
import { BytesSource } from '../src/io/byte-source.js';
import { initBackend } from '../src/tensor/engine.js';
import '../src/backends/index.js';

const golden = JSON.parse(readFileSync(new URL('../fixtures/gguf-quants/ggml-blocks.json', import.meta.url), 'utf8')) as Record<string, { raw: string; f32bits: number[] }>;
const bytes = (hex: string) => Uint8Array.from(Buffer.from(hex, 'hex'));

describe('GGUF block decoders', () => {
  it('cover the types the issue lists, and each has a golden block from ggml', () => {
    for (const t of ['Q5_0', 'Q5_1', 'Q4_1', 'Q5_K', 'Q3_K', 'Q2_K', 'IQ4_NL', 'Q8_0', 'Q4_0', 'Q4_K', 'Q6_K']) {
      expect(BLOCK_DECODERS[t as GgmlTypeName], t).toBeTypeOf('function');
      expect(golden[t], t).toBeDefined();
    }
  });

  for (const [type, g] of Object.entries(golden)) {
    it(`${type}: one block decodes to ggml's values bit for bit`, () => {
      const t = type as GgmlTypeName;
      const raw = bytes(g.raw);
      expect(raw.byteLength).toBe(GGML_BLOCK[t].bytes);
      const y = new Float32Array(GGML_BLOCK[t].values);
      BLOCK_DECODERS[t]!(raw, 0, y, 0);
      const bits = Array.from(new Uint32Array(y.buffer));
      const diff = bits.findIndex((b, i) => b !== g.f32bits[i]);
      const maxAbs = Math.max(...Array.from(y, (v, i) => Math.abs(v - new Float32Array(new Uint32Array([g.f32bits[i]!]).buffer)[0]!)));
      console.log(`${type}: ${y.length} values, max |actlab - ggml| = ${maxAbs}`);
      expect(diff, `first differing value at ${diff}`).toBe(-1);
      // The same block at an offset inside a row, as dequantizeGgml walks it.
      const two = new Uint8Array(2 * raw.byteLength);
      two.set(raw, raw.byteLength);
      expect(Array.from(new Uint32Array(dequantizeGgml(t, two, 2 * y.length).buffer).subarray(y.length))).toEqual(g.f32bits);
    });
  }

  it('a GGUF file with every block type loads each tensor as ggml\'s f32 values; bad sizes are named', async () => {
    const types = Object.keys(golden) as GgmlTypeName[];
    const file = writeGgufBytes({ 'general.architecture': 'llama' }, types.map((t) => ({ name: `w.${t}`, type: t, shape: [1, GGML_BLOCK[t].values], data: bytes(golden[t]!.raw) })));
    const g = await GgufFile.open(new BytesSource(file, 'blocks.gguf'));
    const backend = await initBackend('js');
    for (const t of types) {
      const x = await g.loadFloat(`w.${t}`, backend);
      expect(x.shape).toEqual([1, GGML_BLOCK[t].values]);
      expect(Array.from(new Uint32Array(Float32Array.from(x.dataSync() as Float32Array).buffer)), t).toEqual(golden[t]!.f32bits);
      x.dispose();
    }
    expect(() => dequantizeGgml('Q5_K', new Uint8Array(100), 256)).toThrow(/Q5_K: 100 bytes do not hold 256 values \(1 blocks of 176 bytes\)/);
    expect(() => dequantizeGgml('Q8_K', new Uint8Array(292), 256)).toThrow(/Q8_K: no block decoder/);
  });
});
