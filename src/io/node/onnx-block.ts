// The ONNX model of consecutive pre-LN transformer blocks (GPT-2's wiring), for ONNX Runtime to run
// as one call when no hook can change the blocks' inside (src/models/layers/fused-block.ts decides
// that); each block is
//   h = LN1(x); q, k, v = split(h · Wqkv + bqkv); z = softmax(scale · q kᵀ + causal) v
//   mid = x + z · Wo + bo;  y = mid + act(LN2(mid) · Wfc + bfc) · Wproj + bproj
// and feeds the next. Weights and biases are initializers (ORT packs the weights once, when the
// session is made), named per block (`b3_w_qkv`).
// Inputs: X [M, d_model] (M = batch · pos, symbolic), MASK [pos, pos] (0 / -inf), and the int64
// shapes the split and reshapes need: SPLIT [3] = (d, d, d), HEADS [4] = (batch, pos, heads,
// d_head), ROWS [2] = (M, d) (inputs rather than initializers: the writer's initializers are f32).
// Outputs: Y{i} [M, d_model], the output of each block i listed (the last always): the residual
// stream between blocks, for read-only hooks there; with `inner`, also every block's values that
// read-only hooks inside it may want (BLOCK_VALUES, named by `blockValueOutput`). ORT runs every
// node whatever is fetched, and these tensors are computed anyway, so a fetched output costs only
// its copy out.
// Not for: anything but that wiring (rotary, grouped heads, gated MLPs and RMSNorm blocks run op
// by op).
import { ACTIVATIONS, ATTR_FLOAT, ATTR_INT, ATTR_INTS, FLOAT, INT64, valueInfo, type GemmModelWriter, type Initializer } from './onnx-gemm.js';
import type { GemmActivation } from '../native-gemm.js';
import type { FusedBlockValue } from '../../tensor/backend.js';

export interface BlockModelSpec {
  dMlp: number;
  eps1: number;
  eps2: number;
  scale: number;
  act: GemmActivation;
  /** transB of the qkv, attention output, MLP input and MLP output products. */
  transB: readonly [boolean, boolean, boolean, boolean];
  /** ln1 w, ln1 b, Wqkv, bqkv, Wo, bo, ln2 w, ln2 b, Wfc, bfc, Wproj, bproj (weights in their stored layout). */
  params: readonly Float32Array[];
}

const NAMES = ['ln1_w', 'ln1_b', 'w_qkv', 'b_qkv', 'w_o', 'b_o', 'ln2_w', 'ln2_b', 'w_fc', 'b_fc', 'w_proj', 'b_proj'] as const;

export interface ChainModelSpec {
  dModel: number;
  blocks: readonly BlockModelSpec[];
  /** Indices of the blocks whose output is a graph output (ascending; the last one included). */
  outputs: readonly number[];
  /** Every block's BLOCK_VALUES are graph outputs too. */
  inner?: boolean;
}

/** Each value a block can write out: its tensor in blockGraph and its dims (symbolic where they vary). */
const BLOCK_VALUES: Record<FusedBlockValue, { name: string; dims: (d: number, f: number) => (number | string)[] }> = {
  qkv: { name: 'QKV', dims: (d) => ['M', 3 * d] },
  scores: { name: 'S', dims: () => ['b', 'h', 't', 't'] },
  pattern: { name: 'P', dims: () => ['b', 'h', 't', 't'] },
  z: { name: 'Z4', dims: () => ['b', 't', 'h', 'dh'] },
  attn_out: { name: 'AO', dims: (d) => ['M', d] },
  resid_mid: { name: 'MID', dims: (d) => ['M', d] },
  mlp_pre: { name: 'PRE', dims: (_d, f) => ['M', f] },
  mlp_post: { name: 'POST', dims: (_d, f) => ['M', f] },
  mlp_out: { name: 'MO', dims: (d) => ['M', d] },
};

/** Every value a chain encoded with `inner` writes out of each block. */
export const BLOCK_VALUE_NAMES = Object.keys(BLOCK_VALUES) as readonly FusedBlockValue[];

/** The graph output holding `value` of block `block` (a chain encoded with `inner`). */
export function blockValueOutput(block: number, value: FusedBlockValue): string {
  return `b${block}_${BLOCK_VALUES[value].name}`;
}

/** The chain's ModelProto bytes; each parameter's data is copied once into them. */
export function encodeChain(writer: GemmModelWriter, c: ChainModelSpec): Uint8Array {
  const n = c.blocks.length;
  if (n === 0) throw new Error('onnx block chain: no blocks');
  if (!c.outputs.includes(n - 1) || c.outputs.some((o, i) => o < 0 || o >= n || (i > 0 && o <= c.outputs[i - 1]!))) {
    throw new Error(`onnx block chain: outputs [${c.outputs.join(', ')}] must ascend within [0, ${n}) and include the last block`);
  }
  const nodes: object[] = [];
  const inits: Initializer[] = [];
  c.blocks.forEach((s, i) => {
    const part = blockGraph(`b${i}_`, c.dModel, s, i === 0 ? 'X' : `Y${i - 1}`, `Y${i}`);
    nodes.push(...part.nodes);
    inits.push(...part.inits);
  });
  const graph = {
    name: 'actlab_blocks',
    node: nodes,
    input: [
    valueInfo('X', ['M', c.dModel]), valueInfo('MASK', ['t', 't']),
    valueInfo('SPLIT', [3], INT64), valueInfo('HEADS', [4], INT64), valueInfo('ROWS', [2], INT64),
    ],
    output: [
      ...c.outputs.map((i) => valueInfo(`Y${i}`, ['M', c.dModel])),
      ...(c.inner ? c.blocks.flatMap((s, i) => BLOCK_VALUE_NAMES.map((v) => valueInfo(blockValueOutput(i, v), BLOCK_VALUES[v].dims(c.dModel, s.dMlp)))) : []),
    ],
  };
  return writer.assemble(graph, inits, true);
}

