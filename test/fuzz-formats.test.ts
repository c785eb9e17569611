// Fuzzing the checkpoint readers (safetensors, GGUF, llama2.c) with random and mutated inputs:
// every input either loads tensors of the declared shapes or throws an Error — never a crash,
// a hang, a non-Error throw, or a tensor whose size disagrees with its shape.
import { describe, expect, it } from 'vitest';
import * as al from '../src/index.js';
import { BytesSource } from '../src/io/byte-source.js';
import { MemoryStore } from '../src/io/memory-store.js';
import { SafetensorsFile, writeSafetensors } from '../src/formats/safetensors.js';
import { GgufFile } from '../src/formats/gguf.js';
import { GgufWeights } from '../src/formats/gguf-weights.js';
import { f32, u32, writeGguf } from '../src/formats/gguf-write.js';
import { Llama2cCheckpoint } from '../src/formats/llama2c.js';
import type { WeightSource } from '../src/formats/weight-source.js';
import { Rng } from '../src/ops/creation.js';

const ROUNDS = Number(process.env.ACTLAB_FUZZ_ROUNDS ?? 300);

function mutate(src: Uint8Array, rng: Rng): Uint8Array {
  const b = src.slice();
  switch (rng.int(5)) {
    case 0: for (let i = 0, n = 1 + rng.int(8); i < n; i++) b[rng.int(b.length)] ^= 1 << rng.int(8); return b;
    case 1: return b.subarray(0, rng.int(b.length));
    case 2: for (let i = 0, n = 1 + rng.int(4); i < n; i++) b[rng.int(Math.min(b.length, 64))] = rng.int(256); return b;
    case 3: { const at = rng.int(b.length); return Uint8Array.from([...b.subarray(0, at), ...Array.from({ length: 1 + rng.int(16) }, () => rng.int(256)), ...b.subarray(at)]); }
    default: return Uint8Array.from({ length: rng.int(256) }, () => rng.int(256));
  }
}

async function exercise(open: () => Promise<WeightSource>, backend: al.Backend): Promise<'ok' | 'error'> {
  let w: WeightSource | undefined;
  try {
    w = await open();
    for (const n of w.names()) {
      const info = w.info(n);
      const t = await w.load(n, backend);
      expect(t.shape).toEqual(info.shape);
      t.dispose();
    }
    return 'ok';
  } catch (e) {
    if (!(e instanceof Error)) throw new Error(`a non-Error was thrown: ${String(e)}`);
    if (e.name === 'AssertionError') throw e;
    return 'error';
  } finally {
    await w?.close().catch(() => {});
  }
}

async function fuzz(label: string, valid: Uint8Array, open: (src: BytesSource) => Promise<WeightSource>): Promise<void> {
  const backend = await al.initBackend('js');
  const rng = new Rng(label.length * 7919);
  const tally = { ok: 0, error: 0 };
  expect(await exercise(() => open(new BytesSource(valid, label)), backend)).toBe('ok');
  for (let i = 0; i < ROUNDS; i++) {
    const input = mutate(valid, rng);
    tally[await exercise(() => open(new BytesSource(input, `${label}#${i}`)), backend)]++;
  }
  console.log(`${label}: ${ROUNDS} mutated inputs -> ${tally.ok} loaded, ${tally.error} refused with an Error`);
  expect(tally.error).toBeGreaterThan(ROUNDS / 4);
}

describe('fuzzing the readers', () => {
  it('safetensors', async () => {
    const backend = await al.initBackend('js');
    const store = new MemoryStore();
    await writeSafetensors(store, 'm.safetensors', {
      a: al.randn([3, 5], { backend }), b: al.tensor([1, 2, 3], [3], 'i32', { backend }), c: al.randn([4], { dtype: 'f16', backend }),
    });
    await fuzz('safetensors', await store.readBytes('m.safetensors'), (s) => SafetensorsFile.open(s));
  }, 60_000);

  it('GGUF', async () => {
    const store = new MemoryStore();
    const embd = new Uint8Array(Float32Array.from({ length: 64 }, (_, i) => i / 7).buffer);
    const q8 = new Uint8Array(34 * 2);
    q8[0] = 0x00; q8[1] = 0x3c; q8[34] = 0x00; q8[35] = 0x3c; // f16 scale 1.0 per block
    const meta = {
      'general.architecture': 'llama', 'llama.embedding_length': u32(16), 'llama.block_count': u32(1), 'llama.attention.head_count': u32(2),
      'llama.attention.head_count_kv': u32(2), 'llama.feed_forward_length': u32(32), 'llama.context_length': u32(64),
      'llama.rope.freq_base': f32(10000), 'llama.attention.layer_norm_rms_epsilon': f32(1e-5),
    };
    await writeGguf(store, 'm.gguf', meta, [
      { name: 'token_embd.weight', shape: [4, 16], type: 'F32', data: embd },
      { name: 'blk.0.ffn_up.weight', shape: [2, 32], type: 'Q8_0', data: q8 },
    ]);
    await fuzz('gguf', await store.readBytes('m.gguf'), async (s) => new GgufWeights(await GgufFile.open(s)));
  }, 120_000);

  it('llama2.c', async () => {
    const [dim, hidden, layers, heads, kv, vocab, seq] = [8, 16, 1, 2, 2, 11, 4];
    const hd = dim / heads;
    const floats = vocab * dim + layers * (dim + dim * dim + 2 * dim * kv * hd + dim * dim + dim + 3 * dim * hidden) + dim + seq * hd;
    const buf = new Uint8Array(28 + floats * 4);
    new Int32Array(buf.buffer, 0, 7).set([dim, hidden, layers, heads, kv, vocab, seq]);
    const f = new Float32Array(buf.buffer, 28);
    for (let i = 0; i < f.length; i++) f[i] = Math.sin(i);
    await fuzz('llama2c', buf, (s) => Llama2cCheckpoint.open(s));
  }, 60_000);
});
