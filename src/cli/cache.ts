// `actlab cache`: harvest activations at hook patterns over a corpus into an activation store
// (src/store), with a progress bar; run it again on the same folder to resume after a kill.
import cliProgress from 'cli-progress';
import { describeStats } from '../store/corpus.js';
import { StoreMismatchError, type StoreDType } from '../store/manifest.js';
import { matchHookPatterns } from '../hooks/patterns.js';
import { harvest, type HarvestProgress } from '../store/writer.js';
import { disposeBackends } from '../tensor/engine.js';
import { loadForCli } from './common.js';

export interface CacheArgs {
  model: string;
  corpus: string;
  /** Comma-separated globs over hook names (`*` matches any characters). */
  hooks: string;
  out: string;
  context?: number | string;
  maxTokens?: number | string;
  dtype?: string;
  tokenizer?: string;
  batchSize?: number | string;
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

function int(v: number | string | undefined, flag: string, min: number): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) throw new Error(`${flag}: '${v}' must be an integer >= ${min}`);
  return n;
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
    const context = int(o.context, '--context', 1) ?? Math.min(128, m.model.dims.nCtx || 128);
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
      maxTokens: int(o.maxTokens, '--max-tokens', 1),
      batchSize: int(o.batchSize, '--batch-size', 1),
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
