// Tests of the plain-TypeScript reference backend against hand-computed and published values:
// dtype conversions, strided access, every op family, and the error messages for bad input.
import { describe, expect, it } from 'vitest';
import type { OpDesc, View } from '../src/tensor/backend.js';
import { readView, writeView } from '../src/backends/js/access.js';
import { createJsBackend, type JsBuffer } from '../src/backends/js/backend.js';
import { erf, erfc, unaryFn } from '../src/backends/js/kernels/elementwise.js';
import type { DType } from '../src/tensor/dtype.js';
import { byteSize } from '../src/tensor/dtype.js';
import { contiguousStrides, numel } from '../src/tensor/shape.js';

const be = createJsBackend();

/** A fresh contiguous view holding `values` converted to `dtype`. */
function tensor(dtype: DType, shape: number[], values: ArrayLike<number> = []): View {
  const buffer = be.alloc(byteSize(dtype, numel(shape)));
  const v: View = { buffer, dtype, shape, strides: contiguousStrides(shape), offset: 0 };
  if (values.length) writeView((buffer as JsBuffer).bytes, v, values);
  return v;
}
const empty = (dtype: DType, shape: number[]) => tensor(dtype, shape);
const data = (v: View) => Array.from(readView((v.buffer as JsBuffer).bytes, v));
const exec = (op: OpDesc, inputs: View[], outputs: View[]) => be.exec(op, inputs, outputs);

function maxErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}
function expectClose(name: string, got: ArrayLike<number>, want: ArrayLike<number>, tol: number): void {
  const e = maxErr(got, want);
  console.log(`${name}: max error ${e.toExponential(2)}`);
  expect(e).toBeLessThanOrEqual(tol);
}
/** Deterministic pseudo-random values in [-1, 1). */
function rand(n: number, seed = 1): number[] {
  let s = seed >>> 0;
  return Array.from({ length: n }, () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 31 - 1;
  });
}
/** Round-trips values through a dtype. */
const through = (dtype: DType, values: number[]) => data(tensor(dtype, [values.length], values));

describe('dtype conversion through views', () => {
  it('f16 edge cases: max, subnormals, Inf, NaN, ties to even', () => {
    const got = through('f16', [65504, 65520, 6e-8, 5.960464477539063e-8, 2 ** -25, 2 ** -25 * 1.01, Infinity, -Infinity, NaN, -0, 1 + 2 ** -11, 1 + 3 * 2 ** -11]);
    expect(got.slice(0, 2)).toEqual([65504, Infinity]); // 65520 is the tie that rounds up to Inf
    expect(got[2]).toBe(5.960464477539063e-8); // smallest subnormal 2^-24
    expect(got[3]).toBe(2 ** -24);
    expect(got[4]).toBe(0); // exact half of the smallest subnormal: tie to even (0)
    expect(got[5]).toBe(2 ** -24);
    expect(got.slice(6, 8)).toEqual([Infinity, -Infinity]);
    expect(Number.isNaN(got[8])).toBe(true);
    expect(Object.is(got[9], -0)).toBe(true);
    expect(got[10]).toBe(1); // 1 + half-ulp ties down to even mantissa
    expect(got[11]).toBe(1 + 2 ** -9); // 1 + 1.5 ulp ties up to even mantissa
  });

  it('bf16 edge cases: ties to even, NaN, Inf, large values', () => {
    const got = through('bf16', [1 + 2 ** -8, 1 + 3 * 2 ** -8, 3.39e38, 3.4e38, NaN, -Infinity, 1e-40]);
    expect(got[0]).toBe(1); // tie rounds to even
    expect(got[1]).toBe(1 + 2 ** -6);
    expect(got[2]).toBe(3.3895313892515355e38); // largest finite bf16 (0x7f7f)
    expect(got[3]).toBe(Infinity); // past the midpoint to the next binade
    expect(Number.isNaN(got[4])).toBe(true);
    expect(got[5]).toBe(-Infinity);
    expect(got[6]).toBe(2 ** -133); // subnormal f32 0x000116c2 keeps its top 16 bits
  });

  it('int casts truncate toward zero, saturate and send NaN to 0', () => {
    const src = [-1e10, -129.7, -2.9, -0.5, 0.5, 2.9, 127.5, 300, NaN, Infinity];
    expect(through('i8', src)).toEqual([-128, -128, -2, 0, 0, 2, 127, 127, 0, 127]);
    expect(through('u8', src)).toEqual([0, 0, 0, 0, 0, 2, 127, 255, 0, 255]);
    expect(through('i32', [3e9, -3e9, -7.9])).toEqual([2147483647, -2147483648, -7]);
    expect(through('i4', src)).toEqual([-8, -8, -2, 0, 0, 2, 7, 7, 0, 7]);
    expect(through('u4', src)).toEqual([0, 0, 0, 0, 0, 2, 15, 15, 0, 15]);
    // the copy op is the cast
    const y = empty('i8', [3]);
    exec({ op: 'copy' }, [tensor('f32', [3], [200, -3.7, NaN])], [y]);
    expect(data(y)).toEqual([127, -3, 0]);
  });

  it('i4/u4 pack two per byte, low nibble first, i4 sign-extended', () => {
    const v = tensor('i4', [4], [-1, 3, 7, -8]);
    expect(Array.from((v.buffer as JsBuffer).bytes)).toEqual([0x3f, 0x87]);
    expect(data(v)).toEqual([-1, 3, 7, -8]);
    const u: View = { ...v, dtype: 'u4' };
    expect(data(u)).toEqual([15, 3, 7, 8]);
    // odd offset: element 1 lives in the high nibble of byte 0
    expect(data({ ...v, shape: [2], strides: [1], offset: 1 })).toEqual([3, 7]);
    // writing one nibble leaves its neighbour alone
    writeView((v.buffer as JsBuffer).bytes, { ...v, shape: [1], strides: [1], offset: 2 }, [-2]);
    expect(data(v)).toEqual([-1, 3, -2, -8]);
  });
});

