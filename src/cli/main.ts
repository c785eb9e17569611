// The command line: parses arguments (commander) and hands each subcommand to its module.
import { Command, CommanderError } from 'commander';
import { inspectCommand } from './inspect.js';
import { testOpsCommand } from './test-ops.js';

export async function run(argv: string[]): Promise<number> {
  const program = new Command('actlab')
    .description('An activation laboratory for neural networks.')
    .exitOverride()
    .configureOutput({ writeErr: (s) => process.stderr.write(s) });
  let code = 0;
  program
    .command('inspect')
    .description('Engine self-check and the backends found (the analyses report lands with the analyses issue)')
    .option('--json', 'print one JSON object')
    .option('--backend <name...>', 'backends to check', ['js', 'wasm'])
    .action(async (o) => { code = await inspectCommand(o); });
  program
    .command('test-ops')
    .description('Run the op conformance matrix against the reference backend')
    .option('--op <name...>', 'only these ops (op names or label substrings)')
    .option('--backend <name...>', 'backends to test', ['wasm'])
    .option('--json', 'one JSON line per case')
    .option('--verbose', 'print every case, not only failures')
    .action(async (o) => { code = await testOpsCommand(o); });
  try {
    await program.parseAsync(argv, { from: 'user' });
  } catch (e) {
    if (e instanceof CommanderError) return e.exitCode;
    throw e;
  }
  return code;
}

const invokedDirectly = process.argv[1] && import.meta.url === new URL(`file://${process.argv[1]}`).href;
if (invokedDirectly) process.exitCode = await run(process.argv.slice(2));
