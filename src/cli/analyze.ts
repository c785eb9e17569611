// `actlab analyze NAME`: one analysis of src/analysis on a model and a prompt (or an activation
// store, or a recorded matrix), printed as JSON (indented; one line with --json).
//   massive     [--checkpoint M ...] [--abs-threshold 100] [--ratio-threshold 1000]
//   sinks       [--epsilon 0.3] [--cos 0.9]
//   sparsity    [--mode auto|zero|eps] [--epsilon 0.01]
//   voids       [--alpha 0.8] [--generate 16]
//   logit-lens  [--position -1] [--top-k 5]
//   induction   [--length N] [--sequences 4] [--threshold 0.4] [--seed 0]
//   experts
//   neurons     --store DIR --hook H --neuron N [--top-k 10] [--facets 3] [--model M for decoding]
//   similarity  layers of --model; or --against M2 (layer by layer); or --recording FILE (.npy,
//               .csv, .safetensors [--tensor NAME]) against each layer; [--method cka|rsa|svcca]
//               [--units U] [--stimuli S] [--repeats R] [--seed 0]
import '../backends/index.js';
import { Argument, Option, type Command } from 'commander';
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { massiveAcrossCheckpoints, massiveFromActs, massiveHookNames } from '../analysis/massive.js';
import { sinkHookNames, sinksFromActs } from '../analysis/sinks.js';
import { sparsityFromActs, sparsityHookNames } from '../analysis/sparsity.js';
import { layerVoidsAsync } from '../analysis/voids.js';
import { logitLensAsync } from '../analysis/logit-lens.js';
import { inductionScoresAsync } from '../analysis/induction.js';
import { expertHookNames, expertsFromActs } from '../analysis/experts.js';
import { collectAsync } from '../analysis/acts.js';
import { topActivatingExamples } from '../analysis/neurons.js';
import { compareRepresentations, layerRepresentationsAsync, similarityGrid, SIMILARITY_METHODS, type SimilarityMethod } from '../analysis/similarity.js';
import { parseMatrixFile } from '../analysis/matrix-file.js';
import { ActivationStore } from '../store/reader.js';
import { disposeBackends } from '../tensor/engine.js';
import type { LoadedModel } from '../models/load.js';
import { checkContext, inputIds, loadForCli, pickBackend, type ModelArgs, type PromptArgs } from './common.js';
import { DEFAULT_PROMPT } from './inspect.js';
import { action, int, modelOptions, num, promptOptions } from './options.js';

export const ANALYSES = ['massive', 'sinks', 'sparsity', 'voids', 'logit-lens', 'induction', 'experts', 'neurons', 'similarity'] as const;

export interface AnalyzeArgs extends Partial<ModelArgs>, PromptArgs {
  json?: boolean;
  checkpoint?: string[];
  absThreshold?: number;
  ratioThreshold?: number;
  epsilon?: number;
  cos?: number;
  mode?: string;
  alpha?: number;
  generate?: number;
  position?: number;
  topK?: number;
  length?: number;
  sequences?: number;
  threshold?: number;
  seed?: number;
  store?: string;
  hook?: string;
  neuron?: number;
  facets?: number;
  against?: string;
  recording?: string;
  tensor?: string;
  method?: string;
  units?: number;
  stimuli?: number;
  repeats?: number;
}

