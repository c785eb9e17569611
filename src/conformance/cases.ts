// The conformance matrix, in the spirit of ggml's test-backend-ops: one case per op, crossed
// with shapes (odd sizes, size 0 and 1, broadcasting, non-contiguous views) and dtypes. Each
// variant is run on the reference backend and on the backend under test and compared under the
// op's error budget (NMSE). Adding an op to the engine means adding its case here.
import type { OpName, QuantType, UnaryFn } from '../tensor/backend.js';
import { QUANT_BLOCK, QUANT_TYPES, QuantizedTensor, quantRowBytes } from '../tensor/quantized.js';
import type { DType } from '../tensor/dtype.js';
import type { Tensor } from '../tensor/tensor.js';
import * as ops from '../ops/index.js';
import { noGrad } from '../autograd/tape.js';

/** How an input is filled and laid out. */
export interface InputSpec {
  shape: number[];
  dtype: DType;
  /** normal(0,1) by default; 'uniform' in [lo, hi); 'ids' integers in [0, hi); 'mask' u8 0/1 with a few zeros; 'bytes' random u8. */
  fill?: 'normal' | 'uniform' | 'ids' | 'mask' | 'bytes' | 'positions' | QuantType;
  lo?: number;
  hi?: number;
  /** Make the input non-contiguous: stored with the last two dims swapped ('T'), or as a slice of a wider tensor ('slice'). */
  layout?: 'T' | 'slice';
  /** Sprinkle NaN / Inf into the data (tests propagation). */
  special?: boolean;
  /** Quantized fills of actlab's formats: values per row (their blocks end each row in a tail). */
  cols?: number;
}

export interface Variant {
  op: OpName;
  label: string;
  inputs: InputSpec[];
  /** Maximum normalised mean squared error per output; 0 means exact. */
  budget: number;
  run(xs: Tensor[]): Tensor[];
  /**
   * false: grad mode skips finite differences (the gradient is still compared with the
   * reference's): an input element feeds many outputs through a kink (relu after a sum), so a
   * step of the size finite differences need crosses it on some outputs and not others.
   */
  finiteDifferences?: false;
}

const FLOATS: DType[] = ['f32', 'f16', 'bf16'];
const budgetFor = (d: DType, f32 = 1e-9) => (d === 'f32' ? f32 : d === 'f16' ? 1e-5 : 1e-4);
const f = (shape: number[], dtype: DType = 'f32', extra: Partial<InputSpec> = {}): InputSpec => ({ shape, dtype, ...extra });

function* unaryVariants(): Generator<Variant> {
  const fns = ['neg', 'exp', 'log', 'sqrt', 'rsqrt', 'tanh', 'abs', 'sign', 'relu', 'sigmoid', 'silu', 'gelu_tanh', 'gelu_erf', 'square', 'recip', 'sin', 'cos'] as const;
  for (const fn of fns) {
    const positive = fn === 'log' || fn === 'sqrt' || fn === 'rsqrt';
    for (const dtype of FLOATS) {
      for (const [shape, layout] of [[[7, 33], undefined], [[0, 5], undefined], [[1], undefined], [[5, 9], 'T'], [[1000], undefined]] as const) {
        const spec = f([...shape], dtype, { layout, ...(positive ? { fill: 'uniform', lo: 0.01, hi: 4 } : {}) });
        yield { op: 'unary', label: `${fn} ${dtype} [${shape}]${layout ? ' ' + layout : ''}`, inputs: [spec], budget: budgetFor(dtype, 1e-10), run: ([x]) => [ops.unary(fn, x!)] };
      }
    }
    yield { op: 'unary', label: `${fn} f32 NaN/Inf`, inputs: [f([64], 'f32', { special: true })], budget: 1e-10, run: ([x]) => [ops.unary(fn, x!)] };
  }
  yield { op: 'unary', label: 'neg i32', inputs: [f([17], 'i32', { fill: 'ids', hi: 100 })], budget: 0, run: ([x]) => [ops.neg(x!)] };
}

function* geluBackwardVariants(): Generator<Variant> {
  for (const fn of ['gelu_tanh', 'gelu_erf'] as const) {
    for (const dtype of FLOATS) {
      for (const [shape, layout] of [[[7, 33], undefined], [[0, 5], undefined], [[5, 9], 'T'], [[1000], undefined]] as const) {
        const x = f([...shape], dtype, { layout, fill: 'uniform', lo: -6, hi: 6 });
        yield { op: 'geluBackward', label: `geluBackward ${fn} ${dtype} [${shape}]${layout ? ' ' + layout : ''}`, inputs: [x, f([...shape], dtype)], budget: budgetFor(dtype, 1e-10), run: ([a, dy]) => [ops.geluBackward(fn, a!, dy!)] };
      }
    }
    yield { op: 'geluBackward', label: `geluBackward ${fn} f32 NaN/Inf`, inputs: [f([64], 'f32', { special: true }), f([64], 'f32')], budget: 1e-10, run: ([a, dy]) => [ops.geluBackward(fn, a!, dy!)] };
  }
}

function* layernormBackwardVariants(): Generator<Variant> {
  // Rows shorter and longer than a workgroup, row counts that leave a workgroup part empty.
  const run = (eps: number) => ([x, w, dy]: Tensor[]) => { const r = ops.layerNormBackward(x!, dy!, { weight: w, eps }); return [r.dx, r.dyXhat!]; };
  for (const dtype of FLOATS) {
    for (const [rows, d] of [[5, 1], [9, 7], [33, 64], [3, 255], [2, 256], [7, 384], [3, 1000]] as const) {
      yield { op: 'layernormBackward', label: `layerNormBackward ${dtype} [${rows},${d}] w`, inputs: [f([rows, d], dtype), f([d], dtype), f([rows, d], dtype)], budget: budgetFor(dtype), run: run(1e-5) };
    }
    yield {
      op: 'layernormBackward', label: `layerNormBackward ${dtype} [2,3,40] no weight, T`, inputs: [f([2, 3, 40], dtype, { layout: 'T' }), f([2, 3, 40], dtype)], budget: budgetFor(dtype),
      run: ([x, dy]) => [ops.layerNormBackward(x!, dy!).dx],
    };
  }
  yield { op: 'layernormBackward', label: 'layerNormBackward f32 [0,5] w', inputs: [f([0, 5]), f([5]), f([0, 5])], budget: 0, run: run(1e-5) };
  yield { op: 'layernormBackward', label: 'layerNormBackward f32 eps 0.1 w', inputs: [f([4, 24], 'f32', { fill: 'uniform', lo: -0.2, hi: 0.2 }), f([24]), f([4, 24])], budget: 1e-9, run: run(0.1) };
  yield { op: 'layernormBackward', label: 'layerNormBackward f32 NaN/Inf in x', inputs: [f([8, 64], 'f32', { special: true }), f([64]), f([8, 64])], budget: 1e-9, run: run(1e-5) };
  yield { op: 'layernormBackward', label: 'layerNormBackward f32 NaN/Inf in dy', inputs: [f([8, 64]), f([64]), f([8, 64], 'f32', { special: true })], budget: 1e-9, run: run(1e-5) };
}

