// `actlab steer`: generations with and without a steering vector, side by side (same seed).
// The vector comes from a file (--vector: a llama.cpp control-vector .gguf, a .safetensors, or an
// intervention .json) or is computed from contrastive pairs (--pairs JSONL: difference of means,
// pca_diff or pca_center at --layer, with the layer sweep under --sweep). --save writes the vector
// as a control vector (.gguf) or an intervention file (.json).
import type { Command } from 'commander';
import { SafetensorsFile } from '../formats/safetensors.js';
import { NodeFileSource } from '../io/node/file-source.js';
import { readFileSync } from 'node:fs';
import { generateAsync } from '../models/generate.js';
import { disposeBackends } from '../tensor/engine.js';
import { compileInterventions } from '../interventions/apply.js';
import { parseContrastJsonl } from '../interventions/contrastive.js';
import { controlVectorFromSteering, controlVectorInterventions, readControlVector, writeControlVector } from '../interventions/control-vector.js';
import { InterventionError, type Intervention, type PositionSpec } from '../interventions/intervention.js';
import {
  DEFAULT_STEERING_HOOK, STEERING_METHODS, hookFor, steeringIntervention, steeringVectors, type LayerSeparation, type SteeringMethod, type SteeringVectors,
} from '../interventions/steering-vectors.js';
import { loadInterventions, saveInterventions } from '../interventions/vector-ref.js';
import type { LoadedModel } from '../models/load.js';
import { inputIds, loadForCli, type ModelArgs, type PromptArgs } from './common.js';
import { action, modelOptions, promptOptions } from './options.js';

export interface SteerArgs extends ModelArgs, PromptArgs {
  vector?: string;
  pairs?: string;
  layer?: string;
  strength: string;
  method: string;
  read: string;
  hook: string;
  positions: string;
  sweep?: boolean;
  save?: string;
  maxNewTokens: string;
  temperature: string;
  topK?: string;
  topP?: string;
  seed: string;
  json?: boolean;
}

export function register(program: Command): void {
  promptOptions(modelOptions(program.command('steer').description('Generate with and without a steering vector, side by side (same seed)')))
    .option('--vector <file>', 'a llama.cpp control vector (.gguf), a .safetensors (direction.N or one 1-D tensor) or an intervention file (.json)')
    .option('--pairs <file>', 'contrastive JSONL ({positive, negative}, {prompt, positive, negative}, CAA files or {text, label}) to compute the vector from')
    .option('--layer <L>', 'block whose residual is steered (a .gguf without --layer applies every direction)')
    .option('--strength <s>', 'multiplier of the vector; a comma-separated list gives one steered column each', '4')
    .option('--method <m>', `with --pairs: ${STEERING_METHODS.join(', ')}`, 'mean_diff')
    .option('--read <pos>', "with --pairs: the token read from each text: 'last', 'mean' (over the answer) or an index", 'last')
    .option('--hook <template>', 'the steered hook point, {layer} for the block', DEFAULT_STEERING_HOOK)
    .option('--positions <p>', "'all', 'prompt' or 'generated'", 'all')
    .option('--sweep', 'with --pairs: report every layer\'s separation (and steer the best layer unless --layer)')
    .option('--save <file>', 'write the vector: .gguf (llama.cpp control vector) or .json (interventions, vectors in a .safetensors beside it)')
    .option('--max-new-tokens <n>', 'tokens to generate', '40')
    .option('--temperature <t>', '0 is greedy', '0')
    .option('--top-k <k>', 'sample among the k most likely tokens')
    .option('--top-p <p>', 'sample within probability mass p')
    .option('--seed <n>', 'random seed for sampling (the same for every column)', '0')
    .option('--json', 'print one JSON object')
    .action(action(steerCommand));
}

