// The install works where only the npm registry is reachable: package.json's allowScripts covers
// every dependency with an install script, approves only scripts that stay inside the registry,
// denies the ones that download from elsewhere, and CI installs with no environment switch.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = new URL('..', import.meta.url).pathname;
const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8'));
const lock = JSON.parse(readFileSync(join(ROOT, 'package-lock.json'), 'utf8'));

// Every install script in the dependency tree, reviewed: what it does, and whether it may run.
const REVIEWED: Record<string, { allow: boolean; does: string }> = {
  esbuild: { allow: true, does: 'checks its platform binary (an npm optional dependency); falls back to the npm registry' },
  webgpu: { allow: true, does: 'on macOS, removes the quarantine attribute from dawn.node; nothing elsewhere' },
  'onnxruntime-node': { allow: false, does: 'downloads CUDA binaries from NuGet; the CPU binary ships in the npm package' },
};
// Hosts an approved install script may name: the npm registry, and pages its messages cite.
const HOSTS_OK = new Set(['registry.npmjs.org', 'nodejs.org', 'snapcraft.io', 'github.com']);
// Words of a download from outside the registry.
const OUTSIDE = /nuget|visualstudio\.com|objects\.githubusercontent|releases\/download/i;

function withInstallScripts(): Map<string, string> {
  const out = new Map<string, string>();
  for (const [path, entry] of Object.entries(lock.packages as Record<string, { hasInstallScript?: boolean; version: string }>)) {
    if (!entry.hasInstallScript || path === '') continue;
    out.set(path.slice(path.lastIndexOf('node_modules/') + 'node_modules/'.length), entry.version);
  }
  return out;
}

/** The install-time script files a package runs (`node FILE` in preinstall/install/postinstall). */
function scriptFiles(name: string): string[] {
  const dir = join(ROOT, 'node_modules', name);
  if (!existsSync(join(dir, 'package.json'))) return [];
  const scripts = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')).scripts ?? {};
  const files: string[] = [];
  for (const stage of ['preinstall', 'install', 'postinstall']) {
    const m = /^node\s+(\S+)/.exec(scripts[stage] ?? '');
    if (m) files.push(join(dir, m[1]!.endsWith('.js') || m[1]!.endsWith('.mjs') ? m[1]! : `${m[1]}.js`));
  }
  return files;
}

describe('install', () => {
  it('allowScripts decides every install script in package-lock.json, as reviewed', () => {
    const policy = pkg.allowScripts as Record<string, boolean>;
    const found = withInstallScripts();
    console.log('install scripts:', [...found].map(([n, v]) => `${n}@${v}: ${policy[n] === true ? 'runs' : policy[n] === false ? 'denied' : 'UNDECIDED'}`).join(', '));
    expect(found.size).toBeGreaterThan(0);
    for (const [name] of found) {
      expect(REVIEWED[name], `${name} has an install script nobody reviewed: add it to REVIEWED and to package.json's allowScripts`).toBeDefined();
      // Name-only keys: the lock file carries no resolved URLs, so npm cannot verify a pinned version.
      expect(policy[name], `package.json allowScripts["${name}"]`).toBe(REVIEWED[name]!.allow);
    }
    for (const key of Object.keys(policy)) expect(found.has(key), `allowScripts["${key}"] names no dependency with an install script`).toBe(true);
  });

  it('an approved install script downloads nothing from outside the npm registry', () => {
    for (const [name, r] of Object.entries(REVIEWED)) {
      const files = scriptFiles(name);
      const text = files.map((f) => readFileSync(f, 'utf8')).join('\n');
      const hosts = [...text.matchAll(/https?:\/\/([a-z0-9.-]+)/gi)].map((m) => m[1]!.toLowerCase());
      if (r.allow) {
        for (const h of hosts) expect(HOSTS_OK.has(h), `${name}'s install script names ${h}`).toBe(true);
        expect(OUTSIDE.test(text), `${name}'s install script`).toBe(false);
      } else if (name === 'onnxruntime-node' && files.length > 0) {
        // The reason it is denied still holds (else the denial can go).
        const meta = readFileSync(join(ROOT, 'node_modules', name, 'script', 'install-metadata.js'), 'utf8');
        expect(OUTSIDE.test(meta)).toBe(true);
      }
    }
  });

  it('onnxruntime-node works without its install script: its CPU binary is in the package', () => {
    const dir = join(ROOT, 'node_modules', 'onnxruntime-node', 'bin', 'napi-v6', 'linux', 'x64');
    if (!existsSync(join(ROOT, 'node_modules', 'onnxruntime-node'))) return;
    expect(existsSync(join(dir, 'onnxruntime_binding.node'))).toBe(true);
    expect(existsSync(join(dir, 'libonnxruntime.so.1'))).toBe(true);
  });

  it('CI and the README install with no environment switch', () => {
    const ci = readFileSync(join(ROOT, '.ci', 'run'), 'utf8');
    const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
    expect(ci).not.toMatch(/ONNXRUNTIME_NODE_INSTALL/);
    expect(readme).not.toMatch(/ONNXRUNTIME_NODE_INSTALL/);
    expect(ci).toMatch(/npm ci/);
  });
});
