// Where the installed actlab package is and which version it is, found from this file's location
// (src/cli in a checkout, dist/src/cli when built or installed). For the CLI only (reads the disk).
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

function readPackage(dir: string): { name?: string; version?: string } | null {
  const p = join(dir, 'package.json');
  return existsSync(p) ? (JSON.parse(readFileSync(p, 'utf8')) as { name?: string; version?: string }) : null;
}

/** The folder holding actlab's package.json. */
export function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    if (readPackage(dir)?.name === 'actlab') return dir;
    dir = dirname(dir);
  }
  throw new Error('actlab: cannot find the package root (package.json) from the CLI location');
}

/** package.json's version. */
export function packageVersion(): string {
  const v = readPackage(packageRoot())?.version;
  if (!v) throw new Error(`actlab: package.json in ${packageRoot()} has no version`);
  return v;
}
