// The neuron methods on a real pretrained model, llama2.c's stories260K, with Tiny Shakespeare as
// the target "language" and wikitext-2 as the source (the numbers docs/neurons.md reports):
// `actlab neurons select` on the residual stream must find a shift that raises the label's token
// mass on held-out wikitext and lowers held-out Shakespeare NLL, where the same recipe on random
// units does neither; `actlab neurons bricks` must find partitions whose neurons co-fire more
// within than between bricks.
import { describe, expect, it } from 'vitest';
import { capture } from '../test/helpers/capture.js';

const D = new URL('../../shared/data/', import.meta.url).pathname;
const MODEL = ['--model', `${D}stories260K/stories260K.bin`, '--tokenizer', `${D}stories260K/tok512.bin`];

describe('neurons on stories260K', () => {
  it('select: the shift on the residual stream moves the model toward Shakespeare, random units do not', async () => {
    const r = await capture(['neurons', 'select', ...MODEL, '--target', `${D}tinyshakespeare/input.txt`, '--source', `${D}wikitext-2/valid.txt`,
      '--hooks', 'blocks.*.hook_resid_post', '--contexts', '64', '--eval-contexts', '16', '--strength', '1', '--json']);
    expect(r.code, r.err).toBe(0);
    const j = JSON.parse(r.out.trim());
    const base = j.evaluation.baseline;
    const s = j.evaluation.shifts[0];
    console.log(`label mass on wikitext: base ${base.labelMassOnSource.toFixed(4)}, shift ${s.shift.labelMassOnSource.toFixed(4)}, random ${s.random.labelMassOnSource.toFixed(4)}; Shakespeare NLL: base ${base.targetNll.toFixed(4)}, shift ${s.shift.targetNll.toFixed(4)}, random ${s.random.targetNll.toFixed(4)}; window ${j.window.join(',')}`);
    expect(j.layers).toHaveLength(5);
    expect(j.targetUnits.length).toBeGreaterThan(0);
    expect(j.sourceUnits.length).toBeGreaterThan(0);
    expect(s.shift.labelMassOnSource).toBeGreaterThan(base.labelMassOnSource * 1.3);
    expect(s.random.labelMassOnSource).toBeLessThan(base.labelMassOnSource * 1.1);
    expect(s.shift.targetNll).toBeLessThan(base.targetNll);
    expect(s.random.targetNll).toBeGreaterThan(s.shift.targetNll);
  }, 300_000);

  it('bricks: co-activation partitions of layer 2 with their ablation effects', async () => {
    const r = await capture(['neurons', 'bricks', ...MODEL, '--corpus', `${D}wikitext-2/valid.txt`, '--also', `${D}tinyshakespeare/input.txt`,
      '--layer', '2', '--contexts', '32', '--eval-contexts', '8', '--bricks', '6', '--controls', '2', '--json']);
    expect(r.code, r.err).toBe(0);
    const j = JSON.parse(r.out.trim());
    console.log(j.bricks.map((b: { index: number; units: number[]; effects: { kl: number }[]; control: { kl: number }[] }) => `brick ${b.index} (${b.units.length}): KL ${b.effects.map((e) => e.kl.toFixed(3)).join('/')} control ${b.control.map((e) => e.kl.toFixed(3)).join('/')}`).join('\n'));
    expect(j.bricks).toHaveLength(6);
    expect(j.bricks.reduce((s: number, b: { units: number[] }) => s + b.units.length, 0)).toBe(172);
    expect(j.contrast).toBeGreaterThan(1.2);
    for (const b of j.bricks) { expect(b.cohesion).toBeGreaterThan(b.coupling); expect(b.effects).toHaveLength(2); for (const e of b.effects) expect(e.kl).toBeGreaterThan(0); }
  }, 300_000);
});
