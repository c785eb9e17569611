// ActivationCache: the activations one forward pass kept, by hook name, with TransformerLens'
// analyses of the residual stream: accumulated residual per layer, decomposition into embedding /
// attention / MLP (and per-head) components, the logit lens, memory accounting, dispose.
import { stack } from '../ops/layout.js';
import { byteSize } from '../tensor/dtype.js';
import { tidy } from '../tensor/engine.js';
import type { Tensor } from '../tensor/tensor.js';
import type { CausalLM } from '../models/model.js';
import { blockHook } from '../models/hook-point.js';

export class ActivationCache {
  constructor(private readonly entries: Map<string, Tensor>, readonly model: CausalLM) {}

  names(): string[] {
    return [...this.entries.keys()];
  }

  has(name: string): boolean {
    return this.entries.has(name);
  }

  /** The activation at `name` (owned by the cache: share() it to keep it past dispose). */
  get(name: string): Tensor {
    const t = this.entries.get(name);
    if (!t) throw new Error(`ActivationCache: '${name}' was not cached (cached: ${this.names().slice(0, 8).join(', ')}${this.entries.size > 8 ? ', …' : ''}); ask for it in runWithCache's names`);
    return t;
  }

  /** Bytes held by the cached tensors (views of one buffer count once per view). */
  bytes(): number {
    let n = 0;
    for (const t of this.entries.values()) n += byteSize(t.dtype, t.size);
    return n;
  }

  /**
   * The residual stream entering each block 0..layer-1 and, when `layer` is the block count, the
   * final residual: [components, batch, pos, d_model], with labels ('0_pre', ..., 'final_post').
   * Needs hook_resid_pre of those blocks (and the last block's hook_resid_post for the final one).
   */
  accumulatedResid(layer = this.model.dims.nLayers): { resid: Tensor; labels: string[] } {
    const L = this.model.dims.nLayers;
    const parts: Tensor[] = [];
    const labels: string[] = [];
    for (let i = 0; i < Math.min(layer + 1, L); i++) {
      parts.push(this.get(blockHook(i, 'hook_resid_pre')));
      labels.push(`${i}_pre`);
    }
    if (layer >= L) {
      parts.push(this.get(blockHook(L - 1, 'hook_resid_post')));
      labels.push('final_post');
    }
    return { resid: stack(parts), labels };
  }

  /**
   * The residual stream before block `layer` (the final residual when `layer` is the block count)
   * as a sum of components: embed, pos_embed (absolute-position models), and each earlier block's
   * attention and MLP output: [components, batch, pos, d_model] with labels.
   */
  decomposeResid(layer = this.model.dims.nLayers): { components: Tensor; labels: string[] } {
    const parts: Tensor[] = [this.get('hook_embed')];
    const labels = ['embed'];
    if (this.has('hook_pos_embed')) { parts.push(this.get('hook_pos_embed')); labels.push('pos_embed'); }
    for (let i = 0; i < layer; i++) {
      parts.push(this.get(blockHook(i, 'hook_attn_out')), this.get(blockHook(i, 'hook_mlp_out')));
      labels.push(`${i}_attn_out`, `${i}_mlp_out`);
    }
    return { components: stack(parts), labels };
  }

  /** Per-head outputs of every block before `layer`: [layer·head, batch, pos, d_model] (needs attn.hook_result). */
  stackHeadResults(layer = this.model.dims.nLayers): { results: Tensor; labels: string[] } {
    const labels: string[] = [];
    const results = tidy(() => {
      const parts: Tensor[] = [];
      for (let i = 0; i < layer; i++) {
        const r = this.get(blockHook(i, 'attn.hook_result')); // [batch, pos, head, d_model]
        for (let h = 0; h < r.shape[2]!; h++) {
          parts.push(r.narrow(2, h, 1).squeeze(2));
          labels.push(`L${i}H${h}`);
        }
      }
      return stack(parts);
    });
    return { results, labels };
  }

  /** Logits [..., vocab] of residual states [..., pos, d_model] through the final norm and unembedding. */
  logitLens(resid: Tensor): Tensor {
    const lead = resid.shape.slice(0, -2);
    const [pos, d] = resid.shape.slice(-2) as [number, number];
    return tidy(() => {
      const x = resid.reshape([-1, pos, d]);
      const logits = this.model.logitsFromResidual(x);
      return logits.reshape([...lead, pos, logits.shape.at(-1)!]);
    });
  }

  dispose(): void {
    for (const t of this.entries.values()) t.dispose();
    this.entries.clear();
  }
}
