// Test configuration: every test's temporary files go under one folder that is removed when the
// run ends (tests make their folders with os.tmpdir(), which follows TMPDIR). The WebGPU tests
// find Chromium's Vulkan loader when the system has none (test/helpers/vulkan-loader.ts); this
// runs before the worker processes start, so they inherit it. `import ... from 'actlab/...'`
// resolves through package.json's exports to the sources (dist/src/X.js -> src/X.ts), so tests
// (and the README's examples) use the package's own entry points without a build.
// The suite runs on shared, loaded machines, where a test of 1-2 s idle takes several times
// that: the default budget is a minute (no test may depend on speed; a hung one still fails),
// and heavy tests name their own larger budgets.
import { readFileSync } from 'node:fs';
import { defineConfig } from 'vitest/config';
import { exposeVulkanLoader } from './test/helpers/vulkan-loader.js';

exposeVulkanLoader();

const pkg = JSON.parse(readFileSync(new URL('./package.json', import.meta.url), 'utf8')) as {
  name: string; exports: Record<string, string | { default: string }>;
};
const alias = Object.entries(pkg.exports)
  .filter(([, v]) => typeof v !== 'string')
  .map(([sub, v]) => ({
    find: new RegExp(`^${pkg.name}${sub.slice(1).replace(/[/.]/g, '\\$&')}$`),
    replacement: new URL((v as { default: string }).default.replace(/^\.\/dist\//, './').replace(/\.js$/, '.ts'), import.meta.url).pathname,
  }));

export default defineConfig({
  resolve: { alias },
  test: {
    testTimeout: 60_000,
    hookTimeout: 60_000,
    globalSetup: ['./test/helpers/tmp-setup.ts'],
  },
});
