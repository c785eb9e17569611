// The ONNX model of a decode step: consecutive pre-LN blocks (GPT-2's wiring, as onnx-block.ts)
// over T new positions that attend to P cached ones, for ONNX Runtime to run as one call. Each
// block's products are f32 Gemms or, for a GGML-quantized weight, MatMulNBits (onnx-qgemm.ts's
// mapping, with the K-quants' per-block offsets), weights and biases as initializers.
// Inputs: X [M, d] (M = batch · T), MASK [T, C + T] (0 / -inf: the P cached positions of C seen,
// the rest of the capacity not, causal over the new positions), HEADS [4] = (batch, T, heads,
// d_head), ROWS [2] = (M, d), SPLIT [3] = (d, d, d), PARTS [2] = (C, T), and per block i its cache
// at a capacity of C positions: keys transposed PK{i} [batch, heads, d_head, C] and values PV{i}
// [batch, heads, C, d_head] (whole host arrays: no copy of the past per step; the scores of the
// capacity past P are masked). The new positions are scored apart and their scores concatenated.
// Outputs: per block i the new keys NK{i} [batch, heads, d_head, T] and values NV{i} [batch, heads,
// T, d_head] (for the caller's cache), and Y{i} (the residual after block i, [M, d]). With a head
// (the final LayerNorm and the unembedding after the last block) also LOGITS [M, vocab].
// Not for: steps without a cache (onnx-block.ts), other wirings (rotary, grouped heads, gated MLPs).
import { ACTIVATIONS, ATTR_FLOAT, ATTR_INT, ATTR_INTS, FLOAT, INT64, MS, valueInfo, type GemmModelWriter, type Initializer } from './onnx-gemm.js';
import type { GemmActivation } from '../native-gemm.js';
import type { NBitsWeight } from './onnx-qgemm.js';

const UINT8 = 2; // TensorProto.DataType.UINT8

/** A product x · W (+ b): an f32 weight in its stored layout, or MatMulNBits codes; no bias: none. */
export type DecodeProduct =
  | { readonly w: Float32Array; readonly transB: boolean; readonly bias?: Float32Array }
  | { readonly nbits: NBitsWeight; readonly bias?: Float32Array };

export interface DecodeBlockSpec {
  dMlp: number;
  eps1: number;
  eps2: number;
  scale: number;
  act: GemmActivation;
  /** ln1 w, ln1 b, ln2 w, ln2 b. */
  norms: readonly [Float32Array, Float32Array, Float32Array, Float32Array];
  /** qkv, attention output, MLP input, MLP output. */
  products: readonly [DecodeProduct, DecodeProduct, DecodeProduct, DecodeProduct];
}

/** The final LayerNorm and the unembedding [d_model → vocab] after the last block. */
export interface DecodeHeadSpec {
  eps: number;
  vocab: number;
  /** weight, bias */
  norm: readonly [Float32Array, Float32Array];
  product: DecodeProduct;
}

export interface DecodeModelSpec {
  dModel: number;
  blocks: readonly DecodeBlockSpec[];
  head?: DecodeHeadSpec;
}

/** The step's ModelProto bytes; every block's output is a graph output (any set may be fetched). */
export function encodeDecode(writer: GemmModelWriter, s: DecodeModelSpec): Uint8Array {
  const n = s.blocks.length;
  if (n === 0) throw new Error('onnx decode: no blocks');
  const nodes: object[] = [];
  const inits: Initializer[] = [];
  s.blocks.forEach((b, i) => {
    const part = blockGraph(`b${i}_`, s.dModel, b, i === 0 ? 'X' : `Y${i - 1}`, `Y${i}`, i);
    nodes.push(...part.nodes);
    inits.push(...part.inits);
  });
  const h = s.head;
  if (h) {
    if (h.norm.some((a) => a.length !== s.dModel)) throw new Error(`onnx decode: the final norm has ${h.norm[0].length} / ${h.norm[1].length} elements, expected ${s.dModel}`);
    inits.push(['lnf_w', [s.dModel], h.norm[0], FLOAT], ['lnf_b', [s.dModel], h.norm[1], FLOAT]);
    nodes.push(
      node('lnf', 'LayerNormalization', [`Y${n - 1}`, 'lnf_w', 'lnf_b'], ['HF'], [int('axis', -1), { name: 'epsilon', f: h.eps, type: ATTR_FLOAT }]), // [M, d]
      ...product('unembed', 'HF', 'LOGITS', s.dModel, h.vocab, h.product, inits), // [M, vocab]
    );
  }
  const graph = {
    name: 'actlab_decode',
    node: nodes,
    input: [
      valueInfo('X', ['M', s.dModel]), valueInfo('MASK', ['T', 'PT']),
      valueInfo('SPLIT', [3], INT64), valueInfo('HEADS', [4], INT64), valueInfo('ROWS', [2], INT64), valueInfo('PARTS', [2], INT64),
      ...s.blocks.flatMap((_, i) => [valueInfo(`PK${i}`, ['b', 'h', 'dh', 'C']), valueInfo(`PV${i}`, ['b', 'h', 'C', 'dh'])]),
    ],
    output: [
      ...s.blocks.flatMap((_, i) => [valueInfo(`NK${i}`, ['b', 'h', 'dh', 'T']), valueInfo(`NV${i}`, ['b', 'h', 'T', 'dh'])]),
      ...s.blocks.map((_, i) => valueInfo(`Y${i}`, ['M', s.dModel])),
      ...(h ? [valueInfo('LOGITS', ['M', h.vocab])] : []),
    ],
  };
  return writer.assemble(graph, inits, true);
}