function num(v: string | undefined, flag: string, o: { int?: boolean; min?: number } = {}): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (v.trim() === '' || !Number.isFinite(n) || (o.int && !Number.isInteger(n)) || (o.min !== undefined && n < o.min)) {
    throw new InterventionError(`${flag}: '${v}' is not ${o.int ? 'an integer' : 'a number'}${o.min !== undefined ? ` >= ${o.min}` : ''}`);
  }
  return n;
}

interface Plan {
  interventions: (strength: number) => Intervention[];
  describe: string;
  layer?: number;
  hook?: string;
  sweep?: LayerSeparation[];
  vectors?: SteeringVectors;
}

async function planFromFile(a: SteerArgs, m: LoadedModel, layer: number | undefined, positions: PositionSpec): Promise<Plan> {
  const file = a.vector!;
  const nLayers = m.model.dims.nLayers;
  const at = (ivs: Intervention[]) => (positions === 'all' ? ivs : ivs.map((iv) => ({ ...iv, positions })));
  if (/\.gguf$/i.test(file)) {
    const cv = await readControlVector(file);
    if (layer !== undefined && !cv.directions.has(layer)) throw new InterventionError(`${file}: no direction.${layer} (it has ${[...cv.directions.keys()].map((n) => `direction.${n}`).join(', ')})`);
    const range = layer === undefined ? {} : { layerStart: layer, layerEnd: layer };
    controlVectorInterventions(cv, 1, { ...range, nLayers });
    return {
      interventions: (s) => at(controlVectorInterventions(cv, s, { ...range, nLayers })), layer,
      describe: `control vector ${file} (model hint '${cv.modelHint}'), ${layer === undefined ? `directions ${[...cv.directions.keys()].join(', ')}` : `direction.${layer}`} at blocks.N.hook_resid_post`,
    };
  }
  if (/\.safetensors$/i.test(file)) {
    const st = await SafetensorsFile.open(await NodeFileSource.open(file));
    try {
      const names = st.names();
      const dirs = names.filter((n) => /^direction\.\d+$/.test(n));
      let name: string;
      if (layer !== undefined && dirs.includes(`direction.${layer}`)) name = `direction.${layer}`;
      else if (names.length === 1) name = names[0]!;
      else throw new InterventionError(`${file}: holds ${names.length} tensors; name one by --layer L (direction.L)${dirs.length ? '' : ' or keep one tensor in the file'}`);
      if (layer === undefined) throw new InterventionError(`${file}: --layer is needed to place the vector '${name}'`);
      const t = await st.load(name, m.model.backend);
      const v = Float32Array.from(t.cast('f32').dataSync() as Float32Array);
      t.dispose();
      const hook = hookFor(a.hook, layer);
      return { interventions: (s) => at([{ hook, op: 'add', vector: v, strength: s }]), layer, hook, describe: `vector '${name}' of ${file} at ${hook}` };
    } finally {
      await st.close();
    }
  }
  if (/\.json$/i.test(file)) {
    const list = await loadInterventions(file);
    return {
      interventions: (s) => at(list.map((iv) => (iv.op === 'add' ? { ...iv, strength: (iv.strength ?? 1) * s } : iv))),
      describe: `interventions of ${file} (--strength multiplies their 'add' strengths)`,
    };
  }
  throw new InterventionError(`--vector ${file}: expected a .gguf control vector, a .safetensors or an intervention .json`);
}

