// Memory ownership: the live-tensor count follows dispose and tidy, and running out of wasm
// memory (a backend capped at a few MiB here, as a forgotten dispose would at 4 GiB) names how
// many tensors are alive and which op made most of them.
import { describe, expect, it } from 'vitest';
import * as al from '../src/index.js';
import { createWasmBackend } from '../src/backends/wasm/backend.js';

describe('live tensors', () => {
  it('count tensors and buffers; views share a buffer; dispose and tidy give them back', async () => {
    const be = await al.initBackend('js');
    const before = al.liveTensors();
    const a = al.tensor([1, 2, 3, 4, 5, 6], [2, 3], 'f32', { backend: be });
    const v = a.transpose(0, 1);
    let now = al.liveTensors();
    expect(now.tensors - before.tensors).toBe(2);
    expect(now.buffers - before.buffers).toBe(1);
    expect(now.bytes - before.bytes).toBe(24);
    const s = al.tidy(() => al.sum(al.mul(al.add(a, 1), 2)));
    now = al.liveTensors();
    expect(now.tensors - before.tensors).toBe(3); // a, v, s: the intermediates were disposed
    expect(now.byOrigin.some((o) => o.origin === 'sum')).toBe(true);
    for (const t of [a, v, s]) t.dispose();
    now = al.liveTensors();
    console.log('after dispose:', now.tensors - before.tensors, 'tensors,', now.buffers - before.buffers, 'buffers');
    expect(now.tensors).toBe(before.tensors);
    expect(now.buffers).toBe(before.buffers);
    expect(now.bytes).toBe(before.bytes);
  });

  it('out of wasm memory: the error counts the live tensors and names the op that made most', async () => {
    const be = await createWasmBackend({ threads: 1, maxBytes: 16 << 20 });
    const x = al.tensor(new Float32Array(256 * 1024), [256, 1024], 'f32', { backend: be }); // 1 MiB
    const leaked: al.Tensor[] = [];
    let err: Error | null = null;
    let alive = 0;
    try {
      // A loop that forgets to dispose: every step leaks a 1 MiB `mul` output.
      for (let i = 0; i < 64; i++) leaked.push(al.mul(x, 2));
    } catch (e) {
      err = e as Error;
      alive = al.liveTensors().tensors;
    }
    console.log(`after ${leaked.length} leaked steps: ${err?.message}`);
    expect(err).toBeInstanceOf(al.OutOfMemoryError);
    expect(err!.message).toMatch(/wasm memory/);
    expect(leaked.length).toBeGreaterThan(8);
    // x and every leaked output (plus, while the failing mul runs, its scalar operand and its broadcast view).
    const n = Number(/(\d+) tensors alive/.exec(err!.message)?.[1]);
    expect(n).toBeGreaterThanOrEqual(leaked.length + 1);
    expect(n).toBeLessThanOrEqual(alive + 2);
    expect(err!.message).toMatch(/made most by: mul \d+ \(/);
    expect(err!.message).toMatch(/dispose\(\)/);
    for (const t of leaked) t.dispose();
    x.dispose();
    // Disposing gives the memory back: the same allocation now succeeds.
    const y = al.tensor(new Float32Array(256 * 1024), [256, 1024], 'f32', { backend: be });
    al.mul(y, 2).dispose();
    y.dispose();
    be.dispose();
  }, 60_000);

  it('greedy generation leaves nothing alive (each step\'s logits view was kept alive before)', async () => {
    const { model } = await al.loadModel(new URL('../models/organisms/induction', import.meta.url).pathname, { backend: 'js' });
    const before = al.liveTensors();
    const out = al.generate(model, [[1, 7, 12, 30, 7, 12]], { maxNewTokens: 6 });
    const after = al.liveTensors();
    console.log('generate: new ids', out.newIds[0], 'buffers left', after.buffers - before.buffers);
    expect(out.newIds[0]).toHaveLength(6);
    expect(after.buffers - before.buffers, JSON.stringify(after.byOrigin)).toBe(0);
    expect(after.tensors - before.tensors).toBe(0);
    model.dispose();
  }, 60_000);
});
