// A whole GPT-2-style block (LayerNorm, causal multi-head attention on one qkv product, biased
// projections, a plain MLP) as one backend call (`Backend.fusedBlock`: on wasm, one ONNX Runtime
// session per block), taken only when no one can tell the difference:
// - no hook listens inside the block: every hook point the model fires there (from
//   `CausalLM.hookPoints`) other than hook_resid_pre and hook_resid_post is unwanted, backward
//   hooks included, and the hooks are not a HookRecorder;
// - no gradient flows (the call has no backward) and nothing is cached or masked (a prompt, no
//   KV cache, no padding);
// - the parts are the plain kind (f32 weights with biases, no sparsity or delta mode, no gate).
// Otherwise, or when the backend declines, the caller runs the block op by op, as before.
// Not for: deciding the backend's side (size, memory layout: src/backends/wasm/native-gemm.ts).
import type { FusedBlockDesc } from '../../tensor/backend.js';
import { QuantizedTensor } from '../../tensor/quantized.js';
import { Tensor } from '../../tensor/tensor.js';
import type { ForwardContext } from '../model.js';
import type { Linear } from './linear.js';
import type { Mlp } from './mlp.js';
import type { Norm } from './norm.js';

export interface FusedBlockParts {
  ln1: Norm;
  ln2: Norm;
  /** q, k, v as one product [.., 3 · d_model] (q, then k, then v). */
  qkv: Linear;
  out: Linear;
  mlp: Mlp;
  nHeads: number;
  scale: number;
}

/** The block's output [batch, pos, d_model] from x (after hook_resid_pre), or undefined: run it op by op. */
export function tryFusedBlock(layer: number, x: Tensor, c: ForwardContext, p: FusedBlockParts): Tensor | undefined {
  const b = x.backend;
  if (!b.fusedBlock || c.cache || c.keyMask || x.dtype !== 'f32' || x.rank !== 3 || x.requiresGrad) return undefined;
  const { mlp } = p;
  if (mlp.up || mlp.sparse || !plainNorm(p.ln1) || !plainNorm(p.ln2)) return undefined;
  const linears = [p.qkv, p.out, mlp.in, mlp.out];
  if (!linears.every(plainLinear)) return undefined;
  const params = [p.ln1.weight!, p.ln1.bias!, p.qkv.weight, p.qkv.bias!, p.out.weight, p.out.bias!, p.ln2.weight!, p.ln2.bias!,
    mlp.in.weight, mlp.in.bias!, mlp.out.weight, mlp.out.bias!] as Tensor[];
  if (params.some((t) => t.requiresGrad || t.dtype !== 'f32')) return undefined;
  if (!quietInside(layer, c)) return undefined;
  const desc: FusedBlockDesc = {
    nHeads: p.nHeads, eps1: p.ln1.eps, eps2: p.ln2.eps, scale: p.scale, act: mlp.act,
    transB: linears.map((l) => l.layout === 'out_in') as [boolean, boolean, boolean, boolean],
  };
  const y = Tensor.empty(x.shape, 'f32', b, 'fusedBlock'); // [batch, pos, d_model]
  const where = `blocks.${layer} (fused)`;
  if (!b.fusedBlock(desc, [x, ...params].map((t) => t.view(where)), y.view(where))) {
    y.dispose();
    return undefined;
  }
  return y;
}

/** No hook can see inside block `layer`. */
function quietInside(layer: number, c: ForwardContext): boolean {
  const h = c.hooks;
  if (h.empty) return true;
  if (h.recording || !c.blockHookNames) return false;
  return c.blockHookNames(layer).every((n) => n.endsWith('.hook_resid_pre') || n.endsWith('.hook_resid_post') || !h.wants(n));
}

function plainNorm(n: Norm): boolean {
  return n.kind === 'layernorm' && !!n.weight && !!n.bias && !n.offset;
}

function plainLinear(l: Linear): boolean {
  return !!l.bias && !l.sparse && !l.delta && !(l.weight instanceof QuantizedTensor);
}
