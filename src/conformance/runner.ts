// Runs the conformance matrix: each variant on the reference backend and on the backend under
// test, outputs compared by NMSE (sum of squared differences over sum of squared reference
// values, as ggml's test-backend-ops) with NaN/Inf required at the same places.
import type { Backend } from '../tensor/backend.js';
import { f32ToF16Bits, type DType } from '../tensor/dtype.js';
import { tidy } from '../tensor/engine.js';
import { Tensor } from '../tensor/tensor.js';
import { Rng } from '../ops/creation.js';
import type { QuantType } from '../tensor/backend.js';
import { QUANT_BLOCK, quantRowBytes } from '../tensor/quantized.js';
import { isActlabQuantType, quantizeWeights } from '../quant/formats.js';
import { allVariants, type InputSpec, type Variant } from './cases.js';

/** Byte offsets of the f16 scales inside one block of each format (d; and dmin for q4_k). */
const F16_AT: Partial<Record<QuantType, number[]>> = {
  q8_0: [0], q4_0: [0], q4_k: [0, 2], q6_k: [208], q4_1: [0, 2], q5_0: [0], q5_1: [0, 2], q5_k: [0, 2], iq4_nl: [0],
};

export interface CaseResult {
  backend: string;
  op: string;
  label: string;
  status: 'pass' | 'fail' | 'unsupported' | 'error';
  /** Worst NMSE over the outputs (NaN when not compared). */
  nmse: number;
  budget: number;
  detail?: string;
}

export interface ConformanceOptions {
  /** Op names (e.g. 'matmul') or substrings of labels to keep. */
  ops?: string[];
  seed?: number;
}

function swapLast2(shape: number[]): number[] {
  const s = [...shape];
  const n = s.length;
  if (n >= 2) [s[n - 2], s[n - 1]] = [s[n - 1]!, s[n - 2]!];
  return s;
}

/** Deterministic values for one input (in logical order of its final shape). */
export function values(spec: InputSpec, n: number, rng: Rng): number[] {
  const out = new Array<number>(n);
  const lo = spec.lo ?? 0;
  const hi = spec.hi ?? 1;
  for (let i = 0; i < n; i++) {
    switch (spec.fill ?? 'normal') {
      case 'normal': out[i] = rng.normal(); break;
      case 'uniform': out[i] = lo + (hi - lo) * rng.uniform(); break;
      case 'ids': out[i] = lo + rng.int(hi - lo); break;
      case 'mask': out[i] = rng.uniform() < 0.8 || i % 7 === 0 ? 1 : 0; break;
      case 'bytes': out[i] = rng.int(256); break;
      case 'positions': out[i] = rng.int(4096); break;
      case 'q8_0': case 'q4_0': case 'q4_k': case 'q6_k': case 'q4_1': case 'q5_0': case 'q5_1': case 'q5_k': case 'iq4_nl': {
        // Scales (f16, finite, small) where the block keeps them, random bytes elsewhere.
        const qt = spec.fill as QuantType;
        const block = QUANT_BLOCK[qt].bytes;
        const j = i % block;
        if (F16_AT[qt]!.includes(j)) { const h = f32ToF16Bits((rng.uniform() - 0.5) * 0.1); out[i] = h & 0xff; out[i + 1] = h >> 8; i++; }
        else out[i] = rng.int(256);
        break;
      }
      default: {
        // actlab's formats: rows of `spec.cols` normal weights encoded by the format's quantizer.
        if (!isActlabQuantType(spec.fill!)) break;
        const cols = spec.cols ?? QUANT_BLOCK[spec.fill].values;
        const rows = n / quantRowBytes(spec.fill, cols);
        const w = Float32Array.from({ length: rows * cols }, () => rng.normal());
        const bytes = quantizeWeights(spec.fill, w, rows, cols);
        for (let k = 0; k < n; k++) out[k] = bytes[k]!;
        i = n;
      }
    }
  }
  if (spec.special && n > 0) {
    const specials = [NaN, Infinity, -Infinity, 0, -0];
    for (let i = 0; i < n; i += 5) out[i] = specials[(i / 5) % specials.length]!;
  }
  return out;
}

/** Builds the input on `b` with the spec's layout; the same numbers on every backend. */
export function makeInput(spec: InputSpec, b: Backend, vals: number[]): Tensor {
  const shape = spec.shape;
  if (spec.layout === 'T' && shape.length >= 2) {
    // Store transposed, then view it back: a non-contiguous tensor of the asked shape.
    const stored = swapLast2(shape);
    const n = shape.at(-1)!;
    const m = shape.at(-2)!;
    const batch = vals.length / (n * m || 1);
    const t = new Array<number>(vals.length);
    for (let z = 0; z < batch; z++) for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) t[z * m * n + j * m + i] = vals[z * m * n + i * n + j]!;
    const base = Tensor.from(t, stored, spec.dtype, b);
    return base.transpose();
  }
  if (spec.layout === 'slice' && shape.length >= 1) {
    // A slice of a tensor two wider in the last dim, offset by one.
    const wide = [...shape];
    wide[wide.length - 1]! += 2;
    const last = shape.at(-1)!;
    const w = last + 2;
    const rows = vals.length / (last || 1);
    const data = new Array<number>(rows * w).fill(7);
    for (let r = 0; r < rows; r++) for (let j = 0; j < last; j++) data[r * w + j + 1] = vals[r * last + j]!;
    const base = Tensor.from(data, wide, spec.dtype, b);
    return base.narrow(-1, 1, last);
  }
  return Tensor.from(vals, shape, spec.dtype, b);
}

