// llama.cpp control vectors: write/read round trip (bit-exact), the layer mapping (direction.N at
// blocks.N.hook_resid_post; resid_pre vectors shift by one), the interventions equal adding by
// hand, and malformed or truncated files give a clear error. The comparison with llama.cpp itself
// is test-shared/control-vector-llamacpp.test.ts.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import * as al from '../src/index.js';
import { randomModel } from '../src/models/random.js';
import { writeGguf } from '../src/formats/gguf-write.js';
import { BytesSource } from '../src/io/byte-source.js';
import {
  controlVectorFromSteering, controlVectorInterventions, readControlVector, writeControlVector, type ControlVector,
} from '../src/interventions/control-vector.js';
import { TINY } from './helpers/tiny-configs.js';

const dir = mkdtempSync(join(tmpdir(), 'actlab-cvec-'));
const vec = (n: number, s: number) => Float32Array.from({ length: n }, (_, i) => Math.cos(s + i * 0.7));
let js: al.Backend;

beforeAll(async () => {
  js = await al.initBackend('js');
});

async function gguf(name: string, meta: Record<string, string | number>, tensors: { name: string; type: 'F32' | 'F16'; shape: number[]; data: Uint8Array }[]): Promise<string> {
  const p = join(dir, name);
  await writeGguf((await al.getPlatform()).store, p, meta, tensors);
  return p;
}