describe('strided views', () => {
  it('reads transposed, offset and broadcast (stride 0) views in logical order', () => {
    const base = tensor('f32', [2, 3], [0, 1, 2, 3, 4, 5]);
    expect(data({ ...base, shape: [3, 2], strides: [1, 3] })).toEqual([0, 3, 1, 4, 2, 5]);
    expect(data({ ...base, shape: [2, 2], strides: [3, 1], offset: 1 })).toEqual([1, 2, 4, 5]);
    expect(data({ ...base, shape: [2, 3], strides: [0, 1] })).toEqual([0, 1, 2, 0, 1, 2]);
    expect(data({ ...base, shape: [2, 3], strides: [3, 0] })).toEqual([0, 0, 0, 3, 3, 3]);
    expect(data({ ...base, shape: [3], strides: [2] })).toEqual([0, 2, 4]);
  });

  it('binary op on broadcast inputs and a strided output', () => {
    const a = tensor('f32', [3], [1, 2, 3]);
    const b = tensor('f32', [2], [10, 20]);
    const y = empty('f32', [3, 2]);
    const yT: View = { ...y, shape: [2, 3], strides: [1, 2] }; // write the transpose
    exec({ op: 'binary', fn: 'add' }, [{ ...a, shape: [2, 3], strides: [0, 1] }, { ...b, shape: [2, 3], strides: [1, 0] }], [yT]);
    expect(data(y)).toEqual([11, 21, 12, 22, 13, 23]);
  });

  it('rejects views that reach outside their buffer', () => {
    const base = tensor('f32', [4], [1, 2, 3, 4]);
    expect(() => data({ ...base, shape: [3], strides: [2] })).toThrow(/outside its buffer/);
  });
});

