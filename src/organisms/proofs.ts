// Interventions on the trained organisms, as proofs that they find what the models learned:
//  - induction (Olsson et al. 2022): zeroing the induction heads removes the in-context loss drop;
//    patching the clean run's induction-head outputs into a run whose first repeat is scrambled
//    restores it; activation, attribution and relevance patching (RelP) rank the heads, and their
//    correlations say which gradient approximation tracks activation patching better here.
//  - modular addition (Nanda et al. 2023): removing the key Fourier frequencies from the token
//    embedding destroys held-out accuracy; removing every other frequency leaves it intact.
import { noGrad } from '../autograd/tape.js';
import { inductionScores } from '../analysis/induction.js';
import { pearson } from '../analysis/stats.js';
import { runWithCache } from '../hooks/run.js';
import type { HookFn } from '../models/hook-point.js';
import { Rng, tensor } from '../ops/creation.js';
import { mul, where } from '../ops/elementwise.js';
import { gather, logSoftmax } from '../ops/nn.js';
import { sum } from '../ops/reduce.js';
import { activationPatching, attributionPatching, type PatchingResult } from '../interventions/patching.js';
import { relevancePatching } from '../interventions/relp.js';
import { keep, tidy } from '../tensor/engine.js';
import type { Tensor } from '../tensor/tensor.js';
import type { CausalLM } from '../models/model.js';
import { withInterventions } from '../interventions/apply.js';
import type { Intervention } from '../interventions/intervention.js';
import { evaluate } from './common.js';
import { INDUCTION, inContextLossDrop, inductionData } from './induction.js';
import { P } from './modular-addition.js';

type Drop = { first: number; second: number; drop: number };

export interface InductionProof {
  /** Heads with an induction score ≥ 0.4 (the analysis of src/analysis/induction.ts). */
  heads: { layer: number; head: number; score: number }[];
  /** In-context loss drop on [BOS] r r: intact, and with the induction heads' outputs zeroed. */
  intact: Drop;
  ablated: Drop;
  /** On [BOS] r' r (first repeat scrambled): as is, and with the clean run's induction-head outputs patched in. */
  corrupted: Drop;
  restored: Drop;
  /** Per method: the effect of each head (rows: sequences × layers, columns: heads) on −NLL of the second repeat. */
  patching: { activation: number[][]; attribution: number[][]; relp: number[][] };
  /** Pearson correlation with activation patching over every head of every sequence, and per layer. */
  correlation: { attribution: number; relp: number; byLayer: { layer: number; attribution: number; relp: number }[] };
}

/** A mask over [1, T, V] selecting the targets of the second repeat, each weighted 1/count. */
function secondRepeatMetric(seq: readonly number[], backend: CausalLM['backend'], vocab: number): (logits: Tensor) => Tensor {
  const T = seq.length - 1;
  const L = T / 2;
  const m = new Float32Array(T * vocab);
  for (let p = L; p < T; p++) m[p * vocab + seq[p + 1]!] = 1 / (T - L);
  const mask = keep(tensor(m, [1, T, vocab], 'f32', { backend }));
  // −(mean NLL over the second repeat): larger is better.
  return (logits) => sum(mul(logSoftmax(logits), mask).reshape([-1]), 0);
}

/** Interventions that zero the output (hook_z) of the given heads at every position. */
export function ablateHeads(heads: readonly { layer: number; head: number }[]): Intervention[] {
  const layers = [...new Set(heads.map((h) => h.layer))];
  return layers.map((l) => ({ hook: `blocks.${l}.attn.hook_z`, unit: { heads: heads.filter((h) => h.layer === l).map((h) => h.head) }, op: 'zero' }));
}

/** Hooks that replace the given heads' output by `from`'s (the activation patching of a whole batch). */
function patchHeads(heads: { layer: number; head: number }[], from: Map<number, Tensor>): [string, HookFn][] {
  const layers = [...new Set(heads.map((h) => h.layer))];
  return layers.map((l) => [`blocks.${l}.attn.hook_z`, (z: Tensor) => {
    const H = z.shape[2]!;
    const sel = new Uint8Array(H);
    for (const h of heads) if (h.layer === l) sel[h.head] = 1;
    const m = tensor(sel, [1, 1, H, 1], 'u8', { backend: z.backend });
    return where(m, from.get(l)!, z);
  }]);
}

