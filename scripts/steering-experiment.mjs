#!/usr/bin/env node
// The stories260K steering experiment of docs/steering.md: a "dog" direction from contrastive
// prompts (docs/steering/dog-pairs.jsonl, difference of means over each sentence's tokens at
// blocks.L.hook_resid_post), added at every position with strengths 0..8; for each strength, 100
// sampled continuations of a neutral prompt (temperature 1, 48 tokens, one seed for every
// strength) and the share that mentions a dog, and the mean NLL per token of the unsteered
// reference text (the 100 strength-0 continuations with their prompt) under the steered model.
// A random direction of the same norm is the control. Writes docs/steering/experiment.json and
// the two figures (SVG). Needs the build (npm run build) and ../shared next to the repo.
//   node scripts/steering-experiment.mjs [--layer 2] [--backend wasm]
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const gguf = `${root}../shared/data/stories260K-gguf/stories260K.gguf`;
const dist = `${root}dist/src/index.js`;
if (!existsSync(dist)) { console.error('build first: npm run build'); process.exit(1); }
if (!existsSync(gguf)) { console.error(`${gguf} is missing`); process.exit(1); }
const arg = (name, dflt) => { const i = process.argv.indexOf(name); return i > 0 ? process.argv[i + 1] : dflt; };
const layer = Number(arg('--layer', '2'));
const backendName = arg('--backend', 'wasm');
const strengths = [0, 0.5, 1, 1.5, 2, 3, 4, 6, 8];
const N = 100;
const NEW = 48;
const SEED = 1;
const PROMPT = 'Once upon a time, there was a little girl named Lily.';
const CONCEPT = /\bdogs?\b/i;

const al = await import(dist);
const { model, tokenizer: tok } = await al.loadModel(gguf, { backend: await al.initBackend(backendName) });
const set = al.parseContrastJsonl(readFileSync(`${root}docs/steering/dog-pairs.jsonl`, 'utf8'), 'dog-pairs.jsonl');
const sv = al.steeringVectors(model, tok, set, { method: 'mean_diff', read: 'mean' });
const v = sv.vectors.get(layer);
const norm = Math.hypot(...v);
// The control: a fixed pseudo-random direction with the same norm.
let h = 12345;
const rnd = Float32Array.from({ length: v.length }, () => { h = (Math.imul(h, 1103515245) + 12345) >>> 0; return h / 2 ** 32 - 0.5; });
const rn = Math.hypot(...rnd);
const random = rnd.map((x) => (x * norm) / rn);
const prompt = tok.encode(PROMPT);

function sample(vector, s) {
  const ivs = s === 0 ? [] : [{ hook: `blocks.${layer}.hook_resid_post`, op: 'add', vector, strength: s }];
  return al.withInterventions(model, ivs, () => al.generate(model, Array(N).fill(prompt), { maxNewTokens: NEW, temperature: 1, seed: SEED, tokenizer: tok }));
}

/** Mean NLL per predicted token of `seqs` (token id lists), in batches, under the current hooks. */
function nll(seqs) {
  let total = 0;
  let count = 0;
  const V = model.dims.vocabSize;
  for (let i = 0; i < seqs.length; i += 25) {
    const part = seqs.slice(i, i + 25);
    const P = Math.max(...part.map((s) => s.length));
    const ids = part.flatMap((s) => [...new Array(P - s.length).fill(s[0]), ...s]);
    const mask = part.map((s) => [...new Array(P - s.length).fill(0), ...s.map(() => 1)]);
    const logits = model.forward(al.tensor(ids, [part.length, P], 'i32', { backend: model.backend }), { attentionMask: mask });
    const lp = al.logSoftmax(logits);
    const d = lp.dataSync();
    part.forEach((s, r) => {
      const off = P - s.length;
      for (let j = 0; j + 1 < s.length; j++) { total -= d[(r * P + off + j) * V + s[j + 1]]; count++; }
    });
    logits.dispose(); lp.dispose();
  }
  return total / count;
}

const reference = sample(v, 0);
const refSeqs = reference.ids;
const rows = [];
for (const [kind, vector] of [['concept', v], ['random', random]]) {
  for (const s of strengths) {
    const r = s === 0 ? reference : sample(vector, s);
    const rate = r.text.filter((t) => CONCEPT.test(t)).length / N;
    const ivs = s === 0 ? [] : [{ hook: `blocks.${layer}.hook_resid_post`, op: 'add', vector, strength: s }];
    const refNll = al.withInterventions(model, ivs, () => nll(refSeqs));
    rows.push({ direction: kind, strength: s, conceptRate: rate, referenceNll: refNll, example: r.text[0] });
    console.log(`${kind.padEnd(7)} strength ${String(s).padStart(3)}: ${(rate * 100).toFixed(0).padStart(3)}% mention a dog; reference NLL ${refNll.toFixed(4)}; e.g. ${JSON.stringify(r.text[0].slice(0, 90))}`);
  }
}

const out = {
  model: 'stories260K (GGUF)', backend: backendName, layer, hook: `blocks.${layer}.hook_resid_post`, method: 'mean_diff', read: 'mean',
  pairs: set.pairs.length, vectorNorm: norm, sweep: sv.sweep, prompt: PROMPT, samples: N, newTokens: NEW, temperature: 1, seed: SEED,
  concept: String(CONCEPT), rows,
};
writeFileSync(`${root}docs/steering/experiment.json`, `${JSON.stringify(out, null, 1)}\n`);

const Plot = await import('@observablehq/plot');
const { parseHTML } = await import('linkedom');
const { document } = parseHTML('<!doctype html><html><head></head><body></body></html>');
const last = rows.filter((r) => r.strength === strengths.at(-1));
const chart = (y, label, file) => {
  const p = Plot.plot({
    document, width: 520, height: 280, marginLeft: 60, marginRight: 70, grid: true,
    x: { label: `strength (× vector of norm ${norm.toFixed(2)}, added at ${out.hook})` }, y: { label, zero: true },
    color: { domain: ['concept', 'random'], range: ['#d62728', '#7f7f7f'] },
    marks: [
      Plot.line(rows, { x: 'strength', y, stroke: 'direction' }), Plot.dot(rows, { x: 'strength', y, fill: 'direction' }),
      Plot.text(last, { x: 'strength', y, text: (d) => (d.direction === 'concept' ? 'dog direction' : 'random direction'), fill: 'direction', dx: 6, textAnchor: 'start' }),
    ],
  });
  const svg = p.outerHTML.includes('xmlns=') ? p.outerHTML : p.outerHTML.replace('<svg', '<svg xmlns="http://www.w3.org/2000/svg"');
  writeFileSync(`${root}docs/steering/${file}`, `${svg}\n`);
};
chart('conceptRate', 'share of 100 continuations mentioning a dog', 'concept-rate.svg');
chart('referenceNll', 'NLL per token of unsteered reference text', 'reference-nll.svg');
console.log('wrote docs/steering/experiment.json, concept-rate.svg, reference-nll.svg');
model.dispose();