function* binaryVariants(): Generator<Variant> {
  const fns = ['add', 'sub', 'mul', 'div', 'pow', 'maximum', 'minimum', 'eq', 'ne', 'lt', 'le', 'gt', 'ge'] as const;
  const shapes: [number[], number[], string][] = [
    [[7, 33], [7, 33], 'same'], [[4, 1, 5], [3, 1], 'bcast'], [[2, 3, 4], [], 'scalar'], [[0, 3], [3], 'empty'], [[1], [1], 'one'], [[6, 9], [6, 9], 'T'],
  ];
  for (const fn of fns) {
    const cmp = ['eq', 'ne', 'lt', 'le', 'gt', 'ge'].includes(fn);
    for (const dtype of FLOATS) {
      for (const [sa, sb, tag] of shapes) {
        const a = f(sa, dtype, { layout: tag === 'T' ? 'T' : undefined, ...(fn === 'pow' ? { fill: 'uniform', lo: 0.1, hi: 3 } : {}) });
        const b = f(sb, dtype, { layout: tag === 'T' ? 'slice' : undefined, ...(fn === 'pow' ? { fill: 'uniform', lo: -2, hi: 2 } : {}) });
        yield { op: 'binary', label: `${fn} ${dtype} [${sa}]·[${sb}] ${tag}`, inputs: [a, b], budget: cmp ? 0 : budgetFor(dtype), run: ([x, y]) => [ops.binary(fn, x!, y!)] };
      }
    }
    if (fn !== 'pow') {
      yield { op: 'binary', label: `${fn} i32`, inputs: [f([5, 7], 'i32', { fill: 'ids', lo: -50, hi: 50 }), f([7], 'i32', { fill: 'ids', lo: 1, hi: 9 })], budget: 0, run: ([x, y]) => [ops.binary(fn, x!, y!)] };
    }
    yield { op: 'binary', label: `${fn} f32 NaN/Inf`, inputs: [f([64], 'f32', { special: true }), f([64], 'f32', { special: true })], budget: cmp ? 0 : 1e-9, run: ([x, y]) => [ops.binary(fn, x!, y!)] };
  }
}

function* whereVariants(): Generator<Variant> {
  for (const dtype of [...FLOATS, 'i32'] as DType[]) {
    yield { op: 'where', label: `where ${dtype} bcast`, inputs: [f([4, 1, 6], 'u8', { fill: 'mask' }), f([3, 6], dtype, { fill: dtype === 'i32' ? 'ids' : 'normal', hi: 9 }), f([4, 3, 1], dtype, { fill: dtype === 'i32' ? 'ids' : 'normal', hi: 9 })], budget: 0, run: ([c, a, b]) => [ops.where(c!, a!, b!)] };
  }
}

function* copyVariants(): Generator<Variant> {
  const all: DType[] = ['f32', 'f16', 'bf16', 'i32', 'i8', 'u8', 'i4', 'u4'];
  for (const from of all) {
    for (const to of all) {
      const fill = from === 'f32' || from === 'f16' || from === 'bf16' ? 'uniform' : 'ids';
      const [lo, hi] = from === 'u8' || from === 'u4' ? [0, 16] : [-9, 9];
      yield { op: 'copy', label: `cast ${from}->${to}`, inputs: [f([3, 37], from, { fill, lo: fill === 'uniform' ? -300 : lo, hi: fill === 'uniform' ? 300 : hi })], budget: 0, run: ([x]) => [x!.cast(to)] };
    }
  }
  for (const dtype of ['f32', 'f16', 'i32', 'u8'] as DType[]) {
    yield { op: 'copy', label: `contiguous ${dtype} transposed`, inputs: [f([9, 13], dtype, { layout: 'T', fill: 'ids', hi: 100 })], budget: 0, run: ([x]) => [x!.contiguous()] };
    yield { op: 'copy', label: `contiguous ${dtype} sliced`, inputs: [f([5, 11], dtype, { layout: 'slice', fill: 'ids', hi: 100 })], budget: 0, run: ([x]) => [x!.contiguous()] };
  }
  // 32-bit copies four at a time where the last dim allows (a head transpose, a slice at 4k, a broadcast); not at an offset of 2
  for (const dtype of ['f32', 'i32'] as DType[]) {
    yield { op: 'copy', label: `contiguous ${dtype} heads [2,3,8,12] -> [2,8,3,12]`, inputs: [f([2, 3, 8, 12], dtype, { fill: 'ids', hi: 100 })], budget: 0, run: ([x]) => [x!.permute([0, 2, 1, 3]).contiguous()] };
  }
  yield { op: 'copy', label: 'contiguous f32 [6,16] columns 4..12', inputs: [f([6, 16])], budget: 0, run: ([x]) => [x!.slice([0, 4], [6, 12]).contiguous()] };
  yield { op: 'copy', label: 'contiguous f32 [6,16] columns 2..10', inputs: [f([6, 16])], budget: 0, run: ([x]) => [x!.slice([0, 2], [6, 10]).contiguous()] };
  yield { op: 'copy', label: 'broadcast copy f32 [1,3,8] -> [5,3,8]', inputs: [f([1, 3, 8])], budget: 0, run: ([x]) => [x!.broadcastTo([5, 3, 8]).contiguous()] };
  yield { op: 'copy', label: 'concat f32 axis 1', inputs: [f([3, 4]), f([3, 0]), f([3, 7], 'f32', { layout: 'slice' })], budget: 0, run: (xs) => [ops.concat(xs, 1)] };
  yield { op: 'copy', label: 'pad f16', inputs: [f([3, 5], 'f16')], budget: 0, run: ([x]) => [ops.pad(x!, [[1, 2], [0, 3]], -1.5)] };
  yield { op: 'copy', label: 'split+contiguous f32', inputs: [f([10, 6])], budget: 0, run: ([x]) => ops.split(x!, [3, 0, 7], 0).map((p) => p.contiguous()) };
  yield { op: 'copy', label: 'broadcast copy f32', inputs: [f([1, 6])], budget: 0, run: ([x]) => [x!.broadcastTo([4, 6]).contiguous()] };
}

