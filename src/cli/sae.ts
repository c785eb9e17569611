// `actlab sae train|eval|features`: sparse autoencoders and transcoders over an activation store
// (src/sae), with a live progress bar (a plain line every few seconds when stderr is not a terminal).
import cliProgress from 'cli-progress';
import type { Command } from 'commander';
import { getPlatform } from '../io/platform.js';
import { ActivationStore } from '../store/reader.js';
import { disposeBackends } from '../tensor/engine.js';
import { storeSource } from '../sae/data.js';
import { saveSaeLens } from '../sae/saelens.js';
import { SaeDivergedError, trainSae, type SaeStepInfo } from '../sae/train.js';
import type { SaeArchitecture } from '../sae/config.js';
import { pickBackend } from './common.js';
import { registerSaeEval } from './sae-eval.js';
import { registerSaeFeatures } from './sae-features.js';
import { action } from './options.js';

const ARCHS: Record<string, SaeArchitecture> = {
  'relu-l1': 'standard', standard: 'standard', topk: 'topk', batchtopk: 'batchtopk', jumprelu: 'jumprelu',
  transcoder: 'transcoder', 'skip-transcoder': 'skip_transcoder', 'jumprelu-transcoder': 'jumprelu_transcoder',
};

function num(v: string | undefined, flag: string, o: { int?: boolean; min?: number; above?: number } = {}): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (v.trim() === '' || !Number.isFinite(n) || (o.int && !Number.isInteger(n)) || (o.min !== undefined && n < o.min) || (o.above !== undefined && n <= o.above)) {
    throw new Error(`${flag}: '${v}' must be ${o.int ? 'an integer' : 'a number'}${o.min !== undefined ? ` >= ${o.min}` : ''}${o.above !== undefined ? ` > ${o.above}` : ''}`);
  }
  return n;
}

/** The live bar of a training run: tokens, loss, MSE, L0, FVU, dead features, tokens/s. */
export function saeProgress(stream: NodeJS.WriteStream = process.stderr): { onStep: (s: SaeStepInfo) => void; stop: () => void } {
  const tty = !!stream.isTTY;
  const bar = new cliProgress.SingleBar({
    stream, hideCursor: true,
    format: 'sae |{bar}| {value}/{total} tok | loss {loss} mse {mse} L0 {l0} FVU {fvu} dead {dead} | {rate} tok/s | eta {eta_formatted}',
  }, cliProgress.Presets.shades_classic);
  let t0 = 0;
  let from = 0;
  let started = false;
  let lastLine = 0;
  return {
    onStep: (s) => {
      const now = Date.now();
      if (!started) { t0 = now; from = s.tokens; }
      const rate = now > t0 ? Math.round(((s.tokens - from) * 1000) / (now - t0)) : 0;
      const p = { loss: s.loss.toFixed(4), mse: s.mse.toFixed(4), l0: s.l0.toFixed(1), fvu: s.fvu.toFixed(4), dead: s.dead, rate };
      const total = s.steps * (s.tokens / s.step);
      if (tty) {
        if (!started) bar.start(total, s.tokens, p);
        else bar.update(s.tokens, p);
      } else if (now - lastLine > 5000 || s.step === s.steps) {
        stream.write(`sae: step ${s.step}/${s.steps}, ${s.tokens} tokens, loss ${p.loss}, mse ${p.mse}, L0 ${p.l0}, FVU ${p.fvu}, dead ${s.dead}, ${rate} tok/s\n`);
        lastLine = now;
      }
      started = true;
    },
    stop: () => { if (started && tty) bar.stop(); },
  };
}

export interface SaeTrainArgs {
  store: string;
  hook: string;
  targetHook?: string;
  arch: string;
  expansion?: string;
  dSae?: string;
  k?: string;
  l1?: string;
  l0?: string;
  sparsityWarmup?: string;
  tokens: string;
  out: string;
  batchSize?: string;
  lr?: string;
  lrWarmup?: string;
  lrDecay?: string;
  bDecInit?: string;
  normalize?: string;
  deadWindow?: string;
  ghostGrads?: boolean;
  seed?: string;
  checkpointEvery?: string;
  resume?: boolean;
  backend?: string;
  json?: boolean;
}

