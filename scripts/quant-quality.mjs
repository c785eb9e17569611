// The quality table of actlab's weight formats (docs/quantization.md): every format written by
// `actlab quantize` from stories260K (../shared/data) and evaluated by `actlab eval` against the
// F32 model on the first 16 chunks of 256 tokens of wikitext-2's test split (KL, top-1,
// perplexity), calibration (llm-fp4, mixed) on wikitext-2's validation split; the organisms'
// accuracy (modular-addition test accuracy, induction in-context loss drop) from `actlab
// organisms eval` on the same formats. Prints a markdown table; --json prints the rows.
// Usage: node scripts/quant-quality.mjs [--json] [--backend wasm|js] [--chunks 16] [--only int8,nf4]
import { execFileSync } from 'node:child_process';
import { mkdirSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const args = process.argv.slice(2);
const opt = (n, d) => { const i = args.indexOf(`--${n}`); return i >= 0 ? args[i + 1] : d; };
const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const data = join(root, '..', 'shared', 'data');
const out = join(root, 'bench', '.cache', 'quant-quality');
const backend = opt('backend', 'wasm');
const chunks = opt('chunks', '16');
const only = opt('only', '')?.split(',').filter(Boolean);
mkdirSync(out, { recursive: true });

const model = join(data, 'stories260K', 'stories260K.bin');
const tok = join(data, 'stories260K', 'tok512.bin');
const test = join(data, 'wikitext-2', 'test.txt');
const valid = join(data, 'wikitext-2', 'valid.txt');
const actlab = (...a) => JSON.parse(execFileSync('node', [join(root, 'bin', 'actlab.mjs'), ...a, '--json'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 1 << 26 }).trim().split('\n').pop());

const TYPES = ['int8', 'fp8_e4m3', 'fp8_e5m2', 'int4a_g32', 'int4_g32', 'int4a_g64', 'nf4', 'fp4', 'llm-fp4', 'mixed:4.5', 'int4_g64', 'nf4_dq'];
const rows = [];
for (const type of TYPES.filter((t) => !only?.length || only.includes(t))) {
  const dir = join(out, type.replace(':', '-'));
  rmSync(dir, { recursive: true, force: true });
  const calib = type === 'llm-fp4' || type.startsWith('mixed') ? ['--calib', valid] : [];
  const q = actlab('quantize', '--model', model, '--tokenizer', tok, '--type', type, '--out', dir, ...calib);
  const e = actlab('eval', '--model', dir, '--ref', model, '--tokenizer', tok, '--data', test, '--ctx', '256', '--chunks', chunks, '--backend', backend);
  const row = { type, bits_per_weight: q.bits_per_weight, weight_bytes: e.memory.file_bytes, perplexity: e.perplexity, kl: e.kl_divergence, top1: e.top1_agreement };
  if (q.mixed) row.mixed = q.mixed;
  if (!type.startsWith('mixed') && type !== 'llm-fp4') {
    for (const org of ['modular-addition', 'induction']) {
      const odir = join(out, `${org}-${type}`);
      rmSync(odir, { recursive: true, force: true });
      actlab('quantize', '--model', join(root, 'models', 'organisms', org), '--type', type, '--out', odir);
      const r = actlab('organisms', 'eval', org, '--model', odir, '--backend', backend);
      row[org] = org === 'modular-addition' ? r.test_accuracy : r.in_context_loss_drop;
    }
  }
  rows.push(row);
  if (!args.includes('--json')) process.stderr.write(`${type}: ${JSON.stringify(row)}\n`);
}
if (args.includes('--json')) console.log(JSON.stringify(rows));
else {
  const f = (x, d = 4) => (x === undefined ? '—' : typeof x === 'number' ? x.toFixed(d) : String(x));
  console.log('| format | bits/weight (packed) | weight bytes | perplexity | mean KL | top-1 | mod-add test acc | induction ICL drop |');
  console.log('|---|---:|---:|---:|---:|---:|---:|---:|');
  for (const r of rows) console.log(`| ${r.type} | ${f(r.bits_per_weight, 3)} | ${r.weight_bytes} | ${f(r.perplexity, 2)} | ${f(r.kl, 5)} | ${f(100 * r.top1, 2)}% | ${f(r['modular-addition'])} | ${f(r.induction)} |`);
}
