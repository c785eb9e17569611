// The Llama family (transformers' LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM):
// RMSNorm, rotary embedding (rotate-half; rope scaling default/linear/dynamic/llama3/yarn),
// grouped-query attention with optional q/k/v bias (Qwen2), SwiGLU MLP, optional tied unembedding.
// Gemma, Mixtral and Qwen2-MoE reuse its parts with their differences in their own files.
import { mul } from '../ops/elementwise.js';
import type { Backend } from '../tensor/backend.js';
import type { QuantizedTensor } from '../tensor/quantized.js';
import type { Tensor } from '../tensor/tensor.js';
import { ConfigError, needInt, num, pick } from './config.js';
import { attend, type RopeInputs } from './layers/attention.js';
import { sequentialBlock } from './layers/block.js';
import { embedRows, project, type Linear } from './layers/linear.js';
import { activation, runMlp, type Mlp } from './layers/mlp.js';
import { applyNorm, type Norm } from './layers/norm.js';
import { readRopeConfig, RopeTable } from './layers/rope.js';
import { CausalLM, type ForwardContext, type ModelDims, type SparsityParts } from './model.js';
import type { WeightMap } from './weights.js';
import { blockHook, SHAPE } from './hook-point.js';

export function llamaDims(cfg: Record<string, unknown>, arch = String(cfg.model_type ?? 'llama')): ModelDims {
  const w = `${arch} config`;
  const d = needInt(cfg, ['hidden_size'], w);
  const h = needInt(cfg, ['num_attention_heads'], w);
  return {
    arch, nLayers: needInt(cfg, ['num_hidden_layers'], w), dModel: d, nHeads: h,
    nKvHeads: (pick(cfg, ['num_key_value_heads']) as number | undefined) ?? h,
    dHead: (pick(cfg, ['head_dim']) as number | undefined) ?? d / h,
    dMlp: needInt(cfg, ['intermediate_size'], w), vocabSize: needInt(cfg, ['vocab_size'], w),
    nCtx: (pick(cfg, ['max_position_embeddings']) as number | undefined) ?? 2048,
  };
}

/** The attention half of a Llama-style block: q/k/v/o projections and the rotary set-up. */
export interface LlamaAttn {
  q: Linear;
  k: Linear;
  v: Linear;
  o: Linear;
}

export function loadLlamaAttn(w: WeightMap, p: string, dm: ModelDims, bias: boolean, oBias = false): LlamaAttn {
  const lin = (n: string, out: number, inp: number, b: boolean): Linear =>
    w.linear(`${p}.${n}.weight`, [out, inp], 'out_in', () => (b ? w.get(`${p}.${n}.bias`, [out]) : w.maybe(`${p}.${n}.bias`, [out])));
  return {
    q: lin('q_proj', dm.nHeads * dm.dHead, dm.dModel, bias),
    k: lin('k_proj', dm.nKvHeads * dm.dHead, dm.dModel, bias),
    v: lin('v_proj', dm.nKvHeads * dm.dHead, dm.dModel, bias),
    o: lin('o_proj', dm.dModel, dm.nHeads * dm.dHead, oBias),
  };
}

/** Shared machinery of the rotary, RMSNorm decoders (Llama, Mistral, Qwen2, Gemma, Mixtral, Qwen2-MoE). */
export abstract class RotaryDecoder extends CausalLM {
  abstract override readonly dims: ModelDims;
  protected abstract readonly attn: LlamaAttn[];
  protected abstract readonly norms: { ln1: Norm; ln2: Norm }[];
  protected abstract readonly lnF: Norm;
  protected abstract readonly embedTokens: Tensor | QuantizedTensor;
  protected abstract readonly lmHead: Tensor | QuantizedTensor;
  protected abstract readonly rope: RopeTable;
  protected abstract readonly weights: WeightMap;
  /** Multiplies the token embeddings (Gemma: sqrt(d_model)). */
  protected embedScale = 1;
  private ropeNow?: RopeInputs;

  protected abstract mlpOf(layer: number, x: Tensor, c: ForwardContext): Tensor;

  /** Mistral's sliding window (a query sees the last `slidingWindow` keys), when shorter than the context. */
  protected slidingWindow?: number;

  protected override prepare(c: ForwardContext): void {
    this.ropeNow = this.rope.inputs(c.positions, c.past + c.pos, c.positionsHost);
  }

  protected embed(ids: Tensor, c: ForwardContext): Tensor {
    let x = embedRows(this.embedTokens, ids);
    if (this.embedScale !== 1) x = mul(x, this.embedScale); // a scalar of x's dtype, as transformers rounds it
    return c.hooks.at('hook_embed', x, SHAPE.resid); // [batch, pos, d_model]
  }

  protected block(i: number, x: Tensor, c: ForwardContext): Tensor {
    const a = this.attn[i]!;
    const { nHeads, nKvHeads, dHead } = this.dims;
    return sequentialBlock(i, x, c, {
      ...this.norms[i]!,
      attn: (xn) => {
        const q = project(xn, a.q).reshape([c.batch, c.pos, nHeads, dHead]);
        const k = project(xn, a.k).reshape([c.batch, c.pos, nKvHeads, dHead]);
        const v = project(xn, a.v).reshape([c.batch, c.pos, nKvHeads, dHead]);
        return attend(q, k, v, {
          hooks: c.hooks, prefix: blockHook(i, 'attn'), layer: i, rope: this.ropeNow, cache: c.cache,
          keyMask: c.keyMask, keyMaskHost: c.keyMaskHost, scale: this.attnScale(), output: a.o, slidingWindow: this.slidingWindow,
        });
      },
      mlp: (xn) => this.mlpOf(i, xn, c),
    });
  }