function planFromPairs(a: SteerArgs, m: LoadedModel, layer: number | undefined, positions: PositionSpec): Plan {
  if (!m.tokenizer) throw new InterventionError(`${m.source} has no tokenizer; --pairs needs one (pass --tokenizer)`);
  if (!(STEERING_METHODS as string[]).includes(a.method)) throw new InterventionError(`--method: '${a.method}' is not one of ${STEERING_METHODS.join(', ')}`);
  const read = a.read === 'last' || a.read === 'mean' ? a.read : num(a.read, '--read', { int: true })!;
  if (layer === undefined && !a.sweep) throw new InterventionError('--pairs needs --layer L (or --sweep to choose the layer that separates the sets best)');
  const set = parseContrastJsonl(readFileSync(a.pairs!, 'utf8'), a.pairs);
  const sv = steeringVectors(m.model, m.tokenizer, set, { method: a.method as SteeringMethod, read, hook: a.hook, layers: a.sweep ? undefined : [layer!] });
  const best = layer ?? [...sv.sweep].sort((x, y) => (y.heldOutAccuracy ?? y.accuracy) - (x.heldOutAccuracy ?? x.accuracy) || y.cohenD - x.cohenD)[0]!.layer;
  const n = set.pairs.length || set.positives.length + set.negatives.length;
  return {
    interventions: (s) => [steeringIntervention(sv, best, s, positions)], layer: best, hook: hookFor(a.hook, best), sweep: sv.sweep, vectors: sv,
    describe: `${a.method} of ${a.pairs} (${n} ${set.pairs.length ? 'pairs' : 'texts'}, read at ${read}) at ${hookFor(a.hook, best)}${layer === undefined ? ' (the best-separating layer)' : ''}`,
  };
}

/** Two or more texts in columns of equal width (wrapped at spaces). */
export function sideBySide(titles: string[], texts: string[], width = Math.max(80, Math.min(160, process.stdout.columns ?? 100))): string {
  const w = Math.max(20, Math.floor((width - 3 * (texts.length - 1)) / texts.length));
  const wrap = (s: string) => {
    const lines: string[] = [];
    for (const para of s.split('\n')) {
      let cur = '';
      for (const word of para.split(' ')) {
        if (cur && (cur + ' ' + word).length > w) { lines.push(cur); cur = ''; }
        let rest = cur ? `${cur} ${word}` : word;
        while (rest.length > w) { lines.push(rest.slice(0, w)); rest = rest.slice(w); }
        cur = rest;
      }
      lines.push(cur);
    }
    return lines;
  };
  const cols = texts.map((t, i) => [titles[i]!.slice(0, w), '-'.repeat(Math.min(w, titles[i]!.length)), ...wrap(t)]);
  const h = Math.max(...cols.map((c) => c.length));
  return Array.from({ length: h }, (_, r) => cols.map((c) => (c[r] ?? '').padEnd(w)).join(' | ').trimEnd()).join('\n');
}

