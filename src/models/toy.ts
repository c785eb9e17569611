// The small transformers that interpretability studies train from scratch ("model organisms"),
// as TransformerLens' HookedTransformer configures them: learned token and position embeddings,
// attention (optionally attention-only, no MLP), optional LayerNorm, ReLU/GELU MLP, no biases,
// untied unembedding. model_type 'actlab_toy' in config.json; weights under TransformerLens-like
// names (embed.W_E, pos_embed.W_pos, blocks.{i}.attn.W_Q ... as [out, in] linears, unembed.W_U).
import type { Backend } from '../tensor/backend.js';
import { add } from '../ops/elementwise.js';
import { gather } from '../ops/nn.js';
import type { Tensor } from '../tensor/tensor.js';
import { needInt, num } from './config.js';
import { attend } from './layers/attention.js';
import { project, type Linear } from './layers/linear.js';
import { activation, runMlp, type Mlp } from './layers/mlp.js';
import { applyNorm, type Norm } from './layers/norm.js';
import { CausalLM, type ForwardContext, type ModelDims, type SparsityParts } from './model.js';
import type { WeightMap } from './weights.js';
import { blockHook, SHAPE } from './hook-point.js';

export function toyDims(cfg: Record<string, unknown>): ModelDims {
  const w = 'actlab_toy config';
  const d = needInt(cfg, ['d_model'], w);
  const h = needInt(cfg, ['n_heads'], w);
  return {
    arch: 'actlab_toy', nLayers: needInt(cfg, ['n_layers'], w), dModel: d, nHeads: h, nKvHeads: h,
    dHead: (cfg.d_head as number | undefined) ?? d / h, dMlp: (cfg.d_mlp as number | undefined) ?? 0,
    vocabSize: needInt(cfg, ['d_vocab'], w), nCtx: needInt(cfg, ['n_ctx'], w),
  };
}

/** Weight names and shapes of a toy config (used to initialise one for training). */
export function toyWeightShapes(cfg: Record<string, unknown>): [string, number[]][] {
  const d = toyDims(cfg);
  const hd = d.nHeads * d.dHead;
  const out: [string, number[]][] = [['embed.W_E', [d.vocabSize, d.dModel]], ['pos_embed.W_pos', [d.nCtx, d.dModel]]];
  for (let i = 0; i < d.nLayers; i++) {
    if (cfg.normalization === 'LN') out.push([blockHook(i, 'ln1.w'), [d.dModel]], [blockHook(i, 'ln1.b'), [d.dModel]]);
    out.push([blockHook(i, 'attn.W_Q'), [hd, d.dModel]], [blockHook(i, 'attn.W_K'), [hd, d.dModel]], [blockHook(i, 'attn.W_V'), [hd, d.dModel]], [blockHook(i, 'attn.W_O'), [d.dModel, hd]]);
    if (d.dMlp > 0) {
      if (cfg.normalization === 'LN') out.push([blockHook(i, 'ln2.w'), [d.dModel]], [blockHook(i, 'ln2.b'), [d.dModel]]);
      out.push([blockHook(i, 'mlp.W_in'), [d.dMlp, d.dModel]], [blockHook(i, 'mlp.W_out'), [d.dModel, d.dMlp]]);
    }
  }
  if (cfg.normalization === 'LN') out.push(['ln_final.w', [d.dModel]], ['ln_final.b', [d.dModel]]);
  out.push(['unembed.W_U', [d.vocabSize, d.dModel]]);
  return out;
}

export class ToyTransformer extends CausalLM {
  readonly dims: ModelDims;
  private readonly blocks: { ln1?: Norm; ln2?: Norm; q: Linear; k: Linear; v: Linear; o: Linear; mlp?: Mlp }[];
  private readonly lnF?: Norm;
  private readonly embedW: Tensor;
  private readonly posW: Tensor;
  private readonly unembedW: Tensor;