/** The induction proof on `sequences` held-out [BOS] r r sequences of the induction organism. */
export function inductionProof(model: CausalLM, o: { sequences?: number; seed?: number; patchSequences?: number; corruptTokens?: number } = {}): InductionProof {
  const n = o.sequences ?? 32;
  const seed = o.seed ?? 1001;
  const clean = inductionData(n, seed);
  const rng = new Rng(seed + 1);
  const seg = INDUCTION.segment;
  // The first repeat scrambled: its last `corruptTokens` tokens (default all) replaced by other random tokens.
  const nc = o.corruptTokens ?? seg;
  const other = (t: number) => { let u = t; while (u === t) u = INDUCTION.minId + rng.int(INDUCTION.vocab - INDUCTION.minId); return u; };
  const corrupt = clean.map((s) => s.map((t, i) => (i > seg - nc && i <= seg ? other(t) : t)));
  const ind = inductionScores(model, { length: seg, bos: INDUCTION.bos, minId: INDUCTION.minId, sequences: 8, copying: false });
  const heads = ind.heads.filter((h) => h.score >= 0.4).map((h) => ({ layer: h.layer, head: h.head, score: h.score }));
  if (heads.length === 0) throw new Error('inductionProof: the model has no head with an induction score ≥ 0.4');
  const intact = inContextLossDrop(model, clean);
  const ablated = withInterventions(model, ablateHeads(heads), () => inContextLossDrop(model, clean));
  const corrupted = inContextLossDrop(model, corrupt);
  // The clean run's head outputs, for the whole batch, patched into the corrupted batch.
  const T = clean[0]!.length - 1;
  const layers = [...new Set(heads.map((h) => h.layer))];
  const z = noGrad(() => {
    const x = tensor(clean.flatMap((s) => s.slice(0, T)), [n, T], 'i32', { backend: model.backend });
    const r = runWithCache(model, x, { names: layers.map((l) => `blocks.${l}.attn.hook_z`) });
    const out = new Map(layers.map((l) => [l, keep(r.cache.get(`blocks.${l}.attn.hook_z`).share())]));
    r.logits.dispose(); r.cache.dispose(); x.dispose();
    return out;
  });
  let restored: Drop;
  try {
    restored = model.withHooks(patchHeads(heads, z), () => inContextLossDrop(model, corrupt));
  } finally {
    for (const t of z.values()) t.dispose();
  }
  // Head-level patching, sequence by sequence (the noising direction: corrupted heads into the clean run).
  const k = Math.min(n, o.patchSequences ?? 8);
  const rows = { activation: [] as number[][], attribution: [] as number[][], relp: [] as number[][] };
  for (let i = 0; i < k; i++) {
    const metric = secondRepeatMetric(clean[i]!, model.backend, model.dims.vocabSize);
    const a = tensor(clean[i]!.slice(0, T), [1, T], 'i32', { backend: model.backend });
    const b = tensor(corrupt[i]!.slice(0, T), [1, T], 'i32', { backend: model.backend });
    const add = (key: keyof typeof rows, r: PatchingResult) => rows[key].push(...r.effects.map((e) => Array.from(e)));
    add('activation', activationPatching(model, a, b, metric, 'heads'));
    add('attribution', attributionPatching(model, a, b, metric, 'heads'));
    add('relp', relevancePatching(model, a, b, metric, 'heads'));
    a.dispose();
    b.dispose();
  }
  const L = model.dims.nLayers;
  return {
    heads, intact, ablated, corrupted, restored, patching: rows,
    correlation: {
      attribution: pearson(rows.activation.flat(), rows.attribution.flat()), relp: pearson(rows.activation.flat(), rows.relp.flat()),
      byLayer: Array.from({ length: L }, (_, l) => {
        const of = (rs: number[][]) => rs.filter((_, i) => i % L === l).flat();
        return { layer: l, attribution: pearson(of(rows.activation), of(rows.attribution)), relp: pearson(of(rows.activation), of(rows.relp)) };
      }),
    },
  };
}

/**
 * The token embedding with frequencies `freqs` removed: W_E − B Bᵀ W_E over the number tokens
 * 0..p−1, B the orthonormal cos/sin basis vectors of those frequencies over the tokens (the
 * directions of the Fourier analysis); the '=' token is unchanged. [p + 1, d_model]
 */
