// Small ONNX models for ONNX Runtime's MLAS kernels, encoded with protobufjs from the few messages
// of onnx.proto they need (field numbers as in onnx/onnx.proto, IR version 8, opset 17):
// - a linear layer: Gemm (C = op(A)·op(B) + bias). With B an initializer ORT packs it once when the
//   session is created (MLAS prepacking); with B an input it is packed per call.
// - an activation alone (FastGelu, Gelu, Relu, ...) over a [M, N] input, run after the Gemm.
// - a product with a block-quantized weight: MatMulNBits (com.microsoft; B [N, K/block,
//   block·bits/8] codes packed low nibble first, f32 scales [N, K/block], the default zero point
//   2^(bits−1); accuracy_level 4: MLAS rounds A to 8 bits per block and multiplies in integers),
//   with a linear layer's bias in the node and its activation as a second node.
// - causal attention of one layer: softmax(scale · Q Kᵀ + mask) V over [batch, pos, head, d_head]
//   inputs, the batched products on MLAS.
// M and the sequence lengths are symbolic dimensions, so one session serves every length.
// A weight's bytes are written once, straight into the model bytes (protobufjs would copy a
// large initializer several times while encoding, which briefly took ~3× the weight's memory).
// Not for: anything but these graphs (actlab does not run ONNX models).
import type * as Protobuf from 'protobufjs';
import type { GemmActivation } from '../native-gemm.js';

export const FLOAT = 1; // TensorProto.DataType.FLOAT
const UINT8 = 2; // TensorProto.DataType.UINT8
export const INT64 = 7; // TensorProto.DataType.INT64
export const ATTR_FLOAT = 1; // AttributeProto.AttributeType.FLOAT
export const ATTR_INT = 2; // AttributeProto.AttributeType.INT
export const ATTR_INTS = 7; // AttributeProto.AttributeType.INTS
export const MS = 'com.microsoft'; // ONNX Runtime's contrib ops (FastGelu, Gelu, QuickGelu)

/** The subset of onnx.proto these models use, as protobufjs JSON. */
const ONNX_SUBSET = {
  nested: {
    onnx: {
      nested: {
        ModelProto: { fields: {
          irVersion: { type: 'int64', id: 1 }, producerName: { type: 'string', id: 2 },
          graph: { type: 'GraphProto', id: 7 }, opsetImport: { rule: 'repeated', type: 'OperatorSetIdProto', id: 8 },
        } },
        OperatorSetIdProto: { fields: { domain: { type: 'string', id: 1 }, version: { type: 'int64', id: 2 } } },
        GraphProto: { fields: {
          node: { rule: 'repeated', type: 'NodeProto', id: 1 }, name: { type: 'string', id: 2 },
          initializer: { rule: 'repeated', type: 'TensorProto', id: 5 },
          input: { rule: 'repeated', type: 'ValueInfoProto', id: 11 }, output: { rule: 'repeated', type: 'ValueInfoProto', id: 12 },
        } },
        NodeProto: { fields: {
          input: { rule: 'repeated', type: 'string', id: 1 }, output: { rule: 'repeated', type: 'string', id: 2 },
          name: { type: 'string', id: 3 }, opType: { type: 'string', id: 4 }, attribute: { rule: 'repeated', type: 'AttributeProto', id: 5 },
          domain: { type: 'string', id: 7 },
        } },
        AttributeProto: { fields: {
          name: { type: 'string', id: 1 }, f: { type: 'float', id: 2 }, i: { type: 'int64', id: 3 },
          ints: { rule: 'repeated', type: 'int64', id: 8 }, type: { type: 'int32', id: 20 },
        } },
        TensorProto: { fields: {
          dims: { rule: 'repeated', type: 'int64', id: 1 }, dataType: { type: 'int32', id: 2 },
          name: { type: 'string', id: 8 }, rawData: { type: 'bytes', id: 9 },
        } },
        ValueInfoProto: { fields: { name: { type: 'string', id: 1 }, type: { type: 'TypeProto', id: 2 } } },
        TypeProto: { fields: { tensorType: { type: 'TypeProtoTensor', id: 1 } } },
        TypeProtoTensor: { fields: { elemType: { type: 'int32', id: 1 }, shape: { type: 'TensorShapeProto', id: 2 } } },
        TensorShapeProto: { fields: { dim: { rule: 'repeated', type: 'Dimension', id: 1 } } },
        Dimension: { fields: { dimValue: { type: 'int64', id: 1 }, dimParam: { type: 'string', id: 2 } } },
      },
    },
  },
};