describe('unary', () => {
  it('erf and erfc match high-precision (mpmath) values to 5e-15 relative', () => {
    const erfRef: [number, number][] = [
      [1e-10, 1.1283791670955126e-10], [0.1, 0.1124629160182849], [0.5, 0.5204998778130465],
      [1, 0.8427007929497149], [1.5, 0.9661051464753108], [1.99, 0.995111413199617], [2, 0.9953222650189527],
      [0.9999, 0.8426592780487595], [2.5, 0.999593047982555], [3, 0.9999779095030014], [5, 0.9999999999984626],
    ];
    const erfcRef: [number, number][] = [
      [0.5, 0.4795001221869535], [1.9, 0.0072095707647425325], [2, 0.004677734981047266],
      [2.5, 0.0004069520174449589], [3, 2.209049699858544e-5], [5, 1.537459794428035e-12],
      [10, 2.088487583762545e-45], [20, 5.395865611607901e-176], [26, 5.663192408856143e-296], [26.1, 3.081217493314593e-298], [0.9, 0.20309178757716786],
    ];
    let worst = 0;
    for (const [x, want] of erfRef) {
      worst = Math.max(worst, Math.abs(erf(x) / want - 1), Math.abs(erf(-x) / -want - 1));
    }
    for (const [x, want] of erfcRef) worst = Math.max(worst, Math.abs(erfc(x) / want - 1));
    console.log(`erf/erfc: max relative error ${worst.toExponential(2)}`);
    expect(worst).toBeLessThan(5e-15);
    expect(erf(0)).toBe(0);
    expect(erf(Infinity)).toBe(1);
    expect(erfc(-Infinity)).toBe(2);
  });

  it('gelu_erf and gelu_tanh at known points, including the far negative tail', () => {
    const xs = [-10, -5, -3, -1, -0.5, 0, 0.5, 1, 3];
    const geluRef = [-7.619853024160526e-23, -1.4332578593959695e-6, -0.0040496940948902835, -0.15865525393145705,
      -0.15426876936299344, 0, 0.34573123063700656, 0.8413447460685429, 2.99595030590511];
    const f = unaryFn('gelu_erf');
    let worst = 0;
    xs.forEach((x, i) => { if (geluRef[i] !== 0) worst = Math.max(worst, Math.abs(f(x) / geluRef[i]! - 1)); });
    console.log(`gelu_erf: max relative error ${worst.toExponential(2)}`);
    expect(worst).toBeLessThan(1e-13);
    // gelu_tanh(1) = 0.5 (1 + tanh(sqrt(2/pi) * 1.044715))
    const g = unaryFn('gelu_tanh');
    expect(Math.abs(g(1) - 0.8411919906082768)).toBeLessThan(1e-15);
    expect(g(-1)).toBeCloseTo(-0.15880800939172324, 15);
  });

  it('sigmoid is stable, sign handles 0 and NaN, silu/relu/rsqrt/recip/square through exec', () => {
    const x = tensor('f32', [6], [-1000, -2, 0, NaN, 4, 1000]);
    const run = (fn: Parameters<typeof unaryFn>[0]) => {
      const y = empty('f32', [6]);
      exec({ op: 'unary', fn }, [x], [y]);
      return data(y);
    };
    const sig = run('sigmoid');
    expect(sig[0]).toBe(0);
    expect(sig[5]).toBe(1);
    expect(sig[1]).toBeCloseTo(1 / (1 + Math.exp(2)), 7);
    expect(run('sign')).toEqual([-1, -1, 0, NaN, 1, 1]);
    expect(run('relu')).toEqual([0, 0, 0, NaN, 4, 1000]);
    const silu = run('silu');
    expect(silu[0]).toBe(-0);
    expect(silu[4]).toBeCloseTo(4 / (1 + Math.exp(-4)), 5);
    expect(run('rsqrt')[4]).toBe(0.5);
    expect(run('recip')[4]).toBe(0.25);
    expect(run('square')[1]).toBe(4);
  });
});

describe('binary and where', () => {
  it('comparisons write u8 and NaN compares false (ne true)', () => {
    const a = tensor('f32', [4], [1, 2, NaN, 3]);
    const b = tensor('f32', [4], [1, 3, NaN, 2]);
    const out = (fn: 'eq' | 'ne' | 'lt' | 'ge') => {
      const y = empty('u8', [4]);
      exec({ op: 'binary', fn }, [a, b], [y]);
      return data(y);
    };
    expect(out('eq')).toEqual([1, 0, 0, 0]);
    expect(out('ne')).toEqual([0, 1, 1, 1]);
    expect(out('lt')).toEqual([0, 1, 0, 0]);
    expect(out('ge')).toEqual([1, 0, 0, 1]);
  });

  it('i32 arithmetic: division truncates toward zero, add saturates', () => {
    const a = tensor('i32', [4], [7, -7, 2147483647, 9]);
    const b = tensor('i32', [4], [2, 2, 1, -4]);
    const y = empty('i32', [4]);
    exec({ op: 'binary', fn: 'div' }, [a, b], [y]);
    expect(data(y)).toEqual([3, -3, 2147483647, -2]);
    exec({ op: 'binary', fn: 'add' }, [a, b], [y]);
    expect(data(y)).toEqual([9, -5, 2147483647, 5]);
    exec({ op: 'binary', fn: 'maximum' }, [a, b], [y]);
    expect(data(y)).toEqual([7, 2, 2147483647, 9]);
  });

  it('pow follows Math.pow; where picks by a u8 condition', () => {
    const y = empty('f32', [3]);
    exec({ op: 'binary', fn: 'pow' }, [tensor('f32', [3], [2, -8, 0]), tensor('f32', [3], [10, 1 / 3, 0])], [y]);
    expect(data(y)).toEqual([1024, NaN, 1]);
    exec({ op: 'where' }, [tensor('u8', [3], [1, 0, 1]), tensor('f32', [3], [1, 2, 3]), tensor('f32', [3], [-1, -2, -3])], [y]);
    expect(data(y)).toEqual([1, -2, 3]);
  });
});