function* fillVariants(): Generator<Variant> {
  for (const dtype of ['f32', 'f16', 'bf16', 'i32', 'i8', 'u8', 'i4', 'u4'] as DType[]) {
    yield { op: 'fill', label: `fill ${dtype}`, inputs: [f([1], 'f32')], budget: 0, run: ([x]) => [ops.full([5, 3], 3, dtype, { backend: x!.backend })] };
  }
}

function* randomVariants(): Generator<Variant> {
  // Exact: every backend computes the same integer hash; a strided view numbers its elements row-major.
  yield { op: 'random', label: 'random f32 [7, 300]', inputs: [f([1], 'f32')], budget: 0, run: ([x]) => [ops.randomUniform([7, 300], 12345, { backend: x!.backend })] };
  yield { op: 'random', label: 'random f32 [3, 5, 4] seed 2^32-1', inputs: [f([1], 'f32')], budget: 0, run: ([x]) => [ops.randomUniform([3, 5, 4], 0xffffffff, { backend: x!.backend })] };
}

function* dropoutVariants(): Generator<Variant> {
  // Exact: the `random` op's numbers compared with p, one product (the fused op where a backend runs it, else composed).
  for (const dtype of FLOATS) {
    for (const [shape, layout] of [[[9, 33], undefined], [[0, 5], undefined], [[5, 9], 'T'], [[3, 7, 300], undefined]] as const) {
      yield { op: 'dropout', label: `dropout p=0.3 ${dtype} [${shape}]${layout ? ' ' + layout : ''}`, inputs: [f([...shape], dtype, { layout })], budget: 0, run: ([x]) => [ops.dropout(x!, 0.3, 7)] };
    }
  }
  yield { op: 'dropout', label: 'dropout p=0.9 f32 [64, 17] seed 2^32-1', inputs: [f([64, 17])], budget: 0, run: ([x]) => [ops.dropout(x!, 0.9, 0xffffffff)] };
  yield { op: 'dropout', label: 'dropout p=0.2 f32 NaN/Inf', inputs: [f([64], 'f32', { special: true })], budget: 0, run: ([x]) => [ops.dropout(x!, 0.2, 11)] };
}

function* adamwVariants(): Generator<Variant> {
  const step = (p: Tensor, g: Tensor, m: Tensor, v: Tensor, t: number, gradScale: number) =>
    ops.adamwStep(p, g, m, v, { lr: 1e-3, beta1: 0.9, beta2: 0.99, eps: 1e-8, weightDecay: 0.1, step: t, gradScale });
  yield { op: 'adamw', label: 'adamw f32 [37, 65] step 1', inputs: [f([37, 65]), f([37, 65]), f([37, 65]), f([37, 65], 'f32', { lo: 0, hi: 1 })], budget: 1e-10, run: ([p, g, m, v]) => step(p!, g!, m!, v!, 1, 1) };
  yield { op: 'adamw', label: 'adamw f32 [300] step 7 clipped', inputs: [f([300]), f([300]), f([300]), f([300], 'f32', { lo: 0, hi: 1 })], budget: 1e-10, run: ([p, g, m, v]) => step(p!, g!, m!, v!, 7, 0.25) };
}

function* reduceVariants(): Generator<Variant> {
  for (const fn of ['sum', 'mean', 'max', 'min', 'argmax', 'argmin'] as const) {
    for (const dtype of [...FLOATS, 'i32'] as DType[]) {
      if (dtype === 'i32' && fn === 'mean') continue;
      for (const [shape, axis, layout] of [[[7, 33], 1, undefined], [[7, 33], 0, undefined], [[3, 5, 4], 1, 'T'], [[1, 1], -1, undefined], [[2, 1000], 1, undefined]] as const) {
        yield {
          op: 'reduce', label: `${fn} ${dtype} [${shape}] axis ${axis}${layout ? ' ' + layout : ''}`,
          inputs: [f([...shape], dtype, { layout, fill: dtype === 'i32' ? 'ids' : 'normal', hi: 1000 })],
          budget: fn.startsWith('arg') || fn === 'max' || fn === 'min' ? 0 : budgetFor(dtype), run: ([x]) => [ops.reduce(fn, x!, axis)],
        };
      }
    }
    if (fn === 'sum' || fn === 'mean') {
      yield { op: 'reduce', label: `${fn} f32 empty axis`, inputs: [f([3, 0])], budget: 0, run: ([x]) => [ops.reduce(fn, x!, 1)] };
    }
  }
  for (const dtype of ['f32', 'i32'] as DType[]) {
    yield { op: 'cumsum', label: `cumsum ${dtype}`, inputs: [f([5, 37], dtype, { fill: dtype === 'i32' ? 'ids' : 'normal', hi: 50 })], budget: budgetFor(dtype), run: ([x]) => [ops.cumsum(x!, 1), ops.cumsum(x!, 0)] };
  }
  for (const [shape, k] of [[[4, 50], 5], [[3, 7], 7], [[2, 1], 1], [[5, 9], 0]] as const) {
    yield { op: 'topk', label: `topk f32 [${shape}] k=${k}`, inputs: [f([...shape])], budget: 0, run: ([x]) => { const r = ops.topk(x!, k); return [r.values, r.indices]; } };
  }
}

