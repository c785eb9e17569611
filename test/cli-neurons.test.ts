// `actlab neurons`: bad options are refused with the option named, before any model is loaded.
import { describe, expect, it } from 'vitest';
import { capture } from './helpers/capture.js';

describe('actlab neurons', () => {
  it('names the bad option', async () => {
    const a = await capture(['neurons', 'bricks', '--model', 'nowhere', '--corpus', 'x.txt', '--ablation', 'half']);
    expect(a.code).toBe(1);
    expect(a.err).toMatch(/--ablation must be zero or mean, not 'half'/);
    const b = await capture(['neurons', 'bricks', '--model', 'nowhere', '--corpus', 'x.txt', '--active-rate', '2']);
    expect(b.code).toBe(1);
    expect(b.err).toMatch(/--active-rate: '2' must be a fraction/);
    const c = await capture(['neurons', 'select', '--model', 'nowhere', '--target', 'a.txt']);
    expect(c.code).not.toBe(0);
    expect(c.err).toMatch(/--source/);
    const d = await capture(['neurons', 'bricks', '--model', 'nowhere', '--corpus', 'x.txt', '--bricks', '1']);
    expect(d.code).toBe(1);
    expect(d.err).toMatch(/--bricks/);
  });
});
