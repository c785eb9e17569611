// `actlab neurons select|bricks`: the neuron methods of src/probes on a model and text corpora.
//   select  concept (language) neurons of a target corpus against a source corpus (Neural FOXP2's
//           recipe): selective units with their logit-mass lift, layerwise difference spectra, the
//           intervention window, and the signed sparse shift evaluated on held-out contexts beside
//           the same recipe on random units
//   bricks  co-activation partitions of one MLP layer's neurons and the effect of ablating each
//           (Δloss and KL on held-out contexts of every corpus given, beside random-neuron controls)
import type { Command } from 'commander';
import { matchHookPatterns } from '../hooks/patterns.js';
import { getPlatform } from '../io/platform.js';
import type { LoadedModel } from '../models/load.js';
import { brickAblation, brickTokens, coactivationBricks, firing, hookRows } from '../probes/bricks.js';
import { conceptNeurons, conceptShift, labelMassAndLoss, type ConceptUnit } from '../probes/concept-neurons.js';
import { UnitMoments } from '../probes/unit-stats.js';
import { readContexts } from '../store/corpus.js';
import { disposeBackends } from '../tensor/engine.js';
import type { Tokenizer } from '../tokenizer/tokenizer.js';
import { loadForCli, type ModelArgs } from './common.js';
import { loadSaeArg } from './sae-eval.js';
import { action, int, modelOptions, num } from './options.js';

/** The first `count` contexts of `context` tokens of a text file (BOS first when the tokenizer has one). */
export async function corpusContexts(path: string, tok: Tokenizer, context: number, count: number): Promise<number[][]> {
  const source = await (await getPlatform()).openFile(path);
  const out: number[][] = [];
  try {
    for await (const c of readContexts(source, tok, { context, bos: tok.bosId !== null })) {
      out.push(Array.from(c));
      if (out.length >= count) break;
    }
  } finally {
    await source.close();
  }
  if (out.length < count) throw new Error(`${path}: holds only ${out.length} contexts of ${context} tokens; ${count} are needed (lower --contexts / --eval-contexts or --context)`);
  return out;
}

function tokenizerOf(m: LoadedModel): Tokenizer {
  if (!m.tokenizer) throw new Error(`${m.source}: no tokenizer found; give --tokenizer`);
  return m.tokenizer;
}

const show = (tok: Tokenizer, id: number) => JSON.stringify(tok.decode([id]) || tok.idToToken(id) || String(id));

interface CorpusArgs extends ModelArgs {
  contexts: number;
  evalContexts: number;
  context: number;
  json?: boolean;
}

export interface SelectArgs extends CorpusArgs {
  target: string;
  source: string;
  hooks: string;
  sae?: string;
  top: number;
  candidates: number;
  tokens: number;
  strength: string;
  seed: number;
}