function* matmulVariants(): Generator<Variant> {
  const shapes: [number, number, number][] = [[1, 1, 1], [3, 5, 7], [17, 33, 65], [1, 64, 130], [64, 1, 8], [5, 0, 4], [0, 4, 3], [129, 67, 33], [32, 256, 48]];
  for (const dtype of FLOATS) {
    for (const [M, K, N] of shapes) {
      for (const [ta, tb] of [[false, false], [false, true], [true, false], [true, true]] as const) {
        if (dtype !== 'f32' && (ta || M > 64)) continue;
        yield {
          op: 'matmul', label: `matmul ${dtype} ${M}x${K}x${N}${ta ? ' Aᵀ' : ''}${tb ? ' Bᵀ' : ''}`,
          inputs: [f(ta ? [K, M] : [M, K], dtype), f(tb ? [N, K] : [K, N], dtype)],
          budget: budgetFor(dtype, 1e-9), run: ([a, b]) => [ops.matmul(a!, b!, { transA: ta, transB: tb })],
        };
      }
    }
  }
  // f16 products the tensor-core kernel takes (K, N multiples of 8, M > 8), B n-fast and B k-fast
  // (a torch.nn.Linear weight), with partial tiles in M, N and K
  for (const tb of [false, true]) {
    const [M, K, N] = [72, 264, 136];
    yield {
      op: 'matmul', label: `matmul f16 ${M}x${K}x${N}${tb ? ' Bᵀ' : ''} (tensor-core shape)`,
      inputs: [f([M, K], 'f16'), f(tb ? [N, K] : [K, N], 'f16')],
      budget: budgetFor('f16', 1e-9), run: ([a, b]) => [ops.matmul(a!, b!, { transB: tb })],
    };
  }
  // few-row products (the GEMV kernels): threaded split over K (K >= 2, with an empty last range
  // at K = 3), split over columns (K = 1; partials larger than the scratch), rows of A 1..4
  const gemv: [number, number, number][] = [[1, 300, 129], [2, 3, 6000], [3, 37, 300], [4, 257, 33], [1, 1, 40000], [1, 2, 140000], [4, 1027, 19]];
  for (const [M, K, N] of gemv) {
    for (const [ta, tb] of [[false, false], [false, true], [true, false]] as const) {
      yield {
        op: 'matmul', label: `matmul f32 ${M}x${K}x${N}${ta ? ' Aᵀ' : ''}${tb ? ' Bᵀ' : ''} (few rows)`,
        inputs: [f(ta ? [K, M] : [M, K]), f(tb ? [N, K] : [K, N])],
        budget: 1e-9, run: ([a, b]) => [ops.matmul(a!, b!, { transA: ta, transB: tb })],
      };
    }
  }
  // linear layers, product + bias + activation as one op: GEMVs (split or not, both weight
  // layouts), vec4 tiles, scalar tiles, a product split along K
  const lin: [number, number, number, boolean, UnaryFn | null][] = [
    [1, 64, 96, false, 'gelu_tanh'], [1, 768, 2304, false, null], [3, 200, 50, true, 'silu'], [2, 300, 129, true, null],
    [70, 64, 72, false, 'gelu_tanh'], [33, 30, 17, false, 'relu'], [128, 2048, 64, false, 'gelu_tanh'], [64, 32, 40, true, null],
  ];
  for (const [M, K, N, tb, act] of lin) {
    yield {
      op: 'linear', label: `linear f32 ${M}x${K}x${N}${tb ? ' Wᵀ' : ''} ${act ?? 'no activation'}`,
      inputs: [f([M, K]), f(tb ? [N, K] : [K, N]), f([N])], budget: 1e-9,
      run: ([x, w, b]) => [ops.fusedLinear(x!, w!, b!, { transB: tb, act: act ?? undefined, force: true })],
      ...(act === 'relu' ? { finiteDifferences: false as const } : {}),
    };
  }
  // few-row products in a batch (whole entries per thread, or columns of each entry)
  yield { op: 'matmul', label: 'matmul f32 batched few rows [3,2,40]@[3,40,333]', inputs: [f([3, 2, 40]), f([3, 40, 333])], budget: 1e-9, run: ([a, b]) => [ops.matmul(a!, b!)] };
  yield { op: 'matmul', label: 'matmul f32 batched few rows [9,1,64]@[9,70,64]ᵀ', inputs: [f([9, 1, 64]), f([9, 70, 64])], budget: 1e-9, run: ([a, b]) => [ops.matmul(a!, b!, { transB: true })] };
  yield { op: 'matmul', label: 'matmul f32 batched bcast [2,3,5,7]@[3,7,4]', inputs: [f([2, 3, 5, 7]), f([3, 7, 4])], budget: 1e-9, run: ([a, b]) => [ops.matmul(a!, b!)] };
  yield { op: 'matmul', label: 'matmul f32 transposed views', inputs: [f([9, 12], 'f32', { layout: 'T' }), f([9, 10], 'f32', { layout: 'T' })], budget: 1e-9, run: ([a, b]) => [ops.matmul(a!.transpose(), b!)] };
  yield { op: 'matmul', label: 'matmul f32 sliced operand', inputs: [f([6, 9], 'f32', { layout: 'slice' }), f([9, 5])], budget: 1e-9, run: ([a, b]) => [ops.matmul(a!, b!)] };
  yield { op: 'matmul', label: 'matmul f32 vector', inputs: [f([31]), f([31, 12])], budget: 1e-9, run: ([a, b]) => [ops.matmul(a!, b!)] };
  yield { op: 'matmul', label: 'matmul f32 NaN/Inf', inputs: [f([8, 8], 'f32', { special: true }), f([8, 8])], budget: 1e-9, run: ([a, b]) => [ops.matmul(a!, b!)] };
}

