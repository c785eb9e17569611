// Head perturbation toward identity attention, and choosing the heads (Ahn et al. 2025,
// "Fine-Grained Perturbation Guidance via Attention Head Selection", arXiv 2506.10978).
//   SoftPAG: each selected head's attention map is interpolated toward the identity,
//     P' = (1 − s) · P + s · I,   s ∈ [0, 1] the perturbation strength (s = 1 is PAG's identity
//   attention: every query reads only its own value).
//   HeadHunter: heads are chosen by iterative greedy selection against an objective the user
//   gives: start from no heads; each round, try every remaining head added to the chosen set,
//   keep the one whose perturbation scores best; stop after `k` rounds (the paper's default
//   budget is small, a handful of heads per objective).
//   Perturbed-attention guidance: logits + w · (logits − logits with the heads perturbed), the
//   "guide away from a weakened model" use of the perturbation.
import type { HookFilter, HookFn } from '../models/hook-point.js';
import { tensor } from '../ops/creation.js';
import { add, mul, sub, where } from '../ops/elementwise.js';
import type { CausalLM } from '../models/model.js';
import type { Tensor } from '../tensor/tensor.js';

export interface HeadRef {
  layer: number;
  head: number;
}

function check(model: CausalLM, heads: readonly HeadRef[], strength: number): void {
  const { nLayers: L, nHeads: H } = model.dims;
  if (!(strength >= 0 && strength <= 1)) throw new RangeError(`SoftPAG: strength must be in [0, 1], got ${strength}`);
  for (const { layer, head } of heads) {
    if (!Number.isInteger(layer) || layer < 0 || layer >= L) throw new RangeError(`SoftPAG: layer ${layer} is out of range; this model has ${L} blocks (0–${L - 1})`);
    if (!Number.isInteger(head) || head < 0 || head >= H) throw new RangeError(`SoftPAG: head ${head} is out of range; this model has ${H} heads (0–${H - 1})`);
  }
}

/** Hooks at attn.hook_pattern that move the heads' attention maps toward the identity by `strength`. */
export function softPagHooks(model: CausalLM, heads: readonly HeadRef[], strength = 1): [HookFilter, HookFn][] {
  check(model, heads, strength);
  const layers = [...new Set(heads.map((h) => h.layer))].sort((a, b) => a - b);
  return layers.map((l) => [`blocks.${l}.attn.hook_pattern`, (p: Tensor) => {
    const [, H, tq, tk] = p.shape as [number, number, number, number];
    const sel = new Uint8Array(H);
    for (const h of heads) if (h.layer === l) sel[h.head] = 1;
    const eye = new Float32Array(tq * tk);
    for (let i = 0; i < tq; i++) eye[i * tk + i + tk - tq] = 1; // query i is key i + (tk − tq) (cached keys first)
    const I = tensor(eye, [1, 1, tq, tk], p.dtype, { backend: p.backend });
    const moved = add(mul(p, 1 - strength), mul(I, strength)); // [batch, head, query_pos, key_pos]
    return where(tensor(sel, [1, H, 1, 1], 'u8', { backend: p.backend }), moved, p);
  }]);
}

/** Logits + w · (logits − perturbed logits): guidance away from the model with the heads perturbed. */
export function perturbedGuidance(model: CausalLM, input: Tensor, heads: readonly HeadRef[], o: { strength?: number; scale: number }): Tensor {
  const plain = model.forward(input);
  const weak = model.withHooks(softPagHooks(model, heads, o.strength ?? 1), () => model.forward(input));
  const out = add(plain, mul(sub(plain, weak), o.scale));
  plain.dispose();
  weak.dispose();
  return out;
}

export interface HeadHunterStep {
  head: HeadRef;
  /** The objective with the heads chosen so far (this one included) perturbed. */
  score: number;
}

/**
 * HeadHunter's greedy selection: `k` rounds, each adding the head whose perturbation (with the
 * heads already chosen, at `strength`) maximises `objective` (read the model's behaviour under
 * the hooks in place, e.g. a loss on a prompt set). `candidates` default to every head.
 */
export function headHunter(
  model: CausalLM, objective: () => number,
  o: { k: number; strength?: number; candidates?: readonly HeadRef[] },
): { selected: HeadRef[]; steps: HeadHunterStep[]; baseline: number } {
  const s = o.strength ?? 1;
  const all = o.candidates ?? Array.from({ length: model.dims.nLayers * model.dims.nHeads }, (_, i) => ({ layer: Math.floor(i / model.dims.nHeads), head: i % model.dims.nHeads }));
  check(model, all, s);
  if (!Number.isInteger(o.k) || o.k < 1 || o.k > all.length) throw new RangeError(`HeadHunter: k must be 1..${all.length}, got ${o.k}`);
  const baseline = objective();
  const selected: HeadRef[] = [];
  const steps: HeadHunterStep[] = [];
  const key = (h: HeadRef) => `${h.layer}.${h.head}`;
  for (let round = 0; round < o.k; round++) {
    let best: HeadHunterStep | null = null;
    for (const h of all) {
      if (selected.some((x) => key(x) === key(h))) continue;
      const score = model.withHooks(softPagHooks(model, [...selected, h], s), objective);
      if (!Number.isFinite(score)) throw new Error(`HeadHunter: the objective gave ${score} with head L${h.layer}H${h.head} perturbed`);
      if (!best || score > best.score) best = { head: h, score };
    }
    selected.push(best!.head);
    steps.push(best!);
  }
  return { selected, steps, baseline };
}
