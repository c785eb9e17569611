// Every GGUF block type actlab reads, against ggml itself: llama.cpp's llama-quantize (from
// ../shared/peers/llama.cpp) quantizes a synthetic llama GGUF whose rows are whole 256-value
// super-blocks, then dequantizes the result back to F32 (`--allow-requantize OUT F32`, ggml's own
// dequantize_row_*); actlab's decoders must give the same f32 values bit for bit. Skips without the peers.
// ACTLAB_QUANT_GOLDEN=FILE also writes the first block of each type with ggml's values, the golden
// file of the default suite (fixtures/gguf-quants/ggml-blocks.json, test/gguf-quants.test.ts).
// Files of the types kept in their blocks load as such and give the dequantized load's logits.
// Also: the real stories260K GGUF quantized as Q4_K_M (its 64-wide rows get Q5_0, as llama.cpp
// falls back when rows are not whole super-blocks) loads and runs close to the F32 file.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { GgufFile } from '../src/formats/gguf.js';
import { dequantizeGgml, GGML_BLOCK, type GgmlTypeName } from '../src/formats/gguf-quants.js';
import { f32, f32s, i32s, u32, writeGgufBytes, type GgufWriteTensor } from '../src/formats/gguf-write.js';
import { NodeFileSource } from '../src/io/node/file-source.js';
import { initBackend } from '../src/tensor/engine.js';
import '../src/backends/index.js';
import type { Backend } from '../src/tensor/backend.js';

const PEERS = join(__dirname, '../../shared/peers/llama.cpp');
const QUANTIZE = join(PEERS, 'llama-quantize');
const TYPES: GgmlTypeName[] = ['Q5_0', 'Q5_1', 'Q4_1', 'Q5_K', 'Q3_K', 'Q2_K', 'IQ4_NL', 'Q4_0', 'Q8_0', 'Q4_K', 'Q6_K'];
const have = existsSync(QUANTIZE);

let dir = '';
let libs = '';
let backend: Backend;

/** A folder of links to the peer's shared libraries (stored copies may hold a link's target name as text). */
function libraryDir(): string {
  const d = join(dir, 'lib');
  mkdirSync(d);
  for (const f of readdirSync(PEERS).filter((n) => n.includes('.so'))) {
    const p = join(PEERS, f);
    const small = statSync(p).size < 200;
    const target = small ? join(PEERS, readFileSync(p, 'utf8').trim()) : p;
    symlinkSync(target, join(d, f));
  }
  return d;
}

/** Deterministic values with a spread of magnitudes (so scales, mins and signs all vary). */
function values(n: number, seed: number): Float32Array {
  let s = seed >>> 0;
  const r = () => { s = (Math.imul(s, 1664525) + 1013904223) >>> 0; return s / 2 ** 32; };
  return Float32Array.from({ length: n }, (_, i) => (r() - 0.5) * (1 + 4 * Math.sin(i / 97) ** 2) * (i % 512 === 7 ? 8 : 1));
}

/** A one-block llama GGUF in F32: every 2-D weight's rows are whole 256-value super-blocks. */
function syntheticLlama(): Uint8Array {
  const d = 256, ff = 512, vocab = 512;
  const tokens = ['<unk>', '<s>', '</s>', ...Array.from({ length: vocab - 3 }, (_, i) => `t${i}`)];
  const t = (name: string, shape: number[], seed: number): GgufWriteTensor => {
    const v = name.endsWith('norm.weight') ? Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => 1) : values(shape.reduce((a, b) => a * b, 1), seed);
    return { name, type: 'F32', shape, data: new Uint8Array(v.buffer) };
  };
  return writeGgufBytes({
    'general.architecture': 'llama', 'general.name': 'synthetic',
    'llama.embedding_length': u32(d), 'llama.block_count': u32(1), 'llama.feed_forward_length': u32(ff),
    'llama.attention.head_count': u32(4), 'llama.attention.head_count_kv': u32(4), 'llama.context_length': u32(64),
    'llama.rope.dimension_count': u32(64), 'llama.rope.freq_base': f32(10000), 'llama.attention.layer_norm_rms_epsilon': f32(1e-5),
    'tokenizer.ggml.model': 'llama', 'tokenizer.ggml.tokens': tokens, 'tokenizer.ggml.scores': f32s(tokens.map(() => 0)),
    'tokenizer.ggml.token_type': i32s(tokens.map((_, i) => (i < 3 ? 3 : 1))), 'tokenizer.ggml.bos_token_id': u32(1), 'tokenizer.ggml.eos_token_id': u32(2),
  }, [
    t('token_embd.weight', [vocab, d], 1), t('output_norm.weight', [d], 0), t('output.weight', [vocab, d], 2),
    t('blk.0.attn_norm.weight', [d], 0), t('blk.0.attn_q.weight', [d, d], 3), t('blk.0.attn_k.weight', [d, d], 4),
    t('blk.0.attn_v.weight', [d, d], 5), t('blk.0.attn_output.weight', [d, d], 6), t('blk.0.ffn_norm.weight', [d], 0),
    t('blk.0.ffn_gate.weight', [ff, d], 7), t('blk.0.ffn_up.weight', [ff, d], 8), t('blk.0.ffn_down.weight', [d, ff], 9),
  ]);
}

