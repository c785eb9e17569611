// `actlab sae eval`: an SAE (SAELens folder or Hub release folder) spliced into its model over the
// contexts of an activation store: L0, FVU, CE loss recovered, dead / dense features, density histogram.
import type { Command } from 'commander';
import { ActivationStore } from '../store/reader.js';
import { disposeBackends } from '../tensor/engine.js';
import { evaluateSae } from '../sae/eval.js';
import { loadSaeFromHub, loadSaeLens, type LoadedSae } from '../sae/saelens.js';
import { loadForCli } from './common.js';
import { action, modelOptions } from './options.js';

export interface SaeEvalArgs {
  sae: string;
  store: string;
  model?: string;
  tokenizer?: string;
  backend?: string;
  offline?: boolean;
  site?: string;
  contexts?: string;
  batchSize?: string;
  json?: boolean;
}

/** An SAE from a folder, or from the Hub as hf:ORG/REPO/FOLDER... (the release layout). */
export async function loadSaeArg(spec: string, offline?: boolean): Promise<LoadedSae> {
  const m = /^hf:([^/]+\/[^/]+)\/?(.*)$/.exec(spec);
  if (m) return loadSaeFromHub(m[1]!, m[2] ?? '', { offline });
  return loadSaeLens(spec);
}

function posInt(v: string | undefined, flag: string): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new Error(`${flag}: '${v}' must be an integer >= 1`);
  return n;
}

export async function saeEvalCommand(a: SaeEvalArgs): Promise<number> {
  const { sae } = await loadSaeArg(a.sae, a.offline);
  const store = await ActivationStore.open(a.store);
  const m = await loadForCli({ model: a.model ?? store.manifest.model.source, tokenizer: a.tokenizer, backend: a.backend, offline: a.offline });
  try {
    const r = await evaluateSae(m.model, sae, store, { contexts: posInt(a.contexts, '--contexts'), batchSize: posInt(a.batchSize, '--batch-size'), site: a.site });
    if (a.json) console.log(JSON.stringify({ sae: a.sae, architecture: sae.cfg.architecture, d_in: sae.dIn, d_sae: sae.dSae, ...r }));
    else {
      console.log(`${a.sae}: ${sae.cfg.architecture} ${sae.dIn} -> ${sae.dSae} at ${r.site}, ${r.tokens} tokens`);
      console.log(`  L0 ${r.l0.toFixed(2)}   FVU ${r.fvu.toFixed(4)}   MSE ${r.mse.toFixed(4)}`);
      console.log(`  CE clean ${r.ce_clean.toFixed(4)}   with SAE ${r.ce_sae.toFixed(4)}   zero-ablated ${r.ce_zero_ablation.toFixed(4)}   CE loss recovered ${(r.ce_loss_recovered * 100).toFixed(1)}%`);
      console.log(`  dead ${(r.dead_fraction * 100).toFixed(1)}%   dense (>10% of tokens) ${(r.dense_fraction * 100).toFixed(1)}%`);
      const h = r.density_histogram;
      console.log(`  log10 density: ${h.counts.map((c, i) => `[${h.edges[i]!.toFixed(1)}) ${c}`).join('  ')}  dead ${h.dead}`);
    }
    return 0;
  } finally {
    m.model.dispose();
    sae.dispose();
    disposeBackends();
  }
}

export function registerSaeEval(sae: Command): void {
  modelOptions(sae.command('eval').description('Splice an SAE into its model over a store\'s contexts: L0, FVU, CE loss recovered, dead/dense features'), { optional: "default: the model the store was made with" })
    .requiredOption('--sae <dir>', 'an SAELens folder (cfg.json + sae_weights.safetensors) or hf:ORG/REPO/FOLDER')
    .requiredOption('--store <dir>', 'activation store whose contexts are evaluated')
    .option('--site <hook>', 'the hook the SAE reads (default: its hook_name)')
    .option('--contexts <n>', 'contexts evaluated', '32')
    .option('--batch-size <n>', 'contexts per forward pass', '8')
    .option('--json', 'print one JSON object')
    .action(action(saeEvalCommand));
}
