// Checkpoint formats without ../shared: safetensors write -> read for every dtype, atomic writes,
// clear errors for corrupt headers; GGML quantisation (Q8_0/Q4_0 round trips, Q4_K/Q6_K blocks vs
// an independent packer); GGUF write -> read; llama2.c checkpoint and tokenizer on synthetic data.
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as al from '../src/index.js';
import { BytesSource } from '../src/io/byte-source.js';
import { MemoryStore } from '../src/io/memory-store.js';
import { NodeFileStore } from '../src/io/node/file-store.js';
import { NodeFileSource } from '../src/io/node/file-source.js';
import { SafetensorsFile, writeSafetensors } from '../src/formats/safetensors.js';
import { dequantizeQ4K, dequantizeQ6K, quantizeQ4_0, quantizeQ8_0 } from '../src/formats/gguf-quants.js';
import { writeGguf, encodeGgml, f32, tokenizerMetadata, u32 } from '../src/formats/gguf-write.js';
import { GgufFile } from '../src/formats/gguf.js';
import { GgufWeights } from '../src/formats/gguf-weights.js';
import { ggufToHfName, hfToGgufName } from '../src/formats/gguf-hf.js';
import { permuteHalfToInterleaved, permuteInterleavedToHalf } from '../src/formats/rope-permute.js';
import { Llama2cCheckpoint } from '../src/formats/llama2c.js';
import { Llama2cTokenizer, parseLlama2cTokenizer } from '../src/tokenizer/llama2c.js';
import { HfTokenizer } from '../src/tokenizer/hf.js';
import { f16BitsToF32, f32ToF16Bits } from '../src/tensor/dtype.js';
import { checkMemory, MemoryBudgetError, openCheckpoint } from '../src/models/checkpoint.js';

let backend: al.Backend;
let tmp: string;
beforeAll(async () => {
  backend = await al.setDefaultBackend('js');
  tmp = await mkdtemp(join(tmpdir(), 'actlab-fmt-'));
});
afterAll(async () => { await rm(tmp, { recursive: true, force: true }); al.disposeBackends(); });

/** Deterministic pseudo-random numbers in [0, 1). */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32);
}

const maxDiff = (a: ArrayLike<number>, b: ArrayLike<number>): number => {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
};

/** A safetensors file from a header object and a data section. */
function stBytes(header: unknown, data: Uint8Array = new Uint8Array(0), lenOverride?: bigint): Uint8Array {
  const json = new TextEncoder().encode(typeof header === 'string' ? header : JSON.stringify(header));
  const out = new Uint8Array(8 + json.length + data.length);
  new DataView(out.buffer).setBigUint64(0, lenOverride ?? BigInt(json.length), true);
  out.set(json, 8);
  out.set(data, 8 + json.length);
  return out;
}

