// Tensor views, ownership, scopes and frontend validation errors, on the reference backend.
import { beforeAll, describe, expect, it } from 'vitest';
import * as al from '../src/index.js';

beforeAll(async () => { await al.setDefaultBackend('js'); });

describe('views share memory and never copy', () => {
  it('transpose, slice, broadcast read the right elements', () => {
    const t = al.tensor([[1, 2, 3], [4, 5, 6]]);
    expect(t.transpose().toArray()).toEqual([[1, 4], [2, 5], [3, 6]]);
    expect(t.slice([0, 1], [2, 3]).toArray()).toEqual([[2, 3], [5, 6]]);
    expect(t.slice([1]).toArray()).toEqual([[4, 5, 6]]);
    expect(al.tensor([7, 8]).unsqueeze(0).broadcastTo([3, 2]).toArray()).toEqual([[7, 8], [7, 8], [7, 8]]);
    expect(t.permute([1, 0]).strides).toEqual([1, 3]);
    expect(t.reshape([3, -1]).toArray()).toEqual([[1, 2], [3, 4], [5, 6]]);
    const before = t.backend.memoryInUse();
    const v = t.transpose();
    expect(t.backend.memoryInUse()).toBe(before);
    v.dispose();
  });

  it('reshape of a non-contiguous view copies; of a contiguous one does not', () => {
    const t = al.tensor([[1, 2, 3], [4, 5, 6]]);
    const before = t.backend.memoryInUse();
    const r1 = t.reshape([6]);
    expect(t.backend.memoryInUse()).toBe(before);
    const r2 = t.transpose().reshape([6]);
    expect(Array.from(r2.dataSync())).toEqual([1, 4, 2, 5, 3, 6]);
    expect(t.backend.memoryInUse()).toBeGreaterThan(before);
    r1.dispose(); r2.dispose(); t.dispose();
  });

  it('reshape splits and merges runs of dims contiguous with each other in place (a slice of a fused qkv into heads)', () => {
    const qkv = al.tensor(Array.from({ length: 2 * 3 * 12 }, (_, i) => i), [2, 3, 12]);
    const before = qkv.backend.memoryInUse();
    const k = qkv.slice([0, 0, 4], [2, 3, 8]); // [2, 3, 4], strides [36, 12, 1]
    const heads = k.reshape([2, 3, 2, 2]);
    expect(heads.strides).toEqual([36, 12, 2, 1]);
    const rows = k.reshape([6, 4]);
    expect(rows.strides).toEqual([12, 1]);
    expect(qkv.backend.memoryInUse()).toBe(before);
    expect(Array.from(heads.dataSync())).toEqual(Array.from(k.contiguous().dataSync()));
    expect(rows.toArray()[4]).toEqual([52, 53, 54, 55]);
    // across the gap: a copy
    const flat = k.reshape([2, 12]);
    expect(qkv.backend.memoryInUse()).toBeGreaterThan(before);
    expect(flat.toArray()[1]!.slice(0, 5)).toEqual([40, 41, 42, 43, 52]);
    for (const t of [flat, rows, heads, k, qkv]) t.dispose();
  });

  it('frees the buffer when the last view is disposed', () => {
    const b = al.getBackend('js');
    const start = b.memoryInUse();
    const t = al.zeros([256]);
    const v = t.slice([10]);
    t.dispose();
    expect(b.memoryInUse()).toBe(start + 1024);
    expect(Array.from(v.dataSync()).length).toBe(246);
    v.dispose();
    expect(b.memoryInUse()).toBe(start);
  });
});

