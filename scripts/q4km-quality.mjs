// The 4-bit K-quant table of docs/quantization.md: models/shakespeare-char-256 (every matrix row a
// multiple of 256) written as llama.cpp's Q4_K_M, Q4_0 and Q8_0 by llama-quantize and as Q4_K_M by
// actlab (`actlab quantize --type q4_k_m`: reference rounding, --method imatrix, --method gptq),
// each evaluated by `actlab eval` against the F32 GGUF on the validation split of tinyshakespeare
// (nanoGPT's: the last 10%), chunks of 128 characters: mean KL, top-1 agreement, perplexity; bits
// per weight over the quantized matrices and over the whole file; llama-perplexity on the same text
// checks that llama.cpp loads and runs each file. Calibration: characters of the training split.
// Needs a build (dist/) and ../shared (tinyshakespeare, peers/llama.cpp).
// Usage: node scripts/q4km-quality.mjs [--model models/shakespeare-char-256] [--chunks 400]
//   [--calib-tokens 8192] [--json] [--keep DIR: keep the GGUF files there]
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import '../dist/src/backends/index.js';
import { initBackend, disposeBackends } from '../dist/src/tensor/engine.js';
import { openCheckpoint } from '../dist/src/models/checkpoint.js';
import { convertToGguf } from '../dist/src/formats/gguf-convert.js';
import { GgufFile } from '../dist/src/formats/gguf.js';
import { GGML_BLOCK } from '../dist/src/formats/gguf-quants.js';
import { NodeFileStore } from '../dist/src/io/node/file-store.js';
import { NodeFileSource } from '../dist/src/io/node/file-source.js';
import { GGUF_VALUE, u32 } from '../dist/src/formats/gguf-write.js';
import { peerLibDir } from '../dist/bench/llama-peer.js';

const args = process.argv.slice(2);
const opt = (n, d) => { const i = args.indexOf(`--${n}`); return i >= 0 ? args[i + 1] : d; };
const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const shared = join(root, '..', 'shared');
const modelDir = opt('model', join(root, 'models', 'shakespeare-char-256'));
const chunks = opt('chunks', '400');
const calibTokens = opt('calib-tokens', '8192');
const keep = opt('keep', '');
const work = keep || mkdtempSync(join(tmpdir(), 'q4km-quality-'));
const peers = join(shared, 'peers', 'llama.cpp');
const libDir = peerLibDir(peers, join(work, 'lib'));

// nanoGPT's split: the sorted characters, the first 90% trains, the last 10% validates
const text = readFileSync(join(shared, 'data', 'tinyshakespeare', 'input.txt'), 'utf8');
const nTrain = Math.floor(text.length * 0.9);
const valPath = join(work, 'val.txt');
const calibPath = join(work, 'calib.txt');
writeFileSync(valPath, text.slice(nTrain));
writeFileSync(calibPath, text.slice(nTrain - 4 * Number(calibTokens), nTrain)); // the end of the training split
const chars = [...new Set(text)].sort();

// GPT-2's byte-level alphabet (bytes_to_unicode): llama.cpp's 'gpt2' tokenizer reads tokens in it
function byteLevel(c) {
  const b = c.charCodeAt(0);
  if (b > 255) throw new Error(`character ${JSON.stringify(c)} is not one byte`);
  const printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
  if (printable) return c;
  let n = 0;
  for (let x = 0; x < b; x++) if (!((x >= 33 && x <= 126) || (x >= 161 && x <= 172) || (x >= 174 && x <= 255))) n++;
  return String.fromCharCode(256 + n);
}
const tokenizerMeta = {
  'tokenizer.ggml.model': 'gpt2', 'tokenizer.ggml.pre': 'gpt-2', 'tokenizer.ggml.tokens': chars.map(byteLevel),
  'tokenizer.ggml.token_type': chars.map(() => 1), 'tokenizer.ggml.merges': { type: GGUF_VALUE.STRING, value: [] },
  'tokenizer.ggml.bos_token_id': u32(0), 'tokenizer.ggml.eos_token_id': u32(0), 'tokenizer.ggml.add_bos_token': false,
};

// The F32 GGUF, with the character vocabulary as tokenizer
const f32 = join(work, 'f32.gguf');
{
  const ck = await openCheckpoint(modelDir, { memoryBudget: 0 });
  const backend = await initBackend('js');
  await convertToGguf(new NodeFileStore(), f32, ck.weights, ck.config, backend, { type: 'F32', metadata: { 'general.name': 'shakespeare-char-256', ...tokenizerMeta } });
  await ck.weights.close();
  disposeBackends();
}

const actlab = (...a) => JSON.parse(execFileSync('node', [join(root, 'bin', 'actlab.mjs'), ...a, '--json'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 1 << 26 }).trim().split('\n').pop());
const peerEnv = { ...process.env, LD_LIBRARY_PATH: libDir };
const llama = (tool, ...a) => execFileSync(join(peers, tool), a, { encoding: 'utf8', env: peerEnv, stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 1 << 26 });
const llamaLog = (tool, ...a) => {
  const r = spawnSync(join(peers, tool), a, { encoding: 'utf8', env: peerEnv, maxBuffer: 1 << 26 });
  return `${r.stdout ?? ''}\n${r.stderr ?? ''}\n(exit status ${r.status}, signal ${r.signal}${r.error ? `, ${r.error.message}` : ''})`;
};

