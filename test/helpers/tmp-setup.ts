// Vitest global setup: a fresh TMPDIR for the whole run, removed at the end.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export default function setup(): () => void {
  const dir = mkdtempSync(join(tmpdir(), 'actlab-tests-'));
  const before = process.env.TMPDIR;
  process.env.TMPDIR = dir;
  return () => {
    process.env.TMPDIR = before;
    rmSync(dir, { recursive: true, force: true });
  };
}
