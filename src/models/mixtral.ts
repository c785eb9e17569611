// Mixtral (transformers' MixtralForCausalLM): the Mistral layout with a sparse MoE feed-forward:
// router `block_sparse_moe.gate`, experts w1 (gate) / w3 (up) / w2 (down), top-k renormalised.
// Also reads transformers 5's fused layout (mlp.gate, mlp.experts.gate_up_proj [E, 2·I, d],
// mlp.experts.down_proj [E, d, I]).
import type { Backend } from '../tensor/backend.js';
import { split } from '../ops/layout.js';
import { needInt } from './config.js';
import { runMoe, type Moe } from './layers/moe.js';
import { activation, type Mlp } from './layers/mlp.js';
import { Llama } from './llama.js';
import type { WeightMap } from './weights.js';

export class Mixtral extends Llama {
  constructor(config: Record<string, unknown>, weights: WeightMap, backend: Backend) {
    const nExperts = needInt(config, ['num_local_experts', 'num_experts'], 'mixtral config');
    const topK = needInt(config, ['num_experts_per_tok'], 'mixtral config');
    const act = activation(config.hidden_act ?? 'silu', 'mixtral config.hidden_act');
    super(config, weights, backend, {
      extraHooks: { experts: nExperts },
      feedForward: (w, i, p, dm) => {
        const moe: Moe = { router: { layout: 'out_in', weight: w.get(w.has(`${p}.block_sparse_moe.gate.weight`) ? `${p}.block_sparse_moe.gate.weight` : `${p}.mlp.gate.weight`, [nExperts, dm.dModel]) }, experts: [], topK, normTopK: true };
        for (let e = 0; e < nExperts; e++) moe.experts.push(expert(w, p, e, dm.dModel, dm.dMlp, act));
        return (x, c, pre) => runMoe(x, moe, c.hooks, pre);
      },
    });
    this.dims.expertsPerToken = topK;
  }
}

function expert(w: WeightMap, p: string, e: number, d: number, dMlp: number, act: Mlp['act']): Mlp {
  const old = `${p}.block_sparse_moe.experts.${e}`;
  if (w.has(`${old}.w1.weight`)) {
    return {
      in: { layout: 'out_in', weight: w.get(`${old}.w1.weight`, [dMlp, d]) },
      up: { layout: 'out_in', weight: w.get(`${old}.w3.weight`, [dMlp, d]) },
      out: { layout: 'out_in', weight: w.get(`${old}.w2.weight`, [d, dMlp]) },
      act,
    };
  }
  // transformers 5: one tensor per kind for all experts; views of expert e (no copy).
  const gateUp = w.get(`${p}.mlp.experts.gate_up_proj`);
  const down = w.get(`${p}.mlp.experts.down_proj`);
  const [g, u] = split(gateUp.narrow(0, e, 1).squeeze(0), 2, 0);
  return { in: { layout: 'out_in', weight: g! }, up: { layout: 'out_in', weight: u! }, out: { layout: 'out_in', weight: down.narrow(0, e, 1).squeeze(0) }, act };
}