describe('reductions, cumsum, topk', () => {
  const x = tensor('f32', [2, 3], [1, 5, 2, -4, 0, 9]);

  it('sum/mean/max/min over either axis keep the axis as size 1', () => {
    const y1 = empty('f32', [2, 1]);
    exec({ op: 'reduce', fn: 'sum', axis: 1 }, [x], [y1]);
    expect(data(y1)).toEqual([8, 5]);
    exec({ op: 'reduce', fn: 'mean', axis: -1 }, [x], [y1]);
    expect(data(y1)[0]).toBeCloseTo(8 / 3, 6);
    const y0 = empty('f32', [1, 3]);
    exec({ op: 'reduce', fn: 'max', axis: 0 }, [x], [y0]);
    expect(data(y0)).toEqual([1, 5, 9]);
    exec({ op: 'reduce', fn: 'min', axis: 0 }, [x], [y0]);
    expect(data(y0)).toEqual([-4, 0, 2]);
  });

  it('max propagates NaN; argmax/argmin treat NaN as extreme, first occurrence wins', () => {
    const n = tensor('f32', [2, 4], [1, NaN, 3, NaN, 2, 7, 7, 1]);
    const m = empty('f32', [2, 1]);
    exec({ op: 'reduce', fn: 'max', axis: 1 }, [n], [m]);
    expect(data(m)).toEqual([NaN, 7]);
    const i = empty('i32', [2, 1]);
    exec({ op: 'reduce', fn: 'argmax', axis: 1 }, [n], [i]);
    expect(data(i)).toEqual([1, 1]);
    exec({ op: 'reduce', fn: 'argmin', axis: 1 }, [n], [i]);
    expect(data(i)).toEqual([1, 3]);
  });

  it('empty axis: sum 0, mean NaN, max throws naming op and shape', () => {
    const e = empty('f32', [2, 0]);
    const y = empty('f32', [2, 1]);
    exec({ op: 'reduce', fn: 'sum', axis: 1 }, [e], [y]);
    expect(data(y)).toEqual([0, 0]);
    exec({ op: 'reduce', fn: 'mean', axis: 1 }, [e], [y]);
    expect(data(y)).toEqual([NaN, NaN]);
    expect(() => exec({ op: 'reduce', fn: 'max', axis: 1 }, [e], [y])).toThrow(/'reduce'.*max.*\[2,0\]/);
  });

  it('cumsum along an axis', () => {
    const y = empty('f32', [2, 3]);
    exec({ op: 'cumsum', axis: 0 }, [x], [y]);
    expect(data(y)).toEqual([1, 5, 2, -3, 5, 11]);
    exec({ op: 'cumsum', axis: 1 }, [x], [y]);
    expect(data(y)).toEqual([1, 6, 8, -4, -4, 5]);
  });

  it('topk sorts descending and breaks ties by lower index', () => {
    const t = tensor('f32', [2, 5], [3, 1, 3, 5, 1, 0, 0, 0, -1, 2]);
    const v = empty('f32', [2, 3]);
    const i = empty('i32', [2, 3]);
    exec({ op: 'topk', k: 3 }, [t], [v, i]);
    expect(data(v)).toEqual([5, 3, 3, 2, 0, 0]);
    expect(data(i)).toEqual([3, 0, 2, 4, 0, 1]);
  });
});

