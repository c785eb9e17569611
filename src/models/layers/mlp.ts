// The MLP sublayer, plain or gated, with TransformerLens' hook points:
//   <p>.hook_pre         [batch, pos, d_mlp]  (pre-activation; the gate projection when gated)
//   <p>.hook_pre_linear  [batch, pos, d_mlp]  (the up projection of a gated MLP)
//   <p>.hook_post        [batch, pos, d_mlp]  (after activation and gating)
// With activation sparsity set (`Mlp.sparse`, src/sparsity), the activation is sparsified before
// gating; at decode sizes the up projection is computed only where the activation is non-zero
// (`maskedMatmul`, hook_pre_linear then holds zeros there) and the down projection reads only the
// rows of non-zero activations (`sparseMatmul`).
import type { UnaryFn } from '../../tensor/backend.js';
import { add, mul, unary } from '../../ops/elementwise.js';
import { hasSparseKernels, maskedMatmul, sparseMatmul } from '../../ops/sparse.js';
import { QuantizedTensor } from '../../tensor/quantized.js';
import { SHAPE, type Hooks, type HookShape } from '../hook-point.js';
import type { Tensor } from '../../tensor/tensor.js';
import { project, type Linear } from './linear.js';

export interface Mlp {
  /** Plain MLP: the input projection. Gated MLP: the gate projection (activated). */
  in: Linear;
  /** Gated MLP only: the up projection, multiplied with the activated gate. */
  up?: Linear;
  out: Linear;
  act: UnaryFn;
  /** Activation sparsity (src/sparsity); none by default. */
  sparse?: MlpSparsity;
}

/** How an MLP's activation is made sparse, and what the sparse kernels read. */
export interface MlpSparsity {
  /** act [..., d_mlp] -> the same with zeros (top-k, a threshold, channel thresholds); owned by the caller. */
  sparsify(act: Tensor): Tensor;
  /** The down projection as f32 [d_mlp, d_model], contiguous (`sparseMatmul` reads the rows of non-zero activations). */
  downRows?: Tensor;
  /** Calls of at most this many rows (batch · pos: decode) run the sparse kernels; larger ones dense products on the zeroed activation. */
  maxKernelRows: number;
}

const ROWS: HookShape = ['batch', 'pos'];

/**
 * The MLP's output before the residual add (the caller fires hook_mlp_out). `rows` names the
 * leading dims of x in hook shapes: [batch, pos] for a block's MLP, [routed_tokens] for an expert.
 */
export function runMlp(x: Tensor, m: Mlp, hooks: Hooks, p: string, rows: HookShape = ROWS): Tensor {
  const shape = rows === ROWS ? SHAPE.mlp : [...rows, 'd_mlp'];
  if (!m.sparse && !m.up && !hooks.wants(`${p}.hook_pre`)) {
    // nothing listens at the pre-activation: the activation joins the product (one op where the backend fuses)
    const post = hooks.at(`${p}.hook_post`, project(x, m.in, m.act), shape); // [batch, pos, d_mlp]
    return project(post, m.out);
  }
  const pre = hooks.at(`${p}.hook_pre`, project(x, m.in), shape); // [batch, pos, d_mlp]
  let post = unary(m.act, pre);
  if (m.sparse) return runSparseMlp(x, post, m, m.sparse, hooks, p, shape);
  if (m.up) {
    const lin = hooks.at(`${p}.hook_pre_linear`, project(x, m.up), shape); // [batch, pos, d_mlp]
    post = mul(post, lin);
  }
  post = hooks.at(`${p}.hook_post`, post, shape); // [batch, pos, d_mlp]
  return project(post, m.out);
}

/** The MLP after its (dense) first projection, with the activation made sparse. */
function runSparseMlp(x: Tensor, act: Tensor, m: Mlp, s: MlpSparsity, hooks: Hooks, p: string, shape: HookShape): Tensor {
  act = s.sparsify(act); // [batch, pos, d_mlp]
  const rows = x.size / x.shape.at(-1)!;
  const kernels = rows <= s.maxKernelRows && hasSparseKernels(x.backend);
  let post = act;
  if (m.up) {
    const up = m.up;
    const direct = kernels && !up.bias && !(up.weight instanceof QuantizedTensor) && up.layout === 'out_in';
    const lin = hooks.at(`${p}.hook_pre_linear`, direct ? maskedMatmul(x, up.weight as Tensor, act) : project(x, up), shape); // [batch, pos, d_mlp]
    post = mul(act, lin);
  }
  post = hooks.at(`${p}.hook_post`, post, shape); // [batch, pos, d_mlp]
  if (!kernels || !s.downRows) return project(post, m.out);
  const y = sparseMatmul(post, s.downRows); // [batch, pos, d_model]
  return m.out.bias ? add(y, m.out.bias) : y;
}

/** Maps an HF `hidden_act` / `activation_function` name to the engine's unary op. */
export function activation(name: unknown, where: string): UnaryFn {
  switch (name) {
    case 'gelu_new': case 'gelu_pytorch_tanh': case 'gelu_fast': case 'gelu_tanh': return 'gelu_tanh';
    case 'gelu': return 'gelu_erf';
    case 'silu': case 'swish': return 'silu';
    case 'relu': return 'relu';
    case 'sigmoid': return 'sigmoid';
    case 'tanh': return 'tanh';
    default: throw new Error(`${where}: activation '${String(name)}' is not supported (have gelu, gelu_new, gelu_pytorch_tanh, silu, relu, sigmoid, tanh)`);
  }
}
