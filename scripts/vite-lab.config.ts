// Builds the lab page (src/web) into dist/lab (kept out of src/: it is a Node build script): a static site that works from any host (relative
// paths), with the organisms' weights beside it so the page can load them without a server.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { defineConfig, type Plugin } from 'vite';

const here = fileURLToPath(new URL('.', import.meta.url));
const root = join(here, '..');

/** Copies models/organisms/NAME/{config.json, model.safetensors} into the build as organisms/NAME/... */
function organisms(): Plugin {
  return {
    name: 'actlab-organisms',
    generateBundle() {
      for (const name of ['induction', 'modular-addition']) {
        for (const f of ['config.json', 'model.safetensors']) {
          this.emitFile({ type: 'asset', fileName: `organisms/${name}/${f}`, source: readFileSync(join(root, 'models', 'organisms', name, f)) });
        }
      }
    },
  };
}

export default defineConfig({
  root: join(root, 'src', 'web'),
  base: './',
  logLevel: 'warn',
  plugins: [organisms()],
  oxc: { jsx: { runtime: 'automatic', importSource: 'preact' } },
  worker: { format: 'es', rollupOptions: { external: [/^node:/, 'webgpu'] } },
  build: {
    outDir: join(root, 'dist', 'lab'),
    emptyOutDir: true,
    target: 'es2022',
    chunkSizeWarningLimit: 2000,
    // The worker's transform is slow on a loaded machine; that is not worth a warning on every build.
    rollupOptions: { external: [/^node:/, 'webgpu'], checks: { pluginTimings: false } },
  },
});