describe('matmul', () => {
  /** Plain triple loop on row-major [batch, M, K] x [batch, K, N]. */
  function naive(a: number[], b: number[], batch: number, M: number, K: number, N: number): number[] {
    const y = new Array<number>(batch * M * N).fill(0);
    for (let p = 0; p < batch; p++)
      for (let m = 0; m < M; m++)
        for (let n = 0; n < N; n++)
          for (let k = 0; k < K; k++) y[(p * M + m) * N + n]! += a[(p * M + m) * K + k]! * b[(p * K + k) * N + n]!;
    return y;
  }
  const transpose = (x: number[], batch: number, R: number, C: number) =>
    Array.from({ length: x.length }, (_, i) => {
      const p = Math.floor(i / (R * C)), c = Math.floor((i % (R * C)) / R), r = i % R;
      return x[p * R * C + r * C + c]!; // element [p, c, r] of the [batch, C, R] result
    });

  it('a 2x2 by hand', () => {
    const y = empty('f32', [2, 2]);
    exec({ op: 'matmul', transA: false, transB: false }, [tensor('f32', [2, 2], [1, 2, 3, 4]), tensor('f32', [2, 2], [5, 6, 7, 8])], [y]);
    expect(data(y)).toEqual([19, 22, 43, 50]);
  });

  it('every transpose combination equals the plain product of explicitly transposed data', () => {
    const [B, M, K, N] = [2, 3, 4, 5];
    const a = rand(B * M * K, 3), b = rand(B * K * N, 4);
    const want = naive(a, b, B, M, K, N);
    for (const transA of [false, true]) {
      for (const transB of [false, true]) {
        const av = transA ? tensor('f32', [B, K, M], transpose(a, B, M, K)) : tensor('f32', [B, M, K], a);
        const bv = transB ? tensor('f32', [B, N, K], transpose(b, B, K, N)) : tensor('f32', [B, K, N], b);
        const y = empty('f32', [B, M, N]);
        exec({ op: 'matmul', transA, transB }, [av, bv], [y]);
        expectClose(`matmul transA=${transA} transB=${transB}`, data(y), want, 1e-6);
      }
    }
  });

  it('broadcast batch (stride 0) reads the same matrix for every batch', () => {
    const a = tensor('f32', [1, 2, 2], [1, 2, 3, 4]);
    const y = empty('f32', [3, 2, 2]);
    const eye = tensor('f32', [2, 2], [1, 0, 0, 1]);
    exec({ op: 'matmul', transA: false, transB: false },
      [{ ...a, shape: [3, 2, 2], strides: [0, 2, 1] }, { ...eye, shape: [3, 2, 2], strides: [0, 2, 1] }], [y]);
    expect(data(y)).toEqual([1, 2, 3, 4, 1, 2, 3, 4, 1, 2, 3, 4]);
  });

  it('rejects mismatched inner dims', () => {
    expect(() => exec({ op: 'matmul', transA: false, transB: false }, [empty('f32', [2, 3]), empty('f32', [2, 3])], [empty('f32', [2, 3])]))
      .toThrow(/matmul.*inner dims/);
  });
});

describe('softmax', () => {
  it('rows sum to 1 and match exp(x)/sum by hand, log-softmax is its log', () => {
    const xs = [1, 2, 3, 1000, 1001, 1002];
    const x = tensor('f32', [2, 3], xs);
    const y = empty('f32', [2, 3]);
    exec({ op: 'softmax', log: false, causal: false, masked: false }, [x], [y]);
    const e = [1, Math.E, Math.E ** 2], s = e[0]! + e[1]! + e[2]!;
    const want = [...e.map((v) => v / s), ...e.map((v) => v / s)]; // shift invariance, no overflow
    expectClose('softmax', data(y), want, 1e-7);
    const got = data(y);
    expect(Math.abs(got[0]! + got[1]! + got[2]! - 1)).toBeLessThan(1e-6);
    exec({ op: 'softmax', log: true, causal: false, masked: false }, [x], [y]);
    expectClose('log-softmax', data(y), want.map(Math.log), 1e-6);
  });

  it('causal with offset tk - tq hides future keys; masked rows give 0 / -Inf', () => {
    // q = 2 queries, k = 4 keys: query 0 sees keys 0..2, query 1 sees keys 0..3
    const x = tensor('f32', [2, 4], [0, 0, 0, 0, 0, 0, 0, 0]);
    const y = empty('f32', [2, 4]);
    exec({ op: 'softmax', log: false, causal: true, masked: false }, [x], [y]);
    expectClose('causal softmax', data(y), [1 / 3, 1 / 3, 1 / 3, 0, 0.25, 0.25, 0.25, 0.25], 1e-7);
    // key mask hides key 0 for query 0, and everything for query 1
    const mask = tensor('u8', [2, 4], [0, 1, 1, 1, 0, 0, 0, 0]);
    exec({ op: 'softmax', log: false, causal: true, masked: true }, [x, mask], [y]);
    expectClose('causal+mask softmax', data(y), [0, 0.5, 0.5, 0, 0, 0, 0, 0], 1e-7);
    exec({ op: 'softmax', log: true, causal: true, masked: true }, [x, mask], [y]);
    expect(data(y)).toEqual([-Infinity, -Math.log(2), -Math.log(2), -Infinity, -Infinity, -Infinity, -Infinity, -Infinity].map(Math.fround));
  });
});

