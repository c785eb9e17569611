#!/usr/bin/env node
// Writes the inspect report of llama2.c's stories260K (../shared/data/stories260K) into docs/:
// docs/stories260k-report.html (self-contained), docs/stories260k-report.json and the figures
// under docs/stories260k/. Needs the build (npm run build) and ../shared next to the repo.
//   node scripts/stories260k-report.mjs
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const data = `${root}../shared/data/stories260K/`;
const main = `${root}dist/src/cli/main.js`;
if (!existsSync(main)) { console.error('build first: npm run build'); process.exit(1); }
if (!existsSync(`${data}stories260K.bin`)) { console.error(`${data}stories260K.bin is missing`); process.exit(1); }
const { run } = await import(main);
const args = ['inspect', '--model', `${data}stories260K.bin`, '--tokenizer', `${data}tok512.bin`, '--backend', 'js', '--no-engine'];
let code = await run([...args, '--html', `${root}docs/stories260k-report.html`, '--figures', `${root}docs/stories260k`]);
if (code === 0) {
  const { writeFileSync } = await import('node:fs');
  let out = '';
  const write = process.stdout.write.bind(process.stdout);
  process.stdout.write = (s) => { out += s; return true; };
  try { code = await run([...args, '--json']); } finally { process.stdout.write = write; }
  writeFileSync(`${root}docs/stories260k-report.json`, JSON.stringify(JSON.parse(out), null, 1) + '\n');
  code = await run(args);
}
process.exitCode = code;
