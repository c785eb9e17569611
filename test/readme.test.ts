// The README's promises: every TypeScript block in it runs as written (from the repository root,
// on the model that ships with actlab, importing through the package name), and the commands it
// names exist (`actlab --version` prints package.json's version).
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { capture } from './helpers/capture.js';

const ROOT = new URL('..', import.meta.url).pathname;
const README = readFileSync(join(ROOT, 'README.md'), 'utf8');
const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8'));

/** The ```ts blocks of the README with the line each starts on. */
function tsBlocks(md: string): { line: number; code: string }[] {
  const out: { line: number; code: string }[] = [];
  const re = /^```ts\n([\s\S]*?)^```$/gm;
  for (let m = re.exec(md); m; m = re.exec(md)) out.push({ line: md.slice(0, m.index).split('\n').length, code: m[1]! });
  return out;
}

describe('README', () => {
  const blocks = tsBlocks(README);
  const printed = new Map<number, string[]>();

  it('has TypeScript examples', () => {
    expect(blocks.length).toBeGreaterThanOrEqual(2);
  });

  for (const b of blocks) {
    it(`the block at README.md:${b.line} runs as written`, async () => {
      const dir = mkdtempSync(join(tmpdir(), 'actlab-readme-'));
      const file = join(dir, `readme-${b.line}.ts`);
      writeFileSync(file, `${b.code}\nexport {};\n`);
      const logged: string[] = [];
      const log = vi.spyOn(console, 'log').mockImplementation((...a) => { logged.push(a.map((x) => typeof x === 'string' ? x : JSON.stringify(x)).join(' ')); });
      const { liveTensors } = await import('actlab');
      const before = liveTensors();
      const cwd = process.cwd();
      process.chdir(ROOT); // the example's paths are relative to the repository (the package) root
      try {
        await import(/* @vite-ignore */ file);
      } finally {
        process.chdir(cwd);
        log.mockRestore();
      }
      printed.set(b.line, logged);
      // The examples dispose what they make: nothing leaks.
      const after = liveTensors();
      expect(after.buffers - before.buffers, JSON.stringify(after.byOrigin)).toBe(0);
      expect(after.tensors - before.tensors).toBe(0);
      console.log(`README.md:${b.line} printed:\n  ${logged.join('\n  ')}`);
      expect(logged.length).toBeGreaterThan(0);
    }, 120_000);
  }

  it('the memory example prints what its comment says', () => {
    const b = blocks.find((x) => x.code.includes('liveTensors'));
    expect(b, 'a block that shows liveTensors').toBeDefined();
    const said = /console\.log\(total\.item\(\).*\/\/ (.*)$/m.exec(b!.code)?.[1];
    expect(said).toBe('40 1');
    expect(printed.get(b!.line)?.[0]).toBe(said);
  });

  it('names only backends that exist, and the default model that ships', async () => {
    const { registeredBackends } = await import('actlab');
    for (const name of ['wasm', 'js', 'webgpu']) expect(registeredBackends()).toContain(name);
    expect(README).toMatch(/`--backend` is `wasm`, `js`, `webgpu` or `auto`/);
    expect(README).not.toMatch(/models\/default\b/);
    expect(README).toMatch(/models\/organisms\/induction/);
  });

  it('actlab --version prints package.json\'s version', async () => {
    const r = await capture(['--version']);
    expect(r.code).toBe(0);
    expect(r.out.trim()).toBe(pkg.version);
  });
});