function* nnVariants(): Generator<Variant> {
  for (const dtype of FLOATS) {
    for (const log of [false, true]) {
      const sm = log ? ops.logSoftmax : ops.softmax;
      const name = log ? 'logSoftmax' : 'softmax';
      yield { op: 'softmax', label: `${name} ${dtype} [7,33]`, inputs: [f([7, 33], dtype)], budget: budgetFor(dtype), run: ([x]) => [sm(x!)] };
      yield { op: 'softmax', label: `${name} ${dtype} causal [2,3,5,9]`, inputs: [f([2, 3, 5, 9], dtype)], budget: budgetFor(dtype), run: ([x]) => [sm(x!, { causal: true })] };
      yield { op: 'softmax', label: `${name} ${dtype} padding mask`, inputs: [f([2, 3, 4, 6], dtype), f([2, 1, 1, 6], 'u8', { fill: 'mask' })], budget: budgetFor(dtype), run: ([x, m]) => [sm(x!, { mask: m!, causal: true })] };
      yield { op: 'softmax', label: `${name} ${dtype} axis 0, T`, inputs: [f([5, 6], dtype, { layout: 'T' })], budget: budgetFor(dtype), run: ([x]) => [sm(x!, { axis: 0 })] };
    }
  }
  yield { op: 'softmax', label: 'softmax f32 large row 5000', inputs: [f([2, 5000], 'f32', { fill: 'uniform', lo: -30, hi: 30 })], budget: 1e-9, run: ([x]) => [ops.softmax(x!)] };
  yield { op: 'softmax', label: 'softmax f32 NaN/Inf', inputs: [f([4, 16], 'f32', { special: true })], budget: 1e-9, run: ([x]) => [ops.softmax(x!)] };
  // row lengths around the register kernel's bounds (128..1024); masks broadcast over batch and
  // heads (read in place), one with four leading dims left and one transposed (copied dense)
  for (const k of [127, 128, 256, 512, 513, 1024, 1025]) {
    for (const log of [false, true]) {
      const sm = log ? ops.logSoftmax : ops.softmax;
      const name = log ? 'logSoftmax' : 'softmax';
      yield { op: 'softmax', label: `${name} f32 [3,5,${k}]`, inputs: [f([3, 5, k])], budget: 1e-9, run: ([x]) => [sm(x!)] };
      yield { op: 'softmax', label: `${name} f32 causal, mask [1,1,8,${k}] over [2,3,8,${k}]`, inputs: [f([2, 3, 8, k]), f([1, 1, 8, k], 'u8', { fill: 'mask' })], budget: 1e-9, run: ([x, m]) => [sm(x!, { mask: m!, causal: true })] };
    }
    yield { op: 'softmax', label: `softmax f32 padding mask [2,1,1,${k}]`, inputs: [f([2, 3, 4, k]), f([2, 1, 1, k], 'u8', { fill: 'mask' })], budget: 1e-9, run: ([x, m]) => [ops.softmax(x!, { mask: m! })] };
  }
  for (const sm of [ops.softmax, ops.logSoftmax]) {
    yield { op: 'softmax', label: `${sm === ops.softmax ? 'softmax' : 'logSoftmax'} f32 causal, more queries than keys [2,260,200] (hidden rows)`, inputs: [f([2, 260, 200])], budget: 1e-9, run: ([x]) => [sm(x!, { causal: true })] };
  }
  yield { op: 'softmax', label: 'softmax f32 attention pattern causal, mask [1,1,256,256]', inputs: [f([1, 2, 256, 256]), f([1, 1, 256, 256], 'u8', { fill: 'mask' })], budget: 1e-9, run: ([x, m]) => [ops.softmax(x!, { mask: m!, causal: true })] };
  yield { op: 'softmax', label: 'softmax f16 causal [2,3,8,256]', inputs: [f([2, 3, 8, 256], 'f16')], budget: budgetFor('f16'), run: ([x]) => [ops.softmax(x!, { causal: true })] };
  yield { op: 'softmax', label: 'softmax f32 mask [2,1,4,300] (three leading dims)', inputs: [f([2, 3, 4, 300]), f([2, 1, 4, 300], 'u8', { fill: 'mask' })], budget: 1e-9, run: ([x, m]) => [ops.softmax(x!, { mask: m! })] };
  yield { op: 'softmax', label: 'softmax f32 mask [2,1,2,1,200] (four leading dims)', inputs: [f([2, 3, 2, 3, 200]), f([2, 1, 2, 1, 200], 'u8', { fill: 'mask' })], budget: 1e-9, run: ([x, m]) => [ops.softmax(x!, { mask: m! })] };
  yield { op: 'softmax', label: 'softmax f32 transposed mask [1,1,8,300]', inputs: [f([2, 8, 300]), f([1, 8, 300], 'u8', { fill: 'mask', layout: 'T' })], budget: 1e-9, run: ([x, m]) => [ops.softmax(x!, { mask: m! })] };
  yield { op: 'softmax', label: 'softmax f32 NaN/Inf [4,300]', inputs: [f([4, 300], 'f32', { special: true })], budget: 1e-9, run: ([x]) => [ops.softmax(x!)] };
  for (const dtype of FLOATS) {
    // d=5000: more than 16 elements a lane (the subgroup kernel reads the row again at each pass)
    for (const d of [1, 7, 64, 768, 1000, 5000]) {
      yield { op: 'layernorm', label: `layerNorm ${dtype} d=${d} w+b`, inputs: [f([5, d], dtype), f([d], dtype), f([d], dtype)], budget: budgetFor(dtype), run: ([x, w, b]) => [ops.layerNorm(x!, w, b)] };
      yield { op: 'rmsnorm', label: `rmsNorm ${dtype} d=${d} w`, inputs: [f([5, d], dtype), f([d], dtype)], budget: budgetFor(dtype), run: ([x, w]) => [ops.rmsNorm(x!, w, { eps: 1e-5 })] };
    }
    // a residual add and the norm of its result as one op (outputs: the sum, then the norm)
    for (const d of [7, 768, 1000, 1024, 4096, 5000]) {
      yield {
        op: 'addNorm', label: `addNorm layer ${dtype} d=${d} w+b`, inputs: [f([3, d], dtype), f([3, d], dtype), f([d], dtype), f([d], dtype)], budget: budgetFor(dtype),
        run: ([a, b, w, bias]) => { const r = ops.addNorm(a!, b!, { kind: 'layer', weight: w, bias, force: true }); return [r.sum, r.y]; },
      };
    }
    yield {
      op: 'addNorm', label: `addNorm rms ${dtype} [2,3,40] 1+w`, inputs: [f([2, 3, 40], dtype), f([2, 3, 40], dtype), f([40], dtype)], budget: budgetFor(dtype),
      run: ([a, b, w]) => { const r = ops.addNorm(a!, b!, { kind: 'rms', weight: w, offset: 1, eps: 1e-5, force: true }); return [r.sum, r.y]; },
    };
    yield {
      op: 'addNorm', label: `addNorm layer ${dtype} no params, T`, inputs: [f([6, 9], dtype, { layout: 'T' }), f([6, 9], dtype)], budget: budgetFor(dtype),
      run: ([a, b]) => { const r = ops.addNorm(a!, b!, { kind: 'layer', force: true }); return [r.sum, r.y]; },
    };
    // short rows, 8 lanes each, 32 rows a workgroup: the last workgroup part full
    yield { op: 'layernorm', label: `layerNorm ${dtype} [70,33] w+b`, inputs: [f([70, 33], dtype), f([33], dtype), f([33], dtype)], budget: budgetFor(dtype), run: ([x, w, b]) => [ops.layerNorm(x!, w, b)] };
    yield {
      op: 'addNorm', label: `addNorm rms ${dtype} [70,200] w`, inputs: [f([70, 200], dtype), f([70, 200], dtype), f([200], dtype)], budget: budgetFor(dtype),
      run: ([a, b, w]) => { const r = ops.addNorm(a!, b!, { kind: 'rms', weight: w, eps: 1e-5, force: true }); return [r.sum, r.y]; },
    };
    yield { op: 'layernorm', label: `layerNorm ${dtype} no params, T`, inputs: [f([6, 9], dtype, { layout: 'T' })], budget: budgetFor(dtype), run: ([x]) => [ops.layerNorm(x!)] };
    yield { op: 'rmsnorm', label: `rmsNorm ${dtype} 1+w, no weight`, inputs: [f([3, 2, 40], dtype), f([40], dtype)], budget: budgetFor(dtype), run: ([x, w]) => [ops.rmsNorm(x!, w, { offset: 1 }), ops.rmsNorm(x!)] };
  }
  for (const dtype of FLOATS) {
    for (const mode of ['half', 'interleaved'] as const) {
      for (const [d, r] of [[16, 16], [32, 8], [6, 2]] as const) {
        yield {
          op: 'rope', label: `rope ${mode} ${dtype} d=${d} rot=${r}`,
          inputs: [f([2, 5, 3, d], dtype), f([2, 5], 'i32', { fill: 'positions' }), f([r / 2], 'f32', { fill: 'uniform', lo: 0.001, hi: 1 })],
          budget: budgetFor(dtype, 1e-9), run: ([x, p, inv]) => [ops.rope(x!, p!, inv!, { mode, rotaryDim: r })],
        };
      }
    }
  }
  for (const dtype of [...FLOATS, 'i32'] as DType[]) {
    yield { op: 'gather', label: `gather ${dtype}`, inputs: [f([11, 7], dtype, { fill: dtype === 'i32' ? 'ids' : 'normal', hi: 99 }), f([2, 9], 'i32', { fill: 'ids', hi: 11 })], budget: 0, run: ([t, i]) => [ops.gather(t!, i!)] };
  }
  yield { op: 'gather', label: 'gather f32 empty ids', inputs: [f([5, 3]), f([0], 'i32', { fill: 'ids', hi: 5 })], budget: 0, run: ([t, i]) => [ops.gather(t!, i!)] };
  for (const dtype of FLOATS) {
    yield { op: 'scatterAdd', label: `scatterAdd ${dtype} duplicates`, inputs: [f([6, 5], dtype), f([9], 'i32', { fill: 'ids', hi: 6 }), f([9, 5], dtype)], budget: budgetFor(dtype), run: ([t, i, s]) => [ops.scatterAdd(t!, i!, s!)] };
  }
  // many ids into few rows (embedding gradients: 16384 ids into 65 or 256 rows, here of 64 rather
  // than 384 columns to keep the gradient matrix quick): ids in chunks, partials added in a second pass
  const scatter: [string, number[], number, number, DType, 'slice'?][] = [
    ['tokens [65,64] <- 16384', [65, 64], 16384, 65, 'f32'],
    ['positions [256,64] <- 16384', [256, 64], 16384, 256, 'f32'],
    ['odd [33,70] <- 4099', [33, 70], 4099, 33, 'f32'],
    ['repeated ids [40,64] <- 3000 of 3 rows', [40, 64], 3000, 3, 'f32'],
    ['f16 [65,96] <- 2048', [65, 96], 2048, 65, 'f16'],
    ['bf16 [9,3,5] <- 1500', [9, 3, 5], 1500, 9, 'bf16'],
    ['sliced src [20,48] <- 777', [20, 48], 777, 20, 'f32', 'slice'],
  ];
  for (const [what, shape, m, hi, dtype, layout] of scatter) {
    const src = f([m, ...shape.slice(1)], dtype, { layout });
    yield { op: 'scatterAdd', label: `scatterAdd ${what}`, inputs: [f(shape, dtype), f([m], 'i32', { fill: 'ids', hi }), src], budget: budgetFor(dtype), run: ([t, i, s]) => [ops.scatterAdd(t!, i!, s!)] };
  }
  const attn: [string, number[], number[], boolean, boolean][] = [
    ['mha causal', [2, 4, 7, 16], [2, 4, 7, 16], true, false],
    ['gqa causal', [1, 8, 5, 8], [1, 2, 5, 8], true, false],
    ['decode (tq=1) with cache', [2, 4, 1, 16], [2, 2, 9, 16], true, true],
    ['cross, non-causal, masked', [2, 2, 3, 4], [2, 2, 6, 4], false, true],
    ['long 130 d=64', [1, 2, 130, 64], [1, 2, 130, 64], true, false],
    // few query rows: the fused row kernel (odd head size, threaded, more queries than keys)
    ['decode d=5 gqa', [2, 6, 1, 5], [2, 3, 11, 5], true, true],
    ['decode threaded', [1, 12, 1, 64], [1, 12, 200, 64], true, false],
    ['tq=4 > tk=2 causal', [1, 2, 4, 8], [1, 2, 2, 8], true, false],
    // causal query blocks: a block that sees no key, one that sees a few
    ['tq=40 > tk=5 causal', [1, 2, 40, 8], [1, 2, 5, 8], true, false],
  ];
  for (const dtype of FLOATS) {
    for (const [name, qs, ks, causal, masked] of attn) {
      if (dtype !== 'f32' && qs[2]! > 100) continue;
      const inputs = [f(qs, dtype), f(ks, dtype), f(ks, dtype)];
      if (masked) inputs.push(f([ks[0]!, ks[2]!], 'u8', { fill: 'mask' }));
      yield {
        op: 'attention', label: `attention ${dtype} ${name}`, inputs, budget: budgetFor(dtype, 1e-9),
        run: ([q, k, v, m]) => { const r = ops.attention(q!, k!, v!, { causal, keyMask: m, returnProbs: true }); return [r.out, r.probs!]; },
      };
    }
  }
  // q, k, v as [b, t, h, d] data permuted to [b, h, t, d] (strided heads and positions), no probs
  yield {
    op: 'attention', label: 'attention f32 decode, permuted views, no probs', inputs: [f([2, 1, 4, 8]), f([2, 9, 2, 8]), f([2, 9, 2, 8])], budget: 1e-9,
    run: ([q, k, v]) => [ops.attention(q!.transpose(1, 2), k!.transpose(1, 2), v!.transpose(1, 2), { causal: true }).out],
  };
  yield { op: 'attention', label: 'attention f32 no probs', inputs: [f([1, 4, 6, 8]), f([1, 1, 6, 8]), f([1, 1, 6, 8])], budget: 1e-9, run: ([q, k, v]) => [ops.attention(q!, k!, v!, { causal: true }).out] };
  // prefill without probabilities (the tiled kernels): several query blocks and key tiles, head
  // sizes 64, 80, 128 and odd, grouped-query heads, masks, tq != tk (rows that see no key give 0)
  const prefill: [string, number[], number[], number, boolean, boolean, DType[]][] = [
    ['mha causal t=200 d=64', [1, 3, 200, 64], [1, 3, 200, 64], 64, true, false, FLOATS],
    ['gqa causal masked d=80 tq=40 < tk=97', [2, 8, 40, 80], [2, 2, 97, 80], 80, true, true, ['f32']],
    ['non-causal masked d=5 dv=12 tq=50 > tk=19', [1, 2, 50, 5], [1, 2, 19, 5], 12, false, true, ['f32']],
    ['causal tq=45 > tk=20 d=16', [1, 2, 45, 16], [1, 2, 20, 16], 16, true, false, ['f32']],
    ['causal d=128 t=70', [1, 2, 70, 128], [1, 2, 70, 128], 128, true, false, ['f32']],
    ['causal t=9 d=3 gqa 3:1', [1, 3, 9, 3], [1, 1, 9, 3], 3, true, true, ['f32']],
    // keys long enough to be split in runs over workgroups (then merged)
    ['causal t=300 d=64, key runs', [1, 2, 300, 64], [1, 2, 300, 64], 64, true, false, FLOATS],
    ['gqa masked tq=40 < tk=300 d=32 dv=20, key runs', [1, 4, 40, 32], [1, 2, 300, 32], 20, false, true, ['f32']],
  ];
  for (const [name, qs, ks, dv, causal, masked, dtypes] of prefill) {
    for (const dtype of dtypes) {
      const inputs = [f(qs, dtype), f(ks, dtype), f([...ks.slice(0, 3), dv], dtype)];
      if (masked) inputs.push(f([ks[0]!, ks[2]!], 'u8', { fill: 'mask' }));
      yield {
        op: 'attention', label: `attention ${dtype} prefill ${name}, no probs`, inputs, budget: budgetFor(dtype, 1e-9),
        run: ([q, k, v, m]) => [ops.attention(q!, k!, v!, { causal, keyMask: m }).out],
      };
    }
    // the same with probabilities (a pattern hook): the tiled kernels' second walk over the keys
    const inputs = [f(qs), f(ks), f([...ks.slice(0, 3), dv])];
    if (masked) inputs.push(f([ks[0]!, ks[2]!], 'u8', { fill: 'mask' }));
    yield {
      op: 'attention', label: `attention f32 prefill ${name}, probs`, inputs, budget: 1e-9,
      run: ([q, k, v, m]) => { const r = ops.attention(q!, k!, v!, { causal, keyMask: m, returnProbs: true }); return [r.out, r.probs!]; },
    };
  }
  yield {
    op: 'attention', label: 'attention f32 prefill, permuted views, no probs', inputs: [f([2, 37, 4, 16]), f([2, 37, 2, 16]), f([2, 37, 2, 16])], budget: 1e-9,
    run: ([q, k, v]) => [ops.attention(q!.transpose(1, 2), k!.transpose(1, 2), v!.transpose(1, 2), { causal: true }).out],
  };
  // token-major output [b, tq, hq, dv]: the prefill kernels (GPT-2 head size, masked gqa, odd sizes) and the row kernel (decode)
  const tokenMajor: [string, number[], number[], number, boolean, boolean][] = [
    ['prefill causal t=130 d=64', [1, 4, 130, 64], [1, 4, 130, 64], 64, true, false],
    ['prefill gqa masked tq=40 < tk=97 d=80', [2, 8, 40, 80], [2, 2, 97, 80], 80, true, true],
    ['prefill non-causal d=5 dv=12', [1, 2, 50, 5], [1, 2, 19, 5], 12, false, true],
    ['decode gqa', [2, 6, 1, 16], [2, 3, 11, 16], 16, true, false],
  ];
  for (const [name, qs, ks, dv, causal, masked] of tokenMajor) {
    const inputs = [f(qs), f(ks), f([...ks.slice(0, 3), dv])];
    if (masked) inputs.push(f([ks[0]!, ks[2]!], 'u8', { fill: 'mask' }));
    yield {
      op: 'attention', label: `attention f32 ${name}, token-major`, inputs, budget: 1e-9,
      run: ([q, k, v, m]) => [ops.attention(q!, k!, v!, { causal, keyMask: m, tokenMajor: true }).out],
    };
  }
}

