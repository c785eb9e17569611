// The op conformance matrix on WebGPU against the js reference, from the build alone (no CLI
// dependencies, for a packed GPU-machine run): prints the summary, exits 1 on any failure.
// Usage: node scripts/gpu/conformance.mjs [op,op,...]
import '../../dist/src/backends/index.js';
import { initBackend } from '../../dist/src/tensor/engine.js';
import { createJsBackend } from '../../dist/src/backends/js/backend.js';
import { runConformance, summarize } from '../../dist/src/conformance/runner.js';

const ops = process.argv[2]?.split(',').filter(Boolean);
const gpu = await initBackend('webgpu');
const results = await runConformance(createJsBackend(), gpu, { ops });
console.log(summarize(results));
const bad = results.filter((r) => r.status === 'fail' || r.status === 'error');
for (const r of bad.slice(0, 20)) console.log(`FAIL ${r.label}: ${r.detail ?? ''}`);
console.log(`${results.length - bad.length} / ${results.length} cases pass or are unsupported`);
process.exit(bad.length ? 1 : 0);
