// The layout of docs/architecture.md holds: the folders of src/ depend on each other without
// cycles (the pipeline order), and only src/cli and src/io/node import Node's own modules
// statically (elsewhere a Node-only path loads them with a guarded dynamic import()).
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const SRC = new URL('../src/', import.meta.url).pathname;

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    return statSync(p).isDirectory() ? files(p) : p.endsWith('.ts') ? [p] : [];
  });
}

/** The top folder of src/ a file sits in ('' for src/index.ts). */
const folderOf = (abs: string) => (relative(SRC, abs).includes('/') ? relative(SRC, abs).split('/')[0]! : '');

function imports(file: string, dynamic = true): string[] {
  const text = readFileSync(file, 'utf8');
  const re = dynamic ? /(?:from|import\()\s*['"]([^'"]+)['"]/g : /from\s*['"]([^'"]+)['"]/g;
  return [...text.matchAll(re)].map((m) => m[1]!);
}

describe('architecture', () => {
  const all = files(SRC);

  it('the folders of src/ import each other without cycles', () => {
    const edges = new Map<string, Map<string, string>>(); // folder -> folder -> one file that shows it
    for (const f of all) {
      for (const spec of imports(f)) {
        if (!spec.startsWith('.')) continue;
        const to = folderOf(resolve(dirname(f), spec));
        const from = folderOf(f);
        if (!from || !to || from === to) continue;
        if (!edges.has(from)) edges.set(from, new Map());
        if (!edges.get(from)!.has(to)) edges.get(from)!.set(to, `${relative(SRC, f)} imports ${spec}`);
      }
    }
    // Depth-first search for a cycle; report it with the imports that close it.
    const state = new Map<string, 'open' | 'done'>();
    const stack: string[] = [];
    let cycle: string[] | null = null;
    const visit = (n: string): void => {
      if (cycle) return;
      state.set(n, 'open');
      stack.push(n);
      for (const m of edges.get(n)?.keys() ?? []) {
        if (state.get(m) === 'open') {
          const loop = [...stack.slice(stack.indexOf(m)), m];
          cycle = loop.slice(1).map((x, i) => edges.get(loop[i]!)!.get(x)!);
          return;
        }
        if (!state.has(m)) visit(m);
      }
      stack.pop();
      state.set(n, 'done');
    };
    for (const n of edges.keys()) if (!state.has(n)) visit(n);
    expect(cycle).toBeNull();
  });

  it('only src/cli and src/io/node import Node modules statically', () => {
    const offenders = all
      .filter((f) => !/\/src\/(cli|io\/node)\//.test(f))
      .flatMap((f) => imports(f, false).filter((s) => s.startsWith('node:')).map((s) => `${relative(SRC, f)}: ${s}`));
    expect(offenders).toEqual([]);
  });
});
