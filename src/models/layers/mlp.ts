// The MLP sublayer, plain or gated, with TransformerLens' hook points:
//   <p>.hook_pre         [batch, pos, d_mlp]  (pre-activation; the gate projection when gated)
//   <p>.hook_pre_linear  [batch, pos, d_mlp]  (the up projection of a gated MLP)
//   <p>.hook_post        [batch, pos, d_mlp]  (after activation and gating)
import type { UnaryFn } from '../../tensor/backend.js';
import { mul, unary } from '../../ops/elementwise.js';
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
}

const ROWS: HookShape = ['batch', 'pos'];

/**
 * The MLP's output before the residual add (the caller fires hook_mlp_out). `rows` names the
 * leading dims of x in hook shapes: [batch, pos] for a block's MLP, [routed_tokens] for an expert.
 */
export function runMlp(x: Tensor, m: Mlp, hooks: Hooks, p: string, rows: HookShape = ROWS): Tensor {
  const shape = rows === ROWS ? SHAPE.mlp : [...rows, 'd_mlp'];
  const pre = hooks.at(`${p}.hook_pre`, project(x, m.in), shape); // [batch, pos, d_mlp]
  let post = unary(m.act, pre);
  if (m.up) {
    const lin = hooks.at(`${p}.hook_pre_linear`, project(x, m.up), shape); // [batch, pos, d_mlp]
    post = mul(post, lin);
  }
  post = hooks.at(`${p}.hook_post`, post, shape); // [batch, pos, d_mlp]
  return project(post, m.out);
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