describe('norms', () => {
  it('layernorm gives mean 0 and population variance 1 (eps 0), then weight and bias', () => {
    const d = 8;
    const xs = rand(3 * d, 7).map((v) => 5 * v + 2);
    const y = empty('f32', [3, d]);
    exec({ op: 'layernorm', eps: 0, hasWeight: false, hasBias: false }, [tensor('f32', [3, d], xs)], [y]);
    const out = data(y);
    let worst = 0;
    for (let r = 0; r < 3; r++) {
      const row = out.slice(r * d, (r + 1) * d);
      const mean = row.reduce((a, b) => a + b) / d;
      const variance = row.reduce((a, b) => a + (b - mean) ** 2, 0) / d;
      worst = Math.max(worst, Math.abs(mean), Math.abs(variance - 1));
    }
    console.log(`layernorm mean/var: max error ${worst.toExponential(2)}`);
    expect(worst).toBeLessThan(1e-6);
    // [1, 3] -> mean 2, var 1, eps 3 -> (x - 2) / 2; then * w + b with only a bias present
    const y2 = empty('f32', [2]);
    exec({ op: 'layernorm', eps: 3, hasWeight: false, hasBias: true }, [tensor('f32', [2], [1, 3]), tensor('f32', [2], [10, 20])], [y2]);
    expect(data(y2)).toEqual([9.5, 20.5]);
    exec({ op: 'layernorm', eps: 3, hasWeight: true, hasBias: true },
      [tensor('f32', [2], [1, 3]), tensor('f32', [2], [2, 4]), tensor('f32', [2], [10, 20])], [y2]);
    expect(data(y2)).toEqual([9, 22]);
  });

  it('rmsnorm: x / sqrt(mean(x^2) + eps) * (offset + w)', () => {
    const x = tensor('f32', [2], [3, 4]); // mean square 12.5, + eps 3.5 = 16 -> rms 4
    const y = empty('f32', [2]);
    exec({ op: 'rmsnorm', eps: 3.5, offset: 0, hasWeight: false }, [x], [y]);
    expect(data(y)).toEqual([0.75, 1]);
    exec({ op: 'rmsnorm', eps: 3.5, offset: 1, hasWeight: true }, [x, tensor('f32', [2], [1, -1])], [y]);
    expect(data(y)).toEqual([1.5, 0]);
  });
});