/** One block's nodes and initializers, every name prefixed with `p`, from `x` to `y`. */
function blockGraph(p: string, d: number, s: BlockModelSpec, x: string, y: string): { nodes: object[]; inits: Initializer[] } {
  const f = s.dMlp;
  // [in, out] of each product; the stored layout is [out, in] when transB
  const products: [number, number][] = [[d, 3 * d], [d, d], [d, f], [f, d]];
  const w = (n: number) => { const [i, o] = products[n]!; return s.transB[n] ? [o, i] : [i, o]; };
  const dims = [[d], [d], w(0), [3 * d], w(1), [d], [d], [d], w(2), [f], w(3), [d]];
  if (s.params.length !== NAMES.length) throw new Error(`onnx block: ${s.params.length} parameters, expected ${NAMES.length}`);
  const inits: Initializer[] = NAMES.map((name, n) => {
    const want = dims[n]!.reduce((a, b) => a * b, 1);
    if (s.params[n]!.length !== want) throw new Error(`onnx block: ${name} has ${s.params[n]!.length} elements, expected [${dims[n]!.join(', ')}]`);
    return [p + name, dims[n]!, s.params[n]!, FLOAT];
  });
  const a = ACTIVATIONS[s.act];
  if (!a) throw new Error(`onnx block: no ONNX node for the activation '${s.act}'`);
  const ln = (name: string, from: string, w: string, b: string, to: string, eps: number) => ({
    input: [from, w, b], output: [to], name, opType: 'LayerNormalization',
    attribute: [{ name: 'axis', i: -1, type: ATTR_INT }, { name: 'epsilon', f: eps, type: ATTR_FLOAT }],
  });
  const gemm = (name: string, from: string, w: string, b: string, to: string, transB: boolean) => ({
    input: [from, w, b], output: [to], name, opType: 'Gemm', attribute: [{ name: 'transB', i: transB ? 1 : 0, type: ATTR_INT }],
  });
  const perm = (name: string, from: string, to: string, order: number[]) =>
    ({ input: [from], output: [to], name, opType: 'Transpose', attribute: [{ name: 'perm', ints: order, type: ATTR_INTS }] });
  const node = (name: string, opType: string, input: string[], output: string[], attribute: object[] = []) => ({ input, output, name, opType, attribute });
  const q = (name: string) => p + name;
  const nodes = [
    ln(q('ln1'), x, q('ln1_w'), q('ln1_b'), q('H1'), s.eps1), // [M, d]
    gemm(q('qkv'), q('H1'), q('w_qkv'), q('b_qkv'), q('QKV'), s.transB[0]), // [M, 3d]
    node(q('split'), 'Split', [q('QKV'), 'SPLIT'], [q('Qf'), q('Kf'), q('Vf')], [{ name: 'axis', i: 1, type: ATTR_INT }]),
    node(q('q4'), 'Reshape', [q('Qf'), 'HEADS'], [q('Q')]), // [b, t, h, dh]
    node(q('k4'), 'Reshape', [q('Kf'), 'HEADS'], [q('K')]),
    node(q('v4'), 'Reshape', [q('Vf'), 'HEADS'], [q('V')]),
    perm(q('qt'), q('Q'), q('Qh'), [0, 2, 1, 3]), // [b, h, t, dh]
    perm(q('kt'), q('K'), q('Kt'), [0, 2, 3, 1]), // [b, h, dh, t]
    perm(q('vt'), q('V'), q('Vh'), [0, 2, 1, 3]), // [b, h, t, dh]
    node(q('qk'), 'MatMul', [q('Qh'), q('Kt')], [q('S0')]), // [b, h, t, t]
    node(q('scale'), 'Mul', [q('S0'), q('SCALE')], [q('S1')]),
    node(q('mask'), 'Add', [q('S1'), 'MASK'], [q('S')]),
    node(q('softmax'), 'Softmax', [q('S')], [q('P')], [{ name: 'axis', i: -1, type: ATTR_INT }]),
    node(q('pv'), 'MatMul', [q('P'), q('Vh')], [q('Zh')]), // [b, h, t, dh]
    perm(q('zt'), q('Zh'), q('Z4'), [0, 2, 1, 3]), // [b, t, h, dh]
    node(q('z2'), 'Reshape', [q('Z4'), 'ROWS'], [q('Z')]), // [M, d]
    gemm(q('o'), q('Z'), q('w_o'), q('b_o'), q('AO'), s.transB[1]), // [M, d]
    node(q('resid_mid'), 'Add', [x, q('AO')], [q('MID')]),
    ln(q('ln2'), q('MID'), q('ln2_w'), q('ln2_b'), q('H2'), s.eps2),
    gemm(q('fc'), q('H2'), q('w_fc'), q('b_fc'), q('PRE'), s.transB[2]), // [M, d_mlp]
    { input: [q('PRE')], output: [q('POST')], name: q('act'), opType: a.opType, domain: a.domain ?? '', attribute: a.attribute ?? [] },
    gemm(q('proj'), q('POST'), q('w_proj'), q('b_proj'), q('MO'), s.transB[3]), // [M, d]
    node(q('resid_post'), 'Add', [q('MID'), q('MO')], [y]),
  ];
  // the scale as a one-element initializer (broadcast by Mul)
  return { nodes, inits: [...inits, [q('SCALE'), [], new Float32Array([s.scale]), FLOAT]] };
}
