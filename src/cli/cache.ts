// `actlab cache`: harvest activations at hook patterns over a corpus into an activation store
// (src/store), with a progress bar; run it again on the same folder to resume after a kill.
import cliProgress from 'cli-progress';
import { Option, type Command } from 'commander';
import { describeStats } from '../store/corpus.js';
import { StoreMismatchError, type StoreDType } from '../store/manifest.js';
import { matchHookPatterns } from '../hooks/patterns.js';
import { harvest, type HarvestProgress } from '../store/writer.js';
import { disposeBackends } from '../tensor/engine.js';
import { loadForCli } from './common.js';
import { action, int, modelOptions } from './options.js';

export interface CacheArgs {
  model: string;
  corpus: string;
  /** Comma-separated globs over hook names (`*` matches any characters). */
  hooks: string;
  out: string;
  context?: number;
  maxTokens?: number;
  dtype?: string;
  tokenizer?: string;
  batchSize?: number;
  backend?: string;
  /** false: no BOS; otherwise contexts start with BOS when the tokenizer has one (commander's --no-bos gives false). */
  bos?: boolean;
  offline?: boolean;
  /** JSONL: the field with the text. */
  field?: string;
  /** TXT: 'paragraph' (blank-line separated, default) or 'line'. */
  split?: string;
  /** Check listed shards' SHA-256 before resuming. */
  verify?: boolean;
}

export function register(program: Command): void {
  modelOptions(program.command('cache').description('Stream activations over a corpus into a resumable activation store'))
    .requiredOption('--corpus <file>', '.txt or .jsonl')
    .requiredOption('--hooks <patterns>', 'comma-separated globs over hook names')
    .requiredOption('--out <dir>', 'store folder (resumed when it exists)')
    .option('--context <n>', 'tokens per context (default: 128, or the model\'s context when shorter)', int(1))
    .option('--max-tokens <n>', 'stop after this many tokens', int(1))
    .addOption(new Option('--dtype <d>', 'f32, f16 or bf16').choices(['f32', 'f16', 'bf16']).default('f32'))
    .option('--batch-size <n>', 'contexts per forward pass', int(1))
    .option('--no-bos', 'do not start contexts with BOS')
    .option('--field <name>', 'JSONL field holding the text', 'text')
    .addOption(new Option('--split <mode>', "TXT documents: 'paragraph' or 'line'").choices(['paragraph', 'line']).default('paragraph'))
    .option('--verify', 'check shard checksums before resuming')
    .action(action(cacheCommand));
}

/** A progress bar on stderr (tokens done / total, tokens/s); plain lines every 5 s when stderr is not a terminal. */
function progressBar(): { update: (p: HarvestProgress) => void; stop: () => void } {
  const tty = !!process.stderr.isTTY;
  const bar = new cliProgress.SingleBar({
    stream: process.stderr,
    hideCursor: true,
    format: '{phase} |{bar}| {value}/{total} tokens | {rate} tok/s | eta {eta_formatted}',
    etaBuffer: 50,
  }, cliProgress.Presets.shades_classic);
  let started = false;
  let t0 = 0;
  let from = 0;
  let lastLine = 0;
  return {
    update: (p) => {
      if (p.phase === 'hash' || p.phase === 'skip') return;
      const now = Date.now();
      if (!started) { t0 = now; from = p.tokens; }
      const rate = now > t0 ? Math.round(((p.tokens - from) * 1000) / (now - t0)) : 0;
      const total = Math.max(p.tokens, (p.totalContexts ?? 0) * (p.tokens / Math.max(p.contexts, 1)));
      if (tty) {
        if (!started) bar.start(Math.max(1, total), p.tokens, { phase: 'cache', rate });
        else { bar.setTotal(Math.max(1, total)); bar.update(p.tokens, { rate }); }
      } else if (now - lastLine > 5000 || p.phase === 'done') {
        process.stderr.write(`cache: ${p.tokens}/${total || '?'} tokens, ${rate} tok/s\n`);
        lastLine = now;
      }
      started = true;
    },
    stop: () => { if (started && tty) bar.stop(); },
  };
}

export async function cacheCommand(o: CacheArgs): Promise<number> {
  const dtype = (o.dtype ?? 'f32') as StoreDType;
  if (!['f32', 'f16', 'bf16'].includes(dtype)) {
    process.stderr.write(`actlab cache: --dtype must be f32, f16 or bf16, not '${o.dtype}'\n`);
    return 2;
  }
  if (o.split !== undefined && o.split !== 'paragraph' && o.split !== 'line') {
    process.stderr.write(`actlab cache: --split must be 'paragraph' or 'line', not '${o.split}'\n`);
    return 2;
  }
  const m = await loadForCli({ model: o.model, tokenizer: o.tokenizer, backend: o.backend, offline: o.offline });
  const bar = progressBar();
  try {
    if (!m.tokenizer) throw new Error(`${m.source} has no tokenizer; pass --tokenizer FILE`);
    const hooks = matchHookPatterns(o.hooks, m.model.hookPoints().map((h) => h.name));
    const context = o.context ?? Math.min(128, m.model.dims.nCtx || 128);
    const r = await harvest({
      model: m.model,
      tokenizer: m.tokenizer,
      source: m.source,
      corpus: o.corpus,
      corpusOptions: { field: o.field, split: o.split as 'paragraph' | 'line' | undefined },
      hooks,
      outDir: o.out,
      context,
      dtype,
      bos: o.bos === false ? false : undefined, // commander's --no-bos gives true by default; BOS then follows the tokenizer
      maxTokens: o.maxTokens,
      batchSize: o.batchSize,
      verify: o.verify,
      onProgress: bar.update,
      onWarning: (w) => process.stderr.write(`cache: ${w}\n`),
    });
    bar.stop();
    const mf = r.manifest;
    const what = r.resumedFrom ? `resumed at context ${r.resumedFrom}, added ${r.added}` : `${r.added} contexts`;
    console.log(`${o.out}: ${mf.tokenCount} tokens in ${mf.contexts} contexts of ${mf.context}, ${mf.shards.length} shard(s), ${hooks.length} hook(s) as ${mf.dtype} (${what})${mf.complete ? '' : ' — incomplete'}`);
    for (const line of describeStats(r.stats)) console.log(`  corpus: ${line}`);
    return 0;
  } catch (e) {
    bar.stop();
    if (e instanceof StoreMismatchError || (e instanceof Error && /no hook point matches|no hook pattern/.test(e.message))) {
      process.stderr.write(`actlab cache: ${e.message}\n`);
      return 2;
    }
    throw e;
  } finally {
    m.model.dispose();
    disposeBackends();
  }
}
