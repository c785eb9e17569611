// `actlab sae features`: feature views of an SAE over an activation store (top-activating
// contexts, logit effects, activation histograms) as JSON or a self-contained HTML page.
import type { Command } from 'commander';
import { getPlatform } from '../io/platform.js';
import { writeBytesAtomic } from '../io/file-store.js';
import { ActivationStore } from '../store/reader.js';
import { disposeBackends } from '../tensor/engine.js';
import { featureViews, featureViewsHtml } from '../sae/features.js';
import { loadForCli } from './common.js';
import { action } from './options.js';
import { loadSaeArg } from './sae-eval.js';

export interface SaeFeaturesArgs {
  sae: string;
  store: string;
  model?: string;
  tokenizer?: string;
  backend?: string;
  offline?: boolean;
  features?: string;
  top?: string;
  examples?: string;
  maxTokens?: string;
  json?: boolean;
  html?: string;
}

function posInt(v: string | undefined, flag: string, min = 1): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) throw new Error(`${flag}: '${v}' must be an integer >= ${min}`);
  return n;
}

export async function saeFeaturesCommand(a: SaeFeaturesArgs): Promise<number> {
  const { sae } = await loadSaeArg(a.sae, a.offline);
  const store = await ActivationStore.open(a.store);
  const m = await loadForCli({ model: a.model ?? store.manifest.model.source, tokenizer: a.tokenizer, backend: a.backend, offline: a.offline });
  try {
    const features = a.features?.split(',').map((s) => posInt(s.trim(), '--features', 0)!);
    const r = await featureViews(sae, store, {
      features, top: posInt(a.top, '--top'), examples: posInt(a.examples, '--examples'), maxTokens: posInt(a.maxTokens, '--max-tokens'),
      model: m.model, tokenizer: m.tokenizer ?? undefined,
    });
    if (a.html) {
      const fs = (await getPlatform()).store;
      await writeBytesAtomic(fs, a.html, new TextEncoder().encode(featureViewsHtml(r, `${a.sae}: ${sae.cfg.architecture} SAE features`)));
    }
    if (a.json) console.log(JSON.stringify(r));
    else {
      for (const v of r.features) {
        const top = v.examples[0];
        const ctx = top ? (top.text ?? top.tokens.map(String)).join('').replace(/\n/g, '⏎') : '';
        const promo = v.logits ? ` promotes ${v.logits.promoted.slice(0, 5).map((l) => JSON.stringify(l.text ?? l.token)).join(' ')}` : '';
        console.log(`feature ${v.feature}: density ${(v.density * 100).toFixed(2)}%, max ${v.maxActivation.toFixed(2)};${promo}; top: ${JSON.stringify(ctx)}`);
      }
      if (a.html) console.log(`wrote ${a.html}`);
    }
    return 0;
  } finally {
    m.model.dispose();
    sae.dispose();
    disposeBackends();
  }
}

export function registerSaeFeatures(sae: Command): void {
  sae.command('features').description('Feature views: top-activating contexts from a store, logit effects, activation histograms (--json, --html)')
    .requiredOption('--sae <dir>', 'an SAELens folder or hf:ORG/REPO/FOLDER')
    .requiredOption('--store <dir>', 'activation store holding the SAE\'s hook')
    .option('--model <M>', 'the model, for logit effects and the tokenizer (default: the store\'s)')
    .option('--tokenizer <file>', 'tokenizer file (llama2.c .bin)')
    .option('--backend <name>', 'js, wasm or auto', 'auto')
    .option('--offline', 'use only the local cache for hub ids')
    .option('--features <list>', 'feature indices, comma-separated (default: the most frequent)')
    .option('--top <n>', 'how many of the most frequent features', '16')
    .option('--examples <n>', 'top contexts per feature', '8')
    .option('--max-tokens <n>', 'tokens of the store read')
    .option('--json', 'print one JSON object')
    .option('--html <file>', 'write a self-contained HTML page')
    .action(action(saeFeaturesCommand));
}
