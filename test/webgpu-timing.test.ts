// GPU timestamps per dispatch on WebGPU (GpuRuntime.startTiming / stopTiming, used by the
// webgpu-tune profiles): every dispatch between the two calls comes back once, in order, named by
// its kernel, with a non-negative time; results are the same as untimed; dispatches past `max` run
// untimed; stopTiming without startTiming is an error. Skips with the reason where there is
// no adapter or it offers no timestamp queries.
import { describe, expect, it } from 'vitest';
import * as al from '../src/index.js';
import type { WebGpuBackend } from '../src/backends/webgpu/backend.js';
import { openWebGpu } from './webgpu-helpers.js';

const { backend, reason } = await openWebGpu();
const be = backend as WebGpuBackend | null;
const why = !be ? reason : !be.handle.features.timestamps ? 'no timestamp-query on this adapter' : '';
if (why) console.log(`webgpu timing tests skipped: ${why}`);

describe.skipIf(!!why)('webgpu GPU timing', () => {
  it('times each dispatch in order without changing results', async () => {
    const a = al.tensor(Array.from({ length: 96 * 64 }, (_, i) => Math.sin(i)), [96, 64], 'f32', { backend: be! });
    const b = al.tensor(Array.from({ length: 64 * 80 }, (_, i) => Math.cos(i)), [64, 80], 'f32', { backend: be! });
    const plain = al.matmul(a, b);
    const want = await plain.data();
    const d0 = be!.rt.stats.dispatches;
    be!.rt.startTiming();
    const timed = al.matmul(a, b);
    const sum = al.add(timed, timed);
    const t = await be!.rt.stopTiming();
    expect(t.length).toBe(be!.rt.stats.dispatches - d0);
    expect(t.length).toBeGreaterThanOrEqual(2);
    expect(t[0]!.name).toMatch(/^mm /);
    expect(t[t.length - 1]!.name).not.toMatch(/^mm /);
    for (const d of t) expect(d.ms).toBeGreaterThanOrEqual(0);
    const got = await timed.data();
    let err = 0;
    for (let i = 0; i < want.length; i++) err = Math.max(err, Math.abs(got[i]! - want[i]!));
    console.log(`timed matmul: ${t.map((d) => `${d.name} ${d.ms.toFixed(3)} ms`).join(', ')}; max difference to untimed ${err}`);
    expect(err).toBe(0);
    al.matmul(a, b).dispose();
    await be!.flush();
    await expect(be!.rt.stopTiming()).rejects.toThrow(/without startTiming/);
    for (const x of [a, b, plain, timed, sum]) x.dispose();
  });

  it('times at most `max` dispatches; the ones past it run untimed', async () => {
    const a = al.tensor([1, 2, 3, 4], [4], 'f32', { backend: be! });
    be!.rt.startTiming(1);
    const m = al.add(a, a);
    const y = al.add(m, a);
    const t = await be!.rt.stopTiming();
    expect(t.length).toBe(1);
    expect(Array.from(await y.data())).toEqual([3, 6, 9, 12]);
    for (const x of [a, m, y]) x.dispose();
  });
});