/**
 * qmatmul's budget: the reference multiplies x as it is; the fast kernels round x to 8 bits per
 * 32 values first (ggml's q8 activations), a uniform error of at most half a step d = max|x|/127
 * per value, so NMSE ≈ mean over blocks of (d²/12) / mean(x²) = (max|x|/σ)² · 5.2e-6: ~2e-5 to
 * 5e-5 on normal data averaged over many blocks, but up to ~1.3e-4 for a single block holding a
 * 5σ value (the one-block cases). 3e-4 covers that and nothing like a wrong block layout (NMSE ~1).
 */
export const QMATMUL_BUDGET = 3e-4;
/**
 * The same for a product over ONE K-quant super-block (K = 256): each weight is d·sc·q − dmin·m,
 * and on random blocks the two terms of an output often nearly cancel while their rounding errors
 * do not, so the 16 outputs' NMSE has a long tail (3.9e-4 for q4_k and 8.3e-4 for q5_k measured on
 * wasm and WebGPU alike, on seeds that hit it). A wrong layout still gives NMSE ~1.
 */
export const QMATMUL_ONE_SUPERBLOCK_BUDGET = 2e-3;

function* quantVariants(): Generator<Variant> {
  for (const type of QUANT_TYPES) {
    const { values: bv, bytes: bb, tail } = QUANT_BLOCK[type];
    for (const blocks of [1, 3, 96]) {
      // GGML's formats: a flat run of blocks; actlab's: rows of 3 blocks, each ending in its tail
      const [rows, cols] = tail ? [blocks, 3 * bv] : [blocks, bv];
      const bytes = tail ? rows * quantRowBytes(type, cols) : blocks * bb;
      yield { op: 'dequantize', label: `dequantize ${type} ${blocks} ${tail ? 'rows' : 'blocks'}`, inputs: [f([bytes], 'u8', { fill: type, cols })], budget: 0, run: ([r]) => [ops.dequantize(r!, type, [rows, cols])] };
    }
    // [M, N, K]: decode (M = 1, the GEMV path), a few rows, and prefill-sized M (the blocked GEMM path)
    const shapes: [number, number, number, string][] = [[1, 16, bv, 'gemv one block'], [1, 37, 3 * bv, 'gemv'], [3, 19, 2 * bv, 'few rows'], [37, 23, 2 * bv, 'gemm']];
    if (bv === 32) shapes.push([1, 64, 768, 'gemv d=768'], [70, 40, 768, 'gemm d=768']);
    for (const [M, N, K, tag] of shapes) {
      yield {
        op: 'qmatmul', label: `qmatmul ${type} ${tag} M=${M} N=${N} K=${K}`, inputs: [f([M, K]), f([N * quantRowBytes(type, K)], 'u8', { fill: type, cols: K })], budget: K === 256 && bv === 256 ? QMATMUL_ONE_SUPERBLOCK_BUDGET : QMATMUL_BUDGET,
        run: ([x, r]) => [ops.qmatmul(x!, new QuantizedTensor(r!.share(), type, [N, K]))],
      };
    }
    // the product with a linear layer's bias and activation in the same op (decode and a few rows)
    for (const [M, N, K, act] of [[1, 37, 3 * bv, 'gelu_tanh'], [3, 19, 2 * bv, null]] as const) {
      yield {
        op: 'qlinear', label: `qlinear ${type} M=${M} N=${N} K=${K} ${act ?? 'no activation'}`,
        inputs: [f([M, K]), f([N * quantRowBytes(type, K)], 'u8', { fill: type, cols: K }), f([N])], budget: QMATMUL_BUDGET,
        run: ([x, r, b]) => {
          const w = new QuantizedTensor(r!.share(), type, [N, K]);
          return [ops.qlinear(act ? unitPreActivation(x!, w) : x!, w, b!, act ?? undefined)];
        },
        // the gradient is qmatmul's, add's and the activation's (each checked by finite differences
        // in its own cases); through a K = 512 f32 product the differences are rounding-bound at
        // about the 1% tolerance (q6_k: 1.05%), so here only the backends' gradients are compared
        finiteDifferences: false,
      };
    }
  }
}