export async function steerCommand(a: SteerArgs): Promise<number> {
  if (!a.vector === !a.pairs) throw new InterventionError('give one of --vector FILE or --pairs FILE');
  const strengths = a.strength.split(',').map((s) => num(s.trim(), '--strength')!);
  const maxNew = num(a.maxNewTokens, '--max-new-tokens', { int: true, min: 0 })!;
  const layerArg = num(a.layer, '--layer', { int: true, min: 0 });
  const positions = a.positions as PositionSpec;
  if (!['all', 'prompt', 'generated'].includes(a.positions)) throw new InterventionError(`--positions: '${a.positions}' is not one of all, prompt, generated`);
  if (a.save && !/\.(gguf|json)$/i.test(a.save)) throw new InterventionError(`--save ${a.save}: expected a .gguf or .json file name`);
  const m = await loadForCli(a);
  try {
    const L = m.model.dims.nLayers;
    if (layerArg !== undefined && layerArg >= L) throw new InterventionError(`--layer ${layerArg} is out of range; this ${m.model.dims.arch} model has ${L} blocks (0–${L - 1})`);
    const prompt = inputIds(a, m);
    const plan = a.vector ? await planFromFile(a, m, layerArg, positions) : planFromPairs(a, m, layerArg, positions);
    // Every column's interventions are checked against the model before any generation starts.
    for (const s of strengths) compileInterventions(m.model, plan.interventions(s)).dispose();
    if (a.save) await save(a.save, plan, m, strengths[0]!);
    const opts = {
      maxNewTokens: maxNew, temperature: num(a.temperature, '--temperature', { min: 0 }), topK: num(a.topK, '--top-k', { int: true, min: 1 }),
      topP: num(a.topP, '--top-p'), seed: num(a.seed, '--seed', { int: true, min: 0 }), tokenizer: m.tokenizer,
    };
    const run = async (ivs: Intervention[]) => {
      const c = compileInterventions(m.model, ivs);
      try {
        const r = await m.model.withHooks(c.hooks, () => generateAsync(m.model, [prompt], opts));
        return { ids: r.newIds[0]!, text: r.text?.[0] ?? r.newIds[0]!.join(' ') };
      } finally {
        c.dispose();
      }
    };
    const plain = await run([]);
    const steered = [];
    for (const s of strengths) steered.push({ strength: s, ...(await run(plan.interventions(s))) });
    const promptText = a.prompt ?? prompt.join(',');
    if (a.json) {
      console.log(JSON.stringify({
        model: m.source, prompt: promptText, vector: plan.describe, layer: plan.layer ?? null, hook: plan.hook ?? null, positions: a.positions,
        seed: opts.seed, temperature: opts.temperature, sweep: plan.sweep ?? null, unsteered: plain, steered, saved: a.save ?? null,
      }));
      return 0;
    }
    if (plan.sweep && plan.sweep.length > 1) {
      console.log('layer  pair-acc  held-out  cohen-d  |mean diff|  |activation|');
      for (const s of plan.sweep) {
        console.log(`${String(s.layer).padStart(5)}  ${s.accuracy.toFixed(2).padStart(8)}  ${(s.heldOutAccuracy === null ? '-' : s.heldOutAccuracy.toFixed(2)).padStart(8)}  ${s.cohenD.toFixed(2).padStart(7)}  ${s.diffNorm.toFixed(3).padStart(11)}  ${s.activationNorm.toFixed(3).padStart(12)}`);
      }
    }
    console.log(`steering: ${plan.describe}; positions ${a.positions}; seed ${opts.seed}, temperature ${opts.temperature}`);
    if (a.save) console.log(`saved the vector to ${a.save}`);
    console.log(`prompt: ${promptText}\n`);
    console.log(sideBySide(['unsteered', ...steered.map((s) => `strength ${s.strength}`)], [plain.text, ...steered.map((s) => s.text)]));
    return 0;
  } finally {
    m.model.dispose();
    disposeBackends();
  }
}

async function save(file: string, plan: Plan, m: LoadedModel, strength: number): Promise<void> {
  if (/\.gguf$/i.test(file)) {
    if (!plan.vectors) {
      const ivs = plan.interventions(1);
      const dirs = new Map<number, Float32Array>();
      for (const iv of ivs) {
        const l = /^blocks\.(\d+)\.hook_resid_post$/.exec(iv.hook);
        if (iv.op !== 'add' || !l || (iv.positions ?? 'all') !== 'all') throw new InterventionError(`--save ${file}: only 'add' at blocks.N.hook_resid_post on every position is a llama.cpp control vector ('${iv.hook}' ${iv.op} is not)`);
        const v = iv.vector as Float32Array | number[];
        dirs.set(Number(l[1]), Float32Array.from(v as ArrayLike<number>, (x) => x * (iv.strength ?? 1)));
      }
      await writeControlVector(controlVectorFromSteering({ hook: DEFAULT_STEERING_HOOK, vectors: dirs, dModel: m.model.dims.dModel }, m.model.dims.arch), file);
      return;
    }
    const layers = plan.layer !== undefined ? [plan.layer] : undefined;
    await writeControlVector(controlVectorFromSteering(plan.vectors, m.model.dims.arch, layers), file);
    return;
  }
  const base = file.replace(/^.*[\\/]/, '').replace(/\.json$/i, '');
  await saveInterventions(plan.interventions(strength), file, { vectorsFile: `${base}.safetensors` });
}
