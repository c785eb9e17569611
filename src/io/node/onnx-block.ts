// The ONNX model of one pre-LN transformer block (GPT-2's wiring), for ONNX Runtime to run as one
// call when nothing observes the block's inside (src/models/layers/fused-block.ts decides that):
//   h = LN1(x); q, k, v = split(h · Wqkv + bqkv); z = softmax(scale · q kᵀ + causal) v
//   mid = x + z · Wo + bo;  y = mid + act(LN2(mid) · Wfc + bfc) · Wproj + bproj
// Weights and biases are initializers (ORT packs the four weights once, when the session is made).
// Inputs: X [M, d_model] (M = batch · pos, symbolic), MASK [pos, pos] (0 / -inf), and the int64
// shapes the split and reshapes need: SPLIT [3] = (d, d, d), HEADS [4] = (batch, pos, heads,
// d_head), ROWS [2] = (M, d) (inputs rather than initializers: the writer's initializers are f32).
// Output: Y [M, d_model]. Not for: anything but that wiring (rotary, grouped heads, gated MLPs and
// RMSNorm blocks run op by op).
import { ACTIVATIONS, ATTR_FLOAT, ATTR_INT, ATTR_INTS, FLOAT, INT64, valueInfo, type GemmModelWriter, type Initializer } from './onnx-gemm.js';
import type { GemmActivation } from '../native-gemm.js';

export interface BlockModelSpec {
  dModel: number;
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

/** The block's ModelProto bytes; each parameter's data is copied once into them. */
export function encodeBlock(writer: GemmModelWriter, s: BlockModelSpec): Uint8Array {
  const d = s.dModel;
  const f = s.dMlp;
  // [in, out] of each product; the stored layout is [out, in] when transB
  const products: [number, number][] = [[d, 3 * d], [d, d], [d, f], [f, d]];
  const w = (n: number) => { const [i, o] = products[n]!; return s.transB[n] ? [o, i] : [i, o]; };
  const dims = [[d], [d], w(0), [3 * d], w(1), [d], [d], [d], w(2), [f], w(3), [d]];
  if (s.params.length !== NAMES.length) throw new Error(`onnx block: ${s.params.length} parameters, expected ${NAMES.length}`);
  const inits: Initializer[] = NAMES.map((name, n) => {
    const want = dims[n]!.reduce((a, b) => a * b, 1);
    if (s.params[n]!.length !== want) throw new Error(`onnx block: ${name} has ${s.params[n]!.length} elements, expected [${dims[n]!.join(', ')}]`);
    return [name, dims[n]!, s.params[n]!, FLOAT];
  });
  const a = ACTIVATIONS[s.act];
  if (!a) throw new Error(`onnx block: no ONNX node for the activation '${s.act}'`);
  const ln = (name: string, x: string, w: string, b: string, y: string, eps: number) => ({
    input: [x, w, b], output: [y], name, opType: 'LayerNormalization',
    attribute: [{ name: 'axis', i: -1, type: ATTR_INT }, { name: 'epsilon', f: eps, type: ATTR_FLOAT }],
  });
  const gemm = (name: string, x: string, w: string, b: string, y: string, transB: boolean) => ({
    input: [x, w, b], output: [y], name, opType: 'Gemm', attribute: [{ name: 'transB', i: transB ? 1 : 0, type: ATTR_INT }],
  });
  const perm = (name: string, x: string, y: string, p: number[]) =>
    ({ input: [x], output: [y], name, opType: 'Transpose', attribute: [{ name: 'perm', ints: p, type: ATTR_INTS }] });
  const node = (name: string, opType: string, input: string[], output: string[], attribute: object[] = []) => ({ input, output, name, opType, attribute });
  const graph = {
    name: 'actlab_block',
    node: [
      ln('ln1', 'X', 'ln1_w', 'ln1_b', 'H1', s.eps1), // [M, d]
      gemm('qkv', 'H1', 'w_qkv', 'b_qkv', 'QKV', s.transB[0]), // [M, 3d]
      node('split', 'Split', ['QKV', 'SPLIT'], ['Qf', 'Kf', 'Vf'], [{ name: 'axis', i: 1, type: ATTR_INT }]),
      node('q4', 'Reshape', ['Qf', 'HEADS'], ['Q']), // [b, t, h, dh]
      node('k4', 'Reshape', ['Kf', 'HEADS'], ['K']),
      node('v4', 'Reshape', ['Vf', 'HEADS'], ['V']),
      perm('qt', 'Q', 'Qh', [0, 2, 1, 3]), // [b, h, t, dh]
      perm('kt', 'K', 'Kt', [0, 2, 3, 1]), // [b, h, dh, t]
      perm('vt', 'V', 'Vh', [0, 2, 1, 3]), // [b, h, t, dh]
      node('qk', 'MatMul', ['Qh', 'Kt'], ['S0']), // [b, h, t, t]
      node('scale', 'Mul', ['S0', 'SCALE'], ['S1']),
      node('mask', 'Add', ['S1', 'MASK'], ['S']),
      node('softmax', 'Softmax', ['S'], ['P'], [{ name: 'axis', i: -1, type: ATTR_INT }]),
      node('pv', 'MatMul', ['P', 'Vh'], ['Zh']), // [b, h, t, dh]
      perm('zt', 'Zh', 'Z4', [0, 2, 1, 3]), // [b, t, h, dh]
      node('z2', 'Reshape', ['Z4', 'ROWS'], ['Z']), // [M, d]
      gemm('o', 'Z', 'w_o', 'b_o', 'AO', s.transB[1]), // [M, d]
      node('resid_mid', 'Add', ['X', 'AO'], ['MID']),
      ln('ln2', 'MID', 'ln2_w', 'ln2_b', 'H2', s.eps2),
      gemm('fc', 'H2', 'w_fc', 'b_fc', 'PRE', s.transB[2]), // [M, d_mlp]
      { input: ['PRE'], output: ['POST'], name: 'act', opType: a.opType, domain: a.domain ?? '', attribute: a.attribute ?? [] },
      gemm('proj', 'POST', 'w_proj', 'b_proj', 'MO', s.transB[3]), // [M, d]
      node('resid_post', 'Add', ['MID', 'MO'], ['Y']),
    ],
    input: [
      valueInfo('X', ['M', d]), valueInfo('MASK', ['t', 't']),
      valueInfo('SPLIT', [3], INT64), valueInfo('HEADS', [4], INT64), valueInfo('ROWS', [2], INT64),
    ],
    output: [valueInfo('Y', ['M', d])],
  };
  // SCALE as a one-element initializer (broadcast by Mul)
  return writer.assemble(graph, [...inits, ['SCALE', [], new Float32Array([s.scale]), FLOAT]], true);
}