describe('control vectors', () => {
  it('round-trips bit-exactly with llama.cpp metadata', async () => {
    const cv: ControlVector = { modelHint: 'llama', dModel: 8, directions: new Map([[3, vec(8, 1)], [1, vec(8, 2)]]) };
    const p = join(dir, 'rt.gguf');
    await writeControlVector(cv, p);
    const back = await readControlVector(p);
    expect(back.modelHint).toBe('llama');
    expect([...back.directions.keys()]).toEqual([1, 3]);
    expect(back.directions.get(3)).toEqual(cv.directions.get(3));
    const g = await al.GgufFile.open(new BytesSource(readFileSync(p), p));
    expect(g.metadata['general.architecture']).toBe('controlvector');
    expect(Number(g.metadata['controlvector.layer_count'])).toBe(2);
    expect(g.tensors.map((t) => [t.name, t.type, t.shape])).toEqual([['direction.1', 'F32', [8]], ['direction.3', 'F32', [8]]]);
  });

  it('direction.N is added at blocks.N.hook_resid_post at every position (as adding by hand)', () => {
    const model = randomModel(TINY.llama!, js, { seed: 1, std: 0.2 });
    const v = vec(32, 3);
    const cv: ControlVector = { modelHint: 'llama', dModel: 32, directions: new Map([[1, v]]) };
    const ivs = controlVectorInterventions(cv, 0.8, { nLayers: model.dims.nLayers });
    expect(ivs).toEqual([{ hook: 'blocks.1.hook_resid_post', op: 'add', vector: v, strength: 0.8 }]);
    const ids = al.tensor([1, 5, 9, 2], [1, 4], 'i32', { backend: js });
    const a = al.withInterventions(model, ivs, () => model.forward(ids));
    const b = al.runWithHooks(model, ids, { hooks: [['blocks.1.hook_resid_post', (t) => al.add(t, al.tensor(v.map((x) => 0.8 * x), [32], 'f32', { backend: js }))]] });
    expect(Array.from(a.dataSync())).toEqual(Array.from(b.dataSync()));
    expect(() => controlVectorInterventions({ ...cv, directions: new Map([[2, v]]) }, 1, { nLayers: 2 })).toThrow(/direction.2 is past the model's last block/);
    expect(() => controlVectorInterventions(cv, NaN)).toThrow(/strength must be a finite number/);
    expect(controlVectorInterventions({ ...cv, directions: new Map([[1, v], [3, v], [5, v]]) }, 1, { layerStart: 2, layerEnd: 4 }).map((i) => i.hook)).toEqual(['blocks.3.hook_resid_post']);
    model.dispose();
  });

  it('steering vectors map to llama.cpp layers: resid_post L -> direction.L, resid_pre L -> direction.L-1', () => {
    const vectors = new Map([[0, vec(4, 0)], [1, vec(4, 1)], [2, vec(4, 2)]]);
    const post = controlVectorFromSteering({ hook: 'blocks.{layer}.hook_resid_post', vectors, dModel: 4 }, 'gpt2', [1, 2]);
    expect([...post.directions.keys()]).toEqual([1, 2]);
    expect(() => controlVectorFromSteering({ hook: 'blocks.{layer}.hook_resid_post', vectors, dModel: 4 }, 'gpt2')).toThrow(/direction.0; llama.cpp only steers the outputs of blocks 1 and up/);
    const pre = controlVectorFromSteering({ hook: 'blocks.{layer}.hook_resid_pre', vectors, dModel: 4 }, 'gpt2', [2]);
    expect([...pre.directions.keys()]).toEqual([1]);
    expect(() => controlVectorFromSteering({ hook: 'blocks.{layer}.hook_mlp_out', vectors, dModel: 4 }, 'gpt2')).toThrow(/no control-vector slot/);
  });

  it('malformed and truncated files give a clear error', async () => {
    const f32 = (n: number) => new Uint8Array(vec(n, 0).buffer);
    const good = await gguf('good.gguf', { 'general.architecture': 'controlvector', 'controlvector.model_hint': 'llama', 'controlvector.layer_count': 1 }, [{ name: 'direction.1', type: 'F32', shape: [64], data: f32(64) }]);
    const bytes = readFileSync(good);
    const cut = join(dir, 'cut.gguf');
    writeFileSync(cut, bytes.subarray(0, bytes.length - 40));
    await expect(readControlVector(cut)).rejects.toThrow(/cut.gguf: not a readable control-vector GGUF.*past the end of the file/);
    const head = join(dir, 'head.gguf');
    writeFileSync(head, bytes.subarray(0, 30));
    await expect(readControlVector(head)).rejects.toThrow(/head.gguf: not a readable control-vector GGUF/);
    const text = join(dir, 'text.gguf');
    writeFileSync(text, 'hello world, not a gguf');
    await expect(readControlVector(text)).rejects.toThrow(/text.gguf: not a readable control-vector GGUF.*does not start with 'GGUF'/);
    const cases: [string, Parameters<typeof gguf>[2], RegExp, Record<string, string | number>?][] = [
      ['f16.gguf', [{ name: 'direction.1', type: 'F16', shape: [4], data: new Uint8Array(8) }], /'direction.1' is F16; control vectors are F32/],
      ['twod.gguf', [{ name: 'direction.1', type: 'F32', shape: [2, 4], data: f32(8) }], /has shape \[2, 4\]; control vectors are 1-D/],
      ['zero.gguf', [{ name: 'direction.0', type: 'F32', shape: [4], data: f32(4) }], /layer indices start at 1/],
      ['name.gguf', [{ name: 'blk.1.attn_q.weight', type: 'F32', shape: [4], data: f32(4) }], /'blk.1.attn_q.weight' is not named direction.N/],
      ['width.gguf', [{ name: 'direction.1', type: 'F32', shape: [4], data: f32(4) }, { name: 'direction.2', type: 'F32', shape: [5], data: f32(5) }], /'direction.2' has 5 values; earlier directions have 4/],
      ['empty.gguf', [], /no direction.N tensors/],
      ['arch.gguf', [{ name: 'direction.1', type: 'F32', shape: [4], data: f32(4) }], /general.architecture is 'llama', not 'controlvector'/, { 'general.architecture': 'llama' }],
    ];
    for (const [name, tensors, re, meta] of cases) {
      const p = await gguf(name, meta ?? { 'general.architecture': 'controlvector', 'controlvector.model_hint': 'llama' }, tensors);
      await expect(readControlVector(p), name).rejects.toThrow(re);
    }
  });
});