export async function selectCommand(a: SelectArgs): Promise<number> {
  const m = await loadForCli(a);
  const loaded = a.sae ? await loadSaeArg(a.sae, a.offline) : null;
  try {
    const tok = tokenizerOf(m);
    const model = m.model;
    const strengths = a.strength.split(',').map((s) => { const v = Number(s); if (!s.trim() || !Number.isFinite(v)) throw new Error(`--strength: '${s}' is not a number`); return v; });
    const need = a.contexts + a.evalContexts;
    const [target, source] = await Promise.all([corpusContexts(a.target, tok, a.context, need), corpusContexts(a.source, tok, a.context, need)]);
    const hooks = loaded ? undefined : matchHookPatterns(a.hooks, model.hookPoints().map((h) => h.name));
    const progress = process.stderr.isTTY ? (what: string, d: number, t: number) => process.stderr.write(`\r${what} ${d}/${t}   `) : undefined;
    const r = conceptNeurons(model, target.slice(0, a.contexts), source.slice(0, a.contexts), {
      hooks, sae: loaded?.sae, top: a.top, candidates: a.candidates, tokens: { top: a.tokens, exclude: [tok.bosId, tok.eosId].filter((x): x is number => x !== null) },
      onProgress: progress,
    });
    if (progress) process.stderr.write('\n');
    const heldT = target.slice(a.contexts);
    const heldS = source.slice(a.contexts);
    const measure = (list: ReturnType<typeof conceptShift>) => {
      const s = labelMassAndLoss(model, heldS, r.tokens.ids, list);
      const t = labelMassAndLoss(model, heldT, r.tokens.ids, list);
      return { labelMassOnSource: s.mass, sourceNll: s.nll, targetNll: t.nll, labelMassOnTarget: t.mass };
    };
    const baseline = measure([]);
    const shifts = strengths.map((strength) => ({
      strength,
      shift: measure(conceptShift(r, { strength, sae: loaded?.sae })),
      random: measure(conceptShift(r, { strength, sae: loaded?.sae, support: 'random', seed: a.seed })),
    }));
    const out = { ...r, tokens: { ...r.tokens, text: r.tokens.ids.map((t) => tok.decode([t])) }, evaluation: { heldOut: { target: heldT.length, source: heldS.length }, baseline, shifts } };
    if (a.json) {
      console.log(JSON.stringify({ ...out, units: out.units.slice(0, 64) }));
      return 0;
    }
    console.log(`label tokens (${r.tokens.ids.length}, most target-specific first): ${r.tokens.ids.slice(0, 16).map((t) => show(tok, t)).join(' ')}`);
    const row = (u: ConceptUnit) => `  ${u.hook.padEnd(28)} ${String(u.unit).padStart(5)}  d ${u.d.toFixed(2).padStart(6)}  lift ${u.lift.toExponential(2).padStart(9)}  score ${u.score.toExponential(2).padStart(9)}${u.trace ? `  → units ${u.trace.map((x) => x.unit).join(',')}` : ''}`;
    console.log(`target-selective ${r.mode === 'sae' ? 'features' : 'neurons'} (d > 0, raising them moves the output toward the label):`);
    r.targetUnits.slice(0, 12).forEach((u) => console.log(row(u)));
    console.log(`source-selective ${r.mode === 'sae' ? 'features' : 'neurons'} (d < 0, lowering them moves the output toward the label):`);
    r.sourceUnits.slice(0, 12).forEach((u) => console.log(row(u)));
    console.log('difference spectra (target − source, context-pooled):');
    for (const l of r.layers) {
      const s = l.spectrum;
      console.log(`  ${l.hook.padEnd(28)} σ ${s.singular.map((x) => x.toFixed(2)).join(' ')}  eigengap ${s.eigengap.toFixed(2)}  gap rank ${s.gapRank}  eff. rank ${s.effectiveRank.toFixed(1)}  explained ${s.explained.toFixed(2)}  stability ${s.stability.toFixed(2)}${r.window.includes(l.hook) ? '  ← window' : ''}`);
    }
    const f = (x: number) => x.toFixed(4);
    console.log(`shift on held-out contexts (${heldS.length} source, ${heldT.length} target): label mass on source text, NLL of target and source text`);
    console.log(`  baseline            mass ${f(baseline.labelMassOnSource)}  target NLL ${f(baseline.targetNll)}  source NLL ${f(baseline.sourceNll)}`);
    for (const s of shifts) {
      console.log(`  strength ${String(s.strength).padEnd(4)} shift  mass ${f(s.shift.labelMassOnSource)}  target NLL ${f(s.shift.targetNll)}  source NLL ${f(s.shift.sourceNll)}`);
      console.log(`  ${''.padEnd(13)} random mass ${f(s.random.labelMassOnSource)}  target NLL ${f(s.random.targetNll)}  source NLL ${f(s.random.sourceNll)}`);
    }
    return 0;
  } finally {
    loaded?.sae.dispose();
    m.model.dispose();
    disposeBackends();
  }
}

export interface BricksArgs extends CorpusArgs {
  corpus: string;
  also?: string[];
  layer?: number;
  hook?: string;
  bricks: number;
  activeRate: string;
  ablation: string;
  controls: number;
  seed: number;
}

