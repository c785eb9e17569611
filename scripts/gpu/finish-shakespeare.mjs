// Makes the shakespeare-char model folder from what the GPU run brought back: joins the parts of
// the f32 model.safetensors (or takes a checkpoint folder's model.safetensors and config.json, as a
// CPU run of bench/shakespeare-char.ts leaves them), writes it as f16 (HF names, GPT2LMHeadModel config), a character
// tokenizer.json (nanoGPT's sorted character vocabulary as a BPE without merges, so each
// character is one token), and copies the logs. Needs a build (dist/).
// Usage: node scripts/gpu/finish-shakespeare.mjs RUN_DIR(with model.safetensors.part-* and logs) DATA_DIR(input.txt) OUT_DIR
import { readFileSync, readdirSync, writeFileSync, mkdirSync, copyFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import '../../dist/src/backends/index.js';
import { initBackend } from '../../dist/src/tensor/engine.js';
import { getPlatform } from '../../dist/src/io/platform.js';
import { SafetensorsFile, writeSafetensors } from '../../dist/src/formats/safetensors.js';

const [run, data, out] = process.argv.slice(2);
if (!run || !data || !out) throw new Error('usage: finish-shakespeare.mjs RUN_DIR DATA_DIR OUT_DIR');
mkdirSync(out, { recursive: true });
const parts = readdirSync(run).filter((f) => f.startsWith('model.safetensors.part-')).sort();
if (!parts.length && !existsSync(join(run, 'model.safetensors'))) throw new Error(`${run}: no model.safetensors.part-* files and no model.safetensors`);
const f32Path = parts.length ? join(run, 'model.f32.safetensors') : join(run, 'model.safetensors');
if (parts.length) writeFileSync(f32Path, Buffer.concat(parts.map((p) => readFileSync(join(run, p)))));
const text = readFileSync(join(data, 'input.txt'), 'utf8');
const chars = [...new Set(text)].sort();
const config = existsSync(join(run, 'config.json')) ? { ...JSON.parse(readFileSync(join(run, 'config.json'), 'utf8')), torch_dtype: 'float16' } : {
  model_type: 'gpt2', architectures: ['GPT2LMHeadModel'], vocab_size: chars.length, n_positions: 256, n_ctx: 256, n_embd: 384, n_layer: 6, n_head: 6,
  activation_function: 'gelu_new', layer_norm_epsilon: 1e-5, tie_word_embeddings: true, torch_dtype: 'float16',
};
writeFileSync(join(out, 'config.json'), JSON.stringify(config, null, 2) + '\n');
const tokenizer = {
  version: '1.0', truncation: null, padding: null, added_tokens: [], normalizer: null, pre_tokenizer: null, post_processor: null, decoder: { type: 'Fuse' },
  model: { type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: null, end_of_word_suffix: null, fuse_unk: false, byte_fallback: false, ignore_merges: false, vocab: Object.fromEntries(chars.map((c, i) => [c, i])), merges: [] },
};
writeFileSync(join(out, 'tokenizer.json'), JSON.stringify(tokenizer) + '\n');
const backend = await initBackend('js');
const store = (await getPlatform()).store;
const f = await SafetensorsFile.open(await store.openRead(f32Path));
const list = [];
for (const n of f.names()) {
  const t = await f.load(n, backend);
  list.push([n, t.cast('f16')]);
  t.dispose();
}
await f.close();
await writeSafetensors(store, join(out, 'model.safetensors'), list, { metadata: { format: 'pt' } });
for (const name of ['train_log.jsonl', 'eval_log.jsonl', 'trainer_state.json']) if (existsSync(join(run, name))) copyFileSync(join(run, name), join(out, name));
console.log(`wrote ${out}: ${list.length} tensors as f16, vocabulary ${chars.length}`);