describe('ownership', () => {
  it('use after dispose names the op and the tensor', () => {
    const t = al.tensor([1, 2, 3]);
    t.dispose();
    expect(() => al.exp(t)).toThrow(/unary.*disposed|disposed/);
    expect(() => t.dataSync()).toThrow(al.DisposedError);
    expect(() => t.transpose(0, 0)).toThrow(/disposed/);
  });

  it('tidy disposes what it made except what it returns', () => {
    const b = al.getBackend('js');
    const start = b.memoryInUse();
    const kept = al.tidy(() => {
      const a = al.tensor([1, 2, 3]);
      const c = al.mul(a, 2);
      return { c, parts: [al.add(c, 1)] };
    });
    expect(Array.from(kept.c.dataSync())).toEqual([2, 4, 6]);
    expect(Array.from(kept.parts[0]!.dataSync())).toEqual([3, 5, 7]);
    kept.c.dispose(); kept.parts[0]!.dispose();
    expect(b.memoryInUse()).toBe(start);
  });

  it('tidy cleans up when fn throws', () => {
    const b = al.getBackend('js');
    const start = b.memoryInUse();
    expect(() => al.tidy(() => { al.zeros([100]); throw new Error('boom'); })).toThrow('boom');
    // The scope was popped; tensors made inside are no longer tracked by it but are not leaked by a live scope either.
    expect(al.tidy(() => al.zeros([1]).size)).toBe(1);
    expect(b.memoryInUse()).toBeGreaterThanOrEqual(start);
  });
});

describe('errors name the op, shapes and dtypes', () => {
  it('shape errors', () => {
    expect(() => al.add(al.zeros([2, 3]), al.zeros([4]))).toThrow(/add.*\[2, 3\].*\[4\]/);
    expect(() => al.matmul(al.zeros([2, 3]), al.zeros([4, 5]))).toThrow(/matmul.*K 3 vs 4/);
    expect(() => al.zeros([2, 3]).reshape([4])).toThrow(/reshape.*\[2, 3\].*\[4\]/);
    expect(() => al.sum(al.zeros([2, 3]), 2)).toThrow(/axis 2 out of range.*rank 2/);
    expect(() => al.tensor([1, 2, 3], [2, 2])).toThrow(/3 values.*\[2, 2\]/);
  });
  it('dtype errors', () => {
    expect(() => al.add(al.zeros([2]), al.zeros([2], 'f16'))).toThrow(/add: dtypes differ: f32\[2\] and f16\[2\]/);
    expect(() => al.exp(al.zeros([2], 'u8'))).toThrow(/exp: needs a float tensor.*u8/);
    expect(() => al.gather(al.zeros([3, 2]), al.zeros([2]))).toThrow(/gather: ids must be i32, got f32/);
  });
  it('out-of-range ids are refused, not read from stray memory', () => {
    expect(() => al.gather(al.zeros([3, 2]), al.tensor([0, 3], [2], 'i32'))).toThrow(/gather.*3/);
  });
});

describe('data round trips', () => {
  it('every dtype encodes and decodes', () => {
    expect(Array.from(al.tensor([1.5, -2, 65504], [3], 'f16').dataSync())).toEqual([1.5, -2, 65504]);
    expect(Array.from(al.tensor([1.5, -2, 3], [3], 'bf16').dataSync())).toEqual([1.5, -2, 3]);
    expect(Array.from(al.tensor([-8, 7, 9, -9, 0], [5], 'i4').dataSync())).toEqual([-8, 7, 7, -8, 0]);
    expect(Array.from(al.tensor([0, 15, 16, 3], [4], 'u4').dataSync())).toEqual([0, 15, 15, 3]);
    expect(Array.from(al.tensor([300, -1, 2.7], [3], 'u8').dataSync())).toEqual([255, 0, 2]);
    expect(Array.from(al.tensor([-2.7, 1e12], [2], 'i32').dataSync())).toEqual([-2, 2147483647]);
  });
  it('a packed 4-bit view at an odd offset reads the right nibbles', () => {
    const t = al.tensor([1, 2, 3, 4, 5, 6], [6], 'u4');
    expect(Array.from(t.slice([1], [4]).dataSync())).toEqual([2, 3, 4]);
  });
});