describe('safetensors', () => {
  it('write -> read round trip for every dtype, with metadata', async () => {
    const store = new MemoryStore();
    const ts: Record<string, al.Tensor> = {
      f32: al.tensor([[1.5, -2], [3, 4]]),
      f16: al.Tensor.from([0.5, -1, 65504], [3], 'f16'),
      bf16: al.Tensor.from([1, -3.5, 2 ** 100], [3], 'bf16'),
      i32: al.Tensor.from([-7, 2 ** 31 - 1], [2], 'i32'),
      i8: al.Tensor.from([-128, 127, 0], [3], 'i8'),
      u8: al.Tensor.from([0, 200, 255], [3], 'u8'),
      scalar: al.Tensor.from([42], [], 'f32'),
      empty: al.Tensor.from([], [0, 3], 'f32'),
    };
    await writeSafetensors(store, 'm.safetensors', ts, { metadata: { format: 'pt', note: 'x' } });
    const f = await SafetensorsFile.open(await store.openRead('m.safetensors'));
    expect(f.metadata).toEqual({ format: 'pt', note: 'x' });
    expect(f.names().sort()).toEqual(Object.keys(ts).sort());
    for (const [n, t] of Object.entries(ts)) {
      const r = await f.load(n, backend);
      expect(r.dtype).toBe(t.dtype);
      expect(r.shape).toEqual(t.shape);
      expect(Array.from(r.dataSync())).toEqual(Array.from(t.dataSync()));
      r.dispose();
    }
    const header = new TextDecoder().decode((await store.readBytes('m.safetensors')).subarray(8, 8 + f.entries[0]!.begin - 8));
    expect((header.length) % 8).toBe(0);
    expect(JSON.parse(header).f16.dtype).toBe('F16');
    const cast = await f.load('f16', backend, { dtype: 'f32' });
    expect(cast.dtype).toBe('f32');
    expect(Array.from(cast.dataSync())).toEqual([0.5, -1, 65504]);
    for (const t of Object.values(ts)) t.dispose();
  });

  it('reads I64 as i32 with a range check, and BOOL as u8', async () => {
    const data = new Uint8Array(8 * 3 + 2);
    const dv = new DataView(data.buffer);
    dv.setBigInt64(0, -5n, true); dv.setBigInt64(8, 123456789n, true); dv.setBigInt64(16, 7n, true);
    data[24] = 1;
    const ok = stBytes({ ids: { dtype: 'I64', shape: [3], data_offsets: [0, 24] }, mask: { dtype: 'BOOL', shape: [2], data_offsets: [24, 26] } }, data);
    const f = await SafetensorsFile.open(new BytesSource(ok, 'ids.safetensors'));
    expect(f.info('ids')).toMatchObject({ dtype: 'i32', storedAs: 'I64', bytes: 24 });
    expect(Array.from((await f.load('ids', backend)).dataSync())).toEqual([-5, 123456789, 7]);
    expect(Array.from((await f.load('mask', backend)).dataSync())).toEqual([1, 0]);
    dv.setBigInt64(8, 2n ** 40n, true);
    const big = await SafetensorsFile.open(new BytesSource(stBytes({ ids: { dtype: 'I64', shape: [3], data_offsets: [0, 24] } }, data.subarray(0, 24)), 'big.safetensors'));
    await expect(big.load('ids', backend)).rejects.toThrow(/big\.safetensors: tensor 'ids': I64 value 1099511627776 at index 1 does not fit in i32/);
  });

  it('gives clear errors naming the file and the tensor for corrupt headers', async () => {
    const open = (b: Uint8Array) => SafetensorsFile.open(new BytesSource(b, 'bad.safetensors'));
    const t = (o: object) => ({ w: { dtype: 'F32', shape: [2], data_offsets: [0, 8], ...o } });
    const d8 = new Uint8Array(8);
    await expect(open(new Uint8Array(4))).rejects.toThrow(/bad\.safetensors: invalid safetensors file: the file has 4 bytes/);
    await expect(open(stBytes({}, d8, 1n << 40n))).rejects.toThrow(/bad\.safetensors: .*header length 1099511627776 is not sane/);
    await expect(open(stBytes('{"w": ', d8))).rejects.toThrow(/bad\.safetensors: .*not valid JSON/);
    await expect(open(stBytes('[1,2]', d8))).rejects.toThrow(/not a JSON object/);
    await expect(open(stBytes(t({ dtype: 'F8_E4M3' }), d8))).rejects.toThrow(/tensor 'w' has dtype "F8_E4M3" \(supported: F32, F16, BF16/);
    await expect(open(stBytes(t({ shape: [2, -1] }), d8))).rejects.toThrow(/tensor 'w' has shape \[2,-1\]/);
    await expect(open(stBytes(t({ data_offsets: [0, 16] }), d8))).rejects.toThrow(/tensor 'w' ends at data byte 16, past the end of the data \(8 bytes\)/);
    await expect(open(stBytes(t({ shape: [3] }), d8))).rejects.toThrow(/tensor 'w' \(F32\[3\]\) needs 12 bytes but data_offsets give 8/);
    await expect(open(stBytes({ a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] }, b: { dtype: 'F32', shape: [1], data_offsets: [4, 8] } }, d8)))
      .rejects.toThrow(/tensors 'a' and 'b' overlap/);
    await expect(open(stBytes({ __metadata__: { n: 1 } }, d8))).rejects.toThrow(/__metadata__\.n is not a string/);
    const f = await open(stBytes(t({}), d8));
    await expect(f.load('v', backend)).rejects.toThrow(/bad\.safetensors: no tensor named 'v'/);
  });

  it('an atomic write leaves no partial file when the writer throws, and keeps the old file', async () => {
    const store = new NodeFileStore();
    const path = join(tmp, 'atomic.safetensors');
    const a = al.tensor([1, 2, 3]);
    await writeSafetensors(store, path, { a });
    const before = await store.readBytes(path);
    const bad = al.tensor([1, 2]);
    bad.dispose(); // reading a disposed tensor throws mid-write, after the header went out
    await expect(writeSafetensors(store, path, [['a', a], ['bad', bad]])).rejects.toThrow(/disposed/);
    expect(await store.readBytes(path)).toEqual(before);
    expect((await readdir(tmp)).filter((n) => n.startsWith('atomic'))).toEqual(['atomic.safetensors']);
    await expect(writeSafetensors(store, join(tmp, 'new.safetensors'), [['bad', bad]])).rejects.toThrow();
    expect(existsSync(join(tmp, 'new.safetensors'))).toBe(false);
    const i4 = al.Tensor.from([1, 2], [2], 'i4');
    await expect(writeSafetensors(store, join(tmp, 'i4.safetensors'), { i4 })).rejects.toThrow(/tensor 'i4' has dtype i4, which safetensors cannot store/);
    a.dispose(); i4.dispose();
  });
});