const int = (name: string, i: number) => ({ name, i, type: ATTR_INT });
const node = (name: string, opType: string, input: string[], output: string[], attribute: object[] = [], domain = '') => ({ input, output, name, opType, attribute, domain });
const perm = (name: string, from: string, to: string, order: number[]) => node(name, 'Transpose', [from], [to], [{ name: 'perm', ints: order, type: ATTR_INTS }]);

/** One block's nodes and initializers, every name prefixed with `p`, from `x` to `y`. */
function blockGraph(p: string, d: number, s: DecodeBlockSpec, x: string, y: string, i: number): { nodes: object[]; inits: Initializer[] } {
  const f = s.dMlp;
  const q = (name: string) => p + name;
  const inits: Initializer[] = [];
  ['ln1_w', 'ln1_b', 'ln2_w', 'ln2_b'].forEach((name, j) => {
    if (s.norms[j]!.length !== d) throw new Error(`onnx decode: ${q(name)} has ${s.norms[j]!.length} elements, expected ${d}`);
    inits.push([q(name), [d], s.norms[j]!, FLOAT]);
  });
  inits.push([q('SCALE'), [], new Float32Array([s.scale]), FLOAT]);
  const a = ACTIVATIONS[s.act];
  if (!a) throw new Error(`onnx decode: no ONNX node for the activation '${s.act}'`);
  const ln = (name: string, from: string, w: string, b: string, to: string, eps: number) =>
    node(name, 'LayerNormalization', [from, w, b], [to], [int('axis', -1), { name: 'epsilon', f: eps, type: ATTR_FLOAT }]);
  const shapes: [number, number][] = [[d, 3 * d], [d, d], [d, f], [f, d]];
  const prod = (j: number, name: string, from: string, to: string) => product(q(name), from, to, shapes[j]![0], shapes[j]![1], s.products[j]!, inits);
  const nodes = [
    ln(q('ln1'), x, q('ln1_w'), q('ln1_b'), q('H1'), s.eps1), // [M, d]
    ...prod(0, 'qkv', q('H1'), q('QKV')), // [M, 3d]
    node(q('split'), 'Split', [q('QKV'), 'SPLIT'], [q('Qf'), q('Kf'), q('Vf')], [int('axis', 1)]),
    node(q('q4'), 'Reshape', [q('Qf'), 'HEADS'], [q('Q')]), // [b, T, h, dh]
    node(q('k4'), 'Reshape', [q('Kf'), 'HEADS'], [q('K')]),
    node(q('v4'), 'Reshape', [q('Vf'), 'HEADS'], [q('V')]),
    perm(q('qt'), q('Q'), q('Qh'), [0, 2, 1, 3]), // [b, h, T, dh]
    perm(q('kn'), q('K'), `NK${i}`, [0, 2, 3, 1]), // [b, h, dh, T]
    perm(q('vn'), q('V'), `NV${i}`, [0, 2, 1, 3]), // [b, h, T, dh]
    node(q('qk_past'), 'MatMul', [q('Qh'), `PK${i}`], [q('SP')]), // [b, h, T, C]
    node(q('qk_new'), 'MatMul', [q('Qh'), `NK${i}`], [q('SN')]), // [b, h, T, T]
    node(q('scores'), 'Concat', [q('SP'), q('SN')], [q('S0')], [int('axis', 3)]), // [b, h, T, C + T]
    node(q('scale'), 'Mul', [q('S0'), q('SCALE')], [q('S1')]),
    node(q('mask'), 'Add', [q('S1'), 'MASK'], [q('S')]),
    node(q('softmax'), 'Softmax', [q('S')], [q('Pr')], [int('axis', -1)]),
    node(q('parts'), 'Split', [q('Pr'), 'PARTS'], [q('PP'), q('PN')], [int('axis', 3)]), // [b, h, T, C], [b, h, T, T]
    node(q('pv_past'), 'MatMul', [q('PP'), `PV${i}`], [q('ZP')]), // [b, h, T, dh]
    node(q('pv_new'), 'MatMul', [q('PN'), `NV${i}`], [q('ZN')]),
    node(q('pv'), 'Add', [q('ZP'), q('ZN')], [q('Zh')]),
    perm(q('zt'), q('Zh'), q('Z4'), [0, 2, 1, 3]), // [b, T, h, dh]
    node(q('z2'), 'Reshape', [q('Z4'), 'ROWS'], [q('Z')]), // [M, d]
    ...prod(1, 'o', q('Z'), q('AO')), // [M, d]
    node(q('resid_mid'), 'Add', [x, q('AO')], [q('MID')]),
    ln(q('ln2'), q('MID'), q('ln2_w'), q('ln2_b'), q('H2'), s.eps2),
    ...prod(2, 'fc', q('H2'), q('PRE')), // [M, d_mlp]
    node(q('act'), a.opType, [q('PRE')], [q('POST')], a.attribute ?? [], a.domain ?? ''),
    ...prod(3, 'proj', q('POST'), q('MO')), // [M, d]
    node(q('resid_post'), 'Add', [q('MID'), q('MO')], [y]),
  ];
  return { nodes, inits };
}

