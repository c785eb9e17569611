// GPT-NeoX / Pythia (transformers' GPTNeoXForCausalLM): LayerNorm, fused query_key_value laid out
// per head as [head, (q | k | v), d_head], partial rotary (rotary_pct), GELU MLP, parallel
// residual (use_parallel_residual, the default) or sequential, untied embed_out.
import { gather } from '../ops/nn.js';
import { split } from '../ops/layout.js';
import type { Backend } from '../tensor/backend.js';
import type { Tensor } from '../tensor/tensor.js';
import { needInt, num } from './config.js';
import { attend, type RopeInputs } from './layers/attention.js';
import { parallelBlock, sequentialBlock } from './layers/block.js';
import { project, type Linear } from './layers/linear.js';
import { activation, runMlp, type Mlp } from './layers/mlp.js';
import { applyNorm, type Norm } from './layers/norm.js';
import { readRopeConfig, RopeTable } from './layers/rope.js';
import { CausalLM, type ForwardContext, type ModelDims, type SparsityParts } from './model.js';
import type { WeightMap } from './weights.js';
import { blockHook, SHAPE } from './hook-point.js';

export function neoxDims(cfg: Record<string, unknown>): ModelDims {
  const w = 'gpt_neox config';
  const d = needInt(cfg, ['hidden_size'], w);
  const h = needInt(cfg, ['num_attention_heads'], w);
  return {
    arch: 'gpt_neox', nLayers: needInt(cfg, ['num_hidden_layers'], w), dModel: d, nHeads: h, nKvHeads: h, dHead: d / h,
    dMlp: needInt(cfg, ['intermediate_size'], w), vocabSize: needInt(cfg, ['vocab_size'], w),
    nCtx: needInt(cfg, ['max_position_embeddings'], w),
  };
}

export class GptNeox extends CausalLM {
  readonly dims: ModelDims;
  private readonly blocks: { ln1: Norm; ln2: Norm; qkv: Linear; out: Linear; mlp: Mlp }[];
  private readonly lnF: Norm;
  private readonly embedIn: Tensor;
  private readonly embedOut: Tensor;
  private readonly parallel: boolean;
  private readonly rope: RopeTable;
  private ropeNow?: RopeInputs;

  constructor(readonly config: Record<string, unknown>, private readonly w: WeightMap, readonly backend: Backend) {
    super();
    const dm = (this.dims = neoxDims(config));
    const eps = num(config.layer_norm_eps ?? 1e-5, 'gpt_neox config.layer_norm_eps');
    const d = dm.dModel;
    const ln = (n: string): Norm => ({ kind: 'layernorm', eps, weight: w.get(`${n}.weight`, [d]), bias: w.get(`${n}.bias`, [d]) });
    const lin = (n: string, out: number, inp: number): Linear => ({ layout: 'out_in', weight: w.get(`${n}.weight`, [out, inp]), bias: w.maybe(`${n}.bias`, [out]) });
    const act = activation(config.hidden_act ?? 'gelu', 'gpt_neox config.hidden_act');
    this.blocks = Array.from({ length: dm.nLayers }, (_, i) => {
      const p = `gpt_neox.layers.${i}`;
      return {
        ln1: ln(`${p}.input_layernorm`), ln2: ln(`${p}.post_attention_layernorm`),
        qkv: lin(`${p}.attention.query_key_value`, 3 * d, d), out: lin(`${p}.attention.dense`, d, d),
        mlp: { in: lin(`${p}.mlp.dense_h_to_4h`, dm.dMlp, d), out: lin(`${p}.mlp.dense_4h_to_h`, d, dm.dMlp), act },
      };
    });
    this.lnF = ln('gpt_neox.final_layer_norm');
    this.embedIn = w.get('gpt_neox.embed_in.weight', [dm.vocabSize, d]);
    this.embedOut = w.maybe('embed_out.weight', [dm.vocabSize, d]) ?? this.embedIn;
    this.parallel = config.use_parallel_residual !== false;
    this.rope = new RopeTable(readRopeConfig(config, dm.dHead, 'gpt_neox config', { partial: 0.25 }), backend);
  }

  protected override prepare(c: ForwardContext): void {
    this.ropeNow = this.rope.inputs(c.positions, c.past + c.pos, c.positionsHost);
  }

  protected embed(ids: Tensor, c: ForwardContext): Tensor {
    return c.hooks.at('hook_embed', gather(this.embedIn, ids), SHAPE.resid); // [batch, pos, d_model]
  }

  protected block(i: number, x: Tensor, c: ForwardContext): Tensor {
    const bl = this.blocks[i]!;
    const { nHeads: h, dHead: dh } = this.dims;
    const wire = this.parallel ? parallelBlock : sequentialBlock;
    return wire(i, x, c, {
      ln1: bl.ln1, ln2: bl.ln2,
      attn: (xn) => {
        const qkv = project(xn, bl.qkv).reshape([c.batch, c.pos, h, 3 * dh]);
        const [q, k, v] = split(qkv, 3, -1);
        return attend(q!, k!, v!, { hooks: c.hooks, prefix: blockHook(i, 'attn'), layer: i, rope: this.ropeNow, cache: c.cache, keyMask: c.keyMask, keyMaskHost: c.keyMaskHost, scale: 1 / Math.sqrt(dh), output: bl.out });
      },
      mlp: (xn) => runMlp(xn, bl.mlp, c.hooks, blockHook(i, 'mlp')),
    });
  }

  protected unembed(x: Tensor, c: ForwardContext): Tensor {
    return project(applyNorm(x, this.lnF, c.hooks, 'ln_final'), { layout: 'out_in', weight: this.embedOut }); // [batch, pos, d_vocab]
  }

  override sparsityParts(i: number): SparsityParts {
    return { mlp: this.blocks[i]?.mlp, o: this.blocks[i]?.out, attnIn: this.blocks[i] ? [this.blocks[i]!.qkv] : undefined };
  }

  dispose(): void {
    this.rope.dispose();
    this.w.dispose();
  }
}
