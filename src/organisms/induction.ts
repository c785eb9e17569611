// Model organism: induction heads (Olsson et al. 2022; "What needs to go right for an induction
// head?", Singh et al. 2024). A two-layer attention-only transformer trained on [BOS] r r, r a
// random segment: the first half is unpredictable, the second can be copied from the first once
// a previous-token head (layer 0) and an induction head (layer 1) form — which happens in a
// sudden phase change of the loss. Chosen activations can be clamped during training (e.g. a
// head ablated) to test what the circuit needs.
import { Rng, tensor } from '../ops/creation.js';
import { logSoftmax } from '../ops/nn.js';
import { mul } from '../ops/elementwise.js';
import { noGrad } from '../autograd/tape.js';
import { tidy } from '../tensor/engine.js';
import type { Tensor } from '../tensor/tensor.js';
import type { CausalLM } from '../models/model.js';
import { blockHook, type HookFn } from '../models/hook-point.js';

export const INDUCTION = { vocab: 64, bos: 1, minId: 3, segment: 24 };

export function inductionConfig(): Record<string, unknown> {
  return {
    model_type: 'actlab_toy', architectures: ['ActlabToyTransformer'], d_model: 64, n_heads: 4, d_head: 16, n_layers: 2, d_mlp: 0,
    d_vocab: INDUCTION.vocab, n_ctx: 2 * INDUCTION.segment + 1, normalization: 'LN', organism: 'induction',
    bos_token_id: INDUCTION.bos,
  };
}

/**
 * Training sequences of 2·segment + 1 tokens: [BOS], a few random tokens, then a random segment
 * r (5 to 24 tokens) repeated to the end. The period varies from sequence to sequence, so only an
 * induction circuit (not a fixed positional shortcut) predicts the repeats.
 */
export function inductionTrainingData(n: number, seed: number, segment = INDUCTION.segment): number[][] {
  const rng = new Rng(seed);
  const tok = () => INDUCTION.minId + rng.int(INDUCTION.vocab - INDUCTION.minId);
  return Array.from({ length: n }, () => {
    const L = 5 + rng.int(20);
    const pre = rng.int(9);
    const r = Array.from({ length: L }, tok);
    const seq = [INDUCTION.bos, ...Array.from({ length: pre }, tok)];
    for (let i = 0; seq.length < 2 * segment + 1; i++) seq.push(r[i % L]!);
    return seq;
  });
}

/** `n` evaluation sequences [BOS] r r with r of `segment` tokens drawn from [minId, vocab). */
export function inductionData(n: number, seed: number, segment = INDUCTION.segment): number[][] {
  const rng = new Rng(seed);
  return Array.from({ length: n }, () => {
    const r = Array.from({ length: segment }, () => INDUCTION.minId + rng.int(INDUCTION.vocab - INDUCTION.minId));
    return [INDUCTION.bos, ...r, ...r];
  });
}

/**
 * Mean loss on the first repeat (positions that cannot be predicted) minus the mean loss on the
 * second repeat (positions that an induction circuit predicts): Olsson et al.'s in-context
 * learning score for this task, in nats.
 */
export function inContextLossDrop(model: CausalLM, data: readonly number[][]): { first: number; second: number; drop: number } {
  const T = data[0]!.length - 1;
  const L = (T) / 2;
  let first = 0;
  let second = 0;
  noGrad(() => {
    const ids = Int32Array.from(data.flatMap((d) => d.slice(0, T)));
    const lp = tidy(() => logSoftmax(model.forward(tensor(ids, [data.length, T], 'i32', { backend: model.backend }))).dataSync());
    const V = lp.length / (data.length * T);
    data.forEach((d, i) => {
      for (let p = 1; p < T; p++) {
        const nll = -lp[(i * T + p) * V + d[p + 1]!]!;
        if (p < L) first += nll; else second += nll;
      }
    });
  });
  first /= data.length * (L - 1);
  second /= data.length * L;
  return { first, second, drop: first - second };
}

/** Hooks that zero head `head` of layer `layer` (its hook_z), for clamped training runs. */
export function ablateHead(layer: number, head: number): [string, HookFn] {
  return [blockHook(layer, 'attn.hook_z'), (z: Tensor) => {
    const m = new Float32Array(z.shape[2]!).fill(1);
    m[head] = 0;
    return mul(z, tensor(m, [1, 1, z.shape[2]!, 1], z.dtype, { backend: z.backend }));
  }];
}
