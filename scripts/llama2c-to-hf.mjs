#!/usr/bin/env node
// Converts a llama2.c checkpoint (+ tokenizer .bin) into a Hugging Face Llama folder
// (config.json, generation_config.json, model.safetensors) with actlab's own loader, which maps
// llama2.c's names to HF's and permutes q/k into HF's rotate-half layout. Used to make the
// transformers reference outputs for stories260K (scripts/fixtures/make_hf_fixtures.py).
// Usage: node scripts/llama2c-to-hf.mjs MODEL.bin OUT_DIR
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const [modelPath, outDir] = process.argv.slice(2);
if (!modelPath || !outDir) {
  console.error('usage: node scripts/llama2c-to-hf.mjs MODEL.bin OUT_DIR');
  process.exit(2);
}
const dist = new URL('../dist/src/', import.meta.url);
const { initBackend } = await import(new URL('index.js', dist));
const { Llama2cCheckpoint } = await import(new URL('formats/llama2c.js', dist));
const { NodeFileSource } = await import(new URL('io/node/file-source.js', dist));
const { writeSafetensors } = await import(new URL('formats/safetensors.js', dist));
const { getPlatform } = await import(new URL('io/platform.js', dist));

const backend = await initBackend('js');
const ckpt = await Llama2cCheckpoint.open(await NodeFileSource.open(modelPath));
const config = ckpt.config();
mkdirSync(outDir, { recursive: true });
const tensors = [];
for (const name of ckpt.names()) tensors.push([name, await ckpt.load(name, backend)]);
await writeSafetensors((await getPlatform()).store, join(outDir, 'model.safetensors'), tensors, { metadata: { format: 'pt', source: 'llama2.c ' + modelPath } });
writeFileSync(join(outDir, 'config.json'), JSON.stringify({ architectures: ['LlamaForCausalLM'], ...config }, null, 2));
writeFileSync(join(outDir, 'generation_config.json'), JSON.stringify({ bos_token_id: 1, eos_token_id: 2 }, null, 2));
await ckpt.close();
console.log(`wrote ${tensors.length} tensors and config to ${outDir}`);