/** The nodes of `to` = `from` [M, K] · W + b (W [K, N] as the product says), its initializers pushed to `inits`. */
function product(name: string, from: string, to: string, K: number, N: number, pr: DecodeProduct, inits: Initializer[]): object[] {
  if (pr.bias && pr.bias.length !== N) throw new Error(`onnx decode: ${name} bias has ${pr.bias.length} elements, expected ${N}`);
  const bias = pr.bias ? `${name}_b` : '';
  if (pr.bias) inits.push([bias, [N], pr.bias, FLOAT]);
  if ('w' in pr) {
    if (pr.w.length !== K * N) throw new Error(`onnx decode: ${name} weight has ${pr.w.length} elements, expected ${K}x${N}`);
    inits.push([`${name}_w`, pr.transB ? [N, K] : [K, N], pr.w, FLOAT]);
    return [node(name, 'Gemm', [from, `${name}_w`, ...(bias ? [bias] : [])], [to], [int('transB', pr.transB ? 1 : 0)])];
  }
  const { bits, block, codes, scales, offsets } = pr.nbits;
  const nb = K / block;
  if (!Number.isInteger(nb) || codes.length !== (N * K * bits) / 8 || scales.length !== N * nb || (offsets && offsets.length !== nb * N)) {
    throw new Error(`onnx decode: ${name} MatMulNBits codes ${codes.length} / scales ${scales.length} do not fit [${N}, ${K}] at ${bits} bits in blocks of ${block}`);
  }
  inits.push([`${name}_q`, [N, nb, (block * bits) / 8], codes, UINT8], [`${name}_s`, [N, nb], scales, FLOAT]);
  const nbits = node(name, 'MatMulNBits', [from, `${name}_q`, `${name}_s`, ...(bias ? ['', '', bias] : [])], [offsets ? `${name}_Q` : to],
    [int('K', K), int('N', N), int('bits', bits), int('block_size', block), int('accuracy_level', 4)], MS);
  if (!offsets) return [nbits];
  // y += (Σ of x over each block) · offsets: the K-quants' minimums (onnx-qgemm.ts)
  const i64 = (v: number[]) => new Uint8Array(BigInt64Array.from(v.map(BigInt)).buffer);
  inits.push([`${name}_o`, [nb, N], offsets, FLOAT], [`${name}_blocks`, [3], i64([0, nb, block]), INT64], [`${name}_axis`, [1], i64([2]), INT64]);
  return [
    nbits,
    node(`${name}_x3`, 'Reshape', [from, `${name}_blocks`], [`${name}_X3`]), // [M, K/block, block]
    node(`${name}_sums`, 'ReduceSum', [`${name}_X3`, `${name}_axis`], [`${name}_S`], [int('keepdims', 0)]), // [M, K/block]
    node(`${name}_off`, 'MatMul', [`${name}_S`, `${name}_o`], [`${name}_O`]), // [M, N]
    node(`${name}_add`, 'Add', [`${name}_Q`, `${name}_O`], [to]),
  ];
}
