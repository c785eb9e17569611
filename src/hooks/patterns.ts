// Hook name patterns as the CLI takes them: comma-separated globs where `*` matches any run of
// characters (dots included), e.g. `blocks.*.hook_resid_pre,blocks.*.attn.hook_pattern`.
// A pattern that matches nothing is an error that lists the closest hook names.
// Not for: RegExps or predicates (runWithCache takes those directly).

/** A glob as an anchored RegExp: `*` is any characters, everything else is literal. */
export function globToRegExp(glob: string): RegExp {
  const body = glob.split('*').map((s) => s.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('.*');
  return new RegExp(`^${body}$`);
}

/** Splits `a,b , c` into trimmed, non-empty patterns. */
export function splitPatterns(patterns: string): string[] {
  return patterns.split(',').map((p) => p.trim()).filter((p) => p !== '');
}

/**
 * The names (in the order of `names`, each once) matched by any of the comma-separated globs in
 * `patterns`. Throws when the list is empty or when one pattern matches no name; the message
 * lists the closest names for each such pattern.
 */
export function matchHookPatterns(patterns: string, names: string[]): string[] {
  const list = splitPatterns(patterns);
  if (list.length === 0) throw new Error(`no hook pattern given (expected comma-separated names or globs such as 'blocks.*.hook_resid_pre')`);
  const res = list.map(globToRegExp);
  const missing = list.filter((_, i) => !names.some((n) => res[i]!.test(n)));
  if (missing.length) {
    const lines = missing.map((p) => `  '${p}': closest ${closestHookNames(p, names).map((n) => `'${n}'`).join(', ')}`);
    throw new Error(`no hook point matches ${missing.map((p) => `'${p}'`).join(', ')}:\n${lines.join('\n')}`);
  }
  return names.filter((n) => res.some((r) => r.test(n)));
}

/**
 * The `k` names closest to `pattern` by edit distance, where a `*` in the pattern matches any
 * characters for free. When the pattern has a `*`, layer numbers in the candidates are folded to
 * `*` too (`blocks.*.hook_resid_pre`), so one suggestion stands for every block.
 */
export function closestHookNames(pattern: string, names: string[], k = 5): string[] {
  const cands = new Set(names);
  if (pattern.includes('*')) {
    for (const n of names) {
      if (!/\.\d+\./.test(n)) continue;
      cands.delete(n);
      cands.add(n.replace(/\.\d+\./g, '.*.'));
    }
  }
  return [...cands]
    .map((n) => ({ n, d: globDistance(pattern, n) }))
    .sort((a, b) => a.d - b.d || a.n.localeCompare(b.n))
    .slice(0, k)
    .map((x) => x.n);
}

/** Fewest single-character edits that make `name` match the glob `pattern` (`*` absorbs any run for free). */
export function globDistance(pattern: string, name: string): number {
  const m = pattern.length;
  const n = name.length;
  let prev = Array.from({ length: n + 1 }, (_, j) => j);
  for (let i = 1; i <= m; i++) {
    const cur = new Array<number>(n + 1);
    const pc = pattern[i - 1]!;
    if (pc === '*') {
      cur[0] = prev[0]!;
      for (let j = 1; j <= n; j++) cur[j] = Math.min(prev[j]!, cur[j - 1]!);
    } else {
      cur[0] = prev[0]! + 1;
      for (let j = 1; j <= n; j++) {
        cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (pc === name[j - 1] ? 0 : 1));
      }
    }
    prev = cur;
  }
  return prev[n]!;
}

/** Throws, naming each unknown name with its closest hook points, unless every name is one of `known`. */
export function assertHookNames(names: readonly string[], known: readonly string[], where: string, arch: string): void {
  const set = new Set(known);
  const unknown = names.filter((n) => !set.has(n));
  if (unknown.length === 0) return;
  const list = unknown.map((n) => `'${n}' (closest: ${closestHookNames(n, [...known], 3).map((c) => `'${c}'`).join(', ')})`);
  throw new Error(`${where}: no hook point named ${list.join('; ')} in this ${arch} model`);
}