export interface GemmModelSpec {
  K: number;
  N: number;
  transA: boolean;
  transB: boolean;
  /** B stored as the graph wants it ([K, N], or [N, K] when transB): an initializer. Absent: B is an input. */
  weight?: Float32Array;
  /** [N] added to every row: an initializer (a Float32Array) or an input named 'bias' ('input'). Absent: none. */
  bias?: Float32Array | 'input';
}

/** The ONNX node(s) of each activation, as actlab's reference kernels compute it. */
export const ACTIVATIONS: Record<GemmActivation, { opType: string; domain?: string; attribute?: object[] }> = {
  relu: { opType: 'Relu' },
  sigmoid: { opType: 'Sigmoid' },
  tanh: { opType: 'Tanh' },
  gelu_tanh: { opType: 'FastGelu', domain: MS }, // 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))
  gelu_erf: { opType: 'Gelu', domain: MS }, // 0.5·x·(1 + erf(x/√2))
  silu: { opType: 'QuickGelu', domain: MS, attribute: [{ name: 'alpha', f: 1, type: ATTR_FLOAT }] }, // x·sigmoid(1·x)
};

export const ONNX_ACTIVATIONS: ReadonlySet<GemmActivation> = new Set(Object.keys(ACTIVATIONS) as GemmActivation[]);

/** An initializer: name, dims, data, TensorProto data type. */
export type Initializer = [string, number[], Float32Array | Uint8Array, number];

/** Encodes the models; `protobuf` is the protobufjs module (loaded by the caller, as it is optional). */
export class GemmModelWriter {
  private readonly model: Protobuf.Type;
  private readonly graph: Protobuf.Type;
  private readonly tensor: Protobuf.Type;

  constructor(protobuf: typeof Protobuf) {
    const root = protobuf.Root.fromJSON(ONNX_SUBSET);
    this.model = root.lookupType('onnx.ModelProto');
    this.graph = root.lookupType('onnx.GraphProto');
    this.tensor = root.lookupType('onnx.TensorProto');
  }

  /** Gemm: inputs A (and B, bias when they are not initializers), output C [M, N]; B's data is copied into the bytes. */
  encode(s: GemmModelSpec): Uint8Array {
    const { K, N } = s;
    const bDims = s.transB ? [N, K] : [K, N];
    if (s.weight && s.weight.length !== K * N) throw new Error(`onnx gemm: weight has ${s.weight.length} elements, expected ${K}x${N}`);
    if (s.bias instanceof Float32Array && s.bias.length !== N) throw new Error(`onnx gemm: bias has ${s.bias.length} elements, expected ${N}`);
    const big: Initializer[] = [];
    if (s.weight) big.push(['B', bDims, s.weight, FLOAT]);
    if (s.bias instanceof Float32Array) big.push(['bias', [N], s.bias, FLOAT]);
    const graph = {
      name: 'actlab_gemm',
      node: [{
        input: ['A', 'B', ...(s.bias ? ['bias'] : [])], output: ['C'], name: 'gemm', opType: 'Gemm',
        attribute: [{ name: 'transA', i: s.transA ? 1 : 0, type: ATTR_INT }, { name: 'transB', i: s.transB ? 1 : 0, type: ATTR_INT }],
      }],
      input: [
        valueInfo('A', s.transA ? [K, 'M'] : ['M', K]),
        ...(s.weight ? [] : [valueInfo('B', bDims)]),
        ...(s.bias === 'input' ? [valueInfo('bias', [N])] : []),
      ],
      output: [valueInfo('C', ['M', N])],
    };
    return this.assemble(graph, big, false);
  }

