// `actlab organisms train|eval NAME`: train a model organism with actlab's own trainer into --out
// (default ./organisms/NAME under the working directory; the committed models/ are written only
// when --out names them) with weights in HF layout, training and evaluation logs and curves as SVG;
// or evaluate the committed one.
import { copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import cliProgress from 'cli-progress';
import type { Command } from 'commander';
import * as Plot from '@observablehq/plot';
import { parseHTML } from 'linkedom';
import { loadModel } from '../models/load.js';
import { evaluateOrganismAsync, ORGANISMS, trainOrganism, type OrganismName } from '../organisms/index.js';
import { disposeBackends } from '../tensor/engine.js';
import { pickBackend } from './common.js';
import { packageRoot } from './package-info.js';
import { action, backendOption, int } from './options.js';

const defaultDir = (name: string) => join(packageRoot(), 'models', 'organisms', name);

export function register(program: Command): void {
  const organisms = program.command('organisms').description('Model organisms trained by actlab (modular-addition, induction)');
  organisms.command('eval <name>').description('Evaluate a trained organism (default: the committed models/organisms/NAME)')
    .option('--model <dir>', 'another trained copy')
    .addOption(backendOption())
    .option('--json', 'one line of JSON')
    .action(action(organismsEvalCommand));
  organisms.command('train <name>').description('Train an organism with actlab\'s trainer into --out (default: ./organisms/NAME)')
    .option('--out <dir>', 'output folder (default: organisms/NAME under the working directory)')
    .option('--steps <n>', 'updates (default: the recipe)', int(1))
    .option('--seed <n>', 'initialisation and data-order seed', int(0))
    .option('--eval-every <n>', 'evaluate every n steps', int(1), 50)
    .option('--ablate <L.H...>', 'induction: zero these heads during training')
    .option('--resume', 'continue from the newest checkpoint')
    .addOption(backendOption())
    .action(action(organismsTrainCommand));
}

/** Where `organisms train NAME` writes without --out: under the working directory, never the package's models/. */
export const defaultTrainDir = (name: string) => join(process.cwd(), 'organisms', name);

function organism(name: string): OrganismName {
  if (!(ORGANISMS as readonly string[]).includes(name)) throw new Error(`unknown organism '${name}' (have ${ORGANISMS.join(', ')})`);
  return name as OrganismName;
}

export async function organismsEvalCommand(nameArg: string, o: { model?: string; backend?: string; json?: boolean }): Promise<number> {
  const name = organism(nameArg);
  const dir = o.model ?? defaultDir(name);
  const m = await loadModel(dir, { backend: await pickBackend(o.backend) });
  try {
    const r = await evaluateOrganismAsync(name, m.model);
    if (o.json) {
      const { fourier: _f, all_heads: _a, ...short } = r as Record<string, unknown>;
      console.log(JSON.stringify(short));
    } else console.log(JSON.stringify(r, null, 2));
    return 0;
  } finally {
    m.model.dispose();
    disposeBackends();
  }
}

export async function organismsTrainCommand(nameArg: string, o: { out?: string; steps?: number; backend?: string; evalEvery?: number; seed?: number; ablate?: string[]; resume?: boolean }): Promise<number> {
  const name = organism(nameArg);
  const out = o.out ?? defaultTrainDir(name);
  process.stderr.write(`organisms: training ${name} into ${out}\n`);
  const work = join(out, 'checkpoints');
  mkdirSync(work, { recursive: true });
  const evalLog = join(out, 'eval_log.jsonl');
  if (!o.resume) writeFileSync(evalLog, '');
  const bar = new cliProgress.SingleBar({ stream: process.stderr, format: `${name} |{bar}| {value}/{total} steps | loss {loss} | {ms} ms/step`, hideCursor: true }, cliProgress.Presets.shades_classic);
  let started = false;
  const backend = await pickBackend(o.backend);
  try {
    const model = await trainOrganism(name, {
      backend, outDir: work, steps: o.steps, seed: o.seed,
      evalEvery: o.evalEvery ?? 50, ablate: o.ablate, resume: o.resume,
      onStep: (s) => {
        if (!started) { bar.start(s.steps, 0, { loss: '-', ms: '-' }); started = true; }
        bar.update(s.step, { loss: s.loss.toFixed(4), ms: s.ms.toFixed(0) });
      },
      onEval: (e) => writeFileSync(evalLog, JSON.stringify(e) + '\n', { flag: 'a' }),
    });
    if (started) bar.stop();
    const steps = (JSON.parse(readFileSync(join(work, 'train_log.jsonl'), 'utf8').trim().split('\n').pop()!) as { step: number }).step;
    const last = join(work, `checkpoint-${steps}`);
    for (const f of ['model.safetensors', 'config.json']) copyFileSync(join(last, f), join(out, f));
    copyFileSync(join(work, 'train_log.jsonl'), join(out, 'train_log.jsonl'));
    writeCurves(name, join(out, 'train_log.jsonl'), evalLog, out);
    const r = await evaluateOrganismAsync(name, model);
    const { fourier: _f, ...short } = r as Record<string, unknown>;
    writeFileSync(join(out, 'eval.json'), JSON.stringify(r, null, 1) + '\n');
    console.log(JSON.stringify(short));
    model.dispose();
    return 0;
  } finally {
    disposeBackends();
  }
}

/** The training curves as SVG files: loss (log scale), and the organism's progress measure, each series labelled at its end. */
export function writeCurves(name: OrganismName, trainLog: string, evalLog: string, out: string): void {
  const { document } = parseHTML('<!doctype html><html><body></body></html>');
  const tr = readFileSync(trainLog, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { step: number; loss: number });
  const ev = existsSync(evalLog) ? readFileSync(evalLog, 'utf8').trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>) : [];
  const svg = (el: unknown) => (el as Element).outerHTML.replace('<svg ', '<svg xmlns="http://www.w3.org/2000/svg" ') + '\n';
  writeFileSync(join(out, 'loss.svg'), svg(Plot.plot({
    document, width: 640, height: 280, marginLeft: 50, y: { type: 'log', label: 'training loss (nats)', grid: true }, x: { label: 'step' },
    marks: [Plot.line(tr.filter((r) => r.loss > 0), { x: 'step', y: 'loss', stroke: 'steelblue' })],
  })));
  const line = (file: string, label: string, rows: { step: number; value: number; series: string }[]) => {
    const ends = [...new Map(rows.map((r) => [r.series, r])).values()];
    writeFileSync(join(out, file), svg(Plot.plot({
      document, width: 700, height: 300, marginLeft: 50, marginRight: 150, x: { label: 'step' }, y: { grid: true, label },
      marks: [Plot.line(rows, { x: 'step', y: 'value', stroke: 'series' }), Plot.text(ends, { x: 'step', y: 'value', text: 'series', fill: 'series', dx: 6, textAnchor: 'start' })],
    })));
  };
  const at = (e: Record<string, unknown>) => e.step as number;
  if (name === 'modular-addition') {
    line('accuracy.svg', 'accuracy', ev.flatMap((e) => [{ step: at(e), value: e.train_accuracy as number, series: 'train' }, { step: at(e), value: e.test_accuracy as number, series: 'test (held out)' }]));
  } else {
    line('in-context.svg', 'in-context loss drop (nats)', ev.map((e) => ({ step: at(e), value: e.in_context_loss_drop as number, series: 'first − second repeat' })));
    line('induction.svg', 'induction (prefix-matching) score', ev.flatMap((e) => (e.heads as { layer: number; head: number; score: number }[]).map((h) => ({ step: at(e), value: h.score, series: `L${h.layer}H${h.head}` }))));
  }
}