describe('GGML quantisation', () => {
  const r = rng(7);
  const x = Float32Array.from({ length: 32 * 64 }, () => (r() - 0.5) * 4);

  // d is stored as f16: a value q * d moves by up to |q| * d * 2^-11 beyond the rounding error.
  it('Q8_0 quantize -> dequantize is within half a step (+ f16 rounding of the scale) of each block', () => {
    const raw = al.Tensor.from(quantizeQ8_0(x), [32 * 64 / 32 * 34], 'u8');
    const y = al.dequantize(raw, 'q8_0', [64, 32]).dataSync();
    for (let b = 0; b < 64; b++) {
      const blk = x.subarray(b * 32, b * 32 + 32);
      const step = Math.max(...Array.from(blk, Math.abs)) / 127;
      expect(maxDiff(blk, y.subarray(b * 32, b * 32 + 32))).toBeLessThanOrEqual(step * (0.5 + 127 * 2 ** -11) + 1e-7);
    }
  });

  // d = max / -8: the opposite extreme lands on q = 16, clipped to 15, so the bound is one whole step.
  it('Q4_0 quantize -> dequantize is within one step of each block', () => {
    const raw = al.Tensor.from(quantizeQ4_0(x), [32 * 64 / 32 * 18], 'u8');
    const y = al.dequantize(raw, 'q4_0', [64 * 32]).dataSync();
    for (let b = 0; b < 64; b++) {
      const blk = x.subarray(b * 32, b * 32 + 32);
      const step = Math.max(...Array.from(blk, Math.abs)) / 8;
      expect(maxDiff(blk, y.subarray(b * 32, b * 32 + 32))).toBeLessThanOrEqual(step * (1 + 16 * 2 ** -11) + 1e-6);
    }
  });

  // Independent packers (as ggml's quantize_row_*_ref lay bytes out), from chosen quantities whose
  // dequantised values are known exactly.
  const f16 = (v: number): [number, number] => { const h = f32ToF16Bits(v); return [h & 0xff, h >> 8]; };
  const asF16 = (v: number): number => f16BitsToF32(f32ToF16Bits(v));

  it('Q4_K blocks dequantize to d * scale * q - dmin * min', () => {
    const nb = 3;
    const raw = new Uint8Array(nb * 144);
    const want = new Float32Array(nb * 256);
    for (let i = 0; i < nb; i++) {
      const d = asF16(0.01 + r() * 0.05), dmin = asF16(r() * 0.02);
      const sc = Array.from({ length: 8 }, () => Math.floor(r() * 64));
      const mn = Array.from({ length: 8 }, () => Math.floor(r() * 64));
      const q = Array.from({ length: 256 }, () => Math.floor(r() * 16));
      const o = i * 144;
      raw.set([...f16(d), ...f16(dmin)], o);
      const s = raw.subarray(o + 4, o + 16);
      for (let j = 0; j < 8; j++) {
        if (j < 4) { s[j] = sc[j]!; s[j + 4] = mn[j]!; } else {
          s[j + 4] = (sc[j]! & 0xf) | ((mn[j]! & 0xf) << 4);
          s[j - 4]! |= (sc[j]! >> 4) << 6;
          s[j]! |= (mn[j]! >> 4) << 6;
        }
      }
      for (let j = 0; j < 256; j += 64) for (let l = 0; l < 32; l++) raw[o + 16 + j / 2 + l] = q[j + l]! | (q[j + l + 32]! << 4);
      for (let e = 0; e < 256; e++) want[i * 256 + e] = d * sc[e >> 5]! * q[e]! - dmin * mn[e >> 5]!;
    }
    expect(maxDiff(dequantizeQ4K(raw, nb * 256), want)).toBeLessThan(1e-6);
    expect(() => dequantizeQ4K(raw.subarray(1), nb * 256)).toThrow(/Q4_K: 431 bytes do not hold 768 values/);
  });

  it('Q6_K blocks dequantize to d * scale * (q - 32)', () => {
    const nb = 2;
    const raw = new Uint8Array(nb * 210);
    const want = new Float32Array(nb * 256);
    for (let i = 0; i < nb; i++) {
      const d = asF16(0.001 + r() * 0.01);
      const sc = Array.from({ length: 16 }, () => Math.floor(r() * 256) - 128);
      const L = Array.from({ length: 256 }, () => Math.floor(r() * 64));
      const o = i * 210;
      for (let j = 0; j < 256; j += 128) {
        const ql = o + j / 2, qh = o + 128 + j / 4;
        for (let l = 0; l < 32; l++) {
          raw[ql + l] = (L[j + l]! & 0xf) | ((L[j + l + 64]! & 0xf) << 4);
          raw[ql + l + 32] = (L[j + l + 32]! & 0xf) | ((L[j + l + 96]! & 0xf) << 4);
          raw[qh + l] = (L[j + l]! >> 4) | ((L[j + l + 32]! >> 4) << 2) | ((L[j + l + 64]! >> 4) << 4) | ((L[j + l + 96]! >> 4) << 6);
        }
      }
      sc.forEach((v, k) => { raw[o + 192 + k] = v & 0xff; });
      raw.set(f16(d), o + 208);
      for (let e = 0; e < 256; e++) want[i * 256 + e] = d * sc[e >> 4]! * (L[e]! - 32);
    }
    expect(maxDiff(dequantizeQ6K(raw, nb * 256), want)).toBeLessThan(1e-6);
  });
});

