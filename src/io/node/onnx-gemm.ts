// One-node ONNX models for ONNX Runtime's Gemm (C = op(A)·op(B)), encoded with protobufjs from the
// few messages of onnx.proto they need (field numbers as in onnx/onnx.proto, IR version 8,
// opset 17). With B as an initializer ORT packs it once when the session is created (MLAS
// prepacking); with B as an input it is packed per call. M (the rows) is a symbolic dimension, so
// one session serves every sequence length.
// Not for: anything but this one node (actlab does not run ONNX graphs).
import type * as Protobuf from 'protobufjs';

const FLOAT = 1; // TensorProto.DataType.FLOAT
const ATTR_INT = 2; // AttributeProto.AttributeType.INT

/** The subset of onnx.proto a Gemm model uses, as protobufjs JSON. */
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
        } },
        AttributeProto: { fields: { name: { type: 'string', id: 1 }, i: { type: 'int64', id: 3 }, type: { type: 'int32', id: 20 } } },
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
}

/** Encodes Gemm models; `protobuf` is the protobufjs module (loaded by the caller, as it is optional). */
export class GemmModelWriter {
  private readonly model: Protobuf.Type;

  constructor(protobuf: typeof Protobuf) {
    this.model = protobuf.Root.fromJSON(ONNX_SUBSET).lookupType('onnx.ModelProto');
  }

  /** The model bytes: inputs A (and B), output C [M, N]; B's data is copied into the bytes. */
  encode(s: GemmModelSpec): Uint8Array {
    const { K, N } = s;
    const bDims = s.transB ? [N, K] : [K, N];
    const initializer = s.weight
      ? [{ name: 'B', dims: bDims, dataType: FLOAT, rawData: new Uint8Array(s.weight.buffer, s.weight.byteOffset, s.weight.byteLength) }]
      : [];
    if (s.weight && s.weight.length !== K * N) throw new Error(`onnx gemm: weight has ${s.weight.length} elements, expected ${K}x${N}`);
    const graph = {
      name: 'actlab_gemm',
      node: [{
        input: ['A', 'B'], output: ['C'], name: 'gemm', opType: 'Gemm',
        attribute: [{ name: 'transA', i: s.transA ? 1 : 0, type: ATTR_INT }, { name: 'transB', i: s.transB ? 1 : 0, type: ATTR_INT }],
      }],
      initializer,
      input: [valueInfo('A', s.transA ? [K, 'M'] : ['M', K]), ...(s.weight ? [] : [valueInfo('B', bDims)])],
      output: [valueInfo('C', ['M', N])],
    };
    const msg = this.model.fromObject({ irVersion: 8, producerName: 'actlab', opsetImport: [{ domain: '', version: 17 }], graph });
    return this.model.encode(msg).finish();
  }
}

function valueInfo(name: string, dims: (number | string)[]) {
  return {
    name,
    type: { tensorType: { elemType: FLOAT, shape: { dim: dims.map((d) => (typeof d === 'string' ? { dimParam: d } : { dimValue: d })) } } },
  };
}