export async function saeTrainCommand(a: SaeTrainArgs): Promise<number> {
  const arch = ARCHS[a.arch];
  if (!arch) {
    process.stderr.write(`actlab sae train: --arch must be one of ${Object.keys(ARCHS).join(', ')}, not '${a.arch}'\n`);
    return 2;
  }
  if (arch.includes('transcoder') && !a.targetHook) {
    process.stderr.write('actlab sae train: a transcoder needs --target-hook (the MLP output hook it predicts)\n');
    return 2;
  }
  const backend = await pickBackend(a.backend);
  const store = await ActivationStore.open(a.store);
  const batchSize = num(a.batchSize, '--batch-size', { int: true, min: 1 }) ?? 4096;
  const data = storeSource(store, { hook: a.hook, targetHook: a.targetHook, batchSize, seed: num(a.seed, '--seed', { int: true }) ?? 0, backend });
  const dSae = num(a.dSae, '--d-sae', { int: true, min: 1 }) ?? Math.round((num(a.expansion, '--expansion', { above: 0 }) ?? 8) * data.dIn);
  const bar = saeProgress();
  const fs = (await getPlatform()).store;
  try {
    const r = await trainSae(data, {
      architecture: arch, dSae,
      k: num(a.k, '--k', { above: 0 }),
      coefficient: num(arch.startsWith('jumprelu') ? a.l0 ?? a.l1 : a.l1, arch.startsWith('jumprelu') ? '--l0' : '--l1', { min: 0 }),
      coefficientWarmupSteps: num(a.sparsityWarmup, '--sparsity-warmup', { int: true, min: 0 }),
      tokens: num(a.tokens, '--tokens', { int: true, min: 1 })!,
      batchSize,
      lr: num(a.lr, '--lr', { above: 0 }),
      lrWarmupSteps: num(a.lrWarmup, '--lr-warmup', { int: true, min: 0 }),
      lrDecaySteps: num(a.lrDecay, '--lr-decay', { int: true, min: 0 }),
      bDecInit: (a.bDecInit ?? 'geometric_median') as 'geometric_median' | 'mean' | 'zeros',
      normalizeActivations: (a.normalize ?? 'expected_average_only_in') as 'none' | 'expected_average_only_in',
      deadFeatureWindow: num(a.deadWindow, '--dead-window', { int: true, min: 1 }),
      ghostGrads: a.ghostGrads,
      seed: num(a.seed, '--seed', { int: true }),
      checkpointDir: fs.join(a.out, 'checkpoints'),
      checkpointEvery: num(a.checkpointEvery, '--checkpoint-every', { int: true, min: 1 }),
      resume: a.resume,
      metadata: {
        hook_name: a.hook, ...(a.targetHook ? { hook_name_out: a.targetHook } : {}),
        model_name: store.manifest.model.source, context_size: store.manifest.context, prepend_bos: store.manifest.bos,
        dataset_path: store.manifest.corpus.path, sae_lens_training_version: null, actlab_store: a.store,
      },
      backend,
      onStep: bar.onStep,
    });
    bar.stop();
    await saveSaeLens(r.sae, a.out, { featureDensity: r.featureDensity });
    const dead = r.featureDensity.filter((d) => d === 0).length;
    const summary = {
      out: a.out, architecture: arch, d_in: r.sae.dIn, d_sae: r.sae.dSae, steps: r.steps, tokens: r.tokens,
      resumed_from_step: r.resumedFrom, scaling_factor: r.scalingFactor,
      last: r.last && { loss: r.last.loss, mse: r.last.mse, l0: r.last.l0, fvu: r.last.fvu },
      never_fired: dead,
    };
    if (a.json) console.log(JSON.stringify(summary));
    else {
      console.log(`${a.out}: ${arch} SAE ${r.sae.dIn} -> ${r.sae.dSae} on ${a.hook}, ${r.tokens} tokens in ${r.steps} steps${r.resumedFrom !== null ? ` (resumed at step ${r.resumedFrom})` : ''}`);
      if (r.last) console.log(`  last batch: L0 ${r.last.l0.toFixed(2)}, FVU ${r.last.fvu.toFixed(4)}, loss ${r.last.loss.toFixed(4)}; ${dead} of ${r.sae.dSae} features never fired`);
    }
    return 0;
  } catch (e) {
    bar.stop();
    if (e instanceof SaeDivergedError) {
      process.stderr.write(`actlab sae train: ${e.message}\n`);
      return 3;
    }
    throw e;
  } finally {
    disposeBackends();
  }
}

export function register(program: Command): void {
  const sae = program.command('sae').description('Sparse autoencoders and transcoders: train on an activation store, evaluate, inspect features (SAELens format)');
  sae.command('train').description('Train an SAE (or transcoder) on a stored hook; writes cfg.json + sae_weights.safetensors (SAELens) into --out')
    .requiredOption('--store <dir>', 'activation store (actlab cache)')
    .requiredOption('--hook <name>', 'stored hook to encode, e.g. blocks.3.hook_resid_post')
    .option('--target-hook <name>', 'transcoders: the stored hook to predict (e.g. blocks.3.hook_mlp_out)')
    .option('--arch <a>', `architecture: ${Object.keys(ARCHS).join(', ')}`, 'topk')
    .option('--expansion <x>', 'd_sae = expansion x d_in', '8')
    .option('--d-sae <n>', 'features (instead of --expansion)')
    .option('--k <k>', 'topk: active features per token; batchtopk: mean active per token')
    .option('--l1 <x>', 'relu-l1 / transcoder: L1 coefficient (default 5)')
    .option('--l0 <x>', 'jumprelu: L0 coefficient (default 1)')
    .option('--sparsity-warmup <steps>', 'steps over which the L1/L0 coefficient rises from 0', '0')
    .requiredOption('--tokens <n>', 'tokens to train on')
    .requiredOption('--out <dir>', 'output folder (checkpoints in DIR/checkpoints)')
    .option('--batch-size <n>', 'tokens per step', '4096')
    .option('--lr <x>', 'Adam learning rate', '3e-4')
    .option('--lr-warmup <steps>', 'linear warmup steps', '0')
    .option('--lr-decay <steps>', 'linear decay to 0 over the last steps', '0')
    .option('--b-dec-init <m>', 'geometric_median, mean or zeros', 'geometric_median')
    .option('--normalize <m>', 'expected_average_only_in (scale inputs to norm √d_in, folded at the end) or none', 'expected_average_only_in')
    .option('--dead-window <steps>', 'steps without firing before a feature counts as dead', '1000')
    .option('--ghost-grads', 'relu-l1: ghost grads for dead features')
    .option('--seed <n>', 'initialisation and data-order seed', '0')
    .option('--checkpoint-every <steps>', 'checkpoint period (default: every 10%)')
    .option('--resume', 'continue from the newest checkpoint in DIR/checkpoints')
    .option('--backend <name>', 'js, wasm or auto', 'auto')
    .option('--json', 'print a JSON summary')
    .action(action(saeTrainCommand));
  registerSaeEval(sae);
  registerSaeFeatures(sae);
}