/** Bits per weight over the quantized 2-D matrices and over the whole file, and the tensor types. */
async function bits(path) {
  const src = await NodeFileSource.open(path);
  try {
    const g = await GgufFile.open(src);
    let qBytes = 0, qN = 0, all = 0;
    const types = {};
    for (const t of g.tensors) {
      const n = t.shape.reduce((a, c) => a * c, 1);
      all += n;
      if (t.shape.length < 2 || t.type === 'F32') continue;
      const b = GGML_BLOCK[t.type];
      qBytes += (n / b.values) * b.bytes;
      qN += n;
      types[t.name] = t.type;
    }
    return { matrices: (qBytes * 8) / qN, file: (statSync(path).size * 8) / all, types };
  } finally {
    await src.close();
  }
}

const variants = [
  { name: 'llama.cpp Q8_0', make: (out) => llama('llama-quantize', f32, out, 'Q8_0') },
  { name: 'llama.cpp Q4_0', make: (out) => llama('llama-quantize', f32, out, 'Q4_0') },
  { name: 'llama.cpp Q4_K_M', make: (out) => llama('llama-quantize', f32, out, 'Q4_K_M') },
  { name: 'actlab Q4_K_M (reference rounding)', make: (out) => actlab('quantize', '--model', f32, '--type', 'q4_k_m', '--out', out) },
  { name: 'actlab Q4_K_M imatrix', make: (out) => actlab('quantize', '--model', f32, '--type', 'q4_k_m', '--method', 'imatrix', '--calib', calibPath, '--calib-tokens', calibTokens, '--out', out) },
  { name: 'actlab Q4_K_M GPTQ', make: (out) => actlab('quantize', '--model', f32, '--type', 'q4_k_m', '--method', 'gptq', '--calib', calibPath, '--calib-tokens', calibTokens, '--out', out) },
];
// llama.cpp's own KL: the F32 file's logits saved once, each file compared with them
const klBase = join(work, 'f32.kld');
const baseLog = llamaLog('llama-perplexity', '-m', f32, '-f', valPath, '-c', '128', '--chunks', chunks, '-t', '1', '-b', '128', '--kl-divergence-base', klBase);
if (!existsSync(klBase) || !statSync(klBase).size) throw new Error(`llama-perplexity did not save the F32 file's logits:\n${baseLog.slice(-2000)}`);
const rows = [];
let peerTypes;
for (const [i, v] of variants.entries()) {
  const out = join(work, `v${i}.gguf`);
  const t0 = performance.now();
  v.make(out);
  const quantS = (performance.now() - t0) / 1000;
  const b = await bits(out);
  if (v.name === 'llama.cpp Q4_K_M') peerTypes = b.types;
  const sameTypes = peerTypes && v.name.includes('Q4_K_M') ? Object.entries(peerTypes).every(([n, t]) => b.types[n] === t) : null;
  const e = actlab('eval', '--model', out, '--ref', f32, '--data', valPath, '--ctx', '128', '--chunks', chunks, '--backend', 'wasm');
  const perplexityArgs = ['-m', out, '-f', valPath, '-c', '128', '--chunks', chunks, '-t', '1', '-b', '128', '--kl-divergence-base', klBase, '--kl-divergence'];
  let lp = llamaLog('llama-perplexity', ...perplexityArgs);
  if (!/Mean\s+KLD:/.test(lp)) lp = llamaLog('llama-perplexity', ...perplexityArgs); // once more: a busy machine has killed it
  const ppl = /Mean PPL\(Q\)\s*:\s*([\d.]+)/.exec(lp)?.[1];
  const kld = /Mean\s+KLD:\s*([-\d.]+)/.exec(lp)?.[1];
  const same = /Same top p:\s*([\d.]+)/.exec(lp)?.[1];
  if (!ppl || !kld) throw new Error(`llama-perplexity did not run ${v.name} (${out}):\n${lp.slice(-2000)}`);
  rows.push({
    format: v.name, bpw_matrices: b.matrices, bpw_file: b.file, kl: e.kl_divergence, top1: e.top1_agreement, perplexity: e.perplexity,
    llama_perplexity: Number(ppl), llama_kl: Number(kld), llama_top1: Number(same) / 100, quantize_s: quantS, same_types_as_llama_q4_k_m: sameTypes,
  });
  console.error(JSON.stringify(rows.at(-1)));
}
const ref = actlab('eval', '--model', f32, '--data', valPath, '--ctx', '128', '--chunks', chunks, '--backend', 'wasm');
if (args.includes('--json')) console.log(JSON.stringify({ f32_perplexity: ref.perplexity, rows }));
else {
  console.log(`F32: perplexity ${ref.perplexity.toFixed(4)} (${chunks} chunks of 128 characters of the validation split)\n`);
  console.log('| format | bits/weight (matrices) | bits/weight (file) | mean KL | top-1 | perplexity | llama.cpp: KL, top-1, perplexity |');
  console.log('|---|---|---|---|---|---|---|');
  for (const r of rows) console.log(`| ${r.format} | ${r.bpw_matrices.toFixed(3)} | ${r.bpw_file.toFixed(3)} | ${r.kl.toFixed(5)} | ${(r.top1 * 100).toFixed(2)}% | ${r.perplexity.toFixed(4)} | ${r.llama_kl.toFixed(5)}, ${(r.llama_top1 * 100).toFixed(2)}%, ${r.llama_perplexity.toFixed(4)} |`);
  const odd = rows.filter((r) => r.same_types_as_llama_q4_k_m === false).map((r) => r.format);
  if (odd.length) console.log(`\ntensor types differ from llama.cpp's Q4_K_M in: ${odd.join(', ')}`);
}
if (!keep) rmSync(work, { recursive: true, force: true });