describe('GGUF', () => {
  it('name mapping both ways', () => {
    for (const [g, h] of [
      ['token_embd.weight', 'model.embed_tokens.weight'], ['output.weight', 'lm_head.weight'], ['output_norm.weight', 'model.norm.weight'],
      ['blk.11.attn_output.weight', 'model.layers.11.self_attn.o_proj.weight'], ['blk.0.attn_q.bias', 'model.layers.0.self_attn.q_proj.bias'],
      ['blk.2.ffn_norm.weight', 'model.layers.2.post_attention_layernorm.weight'], ['blk.3.ffn_gate.weight', 'model.layers.3.mlp.gate_proj.weight'],
    ]) {
      expect(ggufToHfName(g!)).toBe(h);
      expect(hfToGgufName(h!)).toBe(g);
    }
    expect(ggufToHfName('rope_freqs.weight')).toBe('rope_freqs.weight');
    for (const [arch, g, h] of [
      ['gpt2', 'blk.2.attn_qkv.weight', 'transformer.h.2.attn.c_attn.weight'], ['gpt2', 'position_embd.weight', 'transformer.wpe.weight'],
      ['gptneox', 'blk.1.attn_qkv.bias', 'gpt_neox.layers.1.attention.query_key_value.bias'], ['gptneox', 'output.weight', 'embed_out.weight'],
      ['llama', 'blk.0.ffn_gate_inp.weight', 'model.layers.0.block_sparse_moe.gate.weight'],
      ['qwen2moe', 'blk.1.ffn_gate_inp_shexp.weight', 'model.layers.1.mlp.shared_expert_gate.weight'],
      ['qwen2moe', 'blk.1.ffn_down_shexp.weight', 'model.layers.1.mlp.shared_expert.down_proj.weight'],
    ] as const) {
      expect(ggufToHfName(g, arch)).toBe(h);
      expect(hfToGgufName(h, arch)).toBe(g);
    }
    expect(hfToGgufName('model.layers.3.block_sparse_moe.experts.7.w2.weight', 'llama')).toBe('blk.3.ffn_down_exps.weight');
    expect(ggufToHfName('blk.3.ffn_up_exps.weight', 'qwen2moe')).toBe('model.layers.3.mlp.experts.{e}.up_proj.weight');
  });

  it('rope permutations are inverse, and match transformers permute on a small case', () => {
    // 2 heads of 4 rows, row = 1 byte: Meta rows (h, 2i + j) -> HF rows (h, j * 2 + i).
    const meta = Uint8Array.from([0, 1, 2, 3, 4, 5, 6, 7]);
    expect(Array.from(permuteInterleavedToHalf(meta, 2, 1))).toEqual([0, 2, 1, 3, 4, 6, 5, 7]);
    const b = Uint8Array.from({ length: 48 }, (_, i) => i);
    expect(permuteHalfToInterleaved(permuteInterleavedToHalf(b, 3, 2), 3, 2)).toEqual(b);
  });

  it('write -> read: metadata, row-major shapes, every tensor type, llama q/k un-permuted', async () => {
    const r = rng(3);
    const vals = (n: number) => Float32Array.from({ length: n }, () => r() - 0.5);
    const q = vals(64 * 32); // [64 rows, 32] — 4 heads of 16
    const k = vals(32 * 32); // 2 kv heads
    const emb = vals(16 * 32);
    const out = vals(16 * 32);
    const q4k = new Uint8Array(144).map(() => Math.floor(r() * 256));
    q4k.set([0x00, 0x2c, 0x00, 0x20]); // d = 0.0625, dmin = 0.0078125
    const q6k = new Uint8Array(210).map(() => Math.floor(r() * 256));
    q6k.set([0x00, 0x24], 208);
    const store = new MemoryStore();
    await writeGguf(store, 'm.gguf', {
      'general.architecture': 'llama', 'general.name': 'tiny',
      'llama.embedding_length': u32(32), 'llama.block_count': u32(1), 'llama.feed_forward_length': u32(256),
      'llama.attention.head_count': u32(4), 'llama.attention.head_count_kv': u32(2), 'llama.context_length': u32(64),
      'llama.rope.freq_base': f32(500000), 'llama.attention.layer_norm_rms_epsilon': f32(1e-5),
      'tokenizer.ggml.model': 'llama', 'tokenizer.ggml.tokens': ['<unk>', '<s>', '</s>', '\u2581', 'a', '\u2581a'],
      'tokenizer.ggml.scores': [0, 0, 0, -1, -2, -0.5].map((s) => s) as number[], 'tokenizer.ggml.token_type': [2, 3, 3, 1, 1, 1],
      'tokenizer.ggml.bos_token_id': u32(1), 'tokenizer.ggml.eos_token_id': u32(2),
    }, [
      { name: 'token_embd.weight', type: 'F16', shape: [16, 32], data: encodeGgml(emb, 'F16') },
      { name: 'output.weight', type: 'BF16', shape: [16, 32], data: encodeGgml(out, 'BF16') },
      { name: 'blk.0.attn_q.weight', type: 'F32', shape: [64, 32], data: permuteHalfToInterleaved(encodeGgml(q, 'F32'), 4, 32 * 4) },
      { name: 'blk.0.attn_k.weight', type: 'Q8_0', shape: [32, 32], data: permuteHalfToInterleaved(encodeGgml(k, 'Q8_0'), 2, 34) },
      { name: 'blk.0.ffn_up.weight', type: 'Q4_0', shape: [1, 32], data: encodeGgml(vals(32), 'Q4_0') },
      { name: 'blk.0.ffn_gate.weight', type: 'Q4_K', shape: [1, 256], data: q4k },
      { name: 'blk.0.ffn_down.weight', type: 'Q6_K', shape: [256], data: q6k },
    ]);
    const file = await GgufFile.open(await store.openRead('m.gguf'));
    expect(file.metadata['general.name']).toBe('tiny');
    expect(file.info('blk.0.attn_q.weight')).toMatchObject({ type: 'F32', shape: [64, 32], bytes: 64 * 32 * 4 });
    const raw = await file.loadTensor('blk.0.attn_k.weight', backend);
    expect(raw).toMatchObject({ dtype: 'u8', shape: [32 * 34] });
    const g = new GgufWeights(file);
    expect(g.config).toMatchObject({
      model_type: 'llama', hidden_size: 32, num_hidden_layers: 1, num_attention_heads: 4, num_key_value_heads: 2,
      rope_theta: 500000, max_position_embeddings: 64, tie_word_embeddings: false, vocab_size: 16 /* token_embd rows */, bos_token_id: 1, eos_token_id: 2,
    });
    expect(Array.from((await g.load('model.layers.0.self_attn.q_proj.weight', backend)).dataSync())).toEqual(Array.from(q));
    const kq = (await g.load('model.layers.0.self_attn.k_proj.weight', backend)).dataSync();
    expect(maxDiff(kq, k)).toBeLessThan(0.5 / 127 + 1e-3);
    expect(maxDiff((await g.load('model.embed_tokens.weight', backend)).dataSync(), emb)).toBeLessThan(1e-3);
    expect(g.info('lm_head.weight')).toMatchObject({ dtype: 'bf16', storedAs: 'BF16', shape: [16, 32] });
    expect(g.info('model.layers.0.mlp.gate_proj.weight')).toMatchObject({ dtype: 'f32', storedAs: 'Q4_K', bytes: 144 });
    expect(Array.from((await g.load('model.layers.0.mlp.gate_proj.weight', backend)).dataSync())).toEqual(Array.from(dequantizeQ4K(q4k, 256)));
    expect(Array.from((await g.load('model.layers.0.mlp.down_proj.weight', backend)).dataSync())).toEqual(Array.from(dequantizeQ6K(q6k, 256)));
    const up = await g.load('model.layers.0.mlp.up_proj.weight', backend, { dtype: 'f16' });
    expect(up).toMatchObject({ dtype: 'f16', shape: [1, 32] });
  });

  it('a model in memory is a WeightSource: rebuilt on another backend it gives the same logits, written to GGUF it loads back', async () => {
    const cfg = { model_type: 'llama', hidden_size: 32, num_attention_heads: 4, num_key_value_heads: 2, num_hidden_layers: 1, intermediate_size: 40, vocab_size: 48, max_position_embeddings: 32 };
    const model = al.randomModel(cfg, backend, { seed: 5, std: 0.1 });
    const params = new Map(model.parameters());
    const src = al.tensorWeights(params);
    expect(src.info('model.norm.weight')).toMatchObject({ dtype: 'f32', storedAs: 'F32', shape: [32], bytes: 128 });
    expect(() => src.info('model.nope')).toThrow(/in-memory tensors: no tensor named 'model\.nope'/);
    const half = await src.load('model.norm.weight', backend, { dtype: 'f16' });
    expect(half.dtype).toBe('f16');
    half.dispose();
    const wasm = await al.initBackend('wasm');
    const copy = await al.buildModel(cfg, src, wasm);
    const ids = [3, 17, 5, 40, 9];
    const logits = (m: al.CausalLM) => { const x = al.tensor(ids, [1, ids.length], 'i32', { backend: m.backend }); const y = m.forward(x); const d = Float32Array.from(y.dataSync()); x.dispose(); y.dispose(); return d; };
    const want = logits(model);
    const moved = maxDiff(logits(copy), want);
    console.log(`in-memory weights rebuilt on wasm: max |logit difference| ${moved.toExponential(2)}`);
    expect(moved).toBeLessThan(1e-4);
    // The same source written to GGUF (Q8_0) with another file's tokenizer, and read back.
    const store = new MemoryStore();
    const tokenizer = { 'tokenizer.ggml.model': 'llama', 'tokenizer.ggml.tokens': Array.from({ length: 48 }, (_, i) => `t${i}`), 'tokenizer.ggml.bos_token_id': 1n };
    await al.convertToGguf(store, 'm.gguf', src, cfg, backend, { type: 'Q8_0', metadata: { ...tokenizerMetadata(tokenizer) } });
    const file = await GgufFile.open(await store.openRead('m.gguf'));
    expect(file.metadata['tokenizer.ggml.tokens']).toEqual(tokenizer['tokenizer.ggml.tokens']);
    expect(Number(file.metadata['tokenizer.ggml.bos_token_id'])).toBe(1);
    const back = await al.buildModel(cfg, new GgufWeights(file), backend);
    const q8 = maxDiff(logits(back), want);
    console.log(`written as Q8_0 GGUF and read back: max |logit difference| ${q8.toExponential(2)}`);
    expect(q8).toBeGreaterThan(0);
    expect(q8).toBeLessThan(0.05);
    for (const m of [model, copy, back]) m.dispose();
  });

  it('refuses a file that is not GGUF, naming it', async () => {
    await expect(GgufFile.open(new BytesSource(new Uint8Array(64), 'x.gguf'))).rejects.toThrow(/x\.gguf: not a GGUF file/);
    const bad = new Uint8Array(64);
    bad.set(new TextEncoder().encode('GGUF'));
    bad[4] = 99; // version 99
    await expect(GgufFile.open(new BytesSource(bad, 'y.gguf'))).rejects.toThrow(/y\.gguf: GGUF header does not parse/);
  });
});