export function register(program: Command): void {
  const c = modelOptions(program.command('analyze')
    .description('One analysis as JSON: massive, sinks, sparsity, voids, logit-lens, induction, experts, neurons, similarity')
    .addArgument(new Argument('<name>', 'the analysis').choices(ANALYSES)), { optional: '' });
  promptOptions(c)
    .option('--json', 'one line of JSON')
    .option('--checkpoint <M...>', 'massive: a series of checkpoints (instead of --model)')
    .option('--abs-threshold <x>', 'massive: |a| above this (100)', num({ min: 0 }))
    .option('--ratio-threshold <x>', 'massive: and this multiple of the median |a| (1000)', num({ min: 0 }))
    .option('--epsilon <x>', 'sinks: sink-head threshold (0.3); sparsity: |a| cut-off (0.01)', num({ min: 0 }))
    .option('--cos <x>', 'sinks: |cos| for secondary sinks (0.9)', num({ min: 0, max: 1 }))
    .addOption(new Option('--mode <m>', 'sparsity: auto, zero or eps').choices(['auto', 'zero', 'eps']))
    .option('--alpha <x>', 'voids: LAC alpha (0.8)', num({ above: 0, max: 1 }))
    .option('--generate <n>', 'voids: greedy tokens of the generation phase (16)', int(0))
    .option('--position <i>', 'logit-lens: position (-1)', num({ int: true }))
    .option('--top-k <k>', 'logit-lens: top tokens; neurons: examples', int(1))
    .option('--length <n>', 'induction: random segment length', int(1))
    .option('--sequences <n>', 'induction: sequences averaged', int(1))
    .option('--threshold <x>', 'induction: score of an induction head (0.4)', num())
    .option('--seed <n>', 'random seed', int(0))
    .option('--store <dir>', 'neurons: activation store (actlab cache)')
    .option('--hook <name>', 'neurons: stored hook')
    .option('--neuron <n>', 'neurons: unit index', int(0))
    .option('--facets <k>', 'neurons: facets (3; 0 for none)', int(0))
    .option('--against <M>', 'similarity: a second model with the same tokenizer, compared layer by layer')
    .option('--recording <file>', 'similarity: a recorded [stimuli, units] matrix (.npy, .csv, .safetensors)')
    .option('--tensor <name>', 'similarity: the tensor of a .safetensors recording')
    .addOption(new Option('--method <m>', 'similarity: cka, rsa or svcca (default all)').choices(SIMILARITY_METHODS))
    .option('--units <n>', 'similarity: units subsampled per repeat', int(1))
    .option('--stimuli <n>', 'similarity: stimuli subsampled per repeat', int(1))
    .option('--repeats <n>', 'similarity: subsampling repeats', int(1))
    .action(action(analyzeCommand));
}

function promptIds(o: AnalyzeArgs, m: LoadedModel): { ids: number[]; text?: string } {
  if (o.prompt === undefined && o.ids === undefined) {
    if (!m.tokenizer) throw new Error(`${m.source} has no tokenizer; pass --ids`);
    return { ids: inputIds({ prompt: DEFAULT_PROMPT }, m), text: DEFAULT_PROMPT };
  }
  return { ids: inputIds(o, m), text: o.prompt };
}

