// The key/value cache of generation: per layer, keys and values side by side in one preallocated
// buffer [2, batch, kv_head, capacity, d_head] (keys at 0, values at 1) that grows by doubling,
// so a step writes only its new positions. When k and v are two views of one buffer with equal
// layouts (GPT-2's fused qkv product), both are written by one copy.
import { keep, tidy } from '../../tensor/engine.js';
import { Tensor } from '../../tensor/tensor.js';
import { assign } from '../../ops/layout.js';
import { shapesEqual } from '../../tensor/shape.js';

export class KVCache {
  /** Per layer: [2, batch, kv_head, capacity, d_head]. */
  private layers: (Tensor | undefined)[] = [];
  /** Positions held by every layer (updated by `commit` after a step has passed all layers). */
  length = 0;
  private pending = 0;

  /** Appends k, v [batch, kv_head, t, d] at `layer`; returns views of all positions cached so far. */
  append(layer: number, k: Tensor, v: Tensor): { k: Tensor; v: Tensor } {
    if (!shapesEqual(k.shape, v.shape) || k.dtype !== v.dtype || k.backend !== v.backend) {
      throw new Error(`KV cache: keys ${k.dtype}[${k.shape}] and values ${v.dtype}[${v.shape}] must have one shape, dtype and backend`);
    }
    const t = k.shape[2]!;
    const need = this.length + t;
    const kv = this.reserve(layer, k.shape, k.dtype, k.backend);
    tidy(() => {
      const dst = kv.narrow(3, this.length, t); // [2, batch, kv_head, t, d_head]
      const both = pairView(k, v);
      if (both) assign(dst, both);
      else {
        assign(dst.narrow(0, 0, 1).squeeze(0), k);
        assign(dst.narrow(0, 1, 1).squeeze(0), v);
      }
    });
    this.pending = t;
    return tidy(() => {
      const all = kv.narrow(3, 0, need);
      return { k: all.narrow(0, 0, 1).squeeze(0), v: all.narrow(0, 1, 1).squeeze(0) };
    });
  }

  /**
   * Layer `layer`'s whole buffer [2, batch, kv_head, capacity, d_head], grown (by doubling, the
   * cached positions kept) to hold `shape[2]` positions after those cached (shape: the new keys'
   * [batch, kv_head, t, d_head]). For a step that writes the new positions itself, then calls `wrote`.
   */
  reserve(layer: number, shape: readonly number[], dtype: Tensor['dtype'], backend: Tensor['backend']): Tensor {
    const need = this.length + shape[2]!;
    const old = this.layers[layer];
    if (!old || old.shape[3]! < need) {
      const cap = Math.max(need, 2 * (old?.shape[3] ?? 0), 16);
      const next = keep(Tensor.empty([2, shape[0]!, shape[1]!, cap, shape[3]!], dtype, backend, 'kvCache'));
      if (old && this.length > 0) tidy(() => assign(next.narrow(3, 0, this.length), old.narrow(3, 0, this.length)));
      old?.dispose();
      this.layers[layer] = next;
    }
    return this.layers[layer]!;
  }

  /** `t` new positions were written after the cached ones (into `reserve`'s buffers): counted at `commit`. */
  wrote(t: number): void {
    this.pending = t;
  }

  /** Called once a forward step has passed every layer: its positions count from now on. */
  commit(): void {
    this.length += this.pending;
    this.pending = 0;
  }

  dispose(): void {
    for (const l of this.layers) l?.dispose();
    this.layers = [];
    this.length = 0;
  }
}

/** k and v as one view [2, ...shape] when both lie in one buffer with equal strides (no gradient asked for). */
function pairView(k: Tensor, v: Tensor): Tensor | undefined {
  if (k.storageKey !== v.storageKey || v.offset <= k.offset || k.requiresGrad || v.requiresGrad || !k.strides.every((s, i) => s === v.strides[i])) return undefined;
  return k.asStrided([2, ...k.shape], [v.offset - k.offset, ...k.strides], k.offset);
}