  constructor(readonly config: Record<string, unknown>, private readonly w: WeightMap, readonly backend: Backend) {
    super();
    const dm = (this.dims = toyDims(config));
    const ln = config.normalization === 'LN';
    const eps = num(config.eps ?? 1e-5, 'actlab_toy config.eps');
    const hd = dm.nHeads * dm.dHead;
    const lin = (n: string, o: number, i: number): Linear => ({ layout: 'out_in', weight: w.get(n, [o, i]) });
    const norm = (p: string): Norm | undefined => (ln ? { kind: 'layernorm', eps, weight: w.get(`${p}.w`, [dm.dModel]), bias: w.get(`${p}.b`, [dm.dModel]) } : undefined);
    const act = activation(config.act_fn ?? 'relu', 'actlab_toy config.act_fn');
    this.blocks = Array.from({ length: dm.nLayers }, (_, i) => {
      return {
        ln1: norm(blockHook(i, 'ln1')), ln2: dm.dMlp > 0 ? norm(blockHook(i, 'ln2')) : undefined,
        q: lin(blockHook(i, 'attn.W_Q'), hd, dm.dModel), k: lin(blockHook(i, 'attn.W_K'), hd, dm.dModel), v: lin(blockHook(i, 'attn.W_V'), hd, dm.dModel), o: lin(blockHook(i, 'attn.W_O'), dm.dModel, hd),
        mlp: dm.dMlp > 0 ? { in: lin(blockHook(i, 'mlp.W_in'), dm.dMlp, dm.dModel), out: lin(blockHook(i, 'mlp.W_out'), dm.dModel, dm.dMlp), act } : undefined,
      };
    });
    this.lnF = norm('ln_final');
    this.embedW = w.get('embed.W_E', [dm.vocabSize, dm.dModel]);
    this.posW = w.get('pos_embed.W_pos', [dm.nCtx, dm.dModel]);
    this.unembedW = w.get('unembed.W_U', [dm.vocabSize, dm.dModel]);
  }

  protected embed(ids: Tensor, c: ForwardContext): Tensor {
    const maxPos = Math.max(0, ...c.positionsHost);
    if (maxPos >= this.dims.nCtx) throw new RangeError(`actlab_toy: position ${maxPos} exceeds n_ctx ${this.dims.nCtx}`);
    const tok = c.hooks.at('hook_embed', gather(this.embedW, ids), SHAPE.resid); // [batch, pos, d_model]
    const pos = c.hooks.at('hook_pos_embed', gather(this.posW, c.positions), SHAPE.resid); // [batch, pos, d_model]
    return add(tok, pos);
  }

  protected block(i: number, x: Tensor, c: ForwardContext): Tensor {
    const bl = this.blocks[i]!;
    const h = c.hooks;
    const { nHeads, dHead } = this.dims;
    x = h.at(blockHook(i, 'hook_resid_pre'), x, SHAPE.resid); // [batch, pos, d_model]
    const attnIn = h.at(blockHook(i, 'hook_attn_in'), x, SHAPE.resid); // [batch, pos, d_model]
    const xn = bl.ln1 ? applyNorm(attnIn, bl.ln1, h, blockHook(i, 'ln1')) : attnIn;
    const shape = [c.batch, c.pos, nHeads, dHead];
    const attnOut = h.at(blockHook(i, 'hook_attn_out'), attend(project(xn, bl.q).reshape(shape), project(xn, bl.k).reshape(shape), project(xn, bl.v).reshape(shape), {
      hooks: h, prefix: blockHook(i, 'attn'), layer: i, cache: c.cache, keyMask: c.keyMask, keyMaskHost: c.keyMaskHost, scale: 1 / Math.sqrt(dHead), output: bl.o,
    }), SHAPE.resid); // [batch, pos, d_model]
    if (!bl.mlp) return h.at(blockHook(i, 'hook_resid_post'), add(x, attnOut), SHAPE.resid); // [batch, pos, d_model]
    const mid = h.at(blockHook(i, 'hook_resid_mid'), add(x, attnOut), SHAPE.resid); // [batch, pos, d_model]
    const mlpIn = h.at(blockHook(i, 'hook_mlp_in'), mid, SHAPE.resid); // [batch, pos, d_model]
    const mn = bl.ln2 ? applyNorm(mlpIn, bl.ln2, h, blockHook(i, 'ln2')) : mlpIn;
    const mlpOut = h.at(blockHook(i, 'hook_mlp_out'), runMlp(mn, bl.mlp, h, blockHook(i, 'mlp')), SHAPE.resid); // [batch, pos, d_model]
    return h.at(blockHook(i, 'hook_resid_post'), add(mid, mlpOut), SHAPE.resid); // [batch, pos, d_model]
  }

  protected unembed(x: Tensor, c: ForwardContext): Tensor {
    const xn = this.lnF ? applyNorm(x, this.lnF, c.hooks, 'ln_final') : x;
    return project(xn, { layout: 'out_in', weight: this.unembedW }); // [batch, pos, d_vocab]
  }

  override sparsityParts(i: number): SparsityParts {
    return { mlp: this.blocks[i]?.mlp, q: this.blocks[i]?.q, o: this.blocks[i]?.o, attnIn: this.blocks[i] ? [this.blocks[i]!.q, this.blocks[i]!.k, this.blocks[i]!.v] : undefined };
  }

  dispose(): void {
    this.w.dispose();
  }
}