/**
 * x scaled (by a constant, no gradient through it) so that x · Wᵀ has unit RMS. The random blocks
 * give pre-activations of tens to hundreds, where the 8-bit rounding of x (NMSE ≤ 3e-4 of the
 * product) shifts a pre-activation near 0 by whole units: the activation's derivative there, and
 * so the gradient, then differs from the reference's by NMSE ~1e-2 for reasons of scale alone. At
 * unit scale the shift is ~0.02 and a wrong gradient still stands out (NMSE ~1).
 */
function unitPreActivation(x: Tensor, w: QuantizedTensor): Tensor {
  const c = noGrad(() => ops.rsqrt(ops.mean(ops.square(ops.qmatmul(x, w)), -1, { keepDims: true }))); // [M, 1]
  return ops.mul(x, c); // [M, K]
}

/** The activation-sparsity products: about half the activations (or mask entries) are 0 (relu of normal data). */
function* sparseVariants(): Generator<Variant> {
  const shapes: [number, number, number, string][] = [[1, 172, 64, 'decode'], [1, 1024, 256, 'decode threaded'], [3, 300, 1000, 'few rows threaded'], [2, 9, 10, 'odd sizes']];
  for (const [M, K, N, tag] of shapes) {
    yield { op: 'sparseMatmul', label: `sparseMatmul f32 ${tag} M=${M} K=${K} N=${N}`, inputs: [f([M, K]), f([K, N])], budget: 1e-9, run: ([x, w]) => [ops.sparseMatmul(ops.relu(x!), w!)] };
    yield { op: 'maskedMatmul', label: `maskedMatmul f32 ${tag} M=${M} K=${N} N=${K}`, inputs: [f([M, N]), f([K, N]), f([M, K])], budget: 1e-9, run: ([x, w, g]) => [ops.maskedMatmul(x!, w!, ops.relu(g!))] };
  }
  // thresholds fused into the product: |x| below its row's threshold (|normal|, so about half) skips the row
  for (const [M, K, N, tag] of [[1, 1024, 256, 'decode threaded'], [1, 200, 2052, 'long rows'], [3, 40, 12, 'few rows'], [2, 9, 10, 'odd sizes']] as const) {
    yield { op: 'sparseMatmul', label: `sparseMatmul f32 thresholded ${tag} M=${M} K=${K} N=${N}`, inputs: [f([M, K]), f([K, N]), f([K])], budget: 1e-9, run: ([x, w, t]) => [ops.sparseMatmul(x!, w!, ops.abs(t!))] };
  }
  yield { op: 'sparseMatmul', label: 'sparseMatmul f32 all zero', inputs: [f([1, 64]), f([64, 32])], budget: 0, run: ([x, w]) => [ops.sparseMatmul(ops.mul(x!, 0), w!)] };
  yield { op: 'maskedMatmul', label: 'maskedMatmul f32 all masked', inputs: [f([1, 64]), f([32, 64]), f([1, 32])], budget: 0, run: ([x, w, g]) => [ops.maskedMatmul(x!, w!, ops.mul(g!, 0))] };
}

