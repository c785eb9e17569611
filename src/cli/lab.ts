// `actlab lab`: starts the local lab server (src/cli/lab-server.ts) and prints the URL with its
// per-run token; runs until interrupted. The page itself is the prebuilt dist/lab.
import { existsSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import type { Command } from 'commander';
import { LAB_ORGANISMS } from '../lab/model.js';
import { startLabServer } from './lab-server.js';
import { pickBackend } from './common.js';
import { action, backendOption, int } from './options.js';

interface LabArgs {
  model?: string;
  dir?: string[];
  port: number;
  host: string;
  backend: string;
}

export function register(program: Command): void {
  program.command('lab').description('Start the web laboratory: a local server with the interactive views (prints the URL)')
    .option('--model <M>', `a model to load at start: an HF folder, llama2.c .bin or GGUF file, or an organism (${LAB_ORGANISMS.join(', ')})`)
    .option('--dir <folder...>', 'folders whose models the page may open (the --model folder is always one)')
    .option('--port <n>', 'port (0 picks a free one)', int(0, 65535), 7860)
    .option('--host <addr>', 'address to bind; anything but 127.0.0.1 / localhost exposes the lab to the network', '127.0.0.1')
    .addOption(backendOption())
    .addHelpText('after', `
Open the printed URL (http://127.0.0.1:PORT/?token=...): the token, new at every run, lets the
page use the server. Ctrl-C stops the lab. The page runs in current Chromium and Firefox.

Examples:
  actlab lab                                   the organisms only
  actlab lab --model path/to/stories260K.bin   a model on your disk, loaded at start
  actlab lab --dir ~/models --port 0           any model under ~/models, on a free port

More: docs/lab.md (the views, the server's routes and limits).`)
    .action(action(labCommand));
}

export async function labCommand(a: LabArgs): Promise<number> {
  const dirs = (a.dir ?? []).map((d) => {
    if (!existsSync(d) || !statSync(d).isDirectory()) throw new Error(`--dir ${d}: not a folder`);
    return resolve(d);
  });
  const organism = a.model !== undefined && (LAB_ORGANISMS as readonly string[]).includes(a.model);
  let model = a.model;
  if (a.model !== undefined && !organism) {
    if (!existsSync(a.model)) throw new Error(`--model ${a.model}: no such file or folder`);
    const p = resolve(a.model);
    dirs.unshift(dirname(p));
    model = p;
  }
  if (!['127.0.0.1', 'localhost', '::1'].includes(a.host)) {
    const what = dirs.length ? `the lab and the models in ${dirs.join(', ')}` : 'the lab';
    process.stderr.write(`actlab lab: warning: binding ${a.host} exposes ${what} to the network; anyone with the URL's token can use them\n`);
  }
  // The page's tab runs on the same backend by default, so both modes give the same numbers.
  const backend = (await pickBackend(a.backend)).name;
  const lab = await startLabServer({ host: a.host, port: a.port, dirs, model, backend, log: (s) => process.stderr.write(`actlab lab: ${s}\n`) });
  process.stdout.write(`actlab lab: open ${lab.url}\n`);
  await new Promise<void>((ok) => {
    const stop = () => { void lab.close().then(ok); };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  return 0;
}
