// The npm package holds what the README promises: the default model and the organisms ship, and
// the analyses, the activation store, patching and the organisms import through the package name.
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = new URL('..', import.meta.url).pathname;
const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8'));

// What the README tells users to call, by entry point.
const PROMISED: Record<string, string[]> = {
  actlab: ['loadModel', 'runWithCache', 'runWithHooks', 'generate', 'tensor', 'tidy', 'keep', 'liveTensors'],
  'actlab/analysis': ['massiveActivations', 'attentionSinks', 'activationSparsity', 'layerVoids', 'logitLens', 'inductionScores', 'topActivatingExamples', 'similarity', 'expertRouting'],
  'actlab/store': ['ActivationStore', 'harvest'],
  'actlab/interventions': ['activationPatching', 'attributionPatching', 'logitDiff', 'correlation'],
  'actlab/organisms': ['ORGANISMS', 'trainOrganism', 'evaluateOrganism', 'fourierAnalysis', 'ablateHead'],
};

describe('package', () => {
  it('npm pack ships the default model, the organisms, the build and the command, and no tests or logs', () => {
    const out = execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    const files = new Set<string>((JSON.parse(out) as { files: { path: string }[] }[])[0]!.files.map((f) => f.path));
    console.log(`npm pack: ${files.size} files`);
    for (const name of ['induction', 'modular-addition']) {
      for (const f of ['config.json', 'model.safetensors']) expect(files.has(`models/organisms/${name}/${f}`), `models/organisms/${name}/${f}`).toBe(true);
    }
    expect(files.has('bin/actlab.mjs')).toBe(true);
    expect(files.has('package.json')).toBe(true);
    expect(files.has('README.md')).toBe(true);
    if (existsSync(join(ROOT, 'dist', 'src', 'index.js'))) {
      for (const v of Object.values(pkg.exports as Record<string, string | { default: string; types: string }>)) {
        if (typeof v === 'string') continue;
        expect(files.has(v.default.slice(2)), v.default).toBe(true);
        expect(files.has(v.types.slice(2)), v.types).toBe(true);
      }
    }
    // The lab page, prebuilt by `npm run build` (actlab lab serves it).
    if (existsSync(join(ROOT, 'dist', 'lab', 'index.html'))) expect(files.has('dist/lab/index.html')).toBe(true);
    const stray = [...files].filter((f) => /^(test|test-shared|fixtures|bench|scripts|dist\/bench)\/|train_log|checkpoints\//.test(f));
    expect(stray).toEqual([]);
  }, 120_000);

  it('every entry point the README names exists and exports what it promises (through the package name)', async () => {
    const mods: Record<string, () => Promise<Record<string, unknown>>> = {
      actlab: () => import('actlab'),
      'actlab/analysis': () => import('actlab/analysis'),
      'actlab/store': () => import('actlab/store'),
      'actlab/interventions': () => import('actlab/interventions'),
      'actlab/organisms': () => import('actlab/organisms'),
    };
    for (const [spec, names] of Object.entries(PROMISED)) {
      const sub = spec === pkg.name ? '.' : `.${spec.slice(pkg.name.length)}`;
      expect(pkg.exports[sub], `package.json exports["${sub}"]`).toBeDefined();
      const m = await mods[spec]!();
      for (const n of names) expect(m[n], `${spec} exports ${n}`).toBeDefined();
    }
  }, 60_000);

  it('the built package resolves its entry points in plain Node (when dist/ is built)', () => {
    if (!existsSync(join(ROOT, 'dist', 'src', 'index.js'))) {
      console.log('dist/ not built: Node resolution of the entry points not checked (npm run build)');
      return;
    }
    const script = Object.entries(PROMISED).map(([spec, names]) =>
      `{ const m = await import(${JSON.stringify(spec)}); for (const n of ${JSON.stringify(names)}) if (m[n] === undefined) throw new Error(${JSON.stringify(spec)} + ' lacks ' + n); }`).join('\n');
    // Node resolves a package's own name through its exports (self-reference) from inside its folder.
    const out = execFileSync(process.execPath, ['--input-type=module', '-e', `${script}\nconsole.log('ok')`], { cwd: ROOT, encoding: 'utf8' });
    expect(out.trim()).toBe('ok');
  }, 60_000);
});