describe('rope', () => {
  const [B, T, H, D] = [1, 3, 2, 6];
  const xs = rand(B * T * H * D, 11);
  const positions = [0, 1, 5];
  const invFreq = [1, 0.25];
  function run(mode: 'half' | 'interleaved', x: number[], rotaryDim: number, freq = invFreq): number[] {
    const y = empty('f32', [B, T, H, D]);
    exec({ op: 'rope', mode, rotaryDim },
      [tensor('f32', [B, T, H, D], x), tensor('i32', [B, T], positions), tensor('f32', [rotaryDim / 2], freq)], [y]);
    return data(y);
  }

  it('rotaryDim < d: explicit 2x2 rotations on the first channels, tail unchanged', () => {
    for (const mode of ['half', 'interleaved'] as const) {
      const got = run(mode, xs, 4);
      const want = xs.map(Math.fround);
      for (let t = 0; t < T; t++) {
        for (let h = 0; h < H; h++) {
          const s = (t * H + h) * D;
          for (let i = 0; i < 2; i++) {
            const angle = positions[t]! * invFreq[i]!;
            const [p, q] = mode === 'half' ? [s + i, s + i + 2] : [s + 2 * i, s + 2 * i + 1];
            const [a, b] = [want[p]!, want[q]!];
            want[p] = Math.cos(angle) * a - Math.sin(angle) * b;
            want[q] = Math.sin(angle) * a + Math.cos(angle) * b;
          }
        }
      }
      expectClose(`rope ${mode}`, got, want, 1e-6);
      for (let i = 0; i < xs.length; i++) if (i % D >= 4) expect(got[i]).toBe(Math.fround(xs[i]!));
    }
  });

  it('half and interleaved are the same rotation under a channel permutation', () => {
    // interleaved channel 2i <-> half channel i, 2i+1 <-> i + r/2 (within the rotary part)
    const r = 6;
    const perm = [0, 3, 1, 4, 2, 5]; // interleaved position -> half position
    const permute = (x: number[]) => x.map((_, i) => x[i - (i % D) + perm[i % D]!]!);
    const freq = [1, 0.5, 0.125];
    const viaHalf = permute(run('half', xs, r, freq));
    const viaInterleaved = run('interleaved', permute(xs), r, freq);
    expectClose('rope half vs interleaved', viaInterleaved, viaHalf, 1e-6);
    expect(maxErr(run('half', xs, r, freq), run('interleaved', xs, r, freq))).toBeGreaterThan(1e-3);
  });
});

describe('gather and scatterAdd', () => {
  it('gather picks rows and rejects out-of-range ids', () => {
    const table = tensor('f32', [3, 2], [0, 1, 10, 11, 20, 21]);
    const y = empty('f32', [2, 2, 2]);
    exec({ op: 'gather' }, [table, tensor('i32', [2, 2], [2, 0, 1, 2])], [y]);
    expect(data(y)).toEqual([20, 21, 0, 1, 10, 11, 20, 21]);
    expect(() => exec({ op: 'gather' }, [table, tensor('i32', [1], [3])], [empty('f32', [1, 2])]))
      .toThrow(/'gather'.*id 3.*3 rows/);
  });

  it('scatterAdd accumulates duplicate ids and rejects negative ones', () => {
    const target = tensor('f32', [3, 2], [1, 1, 1, 1, 1, 1]);
    const y = empty('f32', [3, 2]);
    exec({ op: 'scatterAdd' }, [target, tensor('i32', [3], [2, 0, 2]), tensor('f32', [3, 2], [1, 2, 3, 4, 5, 6])], [y]);
    expect(data(y)).toEqual([4, 5, 1, 1, 7, 9]);
    expect(() => exec({ op: 'scatterAdd' }, [target, tensor('i32', [1], [-1]), tensor('f32', [1, 2], [0, 0])], [y]))
      .toThrow(/'scatterAdd'.*id -1/);
  });
});

describe('attention', () => {
  it('equals softmax(q k^T * scale) v by hand, with grouped-query heads, causal offset and key mask', () => {
    const [B, HQ, HKV, TQ, TK, D, DV] = [2, 4, 2, 2, 3, 3, 2];
    const q = rand(B * HQ * TQ * D, 21), k = rand(B * HKV * TK * D, 22), v = rand(B * HKV * TK * DV, 23);
    const keyMask = [1, 1, 1, 0, 1, 1]; // batch 1 hides key 0
    const scale = 0.7;
    const wantY: number[] = [], wantP: number[] = [];
    for (let b = 0; b < B; b++) {
      for (let h = 0; h < HQ; h++) {
        const g = Math.floor(h / (HQ / HKV));
        for (let i = 0; i < TQ; i++) {
          const scores = Array.from({ length: TK }, (_, j) => {
            let s = 0;
            for (let c = 0; c < D; c++) s += Math.fround(q[((b * HQ + h) * TQ + i) * D + c]!) * Math.fround(k[((b * HKV + g) * TK + j) * D + c]!);
            return s * scale;
          });
          const visible = scores.map((_, j) => j <= i + (TK - TQ) && keyMask[b * TK + j] === 1);
          const e = scores.map((s, j) => (visible[j] ? Math.exp(s) : 0));
          const sum = e.reduce((x, y) => x + y);
          const p = e.map((x) => x / sum);
          wantP.push(...p);
          for (let c = 0; c < DV; c++) {
            wantY.push(p.reduce((acc, pj, j) => acc + pj * Math.fround(v[((b * HKV + g) * TK + j) * DV + c]!), 0));
          }
        }
      }
    }
    const y = empty('f32', [B, HQ, TQ, DV]);
    const probs = empty('f32', [B, HQ, TQ, TK]);
    exec({ op: 'attention', scale, causal: true, masked: true, returnProbs: true },
      [tensor('f32', [B, HQ, TQ, D], q), tensor('f32', [B, HKV, TK, D], k), tensor('f32', [B, HKV, TK, DV], v), tensor('u8', [B, TK], keyMask)],
      [y, probs]);
    expectClose('attention y', data(y), wantY, 1e-6);
    expectClose('attention probs', data(probs), wantP, 1e-6);
    expect(data(probs)[2]).toBe(0); // batch 0, head 0, query 0 cannot see key 2 (offset 1)
  });

  it('fully masked rows give zeros', () => {
    const y = empty('f32', [1, 1, 1, 2]);
    exec({ op: 'attention', scale: 1, causal: false, masked: true, returnProbs: false },
      [tensor('f32', [1, 1, 1, 1], [1]), tensor('f32', [1, 1, 2, 1], [1, 2]), tensor('f32', [1, 1, 2, 2], [5, 6, 7, 8]), tensor('u8', [1, 2], [0, 0])],
      [y]);
    expect(data(y)).toEqual([0, 0]);
  });
});