export async function bricksCommand(a: BricksArgs): Promise<number> {
  if (a.ablation !== 'zero' && a.ablation !== 'mean') throw new Error(`--ablation must be zero or mean, not '${a.ablation}'`);
  const rate = a.activeRate === 'positive' ? 'positive' : Number(a.activeRate);
  if (rate !== 'positive' && !(rate > 0 && rate < 1)) throw new Error(`--active-rate: '${a.activeRate}' must be a fraction in (0, 1) or 'positive'`);
  const m = await loadForCli(a);
  try {
    const tok = tokenizerOf(m);
    const model = m.model;
    const hook = a.hook ?? `blocks.${a.layer ?? 0}.mlp.hook_post`;
    if (!model.hookPoints().some((h) => h.name === hook)) throw new Error(`the model has no hook '${hook}' (it has ${model.dims.nLayers} layers)`);
    const files = [a.corpus, ...(a.also ?? [])];
    const ctxs = await Promise.all(files.map((f, i) => corpusContexts(f, tok, a.context, (i === 0 ? a.contexts : 0) + a.evalContexts)));
    const fit = ctxs[0]!.slice(0, a.contexts);
    const sets = ctxs.map((c, i) => c.slice(i === 0 ? a.contexts : 0));
    const rows = hookRows(model, fit, hook);
    const p = coactivationBricks(rows.data, rows.rows, rows.units, { bricks: a.bricks, activeRate: rate, seed: a.seed });
    let mean: Float32Array | undefined;
    if (a.ablation === 'mean') { const mo = new UnitMoments(rows.units); mo.add(rows.data, rows.rows); mean = Float32Array.from(mo.mean()); }
    const progress = process.stderr.isTTY ? (d: number, t: number) => process.stderr.write(`\rablating brick ${d}/${t}   `) : undefined;
    const effects = brickAblation(model, hook, p, sets, { mean, controls: a.controls, seed: a.seed, onProgress: progress });
    if (progress) process.stderr.write('\n');
    const tokens = brickTokens(firing(rows.data, rows.rows, rows.units, rate), rows.units, p, fit.flat(), { top: 5, minCount: 3 });
    const bricks = p.bricks.map((b, i) => ({ ...b, topTokens: tokens[i]!.map((t) => ({ ...t, text: tok.decode([t.token]) })), ...effects[i]! }));
    if (a.json) {
      console.log(JSON.stringify({ hook, ablation: a.ablation, sets: files, fitContexts: fit.length, evalContexts: sets.map((s) => s.length), rows: p.rows, method: p.method, contrast: p.contrast, bricks }));
      return 0;
    }
    console.log(`${hook}: ${p.units} neurons in ${p.bricks.length} bricks by co-activation over ${p.rows} positions (${p.method}); within/between co-activation ${p.contrast.toFixed(2)}`);
    console.log(`${a.ablation} ablation on held-out contexts of ${files.map((f, i) => `[${i}] ${f} (${sets[i]!.length})`).join(', ')}; control = random neurons outside the brick, as many`);
    for (const b of bricks) {
      const fx = b.effects.map((e, i) => `[${i}] ΔNLL ${e.dLoss.toFixed(4)} KL ${e.kl.toFixed(4)} (control ${b.control[i]!.dLoss.toFixed(4)} / ${b.control[i]!.kl.toFixed(4)})`).join('  ');
      console.log(`brick ${String(b.index).padStart(2)}  ${String(b.units.length).padStart(4)} neurons  cohesion ${b.cohesion.toFixed(2)} coupling ${b.coupling.toFixed(2)}  ${fx}  tokens ${b.topTokens.map((t) => JSON.stringify(t.text)).join(' ')}`);
    }
    return 0;
  } finally {
    m.model.dispose();
    disposeBackends();
  }
}

export function register(program: Command): void {
  const n = program.command('neurons').description('Neuron methods: concept neurons of a label (select) and co-activation partitions (bricks)');
  const corpus = (c: Command) => c
    .option('--contexts <n>', 'contexts the units are measured on', int(2), 32)
    .option('--eval-contexts <n>', 'held-out contexts the effects are measured on', int(1), 16)
    .option('--context <n>', 'tokens per context (BOS included)', int(2), 64)
    .option('--json', 'print one JSON object');
  corpus(modelOptions(n.command('select').description("Concept neurons (Neural FOXP2's recipe): units selective for a target corpus against a source corpus, their layerwise SVD directions, and a signed sparse shift toward the target")))
    .requiredOption('--target <file>', 'text of the label (e.g. tinyshakespeare/input.txt)')
    .requiredOption('--source <file>', 'text it is contrasted with (e.g. wikitext-2/valid.txt)')
    .option('--hooks <patterns>', 'comma-separated globs of hooks whose units are scored, one per layer', 'blocks.*.mlp.hook_post')
    .option('--sae <dir>', 'score the features of this SAE (SAELens folder or hf:ORG/REPO/FOLDER) at its hook instead')
    .option('--top <n>', 'units kept per hook and sign', int(1), 8)
    .option('--candidates <n>', 'units per hook and sign whose lift is measured', int(1), 16)
    .option('--tokens <n>', "size of the label's token set", int(1), 32)
    .option('--strength <list>', 'shift strengths evaluated, comma-separated', '1,2,4')
    .option('--seed <n>', 'seed of the random-unit control', int(0), 0)
    .action(action(selectCommand));
  corpus(modelOptions(n.command('bricks').description('Functional partitions: MLP neurons clustered by co-activation over a corpus, and the effect of ablating each partition')))
    .requiredOption('--corpus <file>', 'text the co-activations are measured on (its held-out contexts are evaluated too)')
    .option('--also <files...>', 'more texts whose contexts are evaluated (e.g. another style)')
    .option('--layer <n>', 'the layer: hook blocks.N.mlp.hook_post', int(0), 0)
    .option('--hook <name>', 'any hook with one vector per position instead of --layer')
    .option('--bricks <n>', 'number of partitions', int(2), 8)
    .option('--active-rate <x>', "fraction of positions at which a neuron counts as active (each neuron's own top), or 'positive'", '0.1')
    .option('--ablation <m>', 'zero or mean', 'zero')
    .option('--controls <n>', 'random-neuron sets per brick', int(0), 3)
    .option('--seed <n>', 'clustering and control seed', int(0), 0)
    .action(action(bricksCommand));
}