/** A tiny llama2.c vocabulary: specials, 256 byte tokens, then pieces with scores. */
function tinyTokBin(pieces: [string, number][]): Uint8Array {
  const all: [Uint8Array, number][] = [
    ...['<unk>', '\n<s>\n', '\n</s>\n'].map((s) => [new TextEncoder().encode(s), 0] as [Uint8Array, number]),
    ...Array.from({ length: 256 }, (_, b) => [new TextEncoder().encode(`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`), 0] as [Uint8Array, number]),
    ...pieces.map(([s, sc]) => [new TextEncoder().encode(s), sc] as [Uint8Array, number]),
  ];
  const size = 4 + all.reduce((n, [b]) => n + 8 + b.length, 0);
  const out = new Uint8Array(size);
  const dv = new DataView(out.buffer);
  dv.setInt32(0, 16, true);
  let o = 4;
  for (const [b, sc] of all) { dv.setFloat32(o, sc, true); dv.setInt32(o + 4, b.length, true); out.set(b, o + 8); o += 8 + b.length; }
  return out;
}

describe('llama2.c', () => {
  const pieces: [string, number][] = [[' ', -1], ['h', -2], ['e', -2], ['l', -2], ['o', -2], ['he', -3], ['ll', -1.5], ['hell', -4], ['hello', -5], [' hello', -6], ['lo', -2.5]];
  // ids: ' ' 259, h 260, e 261, l 262, o 263, he 264, ll 265, hell 266, hello 267, ' hello' 268, lo 269
  const tok = () => new Llama2cTokenizer(parseLlama2cTokenizer(tinyTokBin(pieces), 259 + pieces.length, 'tiny.bin'));

  it('encodes as run.c: dummy prefix, highest-score merges first, byte fallback', () => {
    const t = tok();
    expect(t.vocabSize).toBe(270);
    // ' ' h e l l o -> ll (-1.5) first, then he (-3), hell (-4), hello (-5), ' hello' (-6)
    expect(t.encode('hello')).toEqual([1, 268]);
    expect(t.encode('hello', { addSpecialTokens: false })).toEqual([268]);
    // 'z' is not in the vocabulary: byte token 0x7a + 3; 'é' is two UTF-8 bytes
    expect(t.encode('lz', { addSpecialTokens: false })).toEqual([259, 262, 0x7a + 3]);
    expect(t.encode('é', { addSpecialTokens: false })).toEqual([259, 0xc3 + 3, 0xa9 + 3]);
    expect(t.encode('', { addSpecialTokens: false })).toEqual([]);
  });

  it('decodes as run.c: leading space dropped after BOS, byte tokens as raw bytes', () => {
    const t = tok();
    expect(t.decode([1, 268, 259, 260], { skipSpecialTokens: true })).toBe('hello h');
    expect(t.decode([259, 0xc3 + 3, 0xa9 + 3])).toBe('é');
    expect(t.decode(t.encode('hello hello él'), { skipSpecialTokens: true })).toBe('hello hello él');
    expect(t.decode([1, 268])).toBe('\n<s>\nhello');
    expect(() => t.decode([999])).toThrow(/id 999 is outside the vocabulary/);
    expect(() => parseLlama2cTokenizer(tinyTokBin(pieces), 300, 'tiny.bin')).toThrow(/tiny\.bin: ends at token 270 of 300/);
    expect(() => t.applyChatTemplate([{ role: 'user', content: 'hi' }])).toThrow(/no chat template/);
  });

  it('a synthetic checkpoint: config, names, the q/k permutation, size errors', async () => {
    const [dim, hidden, layers, heads, kvHeads, vocab, seq] = [8, 16, 2, 2, 1, 12, 4];
    const hd = dim / heads;
    const n = vocab * dim + layers * (dim + dim * dim + 2 * dim * kvHeads * hd + dim * dim + dim + 3 * dim * hidden) + dim + seq * hd;
    const floats = Float32Array.from({ length: n }, (_, i) => i);
    const header = Int32Array.from([dim, hidden, layers, heads, kvHeads, vocab, seq]);
    const bytes = new Uint8Array(28 + n * 4);
    bytes.set(new Uint8Array(header.buffer));
    bytes.set(new Uint8Array(floats.buffer), 28);
    const ck = await Llama2cCheckpoint.open(new BytesSource(bytes, 'tiny-l2c.bin'));
    expect(ck.config()).toMatchObject({ hidden_size: 8, intermediate_size: 16, num_key_value_heads: 1, tie_word_embeddings: true });
    expect(ck.names()).toHaveLength(1 + layers * 9 + 1);
    const wq = (await ck.load('model.layers.0.self_attn.q_proj.weight', backend)).dataSync();
    const wq0 = vocab * dim + layers * dim;
    // head 0 rows in HF order come from llama2.c rows 0, 2, 1, 3
    expect(Array.from(wq.subarray(0, 4 * dim).filter((_, i) => i % dim === 0))).toEqual([0, 2, 1, 3].map((r) => wq0 + r * dim));
    const wrong = new Uint8Array(bytes.length + 4);
    wrong.set(bytes);
    await expect(Llama2cCheckpoint.open(new BytesSource(wrong, 'w.bin'))).rejects.toThrow(/w\.bin: llama2\.c header .* implies \d+ bytes, but the file has/);

    // openCheckpoint on a file path: detection, the tokenizer (--tokenizer, else tokenizer.bin beside it), the memory check.
    const path = join(tmp, 'tiny-l2c.bin');
    await writeFile(path, bytes);
    const tokPath = join(tmp, 'tok.bin');
    await writeFile(tokPath, tinyTokBin([])); // 259 tokens, but the model says 12
    await expect(openCheckpoint(path, { tokenizerPath: tokPath })).rejects.toThrow(/tok\.bin: \d+ bytes left after 12 tokens; the model's vocab_size does not match/);
    await writeFile(join(tmp, 'tokenizer.bin'), new Uint8Array(0));
    await expect(openCheckpoint(path)).rejects.toThrow(/tokenizer\.bin: too short for a llama2\.c tokenizer/);
    await rm(join(tmp, 'tokenizer.bin'));
    const ok = await openCheckpoint(path);
    expect(ok).toMatchObject({ format: 'llama2c', source: path });
    expect(ok.tokenizer).toBeUndefined();
    await expect(openCheckpoint(path, { memoryBudget: 1000 })).rejects.toThrow(MemoryBudgetError);
    await expect(openCheckpoint(path, { memoryBudget: 1000 })).rejects.toThrow(/needs 0\.0 MiB to load, but only 0\.0 MiB is available \(the memoryBudget option\)/);
    expect(await checkMemory(ok.weights, 'x', { dtype: 'bf16', memoryBudget: 0 })).toBe(n * 2 - seq * hd * 2);
    await ok.weights.close();
  });
});

describe('io', () => {
  it('NodeFileSource reads ranges and refuses reads past the end', async () => {
    const p = join(tmp, 'bytes.bin');
    await writeFile(p, Uint8Array.from({ length: 100 }, (_, i) => i));
    const s = await NodeFileSource.open(p);
    expect(s.size).toBe(100);
    expect(Array.from(await s.read(95, 5))).toEqual([95, 96, 97, 98, 99]);
    await expect(s.read(98, 5)).rejects.toThrow(/bytes\.bin: read of 5 bytes at offset 98 is outside the file \(100 bytes\)/);
    await s.close();
  });
});

describe('HF tokenizer (tokenizer.json through @huggingface/tokenizers, chat templates through @huggingface/jinja)', () => {
  const tokenizer = {
    version: '1.0',
    added_tokens: [
      { id: 0, content: '<s>', single_word: false, lstrip: false, rstrip: false, normalized: false, special: true },
      { id: 1, content: '</s>', single_word: false, lstrip: false, rstrip: false, normalized: false, special: true },
    ],
    normalizer: null,
    pre_tokenizer: { type: 'Whitespace' },
    post_processor: {
      type: 'TemplateProcessing', single: [{ SpecialToken: { id: '<s>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
      pair: [], special_tokens: { '<s>': { id: '<s>', ids: [0], tokens: ['<s>'] } },
    },
    decoder: null,
    model: { type: 'WordPiece', vocab: { '<s>': 0, '</s>': 1, '<unk>': 2, hello: 3, world: 4, user: 5, ':': 6 }, unk_token: '<unk>', continuing_subword_prefix: '##', max_input_chars_per_word: 100 },
  };
  const tokenizerConfig = {
    bos_token: '<s>', eos_token: { content: '</s>' },
    chat_template: "{{ bos_token }}{% for m in messages %}{{ m.role }}: {{ m.content }}{{ eos_token }}{% endfor %}{% if add_generation_prompt %}assistant:{% endif %}",
  };

  it('encodes with and without special tokens, and knows bos/eos/pad', () => {
    const t = new HfTokenizer({ tokenizer, tokenizerConfig, generationConfig: { eos_token_id: [1, 4] } });
    expect(t.encode('hello world')).toEqual([0, 3, 4]);
    expect(t.encode('hello world', { addSpecialTokens: false })).toEqual([3, 4]);
    expect(t.encode('hello there', { addSpecialTokens: false })).toEqual([3, 2]);
    expect(t.decode([0, 3, 4], { skipSpecialTokens: true })).toBe('hello world');
    expect([t.bosId, t.eosId, t.eosIds, t.padId, t.vocabSize]).toEqual([0, 1, [1, 4], null, 7]);
  });

  it('applies the chat template', () => {
    const t = new HfTokenizer({ tokenizer, tokenizerConfig });
    const msgs = [{ role: 'user', content: 'hello' }];
    expect(t.applyChatTemplate(msgs)).toBe('<s>user: hello</s>assistant:');
    expect(t.applyChatTemplate(msgs, { addGenerationPrompt: false })).toBe('<s>user: hello</s>');
    const none = new HfTokenizer({ tokenizer, tokenizerConfig: { ...tokenizerConfig, chat_template: undefined } }, 'x/tokenizer.json');
    expect(() => none.applyChatTemplate(msgs)).toThrow(/x\/tokenizer\.json: this model has no chat template/);
  });
});