describe('dequantize', () => {
  it('q8_0: f16 scale then 32 int8', () => {
    const raw = new Array<number>(34).fill(0);
    raw[0] = 0x00; raw[1] = 0x38; // f16 0x3800 = 0.5
    const qs = Array.from({ length: 32 }, (_, j) => j * 8 - 128); // -128 .. 120
    qs.forEach((q, j) => { raw[2 + j] = q & 0xff; });
    const y = empty('f32', [32]);
    exec({ op: 'dequantize', type: 'q8_0' }, [tensor('u8', [34], raw)], [y]);
    expect(data(y)).toEqual(qs.map((q) => q * 0.5));
  });

  it('q4_0: low nibbles are elements 0..15, high nibbles 16..31, value d * (nibble - 8)', () => {
    const raw = new Array<number>(36).fill(0);
    for (let blk = 0; blk < 2; blk++) {
      raw[blk * 18] = 0x00; raw[blk * 18 + 1] = blk === 0 ? 0x40 : 0xc0; // f16 +2 / -2
      for (let j = 0; j < 16; j++) raw[blk * 18 + 2 + j] = (j & 0xf) | ((15 - j) << 4);
    }
    const y = empty('f32', [64]);
    exec({ op: 'dequantize', type: 'q4_0' }, [tensor('u8', [36], raw)], [y]);
    const want: number[] = [];
    for (const d of [2, -2]) {
      for (let j = 0; j < 16; j++) want.push(d * (j - 8));
      for (let j = 0; j < 16; j++) want.push(d * (15 - j - 8));
    }
    expect(data(y)).toEqual(want);
  });
});

describe('JsBackend buffers', () => {
  it('zero-fills, copies on read, counts live bytes, refuses freed buffers', async () => {
    const b2 = createJsBackend();
    const buf = b2.alloc(8);
    expect(b2.memoryInUse()).toBe(8);
    expect(Array.from(b2.readSync(buf, 0, 8))).toEqual([0, 0, 0, 0, 0, 0, 0, 0]);
    b2.write(buf, 2, new Uint8Array([7, 9]));
    const r = await b2.read(buf, 2, 2);
    expect(Array.from(r)).toEqual([7, 9]);
    r[0] = 100;
    expect(b2.readSync(buf, 2, 1)[0]).toBe(7);
    b2.exec({ op: 'fill', value: 3 }, [], [{ buffer: buf, dtype: 'u8', shape: [2], strides: [1], offset: 6 }]);
    expect(Array.from(b2.readSync(buf, 0, 8))).toEqual([0, 0, 7, 9, 0, 0, 3, 3]);
    expect(b2.supportsOp({ op: 'attention', scale: 1, causal: false, masked: false, returnProbs: false }, [], [])).toBe(true);
    b2.free(buf);
    expect(b2.memoryInUse()).toBe(0);
    expect(() => b2.readSync(buf, 0, 1)).toThrow(/freed/);
    expect(() => b2.write(buf, 0, new Uint8Array(1))).toThrow(/freed/);
  });
});
