// Induction heads (Olsson et al. 2022, "In-context Learning and Induction Heads", §2 and the
// appendix on head scores), measured on sequences of repeated random tokens [BOS] r r:
//   prefix matching: the attention a query in the second repeat pays to the token right after
//     the earlier occurrence of its own token (TransformerLens' induction score);
//   copying: whether the head's own output, read through the final norm and the unembedding,
//     ranks the token it should copy (the one after the earlier occurrence) in its top 5 — an
//     empirical stand-in for the paper's OV-circuit eigenvalue test;
//   previous token: the attention a query pays to the position just before it.
// A head is an induction head when its prefix-matching score is at least 0.4 (our threshold;
// the paper ranks heads by the score).
import { tensor } from '../ops/creation.js';
import type { CausalLM } from '../models/model.js';
import type { TensorData } from '../tensor/tensor.js';
import { blockNames, collectReads, type HostActs } from './acts.js';
import { readAsync, readSync, type Reads } from '../tensor/read.js';
import { SeededRandom, rankOf } from './stats.js';
import { blockHook } from '../models/hook-point.js';
import type { Analysis } from './registry.js';

export interface InductionOptions {
  /** Length of the random segment (default min(25, (nCtx - 1) / 2)). */
  length?: number;
  /** Sequences averaged over (default 4). */
  sequences?: number;
  seed?: number;
  /** Prepended to each sequence (default 1, the usual BOS; null for none). */
  bos?: number | null;
  /** Token ids are drawn from [minId, vocab) (default 3, past the usual special tokens). */
  minId?: number;
  /** Prefix-matching score at or above which a head is called an induction head (default 0.4). */
  threshold?: number;
  /** Also compute copying scores (needs attn.hook_result; default true). */
  copying?: boolean;
}

export interface InductionHead {
  layer: number;
  head: number;
  /** Prefix-matching score. */
  score: number;
  copying: number | null;
  prev_token: number;
}

export interface InductionResult {
  threshold: number;
  length: number;
  sequences: number[][];
  heads: InductionHead[];
  induction_heads: InductionHead[];
}

/** [BOS] r r with r distinct random ids (so each query has one earlier occurrence). */
export function repeatedRandomTokens(vocab: number, length: number, rng: SeededRandom, bos: number | null, minId = 3): number[] {
  const lo = Math.min(minId, vocab - 1);
  const r = rng.sample(vocab - lo, Math.min(length, vocab - lo)).map((x) => x + lo);
  return [...(bos === null ? [] : [bos]), ...r, ...r];
}

export function inductionScores(model: CausalLM, o: InductionOptions = {}): InductionResult {
  return readSync(inductionReads(model, o));
}

/** `inductionScores` on any backend (WebGPU included): activations read asynchronously. */
export function inductionScoresAsync(model: CausalLM, o: InductionOptions = {}): Promise<InductionResult> {
  return readAsync(inductionReads(model, o));
}

/** `inductionScores` as a read step (src/tensor/read.ts). */
export function* inductionReads(model: CausalLM, o: InductionOptions = {}): Reads<InductionResult> {
  const { nLayers: L, nHeads: H, vocabSize: V, nCtx } = model.dims;
  const bos = o.bos === undefined ? (V > 1 ? 1 : null) : o.bos;
  const n = o.length ?? Math.max(2, Math.min(25, Math.floor((nCtx - 1) / 2)));
  const rng = new SeededRandom(o.seed ?? 0);
  const seqs = Array.from({ length: o.sequences ?? 4 }, () => repeatedRandomTokens(V, n, rng, bos, o.minId));
  const copying = o.copying ?? true;
  const names = [...blockNames(model, 'attn.hook_pattern'), ...(copying ? blockNames(model, 'attn.hook_result') : [])];
  const prefix = new Float64Array(L * H);
  const prev = new Float64Array(L * H);
  const copy = new Float64Array(L * H);
  for (const ids of seqs) {
    const off = bos === null ? 0 : 1;
    const len = (ids.length - off) / 2;
    const acts: HostActs = yield* collectReads(model, ids, names);
    const T = ids.length;
    for (let l = 0; l < L; l++) {
      const p = acts.get(blockHook(l, 'attn.hook_pattern')).data; // [1, head, query, key]
      for (let h = 0; h < H; h++) {
        const A = (i: number, j: number) => p[(h * T + i) * T + j]!;
        let s = 0;
        for (let j = 0; j < len; j++) s += A(off + len + j, off + j + 1);
        prefix[l * H + h]! += s / len / seqs.length;
        let q = 0;
        for (let i = 1; i < T; i++) q += A(i, i - 1);
        prev[l * H + h]! += q / (T - 1) / seqs.length;
      }
      if (copying) {
        // The head's output at each second-repeat query, through the final norm and unembedding.
        const r = acts.get(blockHook(l, 'attn.hook_result')); // [1, pos, head, d_model]
        const d = r.shape[3]!;
        const rows = new Float32Array(H * len * d);
        for (let h = 0; h < H; h++) for (let j = 0; j < len; j++) {
          const src = ((off + len + j) * H + h) * d;
          rows.set(r.data.subarray(src, src + d), (h * len + j) * d);
        }
        const x = tensor(rows, [H, len, d], 'f32', { backend: model.backend });
        const lg = model.logitsFromResidual(x);
        x.dispose();
        let logits: TensorData;
        try {
          logits = yield lg;
        } finally {
          lg.dispose();
        }
        for (let h = 0; h < H; h++) {
          let hit = 0;
          for (let j = 0; j < len; j++) {
            const v = logits.subarray((h * len + j) * V, (h * len + j + 1) * V);
            if (rankOf(v, ids[off + j + 1]!) < 5) hit++;
          }
          copy[l * H + h]! += hit / len / seqs.length;
        }
      }
    }
  }
  const threshold = o.threshold ?? 0.4;
  const heads: InductionHead[] = [];
  for (let l = 0; l < L; l++) for (let h = 0; h < H; h++) {
    heads.push({ layer: l, head: h, score: prefix[l * H + h]!, copying: copying ? copy[l * H + h]! : null, prev_token: prev[l * H + h]! });
  }
  return { threshold, length: n, sequences: seqs, heads, induction_heads: heads.filter((x) => x.score >= threshold) };
}

export const inductionAnalysis: Analysis = {
  name: 'induction',
  options: [
    { flags: '--length <n>', help: 'random segment length', type: 'int', min: 1 },
    { flags: '--sequences <n>', help: 'sequences averaged', type: 'int', min: 1 },
    { flags: '--threshold <x>', help: 'score of an induction head (0.4)', type: 'number' },
    { flags: '--seed <n>', help: 'random seed', type: 'int', min: 0, shared: true },
  ],
  input: 'model',
  run: async ({ m }, env) => {
    const a = env.args as { length?: number; sequences?: number; threshold?: number; seed?: number };
    return inductionScoresAsync(m.model, { length: a.length, sequences: a.sequences, threshold: a.threshold, seed: a.seed, bos: m.tokenizer ? m.tokenizer.bosId : undefined });
  },
};