  /**
   * MatMulNBits: input A [M, K], output C [M, N] = act(A · dequant(B)ᵀ + bias) with `codes` [N,
   * K/block, block·bits/8] and `scales` [N, K/block] initializers (value = (code − 2^(bits−1)) ·
   * scale); the bias [N] (MatMulNBits' own input 5) and the activation node are optional.
   */
  encodeNBits(s: {
    K: number; N: number; bits: 4 | 8; block: number; accuracyLevel: number; codes: Uint8Array; scales: Float32Array;
    bias?: Float32Array; act?: GemmActivation;
    /** [K/block, N]: y += (Σ of x over each block) · offsets, before the activation (K-quants' minimums). */
    offsets?: Float32Array;
  }): Uint8Array {
    const { K, N, bits, block } = s;
    const nb = K / block;
    if (!Number.isInteger(nb) || s.codes.length !== (N * K * bits) / 8 || s.scales.length !== N * nb) {
      throw new Error(`onnx gemm: MatMulNBits codes ${s.codes.length} / scales ${s.scales.length} do not fit [${N}, ${K}] at ${bits} bits in blocks of ${block}`);
    }
    const off = s.offsets;
    if (off && off.length !== nb * N) throw new Error(`onnx gemm: MatMulNBits offsets have ${off.length} elements, expected [${nb}, ${N}]`);
    if (s.bias && s.bias.length !== N) throw new Error(`onnx gemm: MatMulNBits bias has ${s.bias.length} elements, expected ${N}`);
    const a = s.act ? ACTIVATIONS[s.act] : undefined;
    if (s.act && !a) throw new Error(`onnx gemm: no ONNX node for the activation '${s.act}'`);
    const int = (name: string, i: number) => ({ name, i, type: ATTR_INT });
    const graph = {
      name: 'actlab_nbits',
      node: [
        {
          // inputs A, B, scales, zero_points, g_idx, bias: the absent optional ones named ''
          input: ['A', 'B', 'scales', ...(s.bias ? ['', '', 'bias'] : [])], output: [off ? 'Q' : a ? 'P' : 'C'], name: 'nbits', opType: 'MatMulNBits', domain: MS,
          attribute: [int('K', K), int('N', N), int('bits', bits), int('block_size', block), int('accuracy_level', s.accuracyLevel)],
        },
        ...(off ? [
          { input: ['A', 'BLOCKS'], output: ['A3'], name: 'blocks', opType: 'Reshape' }, // [M, K/block, block]
          { input: ['A3', 'AXIS2'], output: ['SUMS'], name: 'sums', opType: 'ReduceSum', attribute: [int('keepdims', 0)] }, // [M, K/block]
          { input: ['SUMS', 'offsets'], output: ['OFF'], name: 'offset', opType: 'MatMul' }, // [M, N]
          { input: ['Q', 'OFF'], output: [a ? 'P' : 'C'], name: 'add_offset', opType: 'Add' },
        ] : []),
        ...(a ? [{ input: ['P'], output: ['C'], name: 'act', opType: a.opType, domain: a.domain ?? '', attribute: a.attribute ?? [] }] : []),
      ],
      input: [valueInfo('A', ['M', K])],
      output: [valueInfo('C', ['M', N])],
    };
    const inits: Initializer[] = [['B', [N, nb, (block * bits) / 8], s.codes, UINT8], ['scales', [N, nb], s.scales, FLOAT]];
    if (s.bias) inits.push(['bias', [N], s.bias, FLOAT]);
    if (off) {
      const i64 = (v: number[]) => new Uint8Array(BigInt64Array.from(v.map(BigInt)).buffer);
      inits.push(['offsets', [nb, N], off, FLOAT], ['BLOCKS', [3], i64([0, nb, block]), INT64], ['AXIS2', [1], i64([2]), INT64]);
    }
    return this.assemble(graph, inits, true);
  }

  /** One activation: input X [M, N] -> output Y [M, N]. */
  encodeActivation(act: GemmActivation): Uint8Array {
    const a = ACTIVATIONS[act];
    if (!a) throw new Error(`onnx gemm: no ONNX node for the activation '${act}'`);
    const graph = {
      name: `actlab_${act}`,
      node: [{ input: ['X'], output: ['Y'], name: act, opType: a.opType, domain: a.domain ?? '', attribute: a.attribute ?? [] }],
      input: [valueInfo('X', ['M', 'N'])],
      output: [valueInfo('Y', ['M', 'N'])],
    };
    return this.assemble(graph, [], !!a.domain);
  }