  protected attnScale(): number {
    return 1 / Math.sqrt(this.dims.dHead);
  }

  protected unembed(x: Tensor, c: ForwardContext): Tensor {
    const xn = applyNorm(x, this.lnF, c.hooks, 'ln_final');
    return project(xn, { layout: 'out_in', weight: this.lmHead }); // [batch, pos, d_vocab]
  }


  dispose(): void {
    this.rope.dispose();
    this.weights.dispose();
  }
}

export function rmsNorm(w: WeightMap, name: string, d: number, eps: number, offset = 0): Norm {
  return { kind: 'rmsnorm', eps, offset, weight: w.get(name, [d]) };
}

/** What Llama's relatives change: the norm offset, the activation, the feed-forward sublayer. */
export interface LlamaVariant {
  normOffset?: number;
  defaultAct?: string;
  actKey?: string;
  /** Builds layer i's feed-forward sublayer; the default is the SwiGLU MLP. */
  feedForward?: (w: WeightMap, layer: number, prefix: string, dims: ModelDims) => FeedForward;
  extraHooks?: { experts?: number };
}

/** normalized input [batch, pos, d_model] -> output [batch, pos, d_model], firing hooks under `blocks.{i}.mlp`. */
export type FeedForward = (x: Tensor, c: ForwardContext, prefix: string) => Tensor;

export class Llama extends RotaryDecoder {
  readonly dims: ModelDims;
  protected readonly attn: LlamaAttn[];
  protected readonly norms: { ln1: Norm; ln2: Norm }[];
  protected readonly lnF: Norm;
  protected readonly embedTokens: Tensor | QuantizedTensor;
  protected readonly lmHead: Tensor | QuantizedTensor;
  protected readonly rope: RopeTable;
  private readonly ffs: FeedForward[];
  private readonly mlps: (Mlp | undefined)[] = [];
  private readonly variant: LlamaVariant;

  constructor(readonly config: Record<string, unknown>, protected readonly weights: WeightMap, readonly backend: Backend, variant: LlamaVariant = {}) {
    super();
    this.variant = variant;
    const arch = String(config.model_type ?? 'llama');
    const dm = (this.dims = { ...llamaDims(config, arch), ...(variant.extraHooks?.experts ? { nExperts: variant.extraHooks.experts } : {}) });
    const w = weights;
    const eps = num(config.rms_norm_eps ?? 1e-6, `${arch} config.rms_norm_eps`);
    const qkvBias = arch === 'qwen2' || arch === 'qwen2_moe' || config.attention_bias === true;
    const mlpBias = config.mlp_bias === true;
    const act = activation(config[variant.actKey ?? 'hidden_act'] ?? variant.defaultAct ?? 'silu', `${arch} config.${variant.actKey ?? 'hidden_act'}`);
    const off = variant.normOffset ?? 0;
    if (config.use_sliding_window === true || (arch === 'mistral' && typeof config.sliding_window === 'number' && config.sliding_window < dm.nCtx)) {
      this.slidingWindow = Number(config.sliding_window);
    }
    this.attn = [];
    this.norms = [];
    this.ffs = [];
    for (let i = 0; i < dm.nLayers; i++) {
      const p = `model.layers.${i}`;
      this.attn.push(loadLlamaAttn(w, `${p}.self_attn`, dm, qkvBias, config.attention_bias === true && !arch.startsWith('qwen2')));
      this.norms.push({ ln1: rmsNorm(w, `${p}.input_layernorm.weight`, dm.dModel, eps, off), ln2: rmsNorm(w, `${p}.post_attention_layernorm.weight`, dm.dModel, eps, off) });
      if (variant.feedForward) {
        this.ffs.push(variant.feedForward(w, i, p, dm));
      } else {
        const mlp = swiGlu(w, `${p}.mlp`, dm.dModel, dm.dMlp, act, mlpBias);
        this.mlps[i] = mlp;
        this.ffs.push((x, c, pre) => runMlp(x, mlp, c.hooks, pre));
      }
    }
    this.lnF = rmsNorm(w, 'model.norm.weight', dm.dModel, eps, off);
    this.embedTokens = w.matrix('model.embed_tokens.weight', [dm.vocabSize, dm.dModel]);
    this.lmHead = w.maybeMatrix('lm_head.weight', [dm.vocabSize, dm.dModel]) ?? this.embedTokens;
    if (!w.has('lm_head.weight') && config.tie_word_embeddings === false) {
      throw new ConfigError(`${arch}: lm_head.weight is missing and tie_word_embeddings is false`);
    }
    this.rope = new RopeTable(readRopeConfig(config, dm.dHead, `${arch} config`), backend);
  }

  protected mlpOf(i: number, x: Tensor, c: ForwardContext): Tensor {
    return this.ffs[i]!(x, c, blockHook(i, 'mlp'));
  }

  override sparsityParts(i: number): SparsityParts {
    const a = this.attn[i];
    return { mlp: this.mlps[i], q: a?.q, o: a?.o, attnIn: a ? [a.q, a.k, a.v] : undefined };
  }

}

/** gate_proj / up_proj / down_proj of a gated MLP in HF layout. */
export function swiGlu(w: WeightMap, p: string, d: number, dMlp: number, act: Mlp['act'], bias = false): Mlp {
  const lin = (n: string, out: number, inp: number): Linear => w.linear(`${p}.${n}.weight`, [out, inp], 'out_in', () => (bias ? w.get(`${p}.${n}.bias`, [out]) : undefined));
  return { in: lin('gate_proj', dMlp, d), up: lin('up_proj', dMlp, d), out: lin('down_proj', d, dMlp), act };
}