export function fourierAblatedEmbedding(model: CausalLM, freqs: readonly number[], p = P): Float32Array {
  const WE = tidy(() => model.parameters().get('embed.W_E')!.dataSync());
  const d = model.dims.dModel;
  const out = Float32Array.from(WE);
  for (const k of freqs) {
    if (!Number.isInteger(k) || k < 1 || k > (p - 1) / 2) throw new RangeError(`Fourier frequency ${k} is outside 1..${(p - 1) / 2}`);
    for (const f of [Math.cos, Math.sin]) {
      const b = Float64Array.from({ length: p }, (_, x) => f((2 * Math.PI * k * x) / p) * Math.sqrt(2 / p));
      for (let j = 0; j < d; j++) {
        let c = 0;
        for (let x = 0; x < p; x++) c += b[x]! * WE[x * d + j]!;
        for (let x = 0; x < p; x++) out[x * d + j]! -= b[x]! * c;
      }
    }
  }
  return out;
}

/** Accuracy and loss at '=' over `data` ([a, b, =, c] rows) with the embedding's frequencies `freqs` ablated. */
export function fourierAblation(model: CausalLM, freqs: readonly number[], data: readonly number[][], p = P): { accuracy: number; loss: number } {
  const table = fourierAblatedEmbedding(model, freqs, p);
  const d = model.dims.dModel;
  const WE = keep(tensor(table, [p + 1, d], 'f32', { backend: model.backend }));
  let correct = 0;
  let loss = 0;
  try {
    noGrad(() => {
      for (let s = 0; s < data.length; s += 2048) {
        const part = data.slice(s, s + 2048);
        tidy(() => {
          const ids = tensor(part.flatMap((r) => r.slice(0, 3)), [part.length, 3], 'i32', { backend: model.backend });
          const ablated = gather(WE, ids); // [batch, 3, d_model]
          const logits = model.withHooks([['hook_embed', () => ablated.share()]], () => model.forward(ids));
          const lp = logSoftmax(logits.narrow(1, 2, 1)).dataSync();
          const V = lp.length / part.length;
          part.forEach((r, i) => {
            const row = lp.subarray(i * V, (i + 1) * V);
            let best = 0;
            for (let v = 1; v < V; v++) if (row[v]! > row[best]!) best = v;
            if (best === r[3]) correct++;
            loss -= row[r[3]!]!;
          });
        });
      }
    });
  } finally {
    WE.dispose();
  }
  return { accuracy: correct / data.length, loss: loss / data.length };
}

/**
 * Orthonormal directions in d_model spanned by the embedding's components at frequencies
 * `freqs` (Wᵀ_E c_k and Wᵀ_E s_k, Gram–Schmidt): the residual-stream directions those
 * frequencies write at hook_embed. Rows of [n, d_model].
 */
export function fourierDirections(model: CausalLM, freqs: readonly number[], p = P): number[][] {
  const WE = tidy(() => model.parameters().get('embed.W_E')!.dataSync());
  const d = model.dims.dModel;
  const out: number[][] = [];
  for (const k of freqs) {
    for (const f of [Math.cos, Math.sin]) {
      const v = new Float64Array(d);
      for (let x = 0; x < p; x++) {
        const b = f((2 * Math.PI * k * x) / p);
        for (let j = 0; j < d; j++) v[j]! += b * WE[x * d + j]!;
      }
      for (const u of out) {
        const c = u.reduce((s, uj, j) => s + uj * v[j]!, 0);
        for (let j = 0; j < d; j++) v[j]! -= c * u[j]!;
      }
      const n = Math.hypot(...v);
      if (n > 1e-6) out.push(Array.from(v, (x) => x / n));
    }
  }
  return out;
}

/**
 * Accuracy and loss at '=' over `data` with the residual-stream directions of frequencies
 * `freqs` projected out at hook_embed: one `project_out` intervention per direction.
 */
export function fourierDirectionAblation(model: CausalLM, freqs: readonly number[], data: readonly number[][], p = P): { directions: number; accuracy: number; loss: number } {
  const dirs = fourierDirections(model, freqs, p);
  const list = dirs.map((vector) => ({ hook: 'hook_embed', positions: [0, 1], op: 'project_out', vector }));
  return { directions: dirs.length, ...withInterventions(model, list, () => evaluate(model, data, [2])) };
}