function quantize(args: string[]): void {
  execFileSync(QUANTIZE, args, { env: { ...process.env, LD_LIBRARY_PATH: libs }, stdio: 'pipe' });
}

const open = async (p: string) => GgufFile.open(await NodeFileSource.open(p));

beforeAll(async () => {
  if (!have) return;
  dir = mkdtempSync(join(tmpdir(), 'actlab-ggml-quants-'));
  libs = libraryDir();
  writeFileSync(join(dir, 'f32.gguf'), syntheticLlama());
  backend = await initBackend('js');
});

describe.skipIf(!have)('GGUF block types against ggml (llama-quantize)', () => {
  const golden: Record<string, { raw: string; f32bits: number[] }> = {};

  for (const type of TYPES) {
    it(`${type}: actlab's values equal ggml's bit for bit`, async () => {
      const q = join(dir, `${type}.gguf`);
      const back = join(dir, `${type}-f32.gguf`);
      quantize(['--pure', join(dir, 'f32.gguf'), q, type]);
      quantize(['--allow-requantize', q, back, 'F32']);
      const fq = await open(q);
      const fb = await open(back);
      let checked = 0;
      let values = 0;
      try {
        for (const info of fq.tensors.filter((x) => x.type === type)) {
          const ref = new Uint32Array((await fb.readRaw(info.name)).slice().buffer);
          expect(fb.info(info.name).type).toBe('F32');
          // The block decoder on the host, and the loader's path (Q8_0/Q4_0 dequantize on the backend).
          const host = new Uint32Array(dequantizeGgml(type, await fq.readRaw(info.name), ref.length).buffer);
          const t = await fq.loadFloat(info.name, backend);
          const loaded = new Uint32Array(new Float32Array(await t.data() as Float32Array).buffer);
          t.dispose();
          for (const [what, got] of [['decoder', host], ['loadFloat', loaded]] as const) {
            expect(got.length).toBe(ref.length);
            let bad = -1;
            for (let i = 0; i < ref.length; i++) if (got[i] !== ref[i]) { bad = i; break; }
            expect(bad, `${type} ${info.name} (${what}): first difference at ${bad}`).toBe(-1);
          }
          checked++;
          values += ref.length;
          if (!golden[type]) {
            const blk = GGML_BLOCK[type];
            const raw = (await fq.readRaw(info.name)).subarray(0, blk.bytes);
            golden[type] = { raw: Buffer.from(raw).toString('hex'), f32bits: Array.from(ref.subarray(0, blk.values)) };
          }
        }
      } finally {
        await fq.source.close();
        await fb.source.close();
      }
      console.log(`${type}: ${checked} tensors, ${values} values equal to ggml's bit for bit`);
      expect(checked).toBeGreaterThan(0);
    }, 120_000);
  }

  it('Q4_1, Q5_0, Q5_1, Q5_K and IQ4_NL files keep their matrices in blocks: logits equal the dequantized load', async () => {
    const { loadModel } = await import('../src/models/load.js');
    const { tensor } = await import('../src/ops/creation.js');
    const { createWasmBackend } = await import('../src/backends/wasm/backend.js');
    const wasm = await createWasmBackend({ threads: 2 });
    const ids = [1, 40, 47, 261, 378, 124, 11, 263];
    const run = async (p: string, be: Backend, quantized: 'keep' | 'dequantize') => {
      const m = await loadModel(p, { backend: be, quantized });
      const mem = m.model.weightMemory();
      const out = m.model.forward(tensor(ids, [1, ids.length], 'i32', { backend: be }));
      const d = Float32Array.from(await out.data() as Float32Array);
      out.dispose();
      m.model.dispose();
      return { d, mem };
    };
    const nmse = (a: Float32Array, b: Float32Array) => {
      let num = 0, den = 0;
      for (let i = 0; i < a.length; i++) { num += (a[i]! - b[i]!) ** 2; den += a[i]! ** 2; }
      return num / den;
    };
    try {
      for (const type of ['Q4_1', 'Q5_0', 'Q5_1', 'Q5_K', 'IQ4_NL'] as const) {
        const q = join(dir, `${type}-kept.gguf`);
        quantize(['--pure', join(dir, 'f32.gguf'), q, type]);
        const exact = await run(q, backend, 'dequantize');
        const kept = await run(q, backend, 'keep');
        const fast = await run(q, wasm, 'keep');
        const file = statSync(q).size;
        const e1 = nmse(exact.d, kept.d);
        const e2 = nmse(exact.d, fast.d);
        console.log(`${type}: ${kept.mem.quantized} matrices kept, ${(kept.mem.bytes / 2 ** 20).toFixed(2)} MiB resident (file ${(file / 2 ** 20).toFixed(2)} MiB, f32 load ${(exact.mem.bytes / 2 ** 20).toFixed(2)} MiB); logits NMSE vs the dequantized load: reference ${e1.toExponential(2)}, wasm (8-bit activations) ${e2.toExponential(2)}`);
        expect(kept.mem.quantized).toBe(9);
        expect(kept.mem.bytes).toBeLessThan(1.05 * file);
        expect(e1).toBeLessThan(1e-10);
        expect(e2).toBeLessThan(1e-3);
      }
    } finally {
      wasm.dispose();
    }
  }, 180_000);

  it('stories260K as Q4_K_M (Q5_0 where rows are not super-blocks) loads and runs close to F32', async () => {
    const src = join(__dirname, '../../shared/data/stories260K-gguf/stories260K.gguf');
    if (!existsSync(src)) return;
    const q = join(dir, 'stories-q4km.gguf');
    quantize([src, q, 'Q4_K_M']);
    const f = await open(q);
    const types = [...new Set(f.tensors.map((x) => x.type))].sort();
    await f.source.close();
    console.log(`stories260K Q4_K_M tensor types: ${types.join(', ')}`);
    expect(types).toContain('Q5_0');
    const { loadModel } = await import('../src/models/load.js');
    const { tensor } = await import('../src/ops/creation.js');
    const ids = [1, 403, 407, 261, 378, 124, 11, 263];
    const logits = async (p: string) => {
      const m = await loadModel(p, { backend });
      const out = m.model.forward(tensor(ids, [1, ids.length], 'i32', { backend }));
      const d = Float32Array.from(await out.data() as Float32Array);
      out.dispose();
      m.model.dispose();
      return d;
    };
    const a = await logits(src);
    const b = await logits(q);
    let err = 0, scale = 0;
    for (let i = 0; i < a.length; i++) { err = Math.max(err, Math.abs(a[i]! - b[i]!)); scale = Math.max(scale, Math.abs(a[i]!)); }
    console.log(`stories260K Q4_K_M vs F32: max |logit difference| ${err.toFixed(4)} (max |logit| ${scale.toFixed(2)})`);
    expect(err).toBeLessThan(0.25 * scale);
    expect(err).toBeGreaterThan(0);
  }, 120_000);

  it('writes the golden file when asked', () => {
    const out = process.env.ACTLAB_QUANT_GOLDEN;
    if (out) writeFileSync(out, JSON.stringify(golden, null, 0) + '\n');
    expect(Object.keys(golden).length).toBe(TYPES.length);
  });
});
