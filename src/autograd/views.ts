// Backward of the view methods: each view's gradient is the inverse view of the output gradient
// (reshape back, permute back, pad a slice with zeros, sum over broadcast dims).
import { pad } from '../ops/layout.js';
import { sum } from '../ops/reduce.js';
import type { Tensor, ViewKind } from '../tensor/tensor.js';

/** d(view)/d(src) applied to `g` (the gradient of the view); `from` is the source's shape. */
export function viewBackward(v: ViewKind, g: Tensor, from: readonly number[]): Tensor {
  switch (v.kind) {
    case 'share': return g.share();
    case 'reshape': return g.reshape(from);
    case 'permute': {
      const inv = new Array<number>(v.perm.length);
      v.perm.forEach((p, i) => { inv[p] = i; });
      return g.permute(inv);
    }
    case 'slice':
      return pad(g, from.map((n, i) => {
        const s = v.starts[i] ?? 0;
        return [s, n - s - g.shape[i]!] as const;
      }));
    case 'broadcast': return unbroadcast(g, from);
  }
}

/** Sums `g` over the dims that broadcasting added or repeated, giving shape `to`. */
export function unbroadcast(g: Tensor, to: readonly number[]): Tensor {
  const lead = g.rank - to.length;
  let cur = g;
  for (let i = 0; i < g.rank; i++) {
    const want = i < lead ? 1 : to[i - lead]!;
    if (want === 1 && g.shape[i] !== 1) cur = sum(cur, i, { keepDims: true });
  }
  return cur === g ? g.reshape(to) : cur.reshape(to);
}
