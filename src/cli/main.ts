// The command line: builds the commander program from the commands' own `register` functions
// (each file under src/cli declares its options and action) and returns the exit code.
import { Command, CommanderError } from 'commander';
import { exitCodeOf } from './options.js';
import { packageVersion } from './package-info.js';
import * as analyze from './analyze.js';
import * as cache from './cache.js';
import * as generate from './generate.js';
import * as hooks from './hooks.js';
import * as inspect from './inspect.js';
import * as lab from './lab.js';
import * as organisms from './organisms.js';
import * as evalCmd from './eval.js';
import * as faults from './faults.js';
import * as delta from './delta.js';
import * as patch from './patch.js';
import * as quantize from './quantize.js';
import * as runCmd from './run.js';
import * as sae from './sae.js';
import * as probe from './probe.js';
import * as neurons from './neurons.js';
import * as skipLayers from './skip-layers.js';
import * as steer from './steer.js';
import * as ablate from './ablate.js';
import * as testOps from './test-ops.js';
import * as tokenize from './tokenize.js';
import * as train from './train.js';

/**
 * Writing to a closed pipe (`actlab test-ops --json | head -2`) ends the command quietly with
 * status 0, as `head` asked for no more; any other stream error is still thrown.
 */
export function endQuietlyOnClosedPipe(): void {
  for (const stream of [process.stdout, process.stderr]) {
    if (stream.listeners('error').some((l) => (l as { actlabPipe?: boolean }).actlabPipe)) continue;
    const onError = Object.assign((e: NodeJS.ErrnoException) => {
      if (e.code !== 'EPIPE') throw e;
      process.exit(0);
    }, { actlabPipe: true });
    stream.on('error', onError);
  }
}

/** The `actlab` program with every command registered. */
export function buildProgram(): Command {
  const program = new Command('actlab')
    .description('An activation laboratory for neural networks.')
    .version(packageVersion(), '-V, --version', "print actlab's version")
    .exitOverride()
    .configureOutput({ writeErr: (s) => process.stderr.write(s) });
  inspect.register(program);
  analyze.register(program);
  generate.register(program);
  hooks.register(program);
  runCmd.register(program);
  patch.register(program);
  cache.register(program);
  train.register(program);
  organisms.register(program);
  testOps.register(program);
  tokenize.register(program);
  skipLayers.register(program);
  sae.register(program);
  steer.register(program);
  ablate.register(program);
  probe.register(program);
  neurons.register(program);
  quantize.register(program);
  evalCmd.register(program);
  faults.register(program);
  delta.register(program);
  lab.register(program);
  return program;
}

export async function run(argv: string[]): Promise<number> {
  endQuietlyOnClosedPipe();
  const program = buildProgram();
  try {
    await program.parseAsync(argv, { from: 'user' });
  } catch (e) {
    if (e instanceof CommanderError) return e.exitCode;
    process.stderr.write(`actlab: ${(e as Error).message}\n`);
    if (process.env.ACTLAB_DEBUG) process.stderr.write(`${(e as Error).stack}\n`);
    return 1;
  }
  return exitCodeOf(program);
}

const invokedDirectly = process.argv[1] && import.meta.url === new URL(`file://${process.argv[1]}`).href;
if (invokedDirectly) process.exitCode = await run(process.argv.slice(2));
