// Mixed precision under a bits-per-weight budget, after RAMP's recipe (per-layer sensitivity
// measured on calibration data, bit widths allocated to meet an average bits-per-weight target):
// each packable matrix's sensitivity to each format of a ladder (int4 g128 / g64 / g32, int4
// asymmetric g32, int8) is the mean KL divergence of the model's next-token distribution on
// calibration tokens when that matrix alone is quantized (fake quantization, src/quantize/fake.ts);
// the allocation starts every matrix at its cheapest format and, while the budget allows, takes
// the upgrade with the largest KL reduction per added bit (a greedy knapsack over the ladder).
// `uniformAt` gives the single format of the ladder a uniform allocation affords at the same
// budget, for the comparison.
import type { CausalLM } from '../models/model.js';
import { tensor } from '../ops/creation.js';
import { logSoftmax } from '../ops/nn.js';
import { tidy } from '../tensor/engine.js';
import { bitsPerWeight, type ActlabQuantType } from '../quant/formats.js';
import { fakeQuantParameter, setParameter } from './fake.js';
import { packRole } from './write.js';

export const MIXED_LADDER: ActlabQuantType[] = ['int4_g128', 'int4_g64', 'int4_g32', 'int4a_g32', 'int8'];

/** Mean KL(p ‖ q) over rows of log-probabilities [n, V]. */
export function meanKl(p: Float32Array, q: Float32Array, V: number): number {
  let kl = 0;
  const n = p.length / V;
  for (let r = 0; r < n; r++) {
    let s = 0;
    for (let v = r * V; v < (r + 1) * V; v++) { const a = p[v]!; if (a > -Infinity) s += Math.exp(a) * (a - q[v]!); }
    kl += s;
  }
  return kl / n;
}

/** Log-probabilities of the model on calibration chunks, concatenated [tokens, V]. */
export function calibLogProbs(model: CausalLM, chunks: readonly number[][]): Float32Array {
  const parts = chunks.map((c) => tidy(() => logSoftmax(model.forward(tensor(c, [1, c.length], 'i32', { backend: model.backend }))).dataSync() as Float32Array));
  const out = new Float32Array(parts.reduce((s, p) => s + p.length, 0));
  let o = 0;
  for (const p of parts) { out.set(p, o); o += p.length; }
  return out;
}

export interface MatrixSensitivity {
  name: string;
  /** Values of the matrix. */
  size: number;
  cols: number;
  /** format -> [bits per weight, KL when this matrix alone is in the format]. */
  kl: Partial<Record<ActlabQuantType, [number, number]>>;
}

/** Sensitivity of every packable matrix to every ladder format that divides its rows. */
export function measureSensitivity(model: CausalLM, config: Record<string, unknown>, chunks: readonly number[][], ladder = MIXED_LADDER, onDone?: (done: number, total: number) => void): MatrixSensitivity[] {
  const V = model.dims.vocabSize;
  const base = calibLogProbs(model, chunks);
  const params = [...model.parameters()].filter(([n, p]) => packRole(n, p.shape, config).pack);
  const unique = params.filter(([, p], i) => params.findIndex(([, q]) => q === p) === i);
  const out: MatrixSensitivity[] = [];
  for (const [i, [name, p]] of unique.entries()) {
    const role = packRole(name, p.shape, config);
    const cols = role.transposed ? p.shape[0]! : p.shape[1]!;
    const orig = (p.dataSync() as Float32Array).slice();
    const s: MatrixSensitivity = { name, size: p.size, cols, kl: {} };
    for (const f of ladder) {
      const q = fakeQuantParameter(name, p, f, config, orig);
      if (!q) continue;
      setParameter(p, q);
      s.kl[f] = [bitsPerWeight(f, cols), meanKl(base, calibLogProbs(model, chunks), V)];
    }
    setParameter(p, orig);
    out.push(s);
    onDone?.(i + 1, unique.length);
  }
  return out;
}

export interface Allocation {
  /** name -> format. */
  types: Record<string, ActlabQuantType>;
  /** Average bits per weight over the packed matrices. */
  bitsPerWeight: number;
  /** Sum of the matrices' individual KLs (the objective the greedy step lowers). */
  predictedKl: number;
}

function summarize(sens: readonly MatrixSensitivity[], types: Record<string, ActlabQuantType>): Allocation {
  let bits = 0, n = 0, kl = 0;
  for (const s of sens) {
    const [b, k] = s.kl[types[s.name]!]!;
    bits += b * s.size; n += s.size; kl += k;
  }
  return { types, bitsPerWeight: n ? bits / n : 0, predictedKl: kl };
}

/** Greedy allocation meeting `budget` average bits per weight; throws when even the cheapest formats exceed it. */
export function allocateBits(all: readonly MatrixSensitivity[], budget: number): Allocation {
  const sens = all.filter((s) => Object.keys(s.kl).length); // matrices no format divides stay f32
  const fmts = (s: MatrixSensitivity) => (Object.entries(s.kl) as [ActlabQuantType, [number, number]][]).sort((a, b) => a[1][0] - b[1][0]);
  const types: Record<string, ActlabQuantType> = {};
  let bits = 0, n = 0;
  for (const s of sens) {
    const f = fmts(s);
    types[s.name] = f[0]![0];
    bits += f[0]![1][0] * s.size; n += s.size;
  }
  if (bits > budget * n + 1e-9) throw new Error(`mixed precision: the cheapest formats already take ${(bits / n).toFixed(3)} bits per weight, above the budget of ${budget}`);
  for (;;) {
    let best: { name: string; to: ActlabQuantType; gain: number; cost: number } | null = null;
    for (const s of sens) {
      const [cb, ck] = s.kl[types[s.name]!]!;
      for (const [f, [b, k]] of fmts(s)) {
        const cost = (b - cb) * s.size;
        if (cost <= 0 || bits + cost > budget * n + 1e-9 || k >= ck) continue;
        const gain = (ck - k) / cost;
        if (!best || gain > best.gain) best = { name: s.name, to: f, gain, cost };
      }
    }
    if (!best) break;
    types[best.name] = best.to;
    bits += best.cost;
  }
  return summarize(sens, types);
}

/** The uniform allocation at the same budget: the ladder's highest format whose average fits. */
export function uniformAt(all: readonly MatrixSensitivity[], budget: number, ladder = MIXED_LADDER): Allocation {
  const sens = all.filter((s) => Object.keys(s.kl).length);
  let pick: Allocation | null = null;
  for (const f of ladder) {
    if (!sens.every((s) => s.kl[f])) continue;
    const a = summarize(sens, Object.fromEntries(sens.map((s) => [s.name, f])));
    if (a.bitsPerWeight <= budget + 1e-9 && (!pick || a.bitsPerWeight > pick.bitsPerWeight)) pick = a;
  }
  if (!pick) throw new Error(`mixed precision: no single format of ${ladder.join(', ')} fits every matrix within ${budget} bits per weight`);
  return pick;
}
