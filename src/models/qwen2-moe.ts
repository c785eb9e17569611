// Qwen2-MoE (transformers' Qwen2MoeForCausalLM): Qwen2 attention (q/k/v bias) with a sparse MoE
// feed-forward: router `mlp.gate`, experts gate/up/down_proj of moe_intermediate_size, top-k
// renormalised when norm_topk_prob, plus a shared expert scaled by sigmoid(shared_expert_gate(x)).
// Layers listed in mlp_only_layers, or off the decoder_sparse_step grid, keep a dense MLP.
import type { Backend } from '../tensor/backend.js';
import { needInt } from './config.js';
import { runMoe, type Moe } from './layers/moe.js';
import { activation, runMlp } from './layers/mlp.js';
import { Llama, swiGlu } from './llama.js';
import type { WeightMap } from './weights.js';

export class Qwen2Moe extends Llama {
  constructor(config: Record<string, unknown>, weights: WeightMap, backend: Backend) {
    const w0 = 'qwen2_moe config';
    const nExperts = needInt(config, ['num_experts'], w0);
    const topK = needInt(config, ['num_experts_per_tok'], w0);
    const dExpert = needInt(config, ['moe_intermediate_size'], w0);
    const dShared = config.shared_expert_intermediate_size as number | undefined;
    const step = (config.decoder_sparse_step as number | undefined) ?? 1;
    const dense = new Set((config.mlp_only_layers as number[] | undefined) ?? []);
    const act = activation(config.hidden_act ?? 'silu', `${w0}.hidden_act`);
    super(config, weights, backend, {
      extraHooks: { experts: nExperts },
      feedForward: (w, i, p, dm) => {
        if (dense.has(i) || !(nExperts > 0 && (i + 1) % step === 0)) {
          const mlp = swiGlu(w, `${p}.mlp`, dm.dModel, dm.dMlp, act);
          return (x, c, pre) => runMlp(x, mlp, c.hooks, pre);
        }
        const moe: Moe = {
          router: { layout: 'out_in', weight: w.get(`${p}.mlp.gate.weight`, [nExperts, dm.dModel]) },
          experts: Array.from({ length: nExperts }, (_, e) => swiGlu(w, `${p}.mlp.experts.${e}`, dm.dModel, dExpert, act)),
          topK, normTopK: config.norm_topk_prob === true,
        };
        if (dShared && w.has(`${p}.mlp.shared_expert.gate_proj.weight`)) {
          moe.shared = { mlp: swiGlu(w, `${p}.mlp.shared_expert`, dm.dModel, dShared, act), gate: { layout: 'out_in', weight: w.get(`${p}.mlp.shared_expert_gate.weight`, [1, dm.dModel]) } };
        }
        return (x, c, pre) => runMoe(x, moe, c.hooks, pre);
      },
    });
    this.dims.expertsPerToken = topK;
  }
}
