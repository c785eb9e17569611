// GPT-2 (transformers' GPT2LMHeadModel): learned absolute positions, pre-LN blocks, fused qkv
// Conv1D projections ([in, out]), GELU (tanh) MLP, final LayerNorm, unembedding tied to wte.
import { add } from '../ops/elementwise.js';
import { gather } from '../ops/nn.js';
import { split } from '../ops/layout.js';
import type { Backend } from '../tensor/backend.js';
import type { QuantizedTensor } from '../tensor/quantized.js';
import type { Tensor } from '../tensor/tensor.js';
import { needInt, num, pick } from './config.js';
import { attend } from './layers/attention.js';
import { sequentialBlock } from './layers/block.js';
import type { FusedBlockParts } from './layers/fused-block.js';
import type { FusedHeadParts } from './layers/fused-decode.js';
import { embedRows, project, unembedWith, type Linear } from './layers/linear.js';
import { activation, runMlp, type Mlp } from './layers/mlp.js';
import { addThenNorm, normOf, type Norm } from './layers/norm.js';
import { CausalLM, type ForwardContext, type ModelDims, type SparsityParts } from './model.js';
import type { WeightMap } from './weights.js';
import { blockHook, SHAPE } from './hook-point.js';

export function gpt2Dims(cfg: Record<string, unknown>): ModelDims {
  const w = 'gpt2 config';
  const d = needInt(cfg, ['n_embd', 'hidden_size'], w);
  const h = needInt(cfg, ['n_head', 'num_attention_heads'], w);
  return {
    arch: 'gpt2', nLayers: needInt(cfg, ['n_layer', 'num_hidden_layers'], w), dModel: d, nHeads: h, nKvHeads: h, dHead: d / h,
    dMlp: (pick(cfg, ['n_inner']) as number | undefined) ?? 4 * d, vocabSize: needInt(cfg, ['vocab_size'], w),
    nCtx: needInt(cfg, ['n_positions', 'n_ctx', 'max_position_embeddings'], w),
  };
}

export class Gpt2 extends CausalLM {
  readonly dims: ModelDims;
  private readonly blocks: { ln1: Norm; ln2: Norm; qkv: Linear; out: Linear; mlp: Mlp }[];
  private readonly lnF: Norm;
  private readonly wte: Tensor | QuantizedTensor;
  private readonly wpe: Tensor;
  /** The unembedding: wte (tied), or lm_head when the checkpoint has one (GGUF files may store `output`). */
  private readonly lmHead: Tensor | QuantizedTensor;
  private readonly scaleByLayer: boolean;

  constructor(readonly config: Record<string, unknown>, private readonly w: WeightMap, readonly backend: Backend) {
    super();
    const dm = (this.dims = gpt2Dims(config));
    const pre = w.has('transformer.wte.weight') ? 'transformer.' : '';
    const eps = num(config.layer_norm_epsilon ?? 1e-5, 'gpt2 config.layer_norm_epsilon');
    const ln = (n: string): Norm => ({ kind: 'layernorm', eps, weight: w.get(`${pre}${n}.weight`, [dm.dModel]), bias: w.get(`${pre}${n}.bias`, [dm.dModel]) });
    const conv = (n: string, i: number, o: number): Linear => w.linear(`${pre}${n}.weight`, [i, o], 'in_out', () => w.get(`${pre}${n}.bias`, [o]));
    const act = activation(config.activation_function ?? 'gelu_new', 'gpt2 config.activation_function');
    this.blocks = Array.from({ length: dm.nLayers }, (_, i) => ({
      ln1: ln(`h.${i}.ln_1`), ln2: ln(`h.${i}.ln_2`),
      qkv: conv(`h.${i}.attn.c_attn`, dm.dModel, 3 * dm.dModel),
      out: conv(`h.${i}.attn.c_proj`, dm.dModel, dm.dModel),
      mlp: { in: conv(`h.${i}.mlp.c_fc`, dm.dModel, dm.dMlp), out: conv(`h.${i}.mlp.c_proj`, dm.dMlp, dm.dModel), act },
    }));
    this.lnF = ln('ln_f');
    this.wte = w.matrix(`${pre}wte.weight`, [dm.vocabSize, dm.dModel]);
    this.wpe = w.get(`${pre}wpe.weight`, [dm.nCtx, dm.dModel]);
    this.lmHead = w.maybeMatrix('lm_head.weight', [dm.vocabSize, dm.dModel]) ?? this.wte;
    this.scaleByLayer = config.scale_attn_by_inverse_layer_idx === true;
  }