async function analyze(name: string, o: AnalyzeArgs): Promise<unknown> {
  if (!(ANALYSES as readonly string[]).includes(name)) throw new Error(`unknown analysis '${name}' (have ${ANALYSES.join(', ')})`);
  const load = (model: string, tokenizer = o.tokenizer) => loadForCli({ model, tokenizer, backend: o.backend, offline: o.offline });
  if (name === 'neurons') {
    if (!o.store || !o.hook || o.neuron === undefined) throw new Error('neurons: give --store DIR --hook NAME --neuron N');
    // --model only decodes the examples' tokens; without it the examples are token ids.
    const m = o.model ? await load(o.model) : undefined;
    try {
      const store = await ActivationStore.open(o.store);
      const backend = m?.model.backend ?? await pickBackend(o.backend);
      return await topActivatingExamples(store, { hook: o.hook, neuron: o.neuron, k: o.topK, facets: o.facets, tokenizer: m?.tokenizer, seed: o.seed, backend });
    } finally {
      m?.model.dispose();
    }
  }
  if (name === 'massive' && o.checkpoint?.length) {
    const models = [];
    for (const c of o.checkpoint) models.push({ label: c, m: await load(c) });
    const { ids } = promptIds(o, models[0]!.m);
    const r = massiveAcrossCheckpoints(models.map((x) => ({ label: x.label, model: x.m.model })), ids, { absThreshold: o.absThreshold, ratioThreshold: o.ratioThreshold, tokenizer: models[0]!.m.tokenizer });
    for (const x of models) x.m.model.dispose();
    return { checkpoints: r };
  }
  if (!o.model) throw new Error(`${name}: give --model`);
  const m = await load(o.model);
  try {
    const tok = m.tokenizer;
    // Every analysis reads its activations asynchronously, so it runs on every backend (WebGPU included).
    const L = m.model.dims.nLayers;
    if (name === 'induction') {
      return await inductionScoresAsync(m.model, { length: o.length, sequences: o.sequences, threshold: o.threshold, seed: o.seed, bos: tok ? tok.bosId : undefined });
    }
    const { ids, text } = promptIds(o, m);
    checkContext(m, ids.length);
    switch (name) {
      case 'massive': return massiveFromActs(await collectAsync(m.model, ids, massiveHookNames(m.model)), L, { absThreshold: o.absThreshold, ratioThreshold: o.ratioThreshold, tokenizer: tok });
      case 'sinks': return sinksFromActs(await collectAsync(m.model, ids, sinkHookNames(m.model)), L, { epsilon: o.epsilon, cosThreshold: o.cos, tokenizer: tok });
      case 'sparsity': return sparsityFromActs(await collectAsync(m.model, ids, sparsityHookNames(m.model)), L, { mode: o.mode as 'auto' | 'zero' | 'eps' | undefined, epsilon: o.epsilon });
      case 'voids': return await layerVoidsAsync(m.model, ids, { alpha: o.alpha, generateTokens: o.generate, tokenizer: tok });
      case 'logit-lens': return await logitLensAsync(m.model, ids, { position: o.position, k: o.topK, tokenizer: tok });
      case 'experts': {
        if (!m.model.dims.nExperts) throw new Error(`experts: ${m.source} is not a mixture-of-experts model`);
        return expertsFromActs(await collectAsync(m.model, ids, expertHookNames(m.model)), L, { tokenizer: tok });
      }
      case 'similarity': {
        const methods = o.method ? [o.method as SimilarityMethod] : SIMILARITY_METHODS;
        for (const x of methods) if (!SIMILARITY_METHODS.includes(x)) throw new Error(`--method: '${x}' (have ${SIMILARITY_METHODS.join(', ')})`);
        const sub = { units: o.units, stimuli: o.stimuli, repeats: o.repeats, seed: o.seed };
        const a = await layerRepresentationsAsync(m.model, ids);
        if (o.recording) {
          const rec = await parseMatrixFile(basename(o.recording), new Uint8Array(readFileSync(o.recording)), o.tensor);
          if (rec.rows !== ids.length) throw new Error(`similarity: ${o.recording} has ${rec.rows} stimuli (rows) but the prompt has ${ids.length} tokens; one row per token is needed`);
          return { stimuli: ids.length, recording: { file: o.recording, rows: rec.rows, cols: rec.cols }, layers: a.labels.map((label, i) => ({ layer: label, ...compareRepresentations(a.matrices[i]!, rec, { ...sub, methods }) })) };
        }
        if (o.against) {
          const m2 = await load(o.against, undefined);
          try {
            checkSameInput(m, m2, ids, text);
            checkContext(m2, ids.length, `--against ${o.against}`);
            const b = await layerRepresentationsAsync(m2.model, ids);
            return { stimuli: ids.length, rows: a.labels, cols: b.labels, grids: Object.fromEntries(methods.map((x) => [x, similarityGrid(a.matrices, b.matrices, x, sub)])) };
          } finally {
            m2.model.dispose();
          }
        }
        return { stimuli: ids.length, layers: a.labels, grids: Object.fromEntries(methods.map((x) => [x, similarityGrid(a.matrices, a.matrices, x, sub)])) };
      }
    }
    throw new Error(`unknown analysis '${name}'`);
  } finally {
    m.model.dispose();
  }
}

/**
 * Refuses to compare two models on one list of ids unless those ids mean the same text to both:
 * the second model's tokenizer must encode the prompt to the same ids (or, without tokenizers,
 * the vocabularies must have one size).
 */
export function checkSameInput(m: LoadedModel, m2: LoadedModel, ids: readonly number[], text: string | undefined): void {
  const t1 = m.tokenizer;
  const t2 = m2.tokenizer;
  if (t1 && t2) {
    const prompt = text ?? t1.decode(ids, { skipSpecialTokens: true });
    const a = t1.encode(prompt);
    const b = t2.encode(prompt);
    if (a.length !== b.length || a.some((x, i) => x !== b[i])) {
      throw new Error(`similarity --against: ${m2.source} has another tokenizer than ${m.source} (the prompt is ${b.length} tokens [${b.slice(0, 6).join(', ')}${b.length > 6 ? ', …' : ''}] for it, `
        + `${a.length} tokens [${a.slice(0, 6).join(', ')}${a.length > 6 ? ', …' : ''}] for the first); the two would read different texts, so their layers cannot be compared token by token`);
    }
    return;
  }
  if (t1 || t2) process.stderr.write(`actlab: similarity --against: ${(t1 ? m2 : m).source} has no tokenizer, so the ids are assumed to mean the same text to both models\n`);
  if (m.model.dims.vocabSize !== m2.model.dims.vocabSize) {
    throw new Error(`similarity --against: ${m2.source} has a vocabulary of ${m2.model.dims.vocabSize} tokens and ${m.source} of ${m.model.dims.vocabSize}; the same ids would be different texts to them`);
  }
}

export async function analyzeCommand(name: string, o: AnalyzeArgs): Promise<number> {
  try {
    const r = await analyze(name, o);
    console.log(o.json ? JSON.stringify(r) : JSON.stringify(r, null, 2));
    return 0;
  } finally {
    disposeBackends();
  }
}