  /**
   * Scaled dot-product attention of one layer, every head at once: inputs Q [b, tq, h, d],
   * K [b, tk, h, d], V [b, tk, h, dv] (the layout the projections write), SCALE [] and MASK
   * [tq, tk] (0 where a query sees a key, -inf elsewhere); outputs Y [b, h, tq, dv] and, with `probs`, P
   * [b, h, tq, tk]. Both products run as batched MatMuls on MLAS.
   */
  encodeAttention(o: { probs: boolean }): Uint8Array {
    const perm = (name: string, input: string, output: string, p: number[]) =>
      ({ input: [input], output: [output], name, opType: 'Transpose', attribute: [{ name: 'perm', ints: p, type: ATTR_INTS }] });
    const graph = {
      name: 'actlab_attention',
      node: [
        perm('qt', 'Q', 'Qh', [0, 2, 1, 3]), // [b, h, tq, d]
        perm('kt', 'K', 'Kt', [0, 2, 3, 1]), // [b, h, d, tk]
        perm('vt', 'V', 'Vh', [0, 2, 1, 3]), // [b, h, tk, dv]
        { input: ['Qh', 'Kt'], output: ['S0'], name: 'qk', opType: 'MatMul' },
        { input: ['S0', 'SCALE'], output: ['S1'], name: 'scale', opType: 'Mul' },
        { input: ['S1', 'MASK'], output: ['S'], name: 'mask', opType: 'Add' },
        { input: ['S'], output: ['P'], name: 'softmax', opType: 'Softmax', attribute: [{ name: 'axis', i: -1, type: ATTR_INT }] },
        { input: ['P', 'Vh'], output: ['Y'], name: 'pv', opType: 'MatMul' },
      ],
      input: [valueInfo('Q', ['b', 'tq', 'h', 'd']), valueInfo('K', ['b', 'tk', 'h', 'd']), valueInfo('V', ['b', 'tk', 'h', 'dv']), valueInfo('SCALE', []), valueInfo('MASK', ['tq', 'tk'])],
      output: [valueInfo('Y', ['b', 'h', 'tq', 'dv']), ...(o.probs ? [valueInfo('P', ['b', 'h', 'tq', 'tk'])] : [])],
    };
    return this.assemble(graph, [], false);
  }

  /**
   * ModelProto bytes of `graph` plus `initializers`, each initializer's data copied once into the
   * result: protobuf fields may come in any order, so the initializers are appended to the
   * encoded graph as raw field 5 entries, and the graph to the encoded model as field 7.
   */
  assemble(graph: object, initializers: Initializer[], contrib: boolean): Uint8Array {
    const head = this.graph.encode(this.graph.fromObject(graph)).finish();
    const tensors = initializers.map(([name, dims, data, dataType]) => {
      const meta = this.tensor.encode(this.tensor.fromObject({ name, dims, dataType })).finish();
      const rawTag = fieldHeader(9, data.byteLength);
      return { meta, rawTag, data, length: meta.length + rawTag.length + data.byteLength };
    });
    const graphLength = head.length + tensors.reduce((n, t) => n + fieldHeader(5, t.length).length + t.length, 0);
    const opsetImport = [{ domain: '', version: 17 }, ...(contrib ? [{ domain: MS, version: 1 }] : [])];
    const model = this.model.encode(this.model.fromObject({ irVersion: 8, producerName: 'actlab', opsetImport })).finish();
    const graphTag = fieldHeader(7, graphLength);
    const out = new Uint8Array(model.length + graphTag.length + graphLength);
    let at = 0;
    const put = (bytes: Uint8Array) => { out.set(bytes, at); at += bytes.length; };
    put(model);
    put(graphTag);
    put(head);
    for (const t of tensors) {
      put(fieldHeader(5, t.length));
      put(t.meta);
      put(t.rawTag);
      put(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength));
    }
    if (at !== out.length) throw new Error(`onnx gemm: encoded ${at} of ${out.length} bytes`);
    return out;
  }
}

/** The key (field number, wire type 2: length-delimited) and length of a protobuf field. */
function fieldHeader(field: number, length: number): Uint8Array {
  const bytes = [(field << 3) | 2];
  for (let n = length; ; n = Math.floor(n / 128)) {
    if (n < 128) { bytes.push(n); break; }
    bytes.push((n % 128) | 128);
  }
  return new Uint8Array(bytes);
}

export function valueInfo(name: string, dims: (number | string)[], elemType = FLOAT) {
  return {
    name,
    type: { tensorType: { elemType, shape: { dim: dims.map((d) => (typeof d === 'string' ? { dimParam: d } : { dimValue: d })) } } },
  };
}