/** Softmax's gradient: short rows, rows around the register kernel's bounds (128..1024), long rows, NaN/Inf. */
function* softmaxBackwardVariants(): Generator<Variant> {
  const run = ([y, dy]: Tensor[]) => [ops.softmaxBackward(y!, dy!)];
  for (const dtype of FLOATS) {
    for (const [shape, layout] of [[[7, 33], undefined], [[0, 5], undefined], [[5, 9], 'T'], [[4, 256], undefined]] as const) {
      const y = f([...shape], dtype, { layout, fill: 'uniform', lo: 0, hi: 0.2 });
      yield { op: 'softmaxBackward', label: `softmaxBackward ${dtype} [${shape}]${layout ? ' ' + layout : ''}`, inputs: [y, f([...shape], dtype)], budget: budgetFor(dtype), run };
    }
  }
  for (const k of [127, 128, 512, 513, 1024, 1025, 3000]) {
    yield { op: 'softmaxBackward', label: `softmaxBackward f32 [3,5,${k}]`, inputs: [f([3, 5, k], 'f32', { fill: 'uniform', lo: 0, hi: 2 / k }), f([3, 5, k])], budget: 1e-9, run };
  }
  yield { op: 'softmaxBackward', label: 'softmaxBackward f32 NaN/Inf in y [4,64]', inputs: [f([4, 64], 'f32', { special: true }), f([4, 64])], budget: 1e-10, run };
  yield { op: 'softmaxBackward', label: 'softmaxBackward f32 NaN/Inf in dy [4,256]', inputs: [f([4, 256], 'f32', { fill: 'uniform', lo: 0, hi: 0.01 }), f([4, 256], 'f32', { special: true })], budget: 1e-10, run };
}

/** Every variant of every op. */
export function allVariants(): Variant[] {
  return [
    ...copyVariants(), ...fillVariants(), ...randomVariants(), ...dropoutVariants(), ...adamwVariants(), ...unaryVariants(), ...geluBackwardVariants(), ...layernormBackwardVariants(), ...binaryVariants(), ...whereVariants(),
    ...reduceVariants(), ...matmulVariants(), ...nnVariants(), ...quantVariants(), ...sparseVariants(),
    ...softmaxBackwardVariants(),
  ];
}