export function compare(ref: Tensor, got: Tensor): { nmse: number; detail?: string } {
  if (ref.dtype !== got.dtype || ref.shape.join() !== got.shape.join()) {
    return { nmse: Infinity, detail: `output ${got.dtype}[${got.shape}] vs reference ${ref.dtype}[${ref.shape}]` };
  }
  const a = ref.dataSync();
  const b = got.dataSync();
  let num = 0;
  let den = 0;
  for (let i = 0; i < a.length; i++) {
    const x = a[i]!;
    const y = b[i]!;
    if (!Number.isFinite(x) || !Number.isFinite(y)) {
      if (Object.is(x, y) || (Number.isNaN(x) && Number.isNaN(y))) continue;
      return { nmse: Infinity, detail: `element ${i}: reference ${x}, got ${y}` };
    }
    num += (x - y) ** 2;
    den += x * x;
  }
  return { nmse: num === 0 ? 0 : num / (den || 1) };
}

async function runVariant(v: Variant, ref: Backend, test: Backend, seed: number): Promise<CaseResult> {
  const base = { backend: test.name, op: v.op, label: v.label, budget: v.budget };
  const rng = new Rng(seed);
  const vals = v.inputs.map((s) => values(s, s.shape.reduce((p, d) => p * d, 1), rng));
  let refOut: Tensor[] = [];
  let testOut: Tensor[] = [];
  try {
    refOut = tidy(() => v.run(v.inputs.map((s, i) => makeInput(s, ref, vals[i]!))));
    try {
      testOut = tidy(() => v.run(v.inputs.map((s, i) => makeInput(s, test, vals[i]!))));
    } catch (e) {
      const err = e as Error;
      if (err.name === 'UnsupportedOpError') return { ...base, status: 'unsupported', nmse: NaN, detail: err.message };
      return { ...base, status: 'error', nmse: NaN, detail: err.stack ?? String(err) };
    }
    await test.flush();
    let worst = 0;
    for (let i = 0; i < refOut.length; i++) {
      const host = testOut[i]!.backend === ref ? testOut[i]! : await testOut[i]!.to(ref);
      const c = compare(refOut[i]!, host);
      if (host !== testOut[i]) host.dispose();
      if (c.detail) return { ...base, status: 'fail', nmse: c.nmse, detail: `output ${i}: ${c.detail}` };
      worst = Math.max(worst, c.nmse);
    }
    return { ...base, status: worst <= v.budget ? 'pass' : 'fail', nmse: worst };
  } catch (e) {
    return { ...base, status: 'error', nmse: NaN, detail: `reference failed: ${(e as Error).message}` };
  } finally {
    for (const t of [...refOut, ...testOut]) t.dispose();
  }
}

export function selectVariants(opts: ConformanceOptions = {}): Variant[] {
  const all = allVariants();
  if (!opts.ops?.length) return all;
  return all.filter((v) => opts.ops!.some((o) => v.op === o || v.label.startsWith(o + ' ') || v.label.includes(o)));
}

/** Runs the (filtered) matrix on `test` against `ref`. */
export async function runConformance(ref: Backend, test: Backend, opts: ConformanceOptions = {}): Promise<CaseResult[]> {
  const out: CaseResult[] = [];
  let i = 0;
  for (const v of selectVariants(opts)) out.push(await runVariant(v, ref, test, (opts.seed ?? 1) * 7919 + i++));
  return out;
}

export function summarize(results: CaseResult[]): string {
  const byOp = new Map<string, CaseResult[]>();
  for (const r of results) byOp.set(`${r.backend} ${r.op}`, [...(byOp.get(`${r.backend} ${r.op}`) ?? []), r]);
  const lines = ['backend  op           pass  fail  unsup  worst NMSE'];
  for (const [k, rs] of byOp) {
    const [b, op] = k.split(' ');
    const n = (s: string) => rs.filter((r) => r.status === s).length;
    const worst = Math.max(0, ...rs.filter((r) => Number.isFinite(r.nmse)).map((r) => r.nmse));
    lines.push(`${b!.padEnd(8)} ${op!.padEnd(12)} ${String(n('pass')).padStart(4)}  ${String(n('fail') + n('error')).padStart(4)}  ${String(n('unsupported')).padStart(5)}  ${worst.toExponential(2)}`);
  }
  return lines.join('\n');
}

export type { DType };
