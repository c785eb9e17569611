// The command line: parses arguments (commander) and hands each subcommand to its module.
import { Command, CommanderError } from 'commander';
import { analyzeCommand } from './analyze.js';
import { cacheCommand } from './cache.js';
import { generateCommand } from './generate.js';
import { hooksCommand } from './hooks.js';
import { inspectCommand } from './inspect.js';
import { organismsEvalCommand, organismsTrainCommand } from './organisms.js';
import { patchCommand } from './patch.js';
import { runCommand } from './run.js';
import { testOpsCommand } from './test-ops.js';
import { trainCommand } from './train.js';
import { register as registerQuantize } from './quantize.js';

export async function run(argv: string[]): Promise<number> {
  const program = new Command('actlab')
    .description('An activation laboratory for neural networks.')
    .exitOverride()
    .configureOutput({ writeErr: (s) => process.stderr.write(s) });
  let code = 0;
  program
    .command('inspect')
    .description('The analyses report on a model (default: the induction organism) and a prompt, with the engine self-check')
    .option('--model <M>', 'a local HF folder, a llama2.c .bin, a GGUF file or a hub id (default: the package\'s models/organisms/induction)')
    .option('--tokenizer <file>', 'tokenizer file (llama2.c .bin)')
    .option('--backend <name>', 'js, wasm or auto', 'js')
    .option('--offline', 'use only the local cache for hub ids')
    .option('--prompt <text>', 'prompt text')
    .option('--ids <list>', 'prompt token ids, comma-separated')
    .option('--generate <n>', 'greedy tokens for the generation phase of the void analysis', '16')
    .option('--json', 'print one JSON object')
    .option('--html <file>', 'write a self-contained HTML report with pictures')
    .option('--figures <dir>', 'write the pictures as SVG / PNG files')
    .option('--no-engine', 'skip the engine self-check')
    .option('--check <name...>', 'backends for the engine self-check', ['js', 'wasm'])
    .action(async (o) => { code = await inspectCommand(o); });
  program
    .command('analyze')
    .description('One analysis as JSON: massive, sinks, sparsity, voids, logit-lens, induction, experts, neurons, similarity')
    .argument('<name>', 'the analysis')
    .option('--model <M>', 'a local HF folder, a llama2.c .bin, a GGUF file or a hub id')
    .option('--tokenizer <file>', 'tokenizer file (llama2.c .bin)')
    .option('--backend <name>', 'js, wasm or auto', 'js')
    .option('--offline', 'use only the local cache for hub ids')
    .option('--prompt <text>', 'prompt text')
    .option('--ids <list>', 'token ids, comma-separated')
    .option('--json', 'one line of JSON')
    .option('--checkpoint <M...>', 'massive: a series of checkpoints (instead of --model)')
    .option('--abs-threshold <x>', 'massive: |a| above this (100)')
    .option('--ratio-threshold <x>', 'massive: and this multiple of the median |a| (1000)')
    .option('--epsilon <x>', 'sinks: sink-head threshold (0.3); sparsity: |a| cut-off (0.01)')
    .option('--cos <x>', 'sinks: |cos| for secondary sinks (0.9)')
    .option('--mode <m>', 'sparsity: auto, zero or eps')
    .option('--alpha <x>', 'voids: LAC alpha (0.8)')
    .option('--generate <n>', 'voids: greedy tokens of the generation phase (16)')
    .option('--position <i>', 'logit-lens: position (-1)')
    .option('--top-k <k>', 'logit-lens: top tokens; neurons: examples')
    .option('--length <n>', 'induction: random segment length')
    .option('--sequences <n>', 'induction: sequences averaged')
    .option('--threshold <x>', 'induction: score of an induction head (0.4)')
    .option('--seed <n>', 'random seed')
    .option('--store <dir>', 'neurons: activation store (actlab cache)')
    .option('--hook <name>', 'neurons: stored hook')
    .option('--neuron <n>', 'neurons: unit index')
    .option('--facets <k>', 'neurons: facets (3; 0 for none)')
    .option('--against <M>', 'similarity: a second model, compared layer by layer')
    .option('--recording <file>', 'similarity: a recorded [stimuli, units] matrix (.npy, .csv, .safetensors)')
    .option('--tensor <name>', 'similarity: the tensor of a .safetensors recording')
    .option('--method <m>', 'similarity: cka, rsa or svcca (default all)')
    .option('--units <n>', 'similarity: units subsampled per repeat')
    .option('--stimuli <n>', 'similarity: stimuli subsampled per repeat')
    .option('--repeats <n>', 'similarity: subsampling repeats')
    .action(async (name, o) => { code = await analyzeCommand(name, o); });
  const modelOptions = (c: Command) => c
    .requiredOption('--model <M>', 'a local HF folder, a llama2.c .bin, a GGUF file or a hub id')
    .option('--tokenizer <file>', 'tokenizer file (llama2.c .bin)')
    .option('--backend <name>', 'js, wasm or auto', 'auto')
    .option('--offline', 'use only the local cache for hub ids');
  modelOptions(program.command('generate').description('Generate text (streamed; --json prints {"ids","text"})'))
    .option('--prompt <text>', 'prompt text')
    .option('--ids <list>', 'prompt token ids, comma-separated')
    .requiredOption('--max-new-tokens <n>', 'tokens to generate')
    .option('--temperature <t>', '0 is greedy', '0')
    .option('--top-k <k>', 'sample among the k most likely tokens')
    .option('--top-p <p>', 'sample within probability mass p')
    .option('--repetition-penalty <r>', 'discourage repeated tokens (> 1)')
    .option('--seed <n>', 'random seed for sampling')
    .option('--stop <text...>', 'stop strings')
    .option('--json', 'print {"ids": [...], "text": "..."}')
    .action(async (o) => { code = await generateCommand(o); });
  modelOptions(program.command('hooks').description('List the hook points of a model with their shapes'))
    .option('--json', 'print one JSON object')
    .action(async (o) => { code = await hooksCommand(o); });
  modelOptions(program.command('run').description('One forward pass; save logits and the matched hook points to safetensors'))
    .option('--prompt <text>', 'prompt text')
    .option('--ids <list>', 'token ids, comma-separated')
    .requiredOption('--hooks <patterns>', "comma-separated globs, e.g. 'blocks.*.hook_resid_pre,blocks.*.attn.hook_pattern'")
    .requiredOption('--save <file>', 'output .safetensors')
    .option('--json', 'print a JSON summary')
    .action(async (o) => { code = await runCommand(o); });
  modelOptions(program.command('patch').description('Activation or attribution patching between a clean and a corrupted prompt (metric: logit difference at the last position)'))
    .option('--clean <text>', 'clean prompt')
    .option('--corrupt <text>', 'corrupted prompt (same length in tokens)')
    .option('--clean-ids <list>', 'clean token ids')
    .option('--corrupt-ids <list>', 'corrupted token ids')
    .requiredOption('--answer <token>', 'the correct next token (text or id)')
    .requiredOption('--wrong <token>', 'the competing token (text or id)')
    .option('--method <m>', 'activation or attribution', 'attribution')
    .option('--site <s>', 'resid, heads or neurons', 'resid')
    .option('--compare', 'run both methods and print their correlation')
    .option('--json', 'print one JSON object')
    .action(async (o) => { code = await patchCommand(o); });
  modelOptions(program.command('cache').description('Stream activations over a corpus into a resumable activation store'))
    .requiredOption('--corpus <file>', '.txt or .jsonl')
    .requiredOption('--hooks <patterns>', 'comma-separated globs over hook names')
    .requiredOption('--out <dir>', 'store folder (resumed when it exists)')
    .option('--context <n>', 'tokens per context', '128')
    .option('--max-tokens <n>', 'stop after this many tokens')
    .option('--dtype <d>', 'f32, f16 or bf16', 'f32')
    .option('--batch-size <n>', 'contexts per forward pass')
    .option('--no-bos', 'do not start contexts with BOS')
    .option('--field <name>', 'JSONL field holding the text', 'text')
    .option('--split <mode>', "TXT documents: 'paragraph' or 'line'", 'paragraph')
    .option('--verify', 'check shard checksums before resuming')
    .action(async (o) => { code = await cacheCommand(o); });
  modelOptions(program.command('train').description('Train a model on a text corpus (HF-layout checkpoints, JSONL log, --resume)'))
    .requiredOption('--corpus <file>', '.txt or .jsonl')
    .requiredOption('--out <dir>', 'checkpoints and train_log.jsonl go here')
    .requiredOption('--steps <n>', 'updates to reach')
    .option('--context <n>', 'tokens per training sequence', '128')
    .option('--max-contexts <n>', 'read at most this many sequences from the corpus', '10000')
    .option('--batch-size <n>', 'sequences per micro-batch', '8')
    .option('--grad-accum <n>', 'micro-batches per update', '1')
    .option('--lr <x>', 'peak learning rate', '3e-4')
    .option('--min-lr <x>', 'learning rate at the end of the cosine', '0')
    .option('--warmup <n>', 'linear warmup steps', '0')
    .option('--weight-decay <x>', 'decoupled weight decay of matrices', '0.01')
    .option('--clip <x>', 'maximum global gradient norm (0: none)', '1')
    .option('--optimizer <name>', 'adamw or sgd', 'adamw')
    .option('--seed <n>', 'seed of the data order', '0')
    .option('--checkpoint-every <n>', 'save every n steps (0: at the end only)', '0')
    .option('--resume', 'continue from the newest checkpoint in --out')
    .option('--field <name>', 'JSONL field holding the text', 'text')
    .option('--no-bos', 'do not start sequences with BOS')
    .option('--json', 'one JSON line per step on stdout')
    .action(async (o) => { code = await trainCommand(o); });
  const organisms = program.command('organisms').description('Model organisms trained by actlab (modular-addition, induction)');
  organisms.command('eval <name>').description('Evaluate a trained organism (default: the committed models/organisms/NAME)')
    .option('--model <dir>', 'another trained copy')
    .option('--backend <name>', 'js, wasm or auto', 'auto')
    .option('--json', 'one line of JSON')
    .action(async (name, o) => { code = await organismsEvalCommand(name, o); });
  organisms.command('train <name>').description('Train an organism with actlab\'s trainer into models/organisms/NAME (or --out)')
    .option('--out <dir>', 'output folder')
    .option('--steps <n>', 'updates (default: the recipe)')
    .option('--seed <n>', 'initialisation and data-order seed')
    .option('--eval-every <n>', 'evaluate every n steps', '50')
    .option('--ablate <L.H...>', 'induction: zero these heads during training')
    .option('--resume', 'continue from the newest checkpoint')
    .option('--backend <name>', 'js, wasm or auto', 'auto')
    .action(async (name, o) => { code = await organismsTrainCommand(name, o); });
  program
    .command('test-ops')
    .description('Run the op conformance matrix against the reference backend')
    .option('--op <name...>', 'only these ops (op names or label substrings)')
    .option('--backend <name...>', 'backends to test', ['wasm'])
    .option('--json', 'one JSON line per case')
    .option('--verbose', 'print every case, not only failures')
    .option('--mode <mode>', "'test' (outputs against the reference) or 'grad' (gradients against finite differences and the reference)", 'test')
    .action(async (o) => { code = await testOpsCommand(o); });
  registerQuantize(program, (c) => { code = c; });
  try {
    await program.parseAsync(argv, { from: 'user' });
  } catch (e) {
    if (e instanceof CommanderError) return e.exitCode;
    process.stderr.write(`actlab: ${(e as Error).message}\n`);
    if (process.env.ACTLAB_DEBUG) process.stderr.write(`${(e as Error).stack}\n`);
    return 1;
  }
  return code;
}

const invokedDirectly = process.argv[1] && import.meta.url === new URL(`file://${process.argv[1]}`).href;
if (invokedDirectly) process.exitCode = await run(process.argv.slice(2));
