// Runs the `actlab` CLI in-process, capturing what it writes to stdout and stderr.
import { vi } from 'vitest';
import { run } from '../../src/cli/main.js';

export async function capture(argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const o = vi.spyOn(process.stdout, 'write').mockImplementation((s) => { out += String(s); return true; });
  const e = vi.spyOn(process.stderr, 'write').mockImplementation((s) => { err += String(s); return true; });
  const l = vi.spyOn(console, 'log').mockImplementation((...a) => { out += a.join(' ') + '\n'; });
  try {
    return { code: await run(argv), out, err };
  } finally {
    o.mockRestore(); e.mockRestore(); l.mockRestore();
  }
}
