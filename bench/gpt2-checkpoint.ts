// A GPT-2-shaped Hugging Face checkpoint on disk (config.json + one f32 model.safetensors, HF's
// names and Conv1D layouts, tied unembedding), for the weight-load benchmarks: actlab's loadModel
// and PyTorch read the same file. The values are a block of 1M seeded normals (std 0.02) tiled
// over each matrix, layer-norm weights 1: the benchmark times bytes, not the weights' meaning.
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { encodeSafetensorsHeader } from '../src/formats/safetensors.js';
import { writeAtomic } from '../src/io/file-store.js';
import { getPlatform } from '../src/io/platform.js';
import { Rng } from '../src/ops/creation.js';

export interface Gpt2Dims { nEmbd: number; nLayer: number; nHead: number; vocab: number; nPositions: number }

export const GPT2_SMALL: Gpt2Dims = { nEmbd: 768, nLayer: 12, nHead: 12, vocab: 50257, nPositions: 1024 };

/** HF GPT-2 tensor names and shapes, in the order the reference writer stores them. */
export function gpt2Tensors(d: Gpt2Dims): { name: string; shape: number[] }[] {
  const E = d.nEmbd;
  const out: { name: string; shape: number[] }[] = [];
  for (let i = 0; i < d.nLayer; i++) {
    const p = `transformer.h.${i}.`;
    out.push(
      { name: `${p}attn.c_attn.bias`, shape: [3 * E] }, { name: `${p}attn.c_attn.weight`, shape: [E, 3 * E] },
      { name: `${p}attn.c_proj.bias`, shape: [E] }, { name: `${p}attn.c_proj.weight`, shape: [E, E] },
      { name: `${p}ln_1.bias`, shape: [E] }, { name: `${p}ln_1.weight`, shape: [E] },
      { name: `${p}ln_2.bias`, shape: [E] }, { name: `${p}ln_2.weight`, shape: [E] },
      { name: `${p}mlp.c_fc.bias`, shape: [4 * E] }, { name: `${p}mlp.c_fc.weight`, shape: [E, 4 * E] },
      { name: `${p}mlp.c_proj.bias`, shape: [E] }, { name: `${p}mlp.c_proj.weight`, shape: [4 * E, E] },
    );
  }
  out.push(
    { name: 'transformer.ln_f.bias', shape: [E] }, { name: 'transformer.ln_f.weight', shape: [E] },
    { name: 'transformer.wpe.weight', shape: [d.nPositions, E] }, { name: 'transformer.wte.weight', shape: [d.vocab, E] },
  );
  return out;
}

/** Writes the checkpoint into `dir` unless its model.safetensors exists; returns its bytes. */
export async function writeGpt2Checkpoint(dir: string, d: Gpt2Dims = GPT2_SMALL): Promise<number> {
  const tensors = gpt2Tensors(d);
  const entries = tensors.map((t) => ({ ...t, dtype: 'f32' as const }));
  const file = join(dir, 'model.safetensors');
  const { prefix, dataBytes } = encodeSafetensorsHeader(file, entries, { format: 'pt' });
  if (existsSync(file)) return prefix.byteLength + dataBytes;
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'config.json'), JSON.stringify({
    architectures: ['GPT2LMHeadModel'], model_type: 'gpt2', n_embd: d.nEmbd, n_head: d.nHead, n_layer: d.nLayer,
    n_positions: d.nPositions, vocab_size: d.vocab, activation_function: 'gelu_new', layer_norm_epsilon: 1e-5,
    tie_word_embeddings: true, torch_dtype: 'float32',
  }, null, 2));
  const block = new Rng(1).fillNormal(new Float32Array(1 << 20), 0, 0.02);
  const fs = (await getPlatform()).store;
  await writeAtomic(fs, file, async (sink) => {
    await sink.write(prefix);
    for (const t of tensors) {
      const n = t.shape.reduce((a, b) => a * b, 1);
      const isNormWeight = /ln_\w+\.weight$/.test(t.name);
      for (let o = 0; o < n; o += block.length) {
        const m = Math.min(block.length, n - o);
        const piece = isNormWeight ? new Float32Array(m).fill(1) : block.slice(0, m);
        await sink.write(new Uint8Array(piece.buffer));
      }
    }
  });
  return prefix.byteLength + dataBytes;
}
