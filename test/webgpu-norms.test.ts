// The WebGPU row norms (layer norm, RMS norm, addNorm) against the reference under each layout of
// the subgroup kernel (norm-subgroup.ts): lanes a row fewer than a subgroup (several rows in one
// subgroup), one subgroup or more a row (a workgroup-memory stage), rows read again from memory
// instead of kept in registers; and the tree kernel it replaces. Every case takes the layout, few
// rows included; with the defaults (webgpu.test.ts's conformance matrix) only cases of 16 rows or
// more do. Skips with the reason where there is no adapter.
import { afterAll, describe, expect, it } from 'vitest';
import '../src/backends/index.js';
import { createJsBackend } from '../src/backends/js/backend.js';
import { runConformance } from '../src/conformance/runner.js';
import { NORM_SG_TUNING, setNormSubgroups } from '../src/backends/webgpu/kernels/norm-subgroup.js';
import { openWebGpu } from './webgpu-helpers.js';

const { backend, reason } = await openWebGpu();
if (!backend) console.log(`webgpu norm tests skipped: ${reason}`);

describe.skipIf(!backend)('webgpu row norms', () => {
  afterAll(() => backend?.dispose());

  it('every layout of the subgroup kernel, and the tree kernel, match the reference', async () => {
    const ref = createJsBackend();
    const keep = { ...NORM_SG_TUNING };
    // [name, subgroups, lanes a row, threads a workgroup, elements a lane in registers]
    const layouts: [string, boolean, number, number, number][] = [
      ['2 lanes a row, 64 threads', true, 2, 64, 32], ['32 lanes a row, 32 threads', true, 32, 32, 32],
      ['64 lanes a row, 128 threads, read again past 8 a lane', true, 64, 128, 8], ['tree kernel', false, 256, 256, 16],
    ];
    const bad: string[] = [];
    for (const [name, sg, lanes, wg, regMax] of layouts) {
      setNormSubgroups(sg);
      Object.assign(NORM_SG_TUNING, { lanes, wg, regMax, minRows: 1 }); // every case, few rows too
      const r = await runConformance(ref, backend!, { ops: ['layernorm', 'rmsnorm', 'addNorm'] });
      const worst = Math.max(...r.filter((x) => x.label.includes('f32')).map((x) => x.nmse));
      console.log(`${name}: ${r.length} cases, worst f32 NMSE ${worst.toExponential(2)}`);
      expect(r.length).toBeGreaterThan(50);
      bad.push(...r.filter((x) => x.status !== 'pass').map((x) => `${name}: ${x.label} (${x.status}, nmse ${x.nmse}) ${x.detail ?? ''}`));
    }
    setNormSubgroups(true);
    Object.assign(NORM_SG_TUNING, keep);
    expect(bad).toEqual([]);
  }, 600_000);
});
