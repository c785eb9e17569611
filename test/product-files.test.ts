// Product files speak of the product only: the README, docs, benchmark results, tests and scripts
// name no people or processes around the project (who asked, which ticket, which machine rental).
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = new URL('..', import.meta.url).pathname;
const SELF = 'test/product-files.test.ts';
const WORDS: [RegExp, string][] = [
  [/\bCEO\b/, 'CEO'],
  [/\bissue ?#\d+|\bissue \d+\b/i, 'an issue number'],
  [/device machine/i, 'the device machine'],
  [/\bcarry \[/i, 'a carry list'],
  [/\bengineers?\b/i, 'engineers'],
];
// "session" only in prose: ONNX Runtime's InferenceSession is code.
const PROSE_ONLY: [RegExp, string][] = [[/\bsessions?\b/i, 'session']];

describe('product files', () => {
  it('README, docs, bench, tests and scripts name the product only', () => {
    const files = execFileSync('git', ['ls-files', 'README.md', 'docs', 'bench', 'test', 'test-shared', 'scripts', 'fixtures/README.md', 'models/organisms/README.md', '.ci'], { cwd: ROOT, encoding: 'utf8' })
      .split('\n').filter((f) => f && f !== SELF && /\.(md|ts|mjs|js|py|sh)$|^\.ci\//.test(f));
    expect(files.length).toBeGreaterThan(20);
    const found: string[] = [];
    for (const f of files) {
      const text = readFileSync(join(ROOT, f), 'utf8');
      const rules = f.endsWith('.md') ? [...WORDS, ...PROSE_ONLY] : WORDS;
      text.split('\n').forEach((line, i) => {
        for (const [re, what] of rules) if (re.test(line)) found.push(`${f}:${i + 1}: ${what}`);
      });
    }
    expect(found).toEqual([]);
  });
});
