// The key/value cache of generation: per layer, keys and values [batch, kv_head, capacity, d_head]
// in preallocated buffers that grow by doubling, so a step writes only its new positions.
import { keep, tidy } from '../../tensor/engine.js';
import { Tensor } from '../../tensor/tensor.js';
import { assign } from '../../ops/layout.js';

interface LayerKV {
  k: Tensor; // [batch, kv_head, capacity, d_head]
  v: Tensor; // [batch, kv_head, capacity, d_head_v]
}

export class KVCache {
  private layers: (LayerKV | undefined)[] = [];
  /** Positions held by every layer (updated by `commit` after a step has passed all layers). */
  length = 0;
  private pending = 0;

  /** Appends k, v [batch, kv_head, t, d] at `layer`; returns views of all positions cached so far. */
  append(layer: number, k: Tensor, v: Tensor): { k: Tensor; v: Tensor } {
    const t = k.shape[2]!;
    const need = this.length + t;
    const old = this.layers[layer];
    if (!old || old.k.shape[2]! < need) {
      const cap = Math.max(need, 2 * (old?.k.shape[2] ?? 0), 16);
      const grow = (src: Tensor, prev?: Tensor) => {
        const next = keep(Tensor.empty([src.shape[0]!, src.shape[1]!, cap, src.shape[3]!], src.dtype, src.backend, 'kvCache'));
        if (prev && this.length > 0) tidy(() => assign(next.narrow(2, 0, this.length), prev.narrow(2, 0, this.length)));
        prev?.dispose();
        return next;
      };
      this.layers[layer] = { k: grow(k, old?.k), v: grow(v, old?.v) };
    }
    const kv = this.layers[layer]!;
    tidy(() => {
      assign(kv.k.narrow(2, this.length, t), k);
      assign(kv.v.narrow(2, this.length, t), v);
    });
    this.pending = t;
    return { k: kv.k.narrow(2, 0, need), v: kv.v.narrow(2, 0, need) };
  }

  /** Called once a forward step has passed every layer: its positions count from now on. */
  commit(): void {
    this.length += this.pending;
    this.pending = 0;
  }

  dispose(): void {
    for (const l of this.layers) if (l) { l.k.dispose(); l.v.dispose(); }
    this.layers = [];
    this.length = 0;
  }
}
