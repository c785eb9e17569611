// The core must run in a browser: outside the Node adapters and the CLI, nothing may touch
// `process.env` directly (a browser has no `process`; src/io/env.ts reads it where it exists).
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';

const SRC = new URL('../src/', import.meta.url).pathname;
const NODE_ONLY = [/^cli\//, /\/node\//, /^io\/env\.ts$/];

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    return statSync(p).isDirectory() ? sources(p) : p.endsWith('.ts') ? [p] : [];
  });
}

describe('portability of the core', () => {
  it('reads environment variables only through io/env.ts', () => {
    const offenders = sources(SRC)
      .map((p) => relative(SRC, p))
      .filter((rel) => !NODE_ONLY.some((re) => re.test(rel)))
      .filter((rel) => /process(\?\.|\.)env/.test(readFileSync(join(SRC, rel), 'utf8')));
    expect(offenders).toEqual([]);
  });
});