  protected embed(ids: Tensor, c: ForwardContext): Tensor {
    const maxPos = Math.max(0, ...c.positionsHost);
    if (maxPos >= this.dims.nCtx) throw new RangeError(`gpt2: position ${maxPos} exceeds the ${this.dims.nCtx} learned positions`);
    const tok = c.hooks.at('hook_embed', embedRows(this.wte, ids), SHAPE.resid); // [batch, pos, d_model]
    const pos = c.hooks.at('hook_pos_embed', gather(this.wpe, c.positions), SHAPE.resid); // [batch, pos, d_model]
    const first = this.blocks[0];
    if (!first) return add(tok, pos);
    // the first block's ln1 computed with the add where the backend fuses the two
    c.normAhead = addThenNorm(tok, pos, first.ln1, c.hooks, blockHook(0, 'ln1'));
    return c.normAhead.sum;
  }

  protected block(i: number, x: Tensor, c: ForwardContext): Tensor {
    const bl = this.blocks[i]!;
    const { nHeads: h, dHead: dh } = this.dims;
    return sequentialBlock(i, x, c, {
      ln1: bl.ln1, ln2: bl.ln2,
      attn: (xn) => {
        // Contiguous copies of q, k, v (in prefill): the tiled attention read strided views of the fused
        // projection ([batch, pos, 3, head, d_head]) 66% slower on the H200 (GPT-2-medium, T=512).
        const [q, k, v] = split(project(xn, bl.qkv), 3, -1).map((t) => t.reshape([c.batch, c.pos, h, dh])); // [batch, pos, head, d_head]
        const scale = 1 / Math.sqrt(dh) / (this.scaleByLayer ? i + 1 : 1);
        return attend(q!, k!, v!, { hooks: c.hooks, prefix: blockHook(i, 'attn'), layer: i, cache: c.cache, keyMask: c.keyMask, keyMaskHost: c.keyMaskHost, scale, output: bl.out });
      },
      mlp: (xn) => runMlp(xn, bl.mlp, c.hooks, blockHook(i, 'mlp')),
      nextNorm: i + 1 < this.blocks.length ? { norm: this.blocks[i + 1]!.ln1, prefix: blockHook(i + 1, 'ln1') } : { norm: this.lnF, prefix: 'ln_final' },
      fused: this.fusedBlockParts(i),
    });
  }

  protected override fusedBlockParts(i: number): FusedBlockParts {
    const bl = this.blocks[i]!;
    const { nHeads: h, dHead: dh } = this.dims;
    return { ln1: bl.ln1, ln2: bl.ln2, qkv: bl.qkv, out: bl.out, mlp: bl.mlp, nHeads: h, scale: 1 / Math.sqrt(dh) / (this.scaleByLayer ? i + 1 : 1) };
  }

  protected override fusedHeadParts(): FusedHeadParts {
    return { norm: this.lnF, table: this.lmHead };
  }

  protected unembed(x: Tensor, c: ForwardContext): Tensor {
    const ahead = c.normAhead;
    c.normAhead = undefined;
    const xn = normOf(x, this.lnF, c.hooks, 'ln_final', ahead);
    return unembedWith(xn, this.lmHead); // [batch, pos, d_vocab]
  }

  override sparsityParts(i: number): SparsityParts {
    return { mlp: this.blocks[i]?.mlp, o: this.blocks[i]?.out, attnIn: this.blocks[i] ? [this.blocks[i]!.qkv] : undefined };
  }

  dispose(): void {
    this.w.dispose();
  }
}
